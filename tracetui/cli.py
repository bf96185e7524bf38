"""Command line: ``tracetui TRACE`` and ``tracetui summary TRACE [--json]``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from . import __version__
from .export import csv_text
from .tables import TABLES, TableDef
from .textutil import cell_width, fit, fit_apart, fmt_time, safe_text, tail
from .trace import Progress, TraceError

_COMMANDS = ("summary", "diff")
EARLY_LOAD_MAX = 32 << 20  # bytes on disk


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"


class _StderrProgress:
    """A one-line progress report on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled or p.elapsed_s < 0.5:
            return
        self.shown = True
        sys.stderr.write(f"\rloading {p.fraction * 100:5.1f}%  {p.mb_per_s:6.1f} MB/s  "
                         f"{p.events:,} events ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _spooled(path: str) -> str:
    """A file to load for ``path``: itself, or for stdin (``-``) and pipes (``<(zcat t.gz)``)
    a temporary copy (the loader seeks: parallel ranges, re-reading args)."""
    from .trace.source import needs_spool, spool

    if not needs_spool(path):
        return path
    shown = [False]

    def progress(n: int) -> None:
        if sys.stderr.isatty():
            shown[0] = True
            sys.stderr.write(f"\rreading {'stdin' if path == '-' else 'the pipe'}: "
                             f"{_fmt_bytes(n)} ")
            sys.stderr.flush()

    try:
        return spool(path, progress)
    finally:
        if shown[0]:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _load(path: str) -> Any:
    from .trace import load

    progress = _StderrProgress()
    try:
        return load(path, progress=progress)
    finally:
        progress.done()


def _rules(args: argparse.Namespace) -> Any:
    from .analysis.rules import load_rules

    return load_rules(comm=args.comm or (), config=args.config,
                      in_flight=getattr(args, "in_flight", None) or (),
                      no_in_flight=getattr(args, "no_in_flight", False))


def _keymap(args: argparse.Namespace) -> dict[str, str]:
    """The config's [keys] for the app (an unknown id: one line, before the screen changes)."""
    from .app.app import TraceApp
    from .app.keys import load_keymap

    return load_keymap(args.config, (b.id for b in TraceApp.BINDINGS if b.id))


def _summary(args: argparse.Namespace) -> int:
    from .analysis.report import analyze

    rules = _rules(args)
    if args.rules:
        _print_rules(rules, as_json=args.json)
        if not args.trace:
            return 0
    if not args.trace:
        raise TraceError("summary: a trace file is needed (or --rules alone)")
    from .analysis.report import is_report

    # a report (summary --json of a trace) is a rank: alone, the rank table of that one
    if len(args.trace) > 1 or os.path.isdir(args.trace[0]) or \
            (os.path.isfile(args.trace[0]) and is_report(args.trace[0])):  # (a pipe: read once)
        if args.csv:
            raise TraceError("summary --csv: one trace at a time (--json gives every rank)")
        from .cli_many import rank_summary

        return rank_summary(args.trace, rules, as_json=args.json, scheduler=getattr(args, "scheduler", None))
    from .analysis.phases import DEFAULT_GROUPS
    from .analysis.streams import kernel_wait

    if getattr(args, "scheduler", None):
        raise TraceError("summary --scheduler: for several traces (a directory, or A B …); "
                         "one trace is read here")
    kernel_wait(args.kernel_wait)  # a bad threshold: one line, before any loading
    if args.csv and args.csv != "kernels" and args.csv not in TABLES:
        raise TraceError(f"summary --csv {safe_text(args.csv, 40)}: no such table (kernels, "
                         + ", ".join(TABLES) + ")")
    trace = _load(_spooled(args.trace[0]))

    report = analyze(trace, rules, kernel_wait_us=args.kernel_wait,
                     level=getattr(args, "level", None), blocks=getattr(args, "phases", False),
                     groups=getattr(args, "phase_groups", None) or DEFAULT_GROUPS,
                     step_regex=getattr(args, "step", None),
                     shapes=getattr(args, "shapes", False) or args.csv == "operator_shapes")
    if args.csv:
        if args.csv == "kernels":
            _write_kernel_csv(report["kernels"], sys.stdout)
        else:
            fields = TABLES[args.csv].csv_fields()
            sys.stdout.write(csv_text(fields, ([row.get(f) for f in fields]
                                               for row in report[args.csv])))
        return 0
    if args.json:
        # ensure_ascii: every control or bidi character in a name is written as \uXXXX
        from .output import write_json

        write_json(report)
        return 0
    _print_summary(report, args.top, group=getattr(args, "group", False))
    return 0


_CSV_COLUMNS = ("name", "short_name", "class", "count", "total_us", "pct", "avg_us", "median_us",
                "min_us", "max_us", "stddev_us")


def _write_kernel_csv(rows: list[dict[str, Any]], out: Any) -> None:
    out.write(csv_text(_CSV_COLUMNS, ([r[c] for c in _CSV_COLUMNS] for r in rows)))


def _print_rules(rules: Any, as_json: bool) -> None:
    from .analysis.rules import describe

    if as_json:
        from .output import write_json

        write_json({"rules": describe(rules)})
        return
    from rich import box
    from .output import console as out_console
    from rich.table import Table
    from rich.text import Text

    console = out_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="classification rules, first match wins",
                  title_justify="left", caption="no match: comp · memcpy/memset: mem",
                  caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("regex", overflow="fold")
    table.add_column("from", overflow="fold")
    for i, r in enumerate(describe(rules), 1):
        table.add_row(str(i), r["class"], Text(safe_text(r["pattern"])), Text(safe_text(r["from"])))
    console.print(table)


def _ms(us: float | None) -> str:
    return "" if us is None else f"{us / 1000:,.3f}"


def _us(us: float) -> str:
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def _pct(p: float | None) -> str:
    return "—" if p is None else f"{p:.1f}"


def _tail(name: str, n: int) -> str:
    """The end of a long name, which says the most about a C++ kernel (in ``n`` cells)."""
    return tail(name, n)


def _stream_of(lane: str) -> str:
    """``GPU 0 · stream 7`` -> ``s7``."""
    tail = lane.rsplit("stream ", 1)
    return f"s{tail[1]}" if len(tail) == 2 else lane


def _graph_line(graphs: list[dict[str, Any]], count: int) -> Any:
    """One line on the CUDA graph replays (``graphs``: the first of ``count``)."""
    from rich.text import Text

    def n_of(n: int, what: str) -> str:
        return f"{n:,} {what}{'' if n == 1 else 's'}"

    known = [g for g in graphs if g["launch"] is not None]
    n = sum(g["kernels"] for g in graphs)
    t = Text(f"CUDA graphs: {n_of(count, 'replay')}, "
             + (f"{n_of(n, 'kernel')}" if count == len(graphs) else
                f"{n_of(n, 'kernel')} in the first {len(graphs):,}"))
    if known:
        big = max(known, key=lambda g: g["kernels"])
        t.append(f"; the largest: {n_of(big['kernels'], 'kernel')} by one "
                 f"{safe_text(big['launch'], 30)}"
                 f" at +{_ms(big['start_us'])} ms, {_ms(big['gpu_us'])} ms of GPU time over "
                 f"{_ms(big['span_us'])} ms, first kernel {_us(big['first_kernel_delay_us'])} µs "
                 "after the call")
    early = len(graphs) - len(known)
    if early:
        t.append(f"; {early:,} launched before the trace began")
    return t


def _print_summary(r: dict[str, Any], top: int, group: bool = False) -> None:
    from rich import box
    from .output import console as out_console
    from rich.table import Table
    from rich.text import Text

    from .analysis.kernels import short_name

    console = out_console()
    width = console.width

    def table(title: str) -> Table:
        return Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, title=title,
                     title_justify="left", title_style="bold")

    def name_col(t: Table, header: str, fixed: int) -> int:
        """A name column; returns its width, for names shortened in the middle to it."""
        w = max(16, min(64, width - fixed))
        t.add_column(header, overflow="ellipsis", no_wrap=True, max_width=w)
        return w

    def num(t: Table, header: str, width: int = 0) -> None:
        t.add_column(header, justify="right", no_wrap=True, min_width=max(width, len(header)))

    def limit(rows: list[Any]) -> list[Any]:
        return rows[:top] if top else rows

    def more(rows: list[Any], what: str) -> None:
        if top and len(rows) > top:
            console.print(Text(f"  … {len(rows) - top} more {what} (--top 0 shows all)"))

    t = Text()
    t.append("trace  ", style="bold")
    t.append(safe_text(r["file"]))
    console.print(t)
    size = _fmt_bytes(r["size_bytes"]) + (" (gzip)" if r["compressed"] else "")
    ndev = len(r["devices"])
    s0, s1 = r.get("slices_start_ns", 0), r.get("slices_end_ns", r["span_ns"])
    span = f"span {fmt_time(s1 - s0, 3)}"
    if s0 > 0 or s1 < r["span_ns"]:  # instants or counters beyond the slices
        span += f" of slices ({fmt_time(r['span_ns'], 3)} with every event)"
    console.print(Text(f"{size} · {r['events']:,} events · {span}"
                       f" · {ndev} GPU{'' if ndev == 1 else 's'}"))
    console.print(Text(f"{r['slices']:,} slices · {r['flows']:,} flows · "
                       f"{r['kernel_launch_links']:,} kernel↔launch links"))
    di = {k: v for k, v in r["distributed_info"].items()
          if isinstance(v, (int, float, str)) and not str(v).startswith(("[", "{"))}
    if di:
        console.print(Text("distributed  " + ", ".join(f"{safe_text(k, 20)}={safe_text(v, 24)}"
                                                       for k, v in di.items())))

    if r["slices"] == 0 and not r["lanes"]:
        console.print(Text("no events to analyse: " + (
            "the trace holds no events (an empty array, or metadata only)" if r["events"] == 0
            else "none of its events has a duration or a value"), style="yellow"))
        for w in r["warnings"]:
            console.print(Text("warning: " + safe_text(w, 300), style="yellow"))
        return

    if "phases" in r:
        from .analysis.phases import diagram_lines

        console.print(Text("phases: the kernels each repeating annotation launched, per GPU "
                           "(SMs: time-weighted typical)", style="bold"))
        seq = sorted({b["device"] for b in r["phases"] if b.get("source") == "kernels"})
        if seq:
            console.print(Text(
                f"  GPU {', '.join(map(str, seq))}: no repeating annotation owns its kernels "
                "(a CUDA graph replay?), so the blocks come from the kernel sequence: "
                "transfers in flight on 0 SMs, the computation between communication "
                "kernels, micro-batches by alternation", style="dim"))
        held = [b for b in r["phases"] if b.get("graph_kernels")]
        if held:
            console.print(Text(
                f"  {len(held):,} block{'s' if len(held) > 1 else ''} hold CUDA graph kernels "
                f"({sum(b['graph_kernels'] for b in held):,}) by their launch's CPU time alone",
                style="dim"))
        if not r["phases"]:
            console.print(Text("  no repeating CPU annotation launched GPU kernels here",
                               style="yellow"))
        for line in diagram_lines(r["phases"], min(width, 160)):
            console.print(Text(safe_text(line)))

    if r["overlap"]:
        ot = table("communication vs computation, ms")
        for h in ("GPU", "comm", "comp", "overlap", "overlap %", "exposed comm"):
            num(ot, h)
        for o in r["overlap"]:
            ot.add_row(str(o["device"]), _ms(o["comm_us"]), _ms(o["comp_us"]),
                       _ms(o["overlap_us"]), _pct(o["overlap_pct"]), _ms(o["exposed_comm_us"]))
        console.print(ot)
        for o in r["overlap"]:
            if not o.get("in_flight_us"):
                continue
            console.print(Text(
                f"  GPU {o['device']} kernels: {_ms(o['comm_us'])} ms of communication kernels, "
                f"{_pct(o['overlap_pct'])} % beside computation: what sending and receiving "
                "cost the streams"))
            console.print(Text(
                f"  GPU {o['device']} in flight: {_ms(o['in_flight_us'])} ms of transfers between "
                f"send and receive, on 0 SMs: {_pct(o['in_flight_overlap_pct'])} % hidden "
                f"behind computation, {_ms(o['in_flight_exposed_us'])} ms exposed"))
    if r.get("graphs"):
        console.print(_graph_line(r["graphs"], r.get("graph_replays", len(r["graphs"]))))

    if r["kernels"] and group:
        kt = table("GPU kernels by short name (total ms; avg, max µs)")
        nw = name_col(kt, "kernel", 62)
        kt.add_column("class", no_wrap=True, min_width=5)
        for h, w in (("names", 5), ("count", 5), ("total", 7), ("%", 4), ("avg", 6), ("max", 6)):
            num(kt, h, w)
        shown = limit(r["kernel_groups"])
        for k, label in zip(shown, fit_apart([safe_text(k["short_name"]) for k in shown], nw)):
            kt.add_row(Text(label), k["class"], str(k["names"]),
                       f"{k['count']:,}", _ms(k["total_us"]), f"{k['pct']:.1f}",
                       _us(k["avg_us"]), _us(k["max_us"]))
        console.print(kt)
        more(r["kernel_groups"], "kernel groups")
    elif r["kernels"]:
        kt = table("GPU kernels by total time (total ms; avg, median µs)")
        nw = name_col(kt, "kernel", 52)
        kt.add_column("class", no_wrap=True, min_width=5)
        for h, w in (("count", 5), ("total", 7), ("%", 4), ("avg", 6), ("median", 6)):
            num(kt, h, w)
        shown = limit(r["kernels"])
        # no two rows alike: the short name, with what tells it apart where needed
        for k, label in zip(shown, fit_apart([safe_text(k["display_name"]) for k in shown], nw)):
            kt.add_row(Text(label), k["class"], f"{k['count']:,}",
                       _ms(k["total_us"]), f"{k['pct']:.1f}", _us(k["avg_us"]),
                       _us(k["median_us"]))
        console.print(kt)
        more(r["kernels"], "kernels")

    if r["annotations"]:
        at = table("annotations, ms, by launch: the GPU work each launched; exposed: its "
                   "communication while the GPU computes nothing")
        name_col(at, "annotation", 56)
        for h, w in (("n", 4), ("time", 8), ("GPU", 8), ("comm", 8), ("exposed", 7),
                     ("ovl %", 5)):
            num(at, h, w)
        rows = r["annotations"]
        none = [a for a in rows if a["source"] == "none"]
        for a in limit([a for a in rows if a["source"] != "none"]) + none:
            label = safe_text(a["name"], 80) + (" [gpu]" if a["source"] == "gpu" else "")
            at.add_row(Text(label), "—" if a["count"] is None else f"{a['count']:,}",
                       "—" if a["total_us"] is None else _ms(a["total_us"]), _ms(a["gpu_us"]),
                       _ms(a["comm_us"]), _ms(a["exposed_comm_us"]), _pct(a["overlap_pct"]))
        console.print(at)
        more([a for a in rows if a["source"] != "none"], "annotations")
        by_graph = [a for a in rows if a.get("graph_kernels")]
        if by_graph:
            a = max(by_graph, key=lambda a: a["graph_kernels"])
            console.print(Text(
                f"  {len(by_graph)} annotation{'s' if len(by_graph) > 1 else ''} hold CUDA "
                f"graph replays by the launch's CPU time alone (e.g. {safe_text(a['name'], 40)}: "
                f"{a['graph_kernels']:,} of its {a['kernels']:,} kernels came from graph "
                "launches inside it)", style="dim"))

    def fitted(t: Table, heads: list[tuple[str, bool, bool]], rows: list[list[Any]]) -> Table:
        """Columns sized to what they hold: numbers (True) whole and right-aligned, names
        (False) share what is left and lose their start (a C++ name's end says the most);
        while it is too wide, the last column that may go (third flag) goes."""
        keep = list(range(len(heads)))

        def need(cols: list[int]) -> tuple[int, int]:
            fixed = sum(max([cell_width(heads[k][0])] + [cell_width(str(x[k])) for x in rows])
                        + 3 for k in cols if heads[k][1])  # + padding and rule
            return fixed, sum(1 for k in cols if not heads[k][1])

        while True:
            fixed, n_names = need(keep)
            if fixed + 20 * n_names <= width:  # names get 20 cells at least
                break
            droppable = [k for k in keep if heads[k][2]]
            if not droppable:
                break
            keep.remove(droppable[-1])
        room = max(8, (width - fixed - 3 * n_names) // max(n_names, 1))
        for k in keep:
            h, numeric, _ = heads[k]
            w = max([cell_width(h)] + [cell_width(str(x[k])) for x in rows])
            t.add_column(h, justify="right" if numeric else "left", no_wrap=True,
                         min_width=w if numeric else min(w, 8))
        for x in rows:
            t.add_row(*(str(x[k]) if heads[k][1] else Text(_tail(safe_text(str(x[k])), room))
                        for k in keep))
        return t

    if r["exposed"]:
        n = sum(o.get("exposed_stretches", 0) for o in r["overlap"])
        total = sum(o["exposed_comm_us"] for o in r["overlap"])
        rows = []
        for x in limit(r["exposed"]):
            b, a = x["compute_before"], x["compute_after"]
            idle = (a["start_us"] if a else x["end_us"]) - (b["end_us"] if b else x["start_us"])
            rows.append([x["device"], _ms(x["start_us"]), _ms(x["dur_us"]),
                         short_name(x["kernel"] or "?"), x["phase"], _ms(idle),
                         "none" if b is None else
                         f"{short_name(b['name'])} {_stream_of(b['lane'])}"])
        console.print(fitted(
            table(f"exposed communication (none of the GPU's computation runs): {n:,} "
                  f"stretches, {_ms(total)} ms; the largest, ms"),
            [("GPU", True, False), ("at", True, False), ("dur", True, False),
             ("communication kernel", False, False), ("launched in", False, False),
             ("comp idle", True, True), ("computation before it", False, True)], rows))
        if top and n > len(rows):
            console.print(Text(f"  … {n - len(rows):,} more stretches (--top 0 shows "
                               f"{len(r['exposed'])}; --json lists the {len(r['exposed'])} "
                               "largest)"))

    gaps = [s for s in r["streams"] if s["kind"] == "gpu" and s["gaps"] is not None]
    if gaps:
        kw = r.get("idle_split", {}).get("kernel_wait_below_us")
        rows = []
        for s in limit(gaps):
            g = s["gaps"][0] if s["gaps"] else None
            rows.append([s["lane"], _ms(s["idle_us"]), _ms(s["host_wait_us"]),
                         _ms(s["kernel_wait_us"]), _ms(s["other_idle_us"]),
                         _ms(g["dur_us"]) if g else "", _ms(g["start_us"]) if g else "",
                         g["kind"].split()[0] if g else ""])
        console.print(fitted(
            table(f"GPU stream idle time, ms: host wait (its next kernel was not launched "
                  f"yet), kernel wait (gaps < {kw:g} µs), other; the largest gap"),
            [("stream", False, False), ("idle", True, False), ("host", True, False),
             ("kernel", True, False), ("other", True, False), ("gap", True, True),
             ("at", True, True), ("kind", True, True)], rows))
        more(gaps, "streams")

    lt = table("lanes, busy ms over the trace span")
    name_col(lt, "lane", 50)
    lt.add_column("kind", no_wrap=True)
    for h, w in (("events", 7), ("busy", 8), ("util %", 6), ("max gap", 7)):
        num(lt, h, w)
    busy = {s["lane"]: s for s in r["streams"]}
    for ln in limit(r["lanes"]):
        s = busy.get(ln["name"])
        kind = {"gpu_annotation": "annot"}.get(ln["kind"], ln["kind"])
        lt.add_row(Text(safe_text(ln["name"], 80)), kind, f"{ln['events']:,}",
                   _ms(s["busy_us"]) if s else "", f"{s['utilization_pct']:.1f}" if s else "",
                   _ms(s["largest_gap_us"]) if s else "")
    console.print(lt)
    more(r["lanes"], "lanes")

    pairs = sorted((p for p in r["stream_overlap"] if p["overlap_us"] > 0),
                   key=lambda p: -p["overlap_us"])
    if pairs:
        pt = table("streams busy together, ms")
        pt.add_column("GPU", justify="right")
        pt.add_column("streams", no_wrap=True)
        num(pt, "both busy")
        for p in limit(pairs):
            pt.add_row(str(p["device"]), f"{p['a_stream']} × {p['b_stream']}", _ms(p["overlap_us"]))
        console.print(pt)
        more(pairs, "stream pairs")

    _print_steps(console, r, top, width)
    for name in ("operators", "operator_shapes", "module_types"):
        if r.get(name):
            console.print(def_table(TABLES[name], r[name][:top] if top else r[name], width))
            more(r[name], TABLES[name].what)

    for w in r["warnings"]:
        console.print(Text("warning: " + safe_text(w, 300), style="yellow"))


def def_table(tdef: TableDef, rows: list[dict[str, Any]], width: int) -> Any:
    """A :class:`~tracetui.tables.TableDef`'s rows as a Rich table ``width`` cells wide at
    most: numbers whole and right-aligned, the text column takes what is left (cut as the
    column says); while it is too wide, the optional columns go, the highest first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cols = list(tdef.columns)
    cells = [[c.fmt(r.get(c.key)) for c in cols] for r in rows]

    def need(keep: list[int]) -> tuple[int, int]:
        # (3 cells between columns, an edge cell each side: the sum less 1)
        fixed = sum(max([cell_width(cols[k].title)] + [cell_width(x[k]) for x in cells]) + 3
                    for k in keep if cols[k].numeric)
        return fixed, sum(1 for k in keep if not cols[k].numeric)

    keep = list(range(len(cols)))
    while True:
        fixed, n_text = need(keep)
        if fixed + 20 * n_text <= width:
            break
        droppable = [k for k in keep if cols[k].optional]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda k: cols[k].optional))
    room = max(8, (width - fixed - 3 * n_text) // max(n_text, 1))
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, title=tdef.title,
              title_justify="left", title_style="bold")
    for k in keep:
        c = cols[k]
        w = max([cell_width(c.title)] + [cell_width(x[k]) for x in cells])
        t.add_column(c.title, justify="right" if c.numeric else "left", no_wrap=True,
                     min_width=w if c.numeric else min(w, room))
    for x in cells:
        t.add_row(*(x[k] if cols[k].numeric else
                    Text(fit(safe_text(x[k]), min(room, cell_width(x[k])), cut=cols[k].cut)) for k in keep))
    return t


def _print_steps(console: Any, r: dict[str, Any], top: int, width: int) -> None:
    """The step breakdown: where the steps come from, the table, statistics, the average."""
    from rich.text import Text

    steps, info = r.get("steps"), r.get("step_summary")
    if not steps or not info:
        return
    if info["source"] == "whole trace":
        console.print(Text("no ProfilerStep#N in this trace (--step REGEX names other step "
                           "annotations): the whole trace is one step", style="dim"))
    rows = steps if not top or len(steps) <= top else steps[:top]
    avg = dict(info["average"], name="average")
    console.print(def_table(TABLES["steps"], rows + ([avg] if len(steps) > 1 else []), width))
    if top and len(steps) > top:
        console.print(Text(f"  … {len(steps) - top} more steps (--top 0 shows all)"))
    if len(steps) > 1:
        console.print(Text(
            f"  {info['count']} steps ({info['source']}): mean {_ms(info['mean_us'])} ms, "
            f"median {_ms(info['median_us'])}, min {_ms(info['min_us'])}, max "
            f"{_ms(info['max_us'])} (slowest: {safe_text(info['slowest'], 60)})"))
    for name in info["cut_off"]:
        console.print(Text(f"  {safe_text(name, 60)}: its GPU work looks cut off by the end of "
                           "the profile (under 80 % of the step before it launched); "
                           "TensorBoard leaves it out", style="yellow"))


def _interactive() -> bool:
    """A terminal the app can run in: stdin and stdout are terminals, TERM is not dumb."""
    return sys.stdout.isatty() and sys.stdin.isatty() and \
        os.environ.get("TERM", "") not in ("dumb", "")


def _ranks_view(args: argparse.Namespace) -> int:
    """Several traces or a directory: one timeline, lanes grouped by rank, in a terminal
    (R: the rank view); elsewhere the per-rank table."""
    from .cli_many import rank_summary

    rules = _rules(args)
    if not _interactive():
        return rank_summary(args.trace, rules, as_json=False, scheduler=args.scheduler)
    from .many import trace_files

    files = trace_files(args.trace)
    for f in files:
        from .trace.source import Source

        Source.open(f)  # a missing or unreadable file: one line, before the screen changes
    from .app.app import TraceApp
    from .app.themes import load_theme

    load_theme(args.theme)
    label = os.path.basename(os.path.normpath(args.trace[0])) if len(args.trace) == 1 \
        else f"{len(files)} traces"
    keymap = _keymap(args)
    if args.scheduler:
        from .cluster import check_scheduler

        sys.stderr.write(f"connecting to the Dask scheduler at {safe_text(args.scheduler, 80)} …\r")
        sys.stderr.flush()
        try:
            check_scheduler(args.scheduler)  # unreachable, or no distributed: one line, now
        finally:
            sys.stderr.write("\r\x1b[K")
    ranks = f"{len(files)} rank{'' if len(files) == 1 else 's'}"
    app = TraceApp(f"{label} ({ranks})", rules, theme=args.theme, ranks=files,
                   align=args.align, phase_groups=args.phase_groups, keymap=keymap,
                   max_ranks=args.max_ranks, scheduler=args.scheduler, step_regex=args.step)
    from .app.process import exit_status
    from .signals import running

    with running(app):  # a signal: the app exits (the terminal restored), then 128+N
        app.run()
    return exit_status(app)


def _view(args: argparse.Namespace) -> int:
    """The interactive timeline in a terminal; elsewhere (a pipe, TERM=dumb) the summary."""
    args.trace = _spooled(args.trace)
    if not sys.stdin.isatty() and sys.stdout.isatty():
        _keys_from_tty()  # `zcat t.json.gz | tracetui -`: keys come from the terminal
    if not _interactive():
        why = "TERM=dumb" if sys.stdout.isatty() and sys.stdin.isatty() else "not a terminal"
        print(f"tracetui: {why}: here is the summary instead of the timeline "
              "(`tracetui summary TRACE [--json | --csv]` prints it directly)", file=sys.stderr)
        ns = argparse.Namespace(trace=[args.trace], json=False, csv=None, rules=False,
                                top=args.top, comm=args.comm, config=args.config,
                                step=args.step, shapes=False,
                                phases=False, kernel_wait=_parser_summary().get_default(
                                    "kernel_wait"))
        return _summary(ns)
    from .trace.source import Source

    Source.open(args.trace)  # a missing or unreadable file: one line, before the screen changes
    from .analysis.report import is_report

    if os.path.isfile(args.trace) and is_report(args.trace):
        raise TraceError(f"{args.trace}: a tracetui report, which holds no timeline (summary "
                         "takes it as its rank; open the trace it was made from)")
    rules = _rules(args)
    # Reading starts now, in a thread, while the UI is imported and started (see EarlyLoad).
    early = _early_load(args.trace, pause_after_first=os.path.getsize(args.trace) > EARLY_LOAD_MAX)
    from .app.app import TraceApp
    from .app.themes import load_theme

    load_theme(args.theme)  # an unknown theme: one line, before the screen changes
    keymap = _keymap(args)
    app = TraceApp(args.trace, rules, theme=args.theme, early=early,
                   phase_groups=args.phase_groups, keymap=keymap, step_regex=args.step)
    from .app.process import exit_status
    from .signals import running

    with running(app):  # a signal: the app exits (the terminal restored), then 128+N
        app.run()
    return exit_status(app)


def _keys_from_tty() -> None:
    """Make the controlling terminal the standard input (as `less` does when data is piped
    in), so that the app can read keys; without one, nothing changes (the summary is shown)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return
    try:
        if os.isatty(fd):
            os.dup2(fd, 0)
    finally:
        os.close(fd)


def _early_load(path: str, pause_after_first: bool) -> Any:
    from .trace.loader import EarlyLoad

    return EarlyLoad(path, pause_after_first)


def demo_path() -> str:
    """The bundled sample (a DeepSeek-prefill-like trace: 2 GPUs, two micro-batches)."""
    from importlib import resources

    return str(resources.files("tracetui").joinpath("data", "demo.json.gz"))


def _parser_summary() -> argparse.ArgumentParser:
    from .analysis.streams import KERNEL_WAIT_US

    p = argparse.ArgumentParser(
        prog="tracetui summary",
        description="Kernels, streams, annotations and how much communication hides behind "
                    "computation, without the UI.")
    p.add_argument("trace", nargs="*",
                   help="trace file (.json or .json.gz, - for stdin); several files or a "
                        "directory: the per-rank figures and the straggler")
    p.add_argument("--json", action="store_true", help="everything, machine-readable")
    p.add_argument("--csv", nargs="?", const="kernels", default=None, metavar="TABLE",
                   help="a table as CSV on stdout: kernels (the default), "
                        + ", ".join(TABLES))
    p.add_argument("--step", type=_regex, default=None, metavar="REGEX",
                   help="steps are the CPU annotations whose name REGEX matches (default: "
                        "ProfilerStep#N; with none, the whole trace is one step)")
    p.add_argument("--shapes", action="store_true",
                   help="operators by input shapes and types too (their args are re-read "
                        "from the file: seconds on a large trace)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="several traces: make their reports on this running Dask distributed "
                        "cluster (tcp://host:8786; the files on a filesystem its workers "
                        "share; pip install 'tracetui[dask]') instead of local processes")
    p.add_argument("--top", type=_count, default=15, metavar="N",
                   help="rows per table in the text output (0: all; default 15)")
    p.add_argument("--group", action="store_true",
                   help="kernel table by short name (templates and arguments elided)")
    p.add_argument("--phases", action="store_true",
                   help="the phase diagram: per GPU, computation and communication rows of "
                        "the repeating annotations' kernels (and `phases` in --json)")
    p.add_argument("--level", type=_depth, default=None, metavar="DEPTH",
                   help="the phases are the repeating annotations at this nesting depth "
                        "(default: the innermost that repeat)")
    p.add_argument("--phase-groups", action="append", metavar="REGEX", type=_regex,
                   help="--phases: the chunk or micro-batch of a phase: the first group of "
                        "the first REGEX that matches its name (repeatable; default: (F)/(B)/"
                        "(W) and mb0/micro_batch_1-style names)")
    p.add_argument("--kernel-wait", type=float, default=KERNEL_WAIT_US, metavar="US",
                   help="idle split: gaps shorter than US µs between kernels a stream already "
                        f"had are kernel wait (default {KERNEL_WAIT_US:g})")
    _rule_args(p)
    p.add_argument("--rules", action="store_true",
                   help="print the active classification rules (a trace is then optional)")
    return p


def _parser_diff() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracetui diff",
        description="What changed from a baseline run to a new one: kernels by impact "
                    "(count, total, average), kernels in one run only, overlap per GPU and "
                    "per annotation, before and after.")
    p.add_argument("base", help="the baseline trace (or a directory of a job's rank traces)")
    p.add_argument("new", help="the trace to compare with it (or the other job's directory)")
    p.add_argument("--json", action="store_true", help="everything, machine-readable")
    p.add_argument("--top", type=_count, default=20, metavar="N",
                   help="rows per table in the text output (0: all; default 20)")
    p.add_argument("--group", action="store_true",
                   help="kernels by short name (survives changed template arguments)")
    p.add_argument("--text", action="store_true",
                   help="print the tables even in a terminal (piped, they are printed anyway)")
    p.add_argument("--theme", default="dark", metavar="NAME", help="colour theme of the view")
    _rule_args(p)
    return p


def _diff(args: argparse.Namespace) -> int:
    from .cli_many import diff, diff_ranks

    for p in (args.base, args.new):
        if p != "-" and not os.path.exists(p):
            raise TraceError(f"{p}: no such file or directory")
    if args.base == args.new == "-":
        raise TraceError("diff: stdin (-) can be one side only: the other is a file")
    dirs = [os.path.isdir(p) for p in (args.base, args.new)]
    if any(dirs):
        if not all(dirs):
            raise TraceError("diff: two directories of rank traces (two jobs), or two traces")
        return diff_ranks(args.base, args.new, _rules(args), as_json=args.json, top=args.top,
                          group=args.group)
    interactive = _interactive() and not args.text
    if interactive:
        from .app.themes import load_theme

        load_theme(args.theme)  # an unknown theme: one line, before the screen changes
    return diff(_spooled(args.base), _spooled(args.new), _rules(args), as_json=args.json,
                top=args.top, group=args.group, view=interactive, theme=args.theme)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {safe_text(text, 40)!r}") \
            from None


def _count(text: str) -> int:
    """A row count (0: all): a negative one used to drop rows silently."""
    v = _whole(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} is negative (0 shows every row)")
    return v


def _positive(text: str) -> int:
    """A count of at least one."""
    v = _whole(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v}: at least 1")
    return v


def _depth(text: str) -> int:
    v = _count(text) if not text.strip().startswith("-") else -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"{safe_text(text, 40)} is not a depth (0 is the "
                                         "outermost annotations)")
    return v


def _regex(text: str) -> str:
    """A regular expression, checked here: a bad one was an internal error later."""
    import re

    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regex {safe_text(text, 60)!r}: {e}") from None
    return text


def _rule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--comm", action="append", metavar="REGEX",
                   help="kernel names matching REGEX are communication (repeatable; "
                        "checked before the built-in rules)")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default ~/.config/tracetui/config.toml if it exists)")
    p.add_argument("--in-flight", action="append", metavar="REGEX",
                   help="communication kernels matching REGEX come as a short send and a later "
                        "receive, the transfer in flight between them (repeatable; built in: "
                        "DeepEP's low-latency _ll< and internode_ll::)")
    p.add_argument("--no-in-flight", action="store_true",
                   help="pair no send with a receive: kernel time only")


def _parser_main() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracetui",
        description="Terminal explorer for PyTorch Profiler (Kineto) and Chrome JSON traces.",
        epilog="commands: summary TRACE|DIR [--json | --csv] [--rules]   (tracetui summary -h); "
               "diff BASE NEW [--json]   (tracetui diff -h)")
    p.add_argument("trace", nargs="*",
                   help="trace file (.json or .json.gz, - for stdin); several, or a directory: "
                        "the ranks of one job on one timeline (piped: the per-rank figures)")
    p.add_argument("--demo", action="store_true", help="open the bundled sample trace")
    p.add_argument("--theme", default="dark", metavar="NAME",
                   help="colour theme: dark, light, high-contrast")
    p.add_argument("--align", default="start", metavar="ORIGIN",
                   help="several ranks: their common time origin: start (each trace's "
                        "start), step (the first ProfilerStep), clock (as recorded), or the "
                        "name of an annotation (its first occurrence); T cycles in the app")
    p.add_argument("--phase-groups", action="append", metavar="REGEX", type=_regex,
                   help="the phase view's chunk or micro-batch of a phase name: the first "
                        "group of the first REGEX that matches (repeatable)")
    p.add_argument("--max-ranks", type=_positive, metavar="N",
                   help="several ranks: the most rank timelines held at once (default 8, "
                        "fewer if memory is short); a job of more opens on demand: the rank "
                        "view from their reports, then the straggler's and the median rank's "
                        "timelines, and any rank ⏎ opens")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="several ranks: make their reports on the Dask distributed cluster "
                        "at ADDRESS (tcp://host:8786), the files on a filesystem its workers "
                        "share; the timelines opened are loaded here")
    p.add_argument("--step", type=_regex, default=None, metavar="REGEX",
                   help="the step view's steps: the CPU annotations whose name REGEX matches "
                        "(default: ProfilerStep#N)")
    p.add_argument("--top", type=_count, default=15, metavar="N", help=argparse.SUPPRESS)
    _rule_args(p)
    p.add_argument("--version", action="version", version=f"tracetui {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the program (tests call main(argv) in their own process): see signals
        from .signals import install

        install()
    argv = list(sys.argv[1:] if argv is None else argv)
    from .output import usable_streams

    usable_streams()
    try:
        rc = _main(argv)
        sys.stdout.flush()  # here, not at exit: a full disk is one line, not a traceback
        return rc
    except TraceError as e:
        from .trace.source import relabel

        print(f"tracetui: error: {safe_text(relabel(str(e)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tracetui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # e.g. `tracetui summary t.json | head`: the reader went away; not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except MemoryError:
        print("tracetui: error: out of memory", file=sys.stderr)
        return 2
    except OSError as e:  # the output: a full disk (> /dev/full), a dead terminal
        try:
            sys.stdout = open(os.devnull, "w")  # (what is left unwritten goes nowhere)
        except OSError:
            pass
        what = e.strerror or type(e).__name__
        print(f"tracetui: error: cannot write the output: {safe_text(what, 100)}",
              file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        print(f"tracetui: internal error: {type(e).__name__}: {safe_text(str(e), 200)} "
              "(please report this with the trace if you can)", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "summary":
        args = _parser_summary().parse_args(argv[1:])
        return _summary(args)
    if argv and argv[0] == "diff":
        return _diff(_parser_diff().parse_args(argv[1:]))
    parser = _parser_main()
    args = parser.parse_args(argv)
    if args.demo:
        args.trace = [demo_path()]
    if not args.trace:
        parser.print_usage(sys.stderr)
        print("tracetui: error: a trace file is needed (or --demo)", file=sys.stderr)
        return 2
    if len(args.trace) > 1 or os.path.isdir(args.trace[0]):
        return _ranks_view(args)
    for flag, value in (("--scheduler", args.scheduler), ("--max-ranks", args.max_ranks)):
        if value:
            raise TraceError(f"{flag}: for the ranks of a job (a directory, or A B …); "
                             "one trace is opened here")
    args.trace = args.trace[0]
    return _view(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
