"""Making untrusted text (event names, file paths) safe to show in a terminal.

Trace names are data from other people's programs. Control characters (ESC starts ANSI and
OSC sequences: screen clears, clipboard writes, hyperlinks), C1 controls, and bidi overrides
must never reach the terminal as they are. This module is pure: no textual or rich.
"""

from __future__ import annotations

import functools
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
    """``text`` with every control or bidi character made visible, cut to ``limit`` cells
    (its start kept, "…" last)."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None and (len(s) > limit or not _fast(s)):
        s = _UNSAFE.sub(_visible, s)
        return s if cell_width(s) <= limit else first_cells(s, limit - 1) + "…"
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


# Cell widths as terminals (and rich, which draws the app) count them: wcwidth's tables,
# which rich's ``cell_len`` follows. Python's own tables (``unicodedata``) are those of its
# Unicode version; what differs from them is corrected here.

#: one-cell symbols that an emoji presentation selector (U+FE0F after them) makes two cells
#: wide (emoji-data: Emoji, not Emoji_Presentation: ❤, ✈, ☀, the keycap digits)
_TEXT_EMOJI = frozenset(
    chr(c) for part in (
        "23 2a 30-39 a9 ae 203c 2049 2122 2139 2194-2199 21a9-21aa 2328 23cf 23ed-23ef "
        "23f1-23f2 23f8-23fa 24c2 25aa-25ab 25b6 25c0 25fb-25fc 2600-2604 260e 2611 2618 "
        "261d 2620 2622-2623 2626 262a 262e-262f 2638-263a 2640 2642 265f-2660 2663 "
        "2665-2666 2668 267b 267e 2692 2694-2697 2699 269b-269c 26a0 26a7 26b0-26b1 26c8 "
        "26cf 26d1 26d3 26e9 26f0-26f1 26f4 26f7-26f9 2702 2708-2709 270c-270d 270f 2712 "
        "2714 2716 271d 2721 2733-2734 2744 2747 2763-2764 27a1 2934-2935 2b05-2b07 "
        "1f170-1f171 1f17e-1f17f 1f321 1f324-1f32c 1f336 1f37d 1f396-1f397 1f399-1f39b "
        "1f39e-1f39f 1f3cb-1f3ce 1f3d4-1f3df 1f3f3 1f3f5 1f3f7 1f43f 1f441 1f4fd "
        "1f549-1f54a 1f56f-1f570 1f573-1f579 1f587 1f58a-1f58d 1f590 1f5a5 1f5a8 "
        "1f5b1-1f5b2 1f5bc 1f5c2-1f5c4 1f5d1-1f5d3 1f5dc-1f5de 1f5e1 1f5e3 1f5e8 1f5ef "
        "1f5f3 1f5fa 1f6cb 1f6cd-1f6cf 1f6e0-1f6e5 1f6e9 1f6f0 1f6f3").split()
    for c in range(int(part.split("-")[0], 16), int(part.split("-")[-1], 16) + 1))
#: format characters that do take a cell (soft hyphen, Arabic number signs)
_SHOWN_FORMAT = frozenset("\u00ad\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f"
                          "\u0890\u0891\u08e2\U000110bd\U000110cd")
#: wide since Unicode 16 (trigrams, hexagrams, counting rods), narrow in older tables
_WIDE_SINCE_16 = ((0x2630, 0x2637), (0x268A, 0x268F), (0x4DC0, 0x4DFF), (0x1D300, 0x1D356),
                  (0x1D360, 0x1D376))
#: blocks whose code points unknown to Python's tables (emoji and ideographs of a later
#: Unicode) are wide where they are assigned
_WIDE_BLOCKS = ((0x2E80, 0x303E), (0x3041, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                (0xA000, 0xA4CF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0x16FE0, 0x18DFF),
                (0x1B000, 0x1B2FF), (0x1F300, 0x1F64F), (0x1F680, 0x1F6FF),
                (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF), (0x20000, 0x3FFFD))
_ZWJ, _VS16 = "\u200d", "\ufe0f"


@functools.lru_cache(maxsize=8192)
def _char_width(ch: str) -> int:
    """Cells one character takes alone: 0, 1 or 2."""
    o = ord(ch)
    if o < 0x20 or 0x7F <= o < 0xA0:
        return 0  # controls (safe_text shows them as ^X first)
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me", "Mc", "Zl", "Zp") or (cat == "Cf" and ch not in _SHOWN_FORMAT):
        return 0  # combining marks, zero-width spaces and joiners, direction marks
    if 0x1160 <= o <= 0x11FF or 0xD7B0 <= o <= 0xD7FF or o in (0x3164, 0xFFA0) \
            or 0x1F3FB <= o <= 0x1F3FF:
        return 0  # Hangul vowels and finals (of a syllable), skin tones (of an emoji)
    if cat == "Cn":  # unassigned in Python's tables (and Python says "F" for those)
        return 2 if any(a <= o <= b for a, b in _WIDE_BLOCKS) else \
            0 if 0xE0000 <= o <= 0xE0FFF else 1  # (tags and selectors: ignorable)
    if unicodedata.east_asian_width(ch) in "WF" or \
            any(a <= o <= b for a, b in _WIDE_SINCE_16):
        return 2
    return 1


#: characters of one cell that combine with nothing (Latin, Greek, Cyrillic, punctuation
#: such as … and ·, arrows, box drawing, blocks, Braille): what most names and cells hold
_ONE_CELL = re.compile("[\x20-\x7e\xa0-\xac\xae-\u02ff\u0370-\u0482\u2010-\u2027"
                       "\u2030-\u205e\u2190-\u21ff\u2500-\u25fc\u2800-\u28ff]*")


def _fast(text: str) -> bool:
    """One cell per character: lengths are widths, slices cut cells."""
    if text.isascii():
        return text.isprintable()
    return _ONE_CELL.fullmatch(text) is not None


def _spans(text: str) -> list[list[int]]:
    """``[start, cells]`` of each character as the terminal draws it: a character with the
    marks, selectors and joined emoji that follow it (cut only between these)."""
    spans: list[list[int]] = []
    last = ""  # the last character measured (a selector may widen it)
    join = False  # after a zero-width joiner: the next character is drawn into the last
    for i, ch in enumerate(text):
        add = 0
        if join:
            join = False
        elif ch == _ZWJ:
            join = True
        elif ch == _VS16:
            add = 1 if last in _TEXT_EMOJI else 0
            last = ""
        else:
            w = _char_width(ch)
            if w:
                last = ch
                spans.append([i, w])
                continue
        if not spans:  # zero-width before any character: a span of its own
            spans.append([i, 0])
        spans[-1][1] += add
    return spans


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes, as rich (which draws the app) counts them: two for a
    wide character (CJK, full-width forms, most emoji), none for a combining mark, a
    zero-width joiner and what it joins, one for the rest."""
    if _fast(text):
        return len(text)
    return _wide_width(text)


@functools.lru_cache(maxsize=4096)
def _wide_width(text: str) -> int:
    """:func:`cell_width` of a text with characters of other widths (remembered: a table
    measures the same names as it cuts and pads them)."""
    if _ZWJ not in text and _VS16 not in text:
        return sum(map(_char_width, text))
    return sum(w for _, w in _spans(text))


def first_cells(text: str, width: int) -> str:
    """The longest start of ``text`` in at most ``width`` cells (a wide character that
    would not fit whole is left out)."""
    if width <= 0:
        return ""
    if _fast(text):
        return text[:width]
    used = 0
    if _ZWJ not in text and _VS16 not in text:  # each character on its own: stop early
        for i, ch in enumerate(text):
            used += _char_width(ch)
            if used > width:
                return text[:i]
        return text
    for start, w in _spans(text):
        if used + w > width:
            return text[:start]
        used += w
    return text


def last_cells(text: str, width: int) -> str:
    """The longest end of ``text`` in at most ``width`` cells (never from inside a
    character's marks)."""
    if width <= 0:
        return ""
    if _fast(text):
        return text[-width:]
    used, cut = 0, len(text)
    if _ZWJ not in text and _VS16 not in text:  # each character on its own: stop early
        for i in range(len(text) - 1, -1, -1):
            used += _char_width(text[i])
            if used > width:
                break
            cut = i
        while cut < len(text) and not _char_width(text[cut]):
            cut += 1  # the marks of a character left out go with it
        return text[cut:]
    for start, w in reversed(_spans(text)):
        if used + w > width:
            break
        used += w
        cut = start
    return text[cut:]


def clusters(text: str) -> list[tuple[str, int]]:
    """``text`` as the pieces the terminal draws in cells, with their widths (1 or 2; 0
    only for a text of zero-width characters alone)."""
    if _fast(text):
        return [(ch, 1) for ch in text]
    spans = _spans(text)
    out = [(text[a:b], w) for (a, w), (b, _) in zip(spans, spans[1:] + [[len(text), 0]])]
    if len(out) > 1 and out[0][1] == 0:  # leading zero-width: drawn with what follows
        out[1] = (out[0][0] + out[1][0], out[1][1])
        del out[0]
    return out


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` made ``width`` cells wide with spaces after it (``right``: before it); a
    text that is already wider is not cut."""
    n = width - cell_width(text)
    return text if n <= 0 else (" " * n + text if right else text + " " * n)


def clip(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its start kept ("…" last)."""
    if cell_width(text) <= width:
        return text
    return first_cells(text, width - 1) + "…" if width > 1 else "…"[:max(width, 0)]


def fit(text: str, width: int, right: bool = False, cut: str = "end") -> str:
    """``text`` in exactly ``width`` cells: shortened (``cut`` "end" keeps its start,
    "middle" its start and end, "start" its end) and padded (``right``: aligned right)."""
    if _fast(text) and len(text) <= width:  # (most cells of most tables)
        return " " * (width - len(text)) + text if right else text + " " * (width - len(text))
    if cell_width(text) > width:
        text = middle(text, width) if cut == "middle" else tail(text, width) \
            if cut == "start" else clip(text, width)
    return pad(text, width, right)


def middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: its start and end kept, "…" between (what tells
    names apart is often at their end: a tid, a kernel's own name after its namespaces)."""
    if cell_width(text) <= width:
        return text
    if width <= 1:
        return "…"[:max(width, 0)]
    head = width // 2
    end = width - 1 - head
    if _fast(text):
        return text[:head] + "…" + (text[-end:] if end else "")
    return _join(text, head, end)


def _join(text: str, head: int, end: int) -> str:
    """The start of ``text`` in ``head`` cells, "…", its end in ``end`` cells; a cell that
    a wide character leaves on one side goes to the other."""
    a = first_cells(text, head)
    b = last_cells(text, end + head - cell_width(a))
    spare = head + end - cell_width(a) - cell_width(b)
    if spare:
        a = first_cells(text, cell_width(a) + spare)
    return a + "…" + b


def tail(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, its end kept ("…" first)."""
    if cell_width(text) <= width:
        return text
    return "…" + last_cells(text, width - 1) if width > 1 else "…"[:max(width, 0)]


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
    token = max(cell_width(re.split(r"[<(, ]", t[cut:], maxsplit=1)[0]) for t in texts)
    for lead in ((lead, "…") if token <= (width - cell_width(lead) - 1) // 2 else ("…",)):
        room = width - cell_width(lead)
        got = [lead + _head_and_end(t[cut:], room, token) for t in texts]
        if len(set(got)) == len(got):
            return got
    return None


def _head_and_end(text: str, width: int, head: int) -> str:
    """``text`` in ``width`` cells as :func:`middle` shortens it, but keeping at least its
    first ``head`` cells (the part that tells it from its neighbours)."""
    if cell_width(text) <= width or head <= (width - 1) // 2:
        return middle(text, width)
    head = min(head, width - 1)
    return _join(text, head, width - 1 - head)


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
            out[i] = middle(texts[i], max(width - cell_width(tag), 1)) + tag
    return out
