"""Re-capture ``cpu_torch.json``: a real, CPU-only trace written by torch.profiler.

    pip install torch==2.13.0        # not a dependency of tracetui; only for this script
    python sample_traces/capture_cpu.py [--out sample_traces/cpu_torch.json] [--stack-depth N]

A few training steps of a tiny model (a self-attention block followed by a
2-layer MLP), profiled with record_shapes and with_stack (so the trace has
``python_function`` events), under a schedule so that ``ProfilerStep#N`` spans
appear, and with ``record_function`` annotations for the phases of each step.
The file is exactly what ``export_chrome_trace`` wrote; nothing is edited.

``--stack-depth N`` (default 0: the committed sample) runs each step, as ``step()``, under N
nested Python frames, the layers of a pretend serving app (``serve_forever`` ›
``handle_connection`` › … › ``execute_model``, repeated as needed), so that the
trace has a deep ``python_function`` stack above the aten ops.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function, schedule

HERE = Path(__file__).resolve().parent


class TinyBlock(nn.Module):
    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


# The layers of a pretend serving app, outermost first: frame k of n (1-based) is
# _APP_LAYERS[(k - 1) % len], and frame n runs the step. One frame per layer, and
# no call in between (not even len()), so n layers are exactly n python_function levels.
def serve_forever(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def handle_connection(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def dispatch_request(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def apply_middleware(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def authenticate(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def rate_limit(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def with_retry(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def trace_span(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def run_handler(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def schedule_batch(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def run_batch(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


def execute_model(k: int, n: int, fn: Callable[[], None]) -> None:
    return fn() if k == n else _APP_LAYERS[k % _N_LAYERS](k + 1, n, fn)


_APP_LAYERS = (serve_forever, handle_connection, dispatch_request, apply_middleware, authenticate,
               rate_limit, with_retry, trace_span, run_handler, schedule_batch, run_batch,
               execute_model)
_N_LAYERS = len(_APP_LAYERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "cpu_torch.json")
    parser.add_argument("--active", type=int, default=2, help="profiled steps")
    parser.add_argument("--stack-depth", type=int, default=0, metavar="N",
                        help="run each step under N nested Python frames (default 0: none)")
    args = parser.parse_args()
    if args.stack_depth < 0:
        parser.error("--stack-depth must be >= 0")

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = TinyBlock()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    x = torch.randn(4, 16, 64)
    target = torch.randn(4, 16, 64)

    def on_trace_ready(prof) -> None:
        prof.export_chrome_trace(str(args.out))

    def step() -> None:  # the loop body below, for --stack-depth N > 0
        with record_function("phase:forward"):
            loss = nn.functional.mse_loss(model(x), target)
        with record_function("phase:backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("phase:optimizer"):
            optimizer.step()

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_stack=True,
                 schedule=schedule(wait=1, warmup=1, active=args.active, repeat=1),
                 on_trace_ready=on_trace_ready) as prof:
        for _ in range(2 + args.active):
            if args.stack_depth:
                serve_forever(1, args.stack_depth, step)
                prof.step()
                continue
            # Inline rather than step(), so that the default adds no Python frame.
            with record_function("phase:forward"):
                loss = nn.functional.mse_loss(model(x), target)
            with record_function("phase:backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with record_function("phase:optimizer"):
                optimizer.step()
            prof.step()
    size = args.out.stat().st_size
    print(f"{args.out}: {size:,} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
