"""Training checkpoints: atomic writes, safe reads, and the random-number state they carry.

A checkpoint is one ``torch.save`` file holding plain containers and tensors only (it loads
with ``weights_only=True``, so opening a checkpoint from elsewhere runs no code):

* ``format``/``version``; ``step``; ``config`` (the resolved config);
* ``model`` and ``ema`` (state dicts); ``optimizer``, ``schedule``; the adversarial part
  (``discriminator``, ``d_optimizer``, ``d_schedule``, ``adversarial`` history pools);
  ``scaler`` (AMP GradScaler);
* ``sampler`` (the global data position), ``rng`` (Python, NumPy, torch and CUDA generator
  states, one entry per rank), ``best`` and the last ``metrics``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FORMAT = "rtdeblur-training-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable training checkpoint of this project."""


def capture_rng_state() -> dict[str, Any]:
    """Every generator a training step may draw from, in checkpoint-safe types.

    Returns:
        ``{"python", "numpy", "torch", "cuda"}``; NumPy's key array is stored as a tensor
        so that the checkpoint loads with ``weights_only=True``.
    """
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what :func:`capture_rng_state` returned."""
    py = state["python"]
    # weights_only loading turns the inner tuple into a list; random.setstate needs tuples.
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            int(np_state["pos"]),
            int(np_state["has_gauss"]),
            float(np_state["gauss"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda[: torch.cuda.device_count()]])


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically: to a temporary file in the folder, then renamed.

    A crash or a full disk never leaves a truncated file under the final name, and the
    previous checkpoint stays intact until the new one is complete.

    Args:
        state: the checkpoint's contents (``format`` and ``version`` are added).
        path: destination file.

    Returns:
        ``path``.
    """
    from engine.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
    return path


def link_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` the same checkpoint as ``src`` without writing it again.

    A hard link where the file system allows one (best and last are often the same step),
    else a copy; either way ``dst`` appears atomically.

    Returns:
        ``dst``.
    """
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    try:
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a training checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.
        map_location: where tensors go (default: the CPU).

    Returns:
        The checkpoint's contents.

    Raises:
        CheckpointError: missing file, unreadable file, or not one of ours.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an rtdeblur training checkpoint (a plain state dict? export it "
            "with `rtdeblur export MODEL_NAME --weights FILE`)"
        )
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer rtdeblur (checkpoint version {state['version']})"
        )
    return state


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an existing file that looks like a checkpoint (by suffix)."""
    path = Path(path)
    return path.is_file() and path.suffix in (".pt", ".pth", ".ckpt")


# --- moving checkpoints through size-limited channels -----------------------------------------

#: What only ``--resume`` reads: a slimmed checkpoint drops it.
RESUME_ONLY_KEYS = (
    "optimizer",
    "schedule",
    "scaler",
    "discriminator",
    "d_optimizer",
    "d_schedule",
    "adversarial",
    "sampler",
    "rng",
)
PARTS_FORMAT = "rtdeblur-file-parts"


def slim_checkpoint(
    src: str | os.PathLike, dst: str | os.PathLike, weights: str = "both"
) -> dict[str, Any]:
    """Write a copy of a checkpoint that keeps what export, eval and ``model.init`` read.

    The optimiser, schedules, discriminator, history pools, data position and generator
    states go (only ``--resume`` needs them); the weights, the config, the step, metrics,
    training time, hardware and the runs it started from stay, so the model card of an export
    from the slim copy is the one the full checkpoint gives.

    Args:
        src: a training checkpoint.
        dst: where the slim copy goes (written atomically).
        weights: ``"both"``, ``"ema"`` (the EMA weights alone: what export and ``model.init``
            use by default) or ``"raw"``.

    Returns:
        The slim checkpoint's contents.

    Raises:
        CheckpointError: unreadable ``src``, or ``weights="ema"`` without EMA weights.
        ValueError: an unknown ``weights``.
    """
    if weights not in ("both", "ema", "raw"):
        raise ValueError(f"weights must be both, ema or raw, got {weights!r}")
    state = load_checkpoint(src)
    if weights == "ema" and not state.get("ema"):
        raise CheckpointError(f"{src} holds no EMA weights (train.ema was off); keep raw or both")
    dropped = [key for key in RESUME_ONLY_KEYS if state.get(key) is not None]
    slim = {key: value for key, value in state.items() if key not in RESUME_ONLY_KEYS}
    if weights == "ema":
        slim["model"] = None
    elif weights == "raw":
        slim["ema"] = None
    slim["slim"] = {"source": Path(src).name, "dropped": dropped, "weights": weights}
    slim.pop("format", None)
    slim.pop("version", None)
    save_checkpoint(slim, dst)
    return slim


def split_file(
    path: str | os.PathLike, out_dir: str | os.PathLike, part_bytes: int = 16 << 20
) -> Path:
    """Cut a file into numbered parts of at most ``part_bytes`` plus a manifest.

    The manifest ``NAME.parts.json`` records the file's size and sha256 and each part's, so
    :func:`join_parts` can tell a missing, truncated or damaged part from a good one.

    Returns:
        The manifest's path.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: ``part_bytes`` < 1.
    """
    import json

    from engine.modelcard import sha256_of

    path, out_dir = Path(path), Path(out_dir)
    if part_bytes < 1:
        raise ValueError(f"part size must be at least 1 byte, got {part_bytes}")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with path.open("rb") as f:
        for index in range(max(1, -(-path.stat().st_size // part_bytes))):
            part = out_dir / f"{path.name}.{index:03d}"
            part.write_bytes(f.read(part_bytes))
            parts.append(
                {"file": part.name, "size": part.stat().st_size, "sha256": sha256_of(part)}
            )
    manifest = out_dir / f"{path.name}.parts.json"
    manifest.write_text(
        json.dumps(
            {
                "format": PARTS_FORMAT,
                "name": path.name,
                "size": path.stat().st_size,
                "sha256": sha256_of(path),
                "parts": parts,
            },
            indent=1,
        )
    )
    return manifest


def join_parts(
    manifest: str | os.PathLike, out: str | os.PathLike | None = None, overwrite: bool = True
) -> Path:
    """Put together what :func:`split_file` cut, checking every part and the whole.

    Args:
        manifest: the ``NAME.parts.json`` file; the parts are read from its folder.
        out: the file to write (default: ``NAME`` beside the manifest); written atomically,
            so a failed check leaves nothing behind.
        overwrite: whether an existing ``out`` may be replaced.

    Returns:
        The joined file's path.

    Raises:
        CheckpointError: not a manifest, a part missing, of another size or damaged, or the
            joined file not the one that was cut.
        FileExistsError: ``out`` exists and ``overwrite`` is false.
    """
    import json

    from engine.atomic import atomic_output
    from engine.modelcard import sha256_of

    manifest = Path(manifest)
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{manifest} is not a readable parts manifest ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != PARTS_FORMAT:
        raise CheckpointError(f"{manifest} is not a parts manifest")
    folder = manifest.parent
    for part in meta["parts"]:
        file = folder / part["file"]
        if not file.is_file():
            raise CheckpointError(f"part {part['file']} is missing from {folder}")
        if file.stat().st_size != part["size"] or sha256_of(file) != part["sha256"]:
            raise CheckpointError(f"part {part['file']} is damaged (size or sha256 differ)")
    out = Path(out) if out is not None else folder / meta["name"]
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (--overwrite replaces it)")
    with atomic_output(out) as tmp:
        with tmp.open("wb") as f:
            for part in meta["parts"]:
                f.write((folder / part["file"]).read_bytes())
        if tmp.stat().st_size != meta["size"] or sha256_of(tmp) != meta["sha256"]:
            raise CheckpointError(f"the joined {meta['name']} differs from the one that was cut")
    return out
