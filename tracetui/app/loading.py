"""Loading: a trace file (or the load the CLI began before the UI was imported, or several
rank files shown as one) read in a worker, shown as it comes, then its aggregates.

Mixed into :class:`~tracetui.app.app.TraceApp`. The worker thread reports progress with a
replaceable :class:`~tracetui.app.messages.LoadProgress` message and hands each snapshot and
the final trace to the UI thread, which puts them in the session.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import numpy as np

from ..textutil import safe_text
from ..trace import Loader, Progress, Trace, TraceError
from ..trace.source import relabel
from .keybar import KeyBar
from .messages import LoadProgress
from .session import Analyses

SNAPSHOT_EVERY_S = 0.3
FULL_GC_EVERY = 100  # middle-generation collections between full ones, once loaded (was 10)
# A snapshot re-sorts everything loaded so far into a copy: past a few million events the
# view keeps the last one (the trace's beginning) until the load ends, or a 4 GB trace would
# load 1.7x slower and peak at 3x the memory (measured: 148 s and 3.4 GB against 89 s and
# 1.1 GB headless).
SNAPSHOT_MAX_EVENTS = 2_000_000

ALIGN_NAMES = {"start": "each rank's start", "step": "the first ProfilerStep",
               "clock": "the recorded clock"}


class Loading:
    """The load worker and what it hands the UI thread."""

    loader: Loader | None = None
    progress: Progress | None = None
    views_ready = False  # the views are built off screen (after the aggregates)

    def _init_loading(self: Any) -> None:
        self._ranks_cancel = threading.Event()

    def load(self: Any) -> None:
        self.run_worker(self._load, thread=True, exclusive=True, name="load",
                        exit_on_error=False)

    def _load(self: Any) -> None:
        session = self.session
        next_at = [0.0]

        def progress(p: Progress) -> None:
            self.post_message(LoadProgress(p))
            now = time.perf_counter()
            if not p.done and now >= next_at[0] and self.loader is not None \
                    and self.loader.builder.events <= SNAPSHOT_MAX_EVENTS:
                snap = self.loader.snapshot()
                classes = session.classify(snap)
                snap.fold_python()  # here, not in the frame the UI draws it
                self.call_from_thread(self._show, snap, classes)
                # a snapshot re-sorts what is loaded so far: keep it under ~20% of the time
                cost = time.perf_counter() - now
                next_at[0] = time.perf_counter() + max(SNAPSHOT_EVERY_S, 4 * cost)

        early = self.early
        if session.rank_files is not None:
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
                self.call_from_thread(self._show, snap, session.classify(snap))
            early.resume(progress)
            early.thread.join()
            if early.error is not None:
                self.call_from_thread(self._failed, early.error)
                return
            trace = early.result
        else:
            try:
                self.loader = Loader(session.path, progress=progress, progress_interval=0.1)
                trace = self.loader.run()
            except TraceError as e:
                self.call_from_thread(self._failed, str(e))
                return
        classes = session.classify(trace)
        trace.fold_python()
        self.call_from_thread(self._show, trace, classes, True)
        # the views' aggregates, ready before the user asks for them
        analyses = session.make_analyses(trace, classes)
        self.call_from_thread(self._set_analyses, analyses)
        if session.rank_traces and session.rank_summary is None:
            self._rank_figures()

    def _load_ranks(self: Any) -> Trace | None:
        """Every rank's file parsed side by side (one worker process per file, as many at
        once as cores), then one timeline of them all; the per-rank figures for the rank
        view come after, in this thread."""
        from ..analysis.ranks import rank_of
        from ..many import load_many
        from ..trace.combine import combine

        session = self.session
        files = session.rank_files or []
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self.post_message(LoadProgress(Progress(done, total, 0,
                                                    time.perf_counter() - started)))

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
        session.rank_traces = loaded
        return combine(loaded, session.align, label=session.path)

    def _rank_figures(self: Any) -> None:
        from ..analysis.ranks import summarize_ranks
        from ..analysis.report import analyze

        session = self.session
        items = [(tr.path, {**analyze(tr, session.rules), "file": tr.path})
                 for _, tr in session.rank_traces]
        summary = summarize_ranks(items)
        self.call_from_thread(setattr, session, "rank_summary", summary)

    def _set_analyses(self: Any, analyses: Analyses) -> None:
        if self.session.take_analyses(analyses):
            # the overlap bins (drawn when the overlap row is on) and the in-flight rows
            self.timeline.set_overlap(analyses.model)
            self.call_after_refresh(self._prepare_views)

    async def _prepare_views(self: Any) -> None:
        """Build the drill-down views ahead of time, off screen: composing, mounting and
        laying out a screen (every widget's first resize) costs more than drawing it; it is
        done once here instead of on the key."""
        an = self.session.shown_analyses()
        if an is None:
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

    def _freeze_heap(self: Any) -> None:
        """Everything made so far (the app, its views, the aggregates) is long-lived: moved
        out of the cyclic collector's sight, a full collection no longer walks it - those
        walks took 25-50 ms at random keys on a 1 GB trace. What is made after (rows drawn
        and cached, a view's state) is still walked by each full collection, 4-7 ms on an
        800 MB trace, which fell on every tenth or so key: full collections wait ten times
        longer (the app makes few reference cycles; the young generations still run)."""
        if self.session.loaded:
            gc.freeze()
            young, middle, _full = gc.get_threshold()
            gc.set_threshold(young, middle, FULL_GC_EVERY)
        self.views_ready = True

    def _failed(self: Any, message: str) -> None:
        message = relabel(message)  # a pipe's temporary copy is named as the user named it
        self.session.error = message
        self._status()
        self.notify(safe_text(message), severity="error", timeout=30, markup=False)

    def on_load_progress(self: Any, message: LoadProgress) -> None:
        self.progress = message.progress
        self._status()

    def _show(self: Any, trace: Trace, classes: np.ndarray, final: bool = False) -> None:
        session = self.session
        first = session.trace is None
        session.set_trace(trace, classes, final)
        self.timeline.set_trace(trace, classes, keep_view=not first)
        self._status()
        self._legend()
        if final:
            self.query_one(KeyBar).refresh_keys()  # keys for GPUs only on GPU traces
            for w in trace.warnings[:3]:
                self.notify(safe_text(w, 200), severity="warning", timeout=10, markup=False)

    def stop_loading(self: Any) -> None:
        """The load is no longer wanted (the app is closing): its thread stops at its next
        piece instead of reading the rest of a large file with no one to show it to (the
        process used to stay, at 100 % CPU, until the whole file was read)."""
        self._ranks_cancel.set()
        if self.loader is not None and not self.session.loaded:
            self.loader.cancel()
        early = self.early
        if early is not None and not self.session.loaded:
            early.loader.cancel()

    def action_cancel_load(self: Any) -> None:
        session = self.session
        if session.rank_files is not None and not session.loaded:
            self._ranks_cancel.set()  # the ranks read so far are shown
            self.notify("loading stopped: showing the ranks read so far", timeout=4,
                        markup=False)
            return
        if self.loader is not None and not session.loaded:
            self.loader.cancel()
            self.notify("loading stopped: showing what was read", timeout=4, markup=False)

    def action_align(self: Any) -> None:
        """Rank traces: the next time origin (trace start, first ProfilerStep, clock)."""
        session = self.session
        if not session.rank_traces or not session.loaded:
            return
        from ..trace.combine import ALIGNS, combine

        session.align = ALIGNS[(ALIGNS.index(session.align) + 1) % len(ALIGNS)] \
            if session.align in ALIGNS else "start"  # from an annotation's name: to start
        trace = combine(session.rank_traces, session.align, label=session.path)
        classes = session.classify(trace)
        session.analyses = None
        self._show(trace, classes, final=True)
        self.timeline.reset()
        missing = trace.align_warnings
        self.notify(f"ranks aligned on: {ALIGN_NAMES[session.align]}"
                    + (f" ({missing[0]}{' …' if len(missing) > 1 else ''})" if missing else ""),
                    timeout=5, markup=False)
        self.run_worker(lambda: self.call_from_thread(self._set_analyses,
                                                      session.make_analyses(trace, classes)),
                        thread=True, exclusive=True, group="align", name="align",
                        exit_on_error=False)
