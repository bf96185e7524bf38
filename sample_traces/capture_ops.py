"""Capture ``torch/ops_<model>.json`` plus PyTorch's own ``key_averages()`` of the same run.

    pip install torch==2.13.0        # not a dependency of tracetui; only for this script
    python sample_traces/capture_ops.py --model cnn
    python sample_traces/capture_ops.py --model transformer
    python sample_traces/capture_ops.py --model cnn --memory   # + profile_memory=True
    # optional: [--out PATH.json] [--averages PATH.json]

Five training steps of a small model, fed from a ``DataLoader`` (so the trace has
``enumerate(DataLoader)#...__next__`` events), profiled on the CPU with
record_shapes, with_stack and with_modules, under ``schedule(wait=1, warmup=1,
active=3)``: the active steps are ``ProfilerStep#2`` .. ``#4``. ``--model cnn`` is a
small CNN (two ``ConvBlock``s, pool, flatten, linear; cross-entropy, SGD);
``--model transformer`` is a 1-layer ``nn.TransformerEncoder`` (d_model 32, 4 heads, no
biases) with an embedding and a linear head (cross-entropy, fused Adam). It is that small
so that the with_stack trace stays under ~1.5 MB: a second layer, the biases, or the
per-parameter (unfused) Adam each add hundreds of events per step.

``on_trace_ready`` writes two files from the same profiler: the trace, exactly as
``export_chrome_trace`` wrote it (nothing is edited), and ``<stem>.key_averages.json``:
``{"torch": version, "by_name": [...], "by_shape": [...]}``, whose rows come from
``prof.key_averages()`` and ``prof.key_averages(group_by_input_shape=True)``, each as
``{"name", "input_shapes" (by_shape only), "count", "self_cpu_us", "cpu_total_us"}``,
sorted by name then input_shapes. These are the reference figures for an operator table.

``--memory`` adds ``profile_memory=True`` (the trace gets ``[memory]`` events) and writes
``ops_<model>_memory.json``; its rows also hold ``self_cpu_memory_usage`` and
``cpu_memory_usage`` (bytes), the reference for memory by operator.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, schedule
from torch.utils.data import DataLoader, TensorDataset

HERE = Path(__file__).resolve().parent
STEPS = 5  # wait 1 + warmup 1 + active 3
BATCH = 8


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBlock(3, 8), ConvBlock(8, 8))
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(8 * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.features(x))))


class SmallTransformer(nn.Module):
    def __init__(self, vocab: int = 50, d_model: int = 32, nhead: int = 4, layers: int = 1,
                 classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=64, dropout=0.0,
                                           bias=False, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def build(model_name: str) -> tuple[nn.Module, torch.optim.Optimizer, DataLoader]:
    n = BATCH * STEPS
    if model_name == "cnn":
        model: nn.Module = SmallCNN()
        optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        data = TensorDataset(torch.randn(n, 3, 16, 16), torch.randint(0, 10, (n,)))
    else:
        model = SmallTransformer()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        data = TensorDataset(torch.randint(0, 50, (n, 12)), torch.randint(0, 10, (n,)))
    return model, optimizer, DataLoader(data, batch_size=BATCH, shuffle=False, num_workers=0)


def averages(prof, memory: bool = False) -> dict:
    def rows(events, with_shapes: bool) -> list[dict]:
        out = []
        for e in events:
            row: dict = {"name": e.key}
            if with_shapes:
                row["input_shapes"] = str(e.input_shapes)
            row.update(count=e.count, self_cpu_us=e.self_cpu_time_total,
                       cpu_total_us=e.cpu_time_total)
            if memory:
                row.update(self_cpu_memory_usage=e.self_cpu_memory_usage,
                           cpu_memory_usage=e.cpu_memory_usage)
            out.append(row)
        return sorted(out, key=lambda r: (r["name"], r.get("input_shapes", "")))

    return {"torch": torch.__version__,
            "by_name": rows(prof.key_averages(), False),
            "by_shape": rows(prof.key_averages(group_by_input_shape=True), True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("cnn", "transformer"), required=True)
    parser.add_argument("--out", type=Path, default=None,
                        help="trace path (default sample_traces/ops_<model>.json)")
    parser.add_argument("--averages", type=Path, default=None,
                        help="key_averages path (default <out stem>.key_averages.json)")
    parser.add_argument("--memory", action="store_true", help="profile_memory=True as well")
    args = parser.parse_args()
    stem = f"ops_{args.model}" + ("_memory" if args.memory else "")
    out: Path = args.out or HERE / "torch" / f"{stem}.json"
    avg_path: Path = args.averages or out.with_name(f"{out.stem}.key_averages.json")

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model, optimizer, loader = build(args.model)
    loss_fn = nn.CrossEntropyLoss()

    def on_trace_ready(prof) -> None:
        prof.export_chrome_trace(str(out))
        avg_path.write_text(json.dumps(averages(prof, args.memory), indent=1) + "\n")

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_stack=True,
                 with_modules=True, profile_memory=args.memory, schedule=schedule(wait=1, warmup=1, active=3, repeat=1),
                 on_trace_ready=on_trace_ready) as prof:
        steps = 0
        for x, y in loader:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            prof.step()
            steps += 1
    assert steps == STEPS, steps
    for path in (out, avg_path):
        print(f"{path}: {path.stat().st_size:,} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
