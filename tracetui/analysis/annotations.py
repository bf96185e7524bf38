"""Per annotation name (DualPipe's ``attn(F)``, ``dispatch(B)``, profiler steps, ...): count, time,
the GPU time of the kernels it launched, and the overlap figures inside its time ranges.

A CPU annotation's kernels are found by launch time within the process, not by thread: the
kernels of DeepSeek's ``attn(B)`` are launched by the autograd thread while the main thread
sits inside ``attn(B)``. So a kernel belongs to an occurrence when the runtime call that
launched it (joined by correlation) starts inside the occurrence, in the same process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..trace import LANE_GPU_ANNOTATION, Trace
from . import intervals as iv
from .overlap import DeviceUnions
from .rules import NOT_GPU

ANNOTATION_CATS = frozenset({"user_annotation", "gpu_user_annotation"})


class _Launches:
    """Kernels by (process of their launch, launch time), with prefix sums of GPU time."""

    def __init__(self, trace: Trace, classes: np.ndarray) -> None:
        kern = trace.launch_of.rows
        keep = classes[kern] != NOT_GPU if len(kern) else np.zeros(0, bool)
        kern, src = kern[keep], trace.launch_of.values[keep]
        self.pid_ids: dict[Any, int] = {}
        lane_pid = np.array([self.pid_ids.setdefault(ln.pid, len(self.pid_ids))
                             for ln in trace.lanes] or [0], np.int64)
        lane_dev = np.array([ln.device for ln in trace.lanes] or [0], np.int64)
        pcode = lane_pid[trace.lane_index(src)]
        t = trace.start[src]
        o = np.lexsort((t, pcode))
        self.pcode, self.t, self.kern = pcode[o], t[o], kern[o]
        self.dev = lane_dev[trace.lane_index(self.kern)]
        self.cum = np.zeros(len(self.kern) + 1, np.int64)
        np.cumsum(trace.dur[self.kern], out=self.cum[1:])

    def devices(self, lo: np.ndarray, hi: np.ndarray) -> set[int]:
        """Devices of the kernels in any of the index ranges [lo, hi)."""
        lo, hi = lo[hi > lo], hi[hi > lo]
        if not len(lo):
            return set()
        a, b = int(lo.min()), int(hi.max())
        n = b - a + 1
        mark = np.bincount(lo - a, minlength=n) - np.bincount(hi - a, minlength=n)
        covered = np.cumsum(mark[:-1]) > 0
        return set(np.unique(self.dev[a:b][covered]).tolist())

    def ranges(self, pid: Any, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index ranges [lo, hi) of the kernels launched in [start, end) by process ``pid``."""
        code = self.pid_ids.get(pid)
        if code is None:
            z = np.zeros(len(starts), np.int64)
            return z, z
        a, b = np.searchsorted(self.pcode, [code, code + 1])
        lo = a + np.searchsorted(self.t[a:b], starts, side="left")
        hi = a + np.searchsorted(self.t[a:b], ends, side="left")
        return lo, hi


def annotation_table(trace: Trace, classes: np.ndarray,
                     unions: list[DeviceUnions]) -> list[dict[str, Any]]:
    strings = trace.strings
    ann_cats = [i for i in np.unique(trace.cat).tolist() if strings[i] in ANNOTATION_CATS]
    if not ann_cats:
        return []
    rows = np.flatnonzero(np.isin(trace.cat, ann_cats))
    lane_idx = trace.lane_index(rows)
    launches = _Launches(trace, classes)
    covers = {du.device: (iv.Cover(du.comm), iv.Cover(du.comp), iv.Cover(du.both))
              for du in unions}
    stream_cover: dict[tuple[int, int], iv.Cover] = {}
    by_stream = {(trace.lanes[i].device, trace.lanes[i].stream): du.streams[i]
                 for du in unions for i in du.streams}

    out = []
    names = trace.name[rows]
    lane_is_gpu = np.array([ln.kind == LANE_GPU_ANNOTATION for ln in trace.lanes] or [False])
    gpu_side = lane_is_gpu[lane_idx]
    for source, mask in (("cpu", ~gpu_side), ("gpu", gpu_side)):
        sel = rows[mask]
        sel_names, sel_lanes = names[mask], lane_idx[mask]
        for name_id in np.unique(sel_names).tolist():
            m = sel_names == name_id
            r = sel[m]
            s, e = trace.start[r], trace.start[r] + trace.dur[r]
            window = iv.union(s, e)
            gpu_ns = 0
            n_kernels = 0
            devices: set[int] = set()
            lanes_m = sel_lanes[m]
            if source == "cpu":
                # per process, the union of the occurrences (threads of one process, nested
                # occurrences): a kernel launched inside two of them is counted once
                by_pid: dict[Any, list[int]] = {}
                for lane in np.unique(lanes_m).tolist():
                    by_pid.setdefault(trace.lanes[lane].pid, []).append(lane)
                for pid, pid_lanes in by_pid.items():
                    pm = np.isin(lanes_m, pid_lanes)
                    ws, we = iv.union(s[pm], e[pm])
                    lo, hi = launches.ranges(pid, ws, we)
                    gpu_ns += int((launches.cum[hi] - launches.cum[lo]).sum())
                    n_kernels += int((hi - lo).sum())
                    devices |= launches.devices(lo, hi)
            else:
                for lane in np.unique(lanes_m).tolist():
                    ln = trace.lanes[lane]
                    devices.add(ln.device)
                    key = (ln.device, ln.stream)
                    if key in by_stream:
                        if key not in stream_cover:
                            stream_cover[key] = iv.Cover(by_stream[key])
                        lm = lanes_m == lane  # this stream's own occurrences only
                        gpu_ns += stream_cover[key].within(iv.union(s[lm], e[lm]))
            comm = comp = both = 0
            for d in sorted(devices):
                if d in covers:
                    c_comm, c_comp, c_both = covers[d]
                    comm += c_comm.within(window)
                    comp += c_comp.within(window)
                    both += c_both.within(window)
            out.append({
                "name": strings[name_id],
                "source": source,
                "count": int(len(r)),
                "total_us": round(int(trace.dur[r].sum()) / 1000, 3),
                "span_us": round(iv.total(window) / 1000, 3),
                "gpu_us": round(gpu_ns / 1000, 3),
                "kernels": n_kernels if source == "cpu" else None,
                "devices": sorted(devices),
                "comm_us": round(comm / 1000, 3),
                "comp_us": round(comp / 1000, 3),
                "overlap_us": round(both / 1000, 3),
                "overlap_pct": round(100 * both / comm, 2) if comm else None,
                "exposed_comm_us": round((comm - both) / 1000, 3),
            })
    out.sort(key=lambda a: (a["source"], -a["total_us"], a["name"]))
    return out
