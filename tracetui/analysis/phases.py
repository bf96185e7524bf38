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
and peak. Pure: no textual or rich.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ..trace import Trace
from . import intervals as iv
from .attribution import DeviceComp, LaunchPhases, exposed_of, lane_devices, phase_occurrences
from .attribution import phase_rows  # noqa: F401 - where the phases were always found
from .overlap import device_unions
from .rules import COMM, COMP

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
                 phases: LaunchPhases | None = None) -> list[dict[str, Any]]:
    """One block per (occurrence, device, class) that owns any kernel, in time order.
    ``phases``: who owns each kernel (made here from the phases at ``level`` if not given).
    A communication block's ``exposed_us`` is its kernels' union minus all computation of
    the device (``comp``: made here if not given)."""
    if phases is None:
        phases = LaunchPhases(trace, classes, phase_occurrences(trace, level))
    if not phases:
        return []
    patterns = [re.compile(g) for g in groups]
    if comp is None:
        comp = DeviceComp(trace, device_unions(trace, classes))
    lane_dev = lane_devices(trace)
    sms_of = _sms(trace)
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
                })
    out.sort(key=lambda b: (b["device"], b["class"], b["start_us"], b["name"]))
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
                  min_cols: int = 11) -> list[str]:
    """The diagram as text, ``width`` columns wide: per GPU, a Computation and a
    Communication row of ``[name]`` blocks placed by time under a time line, wrapped into as
    many segments as it takes for a block to get about ``min_cols`` columns."""
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
            rows.append((cls, f"{title} ({sms} SMs)" if sms else title))
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
