"""How a worker's C heap gives memory back: fixed mmap and trim thresholds, so a large request's buffers leave with it.

glibc serves an allocation of at least ``M_MMAP_THRESHOLD`` (128 KiB by default) with its own mapping, returned
to the kernel on free; but after each such free it raises the threshold to that size (up to 32 MiB), so the
next request's multi-MB body, decoded text and large dict tables come from the heap instead, where freed memory
stays resident and the next large request's peak lands on top of it. Setting the threshold explicitly turns
that adjustment off (mallopt(3)). Measured with ``bench/memory.py``: 8,000 Conditions at concurrency 1 peaked
at 156 MB per worker (VmHWM) with the adjustment, 126 MB without. Other C libraries (musl) are left as they are.

Why 4 MiB and not glibc's 128 KiB: orjson's reader takes one block of about twelve times the body (569 KB for
the typical 47 KB call), and a fresh mapping is faulted in page by page every time. The fast reader reads bodies
below ``validate.SHARED_STRINGS_FROM`` (256 KiB), so its block stays below 4 MiB and comes from the heap; the
free memory at the top of the heap is kept up to the same size (``M_TRIM_THRESHOLD``: else glibc gives back what
exceeds 128 KiB there and the next call faults it in again), so the next call reuses it. Page faults of one
``parse_json`` (in-process, ``bench/records.py`` bodies): 47 KB 2 -> 0, 146 KB 92 -> 0, 338 KB (the exact
reader's text and tables) 592 -> 0; a typical call in all: 28 -> 0.4, about 0.1 ms of system time. Larger
allocations still go back to the kernel when freed. Cost: up to 4 MiB of free heap stays resident per worker;
``bench/memory.py`` peak per worker after 8,000 Conditions 122 -> 127-130 MB (target 150).
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
THRESHOLD_BYTES = 4 * 1024 * 1024  # both thresholds; design choice, measured: see the module docstring


def fix_heap_thresholds() -> bool:
    """True when glibc took both settings; False on another C library (nothing changed)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded in this process, the C library's among them
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it: musl's mallopt is a no-op anyway)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
