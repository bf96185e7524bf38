"""Everything ``tracetui summary`` reports, as plain data (JSON-ready)."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..trace import Trace, TraceError
from .annotations import annotation_table
from .collectives import collective_kinds, collective_ops, collectives
from .attribution import DeviceComp, Launches, LaunchPhases, phase_occurrences
from .exposed import ExposedStretches
from .facts import trace_facts
from .graphs import Graphs
from .inflight import device_in_flight, figures as in_flight_figures, in_flight_spans, span_records
from .kernels import group_by_short_name, kernel_table
from .memory import memory_sections
from .modules import ModuleFrames, module_paths, module_types
from .operators import costs, op_tree, operator_memory, operator_shape_table, operator_table
from .perf import READ_FIELDS, peaks_record, trace_peaks, with_formula, with_shapes
from .overlap import DeviceUnions, device_overlap, device_unions, stream_overlap
from .phases import DEFAULT_GROUPS, phase_blocks
from .rules import DEFAULT_RULES, Rule, classify, describe, in_flight_patterns
from .steps import step_breakdown, step_rows, step_summary
from .streams import KERNEL_WAIT_US, stream_stats


#: What ``summary FILE --json`` writes first: the report is a rank (``summary DIR`` and
#: ``summary A B`` take such a file as the rank whose trace it was made from).
REPORT_SCHEMA = "tracetui.report"
#: Its layout's version: raised when a field a rank needs changes meaning or goes away.
REPORT_VERSION = 1
#: What a rank's figures read from a report (:func:`tracetui.analysis.ranks.rank_figures`)
RANK_FIELDS = ("file", "events", "span_ns", "devices", "overlap", "annotations")

IN_FLIGHT_RECORDS = 1000  # in_flight[]: the first spans, in time order
GRAPH_RECORDS = 1000  # graphs[]: the first replays (graph_replays: how many in all)


def analyze(trace: Trace, rules: Sequence[Rule] = DEFAULT_RULES,
            kernel_wait_us: float = KERNEL_WAIT_US, level: int | None = None,
            blocks: bool = False, groups: Sequence[str] = DEFAULT_GROUPS,
            step_regex: str | None = None, shapes: bool = False,
            peaks: dict | None = None) -> dict[str, Any]:
    """The report. The phases are the innermost repeating CPU annotations, or those at
    nesting depth ``level``; ``blocks``: add their diagram's blocks as ``phases``. Steps are
    ``ProfilerStep#N`` or the annotations ``step_regex`` names; ``shapes``: add the
    operators by input shapes as ``operator_shapes`` (their args re-read from the file);
    ``peaks``: the config's ``[peaks]`` table (device peaks over the built-in ones)."""
    classes = classify(trace, rules)
    # the operators and modules need only the trace and the classes, the steps the devices'
    # unions too: made on a second thread beside the rest (numpy lets go of the GIL; on
    # 3.25 M events the report takes about 2 s, not 3.2). What both threads read and the trace
    # or the unions make on first use is made before the other thread starts, so that the
    # threads only read it: the lanes' folded views, the Python categories, the exposed
    # communication of each device (the steps'), made with the exposed stretches
    trace.fold_python()
    _ = trace.python_cats
    with ThreadPoolExecutor(1, thread_name_prefix="tracetui-report") as pool:
        ops = pool.submit(_operator_sections, trace, classes, shapes, peaks)
        out = _sections(trace, classes, rules, kernel_wait_us, level, blocks, groups,
                        step_regex, pool)
        got = ops.result()
    phases = out.pop("phases", None)  # (the report's order: the operators before the phases)
    out.update(got)
    if phases is not None:
        out["phases"] = phases
    return out


def _operator_sections(trace: Trace, classes: np.ndarray, shapes: bool,
                       peaks: dict | None = None) -> dict[str, Any]:
    """The report's operators and modules (and operators by input shapes, if asked), and
    the collectives (found through the operators' tree)."""
    tree = op_tree(trace, classes)
    mods = ModuleFrames(trace, tree)
    dev = trace_peaks(trace, peaks)
    # the args the FLOPs and the collectives read, from one pass over the file
    rows = np.union1d(with_shapes(trace, with_formula(trace, tree.rows)),
                      collective_ops(trace, classes, tree.up))
    raw = dict(trace.args_many(rows, READ_FIELDS))
    comms = collectives(trace, classes, tree.up, raw)
    out = {
        "peaks": peaks_record(dev),
        "operators": operator_table(trace, tree, dev, costs(trace, tree, raw)),
        "modules": module_paths(trace, mods),
        "module_types": module_types(trace, mods),
        "memory_ops": operator_memory(trace, tree),
        "collectives": comms,
        "collective_kinds": collective_kinds(comms),
    }
    if shapes:
        out["operator_shapes"] = operator_shape_table(trace, tree, dev)
    return out


def _step_sections(trace: Trace, classes: np.ndarray, step_regex: str | None,
                   unions: Sequence[DeviceUnions], kernel_wait_us: float) -> dict[str, Any]:
    """The report's steps."""
    steps = step_breakdown(trace, classes, step_regex, unions, kernel_wait_us)
    return {"step_summary": step_summary(steps), "steps": step_rows(steps)}


def _sections(trace: Trace, classes: np.ndarray, rules: Sequence[Rule], kernel_wait_us: float,
              level: int | None, blocks: bool, groups: Sequence[str],
              step_regex: str | None, pool: ThreadPoolExecutor) -> dict[str, Any]:
    """The report's other sections, in the report's order (the steps on ``pool``)."""
    unions = device_unions(trace, classes)
    table = kernel_table(trace, classes)
    launches = Launches(trace, classes)
    phases = LaunchPhases(trace, classes, phase_occurrences(trace, level), launches)
    exposed = ExposedStretches(trace, classes, unions, phases)
    for du in unions:
        _ = du.exposed  # (made: the steps read it on the other thread)
    steps = pool.submit(_step_sections, trace, classes, step_regex, unions, kernel_wait_us)
    overlap = device_overlap(unions)
    spans = in_flight_spans(trace, classes, in_flight_patterns(rules))
    for o, du in zip(overlap, unions):
        o["exposed_stretches"] = exposed.count(o["device"])
        o.update(in_flight_figures(device_in_flight(spans, du.device, du.comm), du.comp))
        o["in_flight_spans"] = int(len(spans.of_device(du.device)))
    graphs = Graphs(trace)
    out = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "tracetui_version": __version__,
        **trace_facts(trace),
        "rules": describe(rules),
        "kernels": table,
        "kernel_groups": group_by_short_name(table),
        "idle_split": {"kernel_wait_below_us": float(kernel_wait_us)},
        "streams": stream_stats(trace, classes, kernel_wait_us),
        "overlap": overlap,
        "stream_overlap": stream_overlap(trace, unions),
        "annotations": annotation_table(trace, classes, unions, launches, phases,
                                        graphs.kernel_rows),
        "exposed": exposed.records(),
        "graph_replays": len(graphs),
        "graphs": graphs.records(GRAPH_RECORDS),
        "in_flight": span_records(trace, spans, IN_FLIGHT_RECORDS),
        **memory_sections(trace),
    }
    out.update(steps.result())
    if blocks:
        comp = DeviceComp(trace, unions)
        out["phases"] = [{k: v for k, v in b.items() if k not in ("row", "depth")}
                         for b in phase_blocks(trace, classes, groups=groups, comp=comp,
                                               phases=phases, spans=spans,
                                               sequence=level is None)]
    return out


_REPORT_HEAD = re.compile(rb'^\s*\{\s*"schema"\s*:\s*"' + re.escape(REPORT_SCHEMA.encode()) + rb'"')


def is_report(path: str) -> bool:
    """Whether ``path`` is a report (:func:`read_report` would not say None), from its
    first bytes only."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
        opener: Any = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            return bool(_REPORT_HEAD.match(f.read(4096)))
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
        return False


def read_report(path: str) -> dict[str, Any] | None:
    """The report in ``path`` (a ``summary --json`` output, plain or gzipped), or None if the
    file is not one (its first key is not ``"schema": "tracetui.report"``: a trace, say). A
    report that cannot be used - damaged, of a newer layout, without a rank's fields - is a
    one-line :class:`TraceError`."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
        opener: Any = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            head = f.read(4096)
            if not _REPORT_HEAD.match(head):
                return None
            try:
                data = head + f.read()
            except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a report, cut short
                raise TraceError(f"{path}: a damaged tracetui report (its gzip stream is "
                                 f"cut short or damaged: {e})") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error):
        return None  # not readable here: the trace loader says why
    try:
        report = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise TraceError(f"{path}: a damaged tracetui report ({e})") from None
    if not isinstance(report, dict):
        raise TraceError(f"{path}: a damaged tracetui report (not a JSON object)")
    version = report.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceError(f"{path}: a tracetui report without a valid schema_version")
    if version > REPORT_VERSION:
        raise TraceError(f"{path}: a tracetui report of layout {version}, newer than this "
                         f"tracetui reads ({REPORT_VERSION}): upgrade tracetui, or make it again")
    missing = [k for k in RANK_FIELDS if k not in report]
    if missing:
        raise TraceError(f"{path}: a tracetui report without {', '.join(missing)}")
    wrong = check_report(report)
    if wrong:
        raise TraceError(f"{path}: a damaged tracetui report ({wrong})")
    return report


# What the commands over many reports read of one (the rank figures, the rank view, diff):
# each field's kind, checked once when a report is read, so that a damaged one is named and
# left out instead of failing deep inside a figure. A kind: "int" (a whole number), "num"
# (finite), a trailing "?" for "or null"; a list of rows is a dict of its rows' fields.
_NUM_ROW = {"comm_us": "num", "comp_us": "num", "overlap_us": "num",
            "exposed_comm_us": "num", "overlap_pct": "num?", "device": "int"}
_KERNEL_ROW = {"name": "str", "class": "str", "count": "int", "total_us": "num",
               "avg_us": "num?"}
_REPORT_FIELDS: dict[str, Any] = {
    "file": "str", "events": "int", "span_ns": "num", "devices": ["int"],
    "overlap": [_NUM_ROW],
    "annotations": [{"name": "str", "source": "str", "count": "int?", "total_us": "num?",
                     "gpu_us": "num?", "comm_us": "num?", "exposed_comm_us": "num?",
                     "overlap_pct": "num?"}],
}
# fields a report may lack (an older or hand-made one), of a kind when present
_OPTIONAL_FIELDS: dict[str, Any] = {
    "kernels": [_KERNEL_ROW],
    "kernel_groups": [{**{k: v for k, v in _KERNEL_ROW.items() if k != "name"},
                       "short_name": "str"}],
    "distributed_info": "dict?", "truncated": "bool?", "warnings": ["str"],
    "size_bytes": "int?", "rules": "list?",
    # (across ranks: each rank's collectives are matched by kind, group and order)
    "collectives": [{"kind": "str", "process_group": "str?", "start_us": "num",
                     "end_us": "num", "dur_us": "num", "bytes": "int?", "start_ns": "int?",
                     "end_ns": "int?"}],
}


_BIG = float(2 ** 63)


def _is(value: Any, base: str) -> bool:
    """Whether ``value`` is of the plain kind ``base`` (no "?")."""
    cls = value.__class__
    if base == "num":
        return (cls is float and -_BIG < value < _BIG) or (cls is int and -_BIG <= value < _BIG)
    if base == "int":
        return cls is int and -_BIG <= value < _BIG
    return cls is {"str": str, "bool": bool, "dict": dict, "list": list}[base] or \
        (base == "str" and isinstance(value, str))


def _row_fits(row: Any, checks: list[tuple[str, str, bool]]) -> bool:
    """Whether ``row`` is an object whose fields pass ``checks`` ((key, kind, nullable))."""
    if row.__class__ is not dict:
        return False
    get = row.get
    for key, base, nullable in checks:
        v = get(key)
        if v is None:
            if not nullable:
                return False
        elif not _is(v, base):
            return False
    return True


def _checks(spec: dict[str, str]) -> list[tuple[str, str, bool]]:
    return [(key, k.rstrip("?"), k.endswith("?")) for key, k in spec.items()]


def _fits(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of ``kind``: the fast check; :func:`_kind_error` says why not."""
    if isinstance(kind, list):
        sub = kind[0]
        if value.__class__ is not list:
            return False
        if isinstance(sub, dict):  # a table's rows (300 k kernels): the checks found once
            checks = _checks(sub)
            return all(_row_fits(row, checks) for row in value)
        return all(_fits(v, sub) for v in value)
    if isinstance(kind, dict):
        return _row_fits(value, _checks(kind))
    return (value is None and kind.endswith("?")) or (value is not None
                                                      and _is(value, kind.rstrip("?")))


def _kind_error(value: Any, kind: Any, where: str) -> str | None:
    """Why ``value`` is not of ``kind`` (see :data:`_REPORT_FIELDS`), or None."""
    if _fits(value, kind):
        return None
    if isinstance(kind, list):
        if not isinstance(value, list):
            return f"{where}: a list expected, found {_what(value)}"
        for i, item in enumerate(value):
            if not _fits(item, kind[0]):
                return _kind_error(item, kind[0], f"{where}[{i}]")
        return None
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            return f"{where}: an object expected, found {_what(value)}"
        for key, sub in kind.items():
            if key not in value and not sub.endswith("?"):
                return f"{where}.{key}: missing"
            got = _kind_error(value.get(key), sub, f"{where}.{key}")
            if got:
                return got
        return None
    base = kind.rstrip("?")
    want = {"str": "a text", "int": "a whole number", "num": "a number", "bool": "true or false",
            "dict": "an object", "list": "a list"}[base]
    return f"{where}: {want} expected, found {_what(value)}"


def _what(value: Any) -> str:
    """A value, shortly, for a message (as JSON writes it; a list or an object by its kind)."""
    if isinstance(value, list):
        return f"a list of {len(value):,}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        value = value[:40]
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 42 else text[:41] + "…"


def check_report(report: dict[str, Any]) -> str | None:
    """What is wrong with a report's fields, for the figures made of it (one line: the first
    field of the wrong kind), or None. Fields a report may lack are filled in (``kernels``
    and ``kernel_groups`` empty)."""
    for key, kind in _REPORT_FIELDS.items():
        got = _kind_error(report.get(key), kind, key)
        if got:
            return got
    for key, kind in _OPTIONAL_FIELDS.items():
        if key in report:
            got = _kind_error(report[key], kind, key)
            if got:
                return got
    if report["span_ns"] < 0 or report["events"] < 0:
        return "span_ns and events: not negative"
    report.setdefault("kernels", [])
    report.setdefault("kernel_groups", [])
    return None
