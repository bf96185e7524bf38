"""The summary's text: every table of ``tracetui summary`` as the terminal shows it (Rich),
the step, operator and module tables drawn from their :mod:`tracetui.tables` definitions, and
the kernel table as CSV. The command line (:mod:`tracetui.cli.main`) calls these."""

from __future__ import annotations

from typing import Any

from ..export import csv_text
from ..tables import TABLES, TEXT_TABLES, TableDef, annotation_rows
from ..textutil import cell_width, fit, fit_apart, fmt_time, safe_text

def fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"


_CSV_COLUMNS = ("name", "short_name", "class", "count", "total_us", "pct", "avg_us", "median_us",
                "min_us", "max_us", "stddev_us")


def write_kernel_csv(rows: list[dict[str, Any]], out: Any) -> None:
    out.write(csv_text(_CSV_COLUMNS, ([r[c] for c in _CSV_COLUMNS] for r in rows)))


def print_rules(rules: Any, as_json: bool) -> None:
    from ..analysis.rules import describe

    if as_json:
        from ..output import write_json

        write_json({"rules": describe(rules)})
        return
    from rich import box
    from ..output import console as out_console
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


def print_summary(r: dict[str, Any], top: int, group: bool = False) -> None:
    from rich.text import Text

    from ..output import console as out_console

    from ..analysis.kernels import short_name

    console = out_console()
    width = console.width

    def limit(rows: list[Any]) -> list[Any]:
        return rows[:top] if top else rows

    def more(rows: list[Any], what: str) -> None:
        if top and len(rows) > top:
            console.print(Text(f"  … {len(rows) - top} more {what} (--top 0 shows all)"))

    t = Text()
    t.append("trace  ", style="bold")
    t.append(safe_text(r["file"]))
    console.print(t)
    size = fmt_bytes(r["size_bytes"]) + (" (gzip)" if r["compressed"] else "")
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
        from ..analysis.phases import diagram_lines

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
        console.print(def_table(TEXT_TABLES["overlap"], r["overlap"], width))
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

    if r["kernels"]:
        name = "kernel_groups" if group else "kernels"
        console.print(def_table(TABLES[name], limit(r[name]), width))
        more(r[name], TABLES[name].what)

    if r["annotations"]:
        rows = r["annotations"]
        none = [a for a in rows if a["source"] == "none"]
        shown = annotation_rows(limit([a for a in rows if a["source"] != "none"]) + none)
        console.print(def_table(TEXT_TABLES["annotations"], shown, width))
        more([a for a in rows if a["source"] != "none"], "annotations")
        by_graph = [a for a in rows if a.get("graph_kernels")]
        if by_graph:
            a = max(by_graph, key=lambda a: a["graph_kernels"])
            console.print(Text(
                f"  {len(by_graph)} annotation{'s' if len(by_graph) > 1 else ''} hold CUDA "
                f"graph replays by the launch's CPU time alone (e.g. {safe_text(a['name'], 40)}: "
                f"{a['graph_kernels']:,} of its {a['kernels']:,} kernels came from graph "
                "launches inside it)", style="dim"))

    if r["exposed"]:
        n = sum(o.get("exposed_stretches", 0) for o in r["overlap"])
        total = sum(o["exposed_comm_us"] for o in r["overlap"])
        rows = []
        for x in limit(r["exposed"]):
            b, a = x["compute_before"], x["compute_after"]
            rows.append({**x, "kernel_short": short_name(x["kernel"] or "?"),
                         "comp_idle_us": (a["start_us"] if a else x["end_us"])
                         - (b["end_us"] if b else x["start_us"]),
                         "before": "none" if b is None else
                         f"{short_name(b['name'])} {_stream_of(b['lane'])}"})
        console.print(def_table(
            TEXT_TABLES["exposed"], rows, width,
            title=f"exposed communication (none of the GPU's computation runs): {n:,} "
                  f"stretches, {_ms(total)} ms; the largest, ms"))
        if top and n > len(rows):
            console.print(Text(f"  … {n - len(rows):,} more stretches (--top 0 shows "
                               f"{len(r['exposed'])}; --json lists the {len(r['exposed'])} "
                               "largest)"))

    gaps = [s for s in r["streams"] if s["kind"] == "gpu" and s["gaps"] is not None]
    if gaps:
        kw = r.get("idle_split", {}).get("kernel_wait_below_us")
        rows = []
        for st in limit(gaps):
            g = st["gaps"][0] if st["gaps"] else None
            rows.append({**st, "gap_us": g["dur_us"] if g else None,
                         "gap_at_us": g["start_us"] if g else None,
                         "gap_kind": g["kind"].split()[0] if g else None})
        console.print(def_table(
            TEXT_TABLES["stream_idle"], rows, width,
            title=f"GPU stream idle time, ms: host wait (its next kernel was not launched "
                  f"yet), kernel wait (gaps < {kw:g} µs), other; the largest gap"))
        more(gaps, "streams")

    busy = {st["lane"]: st for st in r["streams"]}
    lanes = []
    for ln in limit(r["lanes"]):
        st = busy.get(ln["name"]) or {}
        lanes.append({**ln, "kind_short": {"gpu_annotation": "annot"}.get(ln["kind"], ln["kind"]),
                      "busy_us": st.get("busy_us"), "utilization_pct": st.get("utilization_pct"),
                      "largest_gap_us": st.get("largest_gap_us")})
    console.print(def_table(TEXT_TABLES["lane_busy"], lanes, width))
    more(r["lanes"], "lanes")

    pairs = sorted((p for p in r["stream_overlap"] if p["overlap_us"] > 0),
                   key=lambda p: -p["overlap_us"])
    if pairs:
        console.print(def_table(TEXT_TABLES["stream_pairs"],
                                [{**p, "streams": f"{p['a_stream']} × {p['b_stream']}"}
                                 for p in limit(pairs)], width))
        more(pairs, "stream pairs")

    if r.get("collective_kinds"):
        console.print(def_table(TEXT_TABLES["collective_kinds"], r["collective_kinds"], width))
    _print_steps(console, r, top, width)
    for name in ("operators", "operator_shapes", "module_types"):
        if r.get(name):
            console.print(def_table(TABLES[name], r[name][:top] if top else r[name], width))
            more(r[name], TABLES[name].what)
        if name == "operators" and r.get(name):
            _print_gemms(console, r, width, top)
    if r.get("memory"):
        console.print(def_table(TEXT_TABLES["memory"], r["memory"], width))
    if r.get("memory_ops"):
        rows = r["memory_ops"]
        console.print(def_table(TEXT_TABLES["memory_ops"], rows[:top] if top else rows, width))
        more(rows, "operators")

    for w in r["warnings"]:
        console.print(Text("warning: " + safe_text(w, 300), style="yellow"))


def _print_gemms(console: Any, r: dict[str, Any], width: int, top: int) -> None:
    """The operators with FLOPs: achieved TFLOP/s, roofline %, Tensor Core share."""
    from rich.text import Text

    from ..tables import flops_rows

    rows = flops_rows(r["operators"])
    if not rows:
        return
    peaks = r.get("peaks")
    console.print(def_table(TEXT_TABLES["flops"], rows[:top] if top else rows, width))
    over = [o["name"] for o in rows if (o.get("roofline_pct") or 0) > 100]
    if over:
        console.print(Text(
            f"  roof % above 100 for {len(over)} operator{'s' if len(over) > 1 else ''} ("
            + ", ".join(safe_text(n, 30) for n in over[:3]) + (", …" if len(over) > 3 else "")
            + "): more work than the datasheet allows in that time — the shapes, the device "
            "time or the device named do not fit (a synthetic trace, another GPU)",
            style="yellow"))
    console.print(Text(
        "  roof %: the roofline bound, max(FLOPs / peak, bytes / bandwidth), as % of the device "
        "time, " + (f"against the {peaks['device']}'s dense datasheet peaks" if peaks else
                    "unknown: the trace names no GPU the peaks table knows ([peaks] in the config adds one)"),
        style="dim"))


def def_table(tdef: TableDef, rows: list[dict[str, Any]], width: int,
              title: str | None = None, row_style: Any = None) -> Any:
    """A :class:`~tracetui.tables.TableDef`'s rows as a Rich table ``width`` cells wide at
    most: numbers (and text columns of a set width) whole, the other text columns share what
    is left, cut as each says (``apart``: no two rows alike); while it is too wide, the
    optional columns go, the highest first. ``row_style(row)``: a row's style, or None."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cols = list(tdef.columns)
    cells = [[c.fmt(r.get(c.key)) for c in cols] for r in rows]

    def flexible(c: Any) -> bool:  # (a text column of a set width, "class", is not)
        return not c.numeric and not c.width

    def natural(k: int) -> int:
        return max([cell_width(cols[k].title)] + [cell_width(x[k]) for x in cells])

    def need(keep: list[int]) -> tuple[int, int, int]:
        # (3 cells between columns, an edge cell each side: the sum less 1)
        fixed = sum(natural(k) + 3 for k in keep if not flexible(cols[k]))
        text = [natural(k) for k in keep if flexible(cols[k])]
        want = sum(min(n, tdef.text_goal) for n in text)
        return fixed, len(text), want

    # (a column without a title whose every cell is blank says nothing: a mark no row has)
    keep = [k for k in range(len(cols)) if cols[k].title or any(x[k] for x in cells)]
    while True:
        fixed, n_text, want = need(keep)
        if fixed + 3 * n_text + want <= width:  # (names get what they want, or their text)
            break
        droppable = [k for k in keep if cols[k].optional]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda k: cols[k].optional))
    room = max(8, (width - fixed - 3 * n_text) // max(n_text, 1))
    shown: dict[int, list[str]] = {}
    for k in keep:
        c = cols[k]
        if not flexible(c):
            continue
        texts = [safe_text(x[k]) for x in cells]
        if c.cut == "apart":
            shown[k] = fit_apart(texts, room)
        else:
            shown[k] = [fit(t, min(room, cell_width(t)), cut=c.cut) for t in texts]
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, title=title or tdef.title,
              title_justify="left", title_style="bold")
    for k in keep:
        c = cols[k]
        values = shown.get(k, [x[k] for x in cells])
        w = max([cell_width(c.title)] + [cell_width(v) for v in values])
        t.add_column(c.title, justify="right" if c.numeric else "left", no_wrap=True,
                     min_width=w if not flexible(c) else min(w, room))
    for i, x in enumerate(cells):
        t.add_row(*(Text(shown[k][i]) if k in shown else
                    (x[k] if cols[k].numeric else Text(safe_text(x[k]))) for k in keep),
                  style=row_style(rows[i]) if row_style else None)
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
