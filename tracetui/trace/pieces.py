"""Cutting the traceEvents array into pieces at event boundaries, and re-reading them.

The array is cut into pieces of a few hundred KB at event boundaries and each piece is decoded
on its own (msgspec, :mod:`tracetui.trace.events`). A boundary is found by its text alone -
``}`` + optional whitespace + ``,`` + optional whitespace + ``{`` - whatever the layout: one
event per line (Kineto), one line (``json.dump``), ``indent=2``, CRLF, tabs, a comma at the
start of each line, and mixtures of them. Such a pattern may also lie inside a string or an
event's nested objects, so a cut is only a candidate: the piece it ends is *proven* by
parsing as an array of whole events. A wrong cut leaves a string or an object open and the
piece fails to parse; an earlier candidate is tried. Anything that cannot be proven - damage,
a cut-off end - goes to ijson, which streams to the exact end of what is whole.

:class:`PieceTable` keeps, per piece, its first row and byte range (nothing per event), so
any event can be re-read from the file on demand. :func:`locate_events` finds where the
array starts (and reads the top-level keys before it).
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import re
import threading
import zlib
from typing import Any

import ijson
import msgspec
import numpy as np

from .events import NeedExact, as_event, decode_array, decode_piece, decode_tail
from .source import InflateError, Source, TraceError

#: Top-level keys before "traceEvents" (deviceProperties, ...) are looked for in these bytes.
HEAD_BYTES = 1 << 20

PIECE = 512 << 10  # bytes of JSON text per piece (small: the transient memory is a few pieces)
MAX_PIECE = 64 << 20  # beyond this without a proven cut, stream the rest with ijson
CUT_TRIES = 4  # candidate cuts tried per read, from the end of the buffer backwards
FAILED_READS = 2  # reads whose candidates all fail before the rest goes to ijson

KIND_ARRAY = 0  # bytes of whole events ending in ",": parse "[" + bytes[:-1] + "]"
KIND_TAIL = 1  # the last events, then "]" and whatever follows: raw_decode("[" + text)
KIND_IJSON = 2  # everything from offset on, streamed with ijson as "[" + bytes
KIND_IJSON_FILE = 3  # the whole file streamed with ijson (prefix traceEvents.item)


#: Nesting beyond this is damage, not a trace: ijson's cost grows with the square of the depth
#: (100,000 "[" took minutes), and the fast path's decoders refuse ~1,000 levels anyway.
MAX_DEPTH = 1100

#: Bytes per read for ijson. yajl lexes a token that spans reads again from its start on
#: every read, so one huge string costs (its size / this)² / 2 reads' worth: at ijson's
#: default 64 KB, a 200 MB name took minutes; at 4 MB, seconds.
IJSON_BLOCK = 4 << 20

class Depth:
    """The JSON nesting depth of a byte stream, block by block (brackets inside strings do not
    count): :meth:`feed` raises RecursionError once it passes :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the previous block ended with an odd run of backslashes

    def feed(self, data: bytes) -> None:
        step = 1 << 20  # numpy temporaries of ~10 bytes per byte: bounded by the sub-block
        for i in range(0, len(data), step):
            self._feed(data[i : i + step] if len(data) > step else data)

    def _feed(self, data: bytes) -> None:
        # Only quotes, backslashes and brackets matter: work on their positions alone (a long
        # string or number costs one table lookup per byte).
        n = len(data)
        if not n:
            return
        a = np.frombuffer(data, np.uint8)
        idx = np.flatnonzero(_JSON_SPECIAL[a])
        m = len(idx)
        if m == 0:
            self.escaped = False  # the first byte, whatever it is, took a pending escape
            return
        v = a[idx]
        bs = v == 0x5C
        before, last = _backslash_runs(idx, bs)
        escaped = before % 2 == 1
        if self.escaped and idx[0] == 0:  # the previous block's odd run goes on into this one
            flip = np.ones(m, bool)
            flip[1:] = last[:-1] == -1
            escaped ^= flip
        quote = (v == 0x22) & ~escaped
        flips = np.cumsum(quote) % 2 == 1
        inside = flips != self.in_string  # True inside a string (a quote counts as inside)
        step = ((v == 0x5B) | (v == 0x7B)).astype(np.int8) - ((v == 0x5D) | (v == 0x7D)).astype(np.int8)
        step[inside] = 0
        depth = self.depth + np.cumsum(step, dtype=np.int64)
        if int(depth.max()) > MAX_DEPTH:
            raise RecursionError("nested too deeply")
        self.depth = int(depth[-1])
        self.in_string = self.in_string != bool(flips[-1])  # an odd number of quotes
        if bs[-1] and idx[-1] == n - 1:
            tail_run = m - 1 - (int(last[-2]) if m > 1 else -1)
            whole = tail_run == n  # the block is nothing but backslashes
            self.escaped = (tail_run + (1 if self.escaped and whole else 0)) % 2 == 1
        else:
            self.escaped = False


_JSON_SPECIAL = np.zeros(256, bool)
_JSON_SPECIAL[list(b'\\"[]{}')] = True


class Chain:
    """A file-like reader that returns ``prefix`` first, then the rest of ``stream``; with
    ``depth``, it stops the text (RecursionError) where it nests deeper than MAX_DEPTH."""

    def __init__(self, prefix: bytes, stream: Any, depth: bool = True) -> None:
        self._prefix = prefix
        self._off = 0  # handed out so far (slicing the rest off each time is quadratic)
        self._stream = stream
        self.tail = b""  # the last bytes handed out: how the text ends, if it has ended
        self._depth = Depth() if depth else None

    def read(self, n: int = -1) -> bytes:
        left = len(self._prefix) - self._off
        if left > 0:
            k = left if n < 0 or n >= left else n
            out = self._prefix[self._off : self._off + k]
            self._off += k
            if self._off == len(self._prefix):
                self._prefix, self._off = b"", 0
        else:
            out = self._stream.read(n)
        if out:
            self.tail = (self.tail + out[-64:])[-64:]
            if self._depth is not None:
                self._depth.feed(out)
        return out


#: An event boundary: the "}" that closes one event, a comma, the "{" that opens the next,
#: with any JSON whitespace around the comma (one line, one event per line, indent=2, CRLF,
#: tabs, a comma at the start of the line: all the same to it).
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")
_SCAN = 1 << 14  # bytes looked at first, backwards from a cut's limit (then 4x, 16x, ...)


def find_cut(buf: bytes | bytearray | memoryview, below: int) -> int:
    """Where the last candidate event boundary before ``below`` opens its event (the "{"),
    or -1: ``buf[:cut]`` then ends with the comma after a candidate event.

    A candidate is only a pattern (``}``, comma, ``{``, with whitespace): it may lie inside a
    string or inside an event's nested objects. The piece it ends is proven by parsing: a
    wrong cut leaves an unclosed string or object, and the piece fails to parse."""
    window = _SCAN
    while True:
        lo = max(0, below - window)
        last = -1
        for m in _BOUNDARY.finditer(buf, lo, below):
            last = m.end() - 1
        if last > 0:
            return last
        if lo == 0:
            return -1
        window *= 4


def structural_cut(buf: bytes | bytearray | memoryview, below: int, first: int = 0) -> int:
    """Where the last event that opens before ``below`` (and after ``first``, where the
    first event opens) opens, found by following the JSON structure from the start of
    ``buf`` (which must be an event boundary: outside any string, at the events array's
    depth), or -1. One vectorised pass over the quotes, backslashes and
    brackets: used when the last candidate of :func:`find_cut` was inside an event (lists of
    objects in its args, ``},{`` in a string), so that such events cost one more pass, not
    a trial parse per false candidate. Still only a candidate: damage fools it too."""
    a = np.frombuffer(buf, np.uint8, count=below)
    idx = np.flatnonzero(_JSON_SPECIAL[a])
    if not len(idx):
        return -1
    v = a[idx]
    inside = _inside_strings(idx, v)
    opens = (v == 0x5B) | (v == 0x7B)
    step = opens.astype(np.int8) - ((v == 0x5D) | (v == 0x7D)).astype(np.int8)
    step[inside] = 0
    depth_before = np.cumsum(step, dtype=np.int64) - step
    top = idx[(v == 0x7B) & ~inside & (depth_before == 0)]
    top = top[top > first]
    return int(top[-1]) if len(top) else -1


def _backslash_runs(idx: np.ndarray, bs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the special bytes at positions ``idx`` (``bs``: which are backslashes): how many
    backslashes come right before each, and for each the last element at or before it that
    does not carry a run of backslashes on to the next (-1: none yet)."""
    m = len(idx)
    j = np.arange(m)
    brk = np.ones(m, bool)  # element k does not carry a run of backslashes on to k + 1
    brk[:-1] = ~(bs[:-1] & (idx[1:] == idx[:-1] + 1))
    last = np.maximum.accumulate(np.where(brk, j, -1))
    before = np.zeros(m, np.int64)
    before[1:] = j[:-1] - last[:-1]
    return before, last


def _inside_strings(idx: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For the special bytes ``v`` at positions ``idx`` of a text that starts outside any
    string: True for those inside a string (a string's quotes count as inside)."""
    before, _ = _backslash_runs(idx, v == 0x5C)
    quote = (v == 0x22) & (before % 2 == 0)
    flips = np.cumsum(quote) % 2 == 1
    return flips | quote


def find_boundary(buf: bytes | memoryview, at: int = 0) -> int:
    """Where the first candidate event boundary at or after ``at`` opens its event, or -1
    (a candidate, as for :func:`find_cut`)."""
    m = _BOUNDARY.search(buf, at)
    return m.end() - 1 if m else -1


_LOOK_AHEAD = 256  # candidates tried for a range's start


def find_range_start(buf: bytes | memoryview) -> int:
    """A candidate boundary in ``buf`` (a window from the middle of the events array) to
    start a range at: the first one whose next event parses as an object with a ``ph``, or
    -1 (no range starts here). The range's start is proven only later, when the range before
    it parses up to it; this choice avoids the candidates inside an event's nested objects or
    strings, which would leave the rest of the file to one stream."""
    c = find_boundary(buf)
    for _ in range(_LOOK_AHEAD):
        if c < 0:
            break
        nxt = find_boundary(buf, c + 1)
        if nxt < 0:
            break
        try:
            got = decode_array(b"[" + bytes(buf[c:nxt]).rstrip().rstrip(b",") + b"]", False)
        except (ValueError, NeedExact):  # (a number only exact decoding holds: another one)
            got = []
        if len(got) == 1 and isinstance(got[0].ph, str):
            return c
        c = nxt
    return -1


#: Bytes read around a planned range cut to find a candidate boundary there.
WINDOW = 1 << 20


def skip_to_boundary(stream: Any, target: int) -> int:
    """Read (and drop) the text up to about ``target``; the offset of the first candidate
    boundary after it, the stream left there (it must have ``unread``); -1 if none."""
    left = target
    while left > 0:
        got = stream.read(min(left, 1 << 22))
        if not got:
            return -1
        left -= len(got)
    window = b""
    while len(window) < WINDOW:
        got = stream.read(WINDOW - len(window))
        if not got:
            break
        window += got
    c = find_range_start(window)
    if c < 0:
        return -1
    stream.unread(window[c:])
    return target + c


class _ArgsOnly(msgspec.Struct, gc=False):
    """An event's ``args``, left as its JSON text; every other field skipped unparsed."""

    args: msgspec.Raw = msgspec.Raw(b"null")


_ARGS_ONLY = msgspec.json.Decoder(list[_ArgsOnly])
_ANY_JSON = msgspec.json.Decoder()
_ANY_LIST = msgspec.json.Decoder(list)
_FIELDS: dict[tuple[str, ...], Any] = {}
_ENCODE = msgspec.json.Encoder()


def _fields_decoder(fields: tuple[str, ...]) -> Any:
    """A decoder of a piece's events keeping of their ``args`` only ``fields``, as raw
    JSON (the rest of each event skipped unparsed; encoded again, those absent left out);
    made once per set of fields."""
    dec = _FIELDS.get(fields)
    if dec is None:
        names = [f"f{i}" for i in range(len(fields))]
        args_t = msgspec.defstruct("ArgFields", [(n, msgspec.Raw, msgspec.Raw(b""))
                                                 for n in names],
                                   rename=dict(zip(names, fields)), omit_defaults=True,
                                   gc=False)
        ev_t = msgspec.defstruct("FieldsEvent", [("args", args_t | None, None)],
                                 gc=False)
        dec = _FIELDS[fields] = msgspec.json.Decoder(list[ev_t])  # type: ignore[valid-type]
    return dec


class PieceTable:
    """Where each event's text lies, so its ``args`` can be re-read on demand (lazily).

    Nothing per event is kept: an event's row is its position in the traceEvents array;
    a piece records its first row, its byte range in the JSON text and how to parse it.
    """

    def __init__(self, source: Source, exact: bool) -> None:
        self.source = source
        self.exact = exact
        self.first: list[int] = []
        self.pieces: list[tuple[int, int, int]] = []  # (kind, offset, length)
        self._cache: tuple[int, list[Any]] | None = None
        self._lock = threading.Lock()

    def add(self, first_row: int, kind: int, offset: int, length: int) -> None:
        self.first.append(first_row)
        self.pieces.append((kind, offset, length))

    def reread_problem(self) -> str | None:
        """Why events cannot be re-read now (the file shrank or was replaced), or None."""
        return self.source.reread_problem()

    def costly(self, row: int) -> bool:
        """Whether re-reading ``row`` streams the file from its piece's start (the rest of
        a damaged file, streamed with ijson: seconds for an event near the end of a large
        one) rather than decoding one piece (milliseconds): the app reads those off the UI
        thread."""
        k = bisect.bisect_right(self.first, row) - 1
        return k >= 0 and self.pieces[k][0] not in (KIND_ARRAY, KIND_TAIL)

    def event(self, row: int) -> Any:
        """The event at ``row`` of the traceEvents array, re-read from the file."""
        with self._lock:
            k = bisect.bisect_right(self.first, row) - 1
            if k < 0:
                return None
            cache = self._cache
            events: list[Any] | None
            if cache is not None and cache[0] == k:
                events = cache[1]
            else:
                events = self._read_piece(k, row - self.first[k])
                if events is None:
                    return None
                self._cache = (k, events)
            kind = self.pieces[k][0]
            i = row - self.first[k] if kind in (KIND_ARRAY, KIND_TAIL) else 0
            if kind not in (KIND_ARRAY, KIND_TAIL):
                self._cache = None  # streamed pieces are read to one event only
            return events[i] if 0 <= i < len(events) else None

    def args_many(self, rows: list[int], fields: tuple[str, ...] | None = None
                  ) -> dict[int, Any]:
        """The ``args`` of ``rows`` (sorted), as far as they can be read quickly: each piece
        holding some decoded once, its other fields and the other events' args skipped
        unparsed, the args wanted then decoded together (a piece decoded in full is several
        times slower: the args of a hundred thousand ops took seconds). ``fields``: of each
        row's args only these keys, as the JSON text of an object of those it has (bytes:
        equal inputs are equal bytes, a key for what is worked out from them). Rows left
        out (a streamed or damaged piece, args that are no object, a value only the exact
        decoding holds) are for :meth:`event`, one by one."""
        out: dict[int, Any] = {}
        sel = _fields_decoder(fields) if fields else None
        if self.source.reread_problem():
            return out
        if not rows or not self.first:
            return out
        ks = np.searchsorted(np.asarray(self.first, np.int64), np.asarray(rows, np.int64),
                             side="right") - 1
        cuts = np.flatnonzero(np.diff(ks)) + 1  # the rows of one piece are consecutive
        spans = zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)])
        for i, j in spans:
            k = int(ks[i])
            if k < 0:
                continue
            kind, offset, length = self.pieces[k]
            if kind == KIND_ARRAY:
                try:
                    data = self.source.read_range(offset, length)
                    last = len(data)
                    while last and data[last - 1] in b" \t\r\n":
                        last -= 1
                    body = bytearray(b"[")
                    body += data[: last - 1]
                    body += b"]"
                    items = (sel or _ARGS_ONLY).decode(body)
                except (OSError, ValueError, zlib.error, InflateError, TraceError,
                        msgspec.DecodeError, RecursionError):
                    items = None  # (ValidationError: an odd event; each read alone)
                if items is not None:
                    first = self.first[k]
                    want = [r for r in rows[i:j] if 0 <= r - first < len(items)]
                    if sel is not None:  # (the fields' raw text: no decoding here)
                        enc = _ENCODE.encode
                        for r in want:
                            a = items[r - first].args
                            out[r] = b"{}" if a is None else enc(a)
                        continue
                    try:  # (one decoding for all of them)
                        out.update(zip(want, _ANY_LIST.decode(b"[" + b",".join(
                            [items[r - first].args for r in want]) + b"]")))
                    except (msgspec.DecodeError, RecursionError):
                        for r in want:  # (a number beyond float64: that one read exactly)
                            try:
                                out[r] = _ANY_JSON.decode(items[r - first].args)
                            except (msgspec.DecodeError, RecursionError):
                                pass
        return out

    def _read_piece(self, k: int, index: int) -> list[Any] | None:
        kind, offset, length = self.pieces[k]
        if self.source.reread_problem():  # shrunk or replaced: these offsets mean nothing now
            return None
        try:
            if kind == KIND_ARRAY:
                return decode_piece(self.source.read_range(offset, length), self.exact, full=True)
            if kind == KIND_TAIL:
                data = self.source.read_range(offset, length)
                try:
                    return decode_tail(data, self.exact)[0]
                except NeedExact:  # a number beyond float64 in it: this piece exactly
                    return decode_tail(data, True)[0]
            raw, stream = self.source.open_stream()
            try:
                if kind == KIND_IJSON:
                    skip = offset
                    while skip > 0:
                        got = stream.read(min(skip, 1 << 20))
                        if not got:
                            return None
                        skip -= len(got)
                    items = ijson.items(Chain(b"[", stream), "item", use_float=not self.exact,
                                        buf_size=IJSON_BLOCK)
                else:
                    items = ijson.items(stream, "traceEvents.item", use_float=not self.exact,
                                        buf_size=IJSON_BLOCK)
                return [as_event(x) for x in itertools.islice(items, index, index + 1)]
            finally:
                raw.close()
        except (OSError, ValueError, zlib.error, InflateError, ijson.JSONError, TraceError):
            return None


# ----------------------------------------------------------------------------- header

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def locate_events(head: bytes) -> dict[str, Any]:
    """Find where the events array starts in the first bytes of the JSON text.

    Returns {"kind": "array"|"object"|"empty"|"not-json", "offset": index after the "["
    (None if not within ``head``), "header": the top-level keys before traceEvents}.
    """
    start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    first = head[start : start + 1]
    if not first:
        return {"kind": "empty", "offset": None, "header": {}}
    if first == b"[":
        return {"kind": "array", "offset": start + 1, "header": {}}
    if first != b"{":
        return {"kind": "not-json", "offset": None, "header": {}, "first": head[start : start + 12]}
    depth = 0
    keys: list[str] = []  # the top-level keys seen, whatever their values (cut off, huge)
    for m in _TOKEN.finditer(head, start):
        tok = m.group()
        c = tok[:1]
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
            if depth <= 0:
                break
        elif depth == 1 and len(keys) < _MAX_KEYS and _COLON.match(head, m.end()):
            try:
                keys.append(json.loads(tok))
            except ValueError:  # (invalid UTF-8 or escapes: not JSON, said later)
                pass
        if depth == 1 and tok == b'"traceEvents"':
            rest = head[m.end() : m.end() + 64].lstrip()
            if rest[:1] == b":" and rest[1:].lstrip()[:1] == b"[":
                colon = head.index(b":", m.end())
                bracket = head.index(b"[", colon)
                header: dict[str, Any] = {}
                before = head[start + 1 : m.start()].rstrip()
                if before.endswith(b","):
                    try:
                        header = json.loads(b"{" + before[:-1] + b"}")
                    except ValueError:
                        header = {}
                return {"kind": "object", "offset": bracket + 1, "header": header}
    header = header_keys(head)
    if len(keys) > len(header["__keys__"]):  # a value cut off by the head's end, or bad
        header["__keys__"] = keys
    return {"kind": "object", "offset": None, "header": header}


_COLON = re.compile(rb"[ \t\r\n]*:")
_MAX_KEYS = 1000  # top-level keys remembered for a message


def header_keys(head: bytes) -> dict[str, Any]:
    """Top-level keys readable from the first bytes (traceEvents not among them), and the
    values of those before it that are whole there."""
    header: dict[str, Any] = {"__keys__": []}
    try:
        # use_float=False: yajl refuses numbers beyond int64 / double (rocprofiler-sdk's
        # 18446744073709551615 ids), which are valid JSON; Python ints and Decimals hold them
        for key, value in ijson.kvitems(io.BytesIO(head), "", use_float=False):
            header["__keys__"].append(key)
            if key == "traceEvents":
                break
            header[key] = value
    except Exception:  # noqa: BLE001 - a header cut short is simply shorter
        pass
    return header
