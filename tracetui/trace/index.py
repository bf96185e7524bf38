"""Building the index: a builder's :class:`~tracetui.trace.builder.Snapshot` -> a
:class:`~tracetui.trace.model.Trace`, and the depth of nested slices.

:func:`build` needs no file: a hand-made snapshot and any :class:`EventReader` will do
(tests/test_trace_core.py builds from one).
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from ..heap import give_back
from .builder import GPU_COLUMNS, MEMORY_COLUMNS, Snapshot
from .depth import _threaded, compute_depth
from .strings import MAX_NAME
from .model import (LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, CounterTrack, EventReader,
                    KernelFields, Lane, MemoryEvents, SparseColumn, Trace, python_cat_ids)

_NUM = re.compile(r"(-?\d+)")


class _StartsAndDurs:
    """Stands for the trace while its lanes' depth indexes are used before it exists."""

    def __init__(self, start: np.ndarray, dur: np.ndarray) -> None:
        self.start, self.dur = start, dur



def uniform_as_view(col: np.ndarray) -> np.ndarray:
    """``col`` itself, or - when every value is the same (a trace whose kernels carry no
    args: grid, block, registers, … all their defaults) - a read-only view of that one value
    in its shape: 91 of the 134 MB a 1.5 M-kernel trace kept were such columns."""
    if col.size < 4096:
        return col
    first = col.reshape(-1)[:1].copy()  # (a view of col would keep all of it alive)
    same = np.isnan(col).all() if col.dtype.kind == "f" and np.isnan(first).all() \
        else bool((col == first[0]).all())
    return np.broadcast_to(first.reshape((1,) * col.ndim), col.shape) if same else col

def _sort_key(v: Any) -> tuple[int, float, str]:
    """Numbers before strings; strings with a number ("stream 7") sort by that number."""
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    s = str(v)
    m = _NUM.search(s)
    return (1, float(m.group(1)) if m else float("inf"), s)


def _stream_number(tid: Any) -> int:
    if isinstance(tid, int):
        return tid
    m = _NUM.search(str(tid))
    return int(m.group(1)) if m else -1


def _by_start_longest_first(idx: np.ndarray, s: np.ndarray,
                            dur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One lane's rows (``idx``, their starts ``s``) in (start, longest first) order, with
    their durations (looked up in ``dur`` once in order). A stable sort by start, then only
    the runs of equal starts out of order (few) by duration: a lexsort of the whole lane
    would hold several lane-sized temporaries at once, on the largest lane of the trace."""
    if len(s) > 1 and not (s[1:] >= s[:-1]).all():
        o = np.argsort(s, kind="stable")
        idx = idx[o]  # one at a time: the temporaries of a long lane add up
        s = s[o]
        del o
    d = dur[idx]
    tie = np.flatnonzero((s[1:] == s[:-1]) & (d[1:] > d[:-1]))
    if len(tie):  # runs of equal starts out of order: sorted by -dur (stable), all at once
        vals = np.unique(s[tie])
        first = np.searchsorted(s, vals, "left")
        size = np.searchsorted(s, vals, "right") - first
        # the rows of those runs: first[r], first[r] + 1, ... for each run r
        sel = np.arange(int(size.sum()), dtype=np.int64)
        sel += np.repeat(first - (np.cumsum(size) - size), size)
        del first, size, vals
        o = np.lexsort((-d[sel], s[sel]))  # stable; s is sorted: runs stay in place
        idx[sel], d[sel] = idx[sel][o], d[sel][o]
    return idx, s, d


def _fold_python(py: np.ndarray, s: np.ndarray, d: np.ndarray, o: np.ndarray,
                 lo: int) -> tuple[np.ndarray, np.ndarray]:
    """One CPU lane with its Python frames (``py``) folded away (Lane.folded), while the
    build has the lane in (start, longest first) order at hand: the depth pass over its
    other slices alone, no sort of its own. (rows in their final places, grouped by
    folded depth and in start order within one; the folded depths). ``o`` is the build's
    grouping by depth (the final order)."""
    keep = np.flatnonzero(~py)  # positions in start order
    fd = compute_depth(s[keep], d[keep])
    place = np.empty(len(o), np.int64)  # start-order position -> final row
    place[o] = np.arange(lo, lo + len(o))
    g = np.argsort(fd, kind="stable")  # by folded depth, keeping start order
    return place[keep[g]], fd[g]


def _kernel_fields(slice_of_row: np.ndarray, n_slices: int, gpu: dict[str, np.ndarray],
                   plain: dict[str, np.ndarray]) -> KernelFields:
    """The typed columns of GPU work, one row per GPU slice in slice order. Work without
    args (``plain``: its rows only) takes every field's default; a field no slice has is a
    read-only view of its default (no memory per kernel). The builder's columns are
    dropped from ``gpu`` as they are copied."""
    def slices_of(rows: np.ndarray | None) -> np.ndarray:
        if rows is None or not len(rows):
            return np.zeros(0, slice_of_row.dtype)
        s = slice_of_row[rows]
        return s if bool((s >= 0).all()) else s[s >= 0]

    full_rows = gpu.pop("row", None)
    full_keep = None if full_rows is None or not len(full_rows) \
        else slice_of_row[full_rows] >= 0
    full = slices_of(full_rows)
    del full_rows
    part = slices_of(plain.get("row"))
    n = len(full) + len(part)
    if not len(full):  # no GPU slice has a field (or there is none): no argsort, no columns
        mark = np.zeros(n_slices, bool)
        mark[part] = True
        del part
        # the marked slices, sorted; boolean indexing of an int32 range holds half of what
        # flatnonzero's int64 would (the one copy of every GPU slice number)
        order_slice = np.arange(n_slices, dtype=np.int32 if n_slices < 2**31 else np.int64)
        if not mark.all():
            order_slice = order_slice[mark]
        del mark
        pos = None
    else:
        both = np.concatenate([full, part]) if len(part) else full
        del part
        g_order = np.argsort(both, kind="stable")
        order_slice = both[g_order]
        del both
        # where each slice with fields goes in slice order
        pos = np.empty(n, np.int64)
        pos[g_order] = np.arange(n)
        pos = pos[: len(full)]
        del g_order

    def column(k: str) -> np.ndarray:
        col = gpu.pop(k, None)
        dtype, default = GPU_COLUMNS[k]
        if pos is None or col is None:
            return np.broadcast_to(np.array(default, dtype), (n,))
        if full_keep is not None and not full_keep.all():
            col = col[full_keep]
        if len(pos) == n:
            out = np.empty(n, col.dtype)
        else:
            out = np.full(n, default, col.dtype)
        out[pos] = col
        return uniform_as_view(out)

    def dim3(c: str) -> np.ndarray:
        parts = [column(c + x) for x in "xyz"]
        if all(p.strides == (0,) for p in parts):  # all three one value: a view of it
            v = np.array([[p[0] if len(p) else 0 for p in parts]], np.int32)
            return np.broadcast_to(v, (n, 3))
        return uniform_as_view(np.stack(parts, axis=1))

    return KernelFields(
        slice=order_slice, grid=dim3("g"), block=dim3("b"),
        **{f: column(c) for f, c in (
            ("registers", "regs"), ("shared_memory", "smem"), ("blocks_per_sm", "blocks_per_sm"),
            ("warps_per_sm", "warps_per_sm"), ("occupancy", "occupancy"), ("bytes", "bytes"),
            ("bandwidth", "bandwidth"))})


@dataclass(frozen=True)
class LoadFacts:
    """What the loader knows about the file and the load, beside the builder's snapshot."""

    path: str
    size: int  # bytes on disk
    compressed: bool
    complete: bool  # False for a snapshot taken while loading (or a cancelled load)
    truncated: bool
    warnings: list[str]
    bytes_read: int
    final: bool = True  # the load is over (B events still open are then named in a warning)
    threads: int = 1  # threads for the build (the cores the load's processes used)


def build(snap: Snapshot, reader: EventReader, facts: LoadFacts) -> Trace:
    """Turn a builder's snapshot into a :class:`Trace`: lanes named and ordered, slices
    sorted by (lane, depth, start), depths, launch links and flows resolved, times made
    relative to the first event. ``reader`` re-reads events by row (their args). The
    snapshot is used up: its column dicts are emptied."""
    # The snapshot's columns are taken over: each is dropped from its dict (and so freed,
    # on the final build) as soon as its sorted copy exists.
    cols = snap.slices
    ob_n = snap.open_b
    inst = snap.instants
    cs = snap.counter_samples
    gpu = snap.gpu
    corr, ext = snap.corr, snap.ext
    flows = snap.flows
    lane_keys = snap.lanes
    counter_tracks = snap.counter_tracks
    skipped, notes = snap.skipped, snap.notes
    events, phase_counts = snap.events, snap.phase_counts
    n_rows = snap.items
    header = snap.header
    non_text = snap.strings.non_text
    cut_names = snap.strings.cut
    final = facts.final

    lane, start, dur, name, cat, row = (cols.pop(k) for k in
                                        ("lane", "start", "dur", "name", "cat", "row"))
    if len(row) and row.max() < 2**31:
        row = row.astype(np.int32)

    # ---- time origin and span
    mem = snap.memory if len(snap.memory.get("ts", ())) else {"ts": np.zeros(0, np.int64)}
    start, dur, inst, cs, flows, mem, strays = _within_span(start, dur, inst, cs, flows, mem)
    if strays:
        notes = {**notes, f"events more than {SPAN_LIMIT_NS / 2 / NS_PER_YEAR:,.0f} years "
                          "from the trace's other times (stray timestamps?): drawn at its "
                          "edge": strays}
    firsts = [a.min() for a in (start, inst["ts"], cs["ts"], mem["ts"]) if len(a)]
    t0 = int(min(firsts)) if firsts else 0
    start = start - t0
    ends = [int((start + np.maximum(dur, 0)).max())] if len(start) else []
    if len(inst["ts"]):
        ends.append(int(inst["ts"].max()) - t0)
    if len(cs["ts"]):
        ends.append(int(cs["ts"].max()) - t0)
    if len(mem["ts"]):
        ends.append(int(mem["ts"].max()) - t0)
    end_ns = max(ends) if ends else 0
    if ob_n:
        dur[-ob_n:] = np.maximum(end_ns - start[-ob_n:], 0)

    give_back()
    # ---- lanes: name, kind, order
    pnames, plabels, psort = snap.process_names, snap.process_labels, snap.process_sort
    tnames, tsort = snap.thread_names, snap.thread_sort
    used = np.zeros(len(lane_keys), bool)
    used[np.unique(lane)] = True
    if len(inst["lane"]):
        used[np.unique(inst["lane"])] = True
    if len(mem.get("lane", ())):  # (a thread with memory events only: a lane too)
        used[np.unique(mem["lane"])] = True
    infos = []
    for li, (pid, tid, sub, is_gpu, device, stream) in enumerate(lane_keys):
        if not used[li]:
            continue
        label = plabels.get(pid, "")
        gpu_proc = is_gpu or bool(re.match(r"GPU\s*\d+", label)) or sub == "annotations"
        if gpu_proc:
            if device < 0:
                m = _NUM.search(label)
                device = int(m.group(1)) if m else (pid if isinstance(pid, int) else -1)
            if stream < 0:
                stream = _stream_number(tid)
            kind = LANE_GPU_ANNOTATION if sub == "annotations" else LANE_GPU
            lname = f"GPU {device} · stream {stream}"
            if sub == "annotations":
                lname += " · annotations"
            process, thread = label or f"GPU {device}", f"stream {stream}"
        else:
            kind = LANE_CPU
            device = stream = -1
            pn = pnames.get(pid, "")
            if pid in ("", None) and tid in ("", None):
                process, thread = "global", ""
            else:
                numeric = isinstance(pid, int)
                if pn:
                    process = f"{pn} {pid}" if numeric and str(pid) not in pn else pn
                else:
                    process = f"pid {pid}" if numeric else str(pid)  # Kineto's "Spans"
                thread = tnames.get((pid, tid), "").strip() or (
                    f"thread {tid}" if isinstance(tid, int) else str(tid))
            lname = f"{process} · {thread}" if thread else process
        pkey = (0 if gpu_proc else 1, psort.get(pid, float("nan")), _sort_key(pid))
        if pkey[1] != pkey[1]:  # no sort index: by pid
            pkey = (pkey[0], float("inf"), _sort_key(pid))
        # a stream's annotation lane comes right after the stream itself
        tkey = (tsort.get((pid, tid), float("inf")), _sort_key(tid), 1 if sub else 0)
        infos.append((pkey, tkey, li, lname, kind, pid, tid, device, stream, process, thread))
    infos.sort(key=lambda x: (x[0], x[1]))
    remap = np.full(len(lane_keys) + 1, -1, np.int32)
    for new, info in enumerate(infos):
        remap[info[2]] = new
    lane = remap[lane]
    inst_lane = remap[inst["lane"]] if len(inst["lane"]) else np.zeros(0, np.int32)

    # ---- order: by lane; within a lane by depth, then start (longest first on ties), so
    # that every (lane, depth) is a contiguous, start-sorted range of rows. Sorting lane by
    # lane keeps the temporaries the size of one lane, not of the whole trace.
    by_lane = np.argsort(lane, kind="stable")
    if len(by_lane) < 2**31:  # half the memory for the order and every lane's share of it
        by_lane = by_lane.astype(np.int32)
    bounds = np.zeros(len(infos) + 1, np.int64)
    np.cumsum(np.bincount(lane, minlength=len(infos))[: len(infos)], out=bounds[1:])
    del lane
    depth = np.zeros(len(start), np.int16)
    python = python_cat_ids(snap.strings) if any(x[4] == LANE_CPU for x in infos) \
        else frozenset()
    # folds run in a thread beside the rest of the build (numpy lets go of the GIL in the
    # depth pass and the sorts): the lanes' depths and the columns' gathers go on meanwhile
    folder = ThreadPoolExecutor(1, thread_name_prefix="tracetui-fold") if python else None
    folds: dict[int, Future[tuple[np.ndarray, np.ndarray] | None]] = {}
    for new in range(len(infos)):
        lo, hi = int(bounds[new]), int(bounds[new + 1])
        idx = by_lane[lo:hi]
        idx, s, d = _by_start_longest_first(idx, start[idx], dur)
        dep = compute_depth(s, d, facts.threads)
        o = np.argsort(dep, kind="stable")  # group by depth, keeping start order
        if folder is not None and infos[new][4] == LANE_CPU:
            # the frames found here: idx may be a view of the order rewritten just below
            c = cat[idx]
            py = np.zeros(len(idx), bool)
            for k in python:
                py |= c == k
            del c
            if py.any() and not py.all():
                folds[new] = folder.submit(_fold_python, py, s, d, o, lo)
        del s, d
        by_lane[lo:hi] = idx[o]
        if dep.dtype != depth.dtype:
            depth = depth.astype(dep.dtype)
        depth[lo:hi] = dep[o]
        del idx, o, dep
    # one column at a time: each old column is freed as soon as its sorted copy exists
    start = start[by_lane]
    dur = dur[by_lane]
    name = name[by_lane]
    cat = cat[by_lane]
    row = row[by_lane]
    del by_lane
    lanes: list[Lane] = []
    for new, info in enumerate(infos):
        lo, hi = int(bounds[new]), int(bounds[new + 1])
        dmax = int(depth[lo:hi].max(initial=0)) if hi > lo else -1
        dbounds = lo + np.searchsorted(depth[lo:hi], np.arange(dmax + 2))
        _, _, _, lname, kind, pid, tid, device, stream, process, thread = info
        lanes.append(Lane(index=new, name=lname, kind=kind, pid=pid, tid=tid, device=device,
                          stream=stream, lo=lo, hi=hi, depth_bounds=dbounds.astype(np.int64),
                          process=process, thread=thread))
        if kind == LANE_CPU:
            fold = folds.pop(new, None)
            lanes[-1].set_fold(fold.result() if fold is not None else None)
    if folder is not None:
        folder.shutdown()

    give_back()
    # ---- args row -> slice row
    slice_of_row = np.full(n_rows + 1, -1, np.int32 if len(row) < 2**31 else np.int64)
    slice_of_row[row] = np.arange(len(row))

    correlation = _per_slice(slice_of_row, corr["row"], corr["value"])
    external_id = _per_slice(slice_of_row, ext["row"], ext["value"])
    corr.clear()
    ext.clear()

    # ---- GPU typed fields: rows with fields (gpu) and rows without any (gpu_plain)
    kernels = _kernel_fields(slice_of_row, len(start), gpu, snap.gpu_plain)
    snap.gpu_plain.clear()

    # ---- launch links through correlation: GPU work -> runtime call
    is_gpu_slice = np.zeros(len(start), bool)
    is_gpu_slice[kernels.slice] = True
    on_gpu = is_gpu_slice[correlation.rows]
    cpu_side, cpu_corr = correlation.rows[~on_gpu], correlation.values[~on_gpu]
    gpu_side, gpu_corr = correlation.rows[on_gpu], correlation.values[on_gpu]
    del is_gpu_slice
    launch_src = np.zeros(0, np.int64)
    launch_dst = np.zeros(0, np.int64)
    if len(cpu_side) and len(gpu_side):
        o = np.argsort(cpu_corr, kind="stable")
        cv, cpu_sorted = cpu_corr[o], cpu_side[o]
        k = np.minimum(np.searchsorted(cv, gpu_corr), len(cv) - 1)
        hit = cv[k] == gpu_corr
        launch_dst, launch_src = gpu_side[hit], cpu_sorted[k[hit]]
    launch_of = SparseColumn(launch_dst, launch_src)
    del slice_of_row, gpu, launch_dst, launch_src, cpu_side, cpu_corr, gpu_side, gpu_corr

    give_back()
    # ---- flows: resolve endpoints to slices, then link consecutive endpoints of one flow
    lane_bounds = np.array([ln.lo for ln in lanes] + [len(start)], np.int64)
    for ln in lanes:  # the flows below look lanes' depths up in these columns
        ln._trace = _StartsAndDurs(start, dur)  # type: ignore[assignment]
    flow_src, flow_dst, flow_cat, unpaired = _resolve_flows(flows, remap, t0, lanes,
                                                            facts.threads)
    del flows

    give_back()
    # ---- instants, counters
    inst_ts = inst["ts"] - t0
    io = np.lexsort((inst_ts, inst_lane)) if len(inst_ts) else np.zeros(0, np.int64)
    inst_lane, inst_ts = inst_lane[io], inst_ts[io]
    inst_bounds = np.searchsorted(inst_lane, np.arange(len(lanes) + 1))
    inst_row = inst["row"][io]
    memory = _memory_events(mem, remap, t0)
    for ln in lanes:
        ln.instants = np.arange(inst_bounds[ln.index], inst_bounds[ln.index + 1])
    counters = []
    if len(cs["track"]):
        co = np.lexsort((cs["ts"], cs["track"]))
        trk, cts, cval = cs["track"][co], cs["ts"][co] - t0, cs["value"][co]
        cb = np.searchsorted(trk, np.arange(len(counter_tracks) + 1))
        for ti, (pid, cname, cid, series) in enumerate(counter_tracks):
            lo, hi = int(cb[ti]), int(cb[ti + 1])
            label = cname if series in ("value", "") else f"{cname} · {series}"
            if cid is not None:
                label += f" #{cid}"
            counters.append(CounterTrack(name=label, pid=pid, series=series, ts=cts[lo:hi],
                                         values=cval[lo:hi]))

    # ---- warnings
    warnings = list(facts.warnings)
    examples = snap.examples
    for reason, n in sorted(skipped.items()):
        ex = examples.get(reason)
        warnings.append(f"skipped {n:,} events: {reason}" + (f" (first: {ex})" if ex else ""))
    for reason, n in sorted(notes.items()):
        warnings.append(f"{n:,} {reason}")
    if ob_n and final:
        warnings.append(f"{ob_n:,} B events never ended (shown up to the end of the trace)")
    flows_said = flow_warning(unpaired) if final else None
    if flows_said:
        warnings.append(flows_said)
    if non_text:
        warnings.append(f"{non_text:,} names or categories were not strings (kept as text)")
    if cut_names:
        warnings.append(f"{cut_names:,} names longer than {MAX_NAME // 1024} K characters "
                        "(kept cut, with their length)")

    return Trace(
        path=facts.path, size=facts.size, compressed=facts.compressed,
        complete=facts.complete, truncated=facts.truncated, warnings=warnings,
        t0_abs_ns=t0, end_ns=end_ns, strings=snap.strings, lanes=lanes,
        lane_bounds=lane_bounds, start=start, dur=dur, name=name, cat=cat, depth=depth,
        row=row, inst_lane=inst_lane, inst_ts=inst_ts, inst_name=inst["name"][io],
        inst_cat=inst["cat"][io], inst_row=inst_row, counters=counters,
        kernels=kernels, launch_of=launch_of, correlation=correlation,
        external_id=external_id, flow_src=flow_src, flow_dst=flow_dst, flow_cat=flow_cat,
        header=header, events=events, phase_counts=phase_counts, bytes_read=facts.bytes_read,
        pieces=reader, extra_args=snap.extra_args, memory=memory)


def _memory_events(mem: dict[str, np.ndarray], remap: np.ndarray, t0: int) -> MemoryEvents:
    """The ``[memory]`` events' columns, their lanes renumbered as the lanes were, by time
    (file order among equal times: already so where the file has them in time order, and
    then not sorted again)."""
    if not len(mem.get("row", ())):
        return MemoryEvents.empty()
    ts = mem["ts"] - t0
    row = mem["row"]
    if len(ts) > 1 and not (bool((ts[1:] >= ts[:-1]).all())
                            and bool((row[1:] > row[:-1]).all())):
        o = np.lexsort((row, ts))
        return MemoryEvents(ts=ts[o], lane=remap[mem["lane"][o]].astype(np.int32), row=row[o],
                            **{c: mem[c][o] for c in MEMORY_COLUMNS})
    return MemoryEvents(ts=ts, lane=remap[mem["lane"]].astype(np.int32), row=row,
                        **{c: mem[c] for c in MEMORY_COLUMNS})


def _per_slice(slice_of_row: np.ndarray, rows: np.ndarray, values: np.ndarray) -> SparseColumn:
    """(file row, value) pairs as a sparse column over slice rows."""
    idx = slice_of_row[rows]
    ok = idx >= 0
    return SparseColumn(idx[ok], values[ok])


_FLOW_CHUNK = 1 << 18  # flow endpoints bound to slices at a time


def _bind_endpoints(ln: Lane, t: np.ndarray, enclosing: np.ndarray) -> np.ndarray:
    """The row of the slice each flow endpoint of lane ``ln`` (times ``t``) binds to: the
    deepest slice enclosing it; for an ``f`` without ``bp: "e"`` that nothing encloses
    (``enclosing`` 0), the next slice at depth 0; else -1."""
    best = np.full(len(t), -1, np.int64)
    if len(t) > 1 and not (t[1:] >= t[:-1]).all():
        # in time order: numpy's binary searches are several times faster on sorted keys
        # (each starts from the last)
        ot = np.argsort(t, kind="stable")
        best[ot] = _bind_endpoints(ln, t[ot], enclosing[ot])
        return best
    # The deepest enclosing slice wins: from the deepest depth up, each endpoint is looked
    # for only until a depth encloses it (most bind deep: runtime calls).
    todo: np.ndarray | None = None  # endpoints not bound yet (None: all)
    for d in range(ln.max_depth, -1, -1):
        di = ln.depth_index(d)
        if not len(di):
            continue
        tt = t if todo is None else t[todo]
        k = np.searchsorted(di.starts, tt, side="right") - 1
        inside = k >= 0
        np.maximum(k, 0, out=k)
        s0 = di.starts[k]
        inside &= (s0 + di._dur[k] > tt) | (s0 == tt)
        del s0, tt
        k += di.lo
        hit = np.flatnonzero(inside) if todo is None else todo[inside]
        best[hit] = k[inside]
        todo = np.flatnonzero(~inside) if todo is None else todo[~inside]
        del k, inside, hit
        if not len(todo):
            break
    # "next slice" binding for f events without bp=e when nothing encloses them
    nxt = (best < 0) & (enclosing == 0)
    if nxt.any():
        di = ln.depth_index(0)
        k = np.searchsorted(di.starts, t[nxt], side="left")
        ok = k < len(di.starts)
        cand = np.full(int(nxt.sum()), -1, np.int64)
        cand[ok] = di.lo + k[ok]
        best[nxt] = cand
    return best


def _bind_chunk(ln: Lane, idx: np.ndarray, ts: np.ndarray, enclosing: np.ndarray,
                t0: int) -> tuple[np.ndarray, np.ndarray]:
    return idx, _bind_endpoints(ln, ts[idx] - t0, enclosing[idx])


def _flow_chunks(lanes: list[Lane], order: np.ndarray, lb: np.ndarray, ts: np.ndarray,
                 enclosing: np.ndarray, t0: int, threads: int
                 ) -> Iterator[Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """The flow endpoints' binding, lane by lane, a chunk at a time: the temporaries stay a
    chunk's size, not the lane's (with threads, smaller chunks: as much memory in all)."""
    step = max(_FLOW_CHUNK // max(threads, 1), 1)
    for ln in lanes:
        if ln.count == 0:
            continue
        for d in range(ln.max_depth + 1):  # made here, not in two threads at once
            ln.depth_index(d)
        lane_idx = order[lb[ln.index] : lb[ln.index + 1]]
        for c in range(0, len(lane_idx), step):
            yield partial(_bind_chunk, ln, lane_idx[c : c + step], ts, enclosing, t0)


def _resolve_flows(flows: dict[str, np.ndarray], remap: np.ndarray, t0: int,
                   lanes: list[Lane], threads: int = 1
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Flow links between slices (source rows, destination rows, category ids) and the
    counts of endpoints no link joins (see :func:`flow_warning`)."""
    n = len(flows["key"])
    empty = np.zeros(0, np.int64)
    if n == 0:
        return empty, empty, np.zeros(0, np.int32), {}
    ts = flows["ts"]  # absolute: the lane loop subtracts t0 on its own (smaller) arrays
    enclosing = flows["enclosing"]
    target = np.full(n, -1, np.int32 if sum(ln.count for ln in lanes) < 2**31 else np.int64)
    lane = remap[flows["lane"]]
    order = np.argsort(lane, kind="stable")
    if n < 2**31:
        order = order.astype(np.int32)
    lb = np.zeros(len(lanes) + 1, np.int64)
    np.cumsum(np.bincount(lane[lane >= 0], minlength=len(lanes))[: len(lanes)], out=lb[1:])
    lb += int((lane < 0).sum())  # endpoints on lanes that hold nothing sort first
    del lane

    for idx, got in _threaded(_flow_chunks(lanes, order, lb, ts, enclosing, t0, threads),
                              threads):
        target[idx] = got
    del order, ts
    # The caller hands its columns over: each is dropped from ``flows`` (and so freed) as
    # soon as it is used, before the next temporaries.
    for col in ("lane", "enclosing"):
        del flows[col]
    # Pair the endpoints of each flow (key: category and id, or a v2 bind_id) in time, not
    # in file order (Kineto's files are not sorted): every endpoint that takes a flow in
    # (an f, a step t, a v2 flow_in) is linked from the latest endpoint of the same flow
    # before it in time that sends one out (an s, a t, a v2 flow_out). At equal times a
    # start comes before the end it leads to. This is how Perfetto's JSON importer pairs
    # (importers/json/json_trace_parser_impl.cc + common/flow_tracker.cc, on events sorted
    # by ts): an f does not close its flow (close_flow = false), so the kernels of one CUDA
    # graph launch (one s, an f each) all link to it, and an f earlier in time than any
    # start of its flow is dropped and counted (its stat flow_end_without_start;
    # chrome://tracing's importer, which also sorts by ts, warns "no flow start found").
    # Unlike Perfetto, a later s of a reused id starts the flow anew (ids are reused in
    # Chrome's traces), as chrome://tracing does.
    o = np.lexsort((flows["flags"] & 1, flows.pop("ts"), flows["key"]))
    key = flows.pop("key")[o]
    flags = flows.pop("flags")[o]
    tgt: np.ndarray = target[o]
    del target
    cat = flows.pop("cat")[o]
    del o
    m = len(key)
    pos = np.arange(m, dtype=np.int64)
    new_key = np.ones(m, bool)
    new_key[1:] = key[1:] != key[:-1]
    group_start = np.maximum.accumulate(np.where(new_key, pos, 0))
    del key
    out = (flags & 2) > 0
    into = (flags & 1) > 0

    def latest_before(mark: np.ndarray) -> np.ndarray:
        """For each endpoint, the latest marked one strictly before it (-1: none)."""
        got = np.empty(m, np.int64)
        got[0] = -1
        got[1:] = np.maximum.accumulate(np.where(mark, pos, -1))[:-1]
        return got

    # a flow is started by an s (a v2 flow_out alone); a step (t, v2 in and out) with no
    # start before it starts nothing either (Perfetto: flow_step_without_start)
    started = latest_before(out & ~into) >= group_start
    prev_out = latest_before(out & (~into | started))
    linked = into & started
    src, dst = prev_out[linked], pos[linked]
    del prev_out, linked
    src_row, dst_row = tgt[src], tgt[dst]
    drawn = (src_row >= 0) & (dst_row >= 0) & (src_row != dst_row)
    # what is not drawn, said once (see build)
    orphans = into & ~started
    used = np.zeros(m, bool)
    used[src] = True
    group_end = np.empty(m, np.int64)  # the last endpoint of each one's flow
    ends = np.flatnonzero(np.append(new_key[1:], True))
    group_end[:] = np.repeat(ends, np.diff(np.append(-1, ends)))
    later_out = np.minimum.accumulate(np.where(out & ~into, pos, m)[::-1])[::-1]  # a start
    after = np.append(later_out[1:], m)  # strictly after
    unpaired = {
        "ends": int(orphans.sum()),
        "backwards": int((orphans & (after <= group_end)).sum()),
        "starts": int((out & ~into & ~used).sum()),
        "no_slice": int(((src_row < 0) | (dst_row < 0)).sum()),
        "self": int(((src_row == dst_row) & (src_row >= 0)).sum()),
    }
    del group_start, group_end, later_out, after, used, orphans, new_key, pos, out, into
    return src_row[drawn], dst_row[drawn], cat[src][drawn], unpaired


def flow_warning(unpaired: dict[str, int]) -> str | None:
    """One warning for the flow endpoints that no arrow joins, or None."""
    parts = []
    if unpaired.get("ends"):
        n, back = unpaired["ends"], unpaired.get("backwards", 0)
        part = f"{n:,} flow end{'s' if n != 1 else ''} without a start"
        if back:
            part += (f" ({back:,} of them before a start of their flow id: an arrow back in "
                     "time is not drawn, as in Perfetto and chrome://tracing)")
        parts.append(part)
    if unpaired.get("starts"):
        n = unpaired["starts"]
        parts.append(f"{n:,} flow start{'s' if n != 1 else ''} without an end")
    if unpaired.get("no_slice"):
        n = unpaired["no_slice"]
        parts.append(f"{n:,} flow{'s' if n != 1 else ''} with an end on no slice")
    if unpaired.get("self"):
        n = unpaired["self"]
        parts.append(f"{n:,} flow{'s' if n != 1 else ''} from a slice to itself")
    return "; ".join(parts) + " (not drawn)" if parts else None

#: the longest span a trace's times may cover: int64 ns relative to its start, with room
#: for the sums of drawing (about 146 years)
SPAN_LIMIT_NS = 1 << 62
NS_PER_YEAR = 365.25 * 86400e9


def _within_span(start: np.ndarray, dur: np.ndarray, inst: dict[str, np.ndarray],
                 cs: dict[str, np.ndarray], flows: dict[str, np.ndarray],
                 mem: dict[str, np.ndarray] | None = None) -> tuple[Any, ...]:
    """The times, all within :data:`SPAN_LIMIT_NS` of each other: a stray timestamp
    centuries from the rest (``ts: -9e15`` beside ``9e15`` µs) would wrap int64 when made
    relative to the start. Times beyond the window around the median start are clamped to
    the edges of what lies in it (monotonic: order and nesting kept; the span is that of the
    rest) and counted; otherwise nothing changes
    (and nothing is copied). ``mem``: the memory events' columns, timed as the instants.
    Returns ``(start, dur, inst, cs, flows, mem, clamped)``."""
    mem = mem if mem is not None else {"ts": np.zeros(0, np.int64)}
    if not len(start) and not len(inst["ts"]) and not len(cs["ts"]) and not len(mem["ts"]):
        return start, dur, inst, cs, flows, mem, 0
    lo = min(float(a.min()) for a in (start, inst["ts"], cs["ts"], mem["ts"]) if len(a))
    his = [float(a.max()) for a in (inst["ts"], cs["ts"], mem["ts"]) if len(a)]
    if len(start):  # (an upper bound of the last end: no array made for it)
        his.append(float(start.max()) + max(float(dur.max()), 0.0))
    hi = max(his)
    if hi - lo < SPAN_LIMIT_NS * 0.99 and hi < 2.0 ** 63 * 0.99:
        return start, dur, inst, cs, flows, mem, 0  # every trace but a damaged one
    times = start if len(start) else np.concatenate([inst["ts"], cs["ts"], mem["ts"]])
    mid = int(np.median(times))
    top = (1 << 63) - 1 - (1 << 40)  # (room above, for an end drawn past the last)
    wlo = max(mid - SPAN_LIMIT_NS // 2, -top)
    whi = min(wlo + SPAN_LIMIT_NS, top)
    wlo = whi - SPAN_LIMIT_NS
    # what lies in the window, whole, decides the span; the strays are put at its edges
    inw = (start >= wlo) & (start <= whi)
    whole = inw.copy()
    whole[inw] = dur[inw] <= whi - start[inw]  # (no sum beyond the window's top)
    lows = [int(start[inw].min())] if inw.any() else []
    highs_start = [int(start[inw].max())] if inw.any() else []
    highs = highs_start + ([int((start[whole] + np.maximum(dur[whole], 0)).max())]
                           if whole.any() else [])
    for ts in (inst["ts"], cs["ts"], mem["ts"]):
        ok = ts[(ts >= wlo) & (ts <= whi)]
        if len(ok):
            lows.append(int(ok.min()))
            highs.append(int(ok.max()))
    dlo = min(lows) if lows else wlo
    dhi = max(highs + [dlo]) if highs else whi
    strays = int(len(start) - whole.sum())
    s = np.clip(start, dlo, dhi)
    e = s.copy()
    e[whole] = np.minimum(start[whole] + np.maximum(dur[whole], 0), dhi)
    rest = ~whole
    if rest.any():  # ends as floats: a sum of these may pass int64
        f = np.clip(start[rest].astype(np.float64) + np.maximum(dur[rest], 0), dlo, dhi)
        e[rest] = np.clip(f.astype(np.int64), s[rest], dhi)  # (floats round: exact bounds)
    new = []
    for cols in (inst, cs, flows, mem):
        ts = cols["ts"]
        if len(ts):
            if cols is not flows:
                strays += int(((ts < dlo) | (ts > dhi)).sum())
            cols = {**cols, "ts": np.clip(ts, dlo, dhi)}
        new.append(cols)
    return (s, e - s, *new, strays)
