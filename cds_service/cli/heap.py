"""How a worker's C heap gives memory back: a fixed mmap threshold, so a large request's buffers leave with it.

glibc serves an allocation of at least ``M_MMAP_THRESHOLD`` (128 KiB) with its own mapping, returned to the
kernel on free; but after each such free it raises the threshold to that size (up to 32 MiB), so the next
request's multi-MB body, decoded text and large dict tables come from the heap instead, where freed memory
stays resident and the next large request's peak lands on top of it. Setting the threshold explicitly turns
that adjustment off (mallopt(3)). Measured with ``bench/memory.py``: 8,000 Conditions at concurrency 1 peaked
at 156 MB per worker (VmHWM) with the adjustment, 126 MB without. Other C libraries (musl) are left as they are.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own default, kept fixed


def fix_mmap_threshold() -> bool:
    """True when glibc took the setting; False on another C library (nothing changed)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded in this process, the C library's among them
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it: musl's mallopt is a no-op anyway)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
