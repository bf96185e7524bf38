"""Capture ``torch/flops_ops.json.gz`` plus PyTorch's own ``key_averages()`` FLOPs of the same run.

    pip install torch==2.13.0        # not a dependency of tracetui; only for this script
    python sample_traces/capture_flops.py
    # optional: [--out PATH.json.gz] [--averages PATH.json]

Profiles, on the CPU, with ``record_shapes=True`` and ``with_flops=True`` (no stack, no
schedule: the whole ``with`` block, after one unprofiled warm-up pass), two passes of a
handful of small ops whose FLOPs have a formula:

- ``torch.mm`` (``aten::mm``), ``nn.Linear`` with a bias on a 2-D input (``aten::linear`` ›
  ``aten::addmm``), ``torch.bmm``, ``torch.baddbmm``;
- ``torch.matmul`` with a batch: a 4-D @ 4-D (``aten::matmul`` › ``aten::bmm`` of the folded
  batch) and a 3-D @ 2-D (``aten::matmul`` › ``aten::mm`` of the folded rows);
- ``nn.Conv2d``: stride 2 / padding 1 / dilation 1 / groups 1, the same with groups 2, and one
  with dilation 2 (``aten::conv2d`` › ``aten::convolution`` › ``aten::_convolution`` › a
  backend op), then their backward (``aten::convolution_backward``);
- ``F.scaled_dot_product_attention`` without and with ``is_causal`` (on the CPU:
  ``aten::_scaled_dot_product_flash_attention_for_cpu``), and its backward;

then ``.backward()`` of a sum of all the results (so the GEMMs' backward ``aten::mm`` /
``aten::bmm`` are in the trace too).

Two files come from the one ``prof`` object: the trace, exactly as ``export_chrome_trace``
wrote it (then gzipped, ``mtime=0``), and ``<stem>.key_averages.json``:
``{"torch": version, "by_name": [...], "by_shape": [...]}``, rows of
``prof.key_averages()`` and ``prof.key_averages(group_by_input_shape=True)``, each
``{"name", "input_shapes" (by_shape only), "count", "flops", "self_cpu_us",
"cpu_total_us"}``, sorted by name then input_shapes. ``flops`` is what PyTorch's
``with_flops`` reports (``torch/csrc/profiler/util.cpp``: mm, addmm, bmm, baddbmm, conv2d,
and the element-wise mul and add), 0 for every other op.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
PASSES = 2


class FlopsModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(24, 12, bias=True)
        self.conv_s2 = nn.Conv2d(4, 8, kernel_size=3, stride=2, padding=1, dilation=1, groups=1)
        self.conv_g2 = nn.Conv2d(4, 8, kernel_size=3, stride=1, padding=1, dilation=1, groups=2)
        self.conv_d2 = nn.Conv2d(4, 6, kernel_size=3, stride=1, padding=2, dilation=2, groups=1)

    def forward(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        outs = [
            torch.mm(t["a"], t["b"]),                       # [16,24] @ [24,20]
            self.lin(t["x"]),                               # [10,24] -> addmm
            torch.bmm(t["ba"], t["bb"]),                    # [3,8,12] @ [3,12,5]
            torch.baddbmm(t["bias3"], t["ba"], t["bb"]),    # + [3,8,5]
            torch.matmul(t["m4a"], t["m4b"]),               # [2,3,6,8] @ [2,3,8,4]
            torch.matmul(t["m3"], t["b"]),                  # [2,5,24] @ [24,20]
            self.conv_s2(t["img"]),                         # [2,4,10,10] -> [2,8,5,5]
            self.conv_g2(t["img"]),                         # -> [2,8,10,10]
            self.conv_d2(t["img"]),                         # -> [2,6,10,10]
            F.scaled_dot_product_attention(t["q"], t["k"], t["v"]),
            F.scaled_dot_product_attention(t["q"], t["k"], t["v"], is_causal=True),
        ]
        return sum(o.float().sum() for o in outs)


def inputs() -> dict[str, torch.Tensor]:
    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, requires_grad=True)

    return {
        "a": r(16, 24), "b": r(24, 20), "x": r(10, 24),
        "ba": r(3, 8, 12), "bb": r(3, 12, 5), "bias3": r(3, 8, 5),
        "m4a": r(2, 3, 6, 8), "m4b": r(2, 3, 8, 4), "m3": r(2, 5, 24),
        "img": r(2, 4, 10, 10),
        "q": r(2, 2, 8, 16), "k": r(2, 2, 8, 16), "v": r(2, 2, 8, 16),
    }


def averages(prof) -> dict:
    def rows(events, with_shapes: bool) -> list[dict]:
        out = []
        for e in events:
            row: dict = {"name": e.key}
            if with_shapes:
                row["input_shapes"] = str(e.input_shapes)
            row.update(count=e.count, flops=int(e.flops or 0),
                       self_cpu_us=e.self_cpu_time_total, cpu_total_us=e.cpu_time_total)
            out.append(row)
        return sorted(out, key=lambda r: (r["name"], r.get("input_shapes", "")))

    return {"torch": torch.__version__,
            "by_name": rows(prof.key_averages(), False),
            "by_shape": rows(prof.key_averages(group_by_input_shape=True), True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "torch" / "flops_ops.json.gz")
    parser.add_argument("--averages", type=Path, default=None,
                        help="key_averages path (default <stem>.key_averages.json)")
    args = parser.parse_args()
    out: Path = args.out
    stem = out.name.split(".")[0]
    avg_path: Path = args.averages or out.with_name(f"{stem}.key_averages.json")

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = FlopsModel()
    t = inputs()
    model(t).backward()  # warm-up, unprofiled (lazy initialisations out of the trace)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True,
                 with_flops=True) as prof:
        for _ in range(PASSES):
            model.zero_grad(set_to_none=True)
            for v in t.values():
                v.grad = None
            model(t).backward()
    fd, tmp = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(tmp)
        raw = Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)
    with open(out, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(raw)
    avg_path.write_text(json.dumps(averages(prof), indent=1) + "\n")
    print(f"{out}: {out.stat().st_size:,} bytes ({len(raw):,} uncompressed), "
          f"torch {torch.__version__}")
    print(f"{avg_path}: {avg_path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
