"""``summary``'s heap (:mod:`tracetui.cli.heap`): once told, glibc keeps freed arrays for the
next one instead of faulting in fresh pages for each. Counted in fresh processes (the
setting is the whole process's): page faults while arrays of 20 MB are made and dropped."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_CHILD = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from tracetui.cli.heap import keep_freed_memory
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

    from tracetui.cli import heap

    def no_libc(*a, **kw):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert heap.keep_freed_memory(1000) is False


def test_columns_past_the_threshold_are_left_to_glibc(monkeypatch):
    """Past 4 M slices a column is mapped whatever is set: nothing is changed (the heap
    would only keep the smaller pieces, +90 MB at 15 M kernels)."""
    import ctypes

    from tracetui.cli import heap

    def called(*a, **kw):
        raise AssertionError("mallopt was reached")

    monkeypatch.setattr(ctypes, "CDLL", called)
    assert heap.keep_freed_memory(heap.MMAP_MAX // 8 + 1) is False
