"""Making untrusted text (event names, file paths) safe to show in a terminal.

Trace names are data from other people's programs. Control characters (ESC starts ANSI and
OSC sequences: screen clears, clipboard writes, hyperlinks), C1 controls, and bidi overrides
must never reach the terminal as they are. This module is pure: no textual or rich.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata

# C0 controls except none, DEL, C1 controls, the Unicode bidi/format characters that can
# reorder or hide text (LRE..RLO, LRI..PDI, LRM/RLM/ALM; zero-width joiners are fine), and
# lone surrogates: JSON's "\\ud800" decodes to one, which cannot be encoded as UTF-8 (a
# crash on write) and which a stream with errors="surrogateescape" (the C locale) writes as
# the raw byte it stands for: "\\udc9b" is 0x9b, an 8-bit CSI.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    o = ord(c)
    if o < 0x20:
        return "^" + chr(o + 0x40)  # ESC -> ^[ , NUL -> ^@
    return f"\\u{o:04x}"


def safe_text(text: object, limit: int | None = None) -> str:
    """``text`` with every control or bidi character made visible, cut to ``limit`` chars."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return _UNSAFE.sub(_visible, s)


def fmt_time(ns: float, decimals: int | None = None) -> str:
    """A duration with the unit that fits (ns, µs, ms, s): 4 significant digits, or a fixed
    number of ``decimals``."""
    a = abs(ns)
    if a == 0:
        return "0"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if a >= scale:
            v = ns / scale
            return f"{v:.{decimals}f} {unit}" if decimals is not None else f"{v:.4g} {unit}"
    return f"{ns:.0f} ns"


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_TIME = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(ns|us|µs|μs|ms|s)?\s*",
                   re.IGNORECASE)


def parse_time(text: str, default_unit: str = "ms") -> int:
    """A typed time ("12.5 ms", "830us", "1.2s", "4e3 ns"; a bare number is in
    ``default_unit``) in ns; ValueError with a one-line reason when it is not one."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not a time: {text.strip()[:40]!r} (e.g. 12.5ms, 830us, 1.2s)")
    unit = (m.group(2) or default_unit).lower().replace("μ", "µ")
    v = float(m.group(1)) * _UNITS[unit if unit in _UNITS else "ms"]
    if not math.isfinite(v) or abs(v) > 2**62:
        raise ValueError(f"time out of range: {text.strip()[:40]!r}")
    return int(round(v))


def parse_window(text: str, default_unit: str = "ms") -> tuple[int, int | None]:
    """"T" (a time) or "A-B"/"A..B" (a range) typed by the user, in ns from the trace's
    start: (t, None) or (a, b) with a < b."""
    t = text.strip()
    for sep in ("..", " - ", "-"):
        k = t.find(sep, 1)  # not a leading minus
        while k > 0 and t[k - 1:k].lower() == "e":  # an exponent's sign
            k = t.find(sep, k + 1)
        if k > 0:
            if not t[k + len(sep):].strip():
                raise ValueError(f"a range needs an end: {t[:40]!r} (e.g. 3ms-4.5ms)")
            a = parse_time(t[:k], default_unit)
            b = parse_time(t[k + len(sep):], default_unit)
            if b <= a:
                raise ValueError("a range's end must come after its start")
            return a, b
    return parse_time(t, default_unit), None


def fmt_tick(ns: float, step: float) -> str:
    """A ruler label: the time ``ns`` in the unit of its size, with as many decimals as tell
    ticks ``step`` ns apart from each other (deep in a long trace, ``11.84523 s`` rather than
    ``11.85 s`` on every tick)."""
    a = abs(ns)
    if a == 0:
        return "0"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")):
        if a >= scale or unit == "ns":
            break
    v = a / scale
    decimals = max(0, 3 - len(str(int(v))))  # three significant digits at least
    while decimals < 9 and step > 0 and step / scale < 10 ** -decimals * 2:
        decimals += 1  # and enough to tell neighbouring ticks apart
    return f"{ns / scale:.{decimals}f} {unit}"


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: two for a wide (East Asian wide or full-width)
    character, none for a combining mark, one for the rest."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: its start and end kept, "…" between (what tells
    names apart is often at their end: a tid, a kernel's own name after its namespaces)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:max(width, 0)]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def tail(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its end kept ("…" first)."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if width > 1 else "…"[:max(width, 0)]


def _from_difference(texts: list[str], width: int) -> list[str] | None:
    """Each text from where the group's common beginning ends (backed up to a token's
    start), as ``…rest`` in ``width`` cells; None if two would still read the same."""
    same = len(os.path.commonprefix(texts))
    cut = max((texts[0].rfind(sep, 0, same) + len(sep) for sep in (", ", "<", "::", " ", "(")
               if texts[0].rfind(sep, 0, same) >= 0), default=0)
    if cut <= 1 or width < 8 or len(set(texts)) < len(texts):
        return None
    # led by the name they share (a kernel template's own name, after its namespaces)
    common = texts[0][:cut]
    lt = common.find("<")
    base = common[:lt] if lt >= 0 else common.rstrip(" ,:(")
    own = middle(base.rsplit("::", 1)[-1].strip(), max(width // 2 - 2, 3))
    lead = own + ("<" if lt >= 0 and cut == lt + 1 and base.endswith(own) else "…")
    # the lead only where the first token that differs still shows whole after it; the
    # rest shortened in the middle, but never inside that token
    token = max(len(re.split(r"[<(, ]", t[cut:], maxsplit=1)[0]) for t in texts)
    for lead in ((lead, "…") if token <= (width - len(lead) - 1) // 2 else ("…",)):
        room = width - len(lead)
        got = [lead + _head_and_end(t[cut:], room, token) for t in texts]
        if len(set(got)) == len(got):
            return got
    return None


def _head_and_end(text: str, width: int, head: int) -> str:
    """``text`` in ``width`` cells as :func:`middle` shortens it, but keeping at least its
    first ``head`` characters (the part that tells it from its neighbours)."""
    if len(text) <= width or head <= (width - 1) // 2:
        return middle(text, width)
    head = min(head, width - 1)
    end = width - 1 - head
    return text[:head] + "…" + (text[len(text) - end:] if end > 0 else "")


def fit_apart(texts: list[str], width: int, shown: list[str] | None = None) -> list[str]:
    """Each of ``texts`` in at most ``width`` cells (``shown``, forms made to fit, or
    :func:`middle`), different texts never reading the same: where shortened ones collide,
    their ends are kept instead, and where those collide too (or the texts are the very
    same) they are numbered. Shortened ones that still collide show where they differ,
    and only those that differ nowhere that fits are numbered."""
    out = list(shown) if shown is not None else [middle(t, width) for t in texts]
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(out):
        groups.setdefault(t, []).append(i)
    for same in groups.values():
        if len(same) < 2:
            continue
        ends = [tail(texts[i], width) for i in same]
        if len(set(ends)) == len(ends):
            for i, t in zip(same, ends):
                out[i] = t
            continue
        # where they differ: from the start of the token their common beginning ends in
        # (``…CUDAFunctor_add<…>, at::detail…`` for a family of elementwise kernels)
        diff = _from_difference([texts[i] for i in same], width)
        if diff is not None:
            for i, t in zip(same, diff):
                out[i] = t
            continue
        for k, i in enumerate(same):
            tag = f" #{k + 1}"
            out[i] = middle(texts[i], max(width - len(tag), 1)) + tag
    return out
