"""A batch command's heap: glibc's malloc told to keep freed arrays for the next one.

The analyses of a trace make and drop hundreds of arrays the size of a column (8 bytes a
slice). glibc gives each such block back to the kernel when it is freed (``munmap``, or
trimming the heap's top), and the next array faults fresh zeroed pages in again: on 3.25 M
events (26 MB columns) the report took 540,000 page faults and more system time than
computing time (1.7 s against 1.2 s). With blocks up to 32 MB served from the heap and
reused: 50,000 faults, 0.3 s of system time, the report in 1.1 s instead of 1.7-1.95 s, its
peak memory 8-14 % more.

Only where a column fits those 32 MB (glibc's largest threshold on 64 bits): larger
columns are mapped and unmapped whatever is set, and keeping their smaller pieces only
fragmented the heap (15 M kernels: +90 MB at the peak, no faster). Only for a command
that exits when it is done (``summary``): a long-lived app would keep what its peak needed.
Where the C library is not glibc, nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MB = 1 << 20
#: glibc's largest mmap threshold on 64 bits (DEFAULT_MMAP_THRESHOLD_MAX)
MMAP_MAX = 32 * _MB


def keep_freed_memory(slices: int) -> bool:
    """For a trace of ``slices`` slices: tell glibc's malloc to keep freed blocks for reuse
    where its columns fit under the threshold (whether it took the settings)."""
    if slices * 8 > MMAP_MAX:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt), or no libc found
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = True
    # (the heap's top is trimmed past twice the threshold, as glibc's own rule does once a
    # block of that size was freed)
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_MAX), (_M_TRIM_THRESHOLD, 2 * MMAP_MAX),
                         (_M_TOP_PAD, 4 * _MB)):
        ok = bool(mallopt(param, value)) and ok
    return ok
