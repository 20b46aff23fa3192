"""Writing synthesised pairs to disk as a flat paired folder, once, atomically and in parallel.

Both the fixed validation set and the pre-synthesised training pool are written here:
``OUT/blur/NAME.png``, ``OUT/sharp/NAME.png`` and ``OUT/meta.json`` (who wrote it, the settings
it was made with, one description per item), readable by
:class:`~training.data.paired.PairedFolderDataset`.

A folder that already holds a complete set made with the same settings is reused untouched.
A set is built in a temporary sibling folder and renamed into place, so an interrupted run
never leaves a partial set under the destination; a stale set of the same kind is replaced,
and any other existing folder is refused.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import cv2

from training.data.paired import write_rgb


class PairSource(Protocol):
    """What :func:`write_pair_set` needs: ``sample(i) -> (blur, sharp, meta)`` and a length."""

    def __len__(self) -> int: ...

    def sample(self, index: int) -> tuple[Any, Any, dict[str, Any]]: ...


#: ``name(meta, index) -> file stem`` of item ``index``.
Namer = Callable[[Mapping[str, Any], int], str]


def is_complete(out_dir: str | Path, mark: str, settings: Mapping[str, Any], count: int) -> bool:
    """True when ``out_dir`` holds a complete set of ``count`` items written with ``settings``.

    Raises:
        FileExistsError: ``out_dir`` exists but is not a set of this kind (``mark``).
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return False
    try:
        old = json.loads((out_dir / "meta.json").read_text())
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or old.get("generator") != mark:
        raise FileExistsError(f"{out_dir} exists and is not a {mark} written here")
    names = [item["name"] for item in old.get("items", [])]
    complete = all(
        (out_dir / sub / f"{n}.png").is_file() for n in names for sub in ("blur", "sharp")
    )
    return old.get("settings") == settings and complete and len(names) == count


def _write_items(
    source: PairSource, folder: Path, indices: Sequence[int], namer: Namer
) -> list[dict[str, Any]]:
    metas = []
    for i in indices:
        blur, sharp, meta = source.sample(i)
        meta["name"] = namer(meta, i)
        write_rgb(folder / "blur" / f"{meta['name']}.png", blur)
        write_rgb(folder / "sharp" / f"{meta['name']}.png", sharp)
        metas.append(meta)
    return metas


def _single_threaded_opencv() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's pool would oversubscribe


def write_pair_set(
    source: PairSource,
    out_dir: str | Path,
    mark: str,
    settings: Mapping[str, Any],
    namer: Namer,
    *,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 64,
) -> Path:
    """Write every item of ``source`` under ``out_dir`` (or reuse an identical set there).

    Args:
        source: the items (``sample(i)`` must depend on ``i`` alone, so that worker processes
            make the same pixels as one process would).
        out_dir: destination folder.
        mark: the kind of set, stored in ``meta.json`` as ``generator``.
        settings: JSON-serialisable settings; a set with other settings is rebuilt.
        namer: file stem of each item (unique).
        workers: processes that synthesise in parallel (0 or 1: this process).
        progress: called as ``progress(done, total)`` after every chunk of items.
        chunk: items per task handed to a worker process.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        FileExistsError: ``out_dir`` exists and is not a set of this kind.
    """
    out_dir = Path(out_dir)
    total = len(source)
    settings = json.loads(json.dumps(settings))  # tuples → lists, as they read back
    if is_complete(out_dir, mark, settings, total):
        if progress is not None:
            progress(total, total)
        return out_dir
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "blur").mkdir(parents=True)
    (tmp / "sharp").mkdir()
    chunks = [range(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    items: list[dict[str, Any]] = []
    try:
        if workers > 1 and len(chunks) > 1:
            # spawn, not fork: the parent may hold torch's or OpenCV's thread pools.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                workers, mp_context=context, initializer=_single_threaded_opencv
            ) as pool:
                futures = [pool.submit(_write_items, source, tmp, c, namer) for c in chunks]
                for future in futures:
                    items += future.result()
                    if progress is not None:
                        progress(len(items), total)
        else:
            for c in chunks:
                items += _write_items(source, tmp, c, namer)
                if progress is not None:
                    progress(len(items), total)
        document = {"generator": mark, "settings": settings, "items": items}
        (tmp / "meta.json").write_text(json.dumps(document, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)  # a stale set of this kind (checked above)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
