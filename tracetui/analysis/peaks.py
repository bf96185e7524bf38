"""Peak throughput per GPU: what a roofline percent is measured against.

The figures
    Dense (no 2:4 structured sparsity) vendor datasheet peaks, per GPU as PyTorch sees it,
    in TFLOP/s (TOPS for ``int8``) per dtype class — ``fp64``, ``fp64_tc`` (FP64 on Tensor
    Cores / matrix cores, where the datasheet lists it), ``fp32`` (the vector rate), ``tf32``,
    ``bf16``, ``fp16``, ``fp8``, ``int8`` — and peak memory bandwidth in TB/s (decimal,
    1e12 B/s). A class the datasheet does not list is absent (A100 has no FP8, V100 no BF16,
    CDNA 2 and CDNA 4 no TF32). NVIDIA's datasheets give the Tensor Core figures "with
    sparsity" (footnote ``*``) from Ampere on; those are halved here, and each entry's
    ``source`` says so. AMD's pages list dense and sparse apart; the dense ones are used.
    Each entry names its datasheet (title, address, the revision it was read from).

    Not used on purpose: PyTorch's ``torch/utils/_device_info``-style tables (they give the
    H100's sparse BF16 1,979 as if dense) and TraceLens's MI300X/MI325X "max achievable"
    tables (measured, not datasheet).

Matching
    :func:`device_peaks` matches the ``deviceProperties[].name`` a Kineto trace carries
    ("NVIDIA H100 80GB HBM3", "Tesla V100-SXM2-32GB", "AMD Instinct MI300X", ...),
    case-insensitively, after dropping the vendor prefix and turning ``-``/``_`` into
    spaces, against explicit whole-name rules (:data:`NAME_RULES`). A name the rules do not
    cover gives None — never a guess; so does a name that covers variants with different
    figures ("NVIDIA H100" alone, "AMD Instinct MI250X / MI250", a MIG slice).
    One entry is per device the runtime exposes: an MI250X shows two GCDs, each a device,
    so its entry is half the package's datasheet figures. An MI300X in a CPX/TPX partition
    mode has the same name as a whole one and is not told apart.

Overriding (the config's ``[peaks]`` table)
    ::

        [peaks."NVIDIA H800"]          # a deviceProperties name, or a table key ("H800 SXM")
        bf16 = 989.4                   # TFLOP/s, dense
        fp8 = 1978.9
        tbps = 3.35                    # TB/s (decimal)

        [peaks."NVIDIA RTX 6000 Ada Generation"]   # a device the table lacks: a new entry
        bf16 = 364.2                               # (needs tbps and one figure at least)
        tbps = 0.96

    Values replace or extend the table's for that device; every value must be a number
    > 0 (a bad one is a ValueError naming the device and key). ``source`` may be given as
    a string.

Pure Python (stdlib only).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Peaks", "CLASSES", "TABLE", "NAME_RULES", "device_peaks", "match_device",
           "dtype_class", "peak_tflops"]

#: The dtype classes a figure may be given for (``int8`` in TOPS, the others in TFLOP/s).
CLASSES: tuple[str, ...] = ("fp64", "fp64_tc", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")


@dataclass(frozen=True)
class Peaks:
    """One device's peaks: ``device`` (the table's key, or the config's name for a device
    only the config knows), ``tflops`` per dtype class, ``tbps`` memory bandwidth (TB/s),
    ``source`` (where the figures come from)."""

    device: str
    tflops: dict[str, float]
    tbps: float
    source: str


# --- the sources ------------------------------------------------------------------------

_H100_DS = ("NVIDIA H100 Tensor Core GPU datasheet, "
            "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet "
            "(revision of 2024 listing H100 SXM, H100 NVL)")
_H100_WP = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper (V1.0x, 2022), "
            "https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper")
_SPARSE_HALVED = ("the datasheet's TF32/BF16/FP16/FP8/INT8 Tensor Core figures are 'with "
                  "sparsity' and are halved here")
_A100_DS = ("NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/a100/ "
            "(PDF nvidia-a100-datasheet-us-nvidia-1758950-r4-web, Jun 2021); dense figures as "
            "listed (its '*' sparse figures are twice these)")
_V100_DS = ("NVIDIA Tesla V100 GPU Accelerator datasheet, "
            "https://www.nvidia.com/en-us/data-center/v100/ (Jan 2020 revision); "
            "'Tensor Performance' (FP16 in, FP32 accumulate) as fp16; Volta has no sparsity, "
            "no BF16, no TF32")

_TABLE_SRC: dict[str, dict[str, Any]] = {
    # ---- NVIDIA Hopper -----------------------------------------------------------------
    "H100 SXM": {
        "tflops": {"fp64": 34, "fp64_tc": 67, "fp32": 67, "tf32": 494.7, "bf16": 989.4,
                   "fp16": 989.4, "fp8": 1978.9, "int8": 1978.9},
        "tbps": 3.35,
        "source": (f"{_H100_DS}, column H100 SXM: FP64 34, FP64 TC 67, FP32 67, HBM3 3.35 TB/s; "
                   f"{_SPARSE_HALVED} (TF32 989*, BF16/FP16 1,979*, FP8/INT8 3,958*), the dense "
                   f"values as in the {_H100_WP} table for H100 SXM5 (494.7 / 989.4 / 1978.9)"),
    },
    "H100 PCIe": {
        "tflops": {"fp64": 26, "fp64_tc": 51, "fp32": 51, "tf32": 378, "bf16": 756,
                   "fp16": 756, "fp8": 1513, "int8": 1513},
        "tbps": 2.0,
        "source": (f"{_H100_DS} (2022 revision, column H100 PCIe): FP64 26, FP64 TC 51, FP32 51, "
                   f"HBM2e 2 TB/s; {_SPARSE_HALVED} (TF32 756*, BF16/FP16 1,513*, FP8/INT8 "
                   f"3,026*), dense values as in the {_H100_WP} table for H100 PCIe"),
    },
    "H100 NVL": {
        "tflops": {"fp64": 30, "fp64_tc": 60, "fp32": 60, "tf32": 417.5, "bf16": 835.5,
                   "fp16": 835.5, "fp8": 1670.5, "int8": 1670.5},
        "tbps": 3.9,
        "source": (f"{_H100_DS}, column H100 NVL (94 GB, per GPU): FP64 30, FP64 TC 60, "
                   f"FP32 60, HBM3 3.9 TB/s; {_SPARSE_HALVED} (TF32 835*, BF16/FP16 1,671*, "
                   "FP8/INT8 3,341*)"),
    },
    "H800 SXM": {
        "tflops": {"fp64": 1, "fp64_tc": 1, "fp32": 67, "tf32": 494.7, "bf16": 989.4,
                   "fp16": 989.4, "fp8": 1978.9, "int8": 1978.9},
        "tbps": 3.35,
        "source": ("NVIDIA H800 Tensor Core GPU datasheet (China market, 2023, "
                   "https://www.nvidia.cn/data-center/h800/), column H800 SXM: FP64 1, FP64 TC 1, "
                   "FP32 67, HBM3 3.35 TB/s; TF32 989*, BF16/FP16 1,979*, FP8/INT8 3,958* are "
                   "'with sparsity' and halved (same GH100 at the same clocks as H100 SXM: dense "
                   f"values as in the {_H100_WP}). 'NVIDIA H800' is the SXM part (132 SMs)"),
    },
    "H800 PCIe": {
        "tflops": {"fp64": 0.8, "fp64_tc": 0.8, "fp32": 51, "tf32": 378, "bf16": 756,
                   "fp16": 756, "fp8": 1513, "int8": 1513},
        "tbps": 2.0,
        "source": ("NVIDIA H800 Tensor Core GPU datasheet (China market, 2023, "
                   "https://www.nvidia.cn/data-center/h800/), column H800 PCIe: FP64 0.8, "
                   "FP64 TC 0.8, FP32 51, HBM2e 2 TB/s; TF32 756*, BF16/FP16 1,513*, FP8/INT8 "
                   "3,026* are 'with sparsity' and halved"),
    },
    "H200 SXM": {
        "tflops": {"fp64": 34, "fp64_tc": 67, "fp32": 67, "tf32": 494.7, "bf16": 989.4,
                   "fp16": 989.4, "fp8": 1978.9, "int8": 1978.9},
        "tbps": 4.8,
        "source": ("NVIDIA H200 Tensor Core GPU datasheet, "
                   "https://www.nvidia.com/en-us/data-center/h200/ (Nov 2024), column H200 SXM: "
                   "FP64 34, FP64 TC 67, FP32 67, HBM3e 141 GB 4.8 TB/s; TF32 989*, BF16/FP16 "
                   "1,979*, FP8/INT8 3,958* are 'with sparsity' and halved (dense values as for "
                   f"H100 SXM in the {_H100_WP})"),
    },
    "H200 NVL": {
        "tflops": {"fp64": 30, "fp64_tc": 60, "fp32": 60, "tf32": 417.5, "bf16": 835.5,
                   "fp16": 835.5, "fp8": 1670.5, "int8": 1670.5},
        "tbps": 4.8,
        "source": ("NVIDIA H200 Tensor Core GPU datasheet, "
                   "https://www.nvidia.com/en-us/data-center/h200/ (Nov 2024), column H200 NVL: "
                   "FP64 30, FP64 TC 60, FP32 60, HBM3e 141 GB 4.8 TB/s; TF32 835*, BF16/FP16 "
                   "1,671*, FP8/INT8 3,341* are 'with sparsity' and halved"),
    },
    "H20": {
        "tflops": {"fp64": 1, "fp32": 44, "tf32": 74, "bf16": 148, "fp16": 148, "fp8": 296,
                   "int8": 296},
        "tbps": 4.0,
        "source": ("NVIDIA H20 product specification (China market, 2024; no datasheet on "
                   "nvidia.com, figures as NVIDIA gave them to partners): FP64 1, FP32 44, "
                   "TF32 74, BF16/FP16 148, FP8/INT8 296, HBM3 96 GB 4.0 TB/s; these are dense "
                   "(no sparsity footnote; FP8 296 dense is what keeps it under the export "
                   "TPP limit). Least certain entry of the table: override it if your sheet "
                   "differs"),
    },
    # ---- NVIDIA Blackwell --------------------------------------------------------------
    "B200": {
        "tflops": {"fp64": 37, "fp64_tc": 37, "fp32": 75, "tf32": 1100, "bf16": 2250,
                   "fp16": 2250, "fp8": 4500, "int8": 4500},
        "tbps": 7.7,
        "source": ("NVIDIA HGX platform page, https://www.nvidia.com/en-us/data-center/hgx/ "
                   "(2025), 'Individual Blackwell GPU specifications', HGX B200 column: FP64 / "
                   "FP64 TC 37, FP32 75, HBM3E 180 GB 7.7 TB/s; FP8/FP6 9 PF, INT8 9 POPS, "
                   "FP16/BF16 4.5 PF, TF32 2.2 PF are 'with sparsity' and halved"),
    },
    "GB200": {
        "tflops": {"fp64": 40, "fp64_tc": 40, "fp32": 80, "tf32": 1250, "bf16": 2500,
                   "fp16": 2500, "fp8": 5000, "int8": 5000},
        "tbps": 8.0,
        "source": ("NVIDIA GB200 NVL72 page, https://www.nvidia.com/en-us/data-center/gb200-nvl72/ "
                   "(2025), 'Individual Blackwell GPU specifications' (per GPU, up to 1,200 W): "
                   "FP64 / FP64 TC 40, FP32 80, HBM3E 186 GB 8 TB/s; FP8/FP6 10 PF, INT8 10 "
                   "POPS, FP16/BF16 5 PF, TF32 2.5 PF are 'with sparsity' and halved"),
    },
    # ---- NVIDIA Ampere / Ada / Volta ---------------------------------------------------
    "A100 SXM4 80GB": {
        "tflops": {"fp64": 9.7, "fp64_tc": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312,
                   "fp16": 312, "int8": 624},
        "tbps": 2.039,
        "source": f"{_A100_DS}; A100 80GB SXM: HBM2e 2,039 GB/s",
    },
    "A100 SXM4 40GB": {
        "tflops": {"fp64": 9.7, "fp64_tc": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312,
                   "fp16": 312, "int8": 624},
        "tbps": 1.555,
        "source": (f"{_A100_DS}; A100 40GB SXM: HBM2 1,555 GB/s (2020 A100 40GB datasheet). "
                   "'NVIDIA A100-PG509-200' (the A100 SXM4 board Meta's HTA traces show, 108 SMs, "
                   "40 GB) is taken as this part"),
    },
    "A100 PCIe 40GB": {
        "tflops": {"fp64": 9.7, "fp64_tc": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312,
                   "fp16": 312, "int8": 624},
        "tbps": 1.555,
        "source": f"{_A100_DS}; A100 40GB PCIe: HBM2 1,555 GB/s (2020 A100 40GB datasheet)",
    },
    "A100 PCIe 80GB": {
        "tflops": {"fp64": 9.7, "fp64_tc": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312,
                   "fp16": 312, "int8": 624},
        "tbps": 1.935,
        "source": f"{_A100_DS}; A100 80GB PCIe: HBM2e 1,935 GB/s",
    },
    "L40S": {
        "tflops": {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05, "fp8": 733,
                   "int8": 733},
        "tbps": 0.864,
        "source": ("NVIDIA L40S GPU datasheet, https://www.nvidia.com/en-us/data-center/l40s/ "
                   "(2023): FP32 91.6, TF32 183 | 366*, BF16/FP16 362.05 | 733*, FP8 733 | "
                   "1,466*, INT8 733 | 1,466* (dense | '*with sparsity'; dense used), GDDR6 "
                   "864 GB/s; no FP64 figure is given"),
    },
    "L4": {
        "tflops": {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121, "fp8": 242.5,
                   "int8": 242.5},
        "tbps": 0.3,
        "source": ("NVIDIA L4 Tensor Core GPU datasheet, https://www.nvidia.com/en-us/data-center/l4/ "
                   "(2023): FP32 30.3, GDDR6 300 GB/s; TF32 120*, BF16/FP16 242*, FP8/INT8 485* "
                   "are 'with sparsity' and halved; no FP64 figure is given"),
    },
    "V100 SXM2": {
        "tflops": {"fp64": 7.8, "fp32": 15.7, "fp16": 125},
        "tbps": 0.9,
        "source": f"{_V100_DS}; V100 for NVLink (SXM2): FP64 7.8, FP32 15.7, Tensor 125, HBM2 900 GB/s",
    },
    "V100 PCIe": {
        "tflops": {"fp64": 7, "fp32": 14, "fp16": 112},
        "tbps": 0.9,
        "source": f"{_V100_DS}; V100 for PCIe: FP64 7, FP32 14, Tensor 112, HBM2 900 GB/s",
    },
    "V100S PCIe": {
        "tflops": {"fp64": 8.2, "fp32": 16.4, "fp16": 130},
        "tbps": 1.134,
        "source": f"{_V100_DS}; V100S for PCIe: FP64 8.2, FP32 16.4, Tensor 130, HBM2 1,134 GB/s",
    },
    "V100 DGXS": {
        "tflops": {"fp64": 7.8, "fp32": 15.7, "fp16": 125},
        "tbps": 0.9,
        "source": (f"{_V100_DS}; the DGX Station's NVLink V100 ('V100-DGXS') is the SXM2-class "
                   "GV100 at the same boost clock: the V100 SXM2 figures (FP64 7.8, FP32 15.7, "
                   "Tensor 125, 900 GB/s). The DGX Station datasheet's '480 TFLOPS FP16' for 4 "
                   "GPUs (120 each) is the pre-launch Volta clock"),
    },
    # ---- AMD Instinct ------------------------------------------------------------------
    "MI300X": {
        "tflops": {"fp64": 81.7, "fp64_tc": 163.4, "fp32": 163.4, "tf32": 653.7,
                   "bf16": 1307.4, "fp16": 1307.4, "fp8": 2614.9, "int8": 2614.9},
        "tbps": 5.3,
        "source": ("AMD Instinct MI300X accelerator data sheet / specifications, "
                   "https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html "
                   "(2024): FP64 vector 81.7, FP64 matrix 163.4, FP32 163.4, TF32 653.7, "
                   "FP16/BF16 1,307.4, FP8 2,614.9, INT8 2,614.9 (dense; AMD lists the "
                   "structured-sparsity figures, twice these, apart), HBM3 192 GB 5.3 TB/s"),
    },
    "MI325X": {
        "tflops": {"fp64": 81.7, "fp64_tc": 163.4, "fp32": 163.4, "tf32": 653.7,
                   "bf16": 1307.4, "fp16": 1307.4, "fp8": 2614.9, "int8": 2614.9},
        "tbps": 6.0,
        "source": ("AMD Instinct MI325X accelerator data sheet / specifications, "
                   "https://www.amd.com/en/products/accelerators/instinct/mi300/mi325x.html "
                   "(Oct 2024): same CDNA 3 compute as MI300X (dense: FP64 81.7 / matrix 163.4, "
                   "FP32 163.4, TF32 653.7, FP16/BF16 1,307.4, FP8/INT8 2,614.9), HBM3E 256 GB "
                   "6 TB/s"),
    },
    "MI355X": {
        "tflops": {"fp64": 78.6, "fp64_tc": 78.6, "fp32": 157.3, "bf16": 2516.6,
                   "fp16": 2516.6, "fp8": 5033.2, "int8": 5033.2},
        "tbps": 8.0,
        "source": ("AMD Instinct MI355X specifications, "
                   "https://www.amd.com/en/products/accelerators/instinct/mi350/mi355x.html "
                   "(Jun 2025): FP64 vector and matrix 78.6, FP32 157.3, FP16/BF16 2.5 PF "
                   "(2,516.6), FP8 and INT8 5.0 P (5,033.2) dense (AMD lists sparsity apart), "
                   "HBM3E 288 GB 8 TB/s; CDNA 4 has no TF32 (XF32) matrix instructions, so no "
                   "tf32 figure"),
    },
    "MI250X": {
        "tflops": {"fp64": 23.95, "fp64_tc": 47.85, "fp32": 23.95, "bf16": 191.5,
                   "fp16": 191.5, "int8": 191.5},
        "tbps": 1.6384,
        "source": ("AMD Instinct MI250X data sheet, "
                   "https://www.amd.com/en/products/accelerators/instinct/mi200/mi250x.html "
                   "(2021), per OAM package: FP64 vector 47.9, FP64 matrix 95.7, FP32 vector "
                   "47.9 (matrix 95.7), FP16/BF16 383, INT8 383 TOPS, HBM2e 3.2768 TB/s (no "
                   "sparsity, no TF32, no FP8). Halved here: ROCm and PyTorch expose each of "
                   "the package's two GCDs as a device of its own"),
    },
}

#: The table: key -> :class:`Peaks` (read it, do not change it).
TABLE: dict[str, Peaks] = {
    key: Peaks(key, {c: float(v) for c, v in e["tflops"].items()}, float(e["tbps"]),
               e["source"])
    for key, e in _TABLE_SRC.items()
}

#: Whole-name rules on the normalised ``deviceProperties`` name (lower case, vendor prefix
#: dropped, ``-``/``_`` as spaces, single spaces), most specific first; the first that
#: matches the whole name wins. A name no rule matches is unknown (None).
NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"h100 pcie( 80gb)?", "H100 PCIe"),
    (r"h100 nvl( 94gb)?", "H100 NVL"),
    (r"h100 80gb hbm3|h100 sxm5 80gb", "H100 SXM"),
    (r"h800 pcie( 80gb)?", "H800 PCIe"),
    (r"h800( 80gb hbm3)?", "H800 SXM"),
    (r"h200 nvl", "H200 NVL"),
    (r"h200", "H200 SXM"),
    (r"h20", "H20"),
    (r"gb200", "GB200"),
    (r"b200", "B200"),
    (r"a100 sxm4? 80gb", "A100 SXM4 80GB"),
    (r"a100 sxm4? 40gb", "A100 SXM4 40GB"),
    (r"a100 pg509 200", "A100 SXM4 40GB"),
    (r"a100 80gb pcie|a100 pcie 80gb", "A100 PCIe 80GB"),
    (r"a100 pcie 40gb|a100 40gb pcie", "A100 PCIe 40GB"),
    (r"l40s", "L40S"),
    (r"l4", "L4"),
    (r"v100s pcie 32gb", "V100S PCIe"),
    (r"v100 sxm2 (16|32)gb", "V100 SXM2"),
    (r"v100 pcie (16|32)gb", "V100 PCIe"),
    (r"v100 dgxs (16|32)gb", "V100 DGXS"),
    (r"mi355x", "MI355X"),
    (r"mi325x", "MI325X"),
    (r"mi300x", "MI300X"),
    (r"mi250x", "MI250X"),
)
_RULES = tuple((re.compile(p), k) for p, k in NAME_RULES)
_PREFIXES = ("nvidia ", "tesla ", "amd instinct ", "amd radeon instinct ", "amd ")
_TABLE_LOWER = {k.casefold(): k for k in TABLE}


def _norm(name: str) -> str:
    s = re.sub(r"[-_\s]+", " ", name.casefold()).strip()
    for p in _PREFIXES:
        if s.startswith(p):
            s = s[len(p):]
            break
    return s


def match_device(name: str) -> str | None:
    """The table key a ``deviceProperties`` name is (or a table key itself, any case);
    None when no rule covers the whole name."""
    if not isinstance(name, str) or not name.strip():
        return None
    key = _TABLE_LOWER.get(name.strip().casefold())
    if key is not None:
        return key
    s = _norm(name)
    for rx, key in _RULES:
        if rx.fullmatch(s):
            return key
    return None


_OVERRIDE_KEYS = frozenset(CLASSES) | {"tbps"}


def _checked(overrides: dict) -> dict[str, dict[str, Any]]:
    """The ``[peaks]`` table, validated: lower-cased device key -> its values."""
    if not isinstance(overrides, dict):
        raise ValueError(f"peaks: the [peaks] table must be a table of devices, "
                         f"not {type(overrides).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for dev, vals in overrides.items():
        if not isinstance(dev, str) or not dev.strip():
            raise ValueError(f"peaks: device name {dev!r} is not a name")
        if not isinstance(vals, dict):
            raise ValueError(f"peaks.{dev!r}: must be a table of figures "
                             f"(e.g. bf16 = 989.4, tbps = 3.35), not {type(vals).__name__}")
        for k, v in vals.items():
            if k == "source":
                if not isinstance(v, str):
                    raise ValueError(f"peaks.{dev!r}.source: must be a string")
                continue
            if k not in _OVERRIDE_KEYS:
                raise ValueError(f"peaks.{dev!r}.{k}: unknown key (known: "
                                 f"{', '.join(CLASSES)}, tbps, source)")
            if (isinstance(v, bool) or not isinstance(v, (int, float))
                    or not math.isfinite(v) or v <= 0):
                raise ValueError(f"peaks.{dev!r}.{k}: must be a number > 0, got {v!r}")
        out[dev.strip().casefold()] = vals
    return out


def _apply(base: Peaks, vals: dict[str, Any]) -> Peaks:
    tflops = dict(base.tflops)
    tbps = base.tbps
    changed = []
    for k, v in vals.items():
        if k == "tbps":
            tbps = float(v)
        elif k != "source":
            tflops[k] = float(v)
        if k != "source":
            changed.append(k)
    source = vals.get("source") or base.source
    if changed and "source" not in vals:
        source = f"{source}; overridden in config: {', '.join(changed)}"
    return Peaks(base.device, tflops, tbps, source)


def device_peaks(name: str, overrides: dict | None = None) -> Peaks | None:
    """The peaks of the device a ``deviceProperties`` name (or a table key) is, with the
    config's ``[peaks]`` entries for it applied (keyed by that name or by the table key,
    any case; the name's entry last); None when neither the table nor the config knows it.
    Raises ValueError on a bad ``[peaks]`` value (any device's, so a typo surfaces)."""
    ov = _checked(overrides) if overrides else {}
    key = match_device(name)
    if key is not None:
        got = TABLE[key]
        peaks = Peaks(got.device, dict(got.tflops), got.tbps, got.source)
        for k in dict.fromkeys((key.casefold(), name.strip().casefold())):
            if k in ov:
                peaks = _apply(peaks, ov[k])
        return peaks
    if not isinstance(name, str) or not name.strip():
        return None
    vals = ov.get(name.strip().casefold())
    if vals is None:
        return None
    if "tbps" not in vals or not any(c in vals for c in CLASSES):
        raise ValueError(f"peaks.{name.strip()!r}: a device the table lacks needs tbps and at "
                         f"least one of {', '.join(CLASSES)}")
    tflops = {c: float(vals[c]) for c in CLASSES if c in vals}
    return Peaks(name.strip(), tflops, float(vals["tbps"]), str(vals.get("source") or "config"))


_DTYPES: dict[str, str] = {
    "float": "fp32", "float32": "fp32", "fp32": "fp32",
    "double": "fp64", "float64": "fp64", "fp64": "fp64",
    "bfloat16": "bf16", "bf16": "bf16",
    "half": "fp16", "float16": "fp16", "fp16": "fp16",
    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8",
    "float8_e5m2fnuz": "fp8", "fp8": "fp8",
    "signed char": "int8", "int8": "int8", "char": "int8", "qint8": "int8",
    "unsigned char": "int8", "uint8": "int8", "byte": "int8", "quint8": "int8",
}


def dtype_class(input_type: str, tensor_cores: bool | None = None) -> str | None:
    """The dtype class of a PyTorch ``Input type`` string ("float", "c10::BFloat16",
    "c10::Half", "double", "c10::Float8_e4m3fn", "signed char", ... or "BFloat16", "Half",
    "Float", "torch.float16"). ``tensor_cores``: the kernels ran on Tensor Cores — float32
    then means TF32, float64 FP64 Tensor Core (:func:`peak_tflops` falls back where a device
    lacks it). Other integer widths, bool, complex, fp4, scalars: None."""
    if not isinstance(input_type, str):
        return None
    s = input_type.strip().casefold()
    for p in ("c10::", "torch.", "at::"):
        if s.startswith(p):
            s = s[len(p):]
    cls = _DTYPES.get(s)
    if cls is None:
        return None
    if tensor_cores:
        if cls == "fp32":
            return "tf32"
        if cls == "fp64":
            return "fp64_tc"
    return cls


_FALLBACK = {"tf32": "fp32", "fp64_tc": "fp64"}


def peak_tflops(peaks: Peaks, cls: str) -> float | None:
    """The dense peak (TFLOP/s, TOPS for int8) of a dtype class on a device; ``tf32`` falls
    back to ``fp32`` and ``fp64_tc`` to ``fp64`` where the device has no such figure (V100,
    MI250X, MI355X: float32 matmuls at the FP32 rate); None where it has neither."""
    if peaks is None or not isinstance(cls, str):
        return None
    v = peaks.tflops.get(cls)
    if v is None and cls in _FALLBACK:
        v = peaks.tflops.get(_FALLBACK[cls])
    return v if v is not None and v > 0 else None
