"""Writing files so that a crash or a cancel never leaves a truncated file under the final name."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(destination: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``destination``, renamed onto it when the block succeeds.

    The temporary file lives in the destination folder (so the rename is atomic) under a
    hidden name unique to this process; it is created by whoever writes it, so it gets the
    user's normal permissions. If the block raises, the temporary file is removed and the
    destination is left as it was.

    Args:
        destination: the final file.

    Yields:
        The temporary path to write.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
