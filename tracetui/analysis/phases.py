"""Phases: DeepSeek's overlap diagram from the data. Two rows per GPU — computation and
communication — each a sequence of blocks named by the CPU annotation (``attn(F)``,
``dispatch(B)``, ``mb0:mlp``) whose kernels they are.

An occurrence of an annotation owns the GPU kernels whose launching runtime call (joined by
correlation) starts inside it, in the same process — not only on its own thread: DeepSeek's
``attn(B)`` kernels are launched by the autograd thread while the main thread sits in
``attn(B)`` — unless the launching thread is inside a phase of its own then (see
:class:`.attribution.LaunchPhases`). Per occurrence, device and class, a block spans its kernels (first start to last
end) and says how busy they kept the GPU, how many there were, and the SMs they occupied:
``numSms × min(1, blocks per SM)`` per kernel (from ``deviceProperties``), typical (median)
and peak.

**Phases from the kernel sequence.** Where no repeating annotation owns a device's kernels —
a CUDA graph replay, whose thousands of kernels all come from one ``cudaGraphLaunch`` —
the blocks are made from the kernels themselves (``source`` "kernels"):

- each in-flight span of a split send/receive transfer (:mod:`.inflight`) is a
  communication block on **0 SMs**, named by its kernel (``dispatch``, ``combine``);
- every other run of communication kernels (in start order, no computation kernel between)
  is a communication block named by its dominant kernel;
- the computation kernels between two communication kernels form a computation block,
  named by their dominant kernel family (``attn``, ``experts``, ``gemm``, ``norm``, …: the
  family with the most kernel time);
- micro-batches by alternation, as DeepSeek's figure colours them: the transfers, in the
  order their data arrives (the receive's start), are ``mb0``, ``mb1``, ``mb0``, …; a
  computation block belongs to the other micro-batch than the transfer most in flight over
  it (it is what hides that transfer), else it alternates with the block before.

The send and receive kernels themselves bound the computation blocks; their time is in the
kernel figures. Pure: no textual or rich.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ..trace import Trace
from . import intervals as iv
from .attribution import DeviceComp, LaunchPhases, exposed_of, lane_devices, phase_occurrences
from .attribution import phase_rows  # noqa: F401 - where the phases were always found
from .graphs import Graphs
from .inflight import Spans, family, in_flight_spans
from .overlap import device_unions
from .rules import COMM, COMP, DEFAULT_RULES, in_flight_patterns

#: chunk / micro-batch of a phase name: the first group of the first regex that matches
DEFAULT_GROUPS = (r"\((F|B|W)\)", r"\b(mb\d+|micro_?batch[_ ]?\d+|ubatch\d+)\b")
CLASSES = ((COMP, "comp"), (COMM, "comm"))


def _group(name: str, patterns: Sequence[re.Pattern[str]]) -> str:
    for rx in patterns:
        m = rx.search(name)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return ""


def phase_blocks(trace: Trace, classes: np.ndarray, level: int | None = None,
                 groups: Sequence[str] = DEFAULT_GROUPS, comp: DeviceComp | None = None,
                 phases: LaunchPhases | None = None,
                 spans: Spans | None = None, sequence: bool = True) -> list[dict[str, Any]]:
    """One block per (occurrence, device, class) that owns any kernel, in time order; for a
    device none of whose kernels a phase owns, blocks from its kernel sequence (unless
    ``sequence`` is False: when the phases were asked for at a given depth).
    ``phases``: who owns each kernel (made here from the phases at ``level`` if not given).
    A communication block's ``exposed_us`` is its kernels' union minus all computation of
    the device (``comp``: made here if not given). ``spans``: the in-flight spans (made here
    with the built-in rules if not given)."""
    if phases is None:
        phases = LaunchPhases(trace, classes, phase_occurrences(trace, level))
    patterns = [re.compile(g) for g in groups]
    unions = None
    if comp is None:
        unions = device_unions(trace, classes)
        comp = DeviceComp(trace, unions)
    lane_dev = lane_devices(trace)
    sms_of = _sms(trace)
    out = _annotation_blocks(trace, classes, phases, patterns, comp, lane_dev, sms_of) \
        if phases else []
    if out:  # a block that holds a CUDA graph's kernels holds them by one launch's CPU time
        graph_rows = Graphs(trace).kernel_rows
        for b in out:
            k = b.pop("_rows")
            b["graph_kernels"] = int(np.isin(k, graph_rows).sum()) if len(graph_rows) else 0
    owned = {b["device"] for b in out}
    rest = [d for d in trace.devices if d not in owned] if sequence else []
    if rest:
        if spans is None:
            spans = in_flight_spans(trace, classes, in_flight_patterns(DEFAULT_RULES))
        for device in rest:
            out += _kernel_blocks(trace, classes, device, lane_dev, sms_of, comp, spans)
    out.sort(key=lambda b: (b["device"], b["class"], b["start_us"], b["name"]))
    return out


def _annotation_blocks(trace: Trace, classes: np.ndarray, phases: LaunchPhases,
                       patterns: list[re.Pattern[str]], comp: DeviceComp,
                       lane_dev: np.ndarray, sms_of: Any) -> list[dict[str, Any]]:
    out = []
    for r, kern in phases.owned().items():
        name = trace.name_of(r)
        dev = lane_dev[trace.lane_index(kern)]
        cls = classes[kern]
        for device in np.unique(dev).tolist():
            for code, cname in CLASSES:
                k = kern[(dev == device) & (cls == code)]
                if not len(k):
                    continue
                ks, ke = trace.start[k], trace.start[k] + trace.dur[k]
                sms, weight = sms_of(device, k)
                out.append({
                    "name": name, "group": _group(name, patterns), "class": cname,
                    "device": int(device), "row": int(r), "depth": int(trace.depth[r]),
                    "start_us": round(int(ks.min()) / 1000, 3),
                    "end_us": round(int(ke.max()) / 1000, 3),
                    "busy_us": round(iv.total(iv.union(ks, ke)) / 1000, 3),
                    "kernels": int(len(k)),
                    "sms": _weighted_median(sms, weight),
                    "sms_peak": int(sms.max()) if len(sms) else None,
                    "exposed_us": round(exposed_of(trace, k, comp, int(device)) / 1000, 3)
                    if code == COMM else None,
                    "source": "annotation",
                    "_rows": k,
                })
    return out


#: computation families, first match wins; otherwise the kernel's own function name
FAMILIES = (
    ("attn", re.compile(r"(?i)flash|\bmla\b|_mla|attn|attention|fmha|paged_?attention")),
    ("experts", re.compile(r"(?i)grouped|masked|\bmoe\b|moe_|expert")),
    ("gemm", re.compile(r"(?i)gemm|xmma|cublas|cutlass|matmul|\bmm\b")),
    ("norm", re.compile(r"(?i)norm")),
)


def compute_family(name: str) -> str:
    for fam, rx in FAMILIES:
        if rx.search(name):
            return fam
    return family(name)


def _kernel_blocks(trace: Trace, classes: np.ndarray, device: int, lane_dev: np.ndarray,
                   sms_of: Any, comp: DeviceComp, spans: Spans) -> list[dict[str, Any]]:
    """The blocks of one device from its kernel sequence (see the module's rule). Each step
    is vectorised: the cost grows with the kernels, not with kernels × blocks."""
    work = np.flatnonzero((classes == COMP) | (classes == COMM))
    work = work[lane_dev[trace.lane_index(work)] == device]
    if not len(work):
        return []
    work = work[np.argsort(trace.start[work], kind="stable")]
    is_comm = classes[work] == COMM
    ws, we = trace.start[work], trace.start[work] + trace.dur[work]
    comm_u = iv.union(ws[is_comm], we[is_comm])
    comp_u = iv.union(ws[~is_comm], we[~is_comm])
    sms, dur = sms_of(device, work, keep=True)

    def block(name: str, group: str, cname: str, n: int, start: int, end: int, busy: int,
              sms: int | None, peak: int | None, exposed: int | None) -> dict:
        return {"name": f"{group}:{name}" if group else name, "group": group,
                "class": cname, "device": int(device), "row": -1, "depth": -1,
                "start_us": round(start / 1000, 3), "end_us": round(end / 1000, 3),
                "busy_us": round(busy / 1000, 3), "kernels": int(n), "sms": sms,
                "sms_peak": peak, "exposed_us": None if exposed is None else
                round(exposed / 1000, 3), "source": "kernels", "graph_kernels": None}

    def between(cover: iv.Cover, s: np.ndarray, e: np.ndarray) -> np.ndarray:
        return cover.before(e) - cover.before(s)

    out: list[dict[str, Any]] = []
    # transfers in flight, in the order their data arrives: mb0, mb1, mb0, ...
    mine = spans.of_device(device)
    mine = mine[np.argsort(spans.end[mine], kind="stable")]
    fs, fe = spans.start[mine], spans.end[mine]
    mb = np.arange(len(mine)) % 2
    if len(mine):
        flight = iv.subtract(iv.union(fs, fe), comm_u)
        busy = between(iv.Cover(flight), fs, fe)
        hidden = between(iv.Cover(iv.intersect(flight, comp_u)), fs, fe)
        n = (spans.send[mine] >= 0).astype(np.int64) + (spans.recv[mine] >= 0)
        fam: dict[int, str] = {}
        for i, k in enumerate(mine.tolist()):
            nid = int(spans.name[k])
            if nid not in fam:
                fam[nid] = family(trace.strings[nid])
            out.append(block(fam[nid], f"mb{mb[i]}", "comm", int(n[i]), int(fs[i]),
                             int(fe[i]), int(busy[i]), 0, 0, int(busy[i] - hidden[i])))
    members = np.unique(np.r_[spans.send[mine], spans.recv[mine]])
    other = is_comm & ~np.isin(work, members)
    # runs of one class in start order; a communication run keeps its kernels in no transfer
    run = np.r_[0, np.cumsum(is_comm[1:] != is_comm[:-1])]
    keep = np.flatnonzero(other | ~is_comm)
    if len(keep):
        _, blk = np.unique(run[keep], return_inverse=True)
        first = np.r_[0, np.flatnonzero(np.diff(blk)) + 1]
        nb = len(first)
        b_comm = is_comm[keep][first]
        b_start = ws[keep][first]
        b_end = np.maximum.reduceat(we[keep], first)
        count = np.diff(np.r_[first, len(keep)])
        comp_names, med, peak = _per_block(trace, work[keep], blk, nb, compute_family,
                                           sms[keep], dur[keep])
        comm_names, _, _ = _per_block(trace, work[keep], blk, nb, family, sms[keep],
                                      dur[keep])
        oth = iv.union(ws[other], we[other])
        c_busy = between(iv.Cover(comp_u), b_start, b_end)
        o_busy = between(iv.Cover(oth), b_start, b_end)
        o_hid = between(iv.Cover(iv.intersect(oth, comp_u)), b_start, b_end)
        for i in range(nb):
            m = int(med[i]) if med[i] >= 0 else None
            p = int(peak[i]) if peak[i] >= 0 else None
            if b_comm[i]:
                out.append(block(comm_names[i], "", "comm", int(count[i]), int(b_start[i]),
                                 int(b_end[i]), int(o_busy[i]), m, p,
                                 int(o_busy[i] - o_hid[i])))
            else:
                out.append(block(comp_names[i], "", "comp", int(count[i]), int(b_start[i]),
                                 int(b_end[i]), int(c_busy[i]), m, p, None))
    if len(mine):
        _micro_batches([b for b in out if b["class"] == "comp"], fs, fe, mb)
    return out


def _micro_batches(comp: list[dict[str, Any]], fs: np.ndarray, fe: np.ndarray,
                   mb: np.ndarray) -> None:
    """A computation block hides the transfer most in flight over it, so it is the other
    micro-batch's; one with nothing in flight over it alternates with the block before.
    The transfers over each block are found by a join on start times (the few much longer
    than the rest, such as one still in flight when the trace ends, are checked against
    every block), not by a pass over all transfers per block."""
    if not comp:
        return
    bs = np.array([round(b["start_us"] * 1000) for b in comp], np.int64)
    be = np.array([round(b["end_us"] * 1000) for b in comp], np.int64)
    o = np.argsort(fs, kind="stable")
    fs, fe, mb = fs[o], fe[o], mb[o]
    length = fe - fs
    long_ = length > 16 * max(float(np.median(length)), 1.0)
    best = np.zeros(len(comp), np.int64)
    best_mb = np.full(len(comp), -1, np.int64)
    norm = np.flatnonzero(~long_)
    if len(norm):
        ns, ne, nmb = fs[norm], fe[norm], mb[norm]
        reach = int((ne - ns).max())
        lo = np.searchsorted(ns, bs - reach)
        hi = np.searchsorted(ns, be)
        cnt = np.maximum(hi - lo, 0)
        total = int(cnt.sum())
        if total:
            blk = np.repeat(np.arange(len(comp)), cnt)
            idx = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
            over = np.minimum(ne[idx], be[blk]) - np.maximum(ns[idx], bs[blk])
            oo = np.lexsort((over, blk))
            last = np.r_[blk[oo][1:] != blk[oo][:-1], True]
            b_, k_, ov = blk[oo][last], idx[oo][last], over[oo][last]
            best[b_] = ov
            best_mb[b_] = np.where(ov > 0, nmb[k_], -1)
    for k in np.flatnonzero(long_).tolist():
        over = np.minimum(fe[k], be) - np.maximum(fs[k], bs)
        better = over > best
        best[better] = over[better]
        best_mb[better] = mb[k]
    prev = 1
    for b, m in zip(comp, best_mb.tolist()):
        g = 1 - m if m >= 0 else 1 - prev
        b["group"] = f"mb{g}"
        b["name"] = f"mb{g}:{b['name']}"
        prev = g


def _families(trace: Trace, rows: np.ndarray, fam: Any) -> tuple[np.ndarray, list[str]]:
    """(family id of each row, the families' names): each distinct name is named once."""
    uniq, inv = np.unique(trace.name[rows], return_inverse=True)
    names = [fam(trace.strings[int(i)]) for i in uniq.tolist()]
    fams = sorted(set(names))
    ids = {f: k for k, f in enumerate(fams)}
    return np.array([ids[n] for n in names], np.int64)[inv.reshape(-1)], fams


def _per_block(trace: Trace, rows: np.ndarray, block: np.ndarray, nblocks: int, fam: Any,
               sms: np.ndarray, dur: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per block (``block``: the block of each of ``rows``): its dominant family (the most
    kernel time; on a tie the first name), its time-weighted typical SMs and its peak (-1:
    none known). One sort per question, whatever the number of blocks."""
    fam_id, fams = _families(trace, rows, fam)
    nf = max(len(fams), 1)
    uk, kinv = np.unique(block * nf + fam_id, return_inverse=True)
    tot = np.bincount(kinv.reshape(-1), weights=dur.astype(np.float64), minlength=len(uk))
    kb, kf = uk // nf, uk % nf
    o = np.lexsort((-kf, tot, kb))  # per block, the most time last
    last = np.r_[kb[o][1:] != kb[o][:-1], True]
    dom = np.full(nblocks, -1, np.int64)
    dom[kb[o][last]] = kf[o][last]
    names = [fams[d] if d >= 0 else "" for d in dom.tolist()]
    med = np.full(nblocks, -1, np.int64)
    peak = np.full(nblocks, -1, np.int64)
    known = sms >= 0
    if known.any():
        kb2, ks, kw = block[known], sms[known], np.maximum(dur[known], 1)
        o = np.lexsort((ks, kb2))
        kb2, ks, kw = kb2[o], ks[o], kw[o]
        cum = np.cumsum(kw)
        first = np.flatnonzero(np.r_[True, kb2[1:] != kb2[:-1]])
        lastk = np.r_[first[1:], len(kb2)] - 1
        before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0)
        at = np.searchsorted(cum, before + (cum[lastk] - before) / 2)
        med[kb2[first]] = ks[at]
        peak[kb2[first]] = ks[lastk]
    return names, med, peak


def _sms(trace: Trace):
    """``f(device, kernel rows)``: the SMs each kernel occupies, where the trace says."""
    props = {}
    for p in trace.device_properties:
        if not isinstance(p, dict):
            continue
        dev, n = _whole(p.get("id", len(props))), _whole(p.get("numSms"))
        if dev is not None and n is not None and 0 < n < 2**20:  # else: not told
            props[dev] = n
    kf = trace.kernels

    def f(device: int, rows: np.ndarray, keep: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(SMs, duration) of each kernel of ``rows`` whose SMs are known (``keep``: of
        every row, -1 SMs where they are not known)."""
        n = props.get(device)
        empty = np.zeros(0, np.int64)
        if n is None or not len(kf.slice):
            if keep:
                return np.full(len(rows), -1, np.int64), trace.dur[rows]
            return empty, empty
        k = np.minimum(np.searchsorted(kf.slice, rows.astype(kf.slice.dtype)),
                       len(kf.slice) - 1)  # the key in the column's dtype: no conversion of it
        ok = kf.slice[k] == rows
        bps = kf.blocks_per_sm[k[ok]].astype(np.float64)
        grid = kf.grid[k[ok]].astype(np.int64).prod(axis=1)
        use = np.where(bps > 0, np.minimum(1.0, bps) * n, np.minimum(grid, n))
        if keep:
            out = np.full(len(rows), -1, np.int64)
            out[np.flatnonzero(ok)] = np.where(use > 0, np.rint(use), -1).astype(np.int64)
            return out, trace.dur[rows]
        dur = trace.dur[rows[ok]]
        return np.rint(use[use > 0]).astype(np.int64), dur[use > 0]

    return f


def _whole(v: Any) -> int | None:
    """A whole number as a trace writes one (an int, or an integral float), else None: an
    id of "x", null, [0] or 1e400 says nothing."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if abs(v) < 2**62 else None
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**62:
        return int(v)
    return None


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> int | None:
    """The value under which half the (kernel) time falls: a block's typical SMs are those
    of the kernels that take its time, not of its short helpers."""
    if not len(values):
        return None
    o = np.argsort(values, kind="stable")
    cum = np.cumsum(np.maximum(weights[o], 1))
    return int(values[o][int(np.searchsorted(cum, cum[-1] / 2))])


def row_sms(blocks: Sequence[dict[str, Any]], device: int, cls: str) -> int | None:
    """The SMs of a diagram row: its blocks' typical SMs, weighted by their busy time."""
    mine = [b for b in blocks if b["device"] == device and b["class"] == cls
            and b["sms"] is not None]
    return _weighted_median(np.array([b["sms"] for b in mine], np.int64),
                            np.array([b["busy_us"] * 1000 for b in mine], np.int64))


#: at most this many segments of the text diagram per GPU (the rest is in --json and the app)
MAX_SEGMENTS = 64


def diagram_lines(blocks: Sequence[dict[str, Any]], width: int,
                  min_cols: int | None = None,
                  max_segments: int = MAX_SEGMENTS) -> list[str]:
    """The diagram as text, ``width`` columns wide: per GPU, a Computation and a
    Communication row of ``[name]`` blocks placed by time under a time line, wrapped into as
    many segments as it takes for a block to get about ``min_cols`` columns (default: room
    for a typical name and its brackets, 11 to 18), at most ``max_segments`` of them (a
    line then says how much of the time is left out)."""
    if min_cols is None:
        lengths = sorted(len(b["name"]) for b in blocks) or [9]
        min_cols = max(11, min(18, lengths[len(lengths) // 2] + 4))
    lines: list[str] = []
    label_w = 24
    plot = max(width - label_w, 10)
    for device in sorted({b["device"] for b in blocks}):
        mine = [b for b in blocks if b["device"] == device]
        a = min(b["start_us"] for b in mine)
        z = max(b["end_us"] for b in mine)
        most = max(sum(1 for b in mine if b["class"] == c) for c in ("comp", "comm"))
        segs = max(1, -(-most * min_cols // plot))
        step = max(z - a, 1e-9) / segs
        rows = []
        for cls, title in (("comp", "Computation"), ("comm", "Communication")):
            sms = row_sms(mine, device, cls)
            # by start, with the running latest end: a segment's blocks are found by two
            # binary searches, not by a pass over every block
            row = sorted((b for b in mine if b["class"] == cls), key=lambda b: b["start_us"])
            starts = np.array([b["start_us"] for b in row], np.float64)
            reach = np.maximum.accumulate(np.array([b["end_us"] for b in row], np.float64)) \
                if row else starts
            rows.append((f"{title} ({sms} SMs)" if sms is not None else title, row, starts,
                         reach))
        lines.append(f"GPU {device}")
        for k in range(min(segs, max_segments)):
            s0, s1 = a + k * step, a + (k + 1) * step
            left, right = _ms(s0 - a), _ms(s1 - a)
            lines.append(" " * label_w + left + right.rjust(plot - len(left)))
            for label, row, starts, reach in rows:
                cells = [" "] * plot
                lo = int(np.searchsorted(reach, s0, side="right"))
                hi = int(np.searchsorted(starts, s1, side="left"))
                for b in row[lo:hi]:
                    if b["end_us"] <= s0:
                        continue
                    c0 = max(int((b["start_us"] - s0) / step * plot), 0)
                    c1 = min(max(int(round((b["end_us"] - s0) / step * plot)), c0 + 1), plot)
                    _place(cells, c0, c1, b["name"], b["start_us"] >= s0, b["end_us"] <= s1)
                lines.append(f"{label:<{label_w}}" + "".join(cells).rstrip())
        if segs > max_segments:
            lines.append(f"… {_ms(z - a - max_segments * step)} more (--json has every block; "
                         "in the app, p)")
        lines.append("")
    return lines


def _place(cells: list[str], c0: int, c1: int, name: str, opens: bool, closes: bool) -> None:
    """``[name···]`` over cells [c0, c1); a block cut by the segment's edge has no bracket
    there."""
    n = c1 - c0
    if n <= 0:
        return
    if n == 1:
        cells[c0] = "|"
        return
    head, tail = ("[" if opens else "·"), ("]" if closes else "·")
    body = name[: max(n - 2, 0)].ljust(n - 2, "·")
    cells[c0:c1] = list(head + body + tail)


def _ms(us: float) -> str:
    return f"{us / 1000:.3f} ms"
