"""Process-wide CPU settings that make inference faster: the memory allocator, and giving its
kept memory back when a long-lived process (the app) goes idle.

PyTorch's CPU tensors come from ``malloc``. glibc serves large blocks (a 512×512×64 activation
is 64 MiB) with fresh ``mmap`` pages and returns them to the system on ``free``, so every
large tensor page-faults in again on the next call: a copy, a padding or a ReLU of such a
tensor then costs ~5× its memory traffic, and convolutions ~25% more (measured on a 2-core
CPU, see docs/benchmarks/). Raising glibc's mmap and trim thresholds makes freed blocks stay in
the heap and be reused, at the price of the process keeping its peak memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # bytes: blocks below 1 GiB come from the reusable heap
_applied = False


def keep_freed_memory() -> bool:
    """Make glibc ``malloc`` keep and reuse freed large blocks (once per process).

    Returns whether the setting is in effect; ``False`` where the C library is not glibc
    (macOS, Windows, musl), which is harmless: only speed differs.
    """
    global _applied
    if not _applied:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        _applied = bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    return _applied


def release_freed_memory() -> bool:
    """Give the heap's free memory back to the system now (glibc ``malloc_trim``): what
    :func:`keep_freed_memory` keeps for speed while busy, returned when idle. Returns whether
    any was released; ``False`` where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False
