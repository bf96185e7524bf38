"""summary DIR --scheduler: the reports made on a Dask distributed cluster (a LocalCluster
of two worker processes on loopback, started and stopped here) equal those of local
processes and of report files; a file a worker cannot read is named, the rest go on."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tracetui.cli import main

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "bench"))
from make_ranks import make_ranks  # noqa: E402

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    d = tmp_path_factory.mktemp("six")
    make_ranks(str(d), 6, slow_rank=2, slow=1.3, mb=0)
    return d


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_dask_cluster_makes_the_reports_local_processes_make(cluster, six, tmp_path, capsys):
    rc, local, _ = _run(capsys, ["summary", str(six), "--json"])
    assert rc == 0
    rc, remote, _ = _run(capsys, ["summary", str(six), "--json",
                                  "--scheduler", cluster.scheduler_address])
    assert rc == 0 and json.loads(remote) == json.loads(local)
    assert json.loads(remote)["stragglers"] == [2]
    # one damaged file and one report among the traces: named, and the rest go on
    d = tmp_path / "mixed"
    shutil.copytree(six, d)
    (d / "rank-9.json").write_text('{"traceEvents": [')  # cut off at once: no events
    (d / "rank-8.json").write_text("not json")
    rc, rep, _ = _run(capsys, ["summary", str(six / "rank-0.json"), "--json"])
    (d / "rank-0.json").write_text(rep)
    rc, out, err = _run(capsys, ["summary", str(d), "--json",
                                 "--scheduler", cluster.scheduler_address])
    assert rc == 0
    got = json.loads(out)
    assert [r["rank"] for r in got["ranks"]] == [0, 1, 2, 3, 4, 5, 9]
    assert "rank-8.json: not a JSON trace" in err and "Traceback" not in err
    want = {r["rank"]: r for r in json.loads(local)["ranks"]}
    for r in got["ranks"]:
        if r["rank"] < 6:
            assert {k: v for k, v in r.items() if k not in ("file", "straggler")} == \
                {k: v for k, v in want[r["rank"]].items() if k not in ("file", "straggler")}


def test_no_scheduler_there_is_one_line(six, capsys, monkeypatch):
    import tracetui.job.cluster

    monkeypatch.setattr(tracetui.job.cluster, "CONNECT_TIMEOUT", 3)  # (what it says is the same)
    rc, _, err = _run(capsys, ["summary", str(six), "--scheduler", "tcp://127.0.0.1:9"])
    assert rc == 2 and err.strip().startswith("tracetui: error: --scheduler tcp://127.0.0.1:9:")
    assert len(err.strip().splitlines()) == 1


def test_without_distributed_the_flag_says_how_to_get_it(six, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    rc, _, err = _run(capsys, ["summary", str(six), "--scheduler", "tcp://127.0.0.1:9"])
    assert rc == 2 and "pip install 'tracetui[dask]'" in err


def test_one_trace_is_read_here(six, capsys):
    rc, _, err = _run(capsys, ["summary", str(six / "rank-0.json"), "--scheduler", "x"])
    assert rc == 2 and "for several traces" in err


async def test_the_app_makes_the_rank_reports_on_the_cluster(cluster, six, capsys):
    """tracetui DIR --scheduler: the rank view from the cluster's reports (the figures of
    local processes), then the timelines, loaded here."""
    from tracetui.app.app import TraceApp
    from tracetui.app.ranks import RanksScreen
    from tracetui.trace import load

    rc, local, _ = _run(capsys, ["summary", str(six), "--json"])
    files = [str(six / f"rank-{r}.json") for r in range(6)]
    app = TraceApp("six (6 ranks)", ranks=files, scheduler=cluster.scheduler_address)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(800):
            await pilot.pause(0.05)
            holds = app.session.holds
            if holds is not None and app.analyses is not None and not holds.loading:
                break
        assert isinstance(app.screen, RanksScreen)
        want = json.loads(local)
        assert app.rank_summary["stragglers"] == want["stragglers"] == [2]
        assert [{k: v for k, v in r.items() if k != "file"} for r in app.rank_summary["ranks"]] \
            == [{k: v for k, v in r.items() if k != "file"} for r in want["ranks"]]
        # six ranks, eight held at most: every rank's timeline, one timeline of them all
        assert sorted(holds.held) == list(range(6))
        assert app.trace.slice_count == sum(load(f).slice_count for f in files)


def test_tracetui_dir_with_no_scheduler_there_is_one_line(six, capsys, monkeypatch):
    import tracetui.job.cluster

    monkeypatch.setattr(tracetui.job.cluster, "CONNECT_TIMEOUT", 3)
    rc, _, err = _run(capsys, [str(six), "--scheduler", "tcp://127.0.0.1:9"])  # not a tty
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "cannot reach" in err
    from ptyterm import PtyApp

    app = PtyApp([str(six), "--scheduler", "tcp://127.0.0.1:9"], cols=100, rows=24)
    assert app.wait_for("connecting to the Dask scheduler at tcp://127.0.0.1:9")
    assert app.finish(timeout=60) == 2  # (distributed tries for CONNECT_TIMEOUT)
    assert "cannot reach the Dask scheduler" in app.text() and "Traceback" not in app.text()


def test_an_address_that_is_no_scheduler_is_one_line_at_once(six, capsys):
    """A malformed address, and a port where something else answers (an HTTP proxy): one
    line, without the Client's 40 s wait and traceback when it is collected."""
    import socket
    import threading
    import time

    rc, _, err = _run(capsys, ["summary", str(six), "--scheduler", "bogus"])
    assert rc == 2 and "not a scheduler address" in err and len(err.splitlines()) == 1
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def answer() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    t = time.perf_counter()
    try:
        rc, _, err = _run(capsys, ["summary", str(six), "--scheduler",
                                   f"tcp://127.0.0.1:{srv.getsockname()[1]}"])
        import gc

        gc.collect()  # (the failed Client collected here: nothing printed, no wait)
        err += capsys.readouterr().err
    finally:
        srv.close()
    assert rc == 2 and "cannot reach the Dask scheduler" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - t < 15
