"""The heap (:mod:`tracetui.heap`): once told, glibc keeps freed arrays for the next one
instead of faulting in fresh pages for each, and gives them back when asked. Counted in
fresh processes (the setting is the whole process's): page faults while arrays of 20 MB are
made and dropped, resident memory before and after the memory is given back."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_CHILD = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from tracetui.heap import keep_freed_memory
    assert keep_freed_memory(2_500_000)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(2_500_000)  # 20 MB
b = a * 2
del b
f0 = faults()
for i in range(10):
    b = a * 2
    c = b + 1
    del b, c
print(faults() - f0)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt")
def test_freed_arrays_are_reused_not_faulted_in_again():
    default, kept = _faults("default"), _faults("keep")
    # 20 arrays of 20 MB: glibc's default hands each back and faults the next one in
    assert default > 4 * max(kept, 1), (default, kept)


def test_without_glibc_it_says_so_and_does_nothing(monkeypatch):
    import ctypes

    from tracetui import heap

    def no_libc(*a, **kw):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    monkeypatch.setattr(heap, "_libc", heap._UNSET)  # (looked for again, and not found)
    assert heap.keep_freed_memory(1000) is False
    assert heap.give_back() is False
    heap.tune_for_load()  # (nothing to tune: no error)


def test_columns_past_the_threshold_are_left_to_glibc(monkeypatch):
    """Past 4 M slices a column is mapped whatever is set: nothing is changed (the heap
    would only keep the smaller pieces, +90 MB at 15 M kernels)."""
    import ctypes

    from tracetui import heap

    def called(*a, **kw):
        raise AssertionError("mallopt was reached")

    monkeypatch.setattr(ctypes, "CDLL", called)
    monkeypatch.setattr(heap, "_libc", heap._UNSET)
    assert heap.keep_freed_memory(heap.MMAP_MAX // 8 + 1) is False


_KEPT = """
import os, sys
import numpy as np
from tracetui.heap import give_back, keep_freed_memory
assert keep_freed_memory(2_500_000)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
keep = []
held = [np.ones(2_500_000) for i in range(8)]  # 160 MB made and touched
for i in range(8):
    keep.append(np.ones(1000))  # (small blocks after each: the heap cannot shrink its top)
del held
before = rss()
gave = give_back()
print(gave, before - rss())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc_trim")
def test_what_was_kept_is_given_back_once_the_work_is_done():
    """The app keeps freed arrays while its figures are made, then gives them back: 160 MB
    freed in the middle of the heap leave the process's resident memory."""
    out = subprocess.run([sys.executable, "-c", _KEPT], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 100 * 2**20, out


def test_a_load_after_the_figures_is_lean_again(monkeypatch):
    """The app loads a second trace (ranks realigned, a rank held) after the first's
    figures were made with the heap generous: that load sets the lean thresholds again."""
    from tracetui import heap

    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

        def malloc_trim(self, pad):
            return 1

    monkeypatch.setattr(heap, "_libc", FakeLibc())
    monkeypatch.setattr(heap, "_lean", False)
    heap.tune_for_load()
    heap.tune_for_load()  # (once is enough while nothing changed it)
    assert calls.count((heap._M_MMAP_THRESHOLD, 256 << 10)) == 1
    assert heap.keep_freed_memory(1000)
    assert (heap._M_MMAP_THRESHOLD, heap.MMAP_MAX) in calls
    heap.tune_for_load()
    assert calls[-3:] == [(heap._M_MMAP_THRESHOLD, 256 << 10), (heap._M_TRIM_THRESHOLD, 1 << 20),
                          (heap._M_TOP_PAD, 128 << 10)]
