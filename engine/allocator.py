"""Memory-allocator settings for long frame loops.

glibc hands out every allocation above a threshold (128 KiB at first) as fresh pages from the
kernel and returns them on ``free``. A loop that makes a few new frame-sized arrays per frame
(colour conversions, display copies, results handed to another thread) then pays a page fault
for every 4 KiB it touches and, on every return, a TLB flush on each core: on a 2-core machine
that was about a fifth of the live preview's CPU time. :func:`keep_freed_memory` raises both
thresholds so that freed frame buffers stay in the process and are reused by the next frame;
memory stays flat (the same sizes come back every frame), only the peak is kept.

This module is part of the torch-free engine core: it imports the standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Allocations up to this size come from the heap (a 1080p float32 frame is 24 MiB).
MMAP_THRESHOLD = 64 << 20
#: Free memory kept at the top of the heap before any is given back.
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory(
    mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD
) -> bool:
    """Keep freed frame buffers for reuse instead of returning them to the kernel.

    Call it once at the start of a frame loop's process (it affects the whole process). It
    does nothing where the C library is not glibc.

    Args:
        mmap_threshold: allocations up to this many bytes come from the heap.
        trim_threshold: free bytes kept at the top of the heap.

    Returns:
        Whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
    )
    if not applied:
        log.debug("mallopt refused the thresholds %d / %d", mmap_threshold, trim_threshold)
    return applied
