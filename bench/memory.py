"""Benchmark: a trace with millions of memory events (issue 33's targets).

Makes a training-like trace (``--memory-events`` ``[memory]`` events, default 5 M) and the
same trace without them: per group an operator (``aten::linear``) around another
(``aten::mm``) around a kernel launch, the kernel on a GPU stream, and one memory event on
CUDA:0 (new-schema args: ``Total Allocated``, ``Total Reserved``, ``Addr``; allocations and
frees of earlier allocations in turn), a ``ProfilerStep#N`` every 1,000 groups: four other
events per memory event (ResNet-50's 2021 trace has 4.9), each with the args PyTorch 2's
profiler writes (shapes, strides and types on ops, the launch's ``cbid``, the kernel's
occupancy fields); the memory events are then 12 % of the file's bytes (5.5 % in ResNet-50's).
Then, in fresh processes, interleaved, best of ``--runs``:

- the load of each (``load_ratio``: with / without; target <= 1.2), and the share of the
  file's bytes the memory events take (what a parser cannot avoid reading);
- the app headless (120x40): ``h`` pressed the moment the load ends, the seconds to the
  memory view's first frame (``view_at_load_s``, target <= 1 s) and to its allocations
  table (paired by address: ``table_at_load_s``); then keys inside the view and on the
  timeline, CPU time of the UI thread from key to frame (``keys_ms``, target <= 50 ms):
  until the app is idle again with a whole frame drawn, as bench/views.py counts (and
  ``first_frame_ms``: to the first frame written after the key). A key whose rows come from
  a worker (memory by operator, an operator's allocations) is timed to its first frame (the
  title says the rows are coming), then the wall time to its rows (``rows_from_worker_ms``)
  and the UI's time from their arrival to the frame that shows them (``rows_shown_ms``).
  Each key waits for what earlier ones left running: Pilot's wait for idleness, with a
  worker busy, counts its own polling (about 70 ms of CPU a second).

Prints one JSON line. Say how busy the machine was: a helper on the second core halves
what a worker thread gets.

    python bench/memory.py [--memory-events 5e6] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

KERNELS = ["void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4>(Params)",
           "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
           "ampere_sgemm_128x64_nn", "void at::native::reduce_kernel<512, 1>(ReduceOp)"]


def make(path_with: str, path_without: str, memory_events: int, seed: int = 1) -> dict:
    """Write both traces; the counts and sizes."""
    rng = random.Random(seed)
    t = 1_000_000.0  # µs
    gpu_t = t
    live: list[tuple[int, int]] = []  # (addr, bytes) allocated and not yet freed
    allocated = reserved = 0
    next_addr = 0x7F0000000000
    mem_bytes = other = 0
    with open(path_with, "w") as fw, open(path_without, "w") as fo:
        head = '{"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "NVIDIA H100", ' \
               '"numSms": 132}], "traceEvents": [\n'
        fw.write(head)
        fo.write(head)
        first = True
        step_start, step = t, 0
        for g in range(memory_events):
            if g % 1000 == 0:
                if g:
                    line = (f'{{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#{step}", '
                            f'"pid": 1, "tid": 1, "ts": {step_start:.3f}, '
                            f'"dur": {t - step_start:.3f}, "args": {{}}}}')
                    fw.write(",\n" + line)
                    fo.write(",\n" + line)
                    step += 1
                step_start = t
            k = g + 1
            lines = [
                f'{{"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 1, "tid": 1, '
                f'"ts": {t:.3f}, "dur": 30.000, "args": {{"External id": {3 * k}, '
                f'"Record function id": 0, "Concrete Inputs": ["", "", ""], "Input type": '
                f'["float", "float", "float"], "Input Strides": [[1024, 1], [1024, 1], [1]], '
                f'"Input Dims": [[64, 1024], [4096, 1024], [4096]], "Ev Idx": {3 * k}, '
                f'"Sequence number": {k}, "Fwd thread id": 0}}}}',
                f'{{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, '
                f'"ts": {t + 2:.3f}, "dur": 25.000, "args": {{"External id": {3 * k + 1}, '
                f'"Record function id": 0, "Concrete Inputs": ["", ""], "Input type": '
                f'["float", "float"], "Input Strides": [[1024, 1], [1, 1024]], "Input Dims": '
                f'[[64, 1024], [1024, 4096]], "Ev Idx": {3 * k + 1}}}}}',
                f'{{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, '
                f'"tid": 1, "ts": {t + 10:.3f}, "dur": 5.000, "args": {{"External id": '
                f'{3 * k + 1}, "cbid": 211, "correlation": {k}}}}}',
            ]
            kd = rng.choice((8.0, 12.0, 20.0, 35.0))
            gpu_t = max(gpu_t, t + 16)
            lines.append(
                f'{{"ph": "X", "cat": "kernel", "name": "{KERNELS[g % len(KERNELS)]}", '
                f'"pid": 0, "tid": 7, "ts": {gpu_t:.3f}, "dur": {kd:.3f}, "args": '
                f'{{"External id": {3 * k + 1}, "queued": 0, "device": 0, "context": 1, '
                f'"stream": 7, "correlation": {k}, "registers per thread": 64, '
                f'"shared memory": 0, "blocks per SM": 0.969697, "warps per SM": 7.757576, '
                f'"grid": [128, 1, 1], "block": [256, 1, 1], '
                f'"est. achieved occupancy %": 50}}}}')
            gpu_t += kd + 1
            # one memory event in aten::mm: an allocation, or the free of an earlier one
            if live and (len(live) > 400 or rng.random() < 0.5):
                addr, b = live.pop(rng.randrange(len(live)))
                b = -b
            else:
                addr, b = next_addr, rng.choice((4096, 65536, 1 << 20, 4 << 20, 16 << 20))
                next_addr += b
                live.append((addr, b))
            allocated += b
            reserved = max(reserved, -(-allocated // (2 << 20)) * (2 << 20))
            mem = (f'{{"ph": "i", "cat": "cpu_instant_event", "s": "t", "name": "[memory]", '
                   f'"pid": 1, "tid": 1, "ts": {t + 4:.3f}, "args": {{"Total Reserved": '
                   f'{reserved}, "Total Allocated": {allocated}, "Bytes": {b}, '
                   f'"Device Id": 0, "Device Type": 1, "Addr": {addr}}}}}')
            body = ",\n".join(lines)
            if first:
                fw.write(body + ",\n" + mem)
                fo.write(body)
                first = False
            else:
                fw.write(",\n" + body + ",\n" + mem)
                fo.write(",\n" + body)
            mem_bytes += len(mem) + 2
            other += len(lines)
            t += 40.0
        fw.write("\n]}\n")
        fo.write("\n]}\n")
    size = os.path.getsize(path_with)
    return {"memory_events": memory_events, "other_events": other + step,
            "mb_with": round(size / 1e6, 1),
            "mb_without": round(os.path.getsize(path_without) / 1e6, 1),
            "memory_bytes_pct": round(100 * mem_bytes / size, 1)}


def _load(path: str) -> float:
    """The load in a fresh process, process start to exit."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; from tracetui.trace import load; "
                    "load(sys.argv[1])", path], check=True)
    return time.perf_counter() - t


#: keys pressed in the memory view, then on the timeline (each timed from key to frame)
SESSION = [("allocations down", ["down"]), ("sort >", ["greater_than_sign"]),
           ("reverse ^r", ["ctrl+r"]), ("by operator ^t", ["ctrl+t"]),
           ("operator down", ["down"]), ("operator's allocations enter", ["enter"]),
           ("all allocations escape", ["escape"]), ("filter a", ["a"]),
           ("filter enter", ["enter"]), ("allocation enter (timeline)", ["enter"]),
           ("timeline w", ["w"]), ("timeline s", ["s"]), ("to the peak H", ["H"]),
           ("timeline d", ["d"]), ("mark range m", ["m"]), ("memory view h", ["h"]),
           ("view escape", ["escape"])]


def _send(app: object, key: str) -> None:
    """A key event, as Pilot.press sends it (without its waits for idleness, whose polling
    costs the UI thread CPU time while a worker runs)."""
    from textual import events
    from textual.keys import _character_to_key

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    char = {"enter": "\r", "escape": "\x1b"}.get(key, key if len(key) == 1 else None)
    if key == "greater_than_sign":
        char = ">"
    event = events.Key(key, char)
    event.set_sender(app)  # type: ignore[arg-type]
    app._driver.send_message(event)  # type: ignore[attr-defined]


async def _app(path: str) -> dict:
    from tracetui.app import busy
    from tracetui.app.app import TraceApp

    app = TraceApp(path)
    shown: list[float] = []
    first: list[float] = []  # the UI thread's CPU time at the first frame after a key
    display = app._display

    def _display(screen: object, renderable: object) -> None:
        if renderable is not None:  # (a frame written: Textual's App._display, headless too)
            if not shown and type(app.screen).__name__ == "MemoryScreen":
                shown.append(time.perf_counter())
            if not first:
                first.append(time.thread_time())
        display(screen, renderable)

    app._display = _display  # type: ignore[method-assign]
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        t = time.perf_counter()
        while not (app.loaded or app.error):
            await pilot.pause(0.05)
        out["app_load_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        while not app.session.memory():  # (the curves: made right after the load)
            await pilot.pause(0.005)
        await pilot.press("h")
        while not shown:
            await pilot.pause(0.005)
        out["view_at_load_s"] = round(shown[0] - t, 2)
        screen = app.screen
        while screen.busy or not len(screen.grid.model):
            await pilot.pause(0.01)
        out["table_at_load_s"] = round(time.perf_counter() - t, 2)
        while not (app.views_ready and app.panes_shown_ready):
            await pilot.pause(0.05)
        keys: dict[str, float] = {}
        frames: dict[str, float] = {}
        fills: dict[str, float] = {}  # keys whose rows then came from a worker
        applied: dict[str, float] = {}  # ... and the UI's time to show them
        for label, press in [("(unbound key: harness only)", ["y"])] + SESSION:
            # what earlier keys left running (a worker, the heap's second freeze) first:
            # Pilot's wait for idleness would count its own polling meanwhile
            while busy.running() or app._freeze_later is not None:
                await pilot.pause(0.02)
            await pilot.pause()
            wrapped = app.screen
            rows_at: list[float] = []
            show_rows = getattr(wrapped, "_show_rows", None)
            if show_rows is not None:
                def _show_rows(*a: object, _f: object = show_rows) -> None:
                    rows_at.append(time.thread_time())
                    first.clear()
                    _f(*a)  # type: ignore[operator]

                wrapped._show_rows = _show_rows  # type: ignore[attr-defined]
            first.clear()
            c = time.thread_time()
            for key in press:  # sent as Pilot does, without its waits for idleness
                _send(app, key)
            w = time.perf_counter()
            while not first and time.perf_counter() - w < 0.1:  # (none: nothing changed)
                await asyncio.sleep(0.002)
            scr = app.screen
            if first and getattr(scr, "busy", False):
                # its rows come from a worker: the key's own time is to its first frame
                # (the title says they are being made); then the wall time to the rows,
                # and the UI's time from their arrival to the frame that shows them
                keys[label] = frames[label] = round((first[0] - c) * 1000, 1)
                while scr.busy:
                    await asyncio.sleep(0.01)
                fills[label] = round((time.perf_counter() - w) * 1000, 1)
                while rows_at and not first:
                    await asyncio.sleep(0.001)
                if rows_at and first:
                    applied[label] = round((first[0] - rows_at[0]) * 1000, 1)
            else:
                if first:
                    frames[label] = round((first[0] - c) * 1000, 1)
                await pilot.pause()
                scr = app.screen
                scr._refresh_layout()
                scr._compositor.render_strips()
                keys[label] = round((time.thread_time() - c) * 1000, 1)
            if show_rows is not None:
                del wrapped._show_rows
            if label == "mark range m":
                while app.range_stats is None:
                    await pilot.pause(0.01)
        out["harness_ms"] = keys.pop("(unbound key: harness only)")
        # the heap frozen (gc.freeze after a full collection) once the views are made, and
        # again once the workers of the load are done: one-off pauses, not a key's
        out["heap_freezes_ms"] = list(app.freeze_ms)
        frames.pop("(unbound key: harness only)", None)
        out["keys_ms"] = keys
        out["first_frame_ms"] = frames
        out["rows_from_worker_ms"] = fills
        out["rows_shown_ms"] = applied
        slow = max(keys, key=keys.get)
        out["slowest_key"], out["slowest_ms"] = slow, keys[slow]
        if frames:
            slow = max(frames, key=frames.get)
            out["slowest_first_frame_key"], out["slowest_first_frame_ms"] = slow, frames[slow]
        await pilot.press("q")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-events", type=float, default=5e6)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="write the traces here and keep them (else a temp dir)")
    args = ap.parse_args(argv)
    where = args.keep or tempfile.mkdtemp(prefix="tracetui-memory-")
    os.makedirs(where, exist_ok=True)
    with_p, without_p = os.path.join(where, "with.json"), os.path.join(where, "without.json")
    try:
        t = time.perf_counter()
        if not (args.keep and os.path.exists(with_p) and os.path.exists(without_p)):
            res = make(with_p, without_p, int(args.memory_events))
        else:
            res = {"memory_events": int(args.memory_events),
                   "mb_with": round(os.path.getsize(with_p) / 1e6, 1),
                   "mb_without": round(os.path.getsize(without_p) / 1e6, 1)}
        res["make_s"] = round(time.perf_counter() - t, 1)
        w, o = [], []
        for _ in range(args.runs):  # interleaved
            w.append(_load(with_p))
            o.append(_load(without_p))
        res.update(load_with_s=round(min(w), 2), load_without_s=round(min(o), 2),
                   load_ratio=round(min(w) / min(o), 3),
                   load_runs_with=[round(x, 2) for x in w],
                   load_runs_without=[round(x, 2) for x in o])
        res.update(asyncio.run(_app(with_p)))
        print(json.dumps({"bench": "memory", **res}))
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
