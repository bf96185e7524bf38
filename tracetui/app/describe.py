"""The detail pane's texts: a slice, a marked range, an exposed stretch, an idle gap.

Plain functions of the trace and its aggregates that return Rich text; names from the trace
go through :func:`~tracetui.textutil.safe_text` (no markup, no escape sequence).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text

from ..analysis.attribution import launch_summary
from ..analysis.kernels import short_name
from ..analysis.perf import tensor_core_ids
from ..analysis.rules import CLASS_NAMES, COMM, COMP, NOT_GPU
from ..analysis.streams import GAP_KINDS
from ..tables import fmt_size
from ..textutil import fmt_time, middle, safe_text, tail
from ..trace import Trace
from .session import Analyses


#: describe_slice's ``args``: read them now / being read off the UI thread
READ_ARGS, ARGS_PENDING = "read", "pending"


def describe_slice(tr: Trace | None, row: int, classes: np.ndarray | None,
                   an: Analyses | None, bottom: bool = False, width: int = 42,
                   args: Any = READ_ARGS) -> Text:
    """The detail pane's account of slice ``row``: name, kind and lane, times, the kernel's
    launch figures, its CUDA graph, what launched it and what it launched, its args.
    ``bottom``: for a pane of a few rows under the timeline, ``width`` cells wide (the
    duration, start, lane and launch chain lead, the name shortened to a line). ``args``:
    :data:`READ_ARGS` (re-read them from the file now), :data:`ARGS_PENDING` (they are being
    read: said so), or ``(args, why not)`` as read elsewhere."""
    t = Text()
    if tr is None or row < 0:
        return t
    d = tr.detail(row, args=args == READ_ARGS)
    if isinstance(args, tuple):
        d["args"] = args[0]
        if args[0] is None and args[1]:
            d["args_unavailable"] = args[1]
    cls = int(classes[row]) if classes is not None else NOT_GPU
    kind = CLASS_NAMES[cls] if cls != NOT_GPU else safe_text(d["cat"])
    if bottom:
        # a few rows under the timeline (80x24): duration, start, lane and the launch
        # chain first, then the name shortened; the whole name and the rest below
        width = max(width, 20)
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
    if bottom:  # start and duration lead the pane already
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
    if an is not None and cls == COMP and classes is not None \
            and tensor_core_ids(tr, classes)[int(tr.name[row])]:
        t.append("on Tensor Cores", style="bold")
        t.append(" (by its name)\n", style="dim")
    coll = an.collectives_by_kernel() if an is not None and cls == COMM else None
    c = coll.get(row) if coll is not None else None
    if c is not None:
        t.append("\ncollective ", style="bold")
        t.append(safe_text(c["kind"]))
        parts = [fmt_size(c["bytes"]) if c["bytes"] is not None else "size unknown"]
        if c["dtype"]:
            parts.append(safe_text(c["dtype"], 16))
        if c["group_size"]:
            parts.append(f"{c['group_size']} ranks")
        t.append(" · " + " · ".join(parts) + "\n")
        if c["busbw_gbps"] is not None:
            t.append(f"busbw {c['busbw_gbps']:,.2f} GB/s  algbw {c['algbw_gbps']:,.2f} GB/s\n")
            t.append("  (nccl-tests' definitions, over "
                     f"{fmt_time(int(round(c['dur_us'] * 1000)))})\n", style="dim")
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
    if args == ARGS_PENDING:
        t.append("\nargs: ", style="bold")
        t.append("reading them from the file…\n", style="dim")
    args = d.get("args")
    if d.get("args_unavailable"):
        t.append("\nargs: ", style="bold")
        t.append(safe_text(d["args_unavailable"], 120) + "\n", style="yellow")
    if isinstance(args, dict) and args:
        t.append("\nargs\n", style="bold")
        for key, v in list(args.items())[:40]:
            t.append(f"  {safe_text(key, 30)}: {safe_text(v, 200)}\n")
    return t


def _stream(tr: Trace, row: int) -> str:
    """``s7`` for a slice on a GPU stream, else its lane's name."""
    ln = tr.lane_of(int(row))
    return f"s{ln.stream}" if ln.stream >= 0 else safe_text(ln.name, 30)


def _size(v: int | None) -> str:
    return "–" if v is None else fmt_size(v)


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
            # in cells; the end of a C++ name says the most: keep it
            t.append(tail(safe_text(f"{k['short_name']} ×{k['count']}"), room) + "\n")
    mem = st.get("memory")
    if mem and mem["devices"]:
        t.append("\nmemory allocated", style="bold")
        t.append("  start → end (max)\n", style="dim")
        for d in mem["devices"]:
            t.append(f"{safe_text(d['device'], 12):<8} {_size(d['start_bytes']):>10} → "
                     f"{_size(d['end_bytes'])} ({_size(d['max_bytes'])})"
                     + (" rel." if d["relative"] else "") + "\n")
        rows = mem["allocations"]
        if rows is None:
            t.append("largest allocations: pairing…\n", style="dim")
        elif rows:
            t.append("largest allocations in range\n", style="bold")
            for a in rows:
                t.append(f"{fmt_size(a['bytes']):>10} {safe_text(a['device'], 8)} ")
                t.append(tail(safe_text(a["op"] or "(no op)"), room) + "\n")
    return t


def describe_exposed(tr: Trace, d: dict[str, Any], k: int, n: int) -> Text:
    """The note atop the detail pane for exposed stretch ``k`` of ``n`` (largest first):
    ``d`` is its :meth:`~tracetui.analysis.exposed.ExposedStretches.detail`."""
    t = Text()
    t.append(f"exposed communication {k + 1:,} of {n:,}", style="bold")
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
    return t


def describe_gap(tr: Trace, lane: int, g0: int, g1: int, kind: int, nxt: int, launch: int,
                 k: int, n: int) -> Text:
    """The note atop the detail pane for idle gap ``k`` of ``n`` (largest first) of GPU
    stream lane ``lane``: [g0, g1), its kind, the slice ``nxt`` that ends it and when that
    was launched (-1: its launch is not in the trace)."""
    t = Text()
    t.append(f"idle gap {k + 1:,} of {n:,}", style="bold")
    t.append(f" on {safe_text(tr.lanes[lane].name, 40)} (largest first) · i next · "
             "I in time\n", style="dim")
    t.append(f"+{fmt_time(g0)} → +{fmt_time(g1)} · {fmt_time(g1 - g0)} · ")
    t.append(GAP_KINDS[kind] + "\n", style="bold")
    t.append("then " + safe_text(short_name(tr.name_of(nxt)), 60))
    if launch < 0:
        t.append(", whose launch is not in the trace\n")
    elif launch > g0:
        t.append(f", launched {fmt_time(launch - g0)} into the gap: the CPU had not "
                 "launched it yet\n")
    else:
        t.append(f", launched {fmt_time(g0 - launch)} before the gap: the stream had it "
                 "and waited\n")
    return t
