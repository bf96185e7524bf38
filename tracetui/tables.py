"""Tables, defined once: their columns (with units and formats), default sort, the column a
text filter searches, and what ``⏎`` on a row does. The same definition feeds ``summary``'s
text, ``--json`` (its rows are the report's), ``--csv NAME`` and the app's table screens, so
a new pane is one analysis plus one :class:`TableDef`.

Plain data and formatting only: no rich, no textual (the command line and the app draw).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: how a column's values read: text; µs shown as ms; µs (one decimal; or whole from 100 on);
#: a percentage; a count; a plain number; an id (a rank: 16310, not 16,310)
KINDS = ("text", "ms", "us", "us0", "pct", "count", "num", "id")


@dataclass(frozen=True)
class Col:
    """One column: ``key`` is the row's field (the JSON name, and the CSV header)."""

    key: str
    title: str
    kind: str = "ms"
    #: the app's column width (0: the title's, at least 9; a text column: what is left);
    #: the text output sizes every column to what it holds
    width: int = 0
    optional: int = 0  # > 0: left out first when the terminal is narrow (highest first)
    #: a text too long: "end" keeps its start, "middle" start and end, "apart" the middle
    #: too, made so that no two rows read the same (a kernel's short forms)
    cut: str = "end"
    help: str = ""
    full: str | None = None  # the whole text behind a short one (what a filter also searches)
    missing: str = ""  # what a missing value reads ("—": not applicable)
    min_width: int = 0  # a text column's least width in the app (0: 20)

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    def fmt(self, v: Any) -> str:
        """The cell's text (missing values blank; a percentage without a %)."""
        if v is None or v == "":
            return self.missing
        if self.kind == "text":
            return str(v)
        if isinstance(v, bool):
            return "yes" if v else ""
        try:
            x = float(v)
        except (TypeError, ValueError):
            return str(v)
        if x != x:  # nan: not known
            return ""
        if self.kind == "ms":
            return f"{x / 1000:,.3f}"
        if self.kind == "us":
            return f"{x:,.1f}"
        if self.kind == "us0":  # µs, whole from 100 on (the kernel table's)
            return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"
        if self.kind == "pct":
            return f"{x:.1f}"
        if self.kind == "count":
            return f"{int(x):,}"
        if self.kind == "id":
            return str(int(x))
        if self.kind == "mib":  # bytes, shown in MiB
            return f"{x / 2**20:,.1f}"
        if self.kind == "bytes":  # bytes, in the unit that reads best
            return fmt_size(x)
        return f"{x:,.2f}"


@dataclass(frozen=True)
class TableDef:
    name: str  # the report's key, and ``--csv NAME``
    title: str  # the table's heading
    columns: tuple[Col, ...]
    sort: str  # the default sort column
    descending: bool = True
    text: str = "name"  # what the filter searches
    enter: str = ""  # what ⏎ on a row does, in words (the key bar and ``?``)
    what: str = "rows"  # rows, in words ("operators")
    csv_extra: tuple[str, ...] = field(default=())  # fields only the CSV has
    csv_omit: tuple[str, ...] = field(default=())  # columns the CSV leaves out (a mark)
    # the cells a text column wants (or its widest text, if shorter) before optional columns
    # stay: a name cut to tell it apart reads worse than a statistic left out
    text_goal: int = 60

    def col(self, key: str) -> Col:
        return next(c for c in self.columns if c.key == key)

    def csv_fields(self) -> list[str]:
        if self.name == "kernels":  # (its columns since the first release)
            return list(KERNEL_CSV)
        return [c.key for c in self.columns if c.key not in self.csv_omit] + \
            list(self.csv_extra)

    def sorted_rows(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows in the default order (missing values last; no sort column: as given)."""
        if not self.sort:
            return list(rows)
        col = self.col(self.sort)

        def key(r: dict[str, Any]) -> Any:
            v = r.get(self.sort)
            if col.numeric:
                if v is None or (isinstance(v, float) and v != v):
                    return (1, 0.0)
                return (0, -float(v) if self.descending else float(v))
            return (0, str(v).lower())
        return sorted(rows, key=key)


def fmt_size(x: float) -> str:
    """Bytes in binary units: ``984 B``, ``1.7 MiB``, ``-768.0 KiB``."""
    a = abs(x)
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if a >= scale:
            return f"{x / scale:,.1f} {unit}"
    return f"{int(x):,} B"


def _ms(key: str, title: str, optional: int = 0, help: str = "") -> Col:
    return Col(key, title, "ms", optional=optional, help=help)


#: ``summary --csv``'s kernel columns (the full name, then the short one)
KERNEL_CSV = ("name", "short_name", "class", "count", "total_us", "pct", "avg_us", "median_us",
              "min_us", "max_us", "stddev_us", "tensor_core")

KERNELS = TableDef(
    name="kernels",
    title="GPU kernels by total time",
    columns=(
        # the short form that still tells the kernel apart (display_names); the full name is
        # what the filter also searches, what an export writes and what ⏎ titles
        Col("display_name", "name", "text", cut="apart", full="name"),
        Col("class", "class", "text", width=5),
        Col("count", "count", "count", width=7),
        Col("total_us", "total ms", "ms", width=10),
        Col("pct", "%", "pct", width=6),
        Col("avg_us", "avg µs", "us0", width=9),
        Col("median_us", "med µs", "us0", width=9, optional=1),
        Col("min_us", "min µs", "us0", width=9, optional=2),
        Col("max_us", "max µs", "us0", width=9, optional=3),
        Col("launch_delay_median_us", "launch µs", "us0", width=9, optional=4,
            help="median delay from the runtime call's start to the kernel's"),
        Col("tensor_core", "TC", "num", width=3, optional=5,
            help="runs on Tensor Cores (Matrix Cores on AMD), by its name"),
    ),
    sort="total_us", text="display_name", what="kernels",
    enter="its instances",
)

KERNEL_GROUPS = TableDef(
    name="kernel_groups",
    title="GPU kernels by short name",
    columns=(
        Col("short_name", "short name", "text", cut="apart"),
        Col("class", "class", "text", width=5),
        Col("names", "names", "count", width=5, optional=3),
        Col("count", "count", "count", width=7),
        Col("total_us", "total ms", "ms", width=10),
        Col("pct", "%", "pct", width=6),
        Col("avg_us", "avg µs", "us0", width=9),
        Col("min_us", "min µs", "us0", width=9, optional=2),
        Col("max_us", "max µs", "us0", width=9, optional=1),
    ),
    sort="total_us", text="short_name", what="kernel groups",
    enter="the instances of its kernels",
)

STEPS = TableDef(
    name="steps",
    title="steps: where their time goes, ms (TensorBoard's breakdown)",
    columns=(
        Col("name", "step", "text", cut="middle"),
        _ms("dur_us", "step ms"),
        _ms("kernel_us", "kernel"),
        _ms("memcpy_us", "memcpy", optional=3),
        _ms("memset_us", "memset", optional=4),
        _ms("communication_us", "comm"),
        _ms("runtime_us", "runtime", optional=2),
        _ms("dataloader_us", "dataloader"),
        _ms("cpu_exec_us", "cpu exec"),
        _ms("other_us", "other", optional=1),
        Col("gpu_utilization_pct", "GPU %", "pct", optional=2),
        _ms("exposed_comm_us", "exposed comm", optional=5),
        _ms("host_wait_us", "host wait", optional=6),
        Col("tensor_core_pct", "TC %", "pct", optional=7, missing="—",
            help="of the step's computation kernel time, the share on Tensor Cores"),
    ),
    sort="start_us", descending=False, text="name", what="steps",
    enter="frame the step on the timeline",
    csv_extra=("start_us", "cpu_start_us", "cpu_dur_us", "gpu_launched", "sm_efficiency_pct",
               "achieved_occupancy_pct", "kernel_wait_us", "other_idle_us",
               "cut_off"),
)

_OP_COLUMNS = (
    Col("name", "operator", "text", cut="middle"),
    Col("calls", "calls", "count"),
    _ms("host_self_us", "self ms"),
    _ms("host_total_us", "total ms"),
    _ms("device_self_us", "dev self ms"),
    _ms("device_total_us", "dev total ms"),
    Col("host_self_mean_us", "self µs/call", "us", optional=4),
    Col("device_total_mean_us", "dev µs/call", "us", optional=1),
    Col("achieved_tflops", "TFLOP/s", "num", width=8, optional=2, missing="",
        help="FLOPs (from the input shapes) over the device time of the calls that have them"),
    Col("roofline_pct", "roof %", "pct", width=7, optional=3,
        help="the roofline bound (max of FLOPs / peak, bytes / bandwidth) as % of the "
             "device time: 100 is the datasheet's limit, reached"),
    Col("tensor_core_pct", "TC %", "pct", width=6, optional=5,
        help="of the device time, the share in kernels on Tensor Cores"),
)
#: what the CSV adds of the perf figures
_OP_PERF_CSV = ("flops", "bytes", "flops_calls", "achieved_tbps", "intensity")

OPERATORS = TableDef(
    name="operators",
    title="operators (key_averages: host self/total, device time of what they launched)",
    columns=_OP_COLUMNS, sort="device_total_us", what="operators",
    enter="its occurrences, slowest first",
    csv_extra=("host_total_mean_us", "device_self_mean_us") + _OP_PERF_CSV,
)

OPERATOR_SHAPES = TableDef(
    name="operator_shapes",
    title="operators by input shapes (key_averages(group_by_input_shape=True))",
    columns=_OP_COLUMNS[:2] + (Col("input_dims", "input dims", "text", optional=1,
                                   cut="middle"),) + _OP_COLUMNS[2:6] + _OP_COLUMNS[8:],
    sort="device_total_us", what="operator shapes",
    enter="its occurrences, slowest first",
    csv_extra=("input_types", "host_self_mean_us", "host_total_mean_us", "device_self_mean_us",
               "device_total_mean_us") + _OP_PERF_CSV,
)

def _module_cols(first: Col) -> tuple[Col, ...]:
    return (first, Col("occurrences", "calls", "count"), _ms("host_self_us", "self ms"),
            _ms("host_total_us", "total ms"), _ms("device_self_us", "dev self ms"),
            _ms("device_total_us", "dev total ms"))


MODULE_TYPES = TableDef(
    name="module_types",
    title="modules by type (nn.Module frames)",
    columns=_module_cols(Col("name", "module type", "text", cut="middle")),
    sort="host_total_us", what="module types",
    enter="its calls, slowest first",
)

MODULES = TableDef(
    name="modules",
    title="modules by instance path (nn.Module frames, the tree)",
    columns=_module_cols(Col("name", "module", "text", cut="start")),
    sort="", descending=False, what="modules",
    enter="its calls, slowest first",
    csv_extra=("module", "type", "depth"),
)

# ------------------------------------------------------------------ summary's other tables
OVERLAP = TableDef(
    name="overlap",
    title="communication vs computation, ms",
    columns=(
        Col("device", "GPU", "count"),
        _ms("comm_us", "comm"),
        _ms("comp_us", "comp"),
        _ms("overlap_us", "overlap"),
        Col("overlap_pct", "overlap %", "pct", missing="—"),
        _ms("exposed_comm_us", "exposed comm"),
    ),
    sort="", descending=False, text="device", what="GPUs",
)

ANNOTATIONS = TableDef(
    name="annotations",
    title="annotations, ms, by launch: the GPU work each launched; exposed: its "
          "communication while the GPU computes nothing",
    columns=(
        Col("name", "annotation", "text", cut="middle"),
        # cpu: a CPU range, by what it launched; gpu: a GPU-side user annotation, by its time
        Col("on", "on", "text", width=3, help="cpu: what the CPU range launched; gpu: a "
            "GPU-side annotation, by its time"),
        Col("count", "n", "count", width=6, missing="—"),
        Col("total_us", "time ms", "ms", width=9, missing="—"),
        Col("gpu_us", "GPU ms", "ms", width=9, optional=1),
        Col("comm_us", "comm ms", "ms", width=9),
        Col("exposed_comm_us", "exposed ms", "ms", width=11),
        Col("overlap_pct", "ovl %", "pct", width=7, missing="—"),
    ),
    sort="", descending=False, text="name", what="annotations",
)


def annotation_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's annotation rows as the table shows them (``on``: cpu, gpu or blank for
    the ``(no phase)`` row)."""
    return [{**a, "on": "" if a.get("source") == "none" else a.get("source")} for a in rows]


EXPOSED = TableDef(
    name="exposed",
    title="exposed communication (none of the GPU's computation runs); the largest, ms",
    columns=(
        Col("device", "GPU", "count"),
        _ms("start_us", "at"),
        _ms("dur_us", "dur"),
        Col("kernel_short", "communication kernel", "text", cut="start"),
        Col("phase", "launched in", "text", cut="start"),
        _ms("comp_idle_us", "comp idle", optional=1),
        Col("before", "computation before it", "text", cut="start", optional=2),
    ),
    sort="", descending=False, text="kernel_short", what="stretches", text_goal=20,
)

STREAM_IDLE = TableDef(
    name="stream_idle",
    title="GPU stream idle time, ms: host wait (its next kernel was not launched yet), kernel "
          "wait (short gaps), other; the largest gap",
    columns=(
        Col("lane", "stream", "text", cut="start"),
        _ms("idle_us", "idle"),
        _ms("host_wait_us", "host"),
        _ms("kernel_wait_us", "kernel"),
        _ms("other_idle_us", "other"),
        _ms("gap_us", "gap", optional=1),
        _ms("gap_at_us", "at", optional=2),
        Col("gap_kind", "kind", "text", width=6, optional=3),
    ),
    sort="", descending=False, text="lane", what="streams",
)

LANES = TableDef(
    name="lane_busy",
    title="lanes, busy ms over the trace span",
    columns=(
        Col("name", "lane", "text", cut="middle"),
        Col("kind_short", "kind", "text", width=6),
        Col("events", "events", "count"),
        _ms("busy_us", "busy"),
        Col("utilization_pct", "util %", "pct"),
        _ms("largest_gap_us", "max gap", optional=1),
    ),
    sort="", descending=False, text="name", what="lanes",
)

STREAM_PAIRS = TableDef(
    name="stream_pairs",
    title="streams busy together, ms",
    columns=(
        Col("device", "GPU", "count"),
        Col("streams", "streams", "text", width=12),
        _ms("overlap_us", "both busy"),
    ),
    sort="overlap_us", text="streams", what="stream pairs",
)

RANKS = TableDef(
    name="ranks",
    title="ranks, ms",
    columns=(
        Col("rank", "rank", "id", width=5),
        Col("steps", "steps", "count", width=5, optional=5),
        Col("step_us", "step ms", "ms", width=9),
        Col("gpu_busy_us", "GPU ms", "ms", width=9, optional=4),
        Col("gpu_busy_pct", "busy %", "pct", width=6, optional=2, missing="—"),
        Col("comp_per_step_us", "comp/step", "ms", width=10,
            help="GPU computation per step: what the straggler rule compares"),
        Col("comm_us", "comm ms", "ms", width=10, optional=3),
        Col("exposed_comm_us", "exposed", "ms", width=10),
        Col("overlap_pct", "ovl %", "pct", width=7, missing="—"),
        Col("comm_transfer_us", "transfer", "ms", width=10, optional=6, missing="—",
            help="collectives matched across ranks: the shortest rank's duration of each, "
                 "summed (the data's own time)"),
        Col("comm_sync_us", "sync", "ms", width=10, missing="—",
            help="collectives matched across ranks: this rank's duration less the shortest, "
                 "summed (time waiting for its peers)"),
        Col("late_count", "last", "count", width=5, optional=7,
            help="how many of the matched collectives this rank arrived at last"),
        Col("mark", "", "text", width=11),  # ◀ straggler
        Col("name", "file", "text", cut="middle", optional=1, min_width=10),
    ),
    sort="rank", descending=False, text="name", what="ranks", text_goal=24,
    csv_extra=("file", "straggler"), csv_omit=("mark",),
)


def rank_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A job summary's rank rows as the table shows them: the file's own name, the mark."""
    return [{**r, "name": str(r.get("file", "")).rsplit("/", 1)[-1],
             "mark": "◀ straggler" if r.get("straggler") else ""} for r in rows]


FLOPS = TableDef(
    name="flops",
    title="operators with FLOPs (from input shapes): achieved over their device time",
    columns=(
        Col("name", "operator", "text", cut="middle"),
        Col("flops_calls", "calls", "count"),
        Col("gflop", "GFLOP", "num", width=10),
        _ms("device_total_us", "dev ms"),
        Col("achieved_tflops", "TFLOP/s", "num", width=8),
        Col("achieved_tbps", "TB/s", "num", width=6, optional=2),
        Col("intensity", "FLOP/B", "num", width=8, optional=3),
        Col("roofline_pct", "roof %", "pct", width=7, missing="—"),
        Col("tensor_core_pct", "TC %", "pct", width=6, optional=1, missing="—"),
    ),
    sort="", descending=True, what="operators",
)


def flops_rows(operators: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operators that have FLOPs, by their device time (the ``flops`` table's rows)."""
    rows = [{**o, "gflop": o["flops"] / 1e9} for o in operators
            if o.get("flops") and o.get("achieved_tflops") is not None]
    rows.sort(key=lambda o: -(o.get("device_total_us") or 0))
    return rows


COLLECTIVE_WAITS = TableDef(
    name="collective_waits",
    title="collectives matched across ranks, most skewed first: who the others waited for",
    columns=(
        Col("kind", "collective", "text", width=14),
        Col("index", "#", "id", width=6),
        Col("process_group", "group", "text", width=6, optional=2),
        Col("late_rank", "last rank", "id", width=9),
        Col("start_skew_us", "start skew µs", "us", width=13),
        Col("end_skew_us", "end skew µs", "us", width=12, optional=1),
        Col("transfer_us", "transfer µs", "us", width=12),
        Col("bytes", "size", "bytes", width=10, optional=3, missing="?"),
    ),
    sort="", descending=False, text="kind", what="collectives",
)

COLLECTIVE_KINDS = TableDef(
    name="collective_kinds",
    title="collectives by kind (record_param_comms and their kernels; bus bandwidth by "
          "nccl-tests' definitions, decimal GB/s)",
    columns=(
        Col("kind", "collective", "text", width=14),
        Col("count", "count", "count"),
        Col("bytes", "size", "bytes", width=11, missing="?"),
        _ms("dur_us", "time ms"),
        Col("busbw_median_gbps", "busbw GB/s", "num", width=10, missing="—"),
        Col("busbw_min_gbps", "worst", "num", width=9, missing="—"),
        Col("busbw_max_gbps", "best", "num", width=9, optional=1, missing="—"),
    ),
    sort="dur_us", text="kind", what="kinds",
)

COLLECTIVES = TableDef(
    name="collectives",
    title="collectives, in start order",
    columns=(
        Col("kind", "collective", "text", width=14),
        Col("start_us", "start µs", "us"),
        Col("dur_us", "dur µs", "us"),
        Col("bytes", "size", "bytes", width=11, missing="?"),
        Col("group_size", "ranks", "count", width=5, missing="?"),
        Col("algbw_gbps", "algbw GB/s", "num", width=10, missing="—"),
        Col("busbw_gbps", "busbw GB/s", "num", width=10, missing="—"),
        Col("dtype", "dtype", "text", width=9, optional=1),
        Col("process_group", "group", "text", width=6, optional=2),
    ),
    sort="", descending=False, text="kind", what="collectives",
)


#: every table ``--csv NAME`` can write, by name
MEMORY = TableDef(
    name="memory",
    title="memory per device, MiB ([memory] events; relative: the running sum of Bytes from "
          "the trace's start, where it gives no totals)",
    columns=(
        Col("device", "device", "text"),
        Col("peak_allocated_bytes", "peak", "mib"),
        Col("peak_at_us", "at ms", "ms"),
        Col("peak_reserved_bytes", "peak reserved", "mib", optional=2, missing="—"),
        Col("end_allocated_bytes", "at the end", "mib", optional=1),
        Col("alloc_bytes", "allocated", "mib", optional=1),
        Col("allocs", "allocs", "count"),
        Col("frees", "frees", "count", optional=1),
        Col("relative", "relative", "count"),
    ),
    sort="", descending=False, text="device", what="devices",
)


MEMORY_OPS = TableDef(
    name="memory_ops",
    title="memory by operator (key_averages' CPU memory: net bytes of the events in its "
          "calls; self: less its children's)",
    columns=(
        Col("name", "operator", "text", cut="middle"),
        Col("calls", "calls", "count"),
        Col("self_cpu_bytes", "self CPU", "bytes"),
        Col("cpu_bytes", "CPU", "bytes"),
        Col("self_device_bytes", "self device", "bytes", optional=1),
        Col("device_bytes", "device", "bytes", optional=1),
        Col("allocs", "allocs", "count", optional=2),
    ),
    sort="", descending=True, what="operators",
)


MEMORY_ALLOCATIONS = TableDef(
    name="memory_allocations",
    title="allocations, largest first (freed: by Addr; — none in the trace, ? no addresses)",
    columns=(
        Col("bytes", "bytes", "bytes"),
        Col("device", "device", "text", width=8),
        Col("alloc_us", "at ms", "ms"),
        Col("lifetime_us", "lives ms", "ms", missing="?"),
        Col("free_us", "freed ms", "ms", optional=1, missing="—"),
        Col("op", "allocated in", "text", cut="middle", missing="(no op)"),
    ),
    sort="", descending=True, text="op", what="allocations",
    enter="shows it on the timeline",
)


TABLES: dict[str, TableDef] = {t.name: t for t in (KERNELS, KERNEL_GROUPS, STEPS, OPERATORS,
                                                   OPERATOR_SHAPES, MODULE_TYPES, MODULES)}
#: the summary's other tables (their rows are made from the report's by the text renderer)
TEXT_TABLES: dict[str, TableDef] = {t.name: t for t in (OVERLAP, ANNOTATIONS, EXPOSED,
                                                        STREAM_IDLE, LANES, STREAM_PAIRS,
                                                        MEMORY, MEMORY_OPS, FLOPS,
                                                        COLLECTIVE_KINDS, COLLECTIVES)}
#: the tables of a job (``summary DIR``; ``--csv ranks``)
JOB_TABLES: dict[str, TableDef] = {t.name: t for t in (RANKS, COLLECTIVE_WAITS)}
