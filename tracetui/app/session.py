"""What one open trace is, apart from how it is shown: the UI-free session state.

:class:`Session` owns the trace, its classification, the aggregates behind the views
(:class:`Analyses`), the marked range and its figures, the rules, and for several rank files
the ranks. The app changes it; the screens are built from it and read it; the widgets get
only what they draw. Nothing here imports Textual or Rich (an import-linter contract).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..analysis.annotations import annotation_table, phase_figures
from ..analysis.attribution import DeviceComp, Launches, LaunchPhases, phase_occurrences
from ..analysis.exposed import ExposedStretches
from ..analysis.graphs import Graphs
from ..analysis.inflight import in_flight_spans
from ..analysis.kernels import group_by_short_name, kernel_table
from ..analysis.overlap import device_unions
from ..analysis.phases import DEFAULT_GROUPS, phase_blocks
from ..analysis.rules import DEFAULT_RULES, Rule, classify, in_flight_patterns
from ..analysis.streams import KERNEL_WAIT_US, StreamGaps, kernel_wait
from ..analysis.window import OverlapModel
from ..trace import Trace


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
        self.phases_pending = False
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

    def find_phases(self) -> None:
        """The phase view's blocks and figures (seconds on a large trace: a worker's job)."""
        blocks, self.phase_figures = self.phases_at(None)
        self.phase_blocks = blocks  # last: what the phase view waits for

    def unattributed(self) -> np.ndarray:
        """The GPU work no phase launched, in time order."""
        rows = self.phases.unowned(self.classes)
        return rows[np.argsort(self.trace.start[rows], kind="stable")]


class Session:
    """One open trace (or several rank files shown as one): what the app shows and the
    screens read. A snapshot of a trace still loading is a trace like any other here."""

    def __init__(self, path: str, rules: Iterable[Rule] | None = None,
                 phase_groups: Iterable[str] | None = None,
                 rank_files: Iterable[str] | None = None, align: str = "start") -> None:
        self.path = path
        self.rules = list(rules) if rules is not None else list(DEFAULT_RULES)
        self.phase_groups = tuple(phase_groups) if phase_groups else DEFAULT_GROUPS
        #: several trace files shown as one timeline, lanes grouped by rank, on time origin
        #: ``align``; ``rank_traces`` once read, ``rank_summary`` the rank view's figures
        self.rank_files = list(rank_files) if rank_files else None
        self.align = align
        self.rank_traces: list[tuple[int, Trace]] = []
        self.rank_summary: dict[str, Any] | None = None
        self.trace: Trace | None = None
        self.classes: np.ndarray | None = None  # the trace's class per slice (rules.classify)
        self.loaded = False  # the trace is the whole file (not a snapshot of the load)
        self.error: str | None = None
        self.analyses: Analyses | None = None
        self.range: tuple[int, int] | None = None  # the marked range, in ns
        self.range_stats: dict[str, Any] | None = None

    def classify(self, trace: Trace) -> np.ndarray:
        return classify(trace, self.rules)

    def set_trace(self, trace: Trace, classes: np.ndarray, final: bool) -> None:
        self.trace, self.classes, self.loaded = trace, classes, final

    def make_analyses(self, trace: Trace, classes: np.ndarray) -> Analyses:
        return Analyses(trace, classes, self.phase_groups, self.rules)

    def shown_analyses(self) -> Analyses | None:
        """The aggregates, if they are those of the trace shown (else None: still coming)."""
        an = self.analyses
        return an if an is not None and an.trace is self.trace else None

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
