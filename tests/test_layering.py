"""The package's structure as contracts: the layers declared in pyproject.toml (import-linter:
no import cycle in the trace core or the app, type-only imports included; no screen imports
the app shell; the core, the analyses and the session never import textual or rich), and the
trace core's types (mypy)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.exists() else (shutil.which(name) or name)


def test_import_contracts_kept():
    out = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
    for contract in ("the UI's modules, in layers", "no screen, widget or part of the app "
                     "imports the app shell", "the trace core's modules, in layers"):
        assert contract in out.stdout, contract  # still declared, so still checked


def test_trace_core_types():
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
