"""``tracetui TRACE``: the trace as lanes on one time axis, drawn while the file loads."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from ..analysis.attribution import NO_PHASE
from ..analysis.operators import operator_of
from ..analysis.rules import COMM, COMP, MEM, Rule
from ..tables import fmt_size
from ..textutil import fmt_time, safe_text
from ..trace import Trace
from ..trace.loader import EarlyLoad
from ..trace.source import shown_path
from .describe import ARGS_PENDING, READ_ARGS, describe_slice
from .detail import DetailPane
from .exports import Exports
from .process import OneLineFailure, Suspends
from .helpscreen import HelpScreen, palette_rows
from .keybar import KeyBar
from .loading import SNAPSHOT_MAX_EVENTS, Loading
from .messages import ShowInstances, ShowOccurrences, ShowUnattributed
from .navigate import Navigation
from .session import Analyses, Session
from .themes import DEFAULT_THEME, load_theme
from .timeline import CLASS_GLYPH, OTHER_GLYPH, Timeline
from .memoryview import MemoryScreen
from .panes import ModuleScreen, OccurrenceScreen, OperatorScreen, StepScreen
from .views import InstancesScreen, KernelScreen, OverlapScreen

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


class TraceApp(OneLineFailure, Suspends, Loading, Navigation, Exports, App[None]):
    """The app shell: the main screen's layout (status line, timeline, detail pane, legend,
    prompts, key bar), its keys, the views it opens, and what the session's state shows.
    Loading, navigation and exports are the mixins' jobs; the state is the :class:`Session`'s."""

    TITLE = "tracetui"
    # the first focus is the timeline's, never a hidden prompt's (see TableScreen)
    AUTO_FOCUS = "Timeline"
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
        Binding("b", "steps", "step breakdown", id="steps"),
        Binding("u", "operators", "operators (key_averages)", id="operators"),
        Binding("M", "modules", "modules (nn.Module tree)", show=False, id="modules"),
        Binding("U", "operator_of", "the selected slice's operator, in the operator table",
                show=False, id="operator_of"),
        Binding("h", "memory", "memory view (profile_memory traces)", show=False,
                id="memory"),
        Binding("H", "memory_peak", "to the memory peak (of the memory rows' device)",
                show=False, id="memory_peak"),
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
        # as in any terminal program: back to the shell, `fg` returns (drawn again whole);
        # priority: from a table's filter or the search box too
        Binding("ctrl+z", "suspend_process", "suspend to the shell (fg returns)",
                key_display="^z", show=False, priority=True, id="suspend"),
        Binding("ctrl+c", "cancel_load", "stop loading", show=False, id="cancel_load"),
        Binding("q", "quit", "quit", id="quit"),
    ]

    def __init__(self, path: str, rules: list[Rule] | None = None,
                 theme: str = DEFAULT_THEME, early: "EarlyLoad | None" = None,
                 ranks: list[str] | None = None, align: str = "start",
                 phase_groups: Iterable[str] | None = None,
                 keymap: dict[str, str] | None = None, max_ranks: int | None = None,
                 scheduler: str | None = None, step_regex: str | None = None,
                 peaks: dict | None = None) -> None:
        """``ranks``: several trace files shown as one timeline, lanes grouped by rank
        (``path`` is then only the name shown), on the time origin ``align``; a job of
        more than ``max_ranks`` ranks (or with ``scheduler``, the address of a Dask
        cluster to make the rank reports on) opens on demand (the rank view first)."""
        super().__init__()
        #: the config's [keys]: binding id -> keys (keys.load_keymap)
        self.keymap = dict(keymap or {})
        if self.keymap:
            self.set_keymap(self.keymap)
        self.early = early
        ui = load_theme(theme)  # the one colour system: the palette and the chrome's theme
        self.palette = ui.palette
        self.register_theme(ui.textual)
        self.theme = ui.textual.name
        #: what is open: the trace, its classes and aggregates, the range, the rules
        self.session = Session(path, rules, phase_groups, rank_files=ranks, align=align,
                               max_ranks=max_ranks, scheduler=scheduler,
                               step_regex=step_regex, peaks=peaks)
        self._init_loading()
        self._init_navigation()
        self._detail_seen = False
        self._detail_slice = Text()
        self._detail_range = Text()
        self._range_first = False
        self._views: dict[str, tuple[tuple[str, int], Any]] = {}
        self._stale_views: list[Any] = []
        self._ranks_screen: Any = None  # the rank view, once opened

    def exit(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.stop_loading()  # q (or a signal) during a load: the process ends now
        super().exit(*args, **kwargs)

    # the session's state, read where the app is driven (tests, benchmarks); it has one owner
    @property
    def trace(self) -> Trace | None:
        return self.session.trace

    @property
    def analyses(self) -> Analyses | None:
        return self.session.analyses

    @analyses.setter
    def analyses(self, an: Analyses | None) -> None:
        self.session.analyses = an

    @property
    def range(self) -> tuple[int, int] | None:
        return self.session.range

    @property
    def range_stats(self) -> dict[str, Any] | None:
        return self.session.range_stats

    @property
    def loaded(self) -> bool:
        return self.session.loaded

    @property
    def error(self) -> str | None:
        return self.session.error

    @property
    def rank_summary(self) -> dict[str, Any] | None:
        return self.session.rank_summary

    @property
    def path(self) -> str:
        return self.session.path

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
        # back from a suspend (ctrl+z, or `kill -TSTP` from outside) and `fg`/SIGCONT: the
        # terminal shows the shell's screen, and Textual draws only what changed since
        self.watch_for_resume()
        self.query_one(Timeline).focus()
        self._status()
        self._place_detail()
        self.load()
        self._check_size(self.size.width, self.size.height)

    def on_resize(self, event: Any) -> None:
        self._place_detail(event.size.width)
        self._check_size(event.size.width, event.size.height)
        if self.session.trace is not None:
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

    def get_analyses(self) -> "Analyses | None":
        """The aggregates of the trace shown (computed here if the load has not yet)."""
        an = self.session.ensure_analyses()
        if an is not None and not self.session.loaded:
            self.notify("still loading: the figures cover what has been read so far",
                        timeout=4, markup=False)
        return an

    def _status(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" tracetui ", style="bold reverse")
        session = self.session
        t.append(" " + safe_text(shown_path(session.path).rsplit("/", 1)[-1], 40))
        tr = session.trace
        if tr is not None:
            t.append(f" · {tr.size / 1e6:,.1f} MB · {tr.events:,} events · "
                     f"{len(tr.devices)} GPU{'' if len(tr.devices) == 1 else 's'}")
        holds = session.holds
        if holds is not None and holds.held:
            shown = sorted(holds.held)
            t.append(f" · rank{'' if len(shown) == 1 else 's'} "
                     + " ".join(map(str, shown[:6])) + (" …" if len(shown) > 6 else "")
                     + f" of {len(holds)}")
        if session.error:
            t.append("  " + safe_text(session.error, 120), style="bold red")
        elif session.stage is not None:
            t.append(f"   {session.stage}", style="yellow")
            p = self.progress
            if p is not None:
                bar = "█" * int(p.fraction * 10) + "░" * (10 - int(p.fraction * 10))
                t.append(f" {bar} {p.fraction:4.0%}", style="yellow")
        elif not session.loaded and self.progress is not None:
            p = self.progress
            bar = "█" * int(p.fraction * 10) + "░" * (10 - int(p.fraction * 10))
            t.append(f"   loading {bar} {p.fraction:4.0%}  {p.mb_per_s:,.0f} MB/s", style="yellow")
            if tr is not None and self.loader is not None \
                    and self.loader.builder.events > SNAPSHOT_MAX_EVENTS:
                t.append(f"  (showing the first {tr.events / 1e6:,.1f} M events)", style="dim")
        if self._panes_pending is not None and not session.error:
            # a pane asked for before its figures: said until it opens (a notice would go)
            t.append(f"   making the {self._panes_pending[3]}…", style="yellow")
        elif tr is not None and tr.warnings and not session.error and session.stage is None \
                and (session.loaded or self.progress is None):
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

    def action_reset(self) -> None:
        self.timeline.reset()

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

    def action_detail(self) -> None:
        self.query_one("#detail").toggle_class("hidden")

    def action_help(self) -> None:
        """``?``: the keys of the screen in front (the trace's warnings too, on the timeline)."""
        if isinstance(self.screen, HelpScreen):
            return
        main = len(self.screen_stack) == 1
        tr = self.session.trace
        warnings = tr.warnings if tr is not None and main else []
        self.push_screen(HelpScreen(self.screen, warnings, self.applies))

    def applies(self, action: str) -> bool:
        """Whether an action means anything on this trace now (help and the command
        palette list only those): rank keys need ranks, Python folding Python frames,
        the overlap views GPUs, stepping through matches a search."""
        session, tl = self.session, self.timeline
        tr = session.trace
        action = action.split("(", 1)[0].removeprefix("app.")
        if action == "ranks":
            return session.rank_files is not None
        if action in ("align", "collapse_rank"):
            return session.lane_ranks() is not None
        if action == "python":
            return tl.has_python()
        if action == "cancel_load":
            return not session.loaded
        if action in ("overlap", "overlap_row", "exposed", "phases", "kernels", "gap"):
            return tr is None or bool(tr.devices) or not session.loaded
        if action == "match":
            return bool(len(tl.matches))
        if action in ("widen",):
            return session.range is not None
        if action in ("flow", "fit", "operator_of"):
            return tl.selected >= 0
        return True

    def action_collapse(self) -> None:
        self.timeline.toggle_collapse()

    def action_collapse_rank(self) -> None:
        """Every lane of the cursor's rank to its top row, or all of them back."""
        tl, ranks, tr = self.timeline, self.session.lane_ranks(), self.session.trace
        if tr is None or not tl.rows or tl.rows[tl.cursor].lane < 0:
            return
        lane = tl.rows[tl.cursor].lane
        group = [ln.index for ln in tr.lanes
                 if ranks is None or ranks[ln.index] == ranks[lane]]
        tl.set_collapsed(group, collapse=not set(group) <= tl.collapsed, keep_lane=lane)

    def action_ranks(self) -> None:
        summary = self.session.rank_summary
        if self.session.rank_files is None:
            self.notify("one trace: the rank view is for several (tracetui DIR)", timeout=4,
                        markup=False)
            return
        if summary is None:
            self.notify("the per-rank figures are being computed", timeout=3, markup=False)
            return
        from .ranks import RanksScreen

        screen = self._ranks_screen
        if screen is None or screen.summary is not summary:
            # one per set of figures, kept: it opens again with its sort, filter and cursor
            if screen is not None and screen not in self.screen_stack:
                self.uninstall_screen(screen)
            screen = self._ranks_screen = RanksScreen(summary, self.palette,
                                                      self.session.holds)
            self.install_screen(screen, name=f"ranks-{id(summary)}")
        if screen in self.screen_stack:
            return
        self.push_screen(screen)
        for w in summary.get("warnings", [])[:3]:  # e.g. one rank in two files
            self.notify(safe_text(w, 200), severity="warning", timeout=8, markup=False)

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
                             "focus_next", "focus_previous", "pop_screen", "suspend_process"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The timeline's keys work on the timeline only, not inside a view or dialog."""
        if len(self.screen_stack) > 1 and action not in self._EVERYWHERE:
            return False
        prompt = self._prompt
        if prompt is not None and not prompt.has_focus and \
                action not in ("cancel_load", "suspend_process"):
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
    def _view(self, name: str, make: Any, an: Any = None) -> Any:
        """The view ``name`` of what ``an`` is (aggregates; the trace for the memory view;
        None: the current aggregates): made once, then kept (installed) so that it opens
        again at once, with its sort, filter and cursor as they were left. (An everyday
        pane's may come from aggregates still being made.)"""
        an = self.session.analyses if an is None else an
        key = (name, id(an))
        if self._views.get(name, (None, None))[0] != key:
            old = self._views.pop(name, None)
            if old is not None:
                self._stale_views.append(old[1])
            screen = make()
            self.install_screen(screen, name=f"view-{name}-{id(an)}")
            self._views[name] = (key, screen)
        self._sweep_views()
        return self._views[name][1]

    def _views_let_go(self) -> None:
        """Another trace is shown: the views of the one before are let go of now (not when
        each is made again), or the heap, frozen once the new trace's first views are
        made, would keep them and the trace they show."""
        self._stale_views.extend(screen for _, screen in self._views.values())
        self._views.clear()
        self._sweep_views()

    def _sweep_views(self) -> None:
        for stale in list(self._stale_views):  # views of earlier aggregates, once closed
            if stale not in self.screen_stack:
                self.uninstall_screen(stale)
                self._stale_views.remove(stale)
                if stale.is_running:  # built ahead (_prepare_views): its task holds it,
                    self._let_go(stale)  # and with it the aggregates of a trace not shown

    def action_kernels(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        self.push_screen(self._kernel_view(an))

    def _kernel_view(self, an: "Analyses") -> Any:
        return self._view("kernels", lambda: KernelScreen(self.session, an.kernels, an.groups,
                                                         self.palette))

    def _step_view(self, an: "Analyses") -> Any:
        return self._view("steps", lambda: StepScreen(self.session, an, self.palette), an)

    def _operator_view(self, an: "Analyses") -> Any:
        return self._view("operators", lambda: OperatorScreen(self.session, an, self.palette),
                          an)

    def _module_view(self, an: "Analyses") -> Any:
        return self._view("modules", lambda: ModuleScreen(self.session, an, self.palette), an)

    def _occurrence_view(self, an: "Analyses") -> Any:
        return self._view("occurrences", lambda: OccurrenceScreen(self.session, an,
                                                                  self.palette), an)

    def on_show_occurrences(self, message: ShowOccurrences) -> None:
        """An operator's or a module's occurrences, in the one kept screen."""
        an = self.session.pane_analyses()
        if an is None:
            return
        if message.analyses is None or message.analyses is an:
            screen = self._occurrence_view(an)
        else:  # from a view of figures made while loading: its rows are of that snapshot
            screen = OccurrenceScreen(self.session, message.analyses, self.palette)
        screen.show(message.name, message.rows, message.figures, message.shapes)
        self.push_screen(screen)

    def _with_panes(self, pane: str, then: Any) -> None:
        """``then(an)`` with the figures of everyday pane ``pane`` made: at once if they
        are, else when the worker making them is done (and only if the user is still where
        they asked)."""
        session = self.session
        an = session.pane_analyses()
        if an is None or not session.loaded:
            # not on a snapshot of a load under way (their rows are not the final trace's,
            # and the work would slow the load): when the whole trace's figures are made
            if session.trace is not None and not session.error:
                self._panes_pending = (None, self.screen, then, pane)
                self._status()  # (said there until the pane opens)
            return
        if an.pane_ready(pane):
            then(an)
            return
        error = an.pane_errors.get(pane)
        if error is not None:
            self.notify(safe_text(f"the {pane} failed: {error}", 300), severity="error",
                        timeout=8, markup=False)
            return
        self._panes_pending = (an, self.screen, then, pane)
        self.start_panes(an)
        self._status()

    def action_steps(self) -> None:
        """Where each step's time goes (TensorBoard's breakdown)."""
        self._with_panes("steps", lambda an: self.push_screen(self._step_view(an)))

    def action_operators(self) -> None:
        """The operators: host self/total, device self/total (key_averages)."""
        self._with_panes("operators", lambda an: self.push_screen(self._operator_view(an)))

    def action_operator_of(self) -> None:
        """The operator the selected slice (a kernel: its launch) belongs to, in the
        operator table."""
        row = self.timeline.selected
        if row >= 0 and not self.session.loaded:  # (a snapshot's row: not the final trace's)
            self.notify("U: once the trace is loaded", timeout=3, markup=False)
        elif row >= 0:
            self._with_panes("operators", lambda an: self._operator_of(an, row))

    def _operator_of(self, an: "Analyses", row: int) -> None:
        op = operator_of(an.trace, an.op_tree, row)
        if op < 0:
            self.notify("no PyTorch operator around this slice (or its launch)", timeout=3,
                        markup=False)
            return
        screen = self._operator_view(an)
        self.push_screen(screen)
        name = an.trace.name_of(op)
        if screen.is_mounted:
            screen.show_operator(name)
        else:
            screen.call_after_refresh(screen.show_operator, name)

    def action_memory(self) -> None:
        """Each device's memory, the allocations and memory by operator."""
        session = self.session
        if session.trace is None or not session.loaded:
            self.notify("h: once the trace is loaded", timeout=3, markup=False)
            return
        if not session.memory():
            self.notify("no memory events in this trace: profile with profile_memory=True",
                        timeout=4, markup=False)
            return
        tr = session.trace
        screen = self._view("memory", lambda: MemoryScreen(session, self.palette), tr)
        self.push_screen(screen)

    def action_memory_peak(self) -> None:
        """To the peak of the device whose memory rows the cursor is on (else the first
        GPU's, else the CPU's): the peak's column in the middle, the cursor on its rows."""
        curves = self.session.memory()
        tl = self.timeline
        if not curves:
            self.notify("no memory events in this trace: profile with profile_memory=True",
                        timeout=4, markup=False)
            return
        row = tl.rows[tl.cursor] if tl.rows else None
        if row is not None and row.kind == "memory":
            k = row.depth
        else:
            k = next((i for i, c in enumerate(curves) if c.device_type not in (0, 2, 5)), 0)
        c = curves[k]
        end = int(self.session.trace.end_ns) if self.session.trace is not None else 1
        # the current zoom, at most a twentieth of the trace: close enough to see the peak
        span = max(min(tl.t1 - tl.t0, end // 20), 1000)
        t = c.peak_ts
        t0 = min(max(t - span // 2, 0), max(end - span, 0))
        tl.set_window(t0, t0 + span)
        at = tl.memory_row(k)
        if at >= 0:
            tl.cursor = at
            tl.scroll_to(y=max(at - 1, 0), animate=False)
            tl.refresh()
        self.notify(safe_text(f"{c.label} peak {fmt_size(c.peak_bytes)} at +{fmt_time(t)}"
                              + (" (relative to the trace's start)" if c.relative else ""),
                              200), timeout=5, markup=False)

    def action_modules(self) -> None:
        """The nn.Module tree."""
        self._with_panes("modules", lambda an: self.push_screen(self._module_view(an)))

    def _instances_view(self, an: "Analyses") -> Any:
        return self._view("instances", lambda: InstancesScreen(
            self.session, "", np.zeros(0, np.int64), self.palette))

    def on_show_instances(self, message: ShowInstances) -> None:
        self.show_instances(message.title, message.rows)

    def on_show_unattributed(self, _: ShowUnattributed) -> None:
        self.show_unattributed()

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
        t0, t1 = self.session.window((tl.t0, tl.t1))
        return self._view("overlap", lambda: OverlapScreen(
            self.session, an.model, an.annotations, t0, t1, self.palette, an.phases))

    def action_overlap(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        tl = self.timeline
        t0, t1 = self.session.window((tl.t0, tl.t1))
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
            if not an.phases_pending:
                an.phases_pending = True
                self.notify("finding the phases…", timeout=3, markup=False)

                def work() -> None:
                    an.find_phases()
                    self.call_from_thread(self._phases_found, an)

                self.run_worker(work, thread=True, group="phases", name="phases",
                                exit_on_error=False)
            return
        tl = self.timeline
        t0, t1 = self.session.window((tl.t0, tl.t1))
        self.push_screen(PhaseScreen(an.phase_blocks, an.phase_figures, t0, t1, self.palette,
                                     an.trace.end_ns, relevel=an.phases_at))

    def _phases_found(self, an: Analyses) -> None:
        """The phases asked for with ``p`` are ready: their view opens over the timeline,
        not over whatever the user opened meanwhile (the command palette, a table, help:
        a palette under the phase view made the next ctrl+p a DuplicateIds crash)."""
        if an is not self.session.shown_analyses():
            return  # another trace (ranks realigned) since
        if len(self.screen_stack) == 1:
            self.action_phases()
        else:
            self.notify("the phases are ready: p shows them", timeout=4, markup=False)

    def action_command_palette(self) -> None:
        """One palette at a time: not another over a screen that opened above one."""
        from textual.command import CommandPalette

        if any(isinstance(s, CommandPalette) for s in self.screen_stack):
            return
        super().action_command_palette()

    def action_overlap_row(self) -> None:
        an = self.get_analyses()
        if an is None:
            return
        tl = self.timeline
        tl.set_overlap(an.model, show=not tl.show_overlap)
        if tl.show_overlap and not an.model.devices:
            self.notify("no GPU work: no overlap to show", timeout=3, markup=False)

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

    #: what each worker does, for the one line that says it failed
    WORKER_JOBS = {"load": "loading the trace", "phases": "finding the phases",
                   "args": "reading the slice's args",
                   "range": "the marked range's figures", "align": "aligning the ranks",
                   "steps": "making the steps", "operators": "making the operators and modules",
                   "memory": "pairing the memory allocations"}

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that fails (a bug in an analysis, a trace it did not expect) ends in a
        notification that says what failed; the session goes on (its workers are started
        with exit_on_error=False). What waited on it is let go: the phases can be asked for
        again, the range's pane says its figures failed."""
        if event.state != WorkerState.ERROR:
            return
        worker, session = event.worker, self.session
        job = self.WORKER_JOBS.get(worker.name, worker.name or "a background task")
        if worker.name == "load" and session.loaded:  # the trace is in: its aggregates failed
            job = "working out the trace's figures (kernels, overlap, phases)"
        err = worker.error
        what = f"{type(err).__name__}: {err}" if err is not None else "unknown error"
        self.notify(safe_text(f"{job} failed: {what}", 300), severity="error", timeout=12,
                    markup=False)
        an = session.analyses
        if worker.name == "phases" and an is not None:
            an.phases_pending = False  # p tries again
        elif worker.group == "panes":
            self._panes_pending = None  # b, u, M and U try again (and fail again, saying so)
            self._status()
        elif worker.name == "range" and session.range is not None:
            session.range_stats = None
            self._detail_range = Text(f"the range's figures failed: {safe_text(what, 200)}",
                                      style="red")
            self._update_detail()
        elif worker.name == "load" and not session.loaded:
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
            elif len(self.timeline.matches) or self.session.range is not None:
                # the search's hits and the marked range go; the selection stays
                if len(self.timeline.matches):
                    self.clear_matches()
                if self.session.range is not None:
                    self.set_range(None)
                event.stop()

    # ---------------------------------------------------------------- detail
    def on_timeline_selected(self, message: Timeline.Selected) -> None:
        self.show_selection(message.row)

    def show_selection(self, row: int) -> None:
        tr = self.session.trace
        if tr is not None and row >= 0 and tr.args_costly(row):
            # its args are streamed from far back in a damaged file (seconds): the pane
            # shows the rest now, the args when a worker has read them
            self._detail_slice = self.describe(row, args=ARGS_PENDING)
            self.run_worker(lambda: self._read_args(tr, row), thread=True, exclusive=True,
                            group="args", name="args", exit_on_error=False)
        else:
            self._detail_slice = self.describe(row)
        self._show_detail_of(row)

    def _read_args(self, tr: Trace, row: int) -> None:
        args = tr.args_of(row)
        why = tr.pieces.reread_problem() if args is None else None
        self.call_from_thread(self._args_read, tr, row, args, why)

    def _args_read(self, tr: Trace, row: int, args: Any, why: str | None) -> None:
        if tr is self.session.trace and self.timeline.selected == row:
            self._detail_slice = self.describe(row, args=(args, why))
            self._show_detail_of(row)

    def _show_detail_of(self, row: int) -> None:
        tr, rng = self.session.trace, self.session.range
        # the range first when it is this slice's span (an annotation chosen in a view)
        self._range_first = tr is not None and rng is not None and rng == (
            int(tr.start[row]), int(tr.start[row] + tr.dur[row]))
        self._update_detail()

    def _update_detail(self) -> None:
        parts = [self._detail_slice, self._detail_range]
        if self._range_first:
            parts.reverse()
        rng = self.session.range
        if self._note.plain and rng is not None and rng == self._note_range:
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

    def describe(self, row: int, args: Any = READ_ARGS) -> Text:
        """The detail pane's text for slice ``row``, laid out for where the pane is."""
        pane = self.query_one("#detail")
        return describe_slice(self.session.trace, row, self.session.classes,
                              self.session.shown_analyses(), bottom=pane.has_class("bottom"),
                              width=(pane.size.width or self.size.width) - 2, args=args)
