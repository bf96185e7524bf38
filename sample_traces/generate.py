"""Generate tracetui's synthetic sample traces (stdlib only, deterministic).

    python sample_traces/generate.py [--out DIR] [--seed N]
                                     [--decode-steps N] [--decode-layers N]
                                     [--prefill-steps N] [--prefill-layers N]

With the defaults this rewrites, byte for byte, the committed files next to it:

``decode.json``
    Shaped like the DeepSeek-V3 *decode* profile that DeepSeek published: one GPU
    (an H800, 132 SMs) and the CPU process that drives it. Every layer runs two
    micro-batches: while mb0 computes on the compute stream (7), mb1's all-to-all
    (DeepEP low-latency ``dispatch``/``combine``) runs on the communication stream
    (24), then they swap. The main thread (tid 1166) annotates each phase
    (``mb0:attn``, ``mb0:dispatch``, ``mb0:mlp``, ``mb0:combine``, ``mb1:...``)
    inside ``ProfilerStep#N``; the DeepEP kernels themselves are launched by a
    second thread (tid 2571) while the main thread sits inside the phase.
    Newer Kineto layout: float microseconds with 3 decimals (nanosecond
    precision) relative to ``baseTimeNanoseconds``, one event per line.

``prefill.json.gz``
    Shaped like the DeepSeek-V3 *prefill* profile: two GPUs, one CPU thread per
    GPU, two micro-batches of long compute chunks (ATTN, SHARED, MLP) overlapping
    DeepEP normal-mode all-to-all (``deep_ep::intranode::notify_dispatch``,
    ``dispatch``, ``combine``), and one NCCL all-reduce per GPU on its own stream.
    Older Kineto layout as in DeepSeek's 2025 files: integer microseconds near
    1.7e15, no ``baseTimeNanoseconds``; pretty-printed (one key per line), gzip.

The timeline is simulated, not drawn: CPU threads advance a clock while they
issue ``cudaLaunchKernel``; a kernel starts once it has been launched, its stream
is free and every event it waits on has fired; DeepEP kernels of the two GPUs of
the prefill trace finish together, as an all-to-all does. So launch latencies,
queueing, and how much communication is hidden behind computation all come out
of the schedule, and the overlap lies strictly between 0 and 100%.

Only ``random.Random(seed).random()`` is used (its sequence is guaranteed stable
across Python versions), and gzip gets a fixed mtime, so runs are reproducible.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import random
import re
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------
# Hardware (what Kineto writes in "deviceProperties" for an H800)
# ---------------------------------------------------------------------------

NUM_SMS = 132
MAX_WARPS_PER_SM = 64
SMEM_PER_SM = 233472


def device_properties(count: int = 8) -> list[dict]:
    """Kineto lists every visible device, whether or not it ran anything."""
    return [
        {
            "id": i, "name": "NVIDIA H800", "totalGlobalMem": 84943110144,
            "computeMajor": 9, "computeMinor": 0,
            "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048,
            "regsPerBlock": 65536, "regsPerMultiprocessor": 65536, "warpSize": 32,
            "sharedMemPerBlock": 49152, "sharedMemPerMultiprocessor": SMEM_PER_SM,
            "numSms": NUM_SMS, "sharedMemPerBlockOptin": 232448,
        }
        for i in range(count)
    ]


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------


def _f32(x: float) -> float:
    """Kineto prints these launch statistics as float32 values."""
    return float(f"{x:.8g}")


@dataclass(frozen=True)
class Kernel:
    """A GPU kernel as CUPTI reports it, with its typical duration."""

    name: str
    us: float  # typical duration in microseconds; each launch varies around it
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    regs: int
    smem: int = 0
    api: str = "cudaLaunchKernel"  # or "cuLaunchKernel" (driver API, cat cuda_driver)

    def launch_args(self) -> dict:
        """The launch-configuration part of a kernel event's args."""
        blocks = self.grid[0] * self.grid[1] * self.grid[2]
        threads = self.block[0] * self.block[1] * self.block[2]
        warps_per_block = -(-threads // 32)
        resident = min(
            32,
            2048 // threads,
            65536 // max(1, self.regs * warps_per_block * 32),
            SMEM_PER_SM // self.smem if self.smem else 32,
        )
        warps_per_sm = blocks / NUM_SMS * warps_per_block
        occupancy = min(warps_per_sm, resident * warps_per_block) / MAX_WARPS_PER_SM
        return {
            "registers per thread": self.regs,
            "shared memory": self.smem,
            "blocks per SM": _f32(blocks / NUM_SMS),
            "warps per SM": _f32(warps_per_sm),
            "grid": list(self.grid),
            "block": list(self.block),
            "est. achieved occupancy %": int(occupancy * 100),
        }


@dataclass(frozen=True)
class Op:
    """A PyTorch operator: nested cpu_op names (outermost first) and the kernel
    that the innermost one launches (None for ops that launch nothing)."""

    chain: tuple[str, ...]
    kernel: Kernel | None = None
    shapes: tuple = ()  # "Input Dims", as record_shapes=True writes them
    dtypes: tuple = ()


# --- names shared by both traces --------------------------------------------

GEMM_128 = ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_"
            "warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas")
GEMM_64 = ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_"
           "warpgroupsize1x1x1_execute_segment_k_on_kernel__5x_cublas")
RMS_NORM = ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel"
            "<c10::BFloat16, float, true>(int, float, c10::BFloat16 const*, "
            "c10::BFloat16 const*, c10::BFloat16 const*, float*, float*, c10::BFloat16*)")
ADD_BF16 = ("void at::native::vectorized_elementwise_kernel<4, at::native::"
            "CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3> >(int, "
            "at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>)")
FILL_F32 = ("void at::native::vectorized_elementwise_kernel<4, at::native::"
            "FillFunctor<float>, at::detail::Array<char*, 1> >(int, "
            "at::native::FillFunctor<float>, at::detail::Array<char*, 1>)")
TOPK = ("void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>("
        "at::cuda::detail::TensorInfo<float const, unsigned int>, unsigned int, "
        "unsigned int, bool, unsigned int, unsigned int, at::cuda::detail::TensorInfo"
        "<float, unsigned int>, unsigned int, at::cuda::detail::TensorInfo<long, "
        "unsigned int>, unsigned int)")
ROTARY = "rotary_kernel"
CAST_FP8 = ("void cuda::per_token_cast_to_fp8_with_channels<__nv_bfloat16, 128, "
            "false, 128, false>(__nv_bfloat16 const*, int, unsigned char*, float*, "
            "int, int, int, int, bool, float, __nv_fp8_interpretation_t)")
SWIGLU_FP8 = ("void cuda::swiglu_forward_and_per_token_cast_to_fp8<__nv_bfloat16, "
              "128>(__nv_bfloat16 const*, unsigned char*, float*, int, int, int)")
DEEP_GEMM_ARGS = ("(__nv_bfloat16*, float*, int*, unsigned int, "
                  "CUtensorMap, CUtensorMap, CUtensorMap, CUtensorMap)")


def deep_gemm(n: int, k: int, block_m: int, groups: int, gemm_type: int) -> str:
    """A DeepGEMM JIT kernel; GemmType 0 = normal, 1 = grouped contiguous, 2 = grouped masked."""
    return (f"void deep_gemm::fp8_gemm_kernel<{n}u, {k}u, {block_m}u, 128u, 128u, "
            f"{groups}u, 8u, 1u, (deep_gemm::GemmType){gemm_type}>{DEEP_GEMM_ARGS}")


# DeepEP's layout kernel is local computation although it lives in the DeepEP
# namespace and runs on the communication stream: a classifier must not count it.
GET_DISPATCH_LAYOUT = Kernel(
    "void deep_ep::internode::get_dispatch_layout<256, 32, 8>(long const*, int*, "
    "int*, int*, bool*, int, int, int, int)", 6, (16, 1, 1), (256, 1, 1), 32, 41984)

# ---------------------------------------------------------------------------
# Simulation
# ---------------------------------------------------------------------------

COMPUTE, COMM, COPY, NCCL = 7, 24, 13, 40  # stream numbers

CBID = {  # CUPTI callback ids, as Kineto writes them in args["cbid"]
    "cudaLaunchKernel": 211, "cuLaunchKernel": 307, "cudaMemcpyAsync": 41,
    "cudaMemsetAsync": 51, "cudaEventRecord": 135, "cudaStreamWaitEvent": 147,
    "cudaStreamSynchronize": 131, "cudaDeviceSynchronize": 165, "cudaGraphLaunch": 311,
}


class Rand:
    """Everything random goes through random(), whose sequence Python keeps stable."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)

    def ns(self, lo_us: float, hi_us: float) -> int:
        """A duration between lo and hi microseconds, in nanoseconds."""
        return int(lo_us * 1000 + (hi_us - lo_us) * 1000 * self._r.random())

    def vary(self, us: float, spread: float = 0.15) -> int:
        """A duration of about `us` microseconds (+-spread), in nanoseconds."""
        return max(1, int(us * 1000 * (1 + spread * (2 * self._r.random() - 1))))


class FloatClock:
    """Newer Kineto: float µs with 3 decimals, relative to baseTimeNanoseconds."""

    def __init__(self, origin_ns: int) -> None:
        self.origin_ns = origin_ns

    def ts(self, ns: int) -> float:
        return (self.origin_ns + ns) / 1000

    def dur(self, start: int, end: int) -> float:
        return (end - start) / 1000


class IntClock:
    """DeepSeek's 2025 traces: absolute integer µs (epoch-based, ~1.7e15)."""

    def __init__(self, origin_us: int) -> None:
        self.origin_us = origin_us

    def ts(self, ns: int) -> int:
        return self.origin_us + ns // 1000

    def dur(self, start: int, end: int) -> int:
        # from the rounded ends, so that a child never sticks out of its parent
        return self.ts(end) - self.ts(start)


@dataclass
class GpuOp:
    """A kernel, memcpy or memset, kept in nanoseconds until the trace is built."""

    cat: str
    name: str
    device: int
    stream: int
    start: int
    end: int
    correlation: int
    external_id: int
    args: dict
    launch_tid: int
    launch_ts: int
    chunk: int


class Gpu:
    """One device: per stream, the last operation queued on it."""

    def __init__(self, device: int) -> None:
        self.device = device
        self.tail: dict[int, GpuOp | None] = {}

    def free_at(self, stream: int) -> int:
        op = self.tail.get(stream)
        return op.end if op else 0


class Recorder:
    """Owns the ids and every event of one trace."""

    def __init__(self, seed: int, pid: int, clock, *, first_correlation: int,
                 first_external_id: int, external_id_is_correlation: bool) -> None:
        self.rand = Rand(seed)
        self.pid = pid
        self.clock = clock
        self.chunk = 0  # which CUPTI buffer flush the current activity belongs to
        self._correlation = first_correlation
        self._external_id = first_external_id
        self._ev_idx = 0
        self._python_id = 0
        # DeepSeek's traces carry External id == correlation on runtime calls and
        # kernels; newer Kineto carries the enclosing operator's External id.
        self.external_id_is_correlation = external_id_is_correlation
        self.cpu_events: dict[int, list[dict]] = {}  # tid -> events in end order
        self.python_events: list[dict] = []
        self.runtime_events: list[tuple[int, dict, dict | None]] = []  # (chunk, event, flow)
        self.gpu_ops: list[GpuOp] = []
        self.annotations: list[tuple[int, str, int, int, int]] = []  # tid, name, start, end, ext
        self.counters: list[dict] = []

    def next_correlation(self) -> int:
        self._correlation += 1
        return self._correlation

    def next_external_id(self) -> int:
        self._external_id += 1
        return self._external_id

    def next_ev_idx(self) -> int:
        self._ev_idx += 1
        return self._ev_idx - 1

    def next_python_id(self) -> int:
        self._python_id += 1
        return self._python_id

    def x_event(self, cat: str, name: str, pid, tid, start: int, end: int, args: dict) -> dict:
        return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid,
                "ts": self.clock.ts(start), "dur": self.clock.dur(start, end), "args": args}

    def counter(self, name: str, pid: int, ns: int, values: dict) -> None:
        self.counters.append({"ph": "C", "name": name, "pid": pid, "tid": 0,
                              "ts": self.clock.ts(ns), "args": values})


class CpuThread:
    """A CPU thread of the profiled process, with its own clock (ns)."""

    def __init__(self, rec: Recorder, tid: int, start_ns: int = 0) -> None:
        self.rec = rec
        self.tid = tid
        self.t = start_ns
        self._stack: list[tuple[str, int]] = []  # (cat, External id) of open spans
        self._python_stack: list[int] = []
        rec.cpu_events[tid] = []

    # -- time ----------------------------------------------------------------

    def busy(self, lo_us: float, hi_us: float) -> None:
        self.t += self.rec.rand.ns(lo_us, hi_us)

    def catch_up(self, other: CpuThread, lo_us: float = 2, hi_us: float = 8) -> None:
        """Wait until `other` has got to where we hand over or join."""
        self.t = max(self.t, other.t) + self.rec.rand.ns(lo_us, hi_us)

    # -- CPU slices ------------------------------------------------------------

    @contextmanager
    def span(self, cat: str, name: str, extra: dict | None = None) -> Iterator[int]:
        """A cpu_op or user_annotation; events are stored when they end, as
        the profiler does, so a parent follows its children in the file."""
        rec = self.rec
        start, ext = self.t, rec.next_external_id()
        self._stack.append((cat, ext))
        self.busy(0.3, 2.0)
        yield ext
        self.busy(0.3, 2.0)
        self._stack.pop()
        args = {"External id": ext, "Record function id": 0}
        args.update(extra or {})
        args["Ev Idx"] = rec.next_ev_idx()
        event = rec.x_event(cat, name, rec.pid, self.tid, start, self.t, args)
        rec.cpu_events[self.tid].append(event)
        if cat == "user_annotation":
            rec.annotations.append((self.tid, name, start, self.t, ext))

    @contextmanager
    def python(self, frame: str) -> Iterator[None]:
        """A python_function slice (with_stack=True)."""
        rec = self.rec
        start, pyid = self.t, rec.next_python_id()
        parent = self._python_stack[-1] if self._python_stack else None
        self._python_stack.append(pyid)
        self.busy(1, 4)
        yield
        self.busy(1, 4)
        self._python_stack.pop()
        args = {"Python parent id": parent, "Python id": pyid, "Ev Idx": rec.next_ev_idx()}
        rec.python_events.append(
            rec.x_event("python_function", frame, rec.pid, self.tid, start, self.t, args))

    def instant(self, name: str, args: dict) -> None:
        """A thread-scoped instant, shaped like profile_memory's [memory] events."""
        self.rec.cpu_events[self.tid].append(
            {"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": name, "pid": self.rec.pid,
             "tid": self.tid, "ts": self.rec.clock.ts(self.t), "args": args})

    def op(self, op: Op, gpu: Gpu | None = None, stream: int = COMPUTE) -> GpuOp | None:
        """Run a PyTorch operator: its cpu_op chain, launching its kernel if any."""
        extra = {}
        if op.shapes:
            extra = {"Concrete Inputs": [""] * len(op.shapes), "Input type": list(op.dtypes),
                     "Input Strides": [_strides(s) for s in op.shapes],
                     "Input Dims": [list(s) for s in op.shapes]}
        return self._nested(op, 0, gpu, stream, extra)

    def _nested(self, op: Op, depth: int, gpu, stream, extra: dict) -> GpuOp | None:
        inner = depth == len(op.chain) - 1
        with self.span("cpu_op", op.chain[depth], extra):
            self.busy(1, 4)
            if not inner:
                return self._nested(op, depth + 1, gpu, stream, extra)
            if op.kernel is not None:
                return self.launch(op.kernel, gpu, stream)
        return None

    # -- CUDA runtime --------------------------------------------------------

    def runtime(self, name: str, lo_us: float, hi_us: float) -> tuple[int, int, int, dict]:
        """A cuda_runtime / cuda_driver call at the current time."""
        rec = self.rec
        start, corr = self.t, rec.next_correlation()
        self.t += rec.rand.ns(lo_us, hi_us)
        ext = self._external_id(corr)
        driver_api = name.startswith("cu") and not name.startswith("cuda")
        cat = "cuda_driver" if driver_api else "cuda_runtime"
        event = rec.x_event(cat, name, rec.pid, self.tid, start, self.t,
                            {"External id": ext, "cbid": CBID[name], "correlation": corr})
        rec.runtime_events.append((rec.chunk, event, None))
        self.busy(0.2, 1.0)
        return start, corr, ext, event

    def _external_id(self, correlation: int) -> int:
        if self.rec.external_id_is_correlation:
            return correlation
        for cat, ext in reversed(self._stack):
            if cat == "cpu_op":
                return ext
        return correlation

    def _enqueue(self, gpu: Gpu, stream: int, cat: str, name: str, us: float, api: str,
                 args: dict, spread: float = 0.15) -> GpuOp:
        """Issue one GPU operation through `api` and schedule it on its stream."""
        rec = self.rec
        launch_ts, corr, ext, event = self.runtime(api, 3, 7)
        start = max(launch_ts + rec.rand.ns(3, 9), gpu.free_at(stream) + rec.rand.ns(0.5, 2.5))
        end = start + rec.rand.vary(us, spread)
        gpu_args = {"External id": ext, "queued": 0, "device": gpu.device, "context": 1,
                    "stream": stream, "correlation": corr}
        gpu_args.update(args)
        op = GpuOp(cat, name, gpu.device, stream, start, end, corr, ext, gpu_args,
                   self.tid, launch_ts, rec.chunk)
        gpu.tail[stream] = op
        rec.gpu_ops.append(op)
        flow = {"ph": "s", "id": corr, "pid": rec.pid, "tid": self.tid,
                "ts": event["ts"], "cat": "ac2g", "name": "ac2g"}
        rec.runtime_events[-1] = (rec.chunk, event, flow)
        return op

    def launch(self, kernel: Kernel, gpu: Gpu, stream: int, us: float | None = None,
               spread: float = 0.15, extra_args: dict | None = None) -> GpuOp:
        args = kernel.launch_args()
        args.update(extra_args or {})
        return self._enqueue(gpu, stream, "kernel", kernel.name, us or kernel.us,
                             kernel.api, args, spread)

    def memcpy(self, gpu: Gpu, stream: int, kind: str, nbytes: int, gb_per_s: float) -> GpuOp:
        us = 1.2 + nbytes / gb_per_s / 1000
        op = self._enqueue(gpu, stream, "gpu_memcpy", kind, us, "cudaMemcpyAsync",
                           {"bytes": nbytes}, spread=0.1)
        op.args["memory bandwidth (GB/s)"] = nbytes / (op.end - op.start)
        return op

    def memset(self, gpu: Gpu, stream: int, nbytes: int, us: float) -> GpuOp:
        op = self._enqueue(gpu, stream, "gpu_memset", "Memset (Device)", us, "cudaMemsetAsync",
                           {"bytes": nbytes}, spread=0.3)
        op.args["memory bandwidth (GB/s)"] = nbytes / (op.end - op.start)
        return op

    def record_event(self, gpu: Gpu, stream: int) -> GpuOp | None:
        """cudaEventRecord: the event fires when the last operation queued on
        `stream` so far ends (read later, so a coupled all-to-all can still move)."""
        self.runtime("cudaEventRecord", 1, 3)
        return gpu.tail.get(stream)

    def wait_event(self, gpu: Gpu, stream: int, event: GpuOp | None) -> None:
        """cudaStreamWaitEvent: later work on `stream` starts after `event`."""
        self.runtime("cudaStreamWaitEvent", 1, 3)
        if event is not None and event.end > gpu.free_at(stream):
            marker = GpuOp("", "", gpu.device, stream, event.end, event.end, 0, 0, {}, 0, 0, 0)
            gpu.tail[stream] = marker  # not recorded: only moves the stream's clock

    def synchronize(self, gpu: Gpu, api: str = "cudaStreamSynchronize",
                    streams: tuple[int, ...] = (COMPUTE,)) -> None:
        """Block until the GPU has drained the given streams."""
        rec = self.rec
        start, corr = self.t, rec.next_correlation()
        done = max(gpu.free_at(s) for s in streams)
        self.t = max(self.t + rec.rand.ns(2, 5), done + rec.rand.ns(3, 10))
        event = rec.x_event("cuda_runtime", api, rec.pid, self.tid, start, self.t,
                            {"External id": self._external_id(corr), "cbid": CBID[api],
                             "correlation": corr})
        rec.runtime_events.append((rec.chunk, event, None))
        self.busy(0.5, 2)


def couple(ops: list[GpuOp], us: float, rand: Rand) -> None:
    """An all-to-all finishes on every GPU together, `us` after the last one joined."""
    end = max(op.start for op in ops) + rand.vary(us, 0.2)
    for op in ops:
        op.end = end


def _strides(shape: tuple) -> list:
    strides, acc = [], 1
    for dim in reversed(shape):
        strides.insert(0, acc)
        acc *= dim
    return strides


# ---------------------------------------------------------------------------
# Building the trace object
# ---------------------------------------------------------------------------


def _gpu_annotations(rec: Recorder, same_thread: bool) -> list[dict]:
    """gpu_user_annotation slices: for each CPU user_annotation, the span of the
    GPU work launched while it was open, one slice per (device, stream).

    Kineto ties them by the launching thread; the decode trace maps by launch
    time within the process instead, because its DeepEP kernels are launched by
    another thread while the main thread sits inside the phase annotation."""
    out = []
    for tid, name, start, end, ext in sorted(rec.annotations, key=lambda a: a[2]):
        spans: dict[tuple[int, int], list[int]] = {}
        for op in rec.gpu_ops:
            if start <= op.launch_ts < end and (not same_thread or op.launch_tid == tid):
                lo_hi = spans.setdefault((op.device, op.stream), [op.start, op.end])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], op.start), max(lo_hi[1], op.end)
        for (device, stream), (lo, hi) in sorted(spans.items()):
            out.append(rec.x_event("gpu_user_annotation", name, device, stream, lo, hi,
                                   {"External id": ext}))
    return out


def _metadata(rec: Recorder, ts0: int, devices: list[int], streams: dict[int, list[int]],
              threads: list[tuple[int, str]]) -> list[dict]:
    """ph:M events as Kineto writes them (stream names keep Kineto's trailing space)."""
    ts = rec.clock.ts(ts0)

    def meta(name, pid, tid, args):
        return {"name": name, "ph": "M", "ts": ts, "pid": pid, "tid": tid, "args": args}

    out = [meta("process_name", rec.pid, 0, {"name": "python3"}),
           meta("process_labels", rec.pid, 0, {"labels": "CPU"}),
           meta("process_sort_index", rec.pid, 0, {"sort_index": rec.pid})]
    for d in devices:
        out += [meta("process_name", d, 0, {"name": "python3"}),
                meta("process_labels", d, 0, {"labels": f"GPU {d}"}),
                meta("process_sort_index", d, 0, {"sort_index": 16777216 + d})]
    for d in devices:
        for s in streams[d]:
            out += [meta("thread_name", d, s, {"name": f"stream {s} "}),
                    meta("thread_sort_index", d, s, {"sort_index": s})]
    for tid, label in threads:
        out += [meta("thread_name", rec.pid, tid, {"name": f"thread {tid} ({label})"}),
                meta("thread_sort_index", rec.pid, tid, {"sort_index": tid})]
    return out


def _gpu_event(rec: Recorder, op: GpuOp) -> tuple[dict, dict]:
    event = rec.x_event(op.cat, op.name, op.device, op.stream, op.start, op.end, op.args)
    flow = {"ph": "f", "id": op.correlation, "pid": op.device, "tid": op.stream,
            "ts": event["ts"], "cat": "ac2g", "name": "ac2g", "bp": "e"}
    return event, flow


def _assemble(rec: Recorder, *, thread_order: list[int], same_thread_annotations: bool,
              metadata: list[dict], t0: int, t1: int) -> list[dict]:
    """Order events roughly as Kineto does: CPU operators (per thread, each when
    it ended), Python frames, then per CUPTI flush the runtime calls and the GPU
    activities they caused, GPU annotations, counters, metadata, the trailer."""
    events: list[dict] = []
    for tid in thread_order:
        events += rec.cpu_events[tid]
    events += rec.python_events
    for chunk in sorted({c for c, _, _ in rec.runtime_events} | {o.chunk for o in rec.gpu_ops}):
        for c, event, flow in rec.runtime_events:
            if c == chunk:
                events.append(event)
                if flow:
                    events.append(flow)
        for op in sorted((o for o in rec.gpu_ops if o.chunk == chunk), key=lambda o: o.start):
            events += _gpu_event(rec, op)
    events += _gpu_annotations(rec, same_thread_annotations)
    events += rec.counters
    events += metadata
    ts0, ts1 = rec.clock.ts(t0), rec.clock.ts(t1)
    events += [
        {"ph": "X", "cat": "Trace", "ts": ts0, "dur": rec.clock.dur(t0, t1), "pid": "Spans",
         "tid": "PyTorch Profiler", "name": "PyTorch Profiler (0)", "args": {"Op count": 0}},
        {"name": "process_sort_index", "ph": "M", "ts": ts0, "pid": "Spans", "tid": 0,
         "args": {"sort_index": 536870912}},
        {"name": "Iteration Start: PyTorch Profiler", "ph": "i", "s": "g", "pid": "Traces",
         "tid": "Trace PyTorch Profiler", "ts": ts0},
        {"name": "Record Window End", "ph": "i", "s": "g", "pid": "", "tid": "", "ts": ts1},
    ]
    return events


# ---------------------------------------------------------------------------
# annotated.json: a feature fixture (annotated phases, a second launching thread,
# newer Kineto layout); not modelled on a published profile
# ---------------------------------------------------------------------------

DECODE_TOKENS = 64  # tokens per micro-batch on this GPU
HIDDEN = 7168
BF16 = "c10::BFloat16"


def _linear(kernel: Kernel, n: int, k: int, m: int = DECODE_TOKENS) -> Op:
    return Op(("aten::linear", "aten::matmul", "aten::mm"), kernel,
              ((m, k), (k, n)), (BF16, BF16))


def _rms_norm(us: float, m: int = DECODE_TOKENS, width: int = HIDDEN) -> Op:
    return Op(("aten::rms_norm", "aten::_fused_rms_norm"),
              Kernel(RMS_NORM, us, (m, 1, 1), (512, 1, 1), 30),
              ((m, width), (width,)), (BF16, BF16))


DECODE_ATTN = [
    _rms_norm(3),
    _linear(Kernel(GEMM_128, 11, (17, 1, 1), (384, 1, 1), 168, 231424), 2112, HIDDEN),
    _rms_norm(2, width=1536),
    _linear(Kernel(GEMM_64, 9, (96, 1, 1), (128, 1, 1), 168, 98304), 24576, 1536),
    Op(("flash_attn::apply_rotary",), Kernel(ROTARY, 3, (64, 1, 1), (256, 1, 1), 40)),
    Op(("aten::zeros", "aten::zero_", "aten::fill_"),
       Kernel(FILL_F32, 2, (264, 1, 1), (128, 1, 1), 16), ((DECODE_TOKENS, 128, 512),), ("float",)),
    Op(("flash_attn::fwd_kvcache",), Kernel(
        "void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<576, 64, 64, 4, false, false, "
        "cutlass::bfloat16_t, Flash_kernel_traits<576, 64, 64, 4, cutlass::bfloat16_t> >, false, "
        "false, false, false, true, true, false, false>(Flash_fwd_params)",
        44, (1, 128, 2), (128, 1, 1), 255, 196608)),
    Op(("flash_attn::fwd_kvcache_combine",), Kernel(
        "void flash_fwd_splitkv_combine_kernel<Flash_fwd_kernel_traits<576, 64, 64, 4, false, "
        "false, cutlass::bfloat16_t, Flash_kernel_traits<576, 64, 64, 4, cutlass::bfloat16_t> >, "
        "4, 2, false>(Flash_fwd_params)", 5, (128, 1, 1), (128, 1, 1), 64, 4224)),
    _linear(Kernel(GEMM_128, 14, (56, 1, 1), (384, 1, 1), 168, 231424), HIDDEN, 16384),
    Op(("aten::add_",), Kernel(ADD_BF16, 2, (112, 1, 1), (128, 1, 1), 22),
       ((DECODE_TOKENS, HIDDEN), (DECODE_TOKENS, HIDDEN)), (BF16, BF16)),
    _rms_norm(3),
    _linear(Kernel(GEMM_64, 6, (4, 1, 1), (128, 1, 1), 168, 98304), 256, HIDDEN),
    Op(("aten::topk",), Kernel(TOPK, 8, (64, 1, 1), (1024, 1, 1), 38, 4096),
       ((DECODE_TOKENS, 256),), ("float",)),
]

DECODE_MLP = [
    # shared expert
    Op(("dsv3::per_token_cast_to_fp8",), Kernel(CAST_FP8, 4, (64, 1, 1), (128, 1, 1), 31)),
    Op(("deep_gemm::gemm_fp8_fp8_bf16_nt",), Kernel(
        deep_gemm(4096, HIDDEN, 64, 1, 0), 14, (32, 1, 1), (384, 1, 1), 168, 209920,
        api="cuLaunchKernel")),
    Op(("dsv3::swiglu_and_cast_to_fp8",), Kernel(SWIGLU_FP8, 3, (64, 1, 1), (256, 1, 1), 32)),
    Op(("deep_gemm::gemm_fp8_fp8_bf16_nt",), Kernel(
        deep_gemm(HIDDEN, 2048, 64, 1, 0), 10, (56, 1, 1), (384, 1, 1), 168, 209920,
        api="cuLaunchKernel")),
    # routed experts, on the tokens that dispatch brought in
    Op(("deep_gemm::m_grouped_gemm_fp8_fp8_bf16_nt_masked",), Kernel(
        deep_gemm(4096, HIDDEN, 64, 8, 2), 52, (132, 1, 1), (384, 1, 1), 168, 209920,
        api="cuLaunchKernel")),
    Op(("dsv3::swiglu_and_cast_to_fp8",), Kernel(SWIGLU_FP8, 6, (256, 1, 1), (256, 1, 1), 32)),
    Op(("deep_gemm::m_grouped_gemm_fp8_fp8_bf16_nt_masked",), Kernel(
        deep_gemm(HIDDEN, 2048, 64, 8, 2), 38, (132, 1, 1), (384, 1, 1), 168, 209920,
        api="cuLaunchKernel")),
]

LL_DISPATCH = Kernel(
    "void deep_ep::internode_ll::dispatch<3, 10, 7168>(void*, float*, int*, long*, void*, "
    "int*, void*, void const*, long const*, int*, int*, int*, int, int, int, int, int, int, "
    "int, int)", 150, (NUM_SMS, 1, 1), (960, 1, 1), 64, 0)
LL_COMBINE = Kernel(
    "void deep_ep::internode_ll::combine<3, 10, 7168, 9>(void*, void*, int*, void*, "
    "void const*, long const*, float const*, int const*, long const*, int*, int, int*, int, "
    "int, int, int, int, int, int, int, bool)", 165, (NUM_SMS, 1, 1), (960, 1, 1), 64, 0)

DECODE_TAIL = [
    Op(("aten::cat",), Kernel(
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy_contig<at::native::"
        "(anonymous namespace)::OpaqueType<2u>, unsigned int, 2, 128, 1>(at::native::(anonymous "
        "namespace)::OpaqueType<2u>*, at::native::(anonymous namespace)::CatArrInputTensorMetadata"
        "<at::native::(anonymous namespace)::OpaqueType<2u>, unsigned int, 128, 1>, "
        "at::native::(anonymous namespace)::TensorSizeStride<unsigned int, 4u>, int, unsigned int)",
        4, (224, 1, 1), (512, 1, 1), 32)),
    _rms_norm(4, m=2 * DECODE_TOKENS),
    _linear(Kernel(GEMM_128, 70, (132, 1, 1), (384, 1, 1), 168, 231424), 129280, HIDDEN,
            m=2 * DECODE_TOKENS),
    Op(("aten::argmax",), Kernel(
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::"
        "ArgMaxOps<float>, unsigned int, long, 4> >(at::native::ReduceOp<float, at::native::"
        "ArgMaxOps<float>, unsigned int, long, 4>)", 9, (128, 1, 1), (32, 16, 1), 40, 1040),
       ((2 * DECODE_TOKENS, 129280),), ("float",)),
]

# Program order of one layer on the CPU; each phase waits (on the GPU) for the
# phase before it of the same micro-batch, so mb1's all-to-all hides behind
# mb0's compute and the other way round.
DECODE_LAYER = [("attn", 0), ("dispatch", 0), ("attn", 1), ("dispatch", 1),
                ("mlp", 0), ("combine", 0), ("mlp", 1), ("combine", 1)]
DECODE_WAITS_FOR = {"attn": "combine", "dispatch": "attn", "mlp": "dispatch", "combine": "mlp"}


def generate_annotated(seed: int = 0, steps: int = 6, layers: int = 3) -> dict:
    """The annotated fixture as a Kineto object (ts/dur are float µs)."""
    rec = Recorder(seed, 1166, FloatClock(origin_ns=2_318_406_000),
                   first_correlation=40_000, first_external_id=1_200,
                   external_id_is_correlation=False)
    gpu = Gpu(0)
    main = CpuThread(rec, 1166, start_ns=4_271)
    comm = CpuThread(rec, 2571, start_ns=4_271)
    allocated = 61_204_529_152

    for step in range(steps):
        rec.chunk = step
        with main.span("user_annotation", f"ProfilerStep#{step + 1}"):
            if step == 0:
                _upload_inputs(main, gpu)
            done: dict[tuple[str, int], GpuOp | None] = {}
            for layer in range(layers):
                for phase, mb in DECODE_LAYER:
                    wait = done.get((DECODE_WAITS_FOR[phase], mb))
                    if phase in ("attn", "mlp"):
                        done[(phase, mb)] = _decode_compute(main, gpu, phase, mb, wait)
                    else:
                        done[(phase, mb)] = _decode_all_to_all(main, comm, gpu, phase, mb, wait)
                allocated += 2_097_152 * (1 + layer % 2)
                rec.counter("Memory", 0, main.t, {"Total Allocated": allocated,
                                                  "Total Reserved": 68_719_476_736})
            _sample_tokens(main, gpu, [done[("combine", 0)], done[("combine", 1)]])
            allocated -= 2_097_152 * layers + 1_048_576 * (step % 3)
            rec.counter("Memory", 0, main.t, {"Total Allocated": allocated,
                                              "Total Reserved": 68_719_476_736})
        main.busy(1, 3)
    end = max(main.t, comm.t)

    events = _assemble(
        rec, thread_order=[2571, 1166], same_thread_annotations=False, t0=0, t1=end,
        metadata=_metadata(rec, 0, [0], {0: [COMPUTE, COPY, COMM]},
                           [(2571, "python3"), (1166, "python3"), (2571, "ep_comm_0")]))
    return {
        "schemaVersion": 1,
        "deviceProperties": device_properties(),
        "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 8},
        "traceEvents": events,
        "traceName": "/tmp/profiles/dsv3_decode_ep8_rank0.pt.trace.json",
        "displayTimeUnit": "ms",
        "baseTimeNanoseconds": 1759000000000000000,
    }


def _upload_inputs(main: CpuThread, gpu: Gpu) -> None:
    """First step: clear a workspace and copy token ids and positions in, on a copy stream."""
    with main.span("cpu_op", "aten::zero_"):
        main.memset(gpu, COPY, 4_194_304, 4)
    main.instant("[memory]", {"Total Reserved": 68_719_476_736, "Total Allocated": 61_204_529_152,
                              "Bytes": 4_194_304, "Addr": 140_212_866_187_264,
                              "Device Id": 0, "Device Type": 1})
    for nbytes in (1_024, 2_048):  # int64 ids and positions of 2 x 64 tokens
        with main.span("cpu_op", "aten::to"), main.span("cpu_op", "aten::_to_copy"), \
                main.span("cpu_op", "aten::copy_"):
            main.memcpy(gpu, COPY, "Memcpy HtoD (Pageable -> Device)", nbytes, 0.9)
    main.wait_event(gpu, COMPUTE, main.record_event(gpu, COPY))


def _decode_compute(main: CpuThread, gpu: Gpu, phase: str, mb: int, wait) -> GpuOp | None:
    with main.span("user_annotation", f"mb{mb}:{phase}"):
        if wait is not None:
            main.wait_event(gpu, COMPUTE, wait)
        for op in DECODE_ATTN if phase == "attn" else DECODE_MLP:
            main.op(op, gpu, COMPUTE)
        return main.record_event(gpu, COMPUTE)


def _decode_all_to_all(main: CpuThread, comm: CpuThread, gpu: Gpu, phase: str, mb: int,
                       wait) -> GpuOp | None:
    """The main thread opens the phase and hands the DeepEP call to the comm
    thread, which launches the kernels while the main thread waits inside it."""
    with main.span("user_annotation", f"mb{mb}:{phase}"):
        main.op(Op(("aten::empty",)))
        comm.catch_up(main)
        line = 612 if phase == "dispatch" else 689
        with comm.python(f"deep_ep/buffer.py({line}): low_latency_{phase}"):
            comm.op(Op(("aten::empty",)))
            comm.wait_event(gpu, COMM, wait)
            if phase == "dispatch":
                comm.launch(GET_DISPATCH_LAYOUT, gpu, COMM)
            kernel = LL_DISPATCH if phase == "dispatch" else LL_COMBINE
            comm.launch(kernel, gpu, COMM, spread=0.35)
            done = comm.record_event(gpu, COMM)
        main.catch_up(comm)
        return done


def _sample_tokens(main: CpuThread, gpu: Gpu, combines: list) -> None:
    """After the last layer: merge the micro-batches, LM head, argmax, copy out, sync."""
    with main.python("serve.py(214): sample_next_tokens"):
        for event in combines:
            main.wait_event(gpu, COMPUTE, event)
        for op in DECODE_TAIL:
            main.op(op, gpu, COMPUTE)
        with main.span("cpu_op", "aten::to"), main.span("cpu_op", "aten::_to_copy"), \
                main.span("cpu_op", "aten::copy_"):
            main.memcpy(gpu, COMPUTE, "Memcpy DtoH (Device -> Pageable)", 1_024, 0.5)
            main.synchronize(gpu)


# ---------------------------------------------------------------------------
# decode.json: DeepSeek-V3 decode as DeepSeek published it (EP128, H800): the step
# replayed as one CUDA graph; DeepEP's low-latency all-to-all on the compute stream,
# each transfer a short send kernel, then (after the other micro-batch's computation)
# a receive kernel; the transfer is in flight between them on 0 SMs
# ---------------------------------------------------------------------------

DSV3_STREAM = 7
DPSK_GEMM_ARGS = ("(__nv_bfloat16*, float*, int*, unsigned int, CUtensorMap, CUtensorMap, "
                  "CUtensorMap, CUtensorMap)")


def dpsk_gemm(n: int, k: int, gemm_type: int, groups: int = 1) -> str:
    """DeepSeek's in-house FP8 GEMM (GemmType 0 normal, 2 grouped masked)."""
    return (f"void dpsk::gemm::fp8_gemm_kernel<{n}u, {k}u, 64u, 128u, 128u, {groups}u, 8u, "
            f"128u, (dpsk::gemm::GemmType){gemm_type}>{DPSK_GEMM_ARGS}")


DPSK_RMS = Kernel("void dpsk::rms_norm_kernel<__nv_bfloat16, 7168, 8>(__nv_bfloat16*, "
                  "__nv_bfloat16 const*, __nv_bfloat16 const*, float, int)",
                  3, (64, 1, 1), (896, 1, 1), 40)
DPSK_RMS_Q = Kernel("void dpsk::rms_norm_kernel<__nv_bfloat16, 1536, 8>(__nv_bfloat16*, "
                    "__nv_bfloat16 const*, __nv_bfloat16 const*, float, int)",
                    2, (64, 1, 1), (192, 1, 1), 32)
DPSK_ROPE = Kernel("void dpsk::apply_rotary_emb_kernel<__nv_bfloat16, 64>(__nv_bfloat16*, "
                   "float const*, long const*, int, int)", 2, (64, 1, 1), (256, 1, 1), 36)
FLASH_MLA = Kernel(
    "void flash::flash_fwd_splitkv_mla_kernel<Flash_fwd_kernel_traits_mla<576, 64, 64, 8, "
    "cutlass::bfloat16_t, 512>, true, flash::SharedStorageMLA<Flash_fwd_kernel_traits_mla<576, "
    "64, 64, 8, cutlass::bfloat16_t, 512> > >(Flash_fwd_mla_params)",
    46, (2, 1, 66), (256, 1, 1), 255, 230400)
FLASH_MLA_COMBINE = Kernel(
    "void flash::flash_fwd_splitkv_mla_combine_kernel<cutlass::bfloat16_t, float, 512, 64>"
    "(Flash_fwd_mla_params)", 4, (64, 128, 1), (128, 1, 1), 64, 8448)
DPSK_ADD = Kernel("void dpsk::add_residual_kernel<__nv_bfloat16, 7168>(__nv_bfloat16*, "
                  "__nv_bfloat16 const*, int)", 2, (112, 1, 1), (128, 1, 1), 22)
DPSK_TOPK = Kernel("void dpsk::moe::topk_group_routing_kernel<float, 256, 8, 4>(float const*, "
                   "float const*, int*, float*, int, float)", 4, (64, 1, 1), (256, 1, 1), 40, 8192)
DPSK_CAST = Kernel("void dpsk::per_token_cast_to_fp8<__nv_bfloat16, 128>(__nv_bfloat16 const*, "
                   "unsigned char*, float*, int, int)", 2, (64, 1, 1), (128, 1, 1), 31)
DPSK_SWIGLU = Kernel("void dpsk::swiglu_and_cast_to_fp8<__nv_bfloat16, 128>(__nv_bfloat16 "
                     "const*, unsigned char*, float*, int, int, int)", 3, (256, 1, 1),
                     (256, 1, 1), 32)


def _gemm(n: int, k: int, us: float, gemm_type: int = 0, groups: int = 1) -> Kernel:
    return Kernel(dpsk_gemm(n, k, gemm_type, groups), us, (NUM_SMS, 1, 1), (384, 1, 1), 168,
                  229376)


DSV3_ATTN = [DPSK_RMS, _gemm(2112, HIDDEN, 7), DPSK_RMS_Q, _gemm(24576, 1536, 7), DPSK_ROPE,
             FLASH_MLA, FLASH_MLA_COMBINE, _gemm(HIDDEN, 16384, 9), DPSK_ADD, DPSK_RMS,
             _gemm(256, HIDDEN, 3), DPSK_TOPK]
DSV3_SHARED = [DPSK_CAST, _gemm(4096, HIDDEN, 6), DPSK_SWIGLU, _gemm(HIDDEN, 2048, 5)]
MASKED_GEMM = Kernel(
    "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::m_grouped_fp8_masked::GemmKernel>"
    "(dpsk::grouped_gemm::cuda::m_grouped_fp8_masked::GemmKernel::Params)",
    34, (NUM_SMS, 1, 1), (384, 1, 1), 168, 229376)
DSV3_EXPERTS = [MASKED_GEMM, DPSK_SWIGLU, dataclasses.replace(MASKED_GEMM, us=26)]
DSV3_DENSE_MLP = [DPSK_CAST, _gemm(36864, HIDDEN, 22), DPSK_SWIGLU, _gemm(HIDDEN, 18432, 18)]

DISPATCH_LL = Kernel(
    "void dpsk::ep::internode::dispatch_ll<true, 3, 10, 7168>(void*, float*, int*, long*, "
    "void*, int*, void*, void const*, long const*, int*, int*, int*, int, int, int, int, int, "
    "int, int, int, int)", 18, (86, 1, 1), (960, 1, 1), 64)
COMBINE_LL = Kernel(
    "void dpsk::ep::internode::combine_ll<3, 10, 7168, 9>(void*, void*, int*, void*, "
    "void const*, long const*, float const*, int const*, long const*, int*, int, int*, int, "
    "int, int, int, int, int, int, int, bool, int)", 18, (86, 1, 1), (960, 1, 1), 64)

# Eager work around the graph: preparing the inputs, then logits and sampling.
DSV3_PREPARE = [
    Op(("aten::index_select",), Kernel(
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::BFloat16, long, "
        "unsigned int, 2, 2, -2, true>(at::cuda::detail::TensorInfo<c10::BFloat16, unsigned "
        "int>, at::cuda::detail::TensorInfo<c10::BFloat16 const, unsigned int>, at::cuda::detail"
        "::TensorInfo<long const, unsigned int>, int, int, unsigned int, unsigned int, long)",
        3, (112, 1, 1), (128, 1, 1), 32)),
    Op(("aten::fill_",), Kernel(FILL_F32, 2, (64, 1, 1), (128, 1, 1), 16)),
    Op(("aten::add",), Kernel(ADD_BF16, 2, (2, 1, 1), (128, 1, 1), 22)),
]
DSV3_SAMPLE = [
    Op(("aten::rms_norm",), DPSK_RMS),
    _linear(Kernel(GEMM_128, 38, (NUM_SMS, 1, 1), (384, 1, 1), 168, 231424), 129280, HIDDEN,
            m=2 * DECODE_TOKENS),
    Op(("aten::div_",), Kernel(
        "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float, "
        "float, float, at::native::binary_internal::DivFunctor<float> >, at::detail::Array<"
        "char*, 3> >(int, at::native::BinaryFunctor<float, float, float, at::native::"
        "binary_internal::DivFunctor<float> >, at::detail::Array<char*, 3>)",
        4, (NUM_SMS, 1, 1), (128, 1, 1), 22)),
    Op(("aten::softmax", "aten::_softmax"), Kernel(
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, "
        "at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
        6, (128, 1, 1), (1024, 1, 1), 38)),
    Op(("aten::argmax",), Kernel(
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::"
        "ArgMaxOps<float>, unsigned int, long, 4> >(at::native::ReduceOp<float, at::native::"
        "ArgMaxOps<float>, unsigned int, long, 4>)", 9, (128, 1, 1), (32, 16, 1), 40, 1040)),
]
LL_SEND_US, LL_UNPACK_US = 18, 62
LL_TRANSFER_US = {"dispatch": 118, "combine": 140}  # send end -> data complete at the receiver


class GraphReplay:
    """The kernels of one replay of the decode CUDA graph, queued on one stream as the
    graph's dependencies allow: one after another, a microsecond or two apart."""

    def __init__(self, rec: Recorder, gpu: Gpu, launch: tuple[int, int, int, dict],
                 tid: int) -> None:
        self.rec, self.gpu, self.tid = rec, gpu, tid
        self.launch_ts, self.corr, self.ext, _ = launch
        self.arrival: dict[tuple[str, int], int] = {}  # (kind, mb) -> data complete
        self.started = False

    def _run(self, kernel: Kernel, dur_ns: int) -> GpuOp:
        rec, gpu = self.rec, self.gpu
        start = gpu.free_at(DSV3_STREAM) + rec.rand.ns(0.6, 1.6)
        if not self.started:  # the graph starts once launched and the stream is free
            start = max(start, self.launch_ts + rec.rand.ns(6, 11))
            self.started = True
        args = {"External id": self.ext, "queued": 0, "device": gpu.device, "context": 1,
                "stream": DSV3_STREAM, "correlation": self.corr, **kernel.launch_args()}
        op = GpuOp("kernel", kernel.name, gpu.device, DSV3_STREAM, start, start + dur_ns,
                   self.corr, self.ext, args, self.tid, self.launch_ts, rec.chunk)
        gpu.tail[DSV3_STREAM] = op
        rec.gpu_ops.append(op)
        return op

    def compute(self, kernels: list[Kernel]) -> None:
        for k in kernels:
            self._run(k, self.rec.rand.vary(k.us))

    def send(self, kind: str, mb: int) -> None:
        op = self._run(DISPATCH_LL if kind == "dispatch" else COMBINE_LL,
                       self.rec.rand.vary(LL_SEND_US, 0.06))
        self.arrival[(kind, mb)] = op.end + self.rec.rand.vary(LL_TRANSFER_US[kind], 0.3)

    def receive(self, kind: str, mb: int) -> None:
        """Waits for the data (if it is not there yet), then unpacks it."""
        rec = self.rec
        unpack = rec.rand.vary(LL_UNPACK_US, 0.08)
        arrived = self.arrival.pop((kind, mb), 0)
        free = self.gpu.free_at(DSV3_STREAM)
        dur = max(unpack, arrived - free + rec.rand.vary(24, 0.2))  # ~1 µs less: the gap
        self._run(DISPATCH_LL if kind == "dispatch" else COMBINE_LL, dur)


def _dsv3_graph(g: GraphReplay, layers: int, dense: int) -> None:
    """One decode step. Per MoE layer, on the one stream (the two micro-batches take turns,
    so each transfer is in flight while the other micro-batch computes):
    ATTN0 [combine1 recv] dispatch0 send · ATTN1 · dispatch0 recv, dispatch1 send ·
    SHARED0 EXPERTS0 · combine0 send · dispatch1 recv · SHARED1 EXPERTS1 · combine1 send ·
    combine0 recv. The previous layer's combine1 is received after the next ATTN0."""
    for layer in range(layers):
        if layer < dense:
            for _mb in (0, 1):
                g.compute(DSV3_ATTN)
                g.compute(DSV3_DENSE_MLP)
            continue
        g.compute(DSV3_ATTN)
        if layer > dense:
            g.receive("combine", 1)
        g.send("dispatch", 0)
        g.compute(DSV3_ATTN)
        g.receive("dispatch", 0)
        g.send("dispatch", 1)
        g.compute(DSV3_SHARED)
        g.compute(DSV3_EXPERTS)
        g.send("combine", 0)
        g.receive("dispatch", 1)
        g.compute(DSV3_SHARED)
        g.compute(DSV3_EXPERTS)
        g.send("combine", 1)
        g.receive("combine", 0)
    if layers > dense:
        g.receive("combine", 1)


#: The Python frames above SGLang's scheduler when a server is profiled with_stack=True, outermost
#: first (a real profile has 30-40 of them): repeated to make ``stack_depth`` levels.
SGLANG_STACK = (
    "<string>(1): <module>", "multiprocessing/spawn.py(122): spawn_main",
    "multiprocessing/spawn.py(135): _main", "multiprocessing/process.py(314): _bootstrap",
    "multiprocessing/process.py(108): run",
    "sglang/srt/managers/scheduler.py(2431): run_scheduler_process",
    "sglang/srt/managers/scheduler.py(679): event_loop_overlap",
    "torch/utils/_contextlib.py(116): decorate_context",
    "sglang/srt/managers/scheduler.py(1452): process_batch",
    "sglang/srt/managers/tp_worker_overlap_thread.py(167): forward_thread_func_",
    "torch/utils/_contextlib.py(116): decorate_context",
    "sglang/srt/managers/tp_worker.py(209): forward_batch_generation",
    "sglang/srt/model_executor/model_runner.py(1267): forward",
    "sglang/srt/model_executor/model_runner.py(1221): _forward_raw",
    "sglang/srt/model_executor/cuda_graph_runner.py(640): replay",
    "sglang/srt/model_executor/cuda_graph_runner.py(612): replay_prepare",
)


def generate_decode(seed: int = 0, steps: int = 2, layers: int = 16, dense: int = 1,
                    stack_depth: int = 0) -> dict:
    """The decode trace as a Kineto object (integer µs). ``steps`` decode steps are
    simulated; the profile window opens during the first one's last MoE layer, while a
    dispatch and a combine are in flight, so their sends are not in the file, nor is the
    first replay's ``cudaGraphLaunch``; the window closes after the last step's sampling."""
    rec = Recorder(seed + 2, 3380, IntClock(origin_us=1_742_512_308_204_117),
                   first_correlation=6_950, first_external_id=6_950,
                   external_id_is_correlation=True)
    gpu = Gpu(0)
    main = CpuThread(rec, 3380, start_ns=2_000)
    window_open = None
    for step in range(steps):
        rec.chunk = step
        outer = ExitStack()  # with stack_depth: that many frames above the scheduler's
        for k in range(stack_depth):
            outer.enter_context(main.python(SGLANG_STACK[k % len(SGLANG_STACK)]))
        with outer, main.python("sglang/srt/managers/scheduler.py(742): run_batch"):
            with main.python("sglang/srt/model_executor/model_runner.py(1190): forward_decode"):
                for op in DSV3_PREPARE:
                    main.op(op, gpu, DSV3_STREAM)
                with main.python("torch/cuda/graphs.py(104): replay"):
                    launch = main.runtime("cudaGraphLaunch", 9, 16)
                    ts, corr, ext, event = launch
                    rec.runtime_events[-1] = (rec.chunk, event, {
                        "ph": "s", "id": corr, "pid": rec.pid, "tid": main.tid,
                        "ts": event["ts"], "cat": "ac2g", "name": "ac2g"})
                    replay = GraphReplay(rec, gpu, launch, main.tid)
                    n0 = len(rec.gpu_ops)
                    _dsv3_graph(replay, layers, dense)
                    if step == 0:
                        window_open = _mid_transfer(rec.gpu_ops[n0:])
            with main.python("sglang/srt/layers/sampler.py(61): forward"):
                for op in DSV3_SAMPLE:
                    main.op(op, gpu, DSV3_STREAM)
                with main.span("cpu_op", "aten::item"), \
                        main.span("cpu_op", "aten::_local_scalar_dense"):
                    main.memcpy(gpu, DSV3_STREAM, "Memcpy DtoH (Device -> Pageable)", 1_024, 0.5)
                    main.synchronize(gpu, streams=(DSV3_STREAM,))
        main.busy(20, 40)
    end = main.t
    _open_window(rec, window_open)
    events = _assemble(
        rec, thread_order=[3380], same_thread_annotations=True, t0=window_open, t1=end,
        metadata=_metadata(rec, window_open, [0], {0: [DSV3_STREAM]}, [(3380, "python3")]))
    return {
        "schemaVersion": 1,
        "deviceProperties": device_properties(),
        "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 128},
        "traceEvents": events,
        "traceName": "traces/prof_decode_ep128_tp1_hidden7168_bs64_rank0.json",
    }


def _mid_transfer(ops: list[GpuOp]) -> int:
    """A moment in the last MoE layer while mb1's dispatch is in flight: halfway through
    mb0's shared expert and experts, between mb1's dispatch send and mb0's combine send."""
    names = [op.name for op in ops]
    # the layer ends: combine0 send, dispatch1 recv, ..., combine1 send, combine0 recv, and
    # (the graph's last kernel) combine1 recv
    c0_send = [i for i, n in enumerate(names) if n == COMBINE_LL.name][-4]
    d1_send = max(i for i in range(c0_send) if names[i] == DISPATCH_LL.name)
    return ops[d1_send].end + (ops[c0_send].start - ops[d1_send].end) // 2


def _open_window(rec: Recorder, t: int) -> None:
    """What the profiler records when it starts at ``t``: nothing that began before."""
    ts = rec.clock.ts(t)
    for tid, evs in rec.cpu_events.items():
        rec.cpu_events[tid] = [e for e in evs if e["ts"] >= ts]
    rec.python_events = [e for e in rec.python_events if e["ts"] >= ts]
    rec.runtime_events = [x for x in rec.runtime_events if x[1]["ts"] >= ts]
    rec.gpu_ops = [op for op in rec.gpu_ops if op.start >= t]


def dumps_decode(trace: dict) -> str:
    """What ``json.dump`` writes with its default settings: the whole file on one line."""
    return json.dumps(trace)


# ---------------------------------------------------------------------------
# prefill.json.gz: two GPUs, DeepEP normal-mode all-to-all, NCCL all-reduce
# ---------------------------------------------------------------------------

PREFILL_TOKENS = 4096  # per micro-batch
DEEPEP_SMS = 24  # DeepEP's normal-mode kernels run on 24 SMs ...
PREFILL_SMS = NUM_SMS - DEEPEP_SMS  # ... and the GEMMs and attention on the other 108
P_DEEPEP, P_NCCL = 16, 13  # streams of the prefill profile (compute is 7)


def _plinear(kernel: Kernel, n: int, k: int) -> Op:
    return _linear(kernel, n, k, m=PREFILL_TOKENS)


PREFILL_ATTN = [
    _rms_norm(38, m=PREFILL_TOKENS),
    _plinear(Kernel(GEMM_128, 240, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 231424), 2112, HIDDEN),
    _rms_norm(14, m=PREFILL_TOKENS, width=1536),
    _plinear(Kernel(GEMM_128, 310, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 231424), 24576, 1536),
    Op(("flash_attn::apply_rotary",), Kernel(ROTARY, 36, (4096, 1, 1), (256, 1, 1), 40)),
    Op(("flash_attn::_flash_attn_forward",), Kernel(
        "void flash::compute_attn_ws<Flash_fwd_kernel_traits<192, 128, 128, 12, 2, false, 1, "
        "cutlass::bfloat16_t, 128>, true, flash::SingleTileScheduler, flash::SeqLenTraits<false> >"
        "(flash::CollectiveMainloopFwd<Flash_fwd_kernel_traits<192, 128, 128, 12, 2, false, 1, "
        "cutlass::bfloat16_t, 128>, true, flash::SeqLenTraits<false> >::Params, "
        "flash::CollectiveEpilogueFwd<Flash_fwd_kernel_traits<192, 128, 128, 12, 2, false, 1, "
        "cutlass::bfloat16_t, 128>, flash::SeqLenTraits<false> >::Params, "
        "flash::SingleTileScheduler::Params, flash::SeqLenTraits<false>, "
        "flash::SeqLenTraits<false>)",
        880, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 213088)),
    _plinear(Kernel(GEMM_128, 360, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 231424), HIDDEN, 16384),
    Op(("aten::add_",), Kernel(ADD_BF16, 38, (7168, 1, 1), (128, 1, 1), 22)),
    _rms_norm(38, m=PREFILL_TOKENS),
    _plinear(Kernel(GEMM_64, 55, (PREFILL_SMS, 1, 1), (128, 1, 1), 168, 98304), 256, HIDDEN),
    Op(("aten::topk",), Kernel(TOPK, 42, (4096, 1, 1), (1024, 1, 1), 38, 4096)),
]

PREFILL_SHARED = [
    Op(("dsv3::per_token_cast_to_fp8",), Kernel(CAST_FP8, 30, (4096, 1, 1), (128, 1, 1), 31)),
    Op(("deep_gemm::gemm_fp8_fp8_bf16_nt",), Kernel(
        deep_gemm(4096, HIDDEN, 128, 1, 0), 330, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 229376,
        api="cuLaunchKernel")),
    Op(("dsv3::swiglu_and_cast_to_fp8",), Kernel(SWIGLU_FP8, 58, (4096, 1, 1), (256, 1, 1), 32)),
    Op(("deep_gemm::gemm_fp8_fp8_bf16_nt",), Kernel(
        deep_gemm(HIDDEN, 2048, 128, 1, 0), 190, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 229376,
        api="cuLaunchKernel")),
]

PREFILL_MLP = [
    Op(("deep_gemm::m_grouped_gemm_fp8_fp8_bf16_nt_contiguous",), Kernel(
        deep_gemm(4096, HIDDEN, 128, 8, 1), 1050, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 229376,
        api="cuLaunchKernel")),
    Op(("dsv3::swiglu_and_cast_to_fp8",), Kernel(SWIGLU_FP8, 115, (8192, 1, 1), (256, 1, 1), 32)),
    Op(("deep_gemm::m_grouped_gemm_fp8_fp8_bf16_nt_contiguous",), Kernel(
        deep_gemm(HIDDEN, 2048, 128, 8, 1), 580, (PREFILL_SMS, 1, 1), (384, 1, 1), 168, 229376,
        api="cuLaunchKernel")),
]

NORMAL_NOTIFY = Kernel(
    "void dpsk::ep::internode::notify_dispatch<false, 8>(int const*, long*, int, int const*, "
    "int*, int const*, int*, int, bool const*, int, int, int, int, int, int, void*, int, void**, "
    "int, int**, int, int, bool)", 35, (9, 1, 1), (128, 1, 1), 40)
NORMAL_DISPATCH = Kernel(
    "void dpsk::ep::internode::dispatch<false, 8, true, 8>(int4*, float*, long*, float*, "
    "dpsk::ep::internode::SourceMeta*, int4 const*, float const*, long const*, float const*, "
    "int*, int*, int*, int*, int const*, int const*, int const*, int const*, int, int, int, int, "
    "int, int, void*, int, int, void**, int, int, int)",
    0, (DEEPEP_SMS, 1, 1), (768, 1, 1), 96, 65536)
NORMAL_COMBINE = Kernel(
    "void dpsk::ep::internode::combine<false, 8, __nv_bfloat16, 8, 2, 16, 24>(int4*, float*, "
    "bool const*, int4 const*, float const*, int4 const*, int4 const*, int const*, int const*, "
    "dpsk::ep::internode::SourceMeta const*, int const*, int const*, int const*, int, int, int, "
    "void*, int, int, void**, int, int, int)", 0, (DEEPEP_SMS, 1, 1), (768, 1, 1), 80, 32768)
CACHED_NOTIFY_COMBINE = Kernel(
    "void dpsk::ep::internode::cached_notify<false>(int, int, int, int, int*, int, int, "
    "int const*, int const*, int*, void*, void**, int**, int, int, int, int*, bool)",
    12, (20, 1, 1), (128, 1, 1), 32)
# CUB, built inside DeepEP's namespace (CUB_WRAPPED_NAMESPACE): prefix sums of the routing
# counts. Computation, although a substring match on "dpsk::ep::" catches them.
_CUB = "cdpsk::ep::CUB_200200_900_NS"
CUB_SCAN_INIT = Kernel(
    f"void {_CUB}::DeviceScanInitKernel<{_CUB}::ScanTileState<int, true> >({_CUB}::"
    f"ScanTileState<int, true>, int)", 2, (1, 1, 1), (128, 1, 1), 16)
CUB_SCAN = Kernel(
    f"void {_CUB}::DeviceScanKernel<{_CUB}::DeviceScanPolicy<int, cuda::std::plus<int> >::"
    f"Policy900, int const*, int*, {_CUB}::ScanTileState<int, true>, cuda::std::plus<int>, "
    f"{_CUB}::NullType, int, int>(int const*, int*, {_CUB}::ScanTileState<int, true>, int, "
    f"cuda::std::plus<int>, {_CUB}::NullType, int)", 4, (2, 1, 1), (128, 1, 1), 40, 8192)
NCCL_ALL_REDUCE = Kernel(
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
    0, (2, 1, 1), (640, 1, 1), 96, 87568)

# The all-to-all times of both GPUs, from the moment the later of the two joins.
PREFILL_TRANSFER_US = {"DISPATCH": 1150, "COMBINE": 1500, "ALL_REDUCE": 240}

PREFILL_LAYER = [("ATTN", 0), ("DISPATCH", 0), ("ATTN", 1), ("DISPATCH", 1),
                 ("SHARED", 0), ("MLP", 0), ("COMBINE", 0),
                 ("SHARED", 1), ("MLP", 1), ("COMBINE", 1)]
PREFILL_WAITS_FOR = {"ATTN": "COMBINE", "DISPATCH": "ATTN", "SHARED": None,
                     "MLP": "DISPATCH", "COMBINE": "MLP"}
PREFILL_COMPUTE = {"ATTN": PREFILL_ATTN, "SHARED": PREFILL_SHARED, "MLP": PREFILL_MLP}


def generate_prefill(seed: int = 0, steps: int = 4, layers: int = 4) -> dict:
    """The prefill trace as a Kineto object (ts/dur are integer µs)."""
    rec = Recorder(seed + 1, 4016, IntClock(origin_us=1_740_553_213_706_118),
                   first_correlation=52_000, first_external_id=3_100,
                   external_id_is_correlation=True)
    gpus = [Gpu(0), Gpu(1)]
    threads = [CpuThread(rec, 4016, start_ns=1_380), CpuThread(rec, 4153, start_ns=1_380)]
    main = threads[0]

    for step in range(steps):
        rec.chunk = step
        threads[1].catch_up(main, 20, 60)  # the worker starts each step with the main thread
        with main.span("user_annotation", f"ProfilerStep#{step + 1}"):
            for thread, gpu in zip(threads, gpus):
                thread.memset(gpu, COMPUTE, 8, 0.5)
            done: list[dict] = [{}, {}]
            for _layer in range(layers):
                for phase, mb in PREFILL_LAYER:
                    comm_ops = []
                    for dev, (thread, gpu) in enumerate(zip(threads, gpus)):
                        wait = done[dev].get((PREFILL_WAITS_FOR[phase], mb))
                        done[dev][(phase, mb)], op = _prefill_phase(thread, gpu, phase, mb, wait)
                        if op is not None:
                            comm_ops.append(op)
                    if comm_ops:
                        couple(comm_ops, PREFILL_TRANSFER_US[phase], rec.rand)
            if step == steps - 1:
                _all_reduce(threads, gpus, rec)
            for thread, gpu in zip(threads, gpus):
                thread.synchronize(gpu, "cudaDeviceSynchronize", (COMPUTE, P_DEEPEP, P_NCCL))
            main.catch_up(threads[1], 1, 3)
        main.busy(1, 3)
    end = max(t.t for t in threads)

    events = _assemble(
        rec, thread_order=[4153, 4016], same_thread_annotations=True, t0=0, t1=end,
        metadata=_metadata(rec, 0, [0, 1], {0: [COMPUTE, P_DEEPEP, P_NCCL], 1: [COMPUTE, P_DEEPEP, P_NCCL]},
                           [(4153, "python3"), (4016, "python3")]))
    return {
        "schemaVersion": 1,
        "deviceProperties": device_properties(),
        "distributedInfo": {"backend": "nccl", "rank": 0, "world_size": 2},
        "traceEvents": events,
        "traceName": "traces/prof_prefill_ep2_tp1_hidden7168_seqlen4096.json",
    }


def _prefill_phase(thread: CpuThread, gpu: Gpu, phase: str, mb: int, wait):
    """One phase of one micro-batch on one GPU. Returns (event recorded at its
    end, the all-to-all kernel to couple with the other GPU's, if any)."""
    comm_op = None
    with thread.span("user_annotation", f"mb{mb}:{phase}"):
        stream = COMPUTE if phase in PREFILL_COMPUTE else P_DEEPEP
        if wait is not None:
            thread.wait_event(gpu, stream, wait)
        if phase in PREFILL_COMPUTE:
            for op in PREFILL_COMPUTE[phase]:
                thread.op(op, gpu, COMPUTE)
        elif phase == "DISPATCH":
            # an FP8 cast and DeepEP's layout kernel share the comm stream with the transfer
            thread.op(PREFILL_SHARED[0], gpu, P_DEEPEP)
            with thread.python("deep_ep/buffer.py(253): get_dispatch_layout"):
                thread.launch(GET_DISPATCH_LAYOUT, gpu, P_DEEPEP, us=22)
                thread.launch(CUB_SCAN_INIT, gpu, P_DEEPEP)
                thread.launch(CUB_SCAN, gpu, P_DEEPEP)
            with thread.python("deep_ep/buffer.py(318): dispatch"):
                notify = thread.launch(NORMAL_NOTIFY, gpu, P_DEEPEP, spread=0.5)
                # normal mode: the CPU spins until notify_dispatch has counted the
                # tokens to receive, so it cannot run far ahead of the GPU here
                thread.t = max(thread.t, notify.end) + thread.rec.rand.ns(4, 12)
                comm_op = thread.launch(NORMAL_DISPATCH, gpu, P_DEEPEP)
        else:
            with thread.python("deep_ep/buffer.py(402): combine"):
                thread.launch(CACHED_NOTIFY_COMBINE, gpu, P_DEEPEP)
                comm_op = thread.launch(NORMAL_COMBINE, gpu, P_DEEPEP)
        return thread.record_event(gpu, stream), comm_op


def _all_reduce(threads: list[CpuThread], gpus: list[Gpu], rec: Recorder) -> None:
    """One NCCL all-reduce per GPU on its own stream, after the last layer."""
    comms = {"Collective name": "allreduce", "In msg nelems": 524288, "Out msg nelems": 524288,
             "Group size": 2, "dtype": "BFloat16", "In split size": "[]", "Out split size": "[]",
             "Process Group Name": "0", "Process Group Description": "default_pg",
             "Process Group Ranks": "[0, 1]"}
    ops = []
    for thread, gpu in zip(threads, gpus):
        with thread.span("user_annotation", "nccl:all_reduce"):
            thread.wait_event(gpu, P_NCCL, thread.record_event(gpu, COMPUTE))
            with thread.span("cpu_op", "record_param_comms", dict(comms, Rank=gpu.device)):
                ops.append(thread.launch(NCCL_ALL_REDUCE, gpu, P_NCCL, us=1, extra_args=comms))
    couple(ops, PREFILL_TRANSFER_US["ALL_REDUCE"], rec.rand)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

_RAW = "\x00raw:"
_RAW_RE = re.compile(r'"\\u0000raw:([0-9.]+)"')


def _kineto_line(event: dict) -> str:
    """One compact event; ts/dur with exactly 3 decimals, as Kineto prints them."""
    shown = dict(event)
    for key in ("ts", "dur"):
        if isinstance(shown.get(key), float):
            shown[key] = _RAW + format(shown[key], ".3f")
    return _RAW_RE.sub(r"\1", json.dumps(shown, separators=(",", ":")))


def dumps_annotated(trace: dict) -> str:
    """Newer-Kineto layout: header keys, then one event per line."""
    out = ["{"]
    for key, value in trace.items():
        if key == "traceEvents":
            out.append('  "traceEvents": [')
            out.append(",\n".join(_kineto_line(e) for e in value))
            out.append("  ],")
        elif key == "deviceProperties":
            rows = ",\n".join("    " + json.dumps(d) for d in value)
            out.append(f'  "deviceProperties": [\n{rows}\n  ],')
        else:
            out.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    out[-1] = out[-1].rstrip(",")
    out.append("}")
    return "\n".join(out) + "\n"


def dumps_prefill(trace: dict) -> str:
    """Pretty-printed, one key per line."""
    return json.dumps(trace, indent=2) + "\n"


def write_gzip(path: Path, text: str) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--annotated-steps", type=int, default=6)
    parser.add_argument("--annotated-layers", type=int, default=3, help="layers per step")
    parser.add_argument("--decode-steps", type=int, default=2)
    parser.add_argument("--decode-layers", type=int, default=16, help="layers per decode step")
    parser.add_argument("--decode-stack-depth", type=int, default=0, metavar="N",
                        help="Python frames above the decode scheduler (0: the committed "
                             "sample; a with_stack server profile has 30-40)")
    parser.add_argument("--prefill-steps", type=int, default=4)
    parser.add_argument("--prefill-layers", type=int, default=4, help="layers per prefill step")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    annotated = generate_annotated(args.seed, args.annotated_steps, args.annotated_layers)
    (args.out / "annotated.json").write_text(dumps_annotated(annotated), encoding="utf-8")
    decode = generate_decode(args.seed, args.decode_steps, args.decode_layers,
                             stack_depth=args.decode_stack_depth)
    (args.out / "decode.json").write_text(dumps_decode(decode), encoding="utf-8")
    prefill = generate_prefill(args.seed, args.prefill_steps, args.prefill_layers)
    write_gzip(args.out / "prefill.json.gz", dumps_prefill(prefill))
    for name, trace in (("annotated.json", annotated), ("decode.json", decode),
                        ("prefill.json.gz", prefill)):
        size = (args.out / name).stat().st_size
        print(f"{args.out / name}: {len(trace['traceEvents'])} events, {size:,} bytes")


if __name__ == "__main__":
    main()
