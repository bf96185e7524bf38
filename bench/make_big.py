"""Make a large trace by repeating a sample trace with shifted times and ids.

Every repetition moves ``ts`` past the previous copy's end and offsets the ids that link
events (correlation, External id, flow ids), so the result is a valid, realistic trace of
any size: the loader sees a long profile, not the same events again.

    python bench/make_big.py OUT.json --mb 150 [--source sample_traces/annotated.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCE = os.path.join(HERE, "..", "sample_traces", "annotated.json")
_ID_ARGS = ("correlation", "External id", "Python id", "Python parent id")


def _read(path: str) -> dict[str, Any]:
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = json.load(f)
    return data if isinstance(data, dict) else {"traceEvents": data}


def _span(events: list[dict]) -> tuple[float, float]:
    ts = [e["ts"] for e in events if isinstance(e.get("ts"), (int, float))]
    ends = [e["ts"] + e.get("dur", 0) for e in events
            if isinstance(e.get("ts"), (int, float)) and isinstance(e.get("dur", 0), (int, float))]
    return min(ts), max(ends)


def _shift(e: dict, dt: float, did: int, decimals: int | None) -> dict:
    """A copy of event ``e`` moved by ``dt`` µs, its ids by ``did``."""
    e = dict(e)
    if isinstance(e.get("ts"), (int, float)):
        if decimals:
            # shift in whole nanoseconds: float sums would round ends and starts apart
            # and make slices that nested in the source overlap by a nanosecond
            e["ts"] = (round(e["ts"] * 1000) + round(dt * 1000)) / 1000
        else:
            e["ts"] = e["ts"] + dt
    if "id" in e and isinstance(e["id"], int):
        e["id"] += did
    a = e.get("args")
    if isinstance(a, dict) and any(k in a for k in _ID_ARGS):
        a = dict(a)
        for k in _ID_ARGS:
            if isinstance(a.get(k), int) and a[k] >= 0:
                a[k] += did
        e["args"] = a
    return e


#: How the JSON text is laid out: Kineto's one event per line, ``json.dump``'s defaults (one
#: line), ``json.dump(indent=2)``, Windows line ends, and a comma at the start of each line.
LAYOUTS = ("lines", "one-line", "indent", "crlf", "comma-first")


def _layout(layout: str) -> tuple[str, str, str, str, Any]:
    """(file start, line end inside the header, event separator, array end, event dumper)."""
    dumps = json.dumps
    if layout == "lines":
        return "{\n", ",\n", ",\n", "\n  ]\n}\n", dumps
    if layout == "one-line":
        return "{", ", ", ", ", "]}", dumps
    if layout == "indent":
        def indented(e: Any) -> str:
            return "    " + json.dumps(e, indent=2).replace("\n", "\n    ")
        return "{\n", ",\n", ",\n", "\n  ]\n}\n", indented
    if layout == "crlf":
        return "{\r\n", ",\r\n", ",\r\n", "\r\n  ]\r\n}\r\n", dumps
    if layout == "comma-first":
        return "{\n", ",\n", "\n,", "\n  ]\n}\n", dumps
    raise ValueError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")


def make_big(out: str, target_mb: float, source: str = DEFAULT_SOURCE,
             edit: Any = None, header: dict[str, Any] | None = None,
             layout: str = "lines") -> dict[str, Any]:
    """Write ``out`` (≥ target_mb MB; one copy of the source if 0); return facts about it.
    ``edit(event)`` may change each event of the source first; ``header`` adds top-level
    keys (``distributedInfo``, ...); ``layout`` is one of :data:`LAYOUTS`; an ``out`` that
    ends in ``.gz`` is gzipped (``target_mb`` then counts the JSON text)."""
    data = _read(source)
    data.update(header or {})
    events = [e for e in data["traceEvents"] if isinstance(e, dict)]
    if edit is not None:
        events = [edit(dict(e)) for e in events]
    meta = [e for e in events if e.get("ph") == "M"]
    body = [e for e in events if e.get("ph") != "M"]
    lo, hi = _span(body)
    period = round((hi - lo) * 1.05 + 10)  # whole µs
    ids = [e.get("id") for e in body if isinstance(e.get("id"), int)]
    for e in body:
        a = e.get("args")
        if isinstance(a, dict):
            ids += [a[k] for k in _ID_ARGS if isinstance(a.get(k), int)]
    id_period = (max(ids) + 1) if ids else 0
    decimals = 3 if any(isinstance(e.get("ts"), float) for e in body) else None
    head = {k: v for k, v in data.items() if k != "traceEvents"}
    target = int(target_mb * 1e6)
    count = 0
    reps = 0
    start, head_end, sep, end, dump = _layout(layout)
    opener = gzip.open if out.endswith(".gz") else open
    written = 0
    with opener(out, "wt", newline="") as f:
        def put(text: str) -> None:
            nonlocal written
            f.write(text)
            written += len(text)

        put(start)
        for k, v in head.items():
            put(("  " if head_end != ", " else "") + f"{json.dumps(k)}: {json.dumps(v)}{head_end}")
        put(('  "traceEvents": [' + head_end[1:]) if head_end != ", " else '"traceEvents": [')
        first = True
        for e in meta:
            put(("" if first else sep) + dump(e))
            first = False
            count += 1
        while written < target or reps == 0:
            dt, did = reps * period, reps * id_period
            if not first:
                put(sep)
            first = False
            put(sep.join(dump(_shift(e, dt, did, decimals)) for e in body))
            count += len(body)
            reps += 1
        put(sep + dump({"ph": "i", "s": "g", "name": "end", "pid": "", "tid": "",
                        "ts": lo + reps * period}))
        put(end)
        count += 1
    return {"path": out, "bytes": os.path.getsize(out), "events": count, "repeats": reps}


@contextlib.contextmanager
def temporary_big_trace(target_mb: float, source: str = DEFAULT_SOURCE,
                        keep: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, facts) of a trace made for one benchmark, deleted afterwards unless ``keep``."""
    tmp = tempfile.mkdtemp(prefix="tracetui-bench-")
    path = os.path.join(tmp, "big.json")
    try:
        yield path, make_big(path, target_mb, source)
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--mb", type=float, default=150.0)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--layout", default="lines", choices=LAYOUTS)
    args = ap.parse_args(argv)
    print(json.dumps(make_big(args.out, args.mb, args.source, layout=args.layout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
