"""The map of ``summary DIR --scheduler ADDRESS``: one report task per trace on a running
Dask distributed cluster (the files on a filesystem its workers share); only the reports,
small, come back to be merged here.

``distributed`` is optional (``pip install 'tracetui[dask]'``); the cluster is the site's
(``dask-jobqueue``, ``dask scheduler``/``dask worker``, a ``LocalCluster``): this only
connects to it. A file a worker cannot read, or a worker that dies on one, is named and the
rest go on - as with local processes.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any, Callable, Sequence

from ..trace import TraceError

#: seconds to wait for the scheduler to answer
CONNECT_TIMEOUT = 20


def report_task(path: str, rules: Any) -> dict[str, Any]:
    """On a worker: the report of one trace (one stream: the cluster runs files side by
    side already)."""
    from ..analysis.report import analyze
    from ..trace.loader import Loader

    return analyze(Loader(path, workers=1).run(), rules)


def _client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise TraceError("--scheduler needs Dask's distributed: pip install 'tracetui[dask]' "
                         "(or: pip install distributed)") from None
    _check_address(address)
    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        return client
    except (OSError, TimeoutError, ValueError, MemoryError) as e:
        # A Client that failed to connect closes itself when collected, waiting twice the
        # timeout and printing a traceback: it has nothing to close
        client.status = "closed"
        what = "something answered there, but not as a Dask scheduler" \
            if isinstance(e, MemoryError) else f"{type(e).__name__}: {e}"
        raise TraceError(f"--scheduler {address}: cannot reach the Dask scheduler "
                         f"({what})") from None


def _check_address(address: str) -> None:
    """A malformed address, or a TCP one where nothing listens, is said at once: the
    Client would try for CONNECT_TIMEOUT seconds, and one it failed to make stalls the
    exit for as long again and prints a traceback of its own."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, where = parse_address(address)
        host, port = parse_host_port(where) if scheme in ("tcp", "tls") else (None, None)
    except (ValueError, TypeError) as e:
        raise TraceError(f"--scheduler {address}: not a scheduler address ({e}; e.g. "
                         "tcp://host:8786)") from None
    if host is None:
        return
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except ConnectionRefusedError:
        why = "connection refused: is it running?"
    except socket.gaierror as e:
        why = f"unknown host {host}: {e.strerror or e}"
    except TimeoutError:
        why = f"no answer in {CONNECT_TIMEOUT} s"
    except OSError as e:
        why = e.strerror or type(e).__name__
    else:
        return
    raise TraceError(f"--scheduler {address}: cannot reach the Dask scheduler ({why})")


def check_scheduler(address: str) -> None:
    """A one-line :class:`TraceError` now if the scheduler cannot be reached (or
    ``distributed`` is missing): before the app takes the screen."""
    _client(address).close()


def dask_reports(paths: Sequence[str], todo: Sequence[int], address: str, rules: Any,
                 results: list[tuple[str, dict[str, Any] | None, str | None]],
                 progress: Callable[[int, int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
    """The reports of ``paths[i]`` for ``i`` in ``todo``, made on the cluster at ``address``,
    into ``results`` (``(path, report, error)``, as :func:`tracetui.job.many.reports`);
    ``progress(bytes_done, bytes_total, files_done)`` as each comes back."""
    client = _client(address)  # (first: without distributed, it says how to get it)
    try:
        sizes = {}
        for i in todo:
            try:
                sizes[i] = os.path.getsize(paths[i])
            except OSError:
                sizes[i] = 0
        total = sum(sizes.values())
        run = uuid.uuid4().hex[:8]
        # absolute paths: the workers' working directory is not ours
        futures = {client.submit(report_task, os.path.abspath(paths[i]), rules,
                                 key=f"tracetui-report-{run}-{i}", pure=False): i
                   for i in todo}
        done = len(paths) - len(todo)
        done_bytes = 0
        pending = list(futures)
        while pending:
            # polled, not as_completed: a cancel (the app closing) is seen within 0.1 s
            if cancelled is not None and cancelled():
                client.cancel(pending)
                return
            ready = [f for f in pending if f.done()]
            if not ready:
                time.sleep(0.1)
                continue
            taken = {id(f) for f in ready}
            pending = [f for f in pending if id(f) not in taken]
            for fut in ready:
                _take(fut, futures[fut], paths, results)
                done += 1
                done_bytes += sizes[futures[fut]]
                if progress is not None:
                    progress(done_bytes, total, done)
    finally:
        client.close()


def _take(fut: Any, i: int, paths: Sequence[str],
          results: list[tuple[str, dict[str, Any] | None, str | None]]) -> None:
    """The outcome of the task of ``paths[i]`` into ``results[i]``."""
    try:
        results[i] = (paths[i], fut.result(), None)
    except TraceError as e:
        results[i] = (paths[i], None, str(e))
    except MemoryError:
        results[i] = (paths[i], None, f"{paths[i]}: out of memory on a Dask worker")
    except Exception as e:  # noqa: BLE001 - a worker died on it, or the like
        results[i] = (paths[i], None, f"{paths[i]}: the Dask task failed "
                      f"({type(e).__name__}: {e})")
