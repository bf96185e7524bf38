"""The C heap (glibc's malloc) through a trace's life: lean while it loads, generous while
its figures are made, lean again after.

While loading, the loader churns through many short-lived buffers: glibc keeps freed heap
pages mapped and, after a large block is freed, raises its mmap threshold so later large
blocks land on the heap too; peak RSS then measures garbage, not data. Fixed thresholds
(blocks of 256 KiB and more mapped, so unmapped when freed) and a trim between the load's
phases keep RSS close to what is live (:func:`tune_for_load`, :func:`give_back`).

The analyses then make and drop hundreds of arrays the size of a column (8 bytes a slice),
and each freed block goes back to the kernel, the next array faulting fresh zeroed pages in
again: on 3.25 M events (26 MB columns) the report took 540,000 page faults and more system
time than computing time (1.7 s against 1.2 s). With blocks up to 32 MB served from the heap
and reused (:func:`keep_freed_memory`): 50,000 faults, the report in 1.1 s instead of
1.7-1.95 s, its peak memory 8-14 % more; in the app's workers, the steps' figures in 0.36 s
instead of 1.0 s. Only where a column fits those 32 MB (glibc's largest threshold on 64
bits): larger columns are mapped and unmapped whatever is set, and keeping their smaller
pieces only fragmented the heap (15 M kernels: +90 MB at the peak, no faster). ``summary``
exits when it is done; the app, which lives on, gives what was kept back once the figures
behind its views are made (:func:`give_back`, ``malloc_trim``), and the next load tunes the
heap lean again. Where the C library is not glibc, nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KB, _MB = 1 << 10, 1 << 20
#: glibc's largest mmap threshold on 64 bits (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_MAX = 32 * _MB

_UNSET: Any = object()
_libc: Any = _UNSET  # glibc, once looked for (None: not here)
_lean = False  # the load's thresholds are set


def _glibc() -> Any:
    global _libc
    if _libc is _UNSET:
        _libc = None
        lib: Any = None
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            except OSError:  # (not glibc, or no C library found)
                lib = None
        if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):  # (musl has neither)
            lib.mallopt.argtypes, lib.mallopt.restype = [ctypes.c_int, ctypes.c_int], \
                ctypes.c_int
            lib.malloc_trim.argtypes, lib.malloc_trim.restype = [ctypes.c_size_t], \
                ctypes.c_int
            _libc = lib
    return _libc


def tune_for_load() -> None:
    """Fixed thresholds while a trace loads: blocks of 256 KiB and more are mapped (and
    unmapped when freed), the heap's top trimmed past 1 MiB and grown 128 KiB at a time."""
    global _lean
    libc = _glibc()
    if libc is not None and not _lean:
        libc.mallopt(_M_MMAP_THRESHOLD, 256 * _KB)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 * _MB)
        libc.mallopt(_M_TOP_PAD, 128 * _KB)  # (glibc's default, as keep_freed_memory found it)
        _lean = True


def keep_freed_memory(slices: int) -> bool:
    """For a trace of ``slices`` slices whose figures are to be made: tell glibc's malloc
    to keep freed blocks for reuse where its columns fit under the threshold (whether it
    took the settings)."""
    global _lean
    if slices * 8 > MMAP_MAX:
        return False
    libc = _glibc()
    if libc is None:
        return False
    ok = True
    # (the heap's top is trimmed past twice the threshold, as glibc's own rule does once a
    # block of that size was freed)
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_MAX), (_M_TRIM_THRESHOLD, 2 * MMAP_MAX),
                         (_M_TOP_PAD, 4 * _MB)):
        ok = bool(libc.mallopt(param, value)) and ok
    _lean = False  # (the next load sets its own again)
    return ok


def give_back() -> bool:
    """Return the free memory of every malloc arena to the kernel (``malloc_trim``): between
    a load's phases, and once a trace's figures are made (what :func:`keep_freed_memory`
    kept for the next array). Whether memory was given back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
