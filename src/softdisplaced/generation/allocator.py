"""glibc ``malloc`` settings for the commands that build and write large event arrays.

Writing a Delphes file makes uproot allocate and free a multi-megabyte buffer per
branch and basket, and the generator and detector create many arrays of the size
of a chunk. With glibc's default *dynamic* thresholds such blocks are often served
by a fresh ``mmap`` whose pages the kernel then faults in one by one: for a chunk of
1e5 events about 7e4 page faults, ~0.2 s of system time, up to a third of the
writer's cost (measured by ``make bench``: generation.json). Raising the mmap
threshold to glibc's maximum (32 MiB) and the trim threshold to 1 GiB keeps these
blocks in the heap, where they are reused. The results are unchanged (only where
memory comes from); the resident memory of a job stays at its peak instead of
shrinking between arrays.

:func:`tune` is a no-op when the C library is not glibc (macOS, musl) or when the
environment sets ``SOFTDISPLACED_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 * 1024 * 1024   # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
_applied: bool | None = None


def tune() -> bool:
    """Apply the thresholds once per process; returns whether they are in effect."""
    global _applied
    if _applied is None:
        _applied = False
        if os.environ.get("SOFTDISPLACED_MALLOC_TUNING", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            # both, in this order: fixing only the trim threshold would switch off the
            # dynamic mmap threshold at its 128 KiB default
            _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
