"""Tables defined once (tracetui.tables): the same definition gives summary's text, --json
and --csv NAME. Every --csv table has the JSON's rows, in the JSON's fields; the text of
every defined table fits the terminal's width."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracetui.cli import main
from tracetui.cli.main import OTHER_CSV
from tracetui.tables import TABLES

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "sample_traces" / "torch" / "ops_cnn.json"
DECODE = ROOT / "sample_traces" / "decode.json"


def _report(path: Path, capsys) -> dict:
    assert main(["summary", str(path), "--json", "--shapes"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", [CNN, DECODE], ids=["cnn", "decode"])
def test_every_csv_table_is_the_reports_rows(path, capsys):
    report = _report(path, capsys)
    for name in [*TABLES, *OTHER_CSV]:
        assert main(["summary", str(path), "--csv", name]) == 0
        got = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        rows = report[name]
        if not rows:
            assert len(got) <= 1, name
            continue
        header, body = got[0], got[1:]
        assert len(body) == len(rows), name
        if name in TABLES:
            assert header == TABLES[name].csv_fields(), name
        for f in header:  # every field is the JSON's, and plain
            assert all(r.get(f) is None or isinstance(r.get(f), (str, int, float))
                       for r in rows), (name, f)
        k = header.index(header[0])
        assert [b[k] for b in body] == [str(r[header[0]]) if r[header[0]] is not None else ""
                                        for r in rows], name


def test_an_unknown_csv_table_is_one_line_and_status_2():
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(DECODE), "--csv",
                          "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "no such table" in out.stderr


@pytest.mark.parametrize("columns", [60, 80, 120, 200])
def test_the_text_of_every_table_fits_the_width(columns):
    env = {**os.environ, "COLUMNS": str(columns)}
    for path, extra in ((CNN, ["--shapes"]), (DECODE, ["--group"])):
        out = subprocess.run([sys.executable, "-m", "tracetui", "summary", str(path), "--top",
                              "0", *extra], capture_output=True, text=True, env=env, check=True)
        for line in out.stdout.splitlines():
            assert len(line) <= columns, (path.name, columns, line)
        for title in ("steps", "operators", "modules") if path == CNN else ("GPU kernels",):
            assert title in out.stdout, (path.name, title)


def test_a_jobs_csv_is_its_rank_rows(capsys):
    """summary A B --csv: the rank table (--csv ranks too), the JSON's rows and fields; any
    other table of a job is one line and status 2."""
    from tracetui.tables import JOB_TABLES

    files = [str(DECODE), str(ROOT / "sample_traces" / "annotated.json")]
    assert main(["summary", *files, "--json"]) == 0
    ranks = json.loads(capsys.readouterr().out)["ranks"]
    for args in (["--csv"], ["--csv", "ranks"]):
        assert main(["summary", *files, *args]) == 0
        got = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        assert got[0] == JOB_TABLES["ranks"].csv_fields() and len(got) == 1 + len(ranks)
        by_file = {r["file"]: r for r in ranks}  # (two traces without a rank: both 0)
        assert sorted(by_file) == sorted(row[got[0].index("file")] for row in got[1:])
        for row in got[1:]:
            r = by_file[row[got[0].index("file")]]
            for f, v in zip(got[0], row):
                want = Path(r["file"]).name if f == "name" else r[f]
                assert v == ("" if want is None else str(want)), (f, v, want)
    out = subprocess.run([sys.executable, "-m", "tracetui", "summary", *files, "--csv",
                          "kernels"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == "" and "ranks" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
