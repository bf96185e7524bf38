"""Loading one trace: :class:`Loader` (and :class:`EarlyLoad`, :func:`load`) orchestrate
the reading; the work is elsewhere.

- :mod:`.source`: bytes (plain or gzip), re-reading ranges, change detection;
- :mod:`.pieces`: where the events array starts, its cutting at event boundaries (every
  layout), the piece table that re-reads events on demand;
- :mod:`.events`: a piece's bytes -> light event records (msgspec);
- :mod:`.builder`: records -> columns; a snapshot of them;
- :mod:`.index`: a snapshot -> the :class:`~.model.Trace`;
- :mod:`.parallel` / :mod:`.worker`: ranges of one file in other processes, merged.

Whatever cannot be proven a whole piece (damage, a cut-off end) is streamed with ijson's C
backend, to the exact end of what is whole.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import ijson

from ..heap import tune_for_load
from . import parallel
from .builder import BATCH, NeedExact, TraceBuilder, json_safe
from .events import decode_piece_in, decode_tail
from .index import LoadFacts, build
from .model import Trace
from .pieces import (HEAD_BYTES, IJSON_BLOCK, KIND_ARRAY, KIND_IJSON, KIND_IJSON_FILE,
                     KIND_TAIL, MAX_PIECE, PIECE, Chain, PieceTable, CUT_TRIES, FAILED_READS,
                     find_cut, locate_events, skip_to_boundary, structural_cut)
from ..textutil import safe_text
from .source import InflateError, GzipStream, Source, TraceError

#: Below this many bytes of events, starting a second process costs more than it saves.
PARALLEL_MIN = 48 << 20
_PRESIZE_AFTER = 16 << 20  # bytes parsed before a range's columns are sized to the whole range
#: A cut-off file modified this recently (seconds) may still be being written.
RECENT_S = 120.0


@dataclass(frozen=True)
class Progress:
    bytes_done: int  # of the file on disk (compressed bytes for .gz)
    bytes_total: int
    events: int
    elapsed_s: float
    done: bool = False

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 1.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_done / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _raise_deferred(stream: Any) -> None:
    """Raise the broken gzip data a stream ended at (see ``GzipStream(defer_errors=True)``)."""
    if isinstance(stream, GzipStream) and stream.error is not None:
        raise stream.error


#: the end of a file whose events array closes after a comma: "…},]}" or "…},]"
_TRAILING_COMMA = re.compile(rb"\}\s*,\s*\]\s*\}?\s*\Z")


class Loader:
    """Loads one trace. Use :meth:`run` (blocking; call it in a thread for progressive use),
    :meth:`snapshot` from any thread to get the index built so far, :meth:`cancel` to stop.
    """

    def __init__(self, path: str, progress: Callable[[Progress], None] | None = None,
                 progress_interval: float = 0.2, piece_bytes: int = PIECE,
                 workers: int | None = None, parallel_min: int = PARALLEL_MIN,
                 size: int | None = None) -> None:
        # size: read no further (a worker's range: the loading process's size at open)
        self.source = Source.open(path, size)
        #: processes that parse ranges of the events array side by side (1: one stream)
        self.workers = parallel.default_workers() if workers is None else max(1, workers)
        self.parallel_min = parallel_min  # bytes of events below which one stream is faster
        self.items_before = 0  # events before this loader's range (a worker's range: > 0)
        self.range_base = 0  # a worker's range: bytes on disk read before it (progress)
        self.other_bytes = 0  # bytes parsed by workers (progress)
        self.other_events = 0
        self.plan: parallel.Plan | None = None  # the workers of a parallel load
        self._record_rest = False  # gzip: save decompressor states past the workers (finish)
        self.ranges = 1  # ranges of the events array parsed in separate processes and merged
        self.gzip_flags = (False, False)  # a merged worker's gzip end: (trailing junk, cut off)
        self.progress = progress
        self.progress_interval = progress_interval
        self.piece_bytes = piece_bytes
        self._cancel = threading.Event()
        self.builder = TraceBuilder()
        self.pieces = PieceTable(self.source, exact=False)
        self.bytes_done = 0
        self.started = time.perf_counter()
        self._last_report = 0.0
        self.warnings: list[str] = []
        self.truncated = False
        self.cancelled = False
        self._result: Trace | None = None
        tune_for_load()
        if ijson.backend != "yajl2_c":
            print(f"tracetui: warning: ijson's C backend is not available (using {ijson.backend}); "
                  "damaged or unusual files will load several times slower", file=sys.stderr)

    def cancel(self) -> None:
        self._cancel.set()

    # -- public ----------------------------------------------------------------------------
    def run(self) -> Trace:
        """Load the whole file and return the final :class:`~tracetui.trace.model.Trace`."""
        head = self.source.read_head(HEAD_BYTES)
        where = locate_events(head)
        kind = where["kind"]
        path = self.source.path
        if kind == "empty":
            if self.source.compressed:
                raise TraceError(f"{path}: the gzip data ends before any JSON (a cut-off file?)")
            raise TraceError(f"{path}: the file holds no JSON (only whitespace)")
        if kind == "not-json":
            raise TraceError(f"{path}: not a JSON trace (it starts with {where['first']!r})")
        gc_was_on = gc.isenabled()
        gc.disable()  # the loader makes no reference cycles; collections would only cost time
        try:
            try:
                self._parse(where, exact=False)
            except NeedExact:
                # A float timestamp too big for float64 to keep its nanoseconds: read it again
                # exactly (Decimal). Kineto's absolute-µs float traces need this.
                self._reset(exact=True)
                self._parse(where, exact=True)
        finally:
            if gc_was_on:
                gc.enable()
        return self.finish(where)

    def finish(self, where: dict[str, Any]) -> Trace:
        """After the events are parsed: refuse what is not a trace, say whether the file
        changed meanwhile, and build the final index."""
        path, kind = self.source.path, where["kind"]
        b = self.builder
        if kind == "object" and where["offset"] is None and b.items == 0 \
                and not self._has_events_key():
            keys = [k for k in where["header"].get("__keys__", []) if isinstance(k, str)]
            if "traceEvents" in keys:
                raise TraceError(f"{path}: not a Chrome/Kineto trace: its traceEvents is not an "
                                 "array of events")
            raise TraceError(f"{path}: {'' if self.truncated else 'valid JSON, but '}not a "
                             "Chrome/Kineto trace: the top-level object has no traceEvents "
                             f"array (keys: {_key_list(keys)}){_format_hint(keys)}")
        if b.items and b.events == 0 and not self.truncated and sum(b.skipped.values()) == b.items:
            reasons = ", ".join(f"{n:,} {r}" for r, n in b.skipped.items()) or "no trace events"
            raise TraceError(f"{path}: not a trace: none of its {b.items:,} items is a trace "
                             f"event ({reasons})")
        self._check_unchanged()
        trace = self._build(final=True)
        self._result = trace
        if self._record_rest:  # in the background: the index is the user's first
            self._record_rest = False
            threading.Thread(target=self.source.record_rest, name="tracetui-gzip-index",
                             daemon=True).start()
        self._report(done=True)
        return trace

    def _check_unchanged(self) -> None:
        """Say so when the file changed while it was read, or when a cut-off file may be one
        still being written (what was read is shown either way)."""
        src = self.source
        change = src.change()
        if change is not None and change.startswith("grew"):
            # read to the size it had when opened (Source): a writer that never stops would
            # otherwise keep the load going, its progress stuck at 100 %
            self.warnings.append(f"the file {change} while it was read (still being written?): "
                                 f"only its first {src.size:,} bytes, its size when opened, "
                                 "were read; reopen it for the rest")
        elif change is not None:
            self.warnings.append(f"the file {change} while it was read (still being written, "
                                 "or replaced?): this shows what was read")
        age = src.age_s()
        if self.truncated and (change is not None or age < RECENT_S) \
                and not any("still being written" in w for w in self.warnings):
            when = f"{age:,.0f} s" if age >= 1 else "less than a second"
            self.warnings.append(f"the file was modified {when} before it was opened: if it "
                                 "is still being written, reopen it once the writer has finished")

    def snapshot(self) -> Trace:
        """The index as loaded so far (cheap enough to call a few times a second)."""
        if self._result is not None:
            return self._result
        return self._build(final=False)

    def _build(self, final: bool) -> Trace:
        snap = self.builder.freeze(release=final)
        src = self.source
        facts = LoadFacts(path=src.path, size=src.size, compressed=src.compressed,
                          complete=final and not self.cancelled, truncated=self.truncated,
                          warnings=list(self.warnings), bytes_read=self.bytes_done, final=final,
                          threads=self.workers if final else 1)
        return build(snap, self.pieces, facts)

    # -- parsing ---------------------------------------------------------------------------
    def _reset(self, exact: bool) -> None:
        self.builder = TraceBuilder(exact=exact)
        self.pieces = PieceTable(self.source, exact=exact)
        self.warnings = []
        self.truncated = False
        self.other_bytes = self.other_events = 0
        self.ranges = 1

    def _parse(self, where: dict[str, Any], exact: bool) -> None:
        self.builder.header = {k: json_safe(v) for k, v in where["header"].items()
                               if not k.startswith("__")}
        raw, stream = self.source.open_stream(record=True, defer_errors=True)
        self._raw = raw
        try:
            if where["offset"] is None:
                # traceEvents is not in the first MB: stream the whole file with ijson.
                self.pieces.add(0, KIND_IJSON_FILE, 0, -1)
                chain = Chain(b"", stream)
                self._stream_ijson(ijson.items(chain, "traceEvents.item", use_float=not exact,
                                               buf_size=IJSON_BLOCK),
                                   0, stream, chain)
            else:
                self._parse_pieces(stream, where["offset"], exact)
            _raise_deferred(stream)  # every whole event before broken gzip data is in
            garbage, cut_off = self.check_gzip_end(stream)
            garbage |= self.gzip_flags[0]
            cut_off |= self.gzip_flags[1]
            if garbage:
                self.warnings.append("the gzip file has data after its end that is not gzip "
                                     "(ignored)")
            if cut_off and not self.truncated:
                self.truncated = True
                self.warnings.append(
                    f"truncated at byte {self.source.size:,} of {self.source.size:,}: the gzip "
                    f"stream is cut off; kept {self.builder.events:,} whole events")
        except (zlib.error, InflateError, EOFError) as err:
            if self.builder.items == 0:
                raise TraceError(f"{self.source.path}: broken gzip file ({err})") from None
            self.truncated = True
            self.warnings.append(f"corrupt gzip data near byte {raw.pos:,} of "
                                 f"{self.source.size:,} ({err}); kept the whole events before it")
        except OSError as err:
            raise TraceError(f"{self.source.path}: read error ({err.strerror or err})") from None
        finally:
            self.bytes_done = self._raw.pos + self.other_bytes
            self._raw.close()
            if self._raw is not raw:
                raw.close()

    def check_gzip_end(self, stream: Any) -> tuple[bool, bool]:
        """How a gzip stream read to its end ended: (junk after it, cut off)."""
        if isinstance(stream, GzipStream):
            return (stream.trailing_garbage, stream.truncated)
        return (False, False)

    def _read_block(self, stream: Any, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = stream.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _parse_pieces(self, stream: Any, offset: int, exact: bool) -> None:
        head = self._read_block(stream, offset)  # up to and including the "["
        if len(head) < offset:
            raise TraceError(f"{self.source.path}: the file ended before its events")
        plan = parallel.Plan.start(self.source, offset, exact, self.workers, self.parallel_min,
                                   self.piece_bytes) if self.workers > 1 else None
        if plan is None:
            self._piece_loop(stream, offset, 0, exact)
            return
        self.plan = plan
        try:
            end = plan.first_end
            if not self._piece_loop(stream, offset, 0, exact, end=end, wait_end=end is None):
                return  # one stream to the end of the file (the workers were dropped)
            stopped_at = plan.first_end
            status, at = plan.merge_into(self.builder, self.pieces, self._tick,
                                         self._cancel.is_set)
            self.ranges += plan.ranges
            self.warnings += plan.warnings
            self.truncated = self.truncated or plan.truncated
            self.gzip_flags = plan.gzip_flags
            # gzip: no decompressor states were saved past where the worker took over; they
            # are made (to re-read those events' args quickly) once the index is built
            self._record_rest = plan.gzip and plan.ranges > 0
        finally:
            plan.close()
            self.plan = None
        self.other_bytes = self.other_events = 0  # merged: counted in the builder and below
        if status == "cancelled":
            self._cancelled()
        elif status == "continue" and at is not None:
            self._continue_from(stream, at, stopped_at, exact)
        else:
            self.other_bytes = plan.merged_bytes

    def _continue_from(self, stream: Any, start: int, stopped_at: int | None,
                       exact: bool) -> None:
        """Parse from ``start`` (a proven boundary) to the end in this process, one stream:
        a range the workers could not give."""
        if stopped_at == start:  # this process stopped right there: go on reading
            self._piece_loop(stream, start, self.builder.items, exact)
            return
        raw = self.source.open_at(start)  # plain files only: ranges are bytes
        self._raw.close()
        self._raw = raw
        self._piece_loop(self._raw, start, self.builder.items, exact)

    # -- a worker's range ------------------------------------------------------------------
    def parse_range(self, start: int, end: int | None, exact: bool, find_start: bool = False,
                    on_start: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Parse ``[start, end)`` of the events array alone, rows counted from 0 (a worker
        process's share: :mod:`tracetui.trace.worker`). ``find_start``: read up to about
        ``start`` and begin at the first candidate boundary after it (gzip), told to
        ``on_start``. Returns the range's report for the loading process: its builder's
        :meth:`~.builder.TraceBuilder.part`, its pieces, warnings, whether ``end`` proved a
        boundary (else this range went on to the end of the file)."""
        if exact:
            self._reset(exact=True)
        self.builder.header = {}
        self.items_before = 1  # the range starts after at least one event
        if find_start:
            raw, stream = self.source.open_stream(defer_errors=True)
            start = skip_to_boundary(stream, start)
            if start < 0:
                raw.close()
                raise TraceError("no event boundary near the middle")
            if on_start is not None:
                on_start(start)
        else:
            raw = stream = self.source.open_at(start)
        self._raw = raw
        base = self.range_base = raw.pos
        try:
            proven = self._piece_loop(stream, start, 0, exact, end=end)
            _raise_deferred(stream)  # the loading process parses this range again itself
            self.gzip_flags = self.check_gzip_end(stream)
        finally:
            raw.close()
        return {"proven": proven, "bytes": self._raw.pos - base, **self.builder.part(),
                "pieces": (self.pieces.first, self.pieces.pieces), "warnings": self.warnings,
                "truncated": self.truncated, "gzip": self.gzip_flags}

    def merge_part(self, conn: Any, part: dict[str, Any]) -> None:
        """Take a worker's whole range (its report, then its columns from ``conn``) as this
        loader's events (several files loaded side by side: :func:`tracetui.job.many.load_many`)."""
        self.warnings += parallel.merge_part(self.builder, self.pieces, conn, part)
        self.truncated = self.truncated or part["truncated"]

    def _piece_loop(self, stream: Any, base: int, row: int, exact: bool,
                    end: int | None = None, wait_end: bool = False) -> bool:
        """Parse pieces from ``base`` (a proven event boundary; ``row`` is its event's index).

        With ``end`` (a candidate boundary), stop there: True if the text up to ``end`` parsed
        as whole events, which proves ``end`` a boundary too. If it does not parse, carry on
        as one stream to the end of the file (as without ``end``) and return False. With
        ``wait_end``, the end comes later from the plan's worker (gzip); if it comes too late
        (already read past), the worker is dropped and this process reads on alone.
        """
        b = self.builder
        # The text from ``base`` on is ``buf[1:]``: ``buf[0]`` is a spare byte that stands
        # for the "[" while a piece is decoded where it lies (events.decode_piece_in).
        buf = bytearray(b" ")
        events: list[Any] | None
        failed = 0  # reads in a row whose candidate cuts all failed to parse
        no_cut = False  # the last read left no candidate cut in the buffer
        first_base, presized = base, False
        json_size = self.source.json_size_estimate()  # gzip: from its trailer
        span = (end if end is not None else json_size) - base
        if self.plan is not None and self.items_before == 0:
            # the loading process of a parallel load: the workers' ranges are merged into
            # these columns, so they are sized for the whole file (memory is only touched
            # as rows are written: no copy of the columns when the ranges come in)
            span = json_size - base
        while True:
            held = len(buf) - 1  # bytes of text in buf
            if wait_end:
                plan = self.plan
                if plan is not None:
                    plan.poll()
                    end = plan.first_end
                if plan is None or plan.failed:
                    wait_end, end = False, None
                elif end is not None:
                    wait_end = False
                    if end < base + held:  # too late: this process is past it
                        plan.close()
                        self.plan, end = None, None
                elif base + held >= plan.target:
                    # the end lies past here, not yet known: wait for the worker to say
                    plan.wait_cut(self._tick, self._cancel.is_set)
                    continue
            if not presized and base - first_base >= _PRESIZE_AFTER:
                # From here a column that must grow grows to the range's expected rows:
                # growing by steps would leave up to a third of it unused at the end.
                # (A gzip estimate below what was read - several members - sizes nothing.)
                presized = True
                if span > base - first_base:
                    b.presize(1.03 * span / (base - first_base))
            if self._cancel.is_set():
                self._cancelled()
                return False
            # No candidate cut in the buffer yet (one huge event): double it rather than add a
            # piece at a time, which would copy and rescan it quadratically.
            want = max(self.piece_bytes, held) if no_cut else self.piece_bytes
            if end is not None:
                want = min(want, end - base - held)
            elif wait_end:
                want = min(want, plan.target - base - held)  # type: ignore[union-attr]
            data = self._read_block(stream, want) if want > 0 else b""
            if not data and end is not None and base + held >= end:
                try:
                    events = decode_piece_in(buf, len(buf), exact) if held else []
                except ValueError:  # not a boundary after all: go on as one stream
                    end = None
                    continue
                if events:
                    self.pieces.add(row, KIND_ARRAY, base, held)
                    b.add_batch(events, row)
                    self._tick()
                return True
            if not data:
                self._parse_tail(bytes(buf[1:]), base, row, stream, exact)
                return False
            buf += data
            del data
            # Cut at the last proven event boundary in buf.
            below, events, cut = len(buf), None, -1
            for attempt in range(CUT_TRIES):
                # The last candidate first (nearly always right); if it was inside an event,
                # the last event start by the JSON structure; then earlier candidates.
                cut = find_cut(buf, below) if attempt != 1 else structural_cut(buf, below, 1)
                if cut < 0:
                    break
                try:
                    events = decode_piece_in(buf, cut, exact)
                    break
                except ValueError:  # wrong cut or damaged data: try an earlier boundary
                    below = cut - 1
                    events = None
            # No candidate, or none but inside the one event the buffer holds (the structure
            # says no event starts after the first): a huge event, read on in bigger steps.
            no_cut = events is None and cut < 0 and (below == len(buf) or attempt == 1)
            if events is None:
                if cut >= 0:
                    failed += 1  # candidates exist but none parses: damage, or deep nesting
                # Damaged data never starts to parse by reading more: hand over to ijson,
                # which keeps every whole event before the damage. Only a lack of any
                # candidate (a huge event) is worth reading on for: to its end, however big
                # (ijson builds one huge string in superlinear time: 800 MB took 41 s, and
                # holds it whole just the same); past MAX_PIECE for nothing else.
                if failed >= FAILED_READS or (len(buf) - 1 > MAX_PIECE and not no_cut):
                    self._fallback(bytes(buf[1:]), base, row, stream, exact)
                    return False
                continue  # read more and try again
            failed = 0
            self.pieces.add(row, KIND_ARRAY, base, cut - 1)
            b.add_batch(events, row)
            row += len(events)
            del buf[: cut - 1]  # the byte before the next event is the new spare byte
            buf[0] = 0x20
            base += cut - 1
            self._tick()

    def _parse_tail(self, buf: bytes, base: int, row: int, stream: Any, exact: bool) -> None:
        try:
            events, rest = decode_tail(buf, exact)
        except (ValueError, UnicodeDecodeError):
            self._fallback(buf, base, row, stream, exact)
            return
        self.pieces.add(row, KIND_TAIL, base, len(buf))
        self.builder.add_batch(events, row)
        rest = rest.strip()
        if rest.startswith(","):  # keys after traceEvents: traceName, baseTimeNanoseconds, ...
            try:
                tail = json.loads("{" + rest[1:])
                if isinstance(tail, dict):
                    again = tail.pop("traceEvents", None)
                    if again is not None:  # JSON.parse (chrome://tracing) would keep this one
                        n = len(again) if isinstance(again, list) else 0
                        self.warnings.append(
                            f"traceEvents appears twice: the first array is shown; the second "
                            f"({n:,} events, what chrome://tracing would show) is ignored")
                    self.builder.header.update(json_safe(tail))
            except ValueError:
                self.warnings.append("the JSON after the events is damaged (ignored)")
        elif rest and rest != "}":
            self.warnings.append("unexpected data after the events (ignored)")

    def _fallback(self, buf: bytes, base: int, row: int, stream: Any, exact: bool) -> None:
        """Stream the rest with ijson from a proven event boundary: exact to the last event."""
        self.pieces.add(row, KIND_IJSON, base, -1)
        chain = Chain(b"[" + buf, stream)
        self._stream_ijson(ijson.items(chain, "item", use_float=not exact, buf_size=IJSON_BLOCK),
                           row, stream, chain,
                           array_only=True)

    def _stream_ijson(self, items: Iterable[Any], row: int, stream: Any, chain: Chain,
                      array_only: bool = False) -> None:
        b = self.builder
        batch: list[Any] = []
        islice = itertools.islice
        while True:
            if self._cancel.is_set():
                self._cancelled()
                return
            batch.clear()
            try:
                batch.extend(islice(items, BATCH))
            except (ijson.JSONError, UnicodeDecodeError, RecursionError) as err:
                b.add_batch(batch, row)
                if isinstance(err, UnicodeDecodeError):
                    msg = "invalid UTF-8"
                elif isinstance(err, RecursionError):
                    msg = "nested too deeply"
                else:
                    text = err.args[0] if err.args else ""
                    if isinstance(text, bytes):
                        text = text.decode("utf-8", "replace")
                    msg = (str(text).strip().splitlines() or ["invalid JSON"])[0][:120]
                if array_only and "trailing garbage" in msg:
                    return  # the array closed; what follows it is the rest of the object
                if not b.exact and ("integer overflow" in msg or "point) overflow" in msg):
                    # valid JSON that yajl's int64 / double cannot hold (18446744073709551616,
                    # 1e400: in an event's args, or a whole other format's ids): read it all
                    # again exactly, where ijson gives Python ints and Decimals
                    raise NeedExact
                self._on_json_error(msg, stream, chain.tail)
                return
            if not batch:
                return
            b.add_batch(batch, row)
            row += len(batch)
            self._tick()

    def _on_json_error(self, msg: str, stream: Any, tail: bytes) -> None:
        b = self.builder
        raw = self._raw
        # Cut off, rather than damaged: the whole file was read and the error is at its end
        # (the parser says so, or the text stops inside a token or an unclosed value: a whole
        # trace ends with "]" or "}").
        try:
            size_now = os.stat(self.source.path).st_size  # it may have grown or shrunk
        except OSError:
            size_now = self.source.size
        at_end = raw.pos >= min(size_now, self.source.size) and (
            "premature EOF" in msg or tail.rstrip()[-1:] not in (b"]", b"}"))
        if at_end and not ("premature EOF" in msg) and _has_more(stream):
            # all of a gzip file was read, but not all of its text handed out yet: the error
            # is in the middle of the text (damage), not at its end
            at_end = False
        if isinstance(stream, GzipStream) and stream.error is not None:
            # the text stops at broken gzip data: the loader reports that, not this
            self.truncated = True
            return
        if isinstance(stream, GzipStream) and stream.truncated:
            at_end = True
        if b.items + self.items_before == 0 and not at_end:
            raise TraceError(f"{self.source.path}: not valid JSON ({msg})")
        if raw.pos >= min(size_now, self.source.size) and _TRAILING_COMMA.search(tail[-4096:]):
            # '…},]}': every event is whole; only the comma is not JSON (some hand-written
            # and JS-made traces): neither truncated nor damaged
            self.warnings.append("a comma before the events' closing ] (not valid JSON) was "
                                 "ignored: every event was read")
            return
        self.truncated = True
        if at_end and size_now < self.source.size:  # shrunk under the reader: not "N of N"
            self.warnings.append(
                f"truncated at byte {raw.pos:,}, where the file ends now (it had "
                f"{self.source.size:,} bytes when opened): the trace ends mid-JSON (rewritten "
                "or replaced while read?); kept the whole events before the cut")
        elif at_end:
            why = "the writer was probably killed"
            if self.source.age_s() < RECENT_S or size_now != self.source.size:
                why = "modified just before: still being written?"
            self.warnings.append(
                f"truncated at byte {raw.pos:,} of {max(size_now, raw.pos):,}: the trace ends "
                f"mid-JSON ({why}); kept the whole events before the cut")
        else:
            self.warnings.append(f"JSON error near byte {raw.pos:,} of {self.source.size:,} "
                                 f"({msg}); kept the whole events before it")

    def _has_events_key(self) -> bool:
        """Whether the top-level object has a traceEvents key at all (rare, slow path)."""
        raw, stream = self.source.open_stream()
        try:
            for prefix, event, _ in ijson.parse(stream):
                if prefix == "traceEvents" and event == "start_array":
                    return True
        except Exception:  # noqa: BLE001
            return False
        finally:
            raw.close()
        return False

    def _cancelled(self) -> None:
        self.cancelled = True
        self.warnings.append(f"loading cancelled at byte {self._raw.pos:,} of "
                             f"{self.source.size:,}")

    def _tick(self) -> None:
        if self.plan is not None:
            self.plan.poll()
            self.other_bytes, self.other_events = self.plan.bytes, self.plan.events
        self.bytes_done = self._raw.pos + self.other_bytes
        now = time.perf_counter()
        if now - self._last_report >= self.progress_interval:
            self._last_report = now
            self._report()

    def _report(self, done: bool = False) -> None:
        if self.progress is None:
            return
        self.progress(Progress(self.bytes_done, self.source.size,
                               self.builder.events + self.other_events,
                               time.perf_counter() - self.started, done))


def _key_list(keys: list[str], most: int = 6, width: int = 40) -> str:
    """Top-level keys for a message: the first few, each cut (they are data)."""
    shown = [safe_text(k, width) for k in keys[:most]]
    if len(keys) > most:
        shown.append(f"… {len(keys) - most} more")
    return ", ".join(shown) or "none"


def _format_hint(keys: list[str]) -> str:
    """What a JSON object without traceEvents is, when its keys say so."""
    if "nodes" in keys and "schema" in keys:
        return " — this looks like a PyTorch execution trace, not a profiler trace"
    if any(k.startswith("rocprofiler-sdk") for k in keys):
        # rocprofv3 --output-format json: rocprofiler-sdk's own layout (its other formats:
        # csv, pftrace for Perfetto, otf2, rocpd), not Chrome trace events
        return (" — this is rocprofiler-sdk's own JSON (rocprofv3 --output-format json), "
                "not a trace event file")
    return ""


def _has_more(stream: Any) -> bool:
    """Whether the text goes on after what was handed out (reads one byte of it)."""
    try:
        return bool(stream.read(1))
    except (OSError, EOFError, zlib.error, InflateError):
        return False


class EarlyLoad:
    """A load started in a thread before the UI exists, so that reading the file overlaps
    importing and starting Textual.

    A small file is read through meanwhile: the first frame shows all of it. A big one stops
    after its first events until :meth:`resume` (the UI is up): parsing on would only slow
    the UI's start-up (one interpreter lock), and those first events are what the first
    frame draws, at once.
    """

    def __init__(self, path: str, pause_after_first: bool = False) -> None:
        self.loader = Loader(path, progress=self._first_progress, progress_interval=0.1)
        self.result: Any = None
        self.error: str | None = None
        self._go = threading.Event()
        if not pause_after_first:
            self._go.set()
        self.thread = threading.Thread(target=self._run, name="tracetui-load", daemon=True)
        self.thread.start()

    def _first_progress(self, p: Progress) -> None:
        if p.events and not p.done:
            self._go.wait()

    def resume(self, progress: Callable[[Progress], None] | None = None) -> None:
        """Hand progress reports to ``progress`` from now on, and let the load go on."""
        self.loader.progress = progress
        self._go.set()

    def _run(self) -> None:
        try:
            self.result = self.loader.run()
        except TraceError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - reported in the UI, never a traceback
            self.error = f"internal error: {type(e).__name__}: {e}"
        finally:
            self._go.set()


def load(path: str, progress: Callable[[Progress], None] | None = None):
    """Load a trace file completely and return its :class:`~tracetui.trace.model.Trace`."""
    return Loader(path, progress=progress).run()
