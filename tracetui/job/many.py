"""Several traces at once (the ranks of one job): which files; their reports computed in
parallel processes with one combined progress (:func:`reports`); their indexes parsed in
worker processes and merged here (:func:`load_many`). Pure: no textual or rich."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

from ..trace import TraceError
from ..trace.loader import Loader
from ..trace.parallel import Worker, default_workers, spawn
from ..trace.pieces import HEAD_BYTES, locate_events

_TRACE_NAME = re.compile(r"\.(json|json\.gz)$", re.IGNORECASE)
_DIGITS = re.compile(r"(\d+)")

_progress: Any = None  # in a worker: the shared bytes-done array


def trace_files(paths: Sequence[str]) -> list[str]:
    """The trace files named by ``paths``: files as given, directories expanded to their
    ``*.json`` and ``*.json.gz`` files (not recursively), in natural order (rank-2 before
    rank-10). A directory without any is an error."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            try:
                names = os.listdir(p)
            except OSError as e:
                raise TraceError(f"{p}: cannot list the directory ({e.strerror or e})") from None
            found = sorted((n for n in names if _TRACE_NAME.search(n)
                            and os.path.isfile(os.path.join(p, n))), key=_natural)
            if not found:
                raise TraceError(f"{p}: no *.json or *.json.gz traces in this directory")
            out += [os.path.join(p, n) for n in found]
        else:
            out.append(p)
    return out


#: the most rank timelines ``tracetui DIR`` holds at once by default: a job of no more ranks
#: is one timeline of them all; a larger one opens on demand (fewer where memory is short)
MAX_RANKS = 8
#: what a rank timeline held in the app costs per byte of its JSON: its index (0.3-0.7x,
#: measured on Kineto traces) and its share of the combined timeline shown (as much again)
HELD_PER_JSON_BYTE = 1.2
#: of the memory available when the app starts, what the held timelines may take
HOLD_SHARE = 0.5
_GZIP_RATIO = 15  # JSON bytes per gzip byte, where the gzip trailer cannot tell (> 4 GB)


def json_bytes(path: str) -> int:
    """The JSON bytes of a trace file: its size; a gzip file's uncompressed size (its
    trailer's, unless that wrapped past 4 GB: then a typical ratio)."""
    try:
        size = os.path.getsize(path)
        if not path.lower().endswith(".gz") or size < 18:
            return size
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            isize = int.from_bytes(f.read(4), "little")
    except OSError:
        return 0
    return isize if isize >= 3 * size else size * _GZIP_RATIO


def memory_available() -> int | None:
    """Bytes of memory available to start new work (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_max_ranks(paths: Sequence[str | None]) -> tuple[int, str]:
    """How many rank timelines to hold at once, and why: :data:`MAX_RANKS`, fewer when
    that many of the largest of ``paths`` would take more than :data:`HOLD_SHARE` of the
    memory available."""
    each = max([json_bytes(p) for p in paths if p] or [0]) * HELD_PER_JSON_BYTE
    avail = memory_available()
    if avail is None or each <= 0 or each * MAX_RANKS <= HOLD_SHARE * avail:
        return MAX_RANKS, f"at most {MAX_RANKS}"
    n = max(1, min(MAX_RANKS, int(HOLD_SHARE * avail // each)))
    return n, (f"{n}: about {each / 1e9:,.1f} GB each, of {avail / 1e9:,.1f} GB available")


def trace_of(path: str, report: dict[str, Any]) -> str | None:
    """The trace file of one rank's input: a trace is its own; a report (``summary FILE
    --json``) names the trace it was made from, as that command was given it - tried as it
    is, then beside the report (its path from there, then its name). None: not found."""
    file = str(report.get("file") or path)
    if file == path:
        return path
    here = os.path.dirname(path)
    for cand in (file, os.path.join(here, file), os.path.join(here, os.path.basename(file))):
        if os.path.isfile(cand):
            return cand
    return None


def as_ranks(got: Sequence[tuple[str, dict[str, Any] | None, str | None]], rules: Any
             ) -> tuple[list[tuple[str, dict[str, Any]]], list[str], dict[str, str]]:
    """What :func:`reports` gave, as ranks: ``(the trace's path, its report)`` for each
    report - one read from a file stands for the trace it was made from, so its rank is
    found in that trace's name, as if it had been parsed -, the warnings (a file skipped, a
    report made with other rules), and each rank's input by its trace's path."""
    from ..analysis.rules import describe

    ok, warnings, inputs = [], [], {}
    mine = describe(rules)
    for p, r, err in got:
        if err is not None:
            warnings.append(f"skipped {err}")
        elif r is not None:
            name = str(r.get("file") or p)
            ok.append((name, r))
            inputs.setdefault(name, p)
            if r.get("rules", mine) != mine:
                warnings.append(f"{p}: a report made with other classification rules (its "
                                "figures are as they were made then)")
    return ok, warnings, inputs


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdecimal() else t.lower() for t in _DIGITS.split(name)]  # (not "¹")


def _stderr_fd() -> int | None:
    """The file descriptor of ``sys.stderr``, or None where it has none (a UI's capture)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _start_tracker() -> None:
    """Start multiprocessing's resource tracker with a real stderr. Inside the app,
    ``sys.stderr`` is Textual's capture, whose descriptor is -1: the tracker's start (on
    the pool's first semaphore) would fail with "bad value(s) in fds_to_keep"."""
    if _stderr_fd() is not None:
        return
    from multiprocessing import resource_tracker

    err = sys.stderr
    try:
        sys.stderr = sys.__stderr__ if sys.__stderr__ is not None else open(os.devnull, "w")
        resource_tracker.ensure_running()
    finally:
        sys.stderr = err


def _init(shared: Any, quiet: bool = False) -> None:
    global _progress
    _progress = shared
    # Nothing a worker writes reaches our stdout (summary --json writes there), nor, under
    # the app (``quiet``), the terminal it draws on
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2) if quiet else (1,):
        os.dup2(devnull, fd)
    os.close(devnull)
    # Ctrl+C reaches every process of the terminal's foreground group: the command decides
    # (it kills this pool: tracetui.signals), not each worker with a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's processes at once, and forget its queued jobs: leaving its ``with``
    block would otherwise wait until every file is read (an interrupt, an error here)."""
    procs = getattr(pool, "_processes", None) or {}  # pid -> Process (CPython's, 3.8-3.13)
    for proc in list(procs.values()):
        try:
            proc.kill()
        except (OSError, AttributeError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _report_job(index: int, path: str, rules: Any, inner_workers: int | None) -> dict[str, Any]:
    from ..analysis.report import analyze

    def progress(p: Any) -> None:
        if _progress is not None:
            _progress[index] = p.bytes_done

    trace = Loader(path, progress=progress, progress_interval=0.2, workers=inner_workers).run()
    report = analyze(trace, rules)
    if _progress is not None:
        _progress[index] = os.path.getsize(path)
    return report


def reports(paths: Sequence[str], rules: Any, processes: int | None = None,
            progress: Callable[[int, int, int], None] | None = None,
            scheduler: str | None = None, cancelled: Callable[[], bool] | None = None
            ) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """``(path, report, error)`` for each path, in order; the traces are loaded and analysed
    in up to ``processes`` processes side by side (default: one per core, at most 4).
    ``progress(bytes_done, bytes_total, files_done)`` is called a few times a second.
    A file that cannot be read gives its one-line error instead of a report. A file that is
    a report already (``summary FILE --json``: :data:`~tracetui.analysis.report.REPORT_SCHEMA`)
    is read as it is: a scheduler of the site's can make the reports where the traces are,
    and this only merges them. ``scheduler``: the address of a Dask distributed scheduler
    to make the reports on instead of local processes (:mod:`tracetui.job.cluster`).
    ``cancelled()`` true: what is not done yet is dropped (its report and error None)."""
    from ..analysis.report import read_report

    paths = list(paths)
    results: list[tuple[str, dict[str, Any] | None, str | None]] = [
        (p, None, None) for p in paths]
    # a report (summary --json of one trace) is its rank already: read here, not parsed
    todo = []
    for i, p in enumerate(paths):
        try:
            got = read_report(p)
        except TraceError as e:
            results[i] = (p, None, str(e))
            continue
        if got is not None:
            results[i] = (p, got, None)
        else:
            todo.append(i)
    if todo and scheduler:  # on a Dask cluster (tracetui.job.cluster)
        from .cluster import dask_reports

        dask_reports(paths, todo, scheduler, rules, results, progress, cancelled)
    elif todo:
        _report_jobs(paths, todo, results, rules, processes, progress, cancelled)
    return results


def _report_jobs(all_paths: list[str], todo: list[int],
                 results: list[tuple[str, dict[str, Any] | None, str | None]], rules: Any,
                 processes: int | None,
                 progress: Callable[[int, int, int], None] | None,
                 cancelled: Callable[[], bool] | None = None) -> None:
    """The reports of the traces ``all_paths[i]`` for ``i`` in ``todo``, into ``results``."""
    paths = [all_paths[i] for i in todo]
    sizes = []
    for p in paths:
        try:
            sizes.append(os.path.getsize(p))
        except OSError:
            sizes.append(0)
    n = max(1, min(processes or default_workers(), len(paths)))
    # Enough files for every core: each is read as one stream (ranges of one file in
    # several processes would only compete for the same cores).
    inner = 1 if len(paths) >= n and n > 1 else None
    ctx = mp.get_context("spawn")  # no fork: the caller may hold threads
    shared = ctx.Array("q", len(paths), lock=False)
    total = sum(sizes)
    quiet = _stderr_fd() is None  # inside the app: the terminal is its screen
    _start_tracker()
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init,
                             initargs=(shared, quiet)) as pool:
        futures = {pool.submit(_report_job, i, p, rules, inner): i for i, p in enumerate(paths)}
        pending = set(futures)
        done_files = len(all_paths) - len(todo)  # the reports, read already
        try:
            while pending:
                if cancelled is not None and cancelled():
                    _kill_pool(pool)
                    return
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = futures[f]
                    done_files += 1
                    results[todo[i]] = _outcome(paths[i], f)
                if progress is not None:
                    progress(min(sum(shared[:]), total), total, done_files)
        except BaseException:
            _kill_pool(pool)
            raise


def _outcome(path: str, f: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """``(path, report, error)`` of one finished job."""
    try:
        return (path, f.result(), None)
    except TraceError as e:
        return (path, None, str(e))
    except MemoryError:
        return (path, None, f"{path}: out of memory")
    except Exception as e:  # noqa: BLE001 - one bad file, not the whole run
        return (path, None, f"{path}: internal error: {type(e).__name__}: {e}")


def load_many(paths: list[str], progress: Callable[[int, int], None] | None = None,
              processes: int | None = None,
              cancelled: Callable[[], bool] = lambda: False) -> list[tuple[str, Any, str | None]]:
    """``(path, trace, error)`` for each of ``paths``, parsed side by side: each plain file's
    events array by one worker process (up to ``processes`` at once, default one per core),
    merged and indexed here as it comes; gzip files, files whose events do not start in their
    first megabyte, and a worker that fails are loaded here as usual. ``progress(done,
    total)`` in bytes on disk; ``cancelled()`` stops what has not started."""
    n = max(1, processes or default_workers())
    out: list[tuple[str, Any, str | None]] = [(p, None, None) for p in paths]
    sizes = [0] * len(paths)
    remote: list[tuple[int, Any, dict[str, Any]]] = []
    local: list[int] = []
    from ..analysis.report import read_report

    for i, p in enumerate(paths):
        try:
            if read_report(p) is not None:
                raise TraceError(f"{p}: a tracetui report, which holds no timeline (summary "
                                 "takes it as its rank; open the trace it was made from)")
            loader = Loader(p, workers=1)
            sizes[i] = loader.source.size
            where = locate_events(loader.source.read_head(HEAD_BYTES)) \
                if not loader.source.compressed else None
        except TraceError as e:
            out[i] = (p, None, str(e))
            continue
        if where is None or where["kind"] not in ("array", "object") or where["offset"] is None \
                or n < 2 or not sys.executable:
            local.append(i)
        else:
            remote.append((i, loader, where))
    total = max(sum(sizes), 1)
    finished = [0]
    running: list[tuple[int, Any, dict[str, Any], Worker]] = []

    def report() -> None:
        if progress is not None:
            progress(min(finished[0] + sum(w.bytes for *_, w in running), total), total)

    def load_here(i: int) -> None:
        try:
            out[i] = (paths[i], Loader(paths[i]).run(), None)
        except TraceError as e:
            out[i] = (paths[i], None, str(e))
        finished[0] += sizes[i]
        report()

    queue = list(remote)
    while queue or running:
        while queue and len(running) < n and not cancelled():
            i, loader, where = queue.pop(0)
            try:
                w = spawn(paths[i], where["offset"], None, loader.piece_bytes, False,
                          size=loader.source.size)
            except (OSError, ValueError):
                local.append(i)
                continue
            running.append((i, loader, where, w))
        if cancelled():
            for *_, w in running:
                w.kill()
            break
        time.sleep(0.02)
        for item in list(running):
            i, loader, where, w = item
            w.drain()
            if w.message is None and w.proc.poll() is not None:
                w.drain()
                if w.message is None:
                    w.message = ("error", f"the worker process exited ({w.proc.returncode})")
            if w.message is None:
                continue
            running.remove(item)
            kind, manifest = w.message
            if kind == "done":
                try:
                    loader.builder.header = {k: v for k, v in where["header"].items()
                                             if not k.startswith("__")}
                    loader.merge_part(w.conn, manifest)
                    loader.bytes_done = loader.source.size
                    out[i] = (paths[i], loader.finish(where), None)
                    finished[0] += sizes[i]
                except TraceError as e:
                    out[i] = (paths[i], None, str(e))
                    finished[0] += sizes[i]
                except (EOFError, OSError):  # pragma: no cover - died while sending
                    local.append(i)
            else:  # exact times, damage at its start, a crash: the usual way
                local.append(i)
            w.kill()
        report()
    for i in local:
        if cancelled():
            break
        load_here(i)
    return out
