"""The phase map alone and the phase view built from plain values, in a bare App: the map's
lines drawn by ``render_line`` against the blocks' own times, and what the view asks of the
app arriving as messages (the view holds no reference to the app)."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from tracetui.app.messages import GotoAnnotation, GotoRange, ShowUnattributed
from tracetui.app.phaseview import LABEL, PhaseMap, PhaseScreen
from tracetui.app.themes import Palette

PAL = Palette()


def block(name: str, group: str, cls: str, start_us: float, end_us: float, device: int = 0,
          sms: int | None = None) -> dict[str, Any]:
    return {"name": name, "group": group, "class": cls, "device": device,
            "start_us": start_us, "end_us": end_us, "busy_us": end_us - start_us,
            "exposed_us": None, "kernels": 3, "sms": sms, "sms_peak": sms, "depth": 0}


# DeepSeek's decode diagram in small: two micro-batches' computation back to back, the first
# one's dispatch hidden under the second's attention
BLOCKS = [block("attn", "mb0", "comp", 0, 10, sms=132),
          block("moe", "mb1", "comp", 10, 20, sms=132),
          block("dispatch", "mb0", "comm", 5, 15, sms=20)]


class One(App[None]):
    def __init__(self, widget: Any) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def covering(blocks: list[dict[str, Any]], cls: str, t_ns: float) -> dict[str, Any] | None:
    """The block of row ``cls`` whose span holds instant ``t_ns`` (the last to start)."""
    got = [b for b in blocks if b["class"] == cls
           and b["start_us"] * 1000 <= t_ns < b["end_us"] * 1000]
    return max(got, key=lambda b: b["start_us"]) if got else None


async def test_the_phase_map_puts_each_block_where_its_times_are():
    plot = 40
    pm = PhaseMap(BLOCKS, 0, 20_000, PAL, 20_000)
    async with One(pm).run_test(size=(LABEL + plot, 8)) as pilot:
        await pilot.pause()
        assert pm.size.width == LABEL + plot
        groups = sorted({b["group"] for b in BLOCKS})
        for y, cls in ((1, "comp"), (2, "comm")):
            segs = [s for s in pm.render_line(y) if s.text]
            text = "".join(s.text for s in segs)
            label = text[:LABEL]
            assert label.startswith("Computation" if cls == "comp" else "Communication")
            assert f"({132 if cls == 'comp' else 20} SMs)" in label
            cells = [(ch, s.style) for s in segs for ch in s.text][LABEL:LABEL + plot]
            assert len(cells) == plot
            for c, (ch, style) in enumerate(cells):
                mid = (c + 0.5) * 20_000 / plot  # each cell's middle, in ns
                b = covering(BLOCKS, cls, mid)
                if b is None:
                    assert style.bgcolor is None, (cls, c)
                    continue
                want = pm.colour[b["group"]]
                assert style.bgcolor is not None and \
                    style.bgcolor.name.lower() == want.lower(), (cls, c, b["name"])
            # each block's name right after the bar at its first cell
            for b in (b for b in BLOCKS if b["class"] == cls):
                c0 = int(b["start_us"] * 1000 * plot // 20_000)
                assert "".join(ch for ch, _ in cells[c0:c0 + 1 + len(b["name"])]) \
                    == "▏" + b["name"]
        # one colour per micro-batch, from the palette
        assert set(pm.colour) == set(groups) and len(set(pm.colour.values())) == len(groups)
        # the current block is drawn reversed, the others not
        cur = pm.current()
        assert cur is not None and cur["name"] == "attn"
        segs = [s for s in pm.render_line(1) if s.text]
        cells = [(ch, s.style) for s in segs for ch in s.text][LABEL:]
        assert all(st.reverse for _, st in cells[:20]) and not any(st.reverse
                                                                    for _, st in cells[20:])


async def test_the_phase_map_keeps_the_current_block_among_many_per_cell():
    many = [block(f"b{i}", f"g{i % 2}", "comp", i, i + 1) for i in range(2000)]
    pm = PhaseMap(many, 0, 2_000_000, PAL, 2_000_000)
    async with One(pm).run_test(size=(LABEL + 40, 6)) as pilot:
        await pilot.pause()
        pm.cur = next(i for i, b in enumerate(pm.blocks) if b["name"] == "b1234")
        line = [s for s in pm.render_line(1) if s.text]
        reversed_cells = [c for c, (ch, st) in
                          enumerate((ch, s.style) for s in line for ch in s.text)
                          if c >= LABEL and st.reverse]
        # 2,000 blocks in 40 cells: one shows per cell, and the current one is still drawn
        assert reversed_cells == [LABEL + 1234 * 40 // 2000]


class Recorder(App[None]):
    """A bare app that shows one screen and keeps the messages it gets from it."""

    def __init__(self, screen: Any) -> None:
        super().__init__()
        self.view = screen
        self.got: list[Any] = []

    def on_mount(self) -> None:
        self.push_screen(self.view)

    def on_goto_range(self, m: GotoRange) -> None:
        self.got.append(m)

    def on_goto_annotation(self, m: GotoAnnotation) -> None:
        self.got.append(m)

    def on_show_unattributed(self, m: ShowUnattributed) -> None:
        self.got.append(m)


async def test_the_phase_view_asks_the_app_in_messages():
    figures = {"attn": {"count": 1, "total_us": 10.0}, "(no phase)": {"count": 0}}
    screen = PhaseScreen(BLOCKS, figures, 0, 20_000, PAL, 20_000)
    app = Recorder(screen)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("right", "enter")  # the next block by start: dispatch, 5-15 µs
        await pilot.pause()
        assert [type(m) for m in app.got] == [GotoRange]
        assert (app.got[0].t0, app.got[0].t1) == (5_000, 15_000)
        await pilot.press("tab")  # the table: ⏎ on a phase goes to its occurrences
        await pilot.pause()
        from tracetui.app.grid import Grid

        grid = screen.query_one(Grid)
        rows = screen.rows
        for i, row in enumerate(rows):
            grid.post_message(Grid.Chosen(grid, i))
            await pilot.pause()
            m = app.got[-1]
            if row["source"] == "none":
                assert isinstance(m, ShowUnattributed)
            elif row["source"] == "kernels":
                assert isinstance(m, GotoRange)
            else:
                assert isinstance(m, GotoAnnotation) and m.name == row["name"]
        assert len(app.got) == 1 + len(rows)
