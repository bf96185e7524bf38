"""The peaks table (tracetui.analysis.peaks): dense datasheet figures, each with its source;
deviceProperties names matched by explicit rules (unknown -> None, never a guess); the
config's [peaks] overrides; PyTorch "Input type" strings to dtype classes."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from tracetui.analysis.peaks import (CLASSES, NAME_RULES, TABLE, Peaks, device_peaks,
                                     dtype_class, match_device, peak_tflops)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"


# --- the table --------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(TABLE))
def test_every_entry_is_whole(key):
    p = TABLE[key]
    assert p.device == key
    assert p.tflops, key
    assert set(p.tflops) <= set(CLASSES), set(p.tflops) - set(CLASSES)
    for cls, v in p.tflops.items():
        assert isinstance(v, float) and math.isfinite(v) and v > 0, (key, cls, v)
    assert isinstance(p.tbps, float) and 0.1 < p.tbps < 20, (key, p.tbps)  # TB/s, not GB/s
    assert isinstance(p.source, str) and len(p.source.strip()) > 20, key
    # names where the datasheet is (the H20 has none in public, and says so)
    assert "http" in p.source or "no datasheet on" in p.source, key
    assert "fp32" in p.tflops and ("bf16" in p.tflops or "fp16" in p.tflops), key


@pytest.mark.parametrize("key", sorted(TABLE))
def test_figures_are_ordered_as_hardware_is(key):
    """Lower precision is never slower on the matrix units; Tensor Core FP64 never below
    vector FP64; TF32 above vector FP32 (the dense TF32 is half of BF16)."""
    t = TABLE[key].tflops
    if "fp8" in t:
        assert t["fp8"] >= t.get("bf16", 0), key
    if "bf16" in t and "fp16" in t:
        assert t["bf16"] == t["fp16"], key
    if "fp64_tc" in t:
        assert t["fp64_tc"] >= t["fp64"], key
    if "tf32" in t:
        assert t["fp32"] < t["tf32"] <= t.get("bf16", t["fp16"]) / 2 * 1.02, key
    assert t.get("bf16", t.get("fp16", 0)) > t["fp32"], key


# What the datasheets print "with sparsity" (or the package figure, for the MI250X): a dense
# entry must be at most half of it, so none of these may appear as a figure.
SPARSE = {
    "H100 SXM": {"bf16": 1979, "fp16": 1979, "fp8": 3958, "int8": 3958, "tf32": 989},
    "H100 PCIe": {"bf16": 1513, "fp16": 1513, "fp8": 3026, "int8": 3026, "tf32": 756},
    "H100 NVL": {"bf16": 1671, "fp16": 1671, "fp8": 3341, "int8": 3341, "tf32": 835},
    "H800 SXM": {"bf16": 1979, "fp8": 3958, "tf32": 989},
    "H800 PCIe": {"bf16": 1513, "fp8": 3026, "tf32": 756},
    "H200 SXM": {"bf16": 1979, "fp8": 3958, "tf32": 989},
    "H200 NVL": {"bf16": 1671, "fp8": 3341, "tf32": 835},
    "B200": {"bf16": 4500, "fp8": 9000, "int8": 9000, "tf32": 2200},
    "GB200": {"bf16": 5000, "fp8": 10000, "int8": 10000, "tf32": 2500},
    "A100 SXM4 80GB": {"bf16": 624, "fp16": 624, "int8": 1248, "tf32": 312},
    "A100 SXM4 40GB": {"bf16": 624, "int8": 1248, "tf32": 312},
    "A100 PCIe 40GB": {"bf16": 624, "int8": 1248, "tf32": 312},
    "A100 PCIe 80GB": {"bf16": 624, "int8": 1248, "tf32": 312},
    "L40S": {"bf16": 733, "fp8": 1466, "int8": 1466, "tf32": 366},
    "L4": {"bf16": 242, "fp8": 485, "int8": 485, "tf32": 120},
    "MI300X": {"bf16": 2614.9, "fp8": 5229.8, "int8": 5229.8, "tf32": 1307.4},
    "MI325X": {"bf16": 2614.9, "fp8": 5229.8, "int8": 5229.8, "tf32": 1307.4},
    "MI355X": {"bf16": 5033.2, "fp8": 10066.3},
    "MI250X": {"bf16": 383, "fp64_tc": 95.7, "fp64": 47.9},
}


@pytest.mark.parametrize("key", sorted(SPARSE))
def test_dense_not_sparse(key):
    t = TABLE[key].tflops
    for cls, sparse in SPARSE[key].items():
        assert cls in t, (key, cls)
        assert t[cls] <= sparse / 2 + 0.51, (key, cls, t[cls], sparse)
        assert t[cls] >= sparse / 2 * 0.98, (key, cls, t[cls], sparse)  # and not far below


def test_sparse_notes_where_halved():
    for key in ("H100 SXM", "H100 PCIe", "H800 SXM", "H200 SXM", "B200", "GB200", "L4"):
        assert "sparsity" in TABLE[key].source and "halved" in TABLE[key].source, key


def test_no_known_wrong_figures():
    # torch's device_info lists the H100's sparse BF16 as dense; TraceLens lists measured
    # "max achievable" MI300X figures. Neither may be here.
    assert TABLE["H100 SXM"].tflops["bf16"] != 1979
    assert TABLE["H100 SXM"].tflops["bf16"] == pytest.approx(989.4)


# Figures checked by hand against the datasheets (issue 34's list, verified).
EXACT = {
    ("H100 SXM", "bf16"): 989.4, ("H100 SXM", "fp8"): 1978.9, ("H100 SXM", "tf32"): 494.7,
    ("H100 SXM", "fp32"): 67, ("H100 SXM", "fp64"): 34, ("H100 SXM", "fp64_tc"): 67,
    ("H100 SXM", "tbps"): 3.35,
    ("H100 PCIe", "bf16"): 756, ("H100 PCIe", "tbps"): 2.0,
    ("H800 SXM", "bf16"): 989.4, ("H800 SXM", "fp64"): 1, ("H800 SXM", "tbps"): 3.35,
    ("H200 SXM", "bf16"): 989.4, ("H200 SXM", "tbps"): 4.8,
    ("A100 SXM4 80GB", "bf16"): 312, ("A100 SXM4 80GB", "tf32"): 156,
    ("A100 SXM4 80GB", "fp32"): 19.5, ("A100 SXM4 80GB", "fp64_tc"): 19.5,
    ("A100 SXM4 80GB", "tbps"): 2.039, ("A100 SXM4 40GB", "tbps"): 1.555,
    ("A100 PCIe 80GB", "tbps"): 1.935,
    ("MI300X", "bf16"): 1307.4, ("MI300X", "fp8"): 2614.9, ("MI300X", "tf32"): 653.7,
    ("MI300X", "fp32"): 163.4, ("MI300X", "fp64"): 81.7, ("MI300X", "fp64_tc"): 163.4,
    ("MI300X", "tbps"): 5.3,
    ("MI325X", "bf16"): 1307.4, ("MI325X", "tbps"): 6.0,
    ("V100 SXM2", "fp16"): 125, ("V100 SXM2", "tbps"): 0.9,
}


@pytest.mark.parametrize("key,cls", sorted(EXACT))
def test_exact_figures(key, cls):
    p = TABLE[key]
    got = p.tbps if cls == "tbps" else p.tflops[cls]
    assert got == pytest.approx(EXACT[(key, cls)])


def test_absent_classes_stay_absent():
    assert "fp8" not in TABLE["A100 SXM4 80GB"].tflops  # Ampere has no FP8
    assert "bf16" not in TABLE["V100 SXM2"].tflops and "tf32" not in TABLE["V100 SXM2"].tflops
    assert "tf32" not in TABLE["MI250X"].tflops and "fp8" not in TABLE["MI250X"].tflops


# --- matching ---------------------------------------------------------------------------

NAMES = {
    "NVIDIA H100 80GB HBM3": "H100 SXM",
    "NVIDIA H100 PCIe": "H100 PCIe",
    "NVIDIA H100 NVL": "H100 NVL",
    "NVIDIA H800": "H800 SXM",
    "NVIDIA H800 PCIe": "H800 PCIe",
    "NVIDIA H200": "H200 SXM",
    "NVIDIA H200 NVL": "H200 NVL",
    "NVIDIA H20": "H20",
    "NVIDIA B200": "B200",
    "NVIDIA GB200": "GB200",
    "NVIDIA A100-SXM4-80GB": "A100 SXM4 80GB",
    "NVIDIA A100-SXM4-40GB": "A100 SXM4 40GB",
    "NVIDIA A100-PCIE-40GB": "A100 PCIe 40GB",
    "NVIDIA A100 80GB PCIe": "A100 PCIe 80GB",
    "NVIDIA A100-PG509-200": "A100 SXM4 40GB",
    "NVIDIA L40S": "L40S",
    "NVIDIA L4": "L4",
    "Tesla V100-SXM2-32GB": "V100 SXM2",
    "Tesla V100-SXM2-16GB": "V100 SXM2",
    "Tesla V100-PCIE-16GB": "V100 PCIe",
    "Tesla V100-DGXS-32GB": "V100 DGXS",
    "Tesla V100S-PCIE-32GB": "V100S PCIe",
    "AMD Instinct MI300X": "MI300X",
    "AMD Instinct MI325X": "MI325X",
    "AMD Instinct MI355X": "MI355X",
    "AMD Instinct MI250X": "MI250X",
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_names_map(name):
    assert match_device(name) == NAMES[name]
    p = device_peaks(name)
    assert p is not None and p.device == NAMES[name]
    assert p.tflops == TABLE[NAMES[name]].tflops


@pytest.mark.parametrize("name", ["nvidia h100 80gb hbm3", "  NVIDIA  H100 80GB HBM3 ",
                                  "NVIDIA_H100_PCIe", "amd instinct mi300x"])
def test_names_case_and_spacing(name):
    assert match_device(name) is not None


UNKNOWN = [
    "NVIDIA H100",                       # SXM, PCIe or NVL: not certain
    "NVIDIA H100 80GB HBM3 MIG 3g.40gb",  # a MIG slice: a fraction of the GPU
    "NVIDIA H100 SXM5 64GB",             # a variant with other memory
    "NVIDIA H200 NVL 2",
    "NVIDIA A100",
    "NVIDIA A100-SXM-64GB",
    "AMD Instinct MI250X / MI250",       # both share the device id; their figures differ
    "AMD Instinct MI250",
    "AMD Instinct MI300A",
    "AMD Radeon Graphics",
    "NVIDIA GeForce RTX 4090",
    "NVIDIA H20X",
    "NVIDIA H800 NVL",
    "NVIDIA L40",                        # not the L40S
    "NVIDIA L4 MIG 1g.6gb",
    "NVIDIA B200X",
    "Tesla V100",
    "",
    "   ",
    "cpu",
]


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_is_none(name):
    assert match_device(name) is None
    assert device_peaks(name) is None


def test_non_string_is_none():
    assert match_device(None) is None  # type: ignore[arg-type]
    assert device_peaks(None) is None  # type: ignore[arg-type]
    assert device_peaks(3) is None  # type: ignore[arg-type]


def test_table_keys_match_themselves():
    for key in TABLE:
        assert match_device(key) == key
        assert match_device(key.lower()) == key


def test_every_rule_reaches_a_table_entry():
    for _pat, key in NAME_RULES:
        assert key in TABLE, key
    reached = set(NAMES.values())
    assert reached == set(TABLE), set(TABLE) - reached  # every entry has a name tested


def test_returned_peaks_are_copies():
    p = device_peaks("NVIDIA H100 80GB HBM3")
    assert p is not None
    p.tflops["bf16"] = 1.0
    assert TABLE["H100 SXM"].tflops["bf16"] == pytest.approx(989.4)


# The deviceProperties names of the real traces: each one mapped, or None on purpose.
TRACE_NAMES: dict[str, str | None] = {
    "NVIDIA H800": "H800 SXM",              # deepseek_train.json (132 SMs: SXM)
    "NVIDIA A100-PG509-200": "A100 SXM4 40GB",  # hta_nccl_data (108 SMs, 40 GB)
    "Tesla V100-SXM2-32GB": "V100 SXM2",     # hta_ns_resolution
    "Tesla V100-DGXS-32GB": "V100 DGXS",     # kineto2021_resnet50
    "AMD Instinct MI300X": "MI300X",         # tracelens_mi300_rccl
}


def _trace_device_names(path: Path) -> set[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            doc = json.load(fh)
    except (OSError, ValueError, EOFError):
        return set()  # not a JSON document (README, a truncated array, ...)
    if not isinstance(doc, dict):
        return set()
    props = doc.get("deviceProperties") or []
    return {p["name"] for p in props if isinstance(p, dict) and isinstance(p.get("name"), str)}


def test_real_trace_device_names():
    if not SHARED.is_dir():
        pytest.skip("../shared/traces not present")
    seen: dict[str, list[str]] = {}
    for path in sorted(SHARED.rglob("*")):
        if path.is_file() and (path.name.endswith(".json") or path.name.endswith(".json.gz")):
            for name in _trace_device_names(path):
                seen.setdefault(name, []).append(path.name)
    assert seen, "no trace under ../shared/traces names its devices"
    for name, files in seen.items():
        assert name in TRACE_NAMES, f"{name!r} ({files}): decide its table entry or None"
        assert match_device(name) == TRACE_NAMES[name], (name, files)
        p = device_peaks(name)
        assert (p is None) == (TRACE_NAMES[name] is None), name
    assert "NVIDIA H800" in seen  # the seed trace is among them


# --- overrides --------------------------------------------------------------------------

def test_override_replaces_by_name():
    p = device_peaks("NVIDIA H800", {"NVIDIA H800": {"bf16": 900, "tbps": 3.0}})
    assert p is not None and p.device == "H800 SXM"
    assert p.tflops["bf16"] == 900.0 and p.tbps == 3.0
    assert p.tflops["fp8"] == pytest.approx(1978.9)  # the rest kept
    assert "config" in p.source and "bf16" in p.source
    assert TABLE["H800 SXM"].tflops["bf16"] == pytest.approx(989.4)  # table untouched


def test_override_key_is_case_insensitive_and_may_be_the_table_key():
    p = device_peaks("NVIDIA H800", {"nvidia h800": {"fp8": 1500}})
    assert p is not None and p.tflops["fp8"] == 1500.0
    p = device_peaks("NVIDIA H800", {"H800 SXM": {"fp8": 1400}})
    assert p is not None and p.tflops["fp8"] == 1400.0
    # both: the exact name's entry wins
    p = device_peaks("NVIDIA H800", {"h800 sxm": {"fp8": 1400, "tbps": 3.1},
                                     "NVIDIA H800": {"fp8": 1500}})
    assert p is not None and p.tflops["fp8"] == 1500.0 and p.tbps == 3.1


def test_override_extends():
    p = device_peaks("NVIDIA A100-SXM4-80GB", {"NVIDIA A100-SXM4-80GB": {"fp8": 624}})
    assert p is not None and p.tflops["fp8"] == 624.0 and p.tflops["bf16"] == 312.0


def test_override_for_another_device_does_not_apply():
    p = device_peaks("NVIDIA H100 80GB HBM3", {"NVIDIA H800": {"bf16": 1}})
    assert p is not None and p.tflops["bf16"] == pytest.approx(989.4)


def test_override_new_device():
    ov = {"NVIDIA RTX 6000 Ada Generation": {"bf16": 364.2, "fp32": 91.1, "tbps": 0.96}}
    p = device_peaks("NVIDIA RTX 6000 Ada Generation", ov)
    assert p == Peaks("NVIDIA RTX 6000 Ada Generation", {"fp32": 91.1, "bf16": 364.2}, 0.96,
                      "config")
    assert device_peaks("nvidia rtx 6000 ada generation", ov) is not None
    assert device_peaks("NVIDIA RTX 5000 Ada Generation", ov) is None
    p = device_peaks("NVIDIA H100", {"NVIDIA H100": {"bf16": 800, "tbps": 3, "source": "mine"}})
    assert p is not None and p.source == "mine" and p.device == "NVIDIA H100"


def test_override_new_device_needs_bandwidth_and_a_figure():
    with pytest.raises(ValueError, match="NVIDIA Foo.*tbps"):
        device_peaks("NVIDIA Foo", {"NVIDIA Foo": {"bf16": 100}})
    with pytest.raises(ValueError, match="NVIDIA Foo"):
        device_peaks("NVIDIA Foo", {"NVIDIA Foo": {"tbps": 1}})


@pytest.mark.parametrize("bad", [0, -1, "900", None, True, float("nan"), float("inf"), [1]])
def test_override_bad_value(bad):
    with pytest.raises(ValueError) as e:
        device_peaks("NVIDIA H800", {"NVIDIA H800": {"bf16": bad}})
    msg = str(e.value)
    assert "NVIDIA H800" in msg and "bf16" in msg and "\n" not in msg


def test_override_bad_value_of_another_device_still_raises():
    with pytest.raises(ValueError, match="NVIDIA L4.*tbps"):
        device_peaks("NVIDIA H800", {"NVIDIA L4": {"tbps": -3}})


def test_override_unknown_key_and_bad_shapes():
    with pytest.raises(ValueError, match="NVIDIA H800.*bf61"):
        device_peaks("NVIDIA H800", {"NVIDIA H800": {"bf61": 900}})
    with pytest.raises(ValueError, match="NVIDIA H800"):
        device_peaks("NVIDIA H800", {"NVIDIA H800": 900})
    with pytest.raises(ValueError):
        device_peaks("NVIDIA H800", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        device_peaks("NVIDIA H800", {"NVIDIA H800": {"source": 3}})


def test_empty_overrides():
    assert device_peaks("NVIDIA H800", {}) == device_peaks("NVIDIA H800")
    assert device_peaks("NVIDIA H800", None) == TABLE["H800 SXM"]


# --- dtype classes ----------------------------------------------------------------------

DTYPES = {
    "float": "fp32", "c10::BFloat16": "bf16", "c10::Half": "fp16", "double": "fp64",
    "c10::Float8_e4m3fn": "fp8", "c10::Float8_e5m2": "fp8", "c10::Float8_e4m3fnuz": "fp8",
    "c10::Float8_e5m2fnuz": "fp8", "signed char": "int8", "unsigned char": "int8",
    "BFloat16": "bf16", "Half": "fp16", "Float": "fp32", "Double": "fp64",
    "Float8_e4m3fn": "fp8", "torch.float16": "fp16", "torch.bfloat16": "bf16",
    "torch.float32": "fp32", " float ": "fp32", "c10::qint8": "int8",
}


@pytest.mark.parametrize("t", sorted(DTYPES))
def test_dtype_class(t):
    assert dtype_class(t) == DTYPES[t]
    assert dtype_class(t, False) == DTYPES[t]


@pytest.mark.parametrize("t", ["int", "long int", "short int", "bool", "c10::complex<float>",
                               "", "Scalar", "ScalarList", "TensorList", "GenericList",
                               "c10::Float8_e8m0fnu", "c10::Float4_e2m1fn_x2", "float32x"])
def test_dtype_class_unknown(t):
    assert dtype_class(t) is None
    assert dtype_class(t, True) is None


def test_dtype_class_non_string():
    assert dtype_class(None) is None  # type: ignore[arg-type]


def test_dtype_class_tensor_cores():
    assert dtype_class("float", True) == "tf32"
    assert dtype_class("float", None) == "fp32"
    assert dtype_class("double", True) == "fp64_tc"
    assert dtype_class("c10::BFloat16", True) == "bf16"
    assert dtype_class("c10::Float8_e4m3fn", True) == "fp8"


def test_peak_tflops():
    h100 = TABLE["H100 SXM"]
    assert peak_tflops(h100, "bf16") == pytest.approx(989.4)
    assert peak_tflops(h100, "tf32") == pytest.approx(494.7)
    assert peak_tflops(h100, "fp64_tc") == pytest.approx(67)
    assert peak_tflops(h100, "fp4") is None
    # a class the device lacks: TF32 and FP64 TC fall back to the plain rate, others None
    v100 = TABLE["V100 SXM2"]
    assert peak_tflops(v100, "tf32") == pytest.approx(15.7)
    assert peak_tflops(v100, "bf16") is None
    assert peak_tflops(TABLE["H20"], "fp64_tc") == pytest.approx(1)
    assert peak_tflops(TABLE["A100 SXM4 80GB"], "fp8") is None
    assert peak_tflops(TABLE["L4"], "fp64") is None
    assert peak_tflops(TABLE["MI355X"], "tf32") == pytest.approx(157.3)


def test_whole_path_from_a_trace_name():
    p = device_peaks("NVIDIA H800")
    assert p is not None
    assert peak_tflops(p, dtype_class("c10::BFloat16")) == pytest.approx(989.4)
    assert peak_tflops(p, dtype_class("float", True)) == pytest.approx(494.7)
    assert peak_tflops(p, dtype_class("double", True)) == pytest.approx(1)
