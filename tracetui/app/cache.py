"""A least-recently-used cache of drawn lines, keyed by everything a line depends on.

An ``OrderedDict`` underneath (C code: a hit costs one move, an insert past the size one
eviction), not Textual's ``LRUCache``, whose linked nodes of Python objects were slower on
the views benchmark and gave the cyclic collector more to walk on every full collection.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """At most ``maxsize`` values; the least recently used goes first."""

    __slots__ = ("maxsize", "_d", "hits", "misses")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(int(maxsize), 1)
        self._d: OrderedDict[Hashable, V] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> V | None:
        got = self._d.get(key)
        if got is None:
            self.misses += 1
            return None
        self.hits += 1
        self._d.move_to_end(key)
        return got

    def put(self, key: Hashable, value: V) -> V:
        d = self._d
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.maxsize:  # (more than one after the size was made smaller)
            d.popitem(last=False)
        return value

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._d
