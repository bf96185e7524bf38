"""``tracetui TRACE``: the trace as lanes on one time axis, drawn while the file loads."""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from typing import Any, Iterable

import numpy as np
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from ..analysis.rules import (CLASS_NAMES, COMM, COMP, DEFAULT_RULES, MEM, NOT_GPU, Rule,
                              classify, in_flight_patterns)
from ..textutil import safe_text
from ..trace import LANE_GPU, Loader, Progress, Trace, TraceError
from ..trace.loader import EarlyLoad
from ..trace.source import relabel, shown_path
from .themes import DEFAULT_THEME, load_theme
from ..analysis.annotations import annotation_table, phase_figures
from ..analysis.attribution import (NO_PHASE, DeviceComp, Launches, LaunchPhases, launch_summary,
                                    phase_occurrences)
from ..analysis.exposed import ExposedStretches
from ..analysis.graphs import Graphs
from ..analysis.inflight import in_flight_spans
from ..analysis.phases import DEFAULT_GROUPS, phase_blocks
from ..analysis.streams import GAP_KINDS, KERNEL_WAIT_US, StreamGaps, kernel_wait
from ..analysis.kernels import group_by_short_name, kernel_table, short_name
from ..analysis.overlap import device_unions
from ..analysis.window import OverlapModel, annotation_occurrences, range_stats
from ..export import csv_text, export_name, write_new
from ..textutil import fmt_time, middle, parse_window
from .detail import DetailPane
from .helpscreen import HelpScreen, palette_rows
from .keybar import KeyBar
from .timeline import CLASS_GLYPH, OTHER_GLYPH, Timeline
from .views import InstancesScreen, KernelScreen, OverlapScreen

SNAPSHOT_EVERY_S = 0.3
FULL_GC_EVERY = 100  # middle-generation collections between full ones, once loaded (was 10)
# A snapshot re-sorts everything loaded so far into a copy: past a few million events the
# view keeps the last one (the trace's beginning) until the load ends, or a 4 GB trace would
# load 1.7x slower and peak at 3x the memory (measured: 148 s and 3.4 GB against 89 s and
# 1.1 GB headless).
SNAPSHOT_MAX_EVENTS = 2_000_000


ALIGN_NAMES = {"start": "each rank's start", "step": "the first ProfilerStep",
               "clock": "the recorded clock"}

#: The smallest terminal the layout is made for (columns, rows).
MIN_SIZE = (60, 16)


class TooSmallScreen(Screen[None]):
    """Shown instead of the app while the terminal is smaller than :data:`MIN_SIZE`."""

    BINDINGS = [Binding("q,ctrl+c", "app.quit", "quit")]
    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; }
    TooSmallScreen Static { width: auto; height: auto; text-align: center; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.show(self.app.size.width, self.app.size.height)

    def show(self, width: int, height: int) -> None:
        self.query_one("#too-small", Static).update(
            f"terminal too small: {width}x{height}\nneeds {MIN_SIZE[0]}x{MIN_SIZE[1]}\n"
            "(q quits)", layout=True)


class TraceApp(App[None]):
    TITLE = "tracetui"
    HELP_TITLE = "timeline"
    HELP_NOTES = [("esc", "clears the search's hits and the marked range (so does an "
                          "empty search); the selection stays"),
                  ("mouse", "the wheel zooms, a click selects")]
    CSS = """
    #status { height: 1; background: $boost; color: $text; }
    #legend { height: 1; color: $text-muted; }
    #main { height: 1fr; }
    Timeline { width: 1fr; height: 1fr; }
    #detail { width: 44; border-left: solid $primary; padding: 0 1; }
    #detail.bottom { dock: bottom; width: 100%; height: 9; border-left: none;
                     border-top: solid $primary; }
    #detail.hidden { display: none; }
    #search, #goto { dock: bottom; display: none; }
    #search.visible, #goto.visible { display: block; }
    """
    BINDINGS = [
        Binding("w", "zoom(0.5)", "zoom in", id="zoom_in"),
        Binding("s", "zoom(2)", "zoom out", id="zoom_out"),
        Binding("a", "pan(-0.2)", "pan left", id="pan_left"),
        Binding("d", "pan(0.2)", "pan right", id="pan_right"),
        Binding("A", "pan(-0.8)", "pan left (fast)", show=False, id="pan_left_fast"),
        Binding("D", "pan(0.8)", "pan right (fast)", show=False, id="pan_right_fast"),
        Binding("up", "row(-1)", "lane up", show=False, id="lane_up"),
        Binding("down,j", "row(1)", "lane down", show=False, id="lane_down"),
        Binding("k", "kernels", "kernel table", id="kernels"),
        Binding("o", "overlap", "overlap view", id="overlap"),
        Binding("p", "phases", "phase view", id="phases"),
        Binding("O", "overlap_row", "overlap rows on the timeline", show=False, id="overlap_rows"),
        Binding("m", "mark", "mark range", id="mark_range"),
        Binding("x", "exposed", "exposed comm, largest first", id="exposed"),
        Binding("X", "exposed(True)", "exposed comm, in time order", show=False,
                id="exposed_in_time"),
        Binding("i", "gap", "stream's idle gaps, largest first", show=False, id="gaps"),
        Binding("I", "gap(True)", "stream's idle gaps, in time order", show=False,
                id="gaps_in_time"),
        Binding("g", "goto_time", "go to a time (12.5ms, 3-4ms)", show=False, id="go_to"),
        Binding("P", "python", "Python frames: fold / show", show=False, id="python_frames"),
        Binding("shift+left", "widen(-1)", "widen range left", show=False, id="widen_left"),
        Binding("shift+right", "widen(1)", "widen range right", show=False, id="widen_right"),
        Binding("e", "export", "export CSV", show=False, id="export"),
        Binding("ctrl+s", "screenshot_svg", "save SVG screenshot", show=False, id="screenshot"),
        Binding("full_stop", "step(1)", "next slice", key_display=".", id="next_slice"),
        Binding("comma", "step(-1)", "previous slice", key_display=",", show=False,
                id="previous_slice"),
        Binding("f", "fit", "fit selection", show=False, id="fit"),
        Binding("0,z", "reset", "reset zoom", show=False, id="reset_zoom"),
        Binding("right_square_bracket", "flow(1)",
                "follow flow (to the kernel; in a CUDA graph, its next kernel)",
                key_display="]", show=False, id="flow_forward"),
        Binding("left_square_bracket", "flow(-1)", "follow flow (to the launch)",
                key_display="[", show=False, id="flow_back"),
        Binding("slash", "search", "find", key_display="/", id="find"),
        Binding("n", "match(1)", "next match", show=False, id="next_match"),
        Binding("N", "match(-1)", "previous match", show=False, id="previous_match"),
        Binding("enter", "detail", "detail", id="detail"),
        Binding("c", "collapse", "collapse/expand lane", show=False, id="collapse"),
        Binding("C", "collapse_rank", "collapse/expand the rank's lanes", show=False,
                id="collapse_rank"),
        Binding("R", "ranks", "rank view", show=False, id="ranks"),
        Binding("T", "align", "align ranks: start, first step, clock", show=False, id="align"),
        Binding("plus,equals_sign", "detail_size(4)", "wider detail", key_display="+",
                show=False, id="wider_detail"),
        Binding("minus", "detail_size(-4)", "narrower detail", key_display="-", show=False,
                id="narrower_detail"),
        Binding("right_curly_bracket", "label_size(4)", "wider lane labels", key_display="}",
                show=False, id="wider_labels"),
        Binding("left_curly_bracket", "label_size(-4)", "narrower lane labels",
                key_display="{", show=False, id="narrower_labels"),
        Binding("question_mark", "help", "help", key_display="?", id="help"),
        Binding("ctrl+c", "cancel_load", "stop loading", show=False, id="cancel_load"),
        Binding("q", "quit", "quit", id="quit"),
    ]

    def __init__(self, path: str, rules: list[Rule] | None = None,
                 theme: str = DEFAULT_THEME, early: "EarlyLoad | None" = None,
                 ranks: list[str] | None = None, align: str = "start",
                 phase_groups: Iterable[str] | None = None,
                 keymap: dict[str, str] | None = None) -> None:
        """``ranks``: several trace files shown as one timeline, lanes grouped by rank
        (``path`` is then only the name shown), on the time origin ``align``."""
        super().__init__()
        #: the config's [keys]: binding id -> keys (keys.load_keymap)
        self.keymap = dict(keymap or {})
        if self.keymap:
            self.set_keymap(self.keymap)
        self.early = early
        self.rank_files = list(ranks) if ranks else None
        self.align = align
        self.rank_traces: list[tuple[int, Trace]] = []
        self.rank_summary: dict[str, Any] | None = None
        self._ranks_cancel = threading.Event()
        self.palette, textual_theme = load_theme(theme)
        self.theme = textual_theme
        self.path = path
        self.rules = list(rules) if rules is not None else list(DEFAULT_RULES)
        self.phase_groups = tuple(phase_groups) if phase_groups else DEFAULT_GROUPS
        self.trace: Trace | None = None
        self.loader: Loader | None = None
        self.progress: Progress | None = None
        self.loaded = False
        self.error: str | None = None
        self._detail_seen = False
        self.analyses: Analyses | None = None
        self.range: tuple[int, int] | None = None
        self.range_stats: dict[str, Any] | None = None
        self._detail_slice = Text()
        self._detail_range = Text()
        self._range_first = False
        # what x/X (an exposed stretch) or g/G (an idle gap) went to: shown at the top of the
        # detail pane while its span stays the marked range
        self._note = Text()
        self._note_range: tuple[int, int] | None = None
        # the exposed stretch shown (index, largest first) and the gap (lane, index largest
        # first), each with the aggregates it indexes: a new trace (the load's end) restarts
        self._stretch: tuple[Any, int] = (None, -1)
        self._gap: tuple[Any, int, int] = (None, -1, -1)
        self._views: dict[str, tuple[tuple[str, int], Any]] = {}
        self._prompt: Input | None = None  # the find or go-to box while it is open
        self.views_ready = False  # the views are built off screen (after the aggregates)
        self._stale_views: list[Any] = []

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="main"):
            yield Timeline(self.palette, on_select=self.show_selection, id="timeline")
            yield DetailPane(id="detail", classes="hidden")
        yield Static(id="legend")
        yield Input(placeholder="find: substring or /regex/ over all names", id="search")
        yield Input(placeholder="go to: a time from the start (12.5ms, 830us, 1.2s) or a "
                                "range (3ms-4.5ms); a bare number is in ms", id="goto")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(Timeline).focus()
        self._status()
        self._place_detail()
        self.load()
        self._check_size(self.size.width, self.size.height)

    def on_resize(self, event: Any) -> None:
        self._place_detail(event.size.width)
        self._check_size(event.size.width, event.size.height)
        if self.trace is not None:
            self._legend(event.size.width)  # its long or short words

    def _check_size(self, width: int, height: int) -> None:
        """Below MIN_SIZE a notice takes the screen instead of a broken layout; it goes
        away by itself when the terminal is large enough again."""
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        shown = isinstance(self.screen, TooSmallScreen)
        if small and not shown:
            self.push_screen(TooSmallScreen())
        elif not small and shown:
            self.pop_screen()
        elif small and shown:
            self.screen.show(width, height)

    def _place_detail(self, width: int | None = None) -> None:
        """Beside the timeline on wide terminals, under it on narrow ones (there the text
        leads with what a few rows can show: see :meth:`describe`)."""
        width = self.size.width if width is None else width
        pane = self.query_one("#detail")
        bottom = width < 110
        if bottom != pane.has_class("bottom"):
            pane.set_class(bottom, "bottom")
            try:
                row = self.timeline.selected
            except Exception:  # noqa: BLE001 - before the timeline is mounted
                row = -1
            if row >= 0:
                self.show_selection(row)

    # ---------------------------------------------------------------- loading
    @work(thread=True, exclusive=True, name="load", exit_on_error=False)
    def load(self) -> None:
        next_at = [0.0]

        def progress(p: Progress) -> None:
            self.call_from_thread(self._on_progress, p)
            now = time.perf_counter()
            if not p.done and now >= next_at[0] and self.loader is not None \
                    and self.loader.builder.events <= SNAPSHOT_MAX_EVENTS:
                snap = self.loader.snapshot()
                classes = classify(snap, self.rules)
                snap.fold_python()  # here, not in the frame the UI draws it
                self.call_from_thread(self._show, snap, classes)
                # a snapshot re-sorts what is loaded so far: keep it under ~20% of the time
                cost = time.perf_counter() - now
                next_at[0] = time.perf_counter() + max(SNAPSHOT_EVERY_S, 4 * cost)

        early = self.early
        if self.rank_files is not None:
            trace = self._load_ranks()
            if trace is None:
                return
        elif early is not None:
            # The load began before the UI was imported (see EarlyLoad): show what it has
            # read so far at once, then follow it.
            self.loader = early.loader
            if early.thread.is_alive():
                snap = early.loader.snapshot()
                snap.fold_python()
                self.call_from_thread(self._show, snap, classify(snap, self.rules))
            early.resume(progress)
            early.thread.join()
            if early.error is not None:
                self.call_from_thread(self._failed, early.error)
                return
            trace = early.result
        else:
            try:
                self.loader = Loader(self.path, progress=progress, progress_interval=0.1)
                trace = self.loader.run()
            except TraceError as e:
                self.call_from_thread(self._failed, str(e))
                return
        classes = classify(trace, self.rules)
        trace.fold_python()
        self.call_from_thread(self._show, trace, classes, True)
        # the views' aggregates, ready before the user asks for them
        analyses = Analyses(trace, classes, self.phase_groups, self.rules)
        self.call_from_thread(self._set_analyses, analyses)
        if self.rank_traces and self.rank_summary is None:
            self._rank_figures()

    def _load_ranks(self) -> Trace | None:
        """Every rank's file parsed side by side (one worker process per file, as many at
        once as cores), then one timeline of them all; the per-rank figures for the rank
        view come after, in this thread."""
        from ..analysis.ranks import rank_of
        from ..trace.combine import combine
        from ..many import load_many

        files = self.rank_files or []
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self._on_progress,
                                  Progress(done, total, 0, time.perf_counter() - started))

        got = load_many(files, progress, cancelled=self._ranks_cancel.is_set)
        loaded: list[tuple[int, Trace]] = []
        for k, (f, tr, err) in enumerate(got):
            if err is not None:
                self.call_from_thread(self.notify, "skipped " + safe_text(relabel(err), 200),
                                      severity="warning", timeout=10, markup=False)
            elif tr is not None:
                loaded.append((rank_of({"distributed_info": tr.distributed_info}, f, k)[0], tr))
        if not loaded:
            self.call_from_thread(self._failed, "none of the rank traces could be read")
            return None
        self.rank_traces = loaded
        return combine(loaded, self.align, label=self.path)

    def _rank_figures(self) -> None:
        from ..analysis.ranks import summarize_ranks
        from ..analysis.report import analyze

        items = [(tr.path, {**analyze(tr, self.rules), "file": tr.path})
                 for _, tr in self.rank_traces]
        summary = summarize_ranks(items)
        self.call_from_thread(setattr, self, "rank_summary", summary)

    def _set_analyses(self, analyses: "Analyses") -> None:
        if self.trace is analyses.trace:
            self.analyses = analyses
            # the overlap bins (drawn when the overlap row is on) and the in-flight rows
            self.timeline.set_overlap(analyses.model)
            self.call_after_refresh(self._prepare_views)

    async def _prepare_views(self) -> None:
        """Build the drill-down views ahead of time, off screen: composing, mounting and
        laying out a screen (every widget's first resize) costs more than drawing it; it is
        done once here instead of on the key."""
        an = self.analyses
        if an is None or an.trace is not self.trace:
            return
        views = (self._kernel_view(an), self._overlap_view(an), self._instances_view(an))
        for screen in views:
            if not screen.is_running and screen not in self.screen_stack:
                try:  # Textual internals: if they change, the view is built on the key
                    _, mounted = self._get_screen(screen)  # registers and starts it, unseen
                    await mounted
                    screen._refresh_layout(self.size)  # sized now: no resize when shown
                except Exception:  # noqa: BLE001
                    break
        self.call_after_refresh(self._freeze_heap)

    def _freeze_heap(self) -> None:
        """Everything made so far (the app, its views, the aggregates) is long-lived: moved
        out of the cyclic collector's sight, a full collection no longer walks it - those
        walks took 25-50 ms at random keys on a 1 GB trace. What is made after (rows drawn
        and cached, a view's state) is still walked by each full collection, 4-7 ms on an
        800 MB trace, which fell on every tenth or so key: full collections wait ten times
        longer (the app makes few reference cycles; the young generations still run)."""
        if self.loaded:
            gc.freeze()
            young, middle, _full = gc.get_threshold()
            gc.set_threshold(young, middle, FULL_GC_EVERY)
        self.views_ready = True

    def _shown_analyses(self) -> "Analyses | None":
        """The aggregates, if they are those of the trace shown (else None: still coming)."""
        an = self.analyses
        return an if an is not None and an.trace is self.trace else None

    def get_analyses(self) -> "Analyses | None":
        """The aggregates of the trace shown (computed here if the load has not yet)."""
        tr, tl = self.trace, self.timeline
        if tr is None or tl.classes_of is None:
            return None
        if self.analyses is None or self.analyses.trace is not tr:
            self.analyses = Analyses(tr, tl.classes_of, self.phase_groups, self.rules)
        if not self.loaded:
            self.notify("still loading: the figures cover what has been read so far",
                        timeout=4, markup=False)
        return self.analyses

    def _failed(self, message: str) -> None:
        message = relabel(message)  # a pipe's temporary copy is named as the user named it
        self.error = message
        self._status()
        self.notify(safe_text(message), severity="error", timeout=30, markup=False)

    def _on_progress(self, p: Progress) -> None:
        self.progress = p
        self._status()

    def _show(self, trace: Trace, classes: np.ndarray, final: bool = False) -> None:
        first = self.trace is None
        self.trace = trace
        self.loaded = final
        tl = self.query_one(Timeline)
        tl.set_trace(trace, classes, keep_view=not first)
        self._status()
        self._legend()
        if final:
            self.query_one(KeyBar).refresh_keys()  # keys for GPUs only on GPU traces
        if final:
            for w in trace.warnings[:3]:
                self.notify(safe_text(w, 200), severity="warning", timeout=10, markup=False)

    def _status(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" tracetui ", style="bold reverse")
        t.append(" " + safe_text(shown_path(self.path).rsplit("/", 1)[-1], 40))
        tr = self.trace
        if tr is not None:
            t.append(f" · {tr.size / 1e6:,.1f} MB · {tr.events:,} events · "
                     f"{len(tr.devices)} GPU{'' if len(tr.devices) == 1 else 's'}")
        if self.error:
            t.append("  " + safe_text(self.error, 120), style="bold red")
        elif not self.loaded and self.progress is not None:
            p = self.progress
            bar = "█" * int(p.fraction * 10) + "░" * (10 - int(p.fraction * 10))
            t.append(f"   loading {bar} {p.fraction:4.0%}  {p.mb_per_s:,.0f} MB/s", style="yellow")
            if tr is not None and self.loader is not None \
                    and self.loader.builder.events > SNAPSHOT_MAX_EVENTS:
                t.append(f"  (showing the first {tr.events / 1e6:,.1f} M events)", style="dim")
        elif tr is not None and tr.warnings:
            n = len(tr.warnings)
            what = "truncated file" if tr.truncated else f"{n} warning{'s' if n > 1 else ''}"
            t.append(f"   ⚠ {what}: ? shows {'them' if n > 1 else 'it'}", style="yellow")
        self.query_one("#status", Static).update(t, layout=False)  # one line, always

    def _legend(self, width: int | None = None) -> None:
        """The line under the timeline: what the colours (or, without colour, the glyphs)
        mean, the search's hits, and whether Python frames are folded."""
        tl = self.timeline
        p, mono = tl.palette, tl.mono

        def line(short: bool) -> Text:
            t = Text(no_wrap=True, overflow="ellipsis")
            for cls, color, what, brief in ((COMP, p.comp, "compute", "comp"),
                                            (COMM, p.comm, "communication", "comm"),
                                            (MEM, p.mem, "memory", "mem"),
                                            (None, p.other, "other GPU", "other"),
                                            (None, p.cpu, "CPU", "CPU")):
                glyph = "█" if not mono or what == "CPU" else CLASS_GLYPH.get(cls, OTHER_GLYPH)
                t.append(f" {glyph}", style=color)
                t.append(f" {brief if short else what}")
            if len(tl.matches):
                t.append("  ▀", style=f"{p.match} on {p.comp}" if not mono else "")
                n = len(tl.matches)
                t.append(f" {n:,} hit{'' if n == 1 else 's'}" + (" (esc clears)" if short else
                                                         " (n N step, esc clears)"))
            if tl.has_python():
                state = ("folded" if tl.fold_python else "shown") if short else \
                    ("folded (P shows)" if tl.fold_python else "shown (P folds)")
                if tl.fold_python and tl.unfolded:  # a selected frame opened its lane
                    k = len(tl.unfolded)
                    state += f", {k} lane{'' if k == 1 else 's'} open"
                t.append(f"  py frames {state} (P)" if short else f"  Python frames {state}",
                         style="italic")
            return t

        t = line(short=False)  # in short words where the long ones do not fit
        if t.cell_len > (width if width is not None else self.size.width):
            t = line(short=True)
        self.query_one("#legend", Static).update(t, layout=False)

    # ---------------------------------------------------------------- actions
    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    def action_zoom(self, factor: float) -> None:
        self.timeline.zoom(float(factor))

    def action_pan(self, fraction: float) -> None:
        self.timeline.pan(float(fraction))

    def action_row(self, delta: int) -> None:
        self.timeline.move_cursor(int(delta))

    def action_step(self, direction: int) -> None:
        self.timeline.step_slice(int(direction))

    def action_fit(self) -> None:
        tl, tr = self.timeline, self.trace
        if tr is not None and tl.selected >= 0:
            s = int(tr.start[tl.selected])
            tl.fit(s, s + int(tr.dur[tl.selected]))

    def action_reset(self) -> None:
        self.timeline.reset()

    def action_flow(self, direction: int) -> None:
        tl, tr = self.timeline, self.trace
        if tr is None or tl.selected < 0:
            return
        i = tl.selected
        an = self._shown_analyses()
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

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        self._open_prompt(box)

    def _open_prompt(self, box: Input) -> None:
        """Show a prompt (find, go to) and give it the keys: those typed before it has the
        focus (a paste, fast typing: "/combine⏎" in one burst) go into it, not to the
        timeline's commands (o would open a view and e write a file)."""
        box.add_class("visible")
        self._prompt = box
        box.focus()

    def _close_prompts(self) -> None:
        self._prompt = None
        for box in self.query("#search, #goto").results(Input):
            box.remove_class("visible")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id not in ("search", "goto"):
            return
        self._close_prompts()
        self.timeline.focus()
        if event.input.id == "goto":
            self.goto_time(event.value)
        else:
            self.find(event.value)

    def action_goto_time(self) -> None:
        box = self.query_one("#goto", Input)
        box.value = ""
        self._open_prompt(box)

    def goto_time(self, text: str) -> bool:
        """``g``: the view centred on a typed time (its zoom kept), or on a typed range."""
        tl, tr = self.timeline, self.trace
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

    def action_python(self) -> None:
        """``P``: fold the Python frames of a with_stack profile away, or show them."""
        tl = self.timeline
        if not tl.has_python():
            self.notify("no Python frames here (the profile was recorded without "
                        "with_stack=True)", timeout=3, markup=False)
            return
        folded = tl.toggle_python()
        self.notify("Python frames folded: the lanes show ops, runtime calls and annotations "
                    "(P shows the frames)" if folded else
                    "Python frames shown: every depth (P folds them)", timeout=3, markup=False)
        self._legend()

    def find(self, query: str) -> int:
        """Select the first slice whose name matches; return the number of matches."""
        tr, tl = self.trace, self.timeline
        if tr is None:
            return 0
        if not query.strip():  # an empty search clears the hits
            tl.matches = np.zeros(0, np.int64)
            tl.refresh()
            self._legend()
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

    def _best_match(self, rows: np.ndarray, ids: np.ndarray, query: str) -> int:
        """Where a search starts, from the view's start on: GPU work whose own name (the
        last part of its C++ name) is the query, then any GPU work, then the first match
        (the last one if none is left in the view). "dispatch" names DeepEP's dispatch
        kernel, its layout kernel and the CPU annotation around the launch; the dispatch
        kernel is what one is after."""
        tr, tl = self.trace, self.timeline
        assert tr is not None
        t0 = tl.t0
        if tl.first_match(after=t0) < 0:  # nothing left after the view: the last match
            return int(rows[np.argmax(tr.start[rows])])
        if tl.classes_of is not None:
            q = query.strip("/").lower()
            own_ids = [i for i in np.asarray(ids).tolist()
                       if short_name(tr.strings[i]).rsplit("::", 1)[-1].lower().startswith(q)]
            on_gpu = tl.classes_of[rows] != NOT_GPU
            own = np.zeros(len(tr.strings), bool)
            own[own_ids] = True
            for pick in (on_gpu & own[tr.name[rows]], on_gpu):
                got = tl.first_match(pick, after=t0)
                if got >= 0:
                    return got
        return tl.first_match(after=t0)

    def action_match(self, direction: int) -> None:
        tl = self.timeline
        row = tl.step_match(int(direction))
        if row >= 0:
            tl.select(row, reveal=True)

    def action_detail(self) -> None:
        self.query_one("#detail").toggle_class("hidden")

    def action_help(self) -> None:
        """``?``: the keys of the screen in front (the trace's warnings too, on the timeline)."""
        if isinstance(self.screen, HelpScreen):
            return
        main = len(self.screen_stack) == 1
        warnings = self.trace.warnings if self.trace is not None and main else []
        self.push_screen(HelpScreen(self.screen, warnings, self.applies))

    def applies(self, action: str) -> bool:
        """Whether an action means anything on this trace now (help and the command
        palette list only those): rank keys need ranks, Python folding Python frames,
        the overlap views GPUs, stepping through matches a search."""
        tr, tl = self.trace, self.timeline
        action = action.split("(", 1)[0].removeprefix("app.")
        if action in ("ranks", "align", "collapse_rank"):
            return self._lane_ranks() is not None
        if action == "python":
            return tl.has_python()
        if action == "cancel_load":
            return not self.loaded
        if action in ("overlap", "overlap_row", "exposed", "phases", "kernels", "gap"):
            return tr is None or bool(tr.devices) or not self.loaded
        if action == "match":
            return bool(len(tl.matches))
        if action in ("widen",):
            return self.range is not None
        if action in ("flow", "fit"):
            return tl.selected >= 0
        return True

    def action_collapse(self) -> None:
        self.timeline.toggle_collapse()

    def _lane_ranks(self) -> list[int] | None:
        return getattr(self.trace, "rank_of_lane", None)

    def action_collapse_rank(self) -> None:
        """Every lane of the cursor's rank to its top row, or all of them back."""
        tl, ranks = self.timeline, self._lane_ranks()
        if self.trace is None or not tl.rows or tl.rows[tl.cursor].lane < 0:
            return
        lane = tl.rows[tl.cursor].lane
        group = [ln.index for ln in self.trace.lanes
                 if ranks is None or ranks[ln.index] == ranks[lane]]
        tl.set_collapsed(group, collapse=not set(group) <= tl.collapsed, keep_lane=lane)

    def goto_rank(self, rank: int) -> None:
        """The timeline with the cursor on the first lane of ``rank``."""
        self._main_screen()
        ranks = self._lane_ranks()
        if ranks is None or rank not in ranks:
            return
        self.timeline.cursor_to_lane(ranks.index(rank))

    def action_ranks(self) -> None:
        if self._lane_ranks() is None:
            self.notify("one trace: the rank view is for several (tracetui DIR)", timeout=4,
                        markup=False)
            return
        if self.rank_summary is None:
            self.notify("the per-rank figures are being computed", timeout=3, markup=False)
            return
        from .ranks import RanksScreen

        self.push_screen(RanksScreen(self.rank_summary))
        for w in self.rank_summary.get("warnings", [])[:3]:  # e.g. one rank in two files
            self.notify(safe_text(w, 200), severity="warning", timeout=8, markup=False)

    def action_align(self) -> None:
        """Rank traces: the next time origin (trace start, first ProfilerStep, clock)."""
        if not self.rank_traces or not self.loaded:
            return
        from ..trace.combine import ALIGNS, combine

        self.align = ALIGNS[(ALIGNS.index(self.align) + 1) % len(ALIGNS)] \
            if self.align in ALIGNS else "start"  # from an annotation's name: back to start
        trace = combine(self.rank_traces, self.align, label=self.path)
        classes = classify(trace, self.rules)
        self.analyses = None
        self._show(trace, classes, final=True)
        self.timeline.reset()
        missing = trace.align_warnings
        self.notify(f"ranks aligned on: {ALIGN_NAMES[self.align]}"
                    + (f" ({missing[0]}{' …' if len(missing) > 1 else ''})" if missing else ""),
                    timeout=5, markup=False)
        self.run_worker(lambda: self.call_from_thread(self._set_analyses,
                                                      Analyses(trace, classes,
                                                               self.phase_groups,
                                                               self.rules)),
                        thread=True, exclusive=True, group="align", name="align",
                        exit_on_error=False)

    def action_detail_size(self, delta: int) -> None:
        pane = self.query_one("#detail")
        if pane.has_class("bottom"):
            pane.styles.height = max(4, min(30, int(pane.size.height or 9) + int(delta) // 2))
        else:
            pane.styles.width = max(24, min(100, int(pane.size.width or 44) + int(delta)))

    def action_label_size(self, delta: int) -> None:
        """``{`` ``}``: the lane label column narrower or wider (labels shorten to fit)."""
        self.timeline.widen_labels(delta)

    _EVERYWHERE = frozenset({"quit", "help", "screenshot_svg", "cancel_load", "command_palette",
                             "focus_next", "focus_previous", "pop_screen"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The timeline's keys work on the timeline only, not inside a view or dialog."""
        if len(self.screen_stack) > 1 and action not in self._EVERYWHERE:
            return False
        prompt = self._prompt
        if prompt is not None and not prompt.has_focus and action != "cancel_load":
            return False  # a prompt is opening: what is typed goes into it (on_key)
        return True

    def get_system_commands(self, screen: Any) -> Iterable[SystemCommand]:
        """The command palette (ctrl+p): Textual's own commands, then the keys of the screen
        it was opened on that apply there (a table's on a table, the timeline's on the
        timeline, no rank alignment on one trace)."""
        for cmd in super().get_system_commands(screen):
            # Textual's own theme picker would not recolour the timeline (themes/*.toml
            # and --theme do), its screenshot is ours (^s), maximise means nothing here
            if cmd.title not in ("Theme", "Screenshot", "Maximize"):
                yield cmd
        main = screen is self.screen_stack[0]
        for keys, what, action, node in palette_rows(screen, self.applies, main):
            if action in ("quit", "help", "command_palette"):
                continue
            yield SystemCommand(what[:1].upper() + what[1:], f"key: {keys}",
                                lambda a=action, n=node: self.run_action(a, n))

    # ---------------------------------------------------------------- drill-down views
    def _view(self, name: str, make: Any) -> Any:
        """The view ``name`` of the current aggregates: made once, then kept (installed) so
        that it opens again at once, with its sort, filter and cursor as they were left."""
        an = self.analyses
        key = (name, id(an))
        if self._views.get(name, (None, None))[0] != key:
            old = self._views.pop(name, None)
            if old is not None:
                self._stale_views.append(old[1])
            screen = make()
            self.install_screen(screen, name=f"view-{name}-{id(an)}")
            self._views[name] = (key, screen)
        for stale in list(self._stale_views):  # views of earlier aggregates, once closed
            if stale not in self.screen_stack:
                self.uninstall_screen(stale)
                self._stale_views.remove(stale)
        return self._views[name][1]

    def action_kernels(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        self.push_screen(self._kernel_view(an))

    def _kernel_view(self, an: "Analyses") -> Any:
        return self._view("kernels", lambda: KernelScreen(an.kernels, an.groups, self.palette))

    def _instances_view(self, an: "Analyses") -> Any:
        return self._view("instances", lambda: InstancesScreen(
            "", np.zeros(0, np.int64), self.palette))

    def show_instances(self, name: str, rows: np.ndarray) -> None:
        """The instances of a kernel (from the kernel table), in the one kept screen."""
        an = self.get_analyses()
        if an is None:
            return
        screen = self._instances_view(an)
        screen.show(name, rows)
        self.push_screen(screen)

    def _overlap_view(self, an: "Analyses") -> Any:
        tl = self.timeline
        t0, t1 = self.range if self.range is not None else (tl.t0, tl.t1)
        return self._view("overlap", lambda: OverlapScreen(
            an.model, an.annotations, t0, t1, self.palette, an.phases))

    def action_overlap(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        tl = self.timeline
        t0, t1 = self.range if self.range is not None else (tl.t0, tl.t1)
        screen = self._overlap_view(an)
        screen.show_window(t0, t1)
        self.push_screen(screen)

    def action_phases(self) -> None:
        """DeepSeek's diagram over the timeline's window (or the marked range)."""
        an = self.get_analyses()
        if an is None:
            return
        from .phaseview import PhaseScreen

        if an.phase_blocks is None:
            if not an._phases_pending:
                an._phases_pending = True
                self.notify("finding the phases…", timeout=3, markup=False)

                def work() -> None:
                    blocks, an.phase_figures = an.phases_at(None)
                    an.phase_blocks = blocks  # last: what action_phases waits for
                    self.call_from_thread(self.action_phases)

                self.run_worker(work, thread=True, group="phases", name="phases",
                                exit_on_error=False)
            return
        tl = self.timeline
        t0, t1 = self.range if self.range is not None else (tl.t0, tl.t1)
        self.push_screen(PhaseScreen(an.phase_blocks, an.phase_figures, t0, t1, self.palette,
                                     an.trace.end_ns, relevel=an.phases_at))

    def action_overlap_row(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        tl = self.timeline
        tl.set_overlap(an.model, show=not tl.show_overlap)
        if tl.show_overlap and not an.model.devices:
            self.notify("no GPU work: no overlap to show", timeout=3, markup=False)

    def _main_screen(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def goto_rows(self, rows: np.ndarray, index: int) -> None:
        """Back to the timeline with slice ``rows[index]`` selected and in view; ``rows``
        (in time order) become the matches that n / N step through."""
        self._main_screen()
        if not len(rows):
            return
        tl = self.timeline
        row = int(rows[index])
        tl.matches = np.asarray(rows, np.int64)
        tl.select(row, reveal=True)
        tr = self.trace
        if tr is not None:  # in view and wide enough to read
            s = int(tr.start[row])
            e = s + int(tr.dur[row])
            if (e - s) * 8 < (tl.t1 - tl.t0):
                tl.fit(s, e)

    def goto_range(self, t0: int, t1: int) -> None:
        """Back to the timeline showing [t0, t1), marked as the range."""
        self._main_screen()
        tl = self.timeline
        tl.fit(int(t0), int(t1))
        self.set_range((int(t0), int(t1)))

    def goto_annotation(self, name: str, source: str) -> None:
        """Back to the timeline at the first occurrence of an annotation, selected and marked
        as the range; n / N step through its occurrences."""
        tr = self.trace
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

    # ---------------------------------------------------------------- range
    def action_mark(self) -> None:
        """The selected slice's span, or with nothing selected the visible window."""
        tl, tr = self.timeline, self.trace
        if tr is None:
            return
        if tl.selected >= 0:
            s = int(tr.start[tl.selected])
            self.set_range((s, s + max(int(tr.dur[tl.selected]), 1)))
        else:
            self.set_range((tl.t0, tl.t1))

    def action_widen(self, side: int) -> None:
        tl = self.timeline
        if self.range is None:
            self.action_mark()
            return
        step = max((tl.t1 - tl.t0) // 20, 1)
        a, b = self.range
        self.set_range((a - step, b) if int(side) < 0 else (a, b + step))

    def set_range(self, rng: tuple[int, int] | None) -> None:
        tr = self.trace
        if rng is not None and tr is not None:
            a, b = max(int(rng[0]), 0), min(int(rng[1]), max(tr.end_ns, 1))
            rng = (a, max(b, a + 1))
        self.range = rng
        self.timeline.set_range(rng)
        if rng is None:
            self.range_stats = None
            self._detail_range = Text()
            self._update_detail()
            return
        self._detail_range = Text(f"range +{fmt_time(rng[0])} → +{fmt_time(rng[1])}  "
                                  "computing…", style="bold")
        self._range_first = True
        self._update_detail()
        self._range_worker(rng)

    @work(thread=True, exclusive=True, group="range", name="range", exit_on_error=False)
    def _range_worker(self, rng: tuple[int, int]) -> None:
        tr, tl = self.trace, self.timeline
        an = self._shown_analyses()
        if tr is None or tl.classes_of is None:
            return
        model = an.model if an is not None else OverlapModel(tr, tl.classes_of)
        stats = range_stats(tr, tl.classes_of, model, rng[0], rng[1])
        self.call_from_thread(self._show_range, rng, stats)

    def _show_range(self, rng: tuple[int, int], stats: dict[str, Any]) -> None:
        if self.range != rng:
            return  # a newer range is on its way
        self.range_stats = stats
        pane = self.query_one("#detail")
        width = pane.size.width - 2 if pane.size.width > 10 else 42
        self._detail_range = describe_range(stats, width=max(width, 30))
        self._update_detail()

    def action_clear_range(self) -> None:
        if self.range is not None:
            self.set_range(None)

    # ---------------------------------------------------------------- exposed, gaps
    def action_exposed(self, in_time: bool = False) -> None:
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
        tr = an.trace
        t = Text()
        t.append(f"exposed communication {k + 1:,} of {len(ex):,}", style="bold")
        t.append(" (largest first) · x next · X in time\n", style="dim")
        t.append(f"GPU {d['device']} · +{fmt_time(d['start_ns'])} → +{fmt_time(d['end_ns'])}"
                 f" · {fmt_time(d['end_ns'] - d['start_ns'])}\n")
        if d["kernel_row"] >= 0:
            t.append(safe_text(short_name(tr.name_of(d["kernel_row"])), 60))
            more = d["kernels"] - 1
            t.append(f"{f' (+{more} more)' if more > 0 else ''} launched in ")
            t.append(safe_text(d["phase"], 40) + "\n", style="bold")
        b, a = d["before_row"], d["after_row"]
        idle0 = int(tr.start[b] + tr.dur[b]) if b >= 0 else d["start_ns"]
        idle1 = int(tr.start[a]) if a >= 0 else d["end_ns"]
        t.append(f"computation idle {fmt_time(idle1 - idle0)}: ")
        t.append("after " + (safe_text(short_name(tr.name_of(b)), 40) + f" ({_stream(tr, b)})"
                             if b >= 0 else "nothing"))
        t.append(", until " + (safe_text(short_name(tr.name_of(a)), 40) + f" ({_stream(tr, a)})"
                               if a >= 0 else "the end") + "\n")
        self._goto_span(d["start_ns"], d["end_ns"], d["kernel_row"], t)

    def action_gap(self, in_time: bool = False) -> None:
        """The next idle gap of the cursor's GPU stream, largest first, or (``in_time``) the
        next one in time: the kernel that ends it selected, the gap marked as the range."""
        an = self.get_analyses()
        tr = self.trace
        if an is None or tr is None:
            return
        lane = self._stream_lane()
        if lane < 0:
            self.notify("g: put the cursor on a GPU stream's lane (or select a kernel)",
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
        kind = GAP_KINDS[int(sg.kind[i])]
        t = Text()
        t.append(f"idle gap {cur + 1:,} of {len(sg):,}", style="bold")
        t.append(f" on {safe_text(tr.lanes[lane].name, 40)} (largest first) · i next · "
                 "I in time\n", style="dim")
        t.append(f"+{fmt_time(g0)} → +{fmt_time(g1)} · {fmt_time(g1 - g0)} · ")
        t.append(kind + "\n", style="bold")
        t.append("then " + safe_text(short_name(tr.name_of(nxt)), 60))
        launch = int(sg.launch[i])
        if launch < 0:
            t.append(", whose launch is not in the trace\n")
        elif launch > g0:
            t.append(f", launched {fmt_time(launch - g0)} into the gap: the CPU had not "
                     "launched it yet\n")
        else:
            t.append(f", launched {fmt_time(g0 - launch)} before the gap: the stream had it "
                     "and waited\n")
        self._goto_span(g0, g1, nxt, t)

    def _stream_lane(self) -> int:
        """The GPU stream lane under the cursor (a stream's annotation lane: that stream),
        else the selected slice's, else -1."""
        tr, tl = self.trace, self.timeline
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

    def _goto_span(self, t0: int, t1: int, row: int, note: Text) -> None:
        """Select ``row``, show [t0, t1) with as much again on each side, mark it as the
        range, and put ``note`` at the top of the detail pane."""
        tl = self.timeline
        self._note, self._note_range = note, None
        if row >= 0:
            tl.select(row)
        pad = max(t1 - t0, 1000)
        tl.set_window(t0 - pad, t1 + pad)
        self.set_range((t0, t1))
        self._note_range = self.range
        self._update_detail()
        self.query_one("#detail").remove_class("hidden")

    def show_unattributed(self) -> None:
        """The GPU work no phase launched, as a kernel's instances are shown."""
        an = self.get_analyses()
        if an is None:
            return
        rows = an.unattributed()
        if not len(rows):
            self.notify("every kernel was launched inside a phase", timeout=3, markup=False)
            return
        self.show_instances(f"{NO_PHASE}: GPU work launched outside every phase", rows)

    # ---------------------------------------------------------------- export
    def action_export(self) -> None:
        """On the timeline: the marked range's statistics (kernels, then lanes)."""
        st = self.range_stats
        if st is None:
            self.notify("nothing to export here: mark a range (m), or press e in the kernel "
                        "table (k) or the overlap view (o)", timeout=5, markup=False)
            return
        header = ["table", "name", "class", "count", "time_in_range_us", "pct"]
        rows: list[list[Any]] = []
        for k in st["kernels"]:
            rows.append(["kernel", k["name"], k["class"], k["count"], k["time_ns"] / 1000,
                         round(k["pct"], 3)])
        for ln in st["lanes"]:
            rows.append(["lane", ln["lane"], ln["kind"], "", ln["busy_ns"] / 1000,
                         round(ln["pct"], 3)])
        self.export_csv("range", header, rows)

    def export_csv(self, what: str, header: list[str], rows: list[list[Any]]) -> None:
        self._write_export(what, "csv", csv_text(header, rows), f"{len(rows):,} rows")

    def action_screenshot_svg(self) -> None:
        self._write_export("screen", "svg", self.export_screenshot(), "screenshot")

    def _write_export(self, what: str, ext: str, data: str, desc: str) -> None:
        try:
            path = write_new(os.getcwd(), export_name(shown_path(self.path), what, ext), data)
        except OSError as e:
            self.notify(f"could not write the {ext.upper()}: {safe_text(e, 120)}",
                        severity="error", timeout=8, markup=False)
            return
        self.last_export = str(path)
        self.notify(f"{desc} written to {safe_text(path.name, 100)}", timeout=6, markup=False)

    def action_cancel_load(self) -> None:
        if self.rank_files is not None and not self.loaded:
            self._ranks_cancel.set()  # the ranks read so far are shown
            self.notify("loading stopped: showing the ranks read so far", timeout=4,
                        markup=False)
            return
        if self.loader is not None and not self.loaded:
            self.loader.cancel()
            self.notify("loading stopped: showing what was read", timeout=4, markup=False)

    #: what each worker does, for the one line that says it failed
    WORKER_JOBS = {"load": "loading the trace", "phases": "finding the phases",
                   "range": "the marked range's figures", "align": "aligning the ranks"}

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that fails (a bug in an analysis, a trace it did not expect) ends in a
        notification that says what failed; the session goes on (its workers are started
        with exit_on_error=False). What waited on it is let go: the phases can be asked for
        again, the range's pane says its figures failed."""
        if event.state != WorkerState.ERROR:
            return
        worker = event.worker
        job = self.WORKER_JOBS.get(worker.name, worker.name or "a background task")
        if worker.name == "load" and self.loaded:  # the trace is in: its aggregates failed
            job = "working out the trace's figures (kernels, overlap, phases)"
        err = worker.error
        what = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
        self.notify(safe_text(f"{job} failed: {what}", 300), severity="error", timeout=12,
                    markup=False)
        an = self.analyses
        if worker.name == "phases" and an is not None:
            an._phases_pending = False  # p tries again
        elif worker.name == "range" and self.range is not None:
            self.range_stats = None
            self._detail_range = Text(f"the range's figures failed: {safe_text(what, 200)}",
                                      style="red")
            self._update_detail()
        elif worker.name == "load" and not self.loaded:
            self._failed(f"loading failed: {what}")

    def on_descendant_blur(self, event: Any) -> None:
        if event.widget is self._prompt:  # it had the keys and gave them up (a click)
            self._prompt = None

    def on_key(self, event: Any) -> None:
        box = self._prompt
        if box is not None and not box.has_focus:  # typed ahead of the prompt's focus
            if event.key == "enter":
                self.call_later(box.action_submit)
            elif event.key != "escape" and event.is_printable and event.character:
                box.insert_text_at_cursor(event.character)
            if event.key != "escape":
                event.stop()
                event.prevent_default()
                return
        if event.key == "escape" and len(self.screen_stack) == 1:
            box = self.query_one("#search", Input)
            goto = self.query_one("#goto", Input)
            if box.has_class("visible") or goto.has_class("visible"):
                self._close_prompts()
                self.timeline.focus()
                event.stop()
            elif len(self.timeline.matches) or self.range is not None:
                # the search's hits and the marked range go; the selection stays
                if len(self.timeline.matches):
                    self.timeline.matches = np.zeros(0, np.int64)
                    self.timeline.refresh()
                    self._legend()
                if self.range is not None:
                    self.set_range(None)
                event.stop()

    # ---------------------------------------------------------------- detail
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        self.show_selection(message.row)

    def show_selection(self, row: int) -> None:
        self._detail_slice = self.describe(row)
        tr = self.trace
        # the range first when it is this slice's span (an annotation chosen in a view)
        self._range_first = tr is not None and self.range is not None and self.range == (
            int(tr.start[row]), int(tr.start[row] + tr.dur[row]))
        self._update_detail()

    def _update_detail(self) -> None:
        parts = [self._detail_slice, self._detail_range]
        if self._range_first:
            parts.reverse()
        if self._note.plain and self.range is not None and self.range == self._note_range:
            parts.insert(0, self._note)
        t = Text()
        for part in parts:
            if part.plain:
                if t.plain:
                    t.append("\n")
                t.append_text(part)
        self.query_one("#detail", DetailPane).set_text(t)
        if not self._detail_seen and t.plain:  # the pane opens with the first selection
            self._detail_seen = True
            self.query_one("#detail").remove_class("hidden")

    def describe(self, row: int) -> Text:
        tr = self.trace
        t = Text()
        if tr is None or row < 0:
            return t
        d = tr.detail(row)
        tl = self.timeline
        cls = int(tl.classes_of[row]) if tl.classes_of is not None else NOT_GPU
        kind = CLASS_NAMES[cls] if cls != NOT_GPU else safe_text(d["cat"])
        pane = self.query_one("#detail")
        if pane.has_class("bottom"):
            # a few rows under the timeline (80x24): duration, start, lane and the launch
            # chain first, then the name shortened; the whole name and the rest below
            width = max((pane.size.width or self.size.width) - 2, 20)
            t.append(f"{fmt_time(d['dur_ns'])}", style="bold")
            t.append(f" at +{fmt_time(d['start_ns'])} · {kind} · {safe_text(d['lane'])}\n")
            chain = d.get("launched_by") or []
            if chain:
                t.append("← " + " ← ".join(safe_text(short_name(c["name"]), 40)
                                           for c in chain) + "\n", style="dim")
            short = safe_text(short_name(d["name"]))
            t.append(middle(short, width) + "\n", style="bold")
            if short != safe_text(d["name"]):
                t.append(safe_text(d["name"]) + "\n", style="dim")
        else:
            t.append(safe_text(d["name"]) + "\n", style="bold")
            t.append(f"{kind} · {safe_text(d['lane'])}\n", style="dim")
        an = self._shown_analyses()
        graph = an.graphs.of_kernel(row) if an is not None else None
        if graph is not None:  # near the top: a small pane shows it too
            g, pos = graph
            t.append(f"kernel {pos + 1:,} of {len(g.kernels):,} of the CUDA graph ", style="bold")
            if g.launch >= 0:
                t.append(f"launched at +{fmt_time(int(tr.start[g.launch]))} by "
                         f"{safe_text(tr.name_of(g.launch), 40)}")
            else:
                t.append(f"launched before the trace began (correlation {g.correlation})")
            t.append("  ] next  [ launch\n", style="dim")
        t.append("\n")
        if pane.has_class("bottom"):  # start and duration lead the pane already
            t.append(f"end    +{fmt_time(d['end_ns'])}\n")
        else:
            t.append(f"start  +{fmt_time(d['start_ns'])}\ndur    {fmt_time(d['dur_ns'])}\n"
                     f"end    +{fmt_time(d['end_ns'])}\n")
        k = d.get("kernel")
        if k:
            t.append("\n")
            if k["grid"][0] > 0:
                t.append(f"grid {'×'.join(map(str, k['grid']))}  block "
                         f"{'×'.join(map(str, k['block']))}\n")
                t.append(f"regs {k['registers_per_thread']}  smem {k['shared_memory']}\n")
                t.append(f"blocks/SM {k['blocks_per_sm']:.2f}  warps/SM "
                         f"{k['warps_per_sm']:.2f}\noccupancy {k['occupancy_pct']:.0f}%\n")
            if k["bytes"] >= 0:
                t.append(f"bytes {k['bytes']:,}  {k['bandwidth_gbps']:.1f} GB/s\n")
        for key in ("correlation", "external_id"):
            if key in d:
                t.append(f"{key.replace('_', ' ')} {d[key]}\n")
        chain = d.get("launched_by")
        if chain:
            src = chain[0]["row"]
            delay = d["start_ns"] - int(tr.start[src])
            t.append(f"\nlaunch delay {'' if delay >= 0 else '-'}{fmt_time(abs(delay))}",
                     style="bold")
            t.append(" (call start → start)\n", style="dim")
            t.append("launched by\n", style="bold")
            for c in chain:
                t.append("  ← " + safe_text(c["name"], 60) + "\n")
            owner = an.phases.owner_of(np.array([row]))[0] if an is not None else -1
            if owner >= 0:
                t.append("  phase ", style="dim")
                t.append(safe_text(tr.name_of(int(owner)), 60) + "\n")
        g = an.graphs.of_launch(row) if an is not None else None
        if g is not None:
            rec = g.record(tr)
            t.append(f"\nlaunched a CUDA graph: {rec['kernels']:,} kernels", style="bold")
            t.append(f"\n  GPU time {fmt_time(int(rec['gpu_us'] * 1000))} over a span of "
                     f"{fmt_time(int(rec['span_us'] * 1000))}\n  first kernel "
                     f"+{fmt_time(int(rec['first_kernel_delay_us'] * 1000))} after the call "
                     f"(] goes to it)\n")
        got = launch_summary(tr, row) if "launches" in d else None
        if got is not None:
            n = got["count"]
            t.append(f"\nlaunched {n:,} GPU slice{'s' if n > 1 else ''}", style="bold")
            if n > 1:
                t.append(f"  (start {fmt_time(got['delay_min_ns'])} → "
                         f"{fmt_time(got['delay_max_ns'])} after it, median "
                         f"{fmt_time(got['delay_median_ns'])})")
            t.append("\n")
            for k in got["first"]:
                t.append(f"  → {'+' + fmt_time(k['delay_ns']):>10} "
                         f"{_stream(tr, k['row'])} {safe_text(short_name(k['name']), 48)}\n")
            if n > len(got["first"]):
                t.append(f"  … {n - len(got['first']):,} more on "
                         f"{', '.join(safe_text(x, 30) for x in got['streams'][:4])}\n",
                         style="dim")
        args = d.get("args")
        if d.get("args_unavailable"):
            t.append("\nargs: ", style="bold")
            t.append(safe_text(d["args_unavailable"], 120) + "\n", style="yellow")
        if isinstance(args, dict) and args:
            t.append("\nargs\n", style="bold")
            for key, v in list(args.items())[:40]:
                t.append(f"  {safe_text(key, 30)}: {safe_text(v, 200)}\n")
        return t


class Analyses:
    """The aggregates behind the drill-down views, for one trace (computed once)."""

    def __init__(self, trace: Trace, classes: np.ndarray,
                 groups: Iterable[str] = DEFAULT_GROUPS,
                 rules: Iterable[Rule] = DEFAULT_RULES) -> None:
        self.trace = trace
        self.phase_groups = tuple(groups)  # (self.groups: the kernels by short name)
        self.classes = classes
        unions = device_unions(trace, classes)
        self.spans = in_flight_spans(trace, classes, in_flight_patterns(list(rules)))
        self.graphs = Graphs(trace)
        self.model = OverlapModel(trace, classes, unions, self.spans)
        self.comp = DeviceComp(trace, unions)
        self.kernels = kernel_table(trace, classes)
        self.groups = group_by_short_name(self.kernels)
        self.launches = Launches(trace, classes)
        # who owns each kernel: the annotation table's phases, the heatmap's phase line (the
        # phase whose kernels run at an instant), the exposed stretches' phases
        self.phases = LaunchPhases(trace, classes, phase_occurrences(trace), self.launches)
        self.annotations = annotation_table(trace, classes, unions, self.launches, self.phases,
                                            self.graphs.kernel_rows)
        self.exposed = ExposedStretches(trace, classes, unions, self.phases)
        self._gaps: dict[int, StreamGaps] = {}
        # the phase view's blocks and figures: made on its first opening (seconds at 1 GB:
        # not here, where they would hold back every view)
        self.phase_blocks: list[dict[str, Any]] | None = None
        self.phase_figures: dict[str, dict[str, Any]] = {}
        self._phases_pending = False
        for k in range(len(self.model.devices)):  # what the overlap view's matrix needs
            self.model.pair_covers(k)
        _ = trace._launch_sorted  # the launch index the detail pane's first "[" / "]" needs

    def gaps(self, lane: int) -> StreamGaps:
        """The idle gaps of GPU stream lane ``lane`` (made on first use)."""
        got = self._gaps.get(lane)
        if got is None:
            got = self._gaps[lane] = StreamGaps(self.trace, self.trace.lanes[lane],
                                                kernel_wait(KERNEL_WAIT_US), self.classes)
        return got

    def phases_at(self, depth: int | None = None) -> tuple[list[dict[str, Any]],
                                                           dict[str, dict[str, Any]]]:
        """The phase view's data with the phases at annotation depth ``depth`` (None: the
        innermost that repeat): the blocks, and per phase name (and ``(no phase)``) the
        figures of what its occurrences own."""
        lp = self.phases if depth is None else \
            LaunchPhases(self.trace, self.classes, phase_occurrences(self.trace, depth),
                         self.launches)
        blocks = phase_blocks(self.trace, self.classes, groups=self.phase_groups,
                              comp=self.comp, phases=lp, spans=self.spans,
                              sequence=depth is None)
        return blocks, phase_figures(self.trace, self.classes, lp, self.comp)

    def unattributed(self) -> np.ndarray:
        """The GPU work no phase launched, in time order."""
        rows = self.phases.unowned(self.classes)
        return rows[np.argsort(self.trace.start[rows], kind="stable")]


def _stream(tr: Trace, row: int) -> str:
    """``s7`` for a slice on a GPU stream, else its lane's name."""
    ln = tr.lane_of(int(row))
    return f"s{ln.stream}" if ln.stream >= 0 else safe_text(ln.name, 30)


def describe_range(st: dict[str, Any], lanes: int = 16, kernels: int = 8,
                   width: int = 42) -> Text:
    """The detail pane's account of a marked range, in lines of at most ``width`` cells."""
    t = Text()
    span = st["span_ns"]
    t.append(f"range +{fmt_time(st['t0'])} → +{fmt_time(st['t1'])}\n", style="bold")
    n = st["gpu_work"]
    t.append(f"{fmt_time(span)} · {n:,} GPU slice{'' if n == 1 else 's'}\n", style="dim")
    t.append("Esc clears · shift+←/→ widen · e CSV\n", style="dim")
    for d in st["devices"]:
        pct = d["overlap_pct"]
        t.append(f"\nGPU {d['device']}\n", style="bold")
        t.append(f"  comp     {fmt_time(d['comp_us'] * 1000):>10}\n"
                 f"  comm     {fmt_time(d['comm_us'] * 1000):>10}\n"
                 f"  overlap  {fmt_time(d['overlap_us'] * 1000):>10}"
                 f"  {'–' if pct is None else f'{pct:.1f}%'}\n"
                 f"  exposed  {fmt_time(d['exposed_comm_us'] * 1000):>10}\n")
        if "in_flight_us" in d:  # transfers between send and receive, on no SM
            fp = d["in_flight_overlap_pct"]
            t.append(f"  in flight{fmt_time(d['in_flight_us'] * 1000):>10}"
                     f"  {'–' if fp is None else f'{fp:.1f}%'} hidden\n")
    room = max(width - 19, 8)
    if st["lanes"]:
        t.append("\nbusy per lane\n", style="bold")
        for ln in st["lanes"][:lanes]:
            t.append(f"{ln['pct']:5.1f}% {fmt_time(ln['busy_ns']):>10}  ")
            t.append(safe_text(ln["lane"], room) + "\n")
        if len(st["lanes"]) > lanes:
            t.append(f"  … {len(st['lanes']) - lanes} more lanes\n", style="dim")
    if st["kernels"]:
        t.append("\ntop kernels in range\n", style="bold")
        for k in st["kernels"][:kernels]:
            t.append(f"{k['pct']:5.1f}% {fmt_time(k['time_ns']):>10}  ")
            name = f"{k['short_name']} ×{k['count']}"
            if len(name) > room:  # the end of a C++ name says the most: keep it
                name = "…" + name[len(name) - room + 1:]
            t.append(safe_text(name) + "\n")
    return t
