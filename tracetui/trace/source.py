"""Opening a trace file: plain or gzip (by magic bytes), with byte-level progress.

Everything here is about bytes; the JSON layer lives in :mod:`tracetui.trace.loader`.
"""

from __future__ import annotations

import errno
import gzip
import importlib
import os
import stat
import sys
import types
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..textutil import safe_text

def _inflater() -> types.ModuleType:
    """zlib-ng when installed: it inflates 2-3x faster than the system zlib, with the same
    API (decompressor states copy too); else the system zlib."""
    try:
        return importlib.import_module("zlib_ng.zlib_ng")
    except ImportError:  # pragma: no cover - a platform without its wheel
        return zlib


_zlib = _inflater()

GZIP_MAGIC = b"\x1f\x8b"
#: What broken deflate data raises: zlib-ng's own error class (or zlib.error); code that
#: catches it catches zlib.error too (gzip's own reads).
InflateError: type[Exception] = _zlib.error


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n:,} bytes"


class TraceError(Exception):
    """A trace that cannot be opened. ``str(err)`` is one line meant for the user: control
    characters (a newline in a file name, an escape sequence) are made visible."""

    def __init__(self, message: str) -> None:
        super().__init__(safe_text(message))


class CountingReader:
    """A read-only file wrapper that counts the bytes handed out (progress on disk).

    ``pos`` is the file offset; with ``limit`` nothing at or past that offset is handed out:
    a file that grows while it is read (a writer still at work) is read to the size it had
    when it was opened, not for as long as the writer writes."""

    __slots__ = ("_f", "pos", "limit")

    def __init__(self, f: BinaryIO, pos: int = 0, limit: int | None = None) -> None:
        self._f = f
        self.pos = pos
        self.limit = limit

    def read(self, n: int = -1) -> bytes:
        if self.limit is not None:
            left = self.limit - self.pos
            if left <= 0:
                return b""
            n = left if n < 0 else min(n, left)
        data = self._f.read(n)
        self.pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._f.close()


def _salvage(state: Any, data: bytes) -> bytes:
    """What ``data`` inflates to before the broken deflate data in it, from the
    decompressor's ``state`` before it: fed a little at a time (then a byte at a time), all
    that decodes before the damage comes out (one call that raises gives nothing)."""
    parts: list[bytes] = []
    at, step = 0, 256
    while at < len(data) and not state.eof:
        keep = state.copy()
        try:
            parts.append(state.decompress(data[at : at + step]))  # a few bytes: no bound
        except (zlib.error, InflateError):
            if step == 1:
                break
            state, step = keep, 1  # the same bytes again, one at a time
            continue
        at += step
    return b"".join(parts)


class GzipStream:
    """Decompresses a (possibly multi-member) gzip stream read through a CountingReader.

    Unlike :class:`gzip.GzipFile` this tells a cut-off stream (``truncated``) apart from
    corrupt data (:data:`InflateError`), and keeps the compressed position for progress.
    """

    #: Decompressed bytes between two saved decompressor states (for random access later).
    SNAPSHOT_EVERY = 32 << 20

    def __init__(self, raw: CountingReader, chunk: int = 1 << 16,
                 snapshots: list[tuple[int, int, Any]] | None = None,
                 defer_errors: bool = False) -> None:
        # 64 KB of compressed input at a time: its output (~1 MB at the ratio of traces)
        # mostly fits one bounded call, so the input left over is seldom copied
        self._raw = raw
        self._chunk = chunk
        self._d = _zlib.decompressobj(wbits=31)
        self._pending = b""
        self._eof = False
        self.trailing_garbage = False
        self._buf = b""
        self._off = 0
        self.truncated = False
        # With defer_errors, broken deflate data ends the stream (after everything before
        # it was handed out) and is kept here, for the reader to report once it has used
        # all it got: a loader then keeps every whole event before the damage.
        self.defer_errors = defer_errors
        self.error: Exception | None = None
        self.out_pos = 0  # decompressed bytes handed out by read()
        self._made = 0  # decompressed bytes produced so far
        # (decompressed offset, compressed offset, decompressor state), if wanted
        self.snapshots = snapshots

    @classmethod
    def resume(cls, path: str, snapshot: tuple[int, int, Any],
               limit: int | None = None) -> "GzipStream":
        """A stream that starts at a saved state (decompressed offset ``snapshot[0]``), its
        compressed bytes read up to ``limit`` (see :class:`CountingReader`)."""
        out_pos, raw_pos, state = snapshot
        f = open(path, "rb", buffering=0)
        f.seek(raw_pos)
        g = cls(CountingReader(f, raw_pos, limit))
        if state is not None:
            g._d = state.copy()
        g.out_pos = g._made = out_pos
        return g

    def _fill(self) -> bytes:
        if self.trailing_garbage:
            self._eof = True
            return b""
        while True:
            snaps = self.snapshots
            if snaps is not None and \
                    self._made - (snaps[-1][0] if snaps else 0) >= self.SNAPSHOT_EVERY:
                # the decompressor has consumed the input up to (read so far - pending)
                snaps.append((self._made, self._raw.pos - len(self._pending), self._d.copy()))
            data, self._pending = (self._pending or self._raw.read(self._chunk)), b""
            if not data:
                # The stream ended; if the current member never reached its
                # end-of-stream marker the file was cut off.
                self.truncated = not self._d.eof
                self._eof = True
                return b""
            # Bounded output per call: a small compressed block can inflate enormously.
            before = self._d.copy() if self.defer_errors else None
            try:
                out = self._d.decompress(data, 1 << 20)
            except (zlib.error, InflateError) as err:
                if before is None:
                    raise
                self.error, self._eof = err, True
                out = _salvage(before, data)
                self._made += len(out)
                return out
            if self._d.eof:
                # The member ended; what follows it is another member, padding or junk.
                rest = self._d.unused_data
                if rest[:2] == GZIP_MAGIC:
                    self._d = _zlib.decompressobj(wbits=31)
                    self._pending = rest
                elif rest.strip(b"\x00"):
                    # Not gzip: the stream ends here (the loader warns). What this member
                    # gave is still handed out.
                    self.trailing_garbage = True
            else:
                self._pending = self._d.unconsumed_tail
            if out:
                self._made += len(out)
                return out

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` decompressed bytes (all that is left if n < 0); b"" at the end."""
        if self._off >= len(self._buf):
            if self._eof:
                return b""
            self._buf, self._off = self._fill(), 0
        end = len(self._buf) if n < 0 else self._off + n
        if self._off == 0 and end >= len(self._buf):
            out = self._buf  # all of it: no copy
        else:
            out = self._buf[self._off : end]
        self._off += len(out)
        self.out_pos += len(out)
        return out

    def readable(self) -> bool:
        return True

    def unread(self, data: bytes) -> None:
        """Hand ``data`` (the last bytes read) out again on the next reads."""
        self._buf = data + self._buf[self._off :]
        self._off = 0
        self.out_pos -= len(data)

    def close(self) -> None:
        self._raw.close()


@dataclass
class Source:
    """A trace file on disk. ``size`` is its size when opened, and all that is read of it:
    what a writer appends later is not part of this load (the loader says it grew)."""

    path: str
    size: int
    compressed: bool
    #: gzip only: saved decompressor states, filled while the loader streams the file
    snapshots: list[tuple[int, int, Any]] | None = None
    #: (device, inode, size, mtime_ns) when opened: tells whether the file changed since
    stamp: tuple[int, int, int, int] | None = None
    _json_size: int | None = field(default=None, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str], size: int | None = None) -> "Source":
        """``size``: read no more than that even if the file is longer now (a worker process
        of a parallel load reads what the loading process saw when it opened the file)."""
        p = os.fspath(path)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise TraceError(f"{p}: no such file") from None
        except PermissionError:
            raise TraceError(f"{p}: permission denied") from None
        except OSError as e:
            raise TraceError(f"{p}: cannot open ({e.strerror or e})") from None
        if stat.S_ISDIR(st.st_mode):
            raise TraceError(f"{p}: is a directory, not a trace file")
        if not stat.S_ISREG(st.st_mode):
            kind = "a pipe" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
            raise TraceError(f"{p}: is {kind}: copy it to a file first (the command line "
                             "does so for `tracetui -` and pipes)")
        try:
            with open(p, "rb") as f:
                head = f.read(2)
        except PermissionError:
            raise TraceError(f"{p}: permission denied") from None
        except OSError as e:
            if e.errno == errno.EISDIR:
                raise TraceError(f"{p}: is a directory, not a trace file") from None
            raise TraceError(f"{p}: cannot read ({e.strerror or e})") from None
        if not head:
            raise TraceError(f"{p}: the file is empty")
        src = cls(path=p, size=st.st_size, compressed=head == GZIP_MAGIC, stamp=_stamp(st))
        if size is not None and 0 <= size < src.size:
            src.size = size
            src.stamp = (st.st_dev, st.st_ino, size, st.st_mtime_ns)
        return src

    def change(self) -> str | None:
        """How the file differs from when it was opened, or None: "grew from 1.2 MB to
        2.4 MB", "shrank …", "was replaced", "was deleted", "was rewritten"."""
        try:
            st = os.stat(self.path)
        except OSError:
            return "was deleted"
        now = _stamp(st)
        was = self.stamp
        if was is None or now == was:
            return None
        if now[:2] != was[:2]:
            return "was replaced by another file"
        if now[2] > was[2]:
            return f"grew from {_mb(was[2])} to {_mb(now[2])}"
        if now[2] < was[2]:
            return f"shrank from {_mb(was[2])} to {_mb(now[2])}"
        return "was rewritten"

    def reread_problem(self) -> str | None:
        """Why events cannot be re-read from the file now (their offsets are the file's when
        it was loaded), or None. A file that only grew keeps its offsets (a writer appends)."""
        change = self.change()
        if change is None or change.startswith("grew") or change == "was rewritten":
            return None  # appended to, or touched (same size): the offsets still hold
        return f"the file {change} since it was loaded: reopen it"

    def age_s(self) -> float:
        """Seconds since the file was last modified, when it was opened."""
        import time

        return time.time() - self.stamp[3] / 1e9 if self.stamp else float("inf")

    def open_stream(self, record: bool = False, defer_errors: bool = False
                    ) -> tuple[CountingReader, CountingReader | GzipStream]:
        """Return (raw, stream): ``raw.pos`` is progress on disk, ``stream`` yields JSON bytes.

        With ``record``, a gzip stream saves decompressor states for :meth:`read_range`;
        ``defer_errors``: see :class:`GzipStream`.
        """
        try:
            raw = CountingReader(open(self.path, "rb", buffering=0), limit=self.size)
        except OSError as e:
            raise TraceError(f"{self.path}: cannot read ({e.strerror or e})") from None
        if self.compressed:
            if record:
                self.snapshots = []
            return raw, GzipStream(raw, snapshots=self.snapshots if record else None,
                                   defer_errors=defer_errors)
        return raw, raw

    def open_at(self, offset: int) -> CountingReader:
        """A plain file read from byte ``offset`` to its size when opened (a range of it)."""
        f = open(self.path, "rb", buffering=0)
        f.seek(offset)
        return CountingReader(f, pos=offset, limit=self.size)

    def read_range(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the JSON text from ``offset`` (decompressed coordinates)."""
        if not self.compressed:
            with open(self.path, "rb") as f:
                f.seek(offset)
                return f.read(max(0, min(length, self.size - offset)))
        snaps = self.snapshots or []
        best = (0, 0, None)
        for snap in snaps:
            if snap[0] <= offset:
                best = snap
        g = GzipStream.resume(self.path, best, self.size)
        try:
            skip = offset - best[0]
            while skip > 0:
                got = g.read(min(skip, 1 << 20))
                if not got:
                    return b""
                skip -= len(got)
            parts, need = [], length
            while need > 0:
                got = g.read(min(need, 1 << 22))
                if not got:
                    break
                parts.append(got)
                need -= len(got)
            return b"".join(parts)
        finally:
            g.close()

    def record_rest(self) -> None:
        """gzip: decompress on from the last saved state to the end, saving states on the
        way, so that events past it can be re-read quickly (run in a background thread when
        another process parsed that part of the file; inflating lets go of the GIL)."""
        snaps = self.snapshots
        if not self.compressed or snaps is None:
            return
        g = GzipStream.resume(self.path, snaps[-1] if snaps else (0, 0, None), self.size)
        g.snapshots = snaps
        try:
            while g.read(1 << 22):
                pass
        except (OSError, zlib.error, InflateError, EOFError):
            pass
        finally:
            g.close()

    def json_size_estimate(self) -> int:
        """Bytes of JSON text: the file's size, or for gzip an estimate (the trailer's size
        modulo 4 GiB, made whole by the ratio of the first megabytes; worked out once)."""
        if not self.compressed:
            return self.size
        if self._json_size is None:
            self._json_size = self._estimate_json_size()
        return self._json_size

    def _estimate_json_size(self) -> int:
        raw, stream = self.open_stream()
        try:
            got = 0
            while got < (8 << 20):
                block = stream.read(1 << 20)
                if not block:
                    return got
                got += len(block)
            ratio = got / max(raw.pos, 1)
            with open(self.path, "rb") as f:
                f.seek(max(self.size - 4, 0))
                isize = int.from_bytes(f.read(4), "little")
        except (OSError, zlib.error, InflateError, EOFError):
            return self.size
        finally:
            raw.close()
        guess = self.size * ratio
        if isize < self.size:
            # less text than gzip bytes: the trailer is the last of several members (bgzip,
            # concatenated .gz files), not the whole; the ratio's guess it is (no worker
            # started before: the estimate was the last member's few bytes)
            return int(guess)
        k = max(0, round((guess - isize) / 2**32))
        return isize + k * 2**32

    def read_head(self, limit: int) -> bytes:
        """The first ``limit`` bytes of the (decompressed) JSON text."""
        raw, stream = self.open_stream()
        parts: list[bytes] = []
        try:
            got = 0
            while got < limit:
                block = stream.read(min(1 << 20, limit - got))
                if not block:
                    break
                parts.append(block)
                got += len(block)
            return b"".join(parts)[:limit]
        except (zlib.error, InflateError, EOFError, gzip.BadGzipFile) as e:
            if not parts:
                raise TraceError(f"{self.path}: broken gzip data ({e})") from None
            return b"".join(parts)[:limit]
        finally:
            raw.close()


# ----------------------------------------------------------------------------- pipes and stdin

#: temporary copies of pipes made by :func:`spool`: their path -> what the user named
SPOOLED: dict[str, str] = {}
#: every copy made, whole or still being written: what :func:`remove_spools` removes
_SPOOLS: set[str] = set()
_SPOOLED_ATEXIT: list[Any] = []  # remove_spools, once registered to run at exit

#: The most bytes a pipe's copy takes unless TRACETUI_SPOOL_MAX says otherwise: far above any
#: real trace (a few GB; the largest seen, tens), below filling a disk; a writer that never
#: stops (`yes`, /dev/zero) is stopped after minutes of copying, not when the disk is full.
SPOOL_MAX_DEFAULT = 64 << 30
#: ... and never more than this share of the temporary directory's free space when the copy
#: starts: $TMPDIR is often a /tmp shared with others, or a tmpfs (memory); a copy that fills
#: it breaks every other program that writes there.
SPOOL_FREE_SHARE = 0.9
SPOOL_MAX_ENV = "TRACETUI_SPOOL_MAX"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _binary(n: int) -> str:
    """``n`` bytes in the units TRACETUI_SPOOL_MAX takes: "200 KiB", "1.5 GiB", "64 GiB"."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{n:,} bytes"


def parse_size(text: str) -> int | None:
    """``text`` as a number of bytes: "1048576", "512K", "64G", "1.5 GiB" (K, M, G, T are
    powers of 1024, with or without "iB"/"B"); None if it is not one, or not above 0."""
    t = text.strip().lower().replace(" ", "").removesuffix("b").removesuffix("i")
    unit = t[-1:] if t[-1:].isalpha() else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        return None
    if unit not in _UNITS or not 0 < value < float("inf") or value * _UNITS[unit] < 1:
        return None
    return int(value * _UNITS[unit])


def spool_cap(where: str) -> tuple[int, str]:
    """The most bytes a pipe's copy in the directory ``where`` may take, and what sets it
    (for the error): TRACETUI_SPOOL_MAX when set; else the least of SPOOL_MAX_DEFAULT and
    SPOOL_FREE_SHARE of the free space there."""
    env = os.environ.get(SPOOL_MAX_ENV, "").strip()
    if env:
        cap = parse_size(env)
        if cap is None:
            raise TraceError(f"{SPOOL_MAX_ENV}={env}: not a size (bytes, or a number with K, "
                             "M, G or T, e.g. 100G)")
        return cap, f"{SPOOL_MAX_ENV}={env}"
    try:
        st = os.statvfs(where)
        free = int(st.f_bavail * st.f_frsize * SPOOL_FREE_SHARE)
    except (OSError, AttributeError):
        free = SPOOL_MAX_DEFAULT
    if free < SPOOL_MAX_DEFAULT:
        return free, f"{SPOOL_FREE_SHARE:.0%} of the free space there"
    return SPOOL_MAX_DEFAULT, "the default"


def needs_spool(path: str) -> bool:
    """Whether ``path`` is stdin (``-``) or a pipe/device that can be read only once: the
    loader seeks (parallel ranges, re-reading an event's args), so it needs a file."""
    if path == "-":
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False  # Source.open says what is wrong with it
    return not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def shown_path(path: str) -> str:
    """The name to show for ``path``: what the user gave for a spooled pipe."""
    return SPOOLED.get(path, path)


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _probe(fd: int) -> bytes | None:
    """The first bytes of a FIFO opened without blocking: b"" when no process has it open
    for writing, None when one has and has written nothing yet. The fd blocks again after."""
    try:
        first = os.read(fd, 1 << 20)
    except BlockingIOError:
        first = None
    if first != b"":
        os.set_blocking(fd, True)
    return first


def spool(path: str, progress: Any = None, tmpdir: str | None = None) -> str:
    """Copy stdin (``-``) or a pipe to a temporary file, removed when the process exits (or
    a signal stops it: :func:`remove_spools`), and return the file's path.
    ``progress(bytes_so_far)`` is called every few megabytes. The copy stops with an error at
    :func:`spool_cap`. A FIFO that nobody writes to yet is said so on stderr before waiting."""
    import atexit
    import tempfile

    label = "stdin" if path == "-" else path
    where = tmpdir or tempfile.gettempdir()
    cap, why = spool_cap(where)
    first: bytes | None = b""
    if path == "-":
        if os.isatty(0):
            raise TraceError("-: stdin is a terminal: pipe a trace into it "
                             "(e.g. `zcat trace.json.gz | tracetui -`)")
        src, own = 0, False
    else:
        try:
            if _is_fifo(path):
                # An open for reading blocks until a writer opens it, silently, forever if
                # none comes: open without blocking first and look.
                src = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                try:
                    first = _probe(src)
                except OSError:
                    os.close(src)
                    raise
                if first == b"":
                    # Nobody writes. Closed first: a writer that comes now waits in its own
                    # open for the blocking one below, and nothing it writes is lost.
                    os.close(src)
                    print(f"tracetui: waiting for a writer on FIFO {safe_text(path)} "
                          "(nothing has it open for writing yet)", file=sys.stderr, flush=True)
                    src = os.open(path, os.O_RDONLY)
            else:
                src = os.open(path, os.O_RDONLY)
            own = True
        except OSError as e:
            raise TraceError(f"{path}: cannot open ({e.strerror or e})") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix="tracetui-pipe-", suffix=".json", dir=where)
    except OSError as e:
        if own:
            os.close(src)
        raise TraceError(f"{label}: cannot make a temporary file in {where} "
                         f"({e.strerror or e}); set TMPDIR") from None
    _SPOOLS.add(tmp)  # at once: a signal from here on finds it (tracetui.signals)
    if not _SPOOLED_ATEXIT:
        _SPOOLED_ATEXIT.append(atexit.register(remove_spools))
    total, told = 0, 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                if first:
                    block, first = first, None
                else:
                    try:
                        block = os.read(src, 1 << 20)
                    except OSError as e:
                        raise TraceError(f"{label}: read error ({e.strerror or e})") from None
                if not block:
                    break
                if total + len(block) > cap:
                    more = "set TMPDIR to a roomier place, or " if "free" in why else ""
                    raise TraceError(
                        f"{label}: more than {_binary(cap)} came through the pipe, the cap on "
                        f"its copy in {where} ({why}): {more}set {SPOOL_MAX_ENV} (bytes, or "
                        "e.g. 100G) to raise it")
                try:
                    out.write(block)
                except OSError as e:
                    raise TraceError(f"{label}: cannot keep a copy in {where} ({e.strerror or e}"
                                     "); set TMPDIR to a roomier place") from None
                total += len(block)
                if progress is not None and total - told >= (4 << 20):
                    told = total
                    progress(total)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        if own:
            os.close(src)
    if total == 0:
        _remove(tmp)
        raise TraceError(f"{label}: nothing came through the pipe")
    SPOOLED[tmp] = label
    return tmp


def remove_spools() -> None:
    """Remove every copy :func:`spool` made, whole or not (at exit, and when a signal stops
    the process: a copy is as big as the trace, and nothing else would remove it)."""
    for tmp in list(_SPOOLS):
        _remove(tmp)


def _remove(path: str) -> None:
    _SPOOLS.discard(path)
    try:
        os.unlink(path)
    except OSError:
        pass


def relabel(text: str) -> str:
    """``text`` with the paths of spooled pipes replaced by what the user named."""
    for tmp, label in SPOOLED.items():
        text = text.replace(tmp, label)
    return text
