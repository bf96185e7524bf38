"""Loading: a trace file (or the load the CLI began before the UI was imported, or several
rank files shown as one) read in a worker, shown as it comes, then its aggregates.

Mixed into :class:`~tracetui.app.app.TraceApp`. The worker thread reports progress with a
replaceable :class:`~tracetui.app.messages.LoadProgress` message and hands each snapshot and
the final trace to the UI thread, which puts them in the session.
"""

from __future__ import annotations

import gc
import inspect
import threading
import time
import weakref
from typing import Any

import numpy as np

from ..analysis.memory import DeviceCurve, memory_curves
from ..heap import give_back, keep_freed_memory
from ..textutil import safe_text
from ..trace import Loader, Progress, Trace, TraceError
from ..trace.source import relabel
from . import busy
from .busy import counted
from .keybar import KeyBar
from .messages import LoadProgress, PanesMade
from .session import PANES, Analyses

SNAPSHOT_EVERY_S = 0.3
FREEZE_RETRY_S = 0.25  # a freeze to do again once the workers end: looked at each
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
    panes_shown_ready = False  # and the everyday panes too (after their figures)
    _panes_pending: Any = None  # (analyses, screen, what to do) a pane's key asked for
    _freeze_later: Any = None  # the timer of a freeze that waits for the workers

    def _init_loading(self: Any) -> None:
        self._ranks_cancel = threading.Event()  # ctrl+c: the ranks read so far are shown
        self._loads_stop = threading.Event()  # the app is closing: every load stops
        self._hold_cancel = threading.Event()  # ctrl+c: the rank timelines loading stop
        self._holds_lock = threading.Lock()
        self._hold_loaders: list[Loader] = []
        self._goto_pending: int | None = None  # the rank ⏎ asked for, still loading
        # views let go of, being removed (the removal is a message: until it is handled,
        # the view's timers hold it, and the aggregates it shows)
        self._removing: list[weakref.ref[Any]] = []
        self.freeze_ms: list[float] = []  # each freeze of the heap (its full collection)

    def run_worker(self: Any, work: Any, *args: Any, thread: bool = False,
                   **kwargs: Any) -> Any:
        """A thread worker's work is counted while it runs (see :mod:`.busy`): a freeze of
        the heap while any runs is done again once none does."""
        if thread and callable(work) and not inspect.iscoroutinefunction(work):
            work = counted(work)
        return super().run_worker(work, *args, thread=thread, **kwargs)

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
        if session.rank_files is not None and self._on_demand():
            self._ranks_on_demand()
            return
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
        if len(trace.memory):  # each device's memory curve: its rows under the lanes
            self.call_from_thread(self._set_memory, trace, memory_curves(trace))
        # the figures are hundreds of column-sized arrays made and dropped: kept for the next
        # one rather than faulted in afresh each time (at 3.25 M events the steps took 1.0 s
        # instead of 0.36, the operators 0.43 instead of 0.17); given back once made
        keep_freed_memory(trace.slice_count)
        # the views' aggregates, ready before the user asks for them; the everyday panes'
        # figures on workers beside them (2 cores: both ready about a second sooner)
        analyses = session.make_analyses(
            trace, classes, beside=lambda an: self.call_from_thread(self.start_panes, an))
        self.call_from_thread(self._set_analyses, analyses)
        if session.rank_traces and session.rank_summary is None:
            self._rank_figures()

    def _load_ranks(self: Any) -> Trace | None:
        """Every rank's file parsed side by side (one worker process per file, as many at
        once as cores), then one timeline of them all; the per-rank figures for the rank
        view come after, in this thread."""
        from ..analysis.ranks import distinct_ranks, rank_of
        from ..job.many import load_many
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
        # one rank claimed by two files: the second is its own rank here (lanes, ⏎), said so
        ranks, twice = distinct_ranks([r for r, _ in loaded], [tr.path for _, tr in loaded])
        loaded = [(r, tr) for r, (_, tr) in zip(ranks, loaded)]
        for w in twice[:5]:
            self.call_from_thread(self.notify, safe_text(relabel(w), 200), severity="warning",
                                  timeout=12, markup=False)
        if not loaded:
            self.call_from_thread(self._failed, "none of the rank traces could be read")
            return None
        session.rank_traces = loaded
        return combine(loaded, session.align, label=session.path)

    # ------------------------------------------------------------ ranks opened on demand
    def _on_demand(self: Any) -> bool:
        """A job opened from its reports, its rank timelines loaded on demand: on a Dask
        cluster, with a report among its files, or of more ranks than can be held."""
        from ..analysis.report import is_report
        from ..job.many import default_max_ranks

        session = self.session
        files = session.rank_files or []
        most = session.max_ranks or default_max_ranks(files)[0]
        return bool(session.scheduler) or len(files) > most or any(map(is_report, files))

    def _ranks_on_demand(self: Any) -> None:
        """The rank view from every rank's report (made side by side here, or on the Dask
        cluster; a report given is read as it is), then the timelines of the ranks worth
        seeing first (:func:`~tracetui.app.session.default_ranks`)."""
        from ..analysis.ranks import distinct_ranks, rank_of, summarize_ranks, with_rank
        from ..job.many import as_ranks, default_max_ranks, reports, trace_of
        from .session import RankHolds, default_ranks

        session = self.session
        files = session.rank_files or []
        started = time.perf_counter()
        where = f" on {session.scheduler}" if session.scheduler else ""

        def progress(done: int, total: int, files_done: int) -> None:
            session.stage = f"rank reports{where}: {files_done} of {len(files)}"
            self.post_message(LoadProgress(Progress(done, total, files_done,
                                                    time.perf_counter() - started)))

        session.stage = f"rank reports{where}: 0 of {len(files)}"
        try:
            got = reports(files, session.rules, progress=progress, scheduler=session.scheduler,
                          cancelled=lambda: (self._ranks_cancel.is_set()
                                             or self._loads_stop.is_set()))
        except TraceError as e:
            session.stage = None
            self.call_from_thread(self._failed, str(e))
            return
        if self._loads_stop.is_set():
            return
        self._ranks_cancel.clear()
        items, warnings, inputs = as_ranks(got, session.rules)
        # one rank claimed by two files: the second is its own rank here (rows, ⏎, lanes)
        claimed = [rank_of(r, name, k)[0] for k, (name, r) in enumerate(items)]
        ranks, twice = distinct_ranks(claimed, [name for name, _ in items])
        items = [(name, r if rank == was else with_rank(r, rank))
                 for (name, r), rank, was in zip(items, ranks, claimed)]
        warnings += twice
        for w in warnings[:5]:
            self.call_from_thread(self.notify, safe_text(relabel(w), 200), severity="warning",
                                  timeout=10, markup=False)
        session.stage = None
        if not items:
            self.call_from_thread(self._failed, "none of the rank traces could be read")
            return
        summary = summarize_ranks(items)
        sizes = {name: r.get("size_bytes") for name, r in items}
        paths: dict[int, str | None] = {}
        missing: dict[int, str] = {}
        expect: dict[int, Any] = {}  # a report's trace: its size then
        for row in summary["ranks"]:
            r = int(row["rank"])
            if r in paths:
                continue  # one rank in two files: the first (the summary warns)
            given = inputs.get(row["file"], row["file"])
            paths[r] = trace_of(given, {"file": row["file"]})
            if paths[r] is not None and paths[r] != given:
                expect[r] = sizes.get(row["file"])
            if paths[r] is None:
                missing[r] = (f"rank {r}: its trace {row['file']} is not here (its report "
                              f"{given} was made from it)")
        if session.max_ranks:
            most, why = session.max_ranks, f"at most {session.max_ranks}, --max-ranks"
        else:
            most, why = default_max_ranks(list(paths.values()))
        holds = RankHolds(paths, most, missing)
        holds.why = why
        holds.unread = sum(1 for _, r, err in got if r is None and err is None)
        holds.expect = expect
        self.call_from_thread(self._ranks_ready, summary, holds)
        first, what = default_ranks(summary, most)
        took = f"{len(summary['ranks'])} ranks, from their reports in " \
               f"{time.perf_counter() - started:,.1f} s"
        if not any(paths.get(r) for r in paths):
            self.call_from_thread(
                self.notify, f"{took}. None of the traces they were made from is here: the "
                "rank view only (⏎ on a rank names its trace)", timeout=12, markup=False)
            return
        self.call_from_thread(
            self.notify, f"{took}. Loading the timelines of {what}; ⏎ on a rank opens its own "
            f"(holding {why})", timeout=12, markup=False)
        self._hold(first[::-1])  # the first named (the straggler) the last let go

    def _ranks_ready(self: Any, summary: dict[str, Any], holds: Any) -> None:
        session = self.session
        session.rank_summary, session.holds = summary, holds
        self.progress = None
        self._status()
        if len(self.screen_stack) == 1:
            self.action_ranks()  # the job first: which rank to look at

    def open_rank(self: Any, rank: int) -> None:
        """⏎ on a rank not on the timeline: load its timeline, then go to its lanes."""
        holds = self.session.holds
        problem = holds.problem(rank) if holds is not None else "no ranks"
        if problem is not None:
            self.notify(safe_text(problem, 200), severity="warning", timeout=8, markup=False)
            return
        self._goto_pending = rank
        if rank in holds.loading:
            return
        self.notify(f"loading rank {rank}'s timeline", timeout=3, markup=False)
        self.run_worker(lambda: self._hold([rank]), thread=True, group="holds",
                        name=f"hold-{rank}", exit_on_error=False)

    def _hold(self: Any, ranks: list[int]) -> None:
        """Load the timelines of ``ranks`` (those not held yet), then show the held ranks as
        one timeline (letting go of the least recently asked for beyond ``max_ranks``)."""
        from ..trace.combine import combine

        session, holds = self.session, self.session.holds
        with self._holds_lock:
            if not holds.loading:
                self._hold_cancel.clear()
            todo = holds.ask(ranks)
        if not todo:
            return
        self.call_from_thread(self._holds_changed)
        paths = [holds.paths[r] for r in todo]
        started = time.perf_counter()
        session.stage = "loading rank " + ", ".join(map(str, todo))

        def progress(done: int, total: int) -> None:
            self.post_message(LoadProgress(Progress(done, total, 0,
                                                    time.perf_counter() - started)))

        def stop() -> bool:
            return self._loads_stop.is_set() or self._hold_cancel.is_set()

        got: dict[int, Trace] = {}
        failed: dict[int, str] = {}
        try:
            self._read_ranks(todo, paths, progress, stop, got, failed)
        except MemoryError:
            failed.update({r: "out of memory" for r in todo if r not in got})
        except Exception as e:  # noqa: BLE001 - the rank marked failed, not left "loading"
            failed.update({r: f"internal error: {type(e).__name__}: {e}" for r in todo
                           if r not in got})
        if self._loads_stop.is_set():
            return
        stopped = [r for r in todo if r not in got and r not in failed]
        with self._holds_lock:
            holds.loading.difference_update(stopped)
            dropped = holds.take(got, failed)
            if not holds.loading:
                session.stage = None
            trace = combine(holds.traces(), session.align, label=session.path) \
                if got else None
            if trace is not None:
                holds.combined_bytes = trace.memory_bytes()
                classes = session.classify(trace)
                trace.fold_python()
            self.call_from_thread(self._show_held, trace, classes if trace else None,
                                  list(got), dropped, failed, stopped)
        if trace is not None:
            analyses = session.make_analyses(trace, classes)
            self.call_from_thread(self._set_analyses, analyses)

    def _read_ranks(self: Any, todo: list[int], paths: list[str], progress: Any, stop: Any,
                    got: dict[int, Trace], failed: dict[int, str]) -> None:
        """The traces of ranks ``todo`` (files ``paths``) into ``got``, or why not into
        ``failed``; one that ``stop()`` stopped is in neither."""
        from ..job.many import load_many

        if len(todo) == 1:  # one file: read in ranges by every core
            try:  # (a file gone or replaced since the reports: its one line)
                loader = Loader(paths[0], progress=lambda p: progress(p.bytes_done,
                                                                      p.bytes_total),
                                progress_interval=0.1)
            except TraceError as e:
                failed[todo[0]] = str(e)
                return
            self._hold_loaders.append(loader)
            try:
                tr = loader.run()
                if not stop():
                    got[todo[0]] = tr
            except TraceError as e:
                failed[todo[0]] = str(e)
            finally:
                self._hold_loaders.remove(loader)
        else:  # one process per file
            for r, (_, tr, err) in zip(todo, load_many(paths, progress, cancelled=stop)):
                if tr is not None:
                    got[r] = tr
                elif err is not None:
                    failed[r] = err

    def _show_held(self: Any, trace: Trace | None, classes: Any, got: list[int],
                   dropped: list[int], failed: dict[int, str], stopped: list[int]) -> None:
        for r, err in failed.items():
            self.notify(f"rank {r}: " + safe_text(relabel(err), 200), severity="warning",
                        timeout=10, markup=False)
        holds = self.session.holds
        for r in got:
            tr, then = holds.held.get(r), holds.expect.get(r)
            if tr is not None and isinstance(then, int) and then != tr.size:
                self.notify(f"rank {r}: its trace {safe_text(tr.path, 120)} is not the file its "
                            f"report was made from ({tr.size:,} bytes now, {then:,} then): "
                            "the rank view's figures are the report's", severity="warning",
                            timeout=12, markup=False)
        if stopped:
            self.notify("stopped loading rank " + ", ".join(map(str, stopped)), timeout=4,
                        markup=False)
        if trace is not None:
            self._replace_trace(trace, classes)
        if dropped:
            self.notify(f"let go of rank {', '.join(map(str, dropped))}'s timeline: holding "
                        f"{holds.why}", timeout=6, markup=False)
        self._holds_changed()
        want = self._goto_pending
        if want is not None and want in got:
            self._goto_pending = None
            self.goto_rank(want)
        elif want is not None and (want in failed or want in stopped):
            self._goto_pending = None

    def _holds_changed(self: Any) -> None:
        """The rank view (if open) and the status say which timelines are held."""
        self.progress = None  # (a load's, over or about to start)
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_holds", None)
            if refresh is not None:
                refresh()
        self._status()

    def _replace_trace(self: Any, trace: Trace, classes: Any) -> None:
        """Show another timeline in place of the one shown (ranks realigned, or others
        held): its aggregates come after. The heap frozen after the last load (gc.freeze)
        is thawed first, or the trace let go of - its lanes and it refer to each other -
        would never be collected (it is, before the heap is frozen again)."""
        session = self.session
        gc.unfreeze()
        session.analyses = session.making = None
        self._panes_pending = None  # (it holds the aggregates of the trace let go of)
        self._views_let_go()
        self._show(trace, classes, final=True)

    def _rank_figures(self: Any) -> None:
        from ..analysis.ranks import summarize_ranks, with_rank
        from ..analysis.report import analyze

        session = self.session
        items = [(tr.path, with_rank({**analyze(tr, session.rules), "file": tr.path}, r))
                 for r, tr in session.rank_traces]
        summary = summarize_ranks(items)
        self.call_from_thread(setattr, session, "rank_summary", summary)

    def _set_analyses(self: Any, analyses: Analyses) -> None:
        if self.session.take_analyses(analyses):
            # the overlap bins (drawn when the overlap row is on) and the in-flight rows
            self.timeline.set_overlap(analyses.model)
            self.call_after_refresh(self._prepare_views)
            for pane in PANES:  # made beside the aggregates, before them
                if analyses.pane_ready(pane):
                    self.call_after_refresh(self._panes_made, analyses, pane)
            self.start_panes(analyses)
            self.start_perf(analyses)

    def start_perf(self: Any, an: Analyses) -> None:
        """The operators' FLOPs and the collectives (their args read from the file: seconds
        on a large trace with input shapes), on a worker once the aggregates are made: the
        views' figures come first."""
        ref = weakref.ref(an)

        def work() -> None:
            got = ref()
            if got is not None:
                got.prepare_panes("operators")  # (the op tree, if not made yet)
                got.prepare_perf()

        self.run_worker(work, thread=True, group="perf", name="perf", exit_on_error=False)

    def _set_memory(self: Any, trace: Trace, curves: list[DeviceCurve]) -> None:
        """The memory curves are made: drawn under their devices' lanes, and the allocations
        paired in a worker (for the memory view and a marked range)."""
        session = self.session
        if not session.set_memory(trace, curves):
            return
        self.timeline.set_memory(curves)
        self.run_worker(lambda: session.allocations(make=True), thread=True, group="memory",
                        name="memory", exit_on_error=False)

    def start_panes(self: Any, an: Analyses) -> None:
        """The everyday panes' figures made on two workers, once: the steps on one, the
        operators and then the modules (both from the operator tree) on the other; each
        pane is shown as soon as its own figures are made."""
        if an.panes_started:
            return
        an.panes_started = True
        if an.trace is self.session.trace and self.session.shown_analyses() is not an:
            self.session.making = an  # (the rest still being made: the panes come first)
        ref = weakref.ref(an)  # the workers (kept in contexts) do not keep the aggregates

        def work(panes: tuple[str, ...]) -> None:
            for i, pane in enumerate(panes):
                got = ref()
                if got is None:
                    return
                try:
                    got.prepare_panes(pane)
                except Exception:
                    for later in panes[i + 1:]:  # (their key says so, rather than wait)
                        got.pane_errors.setdefault(later, f"not made: the {pane} failed")
                    raise
                self.post_message(PanesMade(got, pane))
                del got

        for name, panes in (("steps", ("steps",)), ("operators", ("operators", "modules"))):
            self.run_worker(lambda panes=panes: work(panes), thread=True, group="panes",
                            name=name, exit_on_error=False)

    async def on_panes_made(self: Any, message: PanesMade) -> None:
        await self._panes_made(message.analyses, message.pane)

    async def _panes_made(self: Any, an: Analyses, pane: str) -> None:
        """A pane's figures are in: if its key was pressed meanwhile, it opens (if the user
        is still where they pressed it), and its screens are built off screen."""
        if an is not self.session.pane_analyses() or pane in an.panes_shown:
            return  # (another trace's since; or done)
        an.panes_shown.add(pane)
        pending = self._panes_pending
        if pending is not None and pending[3] == pane:
            self._panes_pending = None
            self._status()
            if pending[1] is self.screen:  # (of these, or earlier ones)
                pending[2](an)
        views = {"steps": (self._step_view,),
                 "operators": (self._operator_view, self._occurrence_view),
                 "modules": (self._module_view,)}[pane]
        await self._build_off_screen(tuple(view(an) for view in views))
        if len(an.panes_shown) == len(PANES):
            # the panes' screens are long-lived too; and the panes of the aggregates shown
            # before (the first freeze may have come while they were still up) are let go of
            self.call_after_refresh(self._freeze_heap)
            self.panes_shown_ready = True
            self._give_back_heap(an)

    def _give_back_heap(self: Any, an: Analyses) -> None:
        """Once the views and every pane are made, what the heap kept for the next array
        (keep_freed_memory) goes back to the system (a thread: it walks the heap)."""
        if an.views_built and len(an.panes_shown) == len(PANES) and not an.heap_given_back:
            an.heap_given_back = True
            threading.Thread(target=give_back, name="heap", daemon=True).start()

    async def _prepare_views(self: Any) -> None:
        """Build the drill-down views ahead of time, off screen: composing, mounting and
        laying out a screen (every widget's first resize) costs more than drawing it; it is
        done once here instead of on the key."""
        an = self.session.shown_analyses()
        if an is None:
            return
        await self._build_off_screen((self._kernel_view(an), self._overlap_view(an),
                                      self._instances_view(an)))
        self.call_after_refresh(self._freeze_heap, True)
        an.views_built = True
        self._give_back_heap(an)

    async def _build_off_screen(self: Any, views: Any) -> None:
        """Compose, mount and lay out ``views`` unseen (screens not shown yet). One that a
        later trace's view replaced meanwhile (while an earlier one was mounted) is not
        started: nothing would stop it, and it would hold the old trace."""
        for screen in views:
            current = any(v is screen for _, v in self._views.values())
            if current and not screen.is_running and screen not in self.screen_stack:
                try:  # Textual internals: if they change, the view is built on the key
                    _, mounted = self._get_screen(screen)  # registers and starts it, unseen
                    await mounted
                    screen._refresh_layout(self.size)  # sized now: no resize when shown
                except Exception:  # noqa: BLE001
                    break

    def _freeze_heap(self: Any, views: bool = False) -> None:
        """Everything made so far (the app, its views, the aggregates) is long-lived: moved
        out of the cyclic collector's sight, a full collection no longer walks it - those
        walks took 25-50 ms at random keys on a 1 GB trace. What is made after (rows drawn
        and cached, a view's state) is still walked by each full collection, 4-7 ms on an
        800 MB trace, which fell on every tenth or so key: full collections wait ten times
        longer (the app makes few reference cycles; the young generations still run)."""
        if self.session.loaded:
            # what a trace shown before left (cycles) is not frozen with it: what an earlier
            # freeze held and has been let go of since (the views of the aggregates of the
            # timeline shown before, its panes' worker) is collected too
            t = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.freeze_ms.append(round((time.perf_counter() - t) * 1000, 1))
            young, middle, _full = gc.get_threshold()
            gc.set_threshold(young, middle, FULL_GC_EVERY)
            if self._still_held() and self._freeze_later is None:
                # a worker still at work holds what it works on (a trace shown before, whose
                # worker was let go of but runs on), a view being removed its aggregates:
                # frozen with the rest, they would never be collected - once they are let
                # go of, the heap is thawed, collected and frozen again
                self._freeze_later = self.set_timer(FREEZE_RETRY_S, self._freeze_deferred)
        if views:
            self.views_ready = True

    def _still_held(self: Any) -> bool:
        """Whether a worker runs, or a view let go of is still being removed."""
        self._removing = [ref for ref in self._removing
                          if (view := ref()) is not None and view.is_running]
        return bool(busy.running() or self._removing)

    def _let_go(self: Any, view: Any) -> None:
        """A view built ahead and no longer wanted (its aggregates are not shown any
        more): removed, and the heap is not frozen before it is."""
        view.remove()
        self._removing.append(weakref.ref(view))

    def _freeze_deferred(self: Any) -> None:
        self._freeze_later = None
        if self._still_held():  # (still: look again later)
            self._freeze_later = self.set_timer(FREEZE_RETRY_S, self._freeze_deferred)
        else:
            self._freeze_heap()

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
        self._loads_stop.set()
        for loader in list(self._hold_loaders):
            loader.cancel()
        if self.loader is not None and not self.session.loaded:
            self.loader.cancel()
        early = self.early
        if early is not None and not self.session.loaded:
            early.loader.cancel()

    def action_cancel_load(self: Any) -> None:
        session = self.session
        holds = session.holds
        if holds is not None and holds.loading:  # rank timelines opened on demand
            self._hold_cancel.set()
            for loader in list(self._hold_loaders):
                loader.cancel()
            return
        if session.rank_files is not None and session.stage is not None and holds is None:
            self._ranks_cancel.set()  # the reports made so far make the rank view
            self.notify("stopped: the rank view of the ranks reported so far", timeout=4,
                        markup=False)
            return
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
        if not (session.rank_traces or session.holds is not None and session.holds.held) \
                or not session.loaded:
            return
        from ..trace.combine import ALIGNS, combine

        session.align = ALIGNS[(ALIGNS.index(session.align) + 1) % len(ALIGNS)] \
            if session.align in ALIGNS else "start"  # from an annotation's name: to start
        ranks = session.holds.traces() if session.holds is not None else session.rank_traces
        trace = combine(ranks, session.align, label=session.path)
        classes = session.classify(trace)
        self._replace_trace(trace, classes)
        self.timeline.reset()
        missing = trace.align_warnings
        self.notify(f"ranks aligned on: {ALIGN_NAMES[session.align]}"
                    + (f" ({missing[0]}{' …' if len(missing) > 1 else ''})" if missing else ""),
                    timeout=5, markup=False)
        self.run_worker(lambda: self.call_from_thread(self._set_analyses,
                                                      session.make_analyses(trace, classes)),
                        thread=True, exclusive=True, group="align", name="align",
                        exit_on_error=False)
