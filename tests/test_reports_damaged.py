"""Reports of many ranks never take a job down (issue 31): a report with a field of the wrong
kind is named on stderr and left out, the other ranks shown, in ``summary``, ``diff DIR_A
DIR_B`` and ``tracetui DIR``; two files of one rank and two jobs of different ranks are
said; busy % is of the time a rank's GPUs had."""

from __future__ import annotations

import copy
import json
import os
import random
import sys
from pathlib import Path

import pytest

from tracetui.analysis.diff import compare, compare_ranks
from tracetui.analysis.ranks import summarize_ranks
from tracetui.analysis.report import analyze, read_report
from tracetui.cli import main
from tracetui.output import write_json
from tracetui.trace import TraceError, load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from make_ranks import make_ranks  # noqa: E402

#: each damage of the issue, and more: (name, what it does to a report)
DAMAGES = {
    "annotations_null": lambda r: r.update(annotations=None),
    "overlap_empty_row": lambda r: r.update(overlap=[{}]),
    "overlap_null": lambda r: r.update(overlap=None),
    "exposed_null": lambda r: r["overlap"][0].update(exposed_comm_us=None),
    "span_text": lambda r: r.update(span_ns="abc"),
    "events_float": lambda r: r.update(events=1.5),
    "events_bool": lambda r: r.update(events=True),
    "span_infinite": lambda r: r.update(span_ns=1e400),
    "devices_text": lambda r: r.update(devices="0"),
    "device_text": lambda r: r["overlap"][0].update(device="GPU 0"),
    "file_number": lambda r: r.update(file=7),
    "annotation_name_null": lambda r: r["annotations"][0].update(name=None),
    "annotation_total_text": lambda r: r["annotations"][0].update(total_us="12"),
    "annotation_row_list": lambda r: r["annotations"].append([1, 2]),
    "kernels_object": lambda r: r.update(kernels={"a": 1}),
    "kernel_count_text": lambda r: r["kernels"][0].update(count="7"),
    "kernel_total_null": lambda r: r["kernels"][0].update(total_us=None),
    "group_name_missing": lambda r: r["kernel_groups"][0].pop("short_name"),
    "distributed_info_list": lambda r: r.update(distributed_info=[0]),
    "warnings_numbers": lambda r: r.update(warnings=[1]),
    "size_text": lambda r: r.update(size_bytes="big"),
    "comm_huge": lambda r: r["overlap"][0].update(comm_us=9.3e18),
}


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    """Four ranks' traces, rank 2 slowed, and their reports."""
    d = tmp_path_factory.mktemp("job")
    make_ranks(str(d / "traces"), 4, slow_rank=2, slow=1.3, mb=0)
    (d / "reports").mkdir()
    for r in range(4):  # what summary --json writes
        with open(d / "reports" / f"{r}.json", "w") as out:
            write_json(analyze(load(str(d / "traces" / f"rank-{r}.json"))), out)
    return d


def _report(job: Path, r: int) -> dict:
    return json.loads((job / "reports" / f"{r}.json").read_text())


def _damaged_dir(job: Path, tmp: Path, damage: str) -> Path:
    """The job's reports, rank 1's damaged."""
    d = tmp / f"dmg-{damage}"
    d.mkdir()
    for r in range(4):
        rep = _report(job, r)
        if r == 1:
            DAMAGES[damage](rep)
        (d / f"{r}.json").write_text(json.dumps(rep))
    return d


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_report_is_named_and_left_out(job, tmp_path, capsys, damage):
    d = _damaged_dir(job, tmp_path, damage)
    with pytest.raises(TraceError, match=r"1\.json: a damaged tracetui report \(") as e:
        read_report(str(d / "1.json"))
    assert "\n" not in str(e.value)
    # summary DIR: the other three ranks
    assert main(["summary", str(d), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["rank"] for r in json.loads(out)["ranks"]] == [0, 2, 3]
    assert f"skipped {d / '1.json'}: a damaged tracetui report" in err
    assert "Traceback" not in err and "internal error" not in err
    assert main(["summary", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "3 ranks, ms" in out and "1.json: a damaged tracetui report" in err
    # diff DIR_A DIR_B, either side damaged
    for a, b in ((d, job / "reports"), (job / "reports", d)):
        assert main(["diff", str(a), str(b), "--json"]) == 0
        out, err = capsys.readouterr()
        got = json.loads(out)
        assert [r["rank"] for r in got["ranks"]] == [0, 1, 2, 3]
        assert {r["rank"]: r["in"] for r in got["ranks"]}[1] == ("new" if a == d else "base")
        assert got["kernel_ranks"] == 3 and any("1 rank in the" in w for w in got["warnings"])
        assert "1.json: a damaged tracetui report" in err and "internal error" not in err
    # diff of two reports, one damaged: that one named, one line, status 2
    assert main(["diff", str(d / "0.json"), str(d / "1.json"), "--text"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1.json: a damaged tracetui report" in err[0]


async def test_the_app_opens_a_job_with_a_damaged_report(job, tmp_path):
    """tracetui DIR of reports: the rank view of the others, the damaged one named."""
    from tracetui.app.app import TraceApp
    from tracetui.app.ranks import RanksScreen

    for damage in ("annotations_null", "overlap_empty_row", "span_text"):
        d = _damaged_dir(job, tmp_path, damage)
        # the reports' traces: where they were made (absolute paths in the reports)
        app = TraceApp(f"{d.name} (4 ranks)", ranks=[str(d / f"{r}.json") for r in range(4)])
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(600):
                if app.session.holds is not None or app.error:
                    break
                await pilot.pause(0.05)
            assert app.error is None and isinstance(app.screen, RanksScreen), app.error
            assert [r["rank"] for r in app.session.rank_summary["ranks"]] == [0, 2, 3]
            assert any("1.json: a damaged tracetui report" in n.message
                       for n in app._notifications)
            await pilot.press("q")
            for _ in range(100):  # (a busy machine: the key takes its time)
                if app.return_code is not None:
                    break
                await pilot.pause(0.05)
        assert app.return_code == 0


def _mutations(rep: dict, rng: random.Random):
    """A report with one value somewhere (any depth) replaced by one of another kind."""
    odd = [None, "x", "", 1.5, -1, 2 ** 70, 1e400, True, [], {}, [None], {"a": None}]
    paths = []

    def walk(v, path):
        paths.append(path)
        if isinstance(v, dict):
            for k in list(v)[:40]:
                walk(v[k], path + (k,))
        elif isinstance(v, list):
            for i in range(min(len(v), 3)):
                walk(v[i], path + (i,))

    walk(rep, ())
    for _ in range(500):  # (the more fields a report has, the fewer draws hit a checked one)
        path = rng.choice(paths[1:])
        r = copy.deepcopy(rep)
        at = r
        for k in path[:-1]:
            at = at[k]
        at[path[-1]] = rng.choice(odd)
        yield path, r


def test_any_field_of_any_kind_is_refused_or_used(job, tmp_path):
    """Whatever one value of a report becomes, the report is refused with one line, or the
    rank figures, the summary of ranks and both diffs take it."""
    rng = random.Random(31)
    good = [_report(job, r) for r in range(4)]
    refused = used = 0
    for path, rep in _mutations(good[1], rng):
        f = tmp_path / "m.json"
        f.write_text(json.dumps(rep))
        try:
            got = read_report(str(f))
        except TraceError as e:
            assert "\n" not in str(e) and "damaged" in str(e) or "without" in str(e), e
            refused += 1
            continue
        if got is None:  # its "schema" is gone: no report at all (then read as a trace)
            assert path == ("schema",), path
            refused += 1
            continue
        used += 1
        items = [("0.json", good[0]), ("m.json", got), ("2.json", good[2])]
        s = summarize_ranks(items)
        assert len(s["ranks"]) == 3, path
        compare(good[0], got)
        compare(got, good[0])
        compare_ranks(items, [("0.json", good[0]), ("2.json", good[2])])
        json.dumps(s, allow_nan=False)  # every figure a JSON number
    assert refused > 50 and used > 50, (refused, used)


def test_busy_percent_is_of_the_time_the_ranks_gpus_had(tmp_path, capsys):
    """A rank of two GPUs busy most of the time is under 100 % (it read 198 %)."""
    d = tmp_path / "two"
    d.mkdir()
    two = ROOT / "sample_traces" / "prefill.json.gz"  # 2 GPUs
    (d / "rank-0.json.gz").write_bytes(two.read_bytes())
    (d / "rank-1.json").write_bytes((ROOT / "sample_traces" / "annotated.json").read_bytes())
    assert main(["summary", str(d), "--json"]) == 0
    rows = {os.path.basename(r["file"]): r for r in json.loads(capsys.readouterr().out)["ranks"]}
    assert main(["summary", str(two), "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    r0 = rows["rank-0.json.gz"]
    assert len(r0["devices"]) == 2 and r0["gpu_busy_pct"] <= 100
    # busy per GPU from the raw JSON: each GPU's kernels' union, over the span, averaged
    import gzip

    evs = json.loads(gzip.decompress(two.read_bytes()))["traceEvents"]
    busy = 0.0
    for dev in r0["devices"]:
        ivs = sorted((e["ts"], e["ts"] + e["dur"]) for e in evs
                     if e.get("ph") == "X" and e.get("cat") == "kernel" and e["pid"] == dev)
        end = float("-inf")
        for a, b in ivs:
            if b > end:
                busy += b - max(a, end)
                end = b
    span_us = own["span_ns"] / 1000
    assert r0["gpu_busy_us"] == pytest.approx(busy, rel=1e-6, abs=0.01)
    assert r0["gpu_busy_pct"] == pytest.approx(100 * busy / (2 * span_us), abs=0.01)


def test_two_jobs_of_different_ranks_compare_kernels_over_the_ranks_both_have(job, tmp_path,
                                                                             capsys):
    seven = tmp_path / "three"
    seven.mkdir()
    for r in (0, 1, 2):
        (seven / f"rank-{r}.json").write_bytes((job / "traces" / f"rank-{r}.json").read_bytes())
    assert main(["diff", str(job / "traces"), str(seven), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the same files on both sides for ranks 0-2: no kernel changed
    assert out["kernel_ranks"] == 3
    assert all(k["delta_total_us"] == 0 and k["delta_count"] == 0 for k in out["kernels"])
    assert out["warnings"] == ["1 rank in the base job only (3): left out of the kernels over "
                               "all ranks, which compare the 3 ranks both jobs have"]
    assert main(["diff", str(job / "traces"), str(seven)]) == 0
    text = capsys.readouterr().out
    assert "kernels over the 3 ranks both jobs have" in text


async def test_two_files_of_one_rank_are_two_ranks_in_the_app(job, tmp_path):
    """Both rows said ● shown and ⏎ on the second went to the first file's lanes."""
    from tracetui.app.app import TraceApp

    d = tmp_path / "twice"
    d.mkdir()
    for name, r in (("a-rank-0.json", 0), ("b-rank-0.json", 2), ("c-rank-1.json", 1)):
        data = json.loads((job / "traces" / f"rank-{r}.json").read_text())
        data.setdefault("distributedInfo", {})["rank"] = 0 if name != "c-rank-1.json" else 1
        (d / name).write_text(json.dumps(data))
    files = sorted(str(p) for p in d.iterdir())
    app = TraceApp("twice (3 ranks)", ranks=files)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(600):
            if app.session.rank_summary is not None or app.error:
                break
            await pilot.pause(0.05)
        assert app.error is None
        ranks = sorted(set(app.trace.rank_of_lane))
        assert ranks == [0, 1, 2]  # b-rank-0.json: its own rank, after the highest
        assert any(n.message == "rank 0 appears twice: b-rank-0.json is shown as rank 2 "
                   "(a-rank-0.json is rank 0)" for n in app._notifications)
        rows = {r["rank"]: os.path.basename(r["file"])
                for r in app.session.rank_summary["ranks"]}
        assert rows == {0: "a-rank-0.json", 1: "c-rank-1.json", 2: "b-rank-0.json"}
        await pilot.press("q")
        await pilot.pause(0.3)
    # opened on demand (more ranks than held): the rank view's rows and ⏎ tell them apart
    app = TraceApp("twice (3 ranks)", ranks=files, max_ranks=2)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(600):
            if app.session.holds is not None or app.error:
                break
            await pilot.pause(0.05)
        assert app.error is None
        holds = app.session.holds
        assert {r: os.path.basename(p) for r, p in holds.paths.items()} == \
            {0: "a-rank-0.json", 1: "c-rank-1.json", 2: "b-rank-0.json"}
        assert any(n.message.startswith("rank 0 appears twice: b-rank-0.json is shown as "
                                        "rank 2") for n in app._notifications)
        await pilot.press("q")
        await pilot.pause(0.3)
