"""What one open trace is, apart from how it is shown: the UI-free session state.

:class:`Session` owns the trace, its classification, the aggregates behind the views
(:class:`Analyses`), the marked range and its figures, the rules, and for several rank files
the ranks. The app changes it; the screens are built from it and read it; the widgets get
only what they draw. Nothing here imports Textual or Rich (an import-linter contract).
"""

from __future__ import annotations

from collections import OrderedDict
import threading
import time
from typing import Any, Callable, Iterable

import numpy as np

from ..analysis.annotations import annotation_table, phase_figures
from ..analysis.attribution import DeviceComp, Launches, LaunchPhases, phase_occurrences
from ..analysis.exposed import ExposedStretches
from ..analysis.graphs import Graphs
from ..analysis.inflight import in_flight_spans
from ..analysis.kernels import group_by_short_name, kernel_table
from ..analysis.memory import Allocations, DeviceCurve
from ..analysis.modules import ModuleFrames
from ..analysis.operators import OpTree, op_tree, operator_table
from ..analysis.collectives import collective_ops, collectives
from ..analysis.operators import costs
from ..analysis.perf import READ_FIELDS, Costs, trace_peaks, with_formula, with_shapes
from ..analysis.overlap import device_unions
from ..analysis.phases import DEFAULT_GROUPS, phase_blocks
from ..analysis.rules import DEFAULT_RULES, Rule, classify, in_flight_patterns
from ..analysis.steps import Steps, step_breakdown, step_rows
from ..analysis.streams import KERNEL_WAIT_US, StreamGaps, kernel_wait
from ..analysis.window import OverlapModel
from ..trace import Trace


#: the everyday panes, each made and shown on its own: a pane's key waits for its figures only
PANES = ("steps", "operators", "modules")
#: how long the aggregates wait for the panes' figures before they are made beside them
PANES_HEAD_START_S = 1.0


class Analyses:
    """The aggregates behind the drill-down views, for one trace (computed once)."""

    def __init__(self, trace: Trace, classes: np.ndarray,
                 groups: Iterable[str] = DEFAULT_GROUPS,
                 rules: Iterable[Rule] = DEFAULT_RULES,
                 beside: Callable[[Analyses], None] | None = None,
                 step_regex: str | None = None, peaks: dict | None = None) -> None:
        """``beside``: called once the devices' unions are made (all the steps need of the
        rest), to start :meth:`prepare_panes` on other threads while the rest is made."""
        self.trace = trace
        self.peaks = trace_peaks(trace, peaks)  # the device's (None: unknown)
        self.step_regex = step_regex
        self.phase_groups = tuple(groups)  # (self.groups: the kernels by short name)
        self.classes = classes
        self._panes: dict[str, Any] = {}
        self._panes_lock = threading.Lock()
        self._pane_locks: dict[str, threading.RLock] = {}
        self._pane_done = {p: threading.Event() for p in PANES}
        self.panes_started = False  # workers make them (prepare_panes)
        #: why a pane's figures failed (by pane), said when its key is pressed
        self.pane_errors: dict[str, str] = {}
        self.panes_shown: set[str] = set()  # (the app's: the panes whose screens are built)
        self.views_built = False  # (the app's: the other views' screens are built)
        self.heap_given_back = False  # (the app's: what the work kept is given back)
        unions = self.unions = device_unions(trace, classes)
        if beside is not None:
            # what both threads read and the trace or the unions make on first use is made
            # first, so that the threads only read it (as the report does)
            trace.fold_python()
            _ = trace.python_cats
            for du in unions:
                _ = du.exposed
            beside(self)
            # the panes' figures first: three threads computing on two cores made each pane
            # wait for its share (the steps 0.85 s instead of 0.45 at 3.25 M events, their
            # page faults slowed by each other's); the aggregates start when they are done,
            # or after a second's head start on a trace large enough to take longer
            # (and no longer once a pane's figures have failed: the rest may never come)
            deadline = time.monotonic() + PANES_HEAD_START_S
            while not self.pane_errors and time.monotonic() < deadline:
                waiting = [e for e in self._pane_done.values() if not e.is_set()]
                if not waiting:
                    break
                waiting[0].wait(0.01)
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
        self.phases_pending = False
        for k in range(len(self.model.devices)):  # what the overlap view's matrix needs
            self.model.pair_covers(k)
        _ = trace._launch_sorted  # the launch index the detail pane's first "[" / "]" needs

    # the everyday panes' figures (steps, operators, modules): made once, off the UI thread,
    # beside the aggregates (:meth:`prepare_panes`), so that ``b``/``u``/``M`` open at once;
    # a lock per figure, so that two threads never make one twice, and a thread making the
    # steps never waits for one making the operators
    def _pane(self, name: str, make: Callable[[], Any]) -> Any:
        got = self._panes.get(name)
        if got is None:
            with self._panes_lock:
                lock = self._pane_locks.setdefault(name, threading.RLock())
            with lock:
                got = self._panes.get(name)
                if got is None:
                    got = self._panes[name] = make()
        return got

    @property
    def steps(self) -> Steps:
        return self._pane("steps", lambda: step_breakdown(self.trace, self.classes,
                                                          self.step_regex, self.unions))

    @property
    def step_rows(self) -> list[dict[str, Any]]:
        return self._pane("step_rows", lambda: step_rows(self.steps))

    @property
    def op_tree(self) -> OpTree:
        return self._pane("op_tree", lambda: op_tree(self.trace, self.classes))

    @property
    def operators(self) -> list[dict[str, Any]]:
        """The operator table, first without FLOPs (their args are read from the file
        after every pane is made: :meth:`prepare_perf`), then with them."""
        got = self._panes.get("operators_perf")
        if got is not None:
            return got
        return self._pane("operators", lambda: operator_table(
            self.trace, self.op_tree, self.peaks, Costs(len(self.op_tree.rows))))

    @property
    def perf_ready(self) -> bool:
        """The operators' FLOPs and the collectives are made."""
        return "operators_perf" in self._panes and "collectives" in self._panes

    def prepare_perf(self) -> None:
        """The operators' FLOPs and the collectives, from one pass over the file for the
        args they read (seconds on a large trace with input shapes: a worker's job, after
        the panes, which open without them)."""
        if self.perf_ready:
            return
        tr, tree = self.trace, self.op_tree
        rows = np.union1d(with_shapes(tr, with_formula(tr, tree.rows)),
                          collective_ops(tr, self.classes, tree.up))
        raw = dict(tr.args_many(rows, READ_FIELDS))
        _ = self._pane("collectives", lambda: collectives(tr, self.classes, tree.up, raw))
        _ = self._pane("operators_perf", lambda: operator_table(tr, tree, self.peaks,
                                                                costs(tr, tree, raw)))

    def collectives_by_kernel(self) -> dict[int, dict[str, Any]] | None:
        """Each collective by its first kernel's row; None while they are being made."""
        got = self._panes.get("collectives")
        if got is None:
            return None
        by = self._panes.get("collectives_by_kernel")
        if by is None:
            by = self._panes["collectives_by_kernel"] = {c["row"]: c for c in got}
        return by

    @property
    def module_frames(self) -> ModuleFrames:
        return self._pane("module_frames", lambda: ModuleFrames(self.trace, self.op_tree))

    @property
    def panes_ready(self) -> bool:
        """The steps', operators' and modules' figures are all made."""
        return all(e.is_set() for e in self._pane_done.values())

    def pane_ready(self, pane: str) -> bool:
        """The figures of ``pane`` (one of :data:`PANES`) are made."""
        return self._pane_done[pane].is_set()

    @property
    def panes_error(self) -> str | None:
        """Why a pane's figures failed (the first of them), or None."""
        return next(iter(self.pane_errors.values()), None)

    def prepare_panes(self, pane: str | None = None) -> None:
        """Make the figures of ``pane`` (None: of every pane) - a worker's job: 0.2-0.4 s
        each at 800 MB. Safe to call again, or from two threads: each is made once."""
        for p in PANES if pane is None else (pane,):
            try:
                if p == "steps":
                    _ = self.step_rows
                elif p == "operators":
                    _ = self.operators
                    self.op_tree.by_name(self.trace)  # (an operator's occurrences: its ⏎)
                else:
                    _ = self.module_frames
            except Exception as e:  # said once (the worker's notice); the pane then says it
                self.pane_errors.setdefault(p, f"{type(e).__name__}: {e}")
                raise
            self._pane_done[p].set()

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

    def find_phases(self) -> None:
        """The phase view's blocks and figures (seconds on a large trace: a worker's job)."""
        blocks, self.phase_figures = self.phases_at(None)
        self.phase_blocks = blocks  # last: what the phase view waits for

    def unattributed(self) -> np.ndarray:
        """The GPU work no phase launched, in time order."""
        rows = self.phases.unowned(self.classes)
        return rows[np.argsort(self.trace.start[rows], kind="stable")]


class RankHolds:
    """The rank timelines of a job opened on demand (``tracetui DIR`` of more ranks than
    ``max_ranks``, or from reports): the rank view comes from the ranks' reports, and only
    the ranks asked for are loaded, at most ``max_ranks`` at once (the one least recently
    asked for let go first). ``paths``: each rank's trace file (None: not found)."""

    def __init__(self, paths: dict[int, str | None], max_ranks: int,
                 missing: dict[int, str] | None = None) -> None:
        self.paths = dict(paths)
        self.max_ranks = max(1, int(max_ranks))
        self.held: OrderedDict[int, Trace] = OrderedDict()  # least recently asked first
        self.loading: set[int] = set()
        #: why a rank has no timeline: its trace not found, or its load failed
        self.problems: dict[int, str] = dict(missing or {})
        self.combined_bytes = 0  # the combined timeline shown (set when it is made)
        self._bytes: dict[int, int] = {}  # each held rank's index, measured when taken
        self.why = f"at most {self.max_ranks}"  # how max_ranks was chosen, as shown
        self.unread = 0  # files whose report was not made (^c stopped the reports)
        #: a rank known from a report: its trace's size when the report was made
        self.expect: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def state(self, rank: int) -> str:
        """What the rank view says of rank ``rank``'s timeline."""
        if rank in self.held:
            return "shown"
        if rank in self.loading:
            return "loading"
        if rank in self.problems:
            return "none" if self.paths.get(rank) is None else "failed"
        return ""

    def problem(self, rank: int) -> str | None:
        """Why rank ``rank``'s timeline cannot be opened (None: it can)."""
        if rank not in self.paths:
            return f"no rank {rank} in this job"
        if self.paths[rank] is None or rank in self.problems and rank not in self.held:
            return self.problems.get(rank, f"rank {rank}: no trace file")
        return None

    def ask(self, ranks: Iterable[int]) -> list[int]:
        """Ranks asked for, in order: those held become the most recent; returns those to
        load (neither held, loading, nor without a file), at most ``max_ranks``."""
        todo = []
        for r in ranks:
            if r in self.held:
                self.held.move_to_end(r)
            elif r not in self.loading and self.problem(r) is None \
                    and len(todo) < self.max_ranks:
                todo.append(r)
        self.loading.update(todo)
        return todo

    def take(self, got: dict[int, Trace], failed: dict[int, str]) -> list[int]:
        """Loaded ranks in (and failed ones out); returns the ranks let go to stay within
        ``max_ranks``: the least recently asked for first, never one just loaded."""
        for r, err in failed.items():
            self.loading.discard(r)
            self.problems[r] = err
        for r, tr in got.items():
            self.loading.discard(r)
            self.problems.pop(r, None)
            self.held[r] = tr
            self.held.move_to_end(r)
            self._bytes[r] = tr.memory_bytes()
        dropped = []
        for r in list(self.held):
            if len(self.held) <= self.max_ranks:
                break
            if r not in got:
                del self.held[r]
                self._bytes.pop(r, None)
                dropped.append(r)
        return dropped

    def traces(self) -> list[tuple[int, Trace]]:
        """The held ranks' traces, in rank order (what :func:`combine` takes)."""
        return sorted(self.held.items())

    def memory_bytes(self) -> int:
        """What the held timelines take: each rank's index and the combined one shown
        (measured when they were made, in the load thread: the title is drawn often)."""
        return sum(self._bytes.values()) + self.combined_bytes


def default_ranks(summary: dict[str, Any], most: int) -> tuple[list[int], str]:
    """The ranks a job of many opens with, and how to say so: every rank if there are no
    more than ``most``; else the stragglers and the median rank (the one whose computation
    per step is nearest the median) - with no straggler, the slowest rank and the median."""
    rows = summary["ranks"]
    if len(rows) <= most:
        return [r["rank"] for r in rows], "every rank"
    med = summary.get("median_comp_per_step_us") or 0.0
    calm = [r for r in rows if not r["straggler"]] or rows
    median_rank = min(calm, key=lambda r: (abs(r["comp_per_step_us"] - med), r["rank"]))["rank"]
    slow = [r["rank"] for r in rows if r["straggler"]]
    if slow:
        picked = slow[: max(most - 1, 1)]
        what = ("the straggler" if len(picked) == 1 else "the stragglers") + \
            f" ({', '.join(map(str, picked))})"
    else:
        slowest = max(rows, key=lambda r: (r["comp_per_step_us"], -r["rank"]))["rank"]
        if slowest == median_rank:  # every rank alike
            return [median_rank], f"the median rank ({median_rank}; no straggler)"
        picked = [slowest]
        what = f"the slowest rank ({slowest}; no straggler)"
    if len(picked) < most and median_rank not in picked:
        picked.append(median_rank)
        what += f" and the median rank ({median_rank})"
    return picked, what


class Session:
    """One open trace (or several rank files shown as one): what the app shows and the
    screens read. A snapshot of a trace still loading is a trace like any other here."""

    def __init__(self, path: str, rules: Iterable[Rule] | None = None,
                 phase_groups: Iterable[str] | None = None,
                 rank_files: Iterable[str] | None = None, align: str = "start",
                 max_ranks: int | None = None, scheduler: str | None = None,
                 step_regex: str | None = None, peaks: dict | None = None) -> None:
        self.path = path
        self.peaks = peaks  # the config's [peaks] (None: the built-in table alone)
        self.step_regex = step_regex  # the step annotations (None: ProfilerStep#N)
        self.rules = list(rules) if rules is not None else list(DEFAULT_RULES)
        self.phase_groups = tuple(phase_groups) if phase_groups else DEFAULT_GROUPS
        #: several trace files shown as one timeline, lanes grouped by rank, on time origin
        #: ``align``; ``rank_traces`` once read, ``rank_summary`` the rank view's figures
        self.rank_files = list(rank_files) if rank_files else None
        self.align = align
        self.rank_traces: list[tuple[int, Trace]] = []
        self.rank_summary: dict[str, Any] | None = None
        #: the most rank timelines held at once (None: tracetui.job.many.default_max_ranks);
        #: a job of more ranks, from reports, or on a Dask cluster (``scheduler``: its
        #: address) opens on demand: ``holds``, made when the reports are in
        self.max_ranks = max_ranks
        self.scheduler = scheduler
        self.holds: RankHolds | None = None
        self.stage: str | None = None  # what the load is doing, when it is not one file
        self.trace: Trace | None = None
        self.classes: np.ndarray | None = None  # the trace's class per slice (rules.classify)
        self.loaded = False  # the trace is the whole file (not a snapshot of the load)
        self.error: str | None = None
        self.analyses: Analyses | None = None
        #: the aggregates still being made, whose everyday panes' figures may come first
        #: (made beside them): the panes open from them before the rest is made
        self.making: Analyses | None = None
        #: the memory curve of each device with memory events, and their allocations
        #: paired (made once, off the UI thread), of trace ``memory_trace``
        self.memory_curves: list[DeviceCurve] = []
        self.memory_trace: Trace | None = None
        self._allocations: Allocations | None = None
        self._allocations_lock = threading.Lock()
        self.range: tuple[int, int] | None = None  # the marked range, in ns
        self.range_stats: dict[str, Any] | None = None

    def classify(self, trace: Trace) -> np.ndarray:
        return classify(trace, self.rules)

    def set_trace(self, trace: Trace, classes: np.ndarray, final: bool) -> None:
        self.trace, self.classes, self.loaded = trace, classes, final

    def make_analyses(self, trace: Trace, classes: np.ndarray,
                      beside: Callable[[Analyses], None] | None = None) -> Analyses:
        """The aggregates (``beside``: see :class:`Analyses`)."""
        return Analyses(trace, classes, self.phase_groups, self.rules, beside=beside,
                        step_regex=self.step_regex, peaks=self.peaks)

    def shown_analyses(self) -> Analyses | None:
        """The aggregates, if they are those of the trace shown (else None: still coming)."""
        an = self.analyses
        return an if an is not None and an.trace is self.trace else None

    def set_memory(self, trace: Trace, curves: list[DeviceCurve]) -> bool:
        """Keep the memory curves made off the UI thread if ``trace`` is still shown."""
        if trace is not self.trace:
            return False
        self.memory_curves, self.memory_trace = list(curves), trace
        self._allocations = None
        return True

    def memory(self) -> list[DeviceCurve]:
        """The memory curves of the trace shown (none: no memory events, or not made yet)."""
        return self.memory_curves if self.memory_trace is self.trace else []

    def allocations(self, make: bool = False) -> Allocations | None:
        """The shown trace's allocations paired (``make``: made here if they are not - a
        worker's job, seconds at millions of events - else None until they are)."""
        trace = self.memory_trace
        if trace is None or trace is not self.trace:
            return None
        got = self._allocations
        if got is None and make:
            with self._allocations_lock:
                got = self._allocations
                if got is None or got.trace is not trace:
                    got = Allocations(trace)
                    if self.memory_trace is trace:
                        self._allocations = got
        return got if got is not None and got.trace is trace else None

    def pane_analyses(self) -> Analyses | None:
        """Where the everyday panes of the trace shown come from: its aggregates, or those
        still being made (their panes' figures are made beside them, and may be ready
        first); None: neither (still loading)."""
        an = self.shown_analyses()
        if an is None and self.making is not None and self.making.trace is self.trace:
            an = self.making
        return an

    def ensure_analyses(self) -> Analyses | None:
        """The aggregates of the trace shown, computed here if the load has not yet."""
        tr, classes = self.trace, self.classes
        if tr is None or classes is None:
            return None
        if self.analyses is None or self.analyses.trace is not tr:
            self.analyses = self.make_analyses(tr, classes)
        return self.analyses

    def take_analyses(self, analyses: Analyses) -> bool:
        """Keep aggregates made off the UI thread if they are still the shown trace's."""
        if self.making is analyses or (self.making is not None
                                       and self.making.trace is not self.trace):
            self.making = None
        if self.trace is analyses.trace:
            self.analyses = analyses
            return True
        return False

    def clamp(self, rng: tuple[int, int]) -> tuple[int, int]:
        """A range kept on the trace, at least 1 ns long."""
        a, b = int(rng[0]), int(rng[1])
        if self.trace is not None:
            a, b = max(a, 0), min(b, max(self.trace.end_ns, 1))
        return a, max(b, a + 1)

    def lane_ranks(self) -> list[int] | None:
        """Each lane's rank, for several rank files shown as one (else None)."""
        return getattr(self.trace, "rank_of_lane", None)

    def window(self, view: tuple[int, int]) -> tuple[int, int]:
        """What a view opened now covers: the marked range, else the timeline's ``view``."""
        return self.range if self.range is not None else view
