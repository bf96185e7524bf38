"""The committed sample traces are exactly what the generator makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generator_reproduces_committed_samples(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "sample_traces" / "generate.py"),
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("annotated.json", "prefill.json.gz"):
        assert (tmp_path / name).read_bytes() == (ROOT / "sample_traces" / name).read_bytes(), name


def test_samples_are_small():
    for p in (ROOT / "sample_traces").iterdir():
        if p.suffix in (".json", ".gz"):
            assert p.stat().st_size < 2_000_000, p.name
