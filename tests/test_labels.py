"""Lane labels: shortened to the label column, never cut silently, never two alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracetui.app.labels import ELLIPSIS, lane_label, lane_labels, middle

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "traces"
SAMPLES = Path(__file__).resolve().parent.parent / "sample_traces"


@dataclass
class L:
    name: str


def _ids(name: str) -> list[str]:
    """The numbers that tell a CPU lane apart: its pid and tid (from the name alone)."""
    m = re.match(r"^(?:r\d+ · )?.*?(-?\d+) · thread (-?\d+)", name)
    return [m.group(1), m.group(2)] if m else []


NAMES = [
    "python3.10 2910249 · thread 2910249 (pt_main_thread)",
    "python3.10 2910249 · thread 2919752 (pt_autograd_0)",
    "python3.10 2910249 · thread -549452224",
    "python3 1166 · thread 1166 (python3)",
    "python3 1166 · thread 2571 (python3)",
    "GPU 0 · stream 7", "GPU 0 · stream 7 · annotations", "GPU 12 · stream 140 · annotations",
    "Spans · PyTorch Profiler", "global", "Traces · Trace PyTorch Profiler",
    "r0 · pyper:trainer:0:0 · thread 11", "r0 · pyper:trainer:0:0 · thread 12",
    "r1 · python3 77 · thread 78 (pt_autograd_0)", "r1 · python3 77 · thread 79 (pt_autograd_1)",
    "same name", "same name", "\x1b[31mred\x1b[0m · thread 5",
]


@pytest.mark.parametrize("width", [12, 16, 20, 23, 28, 35, 47])
def test_labels_fit_are_marked_when_shortened_and_never_alike(width):
    lanes = [L(n) for n in NAMES]
    got = lane_labels(lanes, width)
    assert all(len(t) <= width for t in got), got
    assert len(set(got)) == len(got), got  # the two "same name" lanes are numbered
    for lane, t in zip(lanes, got):
        assert "\x1b" not in t
        if len(lane.name) <= width and "\x1b" not in lane.name and lane.name != "same name":
            assert t == lane.name
        elif lane.name != "same name" and "\x1b" not in lane.name:
            # shortened: an ellipsis, or words abbreviated by a known rule
            assert ELLIPSIS in t or len(t) < len(lane.name)
        ids = _ids(lane.name)
        if ids and width >= 20:  # a CPU lane keeps its pid and tid whole
            assert all(i in t for i in ids), (lane.name, t)


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/traces")
@pytest.mark.parametrize("name", ["hta_nccl_data.json.gz", "deepseek_train.json",
                                  "tracelens_mi300_rccl.json.gz",
                                  "kineto2021_resnet50.pt.trace.json.gz"])
def test_real_traces_lanes_read_apart_at_the_narrowest_column(name):
    from tracetui.trace import LANE_CPU, load

    tr = load(str(SHARED / name))
    got = lane_labels(tr.lanes, 23)
    assert len(set(got)) == len(got), got
    for ln, t in zip(tr.lanes, got):
        assert len(t) <= 23
        if ln.kind == LANE_CPU and isinstance(ln.tid, int) and isinstance(ln.pid, int):
            assert str(ln.tid) in t, (ln.name, t)
    assert sum(ln.kind == LANE_CPU for ln in tr.lanes) >= 2


def test_middle_keeps_both_ends():
    assert middle("abcdefghij", 10) == "abcdefghij"
    assert middle("abcdefghij", 5) == "ab…ij"
    assert middle("abcdefghij", 1) == "…"
    assert lane_label(L("GPU 3 · stream 21 · annotations"), 19) == "GPU3 · s21 · annot."
    assert lane_label(L("GPU 3 · stream 21 · annotations"), 17) == "GPU3 s21 annot."


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/traces")
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
async def test_every_lane_label_on_screen_is_distinct(size):
    """On HTA's NCCL trace (three threads of one process, streams with annotation lanes)
    the label column shows every lane apart, at every terminal size; } widens it."""
    from tracetui.app.app import TraceApp

    from conftest import loaded

    app = TraceApp(str(SHARED / "hta_nccl_data.json.gz"))
    async with app.run_test(size=size) as pilot:
        await loaded(app, pilot)
        tl = app.timeline
        lw = tl.label_width
        assert lw == min(24 + max(size[0] - 100, 0) // 4, 48)
        top = [r for r, row in enumerate(tl.rows) if row.depth == 0 and row.lane >= 0]
        shown = [tl.lane_label(tl.rows[r].lane) for r in top]
        assert len(set(shown)) == len(shown) == len(app.trace.lanes), shown
        assert all(len(t) < lw for t in shown)
        await pilot.press("right_curly_bracket")
        assert tl.label_width == min(lw + 4, max(tl.size.width // 2, 12))


@pytest.mark.parametrize("width", [20, 23, 30, 38, 47])
def test_labels_of_wide_characters_fit_their_cells_and_stay_apart(width):
    """Thread names in CJK or with emoji take two cells a character: still within the
    column, still distinct, the pid and tid kept."""
    from tracetui.textutil import cell_width

    lanes = [L("进程进程进程进程进程 1 · thread 11 (线程🔥主线程🔥主线程🔥主线程🔥主)"),
             L("进程进程进程进程进程 1 · thread 12 (线程🔥主线程🔥主线程🔥主线程🔥副)"),
             L("GPU 0 · stream 7")]
    got = lane_labels(lanes, width)
    assert all(cell_width(t) <= width for t in got), got
    assert len(set(got)) == 3, got
    assert "11" in got[0] and "12" in got[1], got


def test_cell_width_counts_wide_and_combining_characters():
    from tracetui.textutil import cell_width

    assert cell_width("abc") == 3
    assert cell_width("漢字") == 4 and cell_width("🔥") == 2
    assert cell_width("e\u0301") == 1  # e and a combining acute accent
