"""Parsing one trace in several processes: ranges of the events array side by side.

The events array of a plain (uncompressed) file is cut into ranges at candidate event
boundaries (as for pieces: :func:`~.pieces.find_range_start`, whatever the layout). The loading
process parses the first range; a worker process (:mod:`tracetui.trace.worker`) per further
range parses its own with its own :class:`~.builder.TraceBuilder`, rows counted from 0. A range's end is proven a boundary the
same way a piece's is: the text up to it parses as whole events (each range's start is the
previous range's proven end, and the first range starts at the array's ``[``). Only then is
the next range's work used; otherwise the process that could not prove its end carries on
as one stream to the end of the file, and the work of every later range is dropped.

A worker sends its builder back over a socket: a small pickled manifest (the builder's
:meth:`~.builder.TraceBuilder.part`: strings, lanes, counter tracks, flow keys, metadata,
open ``B`` events; then pieces, warnings), then each column as raw bytes, received straight
into the loader's columns, grown once to their final size.
:meth:`~.builder.TraceBuilder.merge` renumbers what a builder numbers on its own (string
ids, lane ids, counter tracks, flow keys) and shifts rows by the number of events before the
range, so the index is the one a single stream builds, event for event
(tests/test_parallel.py compares them).

This module drives processes and merges; it never parses: :meth:`Plan.merge_into` says
"merged" or "continue from offset N", and the loader continues itself.

One stream is kept whenever merging could differ from it: a worker that needed exact
(Decimal) times (the whole load is then redone exactly), a ``B`` left open before a range
whose ``E`` events found no ``B`` (the single stream would have paired them: that range is
parsed again by the loader), or any worker failure.

A gzip file has two ranges: no byte of the second half can be reached without decompressing
the first, so its worker decompresses up to about the middle itself (several times faster
than parsing), finds the boundary there and says where; the loading process stops at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any, Callable

from .builder import NeedExact, TraceBuilder
from .pieces import WINDOW, PieceTable, find_range_start
from .source import Source

#: At most this many processes parse one trace (more compete for memory bandwidth).
MAX_WORKERS = 4
#: Bytes the loading process parses while a worker process starts (its share is longer).
HEAD_START = 24 << 20


def default_workers() -> int:
    """Processes for one load: the cores this process may use (``TRACETUI_WORKERS`` overrides)."""
    env = os.environ.get("TRACETUI_WORKERS", "").strip()
    if env.isascii() and env.isdigit():  # ("²".isdigit() too)
        return max(1, int(env))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class Worker:
    def __init__(self, start: int | None, end: int | None, proc: subprocess.Popen,
                 conn: Connection) -> None:
        self.start, self.end = start, end
        self.proc, self.conn = proc, conn
        self.bytes = 0  # of its range parsed so far
        self.events = 0
        self.message: tuple[str, Any] | None = None  # its last word, once it has said it

    def drain(self) -> None:
        """Read progress reports without blocking (stops at the final message)."""
        try:
            while self.message is None and self.conn.poll(0):
                msg = self.conn.recv()
                if msg[0] == "progress":
                    self.bytes, self.events = msg[1], msg[2]
                elif msg[0] == "cut":  # a worker that finds its own start (gzip)
                    self.start = msg[1]
                else:
                    self.message = msg
        except (EOFError, OSError):
            self.message = ("error", "the worker process ended unexpectedly")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass
        self.conn.close()


class Plan:
    """The workers of one parallel load; the loading process parses ``[offset, first_end)``.

    The plan never touches the loader: progress, cancelling and the loader's own ticks come
    in as callables, and what the merged ranges found (warnings, a cut-off end, gzip flags)
    is kept here for the loader to take."""

    def __init__(self, source: Source, workers: list[Worker]) -> None:
        self.source = source
        self.workers = workers
        self.merged_bytes = 0  # bytes of the ranges merged so far
        self.gzip = False
        self.target = 0  # gzip: the worker's start is the first boundary at or after this
        self.ranges = 0  # ranges merged
        self.warnings: list[str] = []
        self.truncated = False
        self.gzip_flags = (False, False)  # the last merged range's gzip end: (junk, cut off)

    @property
    def failed(self) -> bool:
        """The first worker gave up before saying where it starts."""
        w = self.workers[0] if self.workers else None
        return w is None or (w.start is None and w.message is not None)

    @property
    def first_end(self) -> int | None:
        """Where the loading process stops: the first worker's start (None while a gzip
        worker is still looking for it)."""
        return self.workers[0].start if self.workers else None

    @property
    def bytes(self) -> int:
        """Bytes (on disk) of the events parsed by the workers so far."""
        return self.merged_bytes + sum(w.bytes for w in self.workers)

    @property
    def events(self) -> int:
        """Events parsed by the workers still running (merged ones are the loader's)."""
        return sum(w.events for w in self.workers)

    @classmethod
    def start(cls, source: Source, offset: int, exact: bool, workers: int, parallel_min: int,
              piece_bytes: int) -> "Plan | None":
        """Cut the events into ranges and start a worker for each but the first; None when
        one stream is the way (a small file, no candidate cut, no subprocess)."""
        n = workers
        if n < 2 or not sys.executable:
            return None
        if source.compressed:
            return cls._start_gzip(source, offset, exact, parallel_min, piece_bytes)
        span = source.size - offset
        if span < parallel_min:
            return None
        window = min(WINDOW, span // n)
        # The loading process starts at once; a worker only once its interpreter is up
        # (~0.1 s): the first range is longer by about what one process parses meanwhile.
        head = min(HEAD_START, span // (3 * n))
        cuts: list[int] = []
        for i in range(1, n):
            pos = offset + head + (span - head) * i // n
            try:
                c = find_range_start(source.read_range(pos, window))
            except OSError:
                return None
            if c >= 0 and pos + c > (cuts[-1] if cuts else offset):
                cuts.append(pos + c)
        started: list[Worker] = []
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else None
            try:
                started.append(spawn(source.path, start, end, piece_bytes, exact,
                                     size=source.size))
            except (OSError, ValueError):  # no processes left, or no fd passing here
                break
        if not started:
            return None
        return cls(source, started)

    @classmethod
    def _start_gzip(cls, source: Source, offset: int, exact: bool, parallel_min: int,
                    piece_bytes: int) -> "Plan | None":
        """gzip: no byte of the second half can be reached without decompressing the first.
        One worker decompresses up to about the middle, finds a boundary there, says where
        (the loading process stops at it), and parses on: decompressing is several times
        faster than parsing, so the two halves still overlap by most of their time. The
        worker's share is a little less than half: it decompresses the first half too."""
        span = source.json_size_estimate() - offset
        if span < parallel_min:
            return None
        target = offset + int(span * 0.54)
        try:
            w = spawn(source.path, target, None, piece_bytes, exact, find=True,
                      size=source.size)
        except (OSError, ValueError):  # no processes left, or no fd passing here
            return None
        w.start = None
        plan = cls(source, [w])
        plan.gzip = True
        plan.target = target
        return plan

    def wait_cut(self, tick: Callable[[], None], cancelled: Callable[[], bool]) -> None:
        """Block until the gzip worker says where it starts (or gives up)."""
        w = self.workers[0]
        self._wait_for(w, lambda: w.start is not None, tick, cancelled)

    def poll(self) -> None:
        """Take the workers' progress reports (never blocks)."""
        for w in self.workers:
            w.drain()

    def _wait(self, w: Worker, tick: Callable[[], None],
              cancelled: Callable[[], bool]) -> tuple[str, Any]:
        """The worker's last word (its manifest, or why not), or ("cancelled", None)."""
        self._wait_for(w, lambda: False, tick, cancelled)
        if cancelled() or w.message is None:
            return ("cancelled", None)
        return w.message

    @staticmethod
    def _wait_for(w: Worker, done: Callable[[], bool], tick: Callable[[], None],
                  cancelled: Callable[[], bool]) -> None:
        """Block until ``done()``, the worker's last word, or a cancel; progress goes on."""
        while not done() and w.message is None and not cancelled():
            try:
                w.conn.poll(0.05)
            except OSError:
                pass
            w.drain()
            if not done() and w.message is None and w.proc.poll() is not None:
                w.drain()  # what it said before it went
                if not done() and w.message is None:
                    w.message = ("error", f"the worker process exited ({w.proc.returncode})")
            tick()

    def merge_into(self, builder: TraceBuilder, pieces: PieceTable, tick: Callable[[], None],
                   cancelled: Callable[[], bool]) -> tuple[str, int | None]:
        """Take each worker's range in order (the loader has parsed up to the first).

        Returns ("merged", None) when the rest of the file is in ``builder``;
        ("continue", N) when the range from byte N on could not be used (a failed worker, a
        start that did not prove, events one stream pairs differently): the loader goes on
        from N as one stream; ("cancelled", None). Raises NeedExact when a worker met a
        time that needs exact decoding (the whole load is then redone)."""
        for w in self.workers:
            kind, manifest = self._wait(w, tick, cancelled)
            if kind == "cancelled":
                return ("cancelled", None)
            if kind == "exact":
                raise NeedExact
            if kind != "done" or not builder.can_merge(manifest):
                start = w.start
                self.close()
                return ("continue", start)
            try:
                self.warnings += merge_part(builder, pieces, w.conn, manifest)
            except (EOFError, OSError) as err:  # pragma: no cover - the worker died mid-send
                raise OSError(f"a worker process failed while sending its events ({err})") from None
            self.truncated = self.truncated or manifest["truncated"]
            self.merged_bytes += manifest["bytes"]
            self.ranges += 1
            self.gzip_flags = manifest.get("gzip", (False, False))
            w.bytes = w.events = 0
            w.kill()
            self.poll()
            if not manifest["proven"]:
                break  # that worker went on to the end of the file itself
        return ("merged", None)

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []


def spawn(path: str, start: int, end: int | None, piece_bytes: int, exact: bool,
          find: bool = False, size: int | None = None) -> Worker:
    """Start a worker process (:mod:`tracetui.trace.worker`) on ``[start, end)`` of ``path``;
    ``find``: start at the first boundary after ``start`` (gzip) and say where; ``size``: the
    file's size when the loading process opened it, which the worker reads no further than
    (a file still being written grows meanwhile)."""
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracetui.trace.worker", str(theirs.fileno()), path,
             str(start), "" if end is None else str(end), str(piece_bytes), "1" if exact else "0",
             str(os.getpid()), "1" if find else "0", "" if size is None else str(size)],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return Worker(start, end, proc, Connection(ours.detach()))


def send_columns(conn: Connection, builder: TraceBuilder) -> None:
    """A worker's columns to the loading process, after its manifest (which gives every
    column's length), each freed here once it is sent.

    Through a memfd where there is one: this machine's sockets move ~0.6 GB/s between two
    processes, a memfd is written and read at memory speed. The columns lie in it last
    first, so that the reader, taking them first to last from its end, shrinks it behind
    itself (what both processes hold stays the columns once, as with the socket).
    Elsewhere the raw bytes follow on the socket (``Connection.recv_bytes_into`` would read
    each into a BytesIO and copy it twice)."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        memfd = os.memfd_create("tracetui-columns") if hasattr(os, "memfd_create") else -1
        if memfd < 0:
            sock.sendall(b"s")
            for buf in builder.column_buffers():
                sock.sendall(buf)
            return
        try:
            sizes = builder.column_sizes()
            at = sum(sizes)
            for buf, size in zip(builder.column_buffers(), sizes):
                at -= size
                with memoryview(buf) as m:
                    done = 0
                    while done < size:
                        done += os.pwrite(memfd, m[done:], at + done)
                del buf
            socket.send_fds(sock, [b"m"], [memfd])
        finally:
            os.close(memfd)
    finally:
        sock.close()


class _ColumnReader:
    """The receiving end of :func:`send_columns`: ``fill(view)`` reads the next column into
    ``view`` (its exact size; None: an empty one)."""

    def __init__(self, conn: Connection) -> None:
        self.sock = socket.socket(fileno=os.dup(conn.fileno()))
        self.memfd = -1
        msg, fds, _, _ = socket.recv_fds(self.sock, 1, 1)
        if msg == b"m" and fds:
            self.memfd = fds[0]
            self.end = os.fstat(self.memfd).st_size
        elif msg != b"s":
            for fd in fds:
                os.close(fd)
            self.close()
            raise EOFError("the worker process ended before sending its events")

    def fill(self, view: memoryview | None) -> None:
        if view is None:
            return
        size = view.nbytes
        got = 0
        if self.memfd >= 0:
            at = self.end - size
            while got < size:
                n = os.preadv(self.memfd, [view[got:]], at + got)
                if not n:
                    raise EOFError("a worker's columns were cut short")
                got += n
            os.ftruncate(self.memfd, at)  # read: freed
            self.end = at
            return
        while got < size:
            n = self.sock.recv_into(view[got:])
            if not n:
                raise EOFError("the worker process ended while sending its events")
            got += n

    def close(self) -> None:
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1
        self.sock.close()


def merge_part(builder: TraceBuilder, pieces: PieceTable, conn: Connection,
               manifest: dict[str, Any]) -> list[str]:
    """Append a worker's range (its manifest, then its columns from ``conn``) to ``builder``
    and its pieces to ``pieces``; returns the range's warnings."""
    row0 = builder.items
    reader = _ColumnReader(conn)
    try:
        builder.merge(manifest, reader.fill)
    finally:
        reader.close()
    first, table = manifest["pieces"]
    for f, p in zip(first, table):
        pieces.add(f + row0, *p)
    return list(manifest["warnings"])
