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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
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
