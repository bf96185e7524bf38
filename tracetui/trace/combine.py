"""Several traces (the ranks of one job) as one :class:`Trace`: lanes grouped by rank, on a
common time origin.

Each rank's lanes keep their order and are named ``rR · …`` (``r3 · GPU 0 · stream 7``);
its GPUs become devices numbered across the job in (rank, device) order (one GPU per
rank: device = the rank), so the per-device analyses give one row per rank's
GPU. Names are re-interned
in one string table, args rows are offset per rank and re-read from the rank's own file.

Time origins (``align``):

- ``"start"``: every rank's trace starts at 0 (its first event);
- ``"clock"``: the times as recorded (ranks on one clock: the gap between their starts kept);
- ``"step"``: every rank's first ``ProfilerStep#N`` starts at the same time;
- any other text: the first slice with that name (an annotation) starts at the same time.

A rank without the step or annotation keeps its start at 0 and is named in a warning.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from .strings import StringTable
from .index import NS_PER_YEAR, SPAN_LIMIT_NS, uniform_as_view
from .model import (CounterTrack, KernelFields, Lane, MemoryEvents, RankBlock, SparseColumn,
                    Trace)

ALIGNS = ("start", "step", "clock")
_STEP = re.compile(r"^ProfilerStep#\d+$")


class RankPieces:
    """Re-reads an event of the combined trace from its rank's own file."""

    def __init__(self, tables: Sequence[Any], row_offsets: Sequence[int]) -> None:
        self.tables = list(tables)
        self.offsets = np.asarray(row_offsets, np.int64)
        self.source = _Sources([t.source for t in self.tables])

    def reread_problem(self) -> str | None:
        return self.source.reread_problem()

    def event(self, row: int) -> Any:
        k = int(np.searchsorted(self.offsets, row, side="right")) - 1
        if k < 0:
            return None
        return self.tables[k].event(row - int(self.offsets[k]))

    def args_many(self, rows: list[int], fields: tuple[str, ...] | None = None
                  ) -> dict[int, Any]:
        """As :meth:`PieceTable.args_many`, each rank's rows from its own file."""
        out: dict[int, Any] = {}
        if not rows:
            return out
        ks = np.searchsorted(self.offsets, np.asarray(rows, np.int64), side="right") - 1
        for k in np.unique(ks).tolist():
            if k < 0:
                continue
            off = int(self.offsets[k])
            mine = [r for r, kk in zip(rows, ks.tolist()) if kk == k]
            got = getattr(self.tables[k], "args_many", None)
            if got is not None:
                for r, a in got([r - off for r in mine], fields).items():
                    out[r + off] = a
        return out

    def costly(self, row: int) -> bool:
        k = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return k >= 0 and bool(self.tables[k].costly(row - int(self.offsets[k])))


class _Sources:
    """Stands for the files of all ranks where one source is asked for."""

    def __init__(self, sources: Sequence[Any]) -> None:
        self.sources = list(sources)

    def reread_problem(self) -> str | None:
        for s in self.sources:
            p = s.reread_problem()
            if p:
                return f"{s.path}: {p}"
        return None


def anchor_ns(trace: Trace, align: str) -> int | None:
    """Where ``align`` puts a rank's origin, in ns from its own start (None: not found)."""
    if align in ("start", "clock"):
        return 0
    names = trace.strings.strings
    if align == "step":
        ids = [i for i, s in enumerate(names) if _STEP.match(s)]
    else:
        ids = [i for i, s in enumerate(names) if s == align]
    if not ids or not trace.slice_count:
        return None
    hit = np.isin(trace.name, np.asarray(ids, trace.name.dtype))
    if not hit.any():
        return None
    return int(trace.start[hit].min())


def rank_cpu(rank: int) -> int:
    """The ``Device Id`` a rank's CPU memory events get in a combined timeline (a CPU's own
    is -1): each rank's process apart, ``CPU r3`` (:func:`rank_of_cpu` reads it back)."""
    return -2 - int(rank)


def rank_of_cpu(device_id: int) -> int | None:
    """The rank of a combined timeline's CPU memory device (None: a trace's own CPU)."""
    return -2 - int(device_id) if device_id <= -2 else None


def combine(ranks: Sequence[tuple[int, Trace]], align: str = "start",
            label: str = "ranks") -> Trace:
    """One trace of ``(rank, trace)`` pairs, lanes in rank order (see the module docstring)."""
    ranks = sorted(ranks, key=lambda rt: rt[0])
    warnings: list[str] = []
    anchors = []
    for r, tr in ranks:
        a = anchor_ns(tr, align)
        if a is None:
            warnings.append(f"rank {r}: no {'ProfilerStep' if align == 'step' else repr(align)}"
                            " to align on: its start is used")
            a = 0
        anchors.append(a)
    if align == "clock":
        t0 = min(tr.t0_abs_ns for _, tr in ranks)
        deltas = [tr.t0_abs_ns - t0 for _, tr in ranks]
        if max((d + tr.end_ns for d, (_, tr) in zip(deltas, ranks)), default=0) > SPAN_LIMIT_NS:
            # clocks centuries apart (a rank's clock unset, a stray epoch): no timeline holds
            # that in int64 ns; each rank's start instead, said
            years = max(deltas) / NS_PER_YEAR
            warnings.append(f"the ranks' clocks are {years:,.0f} years apart, more than a "
                            "timeline holds: each rank's start is used")
            deltas = [0 for _ in ranks]
            align = "start"
    else:
        top = max(anchors)
        deltas = [top - a for a in anchors]

    strings = StringTable()
    devices = sorted({(r, ln.device) for r, tr in ranks for ln in tr.lanes if ln.device >= 0})
    dev_of = {key: k for k, key in enumerate(devices)}
    ranks_of = [r for r, _ in devices]
    if len(set(ranks_of)) == len(ranks_of) and all(r >= 0 for r in ranks_of):
        # one GPU per rank: its number is the rank's (GPU 77 is rank 77, also when only
        # some of the job's ranks are shown - ranks opened on demand)
        dev_of = {key: key[0] for key in devices}
    lanes: list[Lane] = []
    lane_rank: list[int] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "start", "dur", "name", "cat", "depth", "row", "inst_lane", "inst_ts", "inst_name",
        "inst_cat", "inst_row", "flow_src", "flow_dst", "flow_cat")}
    kparts: dict[str, list[np.ndarray]] = {f: [] for f in KernelFields.__dataclass_fields__}
    launch: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    corr: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    ext: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    counters: list[CounterTrack] = []
    mem: dict[str, list[np.ndarray]] = {f: [] for f in MemoryEvents.__dataclass_fields__}
    extra_args: dict[int, dict] = {}
    pieces, row_offsets = [], []
    slice_off = inst_off = row_off = 0
    end_ns = 0
    for (r, tr), delta in zip(ranks, deltas):
        lut = np.array([strings.intern(s) for s in tr.strings.strings], np.int32)
        lane_off = len(lanes)
        for ln in tr.lanes:
            dev = dev_of.get((r, ln.device), -1) if ln.device >= 0 else -1
            lanes.append(Lane(
                index=len(lanes), name=f"r{r} · {ln.name}", kind=ln.kind,
                pid=f"{r}:{ln.pid}", tid=ln.tid, device=dev, stream=ln.stream,
                lo=ln.lo + slice_off, hi=ln.hi + slice_off,
                depth_bounds=np.asarray(ln.depth_bounds, np.int64) + slice_off,
                process=f"r{r} · {ln.process}" if ln.process else f"rank {r}",
                thread=ln.thread, instants=np.asarray(ln.instants, np.int64) + inst_off))
            lane_rank.append(r)
        cols["start"].append(tr.start + delta)
        cols["dur"].append(tr.dur)
        cols["name"].append(lut[tr.name])
        cols["cat"].append(lut[tr.cat])
        cols["depth"].append(tr.depth)
        cols["row"].append(tr.row.astype(np.int64) + row_off)
        cols["inst_lane"].append(np.asarray(tr.inst_lane, np.int64) + lane_off)
        cols["inst_ts"].append(tr.inst_ts + delta)
        cols["inst_name"].append(lut[tr.inst_name])
        cols["inst_cat"].append(lut[tr.inst_cat])
        cols["inst_row"].append(tr.inst_row.astype(np.int64) + row_off)
        cols["flow_src"].append(tr.flow_src.astype(np.int64) + slice_off)
        cols["flow_dst"].append(tr.flow_dst.astype(np.int64) + slice_off)
        cols["flow_cat"].append(lut[tr.flow_cat] if len(tr.flow_cat) else
                                np.zeros(0, np.int32))
        for f in kparts:
            a = getattr(tr.kernels, f)
            kparts[f].append(a.astype(np.int64) + slice_off if f == "slice" else a)
        for (rows, vals), col, shift in ((launch, tr.launch_of, True),
                                         (corr, tr.correlation, False),
                                         (ext, tr.external_id, False)):
            rows.append(col.rows.astype(np.int64) + slice_off)
            vals.append(col.values.astype(np.int64) + (slice_off if shift else 0))
        for c in tr.counters:
            counters.append(CounterTrack(name=f"r{r} · {c.name}", pid=f"{r}:{c.pid}",
                                         series=c.series, ts=c.ts + delta, values=c.values))
        m = tr.memory
        if len(m):  # each rank's devices stay apart: a GPU as the timeline numbers it, the
            # CPU as rank_cpu(r) (one process each)
            did = np.where(m.device_type != 0, m.device_id.astype(np.int64), rank_cpu(r))
            for d in np.unique(did[m.device_type != 0]).tolist():
                did[(m.device_type != 0) & (did == d)] = dev_of.get((r, d), d)
            for f in mem:
                a = getattr(m, f)
                mem[f].append(a + delta if f == "ts" else a.astype(np.int64) + lane_off
                              if f == "lane" else a.astype(np.int64) + row_off if f == "row"
                              else did.astype(np.int32) if f == "device_id" else a)
        for k, v in tr.extra_args.items():
            extra_args[k + row_off] = v
        pieces.append(tr.pieces)
        row_offsets.append(row_off)
        warnings += [f"rank {r}: {w}" for w in tr.warnings]
        end_ns = max(end_ns, tr.end_ns + delta)
        slice_off += tr.slice_count
        inst_off += len(tr.inst_ts)
        row_off += max(int(tr.row.max()) + 1 if tr.slice_count else 0,
                       int(tr.inst_row.max()) + 1 if len(tr.inst_row) else 0,
                       tr.events + 1)

    def cat(parts: list[np.ndarray], dtype: Any = np.int64) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    start = cat(cols["start"])
    first = ranks[0][1] if ranks else None
    memory = MemoryEvents.empty()
    if any(len(x) for x in mem["ts"]):
        whole = {f: np.concatenate(v) for f, v in mem.items()}
        o = np.argsort(whole["ts"], kind="stable")  # (by time; each rank's order kept)
        memory = MemoryEvents(**{f: v[o].astype(getattr(MemoryEvents.empty(), f).dtype)
                                 for f, v in whole.items()})
    phases: dict[str, int] = {}
    for _, tr in ranks:
        for ph, n in tr.phase_counts.items():
            phases[ph] = phases.get(ph, 0) + n
    out = Trace(
        path=label, size=sum(tr.size for _, tr in ranks), compressed=False,
        complete=all(tr.complete for _, tr in ranks),
        truncated=any(tr.truncated for _, tr in ranks), warnings=warnings,
        t0_abs_ns=min(tr.t0_abs_ns + (0 if align == "clock" else -d)
                      for (_, tr), d in zip(ranks, deltas)) if ranks else 0,
        end_ns=end_ns, strings=strings, lanes=lanes,
        lane_bounds=np.array([ln.lo for ln in lanes] + [len(start)], np.int64),
        start=start, dur=cat(cols["dur"]), name=cat(cols["name"], np.int32),
        cat=cat(cols["cat"], np.int32), depth=cat(cols["depth"]), row=cat(cols["row"]),
        inst_lane=cat(cols["inst_lane"]), inst_ts=cat(cols["inst_ts"]),
        inst_name=cat(cols["inst_name"], np.int32), inst_cat=cat(cols["inst_cat"], np.int32),
        inst_row=cat(cols["inst_row"]), counters=counters,
        kernels=KernelFields(**{f: uniform_as_view(np.concatenate(v))
                                for f, v in kparts.items()}),  # (no args: one value, a view)
        launch_of=SparseColumn(cat(launch[0]), cat(launch[1])),
        correlation=SparseColumn(cat(corr[0]), cat(corr[1])),
        external_id=SparseColumn(cat(ext[0]), cat(ext[1])),
        flow_src=cat(cols["flow_src"]), flow_dst=cat(cols["flow_dst"]),
        flow_cat=cat(cols["flow_cat"], np.int32),
        header={"ranks": [r for r, _ in ranks], "align": align,
                "deviceProperties": first.header.get("deviceProperties", []) if first else []},
        events=sum(tr.events for _, tr in ranks), phase_counts=phases,
        bytes_read=sum(tr.bytes_read for _, tr in ranks),
        pieces=RankPieces(pieces, row_offsets), extra_args=extra_args, memory=memory,
        ranks=RankBlock(rank_of_lane=lane_rank,
                        align_warnings=[w for w in warnings if w.endswith("start is used")],
                        rank_devices={k: key for key, k in dev_of.items()}))
    return out
