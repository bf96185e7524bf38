"""Lane labels that fit the label column without losing what tells lanes apart.

A lane's name ("python3.10 2910249 · thread 2919752 (pt_autograd_0)", "GPU 0 · stream 7 ·
annotations", "r3 · pyper:trainer:0:0 · thread 7") is shortened step by step - words
abbreviated, the process name dropped before its pid, the thread's name shortened in the
middle - and never simply cut: what is left out is marked with "…". Labels of different
lanes stay different: where two still read the same, their ends (where tids and stream
numbers are) are kept instead, and a last resort numbers them. No UI library here.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from ..textutil import cell_width, fit_apart, middle, safe_text, tail

ELLIPSIS = "…"
_THREAD = re.compile(r"^thread (-?\d+)(?: \((.*)\))?$")
_PROC = re.compile(r"^(.*?)\s*(-?\d+)$")


def lane_label(lane: Any, width: int) -> str:
    """The fullest form of the lane's name that fits ``width`` cells."""
    name = safe_text(lane.name)
    if len(name) <= width:
        return name
    rank, rest = "", name
    m = re.match(r"^(r\d+ · )(.*)$", name)
    if m:  # a rank view's lane: "r3 · ..." keeps its rank first
        rank, rest = m.group(1), m.group(2)
    parts = rest.split(" · ")
    forms: list[str] = []
    if len(parts) >= 2 and parts[0].startswith("GPU "):
        gpu = "GPU" + parts[0][4:]
        stream = parts[1].replace("stream ", "s")
        extra = [p.replace("annotations", "annot.") for p in parts[2:]]
        forms = [" · ".join([gpu, stream, *extra]), " ".join([gpu, stream, *extra])]
    elif len(parts) == 2 and (pm := _PROC.match(parts[0])) and (tm := _THREAD.match(parts[1])):
        pname, pid = pm.group(1), pm.group(2)
        tid, tname = tm.group(1), tm.group(2) or ""
        tn = f" ({tname})" if tname else ""
        forms = [f"{pname} {pid} · {tid}{tn}", f"{pid} · {tid}{tn}", f"{pid}·{tid}{tn}"]
        for f in forms:
            if len(rank) + len(f) <= width:
                return rank + f
        # the thread's name shortened in the middle: the pid and tid stay whole
        fixed = f"{rank}{pid}·{tid}"
        room = width - len(fixed) - 1
        if tname and room >= 4:
            return f"{fixed} {middle(tname, room)}"
        if len(fixed) <= width:
            return fixed
        return tail(fixed, width)  # the tid: what tells a process's threads apart
    else:
        forms = [" · ".join(parts)]
    for f in forms:
        if len(rank) + len(f) <= width:
            return rank + f
    return middle(rank + forms[-1], width)


def lane_labels(lanes: Sequence[Any], width: int) -> list[str]:
    """Labels of ``lanes`` in ``width`` cells, different lanes never reading the same."""
    out = fit_apart([safe_text(ln.name) for ln in lanes], width,
                    [lane_label(ln, width) for ln in lanes])
    wide = [i for i, t in enumerate(out) if cell_width(t) > width]
    if not wide:
        return out
    # names of wide characters (CJK, emoji) take two cells a character: shortened again,
    # on fewer characters, until they fit the cells; alike ones then numbered
    for i in wide:
        chars = width
        while chars > 1 and cell_width(out[i]) > width:
            chars -= 1
            out[i] = lane_label(lanes[i], chars)
    seen: dict[str, list[int]] = {}
    for i, t in enumerate(out):
        seen.setdefault(t, []).append(i)
    for same in seen.values():
        if len(same) > 1:
            for k, i in enumerate(same):
                tag = f" #{k + 1}"
                text = out[i]
                while text and cell_width(text + tag) > width:
                    text = text[:-2] + ELLIPSIS if len(text) > 1 else ""
                out[i] = text + tag
    return out
