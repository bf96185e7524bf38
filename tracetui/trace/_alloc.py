"""Keep the C heap from holding on to memory the loader has already freed (glibc only).

Loading churns through many short-lived buffers; glibc keeps freed heap pages mapped and,
after a large block is freed, raises its mmap threshold so later large blocks land on the
heap too. Peak RSS then measures garbage, not data. Fixing the thresholds and trimming the
heap between the load's phases keeps RSS close to what is live. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_libc = None
if sys.platform.startswith("linux"):
    try:
        _name = ctypes.util.find_library("c") or "libc.so.6"
        _lib = ctypes.CDLL(_name)
        if hasattr(_lib, "malloc_trim") and hasattr(_lib, "mallopt"):
            _libc = _lib
    except OSError:  # pragma: no cover - not glibc (e.g. musl without these symbols)
        _libc = None

_tuned = False


def tune() -> None:
    """Fixed thresholds: blocks >= 256 KiB are mapped (and unmapped when freed)."""
    global _tuned
    if _libc is not None and not _tuned:
        _libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
        _libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024)
        _tuned = True


def trim() -> None:
    """Give freed heap memory back to the system."""
    if _libc is not None:
        _libc.malloc_trim(0)
