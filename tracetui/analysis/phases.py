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


def _dominant(trace: Trace, rows: np.ndarray, fam) -> str:
    names = trace.name[rows]
    totals: dict[str, int] = {}
    for nid in np.unique(names).tolist():
        f = fam(trace.strings[int(nid)])
        totals[f] = totals.get(f, 0) + int(trace.dur[rows[names == nid]].sum())
    return max(sorted(totals), key=lambda f: totals[f])


def _kernel_blocks(trace: Trace, classes: np.ndarray, device: int, lane_dev: np.ndarray,
                   sms_of: Any, comp: DeviceComp, spans: Spans) -> list[dict[str, Any]]:
    """The blocks of one device from its kernel sequence (see the module's rule)."""
    work = np.flatnonzero((classes == COMP) | (classes == COMM))
    work = work[lane_dev[trace.lane_index(work)] == device]
    if not len(work):
        return []
    work = work[np.argsort(trace.start[work], kind="stable")]
    cls = classes[work]
    ws, we = trace.start[work], trace.start[work] + trace.dur[work]
    comm_u = iv.union(ws[cls == COMM], we[cls == COMM])
    out: list[dict[str, Any]] = []

    def block(name: str, group: str, cname: str, k: np.ndarray, start: int, end: int,
              busy: int, sms: int | None, peak: int | None, exposed: int | None) -> dict:
        return {"name": f"{group}:{name}" if group else name, "group": group,
                "class": cname, "device": int(device), "row": -1, "depth": -1,
                "start_us": round(start / 1000, 3), "end_us": round(end / 1000, 3),
                "busy_us": round(busy / 1000, 3), "kernels": int(len(k)), "sms": sms,
                "sms_peak": peak, "exposed_us": None if exposed is None else
                round(exposed / 1000, 3), "source": "kernels"}

    # transfers in flight, in the order their data arrives: mb0, mb1, mb0, ...
    mine = spans.of_device(device)
    mine = mine[np.argsort(spans.end[mine], kind="stable")]
    members = set(spans.send[mine].tolist()) | set(spans.recv[mine].tolist())
    members.discard(-1)
    mbs = [f"mb{i % 2}" for i in range(len(mine))]
    for i, k in enumerate(mine.tolist()):
        s0, e0 = int(spans.start[k]), int(spans.end[k])
        flight = iv.subtract((np.array([s0]), np.array([e0])), comm_u)
        kids = np.array([r for r in (spans.send[k], spans.recv[k]) if r >= 0], np.int64)
        out.append(block(family(trace.strings[int(spans.name[k])]), mbs[i], "comm", kids,
                         s0, e0, iv.total(flight), 0, 0,
                         iv.total(flight) - comp.within(device, flight)))
    # runs of other communication kernels
    is_comm = cls == COMM
    other = is_comm & ~np.isin(work, np.array(sorted(members), np.int64))
    boundary = np.flatnonzero(np.diff(is_comm.astype(np.int8)) != 0) + 1
    for a, b in zip(np.r_[0, boundary].tolist(), np.r_[boundary, len(work)].tolist()):
        seg = work[a:b]
        if is_comm[a]:
            k = seg[other[a:b]]
            if not len(k):
                continue
            s, e = ws[a:b][other[a:b]], we[a:b][other[a:b]]
            u = iv.union(s, e)
            sms, weight = sms_of(device, k)
            out.append(block(_dominant(trace, k, family), "", "comm", k, int(s.min()),
                             int(e.max()), iv.total(u), _weighted_median(sms, weight),
                             int(sms.max()) if len(sms) else None,
                             iv.total(u) - comp.within(device, u)))
            continue
        s, e = ws[a:b], we[a:b]
        sms, weight = sms_of(device, seg)
        out.append(block(_dominant(trace, seg, compute_family), "", "comp", seg, int(s.min()),
                         int(e.max()), iv.total(iv.union(s, e)), _weighted_median(sms, weight),
                         int(sms.max()) if len(sms) else None, None))
    # a computation block hides the transfer most in flight over it: it is the other batch's
    if len(mine):
        prev = ""
        for b in out:
            if b["class"] != "comp":
                continue
            s0, e0 = b["start_us"] * 1000, b["end_us"] * 1000
            over = np.minimum(spans.end[mine], e0) - np.maximum(spans.start[mine], s0)
            if len(over) and over.max() > 0:
                other_mb = mbs[int(np.argmax(over))]
                b["group"] = "mb1" if other_mb == "mb0" else "mb0"
            else:
                b["group"] = "mb1" if prev == "mb0" else "mb0"
            prev = b["group"]
            b["name"] = f"{b['group']}:{b['name']}"
    return out


def _sms(trace: Trace):
    """``f(device, kernel rows)``: the SMs each kernel occupies, where the trace says."""
    props = {}
    for p in trace.device_properties:
        if isinstance(p, dict) and isinstance(p.get("numSms"), (int, float)):
            props[int(p.get("id", len(props)))] = int(p["numSms"])
    kf = trace.kernels

    def f(device: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(SMs, duration) of each kernel of ``rows`` whose SMs are known."""
        n = props.get(device)
        empty = np.zeros(0, np.int64)
        if n is None or not len(kf.slice):
            return empty, empty
        k = np.minimum(np.searchsorted(kf.slice, rows.astype(kf.slice.dtype)),
                       len(kf.slice) - 1)  # the key in the column's dtype: no conversion of it
        ok = kf.slice[k] == rows
        bps = kf.blocks_per_sm[k[ok]].astype(np.float64)
        grid = kf.grid[k[ok]].astype(np.int64).prod(axis=1)
        use = np.where(bps > 0, np.minimum(1.0, bps) * n, np.minimum(grid, n))
        dur = trace.dur[rows[ok]]
        return np.rint(use[use > 0]).astype(np.int64), dur[use > 0]

    return f


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


def diagram_lines(blocks: Sequence[dict[str, Any]], width: int,
                  min_cols: int | None = None) -> list[str]:
    """The diagram as text, ``width`` columns wide: per GPU, a Computation and a
    Communication row of ``[name]`` blocks placed by time under a time line, wrapped into as
    many segments as it takes for a block to get about ``min_cols`` columns (default: room
    for a typical name and its brackets, 11 to 18)."""
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
            rows.append((cls, f"{title} ({sms} SMs)" if sms is not None else title))
        lines.append(f"GPU {device}")
        for k in range(segs):
            s0, s1 = a + k * step, a + (k + 1) * step
            left, right = _ms(s0 - a), _ms(s1 - a)
            lines.append(" " * label_w + left + right.rjust(plot - len(left)))
            for cls, label in rows:
                cells = [" "] * plot
                for b in sorted((b for b in mine if b["class"] == cls and b["end_us"] > s0
                                 and b["start_us"] < s1), key=lambda b: b["start_us"]):
                    c0 = max(int((b["start_us"] - s0) / step * plot), 0)
                    c1 = min(max(int(round((b["end_us"] - s0) / step * plot)), c0 + 1), plot)
                    _place(cells, c0, c1, b["name"], b["start_us"] >= s0, b["end_us"] <= s1)
                lines.append(f"{label:<{label_w}}" + "".join(cells).rstrip())
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
