"""Interned strings: every name and category is stored once and referred to by an int32 id."""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np


def as_text(value: Any) -> str:
    """A trace value used as a name, as text (non-strings are kept as data, not dropped)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


#: A name longer than this many characters is kept cut to it (its start, then how long it
#: was). No profiler writes such names (long C++ kernel names are ~10 K); a hostile or broken
#: trace can (one 800 MB name), and every use of a name - search, the tables, the detail
#: pane, drawing - would then cost its length. Cut once, when first seen.
MAX_NAME = 64 * 1024


def cut_name(text: str) -> str:
    """``text`` in at most :data:`MAX_NAME` characters, saying how long it was."""
    note = f"… (cut: {len(text):,} characters in all)"
    return text[: MAX_NAME - len(note)] + note


class StringTable:
    """Append-only table of unique strings. Id 0 is always the empty string."""

    def __init__(self) -> None:
        self.strings: list[str] = [""]
        self._ids: dict[Any, int] = {"": 0}
        self.non_text = 0  # names/categories that were not strings in the trace
        self.cut = 0  # names longer than MAX_NAME (kept cut)

    def __len__(self) -> int:
        return len(self.strings)

    def __getitem__(self, i: int) -> str:
        return self.strings[i]

    def intern(self, value: Any) -> int:
        try:
            got = self._ids.get(value)
        except TypeError:  # unhashable (list, dict)
            got = None
        if got is not None:
            return got
        text = as_text(value)
        if not isinstance(value, str) and value is not None:
            self.non_text += 1
        long = len(text) > MAX_NAME
        if long:
            text = cut_name(text)
            self.cut += 1
        got = self._ids.get(text)
        if got is None:
            got = len(self.strings)
            self.strings.append(text)
            self._ids[text] = got
        if not long:  # (a key would keep the whole long name alive)
            try:
                self._ids[value] = got
            except TypeError:
                pass
        return got

    def intern_many(self, values: list[Any]) -> np.ndarray:
        """Ids of ``values`` as int32; the common case (all seen before) is one C-speed pass."""
        get = self._ids.get
        try:
            ids = list(map(get, values))
        except TypeError:
            ids = [self.intern(v) for v in values]
        else:
            if None in ids:
                intern = self.intern
                ids = [i if i is not None else intern(v) for i, v in zip(ids, values)]
        return np.array(ids, dtype=np.int32)

    def non_str_ids(self) -> list[tuple[Any, int]]:
        """(value, id) of the names that were not strings (numbers, ...), to merge elsewhere."""
        return [(v, i) for v, i in self._ids.items() if v is not None and not isinstance(v, str)]

    def merge_non_str(self, pairs: list[tuple[Any, int]], lut: np.ndarray, non_text: int) -> None:
        """Take another table's :meth:`non_str_ids` (its ids mapped to ours by ``lut``) and its
        count of non-string names: a non-string name counts once per table, as in one."""
        dup = 0
        for v, i in pairs:
            try:
                if v in self._ids:
                    dup += 1
                else:
                    self._ids[v] = int(lut[i])
            except TypeError:
                pass
        self.non_text += non_text - dup

    def find(self, text: str) -> int:
        """The id of ``text``, or -1 if no event has that string."""
        got = self._ids.get(text)
        return got if got is not None else -1

    def ids_matching(self, pred: Callable[[str], Any]) -> np.ndarray:
        """Ids of strings for which ``pred(s)`` is true (pred: callable)."""
        return np.array([i for i, s in enumerate(self.strings) if pred(s)], dtype=np.int32)
