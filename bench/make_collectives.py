"""Make a directory of rank traces of one synthetic job whose collectives wait for a late rank.

Each rank is a small Kineto-style trace (``distributedInfo``, an H100 in ``deviceProperties``):
per ``ProfilerStep#k`` a few ``aten::mm`` launching GEMM kernels (stream 7), then a collective
(``record_param_comms`` around a ``cudaLaunchKernel`` of an ``ncclDevKernel_*`` on stream 20),
several times a step (all-gathers, reduce-scatters, an all-reduce), and a ``wait`` that
launches nothing. All ranks share one clock (absolute µs near 1.7e15, written exactly to the
ns as integers or 3-decimal numbers). Collective j starts on rank r at ``base_j + jitter``
(a few µs, from ``--seed``); the late rank starts ``--late-us`` later (its computation before
it lasts that much longer); every rank's kernel ends together, ``transfer_j`` (its bytes at
150 GB/s, plus 8 µs) after the last one started. So the shortest kernel is the transfer and
the rest of each rank's kernel is waiting for the late one.

    python bench/make_collectives.py OUTDIR [--ranks 8] [--steps 4] [--late-rank 5]
        [--late-us 300] [--seed 0] [--drop RANK:INDEX]

``--late-rank -1``: no late rank (jitter only). ``--drop 3:6``: rank 3 lacks its 7th
collective (0-based, in its start order), as if its trace had lost it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from typing import Any

#: the clock's origin: µs since the epoch, as Kineto writes them (2024), in ns
T0_NS = 1_712_345_678_000_000 * 1000
#: the bandwidth a collective's bytes move at (decimal, B/s), and its fixed latency (ns)
BANDWIDTH = 150e9
LATENCY_NS = 8_000
#: arrival jitter of a rank at a collective: 0 .. this many ns
JITTER_NS = 20_000
COMPUTE_STREAM, COMM_STREAM = 7, 20
GEMM = ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
        "_execute_segment_k_off_kernel__5x_cublas")
NCCL = {
    "allreduce": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    "_allgather_base": "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
    "_reduce_scatter_base":
        "ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
}
H100 = {"name": "NVIDIA H100 80GB HBM3", "totalGlobalMem": 85029158912, "computeMajor": 9,
        "computeMinor": 0, "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
        "regsPerBlock": 65536, "warpSize": 32, "sharedMemPerBlock": 49152, "numSms": 132,
        "regsPerMultiprocessor": 65536, "sharedMemPerBlockOptin": 232448,
        "sharedMemPerMultiprocessor": 233472}


def _step_plan(n: int) -> list[tuple[str, int, int, int]]:
    """One step's collectives: (Collective name, In msg nelems, Out msg nelems, GEMMs before
    it). FSDP-like: two all-gathers (forward), two reduce-scatters (backward), an all-reduce."""
    m = 1 << 20
    return [("_allgather_base", 2 * m, 2 * m * n, 2),
            ("_allgather_base", 3 * m, 3 * m * n, 3),
            ("_reduce_scatter_base", 3 * m * n, 3 * m, 3),
            ("_reduce_scatter_base", 2 * m * n, 2 * m, 2),
            ("allreduce", 5 * m, 5 * m, 1)]


class _Us:
    """A time or duration in ns, written in µs exactly (``12`` or ``12.345``)."""
    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = int(ns)

    def text(self) -> str:
        sign, ns = ("-", -self.ns) if self.ns < 0 else ("", self.ns)
        whole, frac = divmod(ns, 1000)
        return f"{sign}{whole}" + (f".{frac:03d}".rstrip("0") if frac else "")


_MARK = re.compile(r'"@us(-?\d+)@"')


def _dumps(e: dict[str, Any]) -> str:
    out = {k: (f"@us{v.ns}@" if isinstance(v, _Us) else v) for k, v in e.items()}
    return _MARK.sub(lambda m: _Us(int(m.group(1))).text(), json.dumps(out))


def make_collectives(out_dir: str, ranks: int = 8, steps: int = 4, late_rank: int | None = 5,
                     late_us: float = 300.0, seed: int = 0,
                     drop: tuple[int, int] | None = None,
                     name: str = "rank-{rank}.json") -> list[dict[str, Any]]:
    """Write the ranks' traces; returns per rank {path, bytes, collectives}. ``drop``:
    (rank, index) of a collective left out of that rank's trace."""
    if ranks < 1 or steps < 0:
        raise ValueError("ranks >= 1 and steps >= 0")
    if late_rank is not None and not 0 <= late_rank < ranks:
        late_rank = None
    rng = random.Random(seed)
    plan = _step_plan(ranks)
    late_ns = round(late_us * 1000)
    # the schedule, shared by all ranks: per collective its compute start, arrivals, end
    sched = []
    t = T0_NS + 50_000
    for k in range(steps):
        for cname, nin, nout, gemms in plan:
            compute = rng.randrange(600_000, 1_500_000)
            base = t + compute
            arrive = [base + rng.randrange(0, JITTER_NS + 1) + (late_ns if r == late_rank else 0)
                      for r in range(ranks)]
            nbytes = 2 * max(nin, nout)
            end = max(arrive) + round(nbytes / BANDWIDTH * 1e9) + LATENCY_NS
            fractions = [rng.uniform(0.5, 1.5) for _ in range(gemms)]
            sched.append({"step": k, "name": cname, "in": nin, "out": nout, "start": t,
                          "arrive": arrive, "end": end, "fractions": fractions})
            t = end + 20_000
        t += 100_000  # between steps

    os.makedirs(out_dir, exist_ok=True)
    group = "[" + ", ".join(str(r) for r in range(ranks)) + "]"
    made = []
    for r in range(ranks):
        local = r % 8
        pid, tid = 4000 + r, 4000 + r
        cpu: list[dict[str, Any]] = []
        gpu: list[dict[str, Any]] = []
        ids = {"corr": 100, "ext": 10}

        def nxt(key: str) -> int:
            ids[key] += 1
            return ids[key]

        def op(name: str, ts: int, dur: int, cat: str = "cpu_op", **args: Any) -> dict[str, Any]:
            e = {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": _Us(ts),
                 "dur": _Us(dur), "args": {"External id": nxt("ext"), **args}}
            cpu.append(e)
            return e

        def launch(kname: str, kts: int, kdur: int, stream: int, ext: int,
                   kargs: dict[str, Any] | None = None) -> None:
            corr = nxt("corr")
            lts = kts - 30_000 - (corr % 7) * 1_000
            cpu.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": pid,
                        "tid": tid, "ts": _Us(lts), "dur": _Us(6_123),
                        "args": {"External id": ext, "cbid": 211, "correlation": corr}})
            gpu.append({"ph": "X", "cat": "kernel", "name": kname, "pid": local,
                        "tid": stream, "ts": _Us(kts), "dur": _Us(kdur),
                        "args": {"External id": ext, "queued": 0, "device": local,
                                 "context": 1, "stream": stream, "correlation": corr,
                                 "registers per thread": 168, "shared memory": 213248,
                                 "grid": [132, 1, 1], "block": [384, 1, 1],
                                 **(kargs or {})}})
            # the launch's flow (Kineto's ac2g pair)
            cpu.append({"ph": "s", "id": corr, "pid": pid, "tid": tid, "ts": _Us(lts),
                        "cat": "ac2g", "name": "ac2g"})
            gpu.append({"ph": "f", "id": corr, "pid": local, "tid": stream, "ts": _Us(kts),
                        "cat": "ac2g", "name": "ac2g", "bp": "e"})

        index = 0
        step_first: dict[int, int] = {}
        step_last: dict[int, int] = {}
        for c in sched:
            k = c["step"]
            a = c["arrive"][r]
            # the GEMMs before it fill [start, arrival - 5 µs) on this rank
            span = a - 5_000 - c["start"]
            total = sum(c["fractions"])
            kt = c["start"]
            m_, kk, n_ = 4096, 4096, 1024 * (1 + len(c["fractions"]))
            for f in c["fractions"]:
                kd = int(span * f / total) - 2_000
                lts = kt - 30_000 - ((ids["corr"] + 1) % 7) * 1_000
                mm = op("aten::mm", lts - 3_000, 11_456,
                        **{"Input Dims": [[m_, kk], [kk, n_]],
                           "Input type": ["c10::BFloat16", "c10::BFloat16"],
                           "Input Strides": [[kk, 1], [n_, 1]], "Concrete Inputs": ["", ""]})
                launch(GEMM, kt, kd, COMPUTE_STREAM, mm["args"]["External id"])
                step_first.setdefault(k, lts - 3_000)
                kt += kd + 2_000
            if drop is not None and drop == (r, index):
                index += 1
                continue
            index += 1
            lts = a - 30_000 - ((ids["corr"] + 2) % 7) * 1_000
            comm_args = {"Collective name": c["name"], "In msg nelems": c["in"],
                         "Out msg nelems": c["out"], "Group size": ranks, "dtype": "BFloat16",
                         "In split size": "[]", "Out split size": "[]",
                         "Process Group Name": "0", "Process Group Description": "default_pg",
                         "Process Group Ranks": group}
            rpc = op("record_param_comms", lts - 8_000, 8_000 + 6_123 + 3_000,
                     **{"Record function id": 0, "Rank": r, "Global rank start": 0,
                        "Global rank stride": 1, **comm_args})
            ext = rpc["args"]["External id"]
            # a runtime call that launches nothing (its correlation has no kernel)
            cpu.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamWaitEvent",
                        "pid": pid, "tid": tid, "ts": _Us(lts - 6_000), "dur": _Us(1_784),
                        "args": {"External id": ext, "cbid": 147, "correlation": nxt("corr")}})
            kind = {"allreduce": "all_reduce", "_allgather_base": "all_gather",
                    "_reduce_scatter_base": "reduce_scatter"}[c["name"]]
            op(f"nccl:{kind}", lts - 2_000, 10_000, cat="user_annotation")
            launch(NCCL[c["name"]], a, c["end"] - a, COMM_STREAM, ext, comm_args)
            last = lts + 6_123 + 3_000
            if c["name"] == "allreduce":  # the step's wait: a record_param_comms, no kernel
                op("record_param_comms", last + 2_000, 3_000,
                   **{"Collective name": "wait", "In msg nelems": 0, "Out msg nelems": 0,
                      "Group size": ranks, "dtype": "BFloat16", "Process Group Name": "0",
                      "Process Group Ranks": group})
                last += 5_000
            step_last[k] = last
        for k in sorted(step_first):
            first = step_first[k] - 10_000
            cpu.append({"ph": "X", "cat": "user_annotation", "name": f"ProfilerStep#{k}",
                        "pid": pid, "tid": tid, "ts": _Us(first),
                        "dur": _Us(step_last.get(k, first) + 10_000 - first),
                        "args": {"External id": nxt("ext"), "Record function id": 0}})
        meta = [{"name": "process_name", "ph": "M", "ts": _Us(T0_NS), "pid": pid, "tid": 0,
                 "args": {"name": "python3.11"}},
                {"name": "process_labels", "ph": "M", "ts": _Us(T0_NS), "pid": pid, "tid": 0,
                 "args": {"labels": "CPU"}},
                {"name": "thread_name", "ph": "M", "ts": _Us(T0_NS), "pid": pid, "tid": tid,
                 "args": {"name": f"thread {tid} (pt_main_thread)"}},
                {"name": "process_name", "ph": "M", "ts": _Us(T0_NS), "pid": local, "tid": 0,
                 "args": {"name": "python3.11"}},
                {"name": "process_labels", "ph": "M", "ts": _Us(T0_NS), "pid": local, "tid": 0,
                 "args": {"labels": f"GPU {local}"}}]
        meta += [{"name": "thread_name", "ph": "M", "ts": _Us(T0_NS), "pid": local, "tid": s,
                  "args": {"name": f"stream {s} "}} for s in (COMPUTE_STREAM, COMM_STREAM)]
        cpu.sort(key=lambda e: (e["ts"].ns, -e.get("dur", _Us(0)).ns))
        gpu.sort(key=lambda e: e["ts"].ns)
        head = {"schemaVersion": 1,
                "deviceProperties": [{"id": i, **H100} for i in range(min(ranks, 8))],
                "distributedInfo": {"backend": "nccl", "rank": r, "world_size": ranks,
                                    "pg_count": 1,
                                    "pg_config": [{"pg_name": "0", "pg_desc": "default_pg",
                                                   "backend_config": "cuda:nccl",
                                                   "pg_size": ranks,
                                                   "ranks": list(range(ranks))}],
                                    "nccl_version": "2.21.5"}}
        path = os.path.join(out_dir, name.format(rank=r))
        text = json.dumps(head)[:-1] + ', "traceEvents": [\n' + ",\n".join(
            _dumps(e) for e in cpu + gpu + meta) + '\n], "displayTimeUnit": "ms"}\n'
        with open(path, "w") as f:
            f.write(text)
        made.append({"path": path, "bytes": len(text),
                     "collectives": sum(1 for e in gpu if e["tid"] == COMM_STREAM
                                        and e["ph"] == "X")})
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--late-rank", type=int, default=5, help="-1: none (jitter only)")
    ap.add_argument("--late-us", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop", default=None, metavar="RANK:INDEX",
                    help="leave a rank's INDEX-th collective (0-based) out of its trace")
    args = ap.parse_args(argv)
    drop = None
    if args.drop:
        a, _, b = args.drop.partition(":")
        drop = (int(a), int(b))
    made = make_collectives(args.out_dir, args.ranks, args.steps,
                            None if args.late_rank < 0 else args.late_rank, args.late_us,
                            args.seed, drop)
    print(json.dumps({"dir": args.out_dir, "ranks": len(made),
                      "collectives": [m["collectives"] for m in made],
                      "mb": round(sum(m["bytes"] for m in made) / 1e6, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
