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

from .trace import TraceError
from .trace.loader import Loader
from .trace.parallel import Worker, default_workers, spawn
from .trace.pieces import HEAD_BYTES, locate_events

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


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in _DIGITS.split(name)]


def _init(shared: Any) -> None:
    global _progress
    _progress = shared
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
    from .analysis.report import analyze

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
            scheduler: str | None = None
            ) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """``(path, report, error)`` for each path, in order; the traces are loaded and analysed
    in up to ``processes`` processes side by side (default: one per core, at most 4).
    ``progress(bytes_done, bytes_total, files_done)`` is called a few times a second.
    A file that cannot be read gives its one-line error instead of a report. A file that is
    a report already (``summary FILE --json``: :data:`~tracetui.analysis.report.REPORT_SCHEMA`)
    is read as it is: a scheduler of the site's can make the reports where the traces are,
    and this only merges them. ``scheduler``: the address of a Dask distributed scheduler
    to make the reports on instead of local processes (:mod:`tracetui.cluster`)."""
    from .analysis.report import read_report

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
    if todo and scheduler:  # on a Dask cluster (tracetui.cluster)
        from .cluster import dask_reports

        dask_reports(paths, todo, scheduler, rules, results, progress)
    elif todo:
        _report_jobs(paths, todo, results, rules, processes, progress)
    return results


def _report_jobs(all_paths: list[str], todo: list[int],
                 results: list[tuple[str, dict[str, Any] | None, str | None]], rules: Any,
                 processes: int | None,
                 progress: Callable[[int, int, int], None] | None) -> None:
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
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init,
                             initargs=(shared,)) as pool:
        futures = {pool.submit(_report_job, i, p, rules, inner): i for i, p in enumerate(paths)}
        pending = set(futures)
        done_files = len(all_paths) - len(todo)  # the reports, read already
        try:
            while pending:
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
    from .analysis.report import read_report

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
