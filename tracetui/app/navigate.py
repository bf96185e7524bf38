"""Getting around the timeline: find, go to a time, follow flows, jump to exposed
communication and idle gaps, mark a range (its figures worked out in a worker), and go back
to the timeline at what a view chose.

Mixed into :class:`~tracetui.app.app.TraceApp`; the views ask for the jumps with the
messages of :mod:`~tracetui.app.messages`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from rich.text import Text
from textual.widgets import Input

from ..analysis.kernels import short_name
from ..analysis.memory import range_memory
from ..analysis.rules import NOT_GPU
from ..analysis.window import OverlapModel, annotation_occurrences, range_stats
from ..textutil import fmt_time, parse_window, safe_text
from ..trace import LANE_GPU
from .describe import describe_exposed, describe_gap, describe_range
from .messages import GotoAnnotation, GotoRange, GotoRank, GotoRows


class Navigation:
    """Search, jumps and the marked range."""

    def _init_navigation(self: Any) -> None:
        self._prompt: Input | None = None  # the find or go-to box while it is open
        # what x/X (an exposed stretch) or i/I (an idle gap) went to: shown at the top of the
        # detail pane while its span stays the marked range
        self._note = Text()
        self._note_range: tuple[int, int] | None = None
        # the exposed stretch shown (index, largest first) and the gap (lane, index largest
        # first), each with the aggregates it indexes: a new trace (the load's end) restarts
        self._stretch: tuple[Any, int] = (None, -1)
        self._gap: tuple[Any, int, int] = (None, -1, -1)

    # ------------------------------------------------------------ slices and flows
    def action_step(self: Any, direction: int) -> None:
        self.timeline.step_slice(int(direction))

    def action_fit(self: Any) -> None:
        tl, tr = self.timeline, self.session.trace
        if tr is not None and tl.selected >= 0:
            s = int(tr.start[tl.selected])
            tl.fit(s, s + int(tr.dur[tl.selected]))

    def action_flow(self: Any, direction: int) -> None:
        tl, tr = self.timeline, self.session.trace
        if tr is None or tl.selected < 0:
            return
        i = tl.selected
        an = self.session.shown_analyses()
        graph = an.graphs.of_kernel(i) if an is not None else None
        if int(direction) > 0 and an is not None:
            g = an.graphs.of_launch(i)
            if g is not None:  # a graph launch: to its first kernel
                tl.select(int(g.kernels[0]), reveal=True)
                return
            if graph is not None:  # a graph's kernel: on to the next one
                g, pos = graph
                if pos + 1 < len(g.kernels):
                    tl.select(int(g.kernels[pos + 1]), reveal=True)
                else:
                    self.notify(f"the last of the graph's {len(g.kernels):,} kernels",
                                timeout=2, markup=False)
                return
        if int(direction) < 0 and graph is not None and graph[0].launch < 0:
            self.notify("this graph was launched before the trace began", timeout=3,
                        markup=False)
            return
        if int(direction) > 0:
            nxt = tr.launches(i)
            nxt = nxt if len(nxt) else tr.flows_from(i)
            target = int(nxt[0]) if len(nxt) else -1
        else:
            target = tr.launched_by(i)
            if target < 0:
                prev = tr.flows_to(i)
                target = int(prev[0]) if len(prev) else -1
        if target >= 0:
            tl.select(target, reveal=True)
        else:
            self.notify("no flow from this slice", timeout=2, markup=False)

    # ------------------------------------------------------------ prompts: find, go to
    def action_search(self: Any) -> None:
        self._open_prompt(self.query_one("#search", Input))

    def action_goto_time(self: Any) -> None:
        box = self.query_one("#goto", Input)
        box.value = ""
        self._open_prompt(box)

    def _open_prompt(self: Any, box: Input) -> None:
        """Show a prompt (find, go to) and give it the keys: those typed before it has the
        focus (a paste, fast typing: "/combine⏎" in one burst) go into it, not to the
        timeline's commands (o would open a view and e write a file)."""
        box.add_class("visible")
        self._prompt = box
        box.focus()

    def _close_prompts(self: Any) -> None:
        self._prompt = None
        for box in self.query("#search, #goto").results(Input):
            box.remove_class("visible")

    def on_input_submitted(self: Any, event: Input.Submitted) -> None:
        if event.input.id not in ("search", "goto"):
            return
        self._close_prompts()
        self.timeline.focus()
        if event.input.id == "goto":
            self.goto_time(event.value)
        else:
            self.find(event.value)

    def goto_time(self: Any, text: str) -> bool:
        """``g``: the view centred on a typed time (its zoom kept), or on a typed range."""
        tl, tr = self.timeline, self.session.trace
        if tr is None or not text.strip():
            return False
        try:
            a, b = parse_window(text)
        except ValueError as e:
            self.notify(safe_text(e, 100), severity="error", timeout=4, markup=False)
            return False
        where = (fmt_time(a) if a else "0") if b is None else \
            f"{fmt_time(a) if a else '0'} – {fmt_time(b)}"
        if a > tr.end_ns or (b if b is not None else a) < 0:  # nothing there: stay
            self.notify(f"{where} is outside the trace (0 – {fmt_time(tr.end_ns)})",
                        severity="warning", timeout=4, markup=False)
            return False
        if b is None:
            half = (tl.t1 - tl.t0) // 2
            tl.set_window(a - half, a - half + 2 * half)
        else:
            tl.set_window(a, b)
        return True

    def find(self: Any, query: str) -> int:
        """Select the first slice whose name matches; return the number of matches."""
        tr, tl = self.session.trace, self.timeline
        if tr is None:
            return 0
        if not query.strip():  # an empty search clears the hits
            self.clear_matches()
            return 0
        if len(query) > 2 and query.startswith("/") and query.endswith("/"):
            try:
                rx = re.compile(query[1:-1], re.IGNORECASE)
            except re.error as e:
                self.notify(f"bad regex: {safe_text(e, 80)}", severity="error", markup=False)
                return 0
            ids = tr.strings.ids_matching(lambda s: bool(rx.search(s)))
        else:
            q = query.lower()
            ids = tr.strings.ids_matching(lambda s: q in s.lower())
        hit = np.zeros(len(tr.strings), bool)  # a lookup table by name id: one gather
        hit[ids] = True
        rows = np.flatnonzero(hit[tr.name])  # in row order; stepped through by time
        tl.matches = rows
        self._legend()
        if not len(rows):
            self.notify(f"no slice matches {safe_text(query, 60)}", timeout=3, markup=False)
            tl.refresh()
            return 0
        tl.select(self._best_match(rows, ids, query), reveal=True)
        self.notify(f"{len(rows):,} match{'' if len(rows) == 1 else 'es'} · n / N to step",
                    timeout=3, markup=False)
        return len(rows)

    def clear_matches(self: Any) -> None:
        tl = self.timeline
        tl.matches = np.zeros(0, np.int64)
        tl.refresh()
        self._legend()

    def _best_match(self: Any, rows: np.ndarray, ids: np.ndarray, query: str) -> int:
        """Where a search starts, from the view's start on: GPU work whose own name (the
        last part of its C++ name) is the query, then any GPU work, then the first match
        (the last one if none is left in the view). "dispatch" names DeepEP's dispatch
        kernel, its layout kernel and the CPU annotation around the launch; the dispatch
        kernel is what one is after."""
        tr, tl, classes = self.session.trace, self.timeline, self.session.classes
        assert tr is not None
        t0 = tl.t0
        if tl.first_match(after=t0) < 0:  # nothing left after the view: the last match
            return int(rows[np.argmax(tr.start[rows])])
        if classes is not None:
            q = query.strip("/").lower()
            own_ids = [i for i in np.asarray(ids).tolist()
                       if short_name(tr.strings[i]).rsplit("::", 1)[-1].lower().startswith(q)]
            on_gpu = classes[rows] != NOT_GPU
            own = np.zeros(len(tr.strings), bool)
            own[own_ids] = True
            for pick in (on_gpu & own[tr.name[rows]], on_gpu):
                got = tl.first_match(pick, after=t0)
                if got >= 0:
                    return got
        return tl.first_match(after=t0)

    def action_match(self: Any, direction: int) -> None:
        tl = self.timeline
        row = tl.step_match(int(direction))
        if row >= 0:
            tl.select(row, reveal=True)

    # ------------------------------------------------------------ back from a view
    def _main_screen(self: Any) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def on_goto_rows(self: Any, message: GotoRows) -> None:
        self.goto_rows(message.rows, message.index)

    def on_goto_range(self: Any, message: GotoRange) -> None:
        self.goto_range(message.t0, message.t1)

    def on_goto_annotation(self: Any, message: GotoAnnotation) -> None:
        self.goto_annotation(message.name, message.source)

    def on_goto_rank(self: Any, message: GotoRank) -> None:
        self.goto_rank(message.rank)

    def goto_rows(self: Any, rows: np.ndarray, index: int) -> None:
        """Back to the timeline with slice ``rows[index]`` selected and in view; ``rows``
        (in time order) become the matches that n / N step through."""
        self._main_screen()
        if not len(rows):
            return
        tl = self.timeline
        row = int(rows[index])
        tl.matches = np.asarray(rows, np.int64)
        tl.select(row, reveal=True)
        tr = self.session.trace
        if tr is not None:  # in view and wide enough to read
            s = int(tr.start[row])
            e = s + int(tr.dur[row])
            if (e - s) * 8 < (tl.t1 - tl.t0):
                tl.fit(s, e)

    def goto_range(self: Any, t0: int, t1: int) -> None:
        """Back to the timeline showing [t0, t1), marked as the range."""
        self._main_screen()
        self.timeline.fit(int(t0), int(t1))
        self.set_range((int(t0), int(t1)))

    def goto_annotation(self: Any, name: str, source: str) -> None:
        """Back to the timeline at the first occurrence of an annotation, selected and marked
        as the range; n / N step through its occurrences."""
        tr = self.session.trace
        if tr is None:
            return
        rows = annotation_occurrences(tr, name, source)
        if not len(rows):
            self.notify("no occurrence left in view", timeout=3, markup=False)
            return
        self.goto_rows(rows, 0)
        r = int(rows[0])
        self.timeline.fit(int(tr.start[r]), int(tr.start[r] + tr.dur[r]))
        self.set_range((int(tr.start[r]), int(tr.start[r] + tr.dur[r])))

    def goto_rank(self: Any, rank: int) -> None:
        """The timeline with the cursor on the first lane of ``rank``; a rank whose
        timeline is not held (ranks opened on demand) is loaded first."""
        holds = self.session.holds
        if holds is not None:
            if rank not in holds.held:
                self.open_rank(rank)
                return
            if rank not in (self.session.lane_ranks() or []):
                self._goto_pending = rank  # held a moment ago: its timeline is coming
                return
            holds.ask([rank])  # the most recently asked for: the last to be let go
            self._goto_pending = None
        self._main_screen()
        ranks = self.session.lane_ranks()
        if ranks is None or rank not in ranks:
            return
        self.timeline.cursor_to_lane(ranks.index(rank))

    # ------------------------------------------------------------ the marked range
    def action_mark(self: Any) -> None:
        """The selected slice's span, or with nothing selected the visible window."""
        tl, tr = self.timeline, self.session.trace
        if tr is None:
            return
        if tl.selected >= 0:
            s = int(tr.start[tl.selected])
            self.set_range((s, s + max(int(tr.dur[tl.selected]), 1)))
        else:
            self.set_range((tl.t0, tl.t1))

    def action_widen(self: Any, side: int) -> None:
        tl, rng = self.timeline, self.session.range
        if rng is None:
            self.action_mark()
            return
        step = max((tl.t1 - tl.t0) // 20, 1)
        a, b = rng
        self.set_range((a - step, b) if int(side) < 0 else (a, b + step))

    def action_clear_range(self: Any) -> None:
        if self.session.range is not None:
            self.set_range(None)

    def set_range(self: Any, rng: tuple[int, int] | None) -> None:
        session = self.session
        rng = session.clamp(rng) if rng is not None else None
        session.range = rng
        self.timeline.set_range(rng)
        if rng is None:
            session.range_stats = None
            self._detail_range = Text()
            self._update_detail()
            return
        self._detail_range = Text(f"range +{fmt_time(rng[0])} → +{fmt_time(rng[1])}  "
                                  "computing…", style="bold")
        self._range_first = True
        self._update_detail()
        self.run_worker(lambda: self._range_figures(rng), thread=True, exclusive=True,
                        group="range", name="range", exit_on_error=False)

    def _range_figures(self: Any, rng: tuple[int, int]) -> None:
        session = self.session
        tr, classes = session.trace, session.classes
        if tr is None or classes is None:
            return
        an = session.shown_analyses()
        model = an.model if an is not None else OverlapModel(tr, classes)
        stats = range_stats(tr, classes, model, rng[0], rng[1])
        curves = session.memory()
        if curves:  # memory at its ends, and the largest allocations inside it
            stats["memory"] = range_memory(curves, session.allocations(make=True), rng[0],
                                           rng[1])
        self.call_from_thread(self._show_range, rng, stats)

    def _show_range(self: Any, rng: tuple[int, int], stats: dict[str, Any]) -> None:
        session = self.session
        if session.range != rng:
            return  # a newer range is on its way
        session.range_stats = stats
        pane = self.query_one("#detail")
        width = pane.size.width - 2 if pane.size.width > 10 else 42
        self._detail_range = describe_range(stats, width=max(width, 30))
        self._update_detail()

    # ------------------------------------------------------------ exposed, gaps
    def action_exposed(self: Any, in_time: bool = False) -> None:
        """The next exposed stretch (communication while the GPU computes nothing), largest
        first, or (``in_time``) the next one after it in time: its kernel selected, the
        stretch marked as the range, in view."""
        an = self.get_analyses()
        if an is None:
            return
        ex = an.exposed
        if not len(ex):
            self.notify("no exposed communication: every communication kernel runs beside "
                        "computation (or there is none)", timeout=4, markup=False)
            return
        cur = self._stretch[1] if self._stretch[0] is an else -1
        if in_time:
            order = ex.time_order()
            if cur >= 0:
                pos = int(np.flatnonzero(order == cur)[0]) + 1
            else:  # from the view's start on
                pos = int(np.searchsorted(ex.start[order], self.timeline.t0))
            k = int(order[pos % len(order)])
        else:
            k = (cur + 1) % len(ex)
        self._stretch = (an, k)
        d = ex.detail(k)
        self._goto_span(d["start_ns"], d["end_ns"], d["kernel_row"],
                        describe_exposed(an.trace, d, k, len(ex)))

    def action_gap(self: Any, in_time: bool = False) -> None:
        """The next idle gap of the cursor's GPU stream, largest first, or (``in_time``) the
        next one in time: the kernel that ends it selected, the gap marked as the range."""
        an = self.get_analyses()
        tr = self.session.trace
        if an is None or tr is None:
            return
        lane = self._stream_lane()
        if lane < 0:
            self.notify("i: put the cursor on a GPU stream's lane (or select a kernel)",
                        timeout=4, markup=False)
            return
        sg = an.gaps(lane)
        if not len(sg):
            self.notify(f"{safe_text(tr.lanes[lane].name, 60)} has no idle gap", timeout=3,
                        markup=False)
            return
        largest = sg.largest()
        cur = self._gap[2] if self._gap[:2] == (an, lane) else -1
        if in_time:
            if cur >= 0:
                i = int(largest[cur]) + 1
            else:
                i = int(np.searchsorted(sg.start, self.timeline.t0))
            i %= len(sg)
            cur = int(np.flatnonzero(largest == i)[0])
        else:
            cur = (cur + 1) % len(sg)
            i = int(largest[cur])
        self._gap = (an, lane, cur)
        g0, g1, nxt = int(sg.start[i]), int(sg.end[i]), int(sg.next_row[i])
        note = describe_gap(tr, lane, g0, g1, int(sg.kind[i]), nxt, int(sg.launch[i]),
                            cur, len(sg))
        self._goto_span(g0, g1, nxt, note)

    def _stream_lane(self: Any) -> int:
        """The GPU stream lane under the cursor (a stream's annotation lane: that stream),
        else the selected slice's, else -1."""
        tr, tl = self.session.trace, self.timeline
        if tr is None:
            return -1
        cands = []
        if tl.rows and tl.rows[tl.cursor].lane >= 0:
            cands.append(tr.lanes[tl.rows[tl.cursor].lane])
        if tl.selected >= 0:
            cands.append(tr.lane_of(tl.selected))
        for ln in cands:
            if ln.kind == LANE_GPU:
                return ln.index
            for other in tr.lanes:  # an annotation lane: its stream
                if other.kind == LANE_GPU and other.device == ln.device \
                        and other.stream == ln.stream and ln.device >= 0:
                    return other.index
        return -1

    def _goto_span(self: Any, t0: int, t1: int, row: int, note: Text) -> None:
        """Select ``row``, show [t0, t1) with as much again on each side, mark it as the
        range, and put ``note`` at the top of the detail pane."""
        tl = self.timeline
        self._note, self._note_range = note, None
        if row >= 0:
            tl.select(row)
        pad = max(t1 - t0, 1000)
        tl.set_window(t0 - pad, t1 + pad)
        self.set_range((t0, t1))
        self._note_range = self.session.range
        self._update_detail()
        self.query_one("#detail").remove_class("hidden")
