import ctypes
import platform
import sys

import numpy as np
import pytest

from engine.allocator import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only")
def test_large_frame_buffers_come_from_the_heap_and_stay_there():
    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc older than 2.33")
    libc.mallinfo2.restype = _MallInfo2
    assert keep_freed_memory()
    size = 40 << 20  # above glibc's largest automatic threshold (32 MiB)
    before = libc.mallinfo2()
    buffer = np.ones(size, np.uint8)
    during = libc.mallinfo2()
    # Not a separate mapping of its own: it came from the heap ...
    assert during.hblkhd - before.hblkhd < size
    del buffer
    after = libc.mallinfo2()
    # ... and its pages stay in the process for the next frame.
    assert after.fordblks + after.uordblks >= size
