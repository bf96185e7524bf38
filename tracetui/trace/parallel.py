"""Parsing one trace in several processes: ranges of the events array side by side.

The events array of a plain (uncompressed) file is cut into ranges at candidate event
boundaries (a newline after ``,`` and before ``{``, as for pieces). The loading process
parses the first range; a worker process per further range parses its own with its own
:class:`~.loader.TraceBuilder`, rows counted from 0. A range's end is proven a boundary the
same way a piece's is: the text up to it parses as whole events (each range's start is the
previous range's proven end, and the first range starts at the array's ``[``). Only then is
the next range's work used; otherwise the process that could not prove its end carries on
as one stream to the end of the file, and the work of every later range is dropped.

A worker sends its builder back over a socket: a small pickled manifest (strings, lanes,
counter tracks, flow keys, metadata, open ``B`` events, pieces, warnings), then each column
as raw bytes, received straight into the loader's columns, grown once to their final size.
The merge renumbers what a builder numbers on its own (string ids, lane ids, counter tracks,
flow keys) and shifts rows by the number of events before the range, so the index is the one
a single stream builds, event for event (tests/test_parallel.py compares them).

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
import threading
import time
import zlib
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

#: Column sets of a builder, in the order a worker sends them.
COLUMN_SETS = ("slices", "instants", "ended_b", "counter_samples", "gpu", "corr", "ext", "flows")
_WINDOW = 1 << 20  # bytes read around a planned cut to find a candidate boundary
_CONTEXT = 256  # bytes either side of a newline that say whether it is a boundary


def find_boundary(buf: bytes) -> int:
    """Offset of the first candidate event boundary in ``buf`` (start of a line that opens an
    event after a comma), or -1."""
    pos = _CONTEXT
    while True:
        nl = buf.find(b"\n", pos)
        if nl < 0 or nl + 1 + _CONTEXT > len(buf):
            return -1
        after = buf[nl + 1 : nl + 1 + _CONTEXT].lstrip()
        if after[:1] == b"{" and buf[nl - _CONTEXT : nl].rstrip()[-1:] == b",":
            return nl + 1
        pos = nl + 1


class _Worker:
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
    """The workers of one parallel load; the loading process parses ``[offset, first_end)``."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.workers = workers
        self.merged_bytes = 0  # bytes of the ranges merged so far
        self.gzip = False
        self.target = 0  # gzip: the worker's start is the first boundary at or after this

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

    @classmethod
    def start(cls, loader: Any, offset: int, exact: bool) -> "Plan | None":
        """Cut the events into ranges and start a worker for each but the first; None when
        one stream is the way (a small file, no candidate cut, no subprocess)."""
        src = loader.source
        n = loader.workers
        if n < 2 or not sys.executable:
            return None
        if src.compressed:
            return cls._start_gzip(loader, offset, exact)
        span = src.size - offset
        if span < loader.parallel_min:
            return None
        window = min(_WINDOW, span // n)
        cuts: list[int] = []
        for i in range(1, n):
            pos = offset + span * i // n
            try:
                c = find_boundary(src.read_range(pos, window))
            except OSError:
                return None
            if c >= 0 and pos + c > (cuts[-1] if cuts else offset):
                cuts.append(pos + c)
        workers: list[_Worker] = []
        for i, start in enumerate(cuts):
            end = cuts[i + 1] if i + 1 < len(cuts) else None
            try:
                workers.append(_spawn(src.path, start, end, loader.piece_bytes, exact))
            except (OSError, ValueError):  # no processes left, or no fd passing here
                break
        if not workers:
            return None
        plan = cls(workers)
        loader.plan = plan
        return plan

    @classmethod
    def _start_gzip(cls, loader: Any, offset: int, exact: bool) -> "Plan | None":
        """gzip: no byte of the second half can be reached without decompressing the first.
        One worker decompresses up to about the middle, finds a boundary there, says where
        (the loading process stops at it), and parses on: decompressing is several times
        faster than parsing, so the two halves still overlap by most of their time. The
        worker's share is a little less than half: it decompresses the first half too."""
        src = loader.source
        span = src.json_size_estimate() - offset
        if span < loader.parallel_min:
            return None
        target = offset + int(span * 0.54)
        try:
            w = _spawn(src.path, target, None, loader.piece_bytes, exact, find=True)
        except (OSError, ValueError):  # no processes left, or no fd passing here
            return None
        w.start = None
        plan = cls([w])
        plan.gzip = True
        plan.target = target
        loader.plan = plan
        return plan

    def wait_cut(self, loader: Any) -> None:
        """Block until the gzip worker says where it starts (or gives up)."""
        w = self.workers[0]
        self._wait_for(loader, w, lambda: w.start is not None)

    def poll(self, loader: Any) -> None:
        for w in self.workers:
            w.drain()
        loader.other_bytes = self.merged_bytes + sum(w.bytes for w in self.workers)
        loader.other_events = sum(w.events for w in self.workers)

    def _wait(self, loader: Any, w: _Worker) -> tuple[str, Any]:
        """The worker's last word (its manifest, or why not), or ("cancelled", None)."""
        self._wait_for(loader, w, lambda: False)
        if loader._cancel.is_set() or w.message is None:
            return ("cancelled", None)
        return w.message

    @staticmethod
    def _wait_for(loader: Any, w: _Worker, done: Callable[[], bool]) -> None:
        """Block until ``done()``, the worker's last word, or a cancel; progress goes on."""
        while not done() and w.message is None and not loader._cancel.is_set():
            try:
                w.conn.poll(0.05)
            except OSError:
                pass
            w.drain()
            if not done() and w.message is None and w.proc.poll() is not None:
                w.drain()  # what it said before it went
                if not done() and w.message is None:
                    w.message = ("error", f"the worker process exited ({w.proc.returncode})")
            loader._tick()

    def merge_into(self, loader: Any, exact: bool) -> None:
        """Take each worker's range in order (the loader has parsed up to the first)."""
        from .loader import _NeedExact

        for k, w in enumerate(self.workers):
            kind, manifest = self._wait(loader, w)
            if kind == "cancelled":
                loader._cancelled()
                return
            if kind == "exact":
                raise _NeedExact
            if kind != "done" or not _mergeable(loader.builder, manifest):
                self.close()
                _parse_on(loader, w.start, exact)
                return
            try:
                merge(loader, w.conn, manifest)
            except (EOFError, OSError) as err:  # pragma: no cover - the worker died mid-send
                raise OSError(f"a worker process failed while sending its events ({err})") from None
            self.merged_bytes += manifest["bytes"]
            loader.ranges += 1
            loader.gzip_flags = manifest.get("gzip", (False, False))
            if self.gzip:  # states to re-read the worker's events from, in the background
                threading.Thread(target=loader.source.record_rest, name="tracetui-gzip-index",
                                 daemon=True).start()
            w.bytes = w.events = 0
            w.kill()
            self.poll(loader)
            if not manifest["proven"]:
                return  # that worker went on to the end of the file itself

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []


def _spawn(path: str, start: int, end: int | None, piece_bytes: int, exact: bool,
           find: bool = False) -> _Worker:
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracetui.trace.parallel", str(theirs.fileno()), path,
             str(start), "" if end is None else str(end), str(piece_bytes), "1" if exact else "0",
             str(os.getpid()), "1" if find else "0"],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return _Worker(start, end, proc, Connection(ours.detach()))


def _parse_on(loader: Any, start: int, exact: bool) -> None:
    """Parse from ``start`` (a proven boundary) to the end in this process, one stream."""
    from .source import CountingReader

    loader.plan = None
    if loader.stream_at == start:  # this process stopped right there: go on reading
        loader.other_bytes = loader.other_events = 0
        loader._piece_loop(loader.stream, start, loader.builder.items, exact)
        return
    loader.other_bytes = loader.other_events = 0  # everything before start is counted in pos
    f = open(loader.source.path, "rb", buffering=0)  # plain files only: ranges are bytes
    f.seek(start)
    loader._raw.close()
    loader._raw = CountingReader(f, pos=start)
    loader.stream = loader._raw
    loader._piece_loop(loader._raw, start, loader.builder.items, exact)


def _mergeable(b: Any, manifest: dict[str, Any]) -> bool:
    """A B still open before the range could have been ended by an E the worker dropped."""
    return not (manifest["skipped"].get("E without a matching B")
                and any(b.open_b.values()))


# ----------------------------------------------------------------------------- worker side


def _skip_to_boundary(stream: Any, target: int) -> int:
    """Read (and drop) the text up to about ``target``; the offset of the first candidate
    boundary after it, the stream left there; -1 if there is none."""
    left = target
    while left > 0:
        got = stream.read(min(left, 1 << 22))
        if not got:
            return -1
        left -= len(got)
    window = b""
    while len(window) < _WINDOW:
        got = stream.read(_WINDOW - len(window))
        if not got:
            break
        window += got
    c = find_boundary(window)
    if c < 0:
        return -1
    stream.unread(window[c:])
    return target + c


def manifest_of(loader: Any, raw_start: int, proven: bool) -> dict[str, Any]:
    b = loader.builder
    b.flush_pending()
    return {
        "proven": proven,
        "bytes": loader._raw.pos - raw_start,
        "items": b.items, "events": b.events, "phase_counts": b.phase_counts,
        "skipped": b.skipped, "notes": b.notes,
        "strings": b.strings.strings, "non_text": b.strings.non_text,
        "non_str": [(v, i) for v, i in b.strings._ids.items()
                    if v is not None and not isinstance(v, str)],
        "lanes": [(lk.pid, lk.tid, lk.sub, lk.gpu, lk.device, lk.stream) for lk in b.lanes],
        "counter_tracks": b.counter_tracks,
        "flow_keys": list(b._flow_keys.items()),
        "open_b": b.open_b, "extra_args": b.extra_args,
        "meta": (b.process_names, b.process_labels, b.process_sort, b.thread_names,
                 b.thread_sort),
        "header": b.header,
        "pieces": (loader.pieces.first, loader.pieces.pieces),
        "warnings": loader.warnings, "truncated": loader.truncated,
        "counts": {name: getattr(b, name).count for name in COLUMN_SETS},
        "gzip": loader.gzip_flags,
    }


def send_columns(conn: Connection, b: Any) -> None:
    """Each column set as raw bytes, freed once sent: while the loader's columns grow by a
    set, the worker's shrink by it."""
    for name in COLUMN_SETS:
        cols = getattr(b, name)
        for a in cols.arrays.values():
            conn.send_bytes(memoryview(a[: cols.count]).cast("B") if cols.count else b"")
        cols.clear()


def worker_main(argv: list[str]) -> int:
    from .loader import Loader, _NeedExact
    from .source import CountingReader, TraceError

    fd, path, start_s, end_s, piece_s, exact_s, parent_s, find_s = argv
    conn = Connection(int(fd))
    start, end, parent = int(start_s), (int(end_s) if end_s else None), int(parent_s)
    last = [0.0]
    base = [start]  # progress: bytes on disk of this range

    def progress(p: Any) -> None:
        if os.getppid() != parent:  # the loading process is gone: so is the point
            os._exit(1)
        now = time.perf_counter()
        if now - last[0] >= 0.1:
            last[0] = now
            conn.send(("progress", p.bytes_done - base[0], p.events))

    try:
        loader = Loader(path, progress=progress, progress_interval=0.1,
                        piece_bytes=int(piece_s), workers=1)
        exact = exact_s == "1"
        if exact:
            loader._reset(exact=True)
        loader.builder.header = {}
        loader.items_before = 1  # the range starts after at least one event
        if find_s == "1":
            raw, stream = loader.source.open_stream()
            start = _skip_to_boundary(stream, start)
            if start < 0:
                conn.send(("error", "no event boundary near the middle"))
                return 0
            conn.send(("cut", start))
        else:
            f = open(path, "rb", buffering=0)
            f.seek(start)
            raw = stream = CountingReader(f, pos=start)
        loader._raw = raw
        base[0] = raw.pos
        try:
            proven = loader._piece_loop(stream, start, 0, exact, end=end)
            loader.gzip_flags = loader.check_gzip_end(stream)
        finally:
            raw.close()
        manifest = manifest_of(loader, base[0], proven)
    except _NeedExact:
        conn.send(("exact", None))
        return 0
    except (TraceError, OSError, ValueError, MemoryError, RecursionError, zlib.error,
            EOFError) as err:
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return 0
    conn.send(("done", manifest))
    send_columns(conn, loader.builder)
    conn.close()
    return 0


# ----------------------------------------------------------------------------- merge


def merge(loader: Any, conn: Connection, m: dict[str, Any]) -> None:
    """Append a worker's range to the loader's builder (under its lock: snapshots wait)."""
    from .loader import _FLOW_DICT_BASE

    b = loader.builder
    row0 = b.items
    with b.lock:
        st = b.strings
        slut = np.array([st.intern(t) for t in m["strings"]], np.int32)
        dup = 0
        for v, i in m["non_str"]:  # a non-string name counts once per table, as in one stream
            try:
                if v in st._ids:
                    dup += 1
                else:
                    st._ids[v] = int(slut[i])
            except TypeError:
                pass
        st.non_text += m["non_text"] - dup

        llut = np.zeros(max(len(m["lanes"]), 1), np.int32)
        for i, (pid, tid, sub, gpu, device, stream) in enumerate(m["lanes"]):
            li = b.lane_id(pid, tid, sub)
            llut[i] = li
            if gpu:
                lk = b.lanes[li]
                lk.gpu = True
                if lk.device < 0:
                    lk.device = device
                if lk.stream < 0:
                    lk.stream = stream

        tlut = np.zeros(max(len(m["counter_tracks"]), 1), np.int32)
        for i, key in enumerate(m["counter_tracks"]):
            t = b._counter_ids.get(key)
            if t is None:
                t = b._counter_ids[key] = len(b.counter_tracks)
                b.counter_tracks.append(key)
            tlut[i] = t

        # dict-numbered flow keys of the worker -> this builder's keys
        fk_old = np.array([k for _, k in m["flow_keys"]], np.int64)
        fk_new = np.zeros(len(fk_old), np.int64)
        for j, (key, _) in enumerate(m["flow_keys"]):
            if key[0] == "v2":
                fk_new[j] = b._flow_keys.setdefault(key, _FLOW_DICT_BASE + len(b._flow_keys))
            else:
                fk_new[j] = b.flow_key(int(slut[key[0]]), key[1])
        fk_order = np.argsort(fk_old)
        fk_old, fk_new = fk_old[fk_order], fk_new[fk_order]

        for name in COLUMN_SETS:
            cols = getattr(b, name)
            n = m["counts"][name]
            at = cols.count
            cols.reserve(at + n)
            got = {}
            for k, a in cols.arrays.items():
                view = a[at : at + n]
                if n:
                    conn.recv_bytes_into(memoryview(view).cast("B"))
                else:
                    conn.recv_bytes()
                got[k] = view
            if not n:
                continue
            for k, view in got.items():
                if k in ("name", "cat"):
                    np.take(slut, view, out=view)
                elif k == "lane":
                    np.take(llut, view, out=view)
                elif k == "row":
                    view += np.uint32(row0)
                elif k == "track":
                    np.take(tlut, view, out=view)
            if name == "flows":
                _remap_flow_keys(b, got["key"], slut, fk_old, fk_new)
            cols.count = at + n

        for lane, stack in m["open_b"].items():
            if stack:
                b.open_b.setdefault(int(llut[lane]), []).extend(
                    (s, int(slut[nm]), int(slut[ct]), r + row0) for s, nm, ct, r in stack)
        for r, a in m["extra_args"].items():
            b.extra_args[r + row0] = a
        for mine, theirs in zip((b.process_names, b.process_labels, b.process_sort,
                                 b.thread_names, b.thread_sort), m["meta"]):
            mine.update(theirs)
        b.header.update(m["header"])
        b.items += m["items"]
        b.events += m["events"]
        for mine, theirs in ((b.phase_counts, m["phase_counts"]), (b.skipped, m["skipped"]),
                             (b.notes, m["notes"])):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
    first, pieces = m["pieces"]
    for f, p in zip(first, pieces):
        loader.pieces.add(f + row0, *p)
    loader.warnings.extend(m["warnings"])
    loader.truncated = loader.truncated or m["truncated"]


def _remap_flow_keys(b: Any, key: np.ndarray, slut: np.ndarray, fk_old: np.ndarray,
                     fk_new: np.ndarray) -> None:
    from .loader import _FLOW_CAT_LIMIT, _FLOW_DICT_BASE, _FLOW_ID_LIMIT

    packed = key < _FLOW_DICT_BASE
    if packed.any():
        kp = key[packed]
        cat = slut[kp >> 40].astype(np.int64)
        fid = kp & (_FLOW_ID_LIMIT - 1)
        if (cat < _FLOW_CAT_LIMIT).all():
            key[packed] = cat << 40 | fid
        else:  # a category id too big to pack here: numbered through the dict
            key[packed] = [b.flow_key(int(c), int(i)) for c, i in zip(cat, fid)]
    dict_keys = ~packed
    if dict_keys.any():
        k = key[dict_keys]
        key[dict_keys] = fk_new[np.searchsorted(fk_old, k)]


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))


# ----------------------------------------------------------------------------- many files


def load_many(paths: list[str], progress: Callable[[int, int], None] | None = None,
              processes: int | None = None,
              cancelled: Callable[[], bool] = lambda: False) -> list[tuple[str, Any, str | None]]:
    """``(path, trace, error)`` for each of ``paths``, parsed side by side: each plain file's
    events array by one worker process (up to ``processes`` at once, default one per core),
    merged and indexed here as it comes; gzip files, files whose events do not start in their
    first megabyte, and a worker that fails are loaded here as usual. ``progress(done,
    total)`` in bytes on disk; ``cancelled()`` stops what has not started."""
    from .loader import HEAD_BYTES, Loader, _locate_events, default_workers
    from .source import TraceError

    n = max(1, processes or default_workers())
    out: list[tuple[str, Any, str | None]] = [(p, None, None) for p in paths]
    sizes = [0] * len(paths)
    remote: list[tuple[int, Any, dict[str, Any]]] = []
    local: list[int] = []
    for i, p in enumerate(paths):
        try:
            loader = Loader(p, workers=1)
            sizes[i] = loader.source.size
            where = _locate_events(loader.source.read_head(HEAD_BYTES)) \
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
    running: list[tuple[int, Any, dict[str, Any], _Worker]] = []

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
                w = _spawn(paths[i], where["offset"], None, loader.piece_bytes, False)
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
                    merge(loader, w.conn, manifest)
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
