"""What the screens ask of the app, as messages (they bubble from a screen to the app).

A screen never calls into the app: it posts one of these and the app that shows it
(:class:`~tracetui.app.app.TraceApp`, or :class:`~tracetui.app.compare.CompareApp` for the
tables it has) decides what it means. Values go down (a screen is built from the session),
messages come up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from textual.message import Message

from ..trace import Progress


@dataclass
class GotoRange(Message):
    """Back to the timeline showing [t0, t1) (ns), marked as the range."""

    t0: int
    t1: int


@dataclass
class GotoRows(Message):
    """Back to the timeline with slice ``rows[index]`` selected; ``rows`` (in time order)
    become what n / N step through."""

    rows: np.ndarray
    index: int


@dataclass
class GotoAnnotation(Message):
    """Back to the timeline at the first occurrence of annotation ``name`` (``source``: cpu
    or gpu), marked as the range."""

    name: str
    source: str


@dataclass
class GotoRank(Message):
    """Back to the timeline, the cursor on the first lane of ``rank``."""

    rank: int


@dataclass
class ShowInstances(Message):
    """The table of ``rows`` (a kernel's instances, or any GPU slices) titled ``title``."""

    title: str
    rows: np.ndarray


@dataclass
class ShowOccurrences(Message):
    """The occurrences ``rows`` of operator (or module) ``name``, slowest first; ``figures``:
    their self and device total times (``self``, ``dev``); ``shapes``: read their input
    shapes from the file."""

    name: str
    rows: np.ndarray
    figures: dict[str, np.ndarray]
    shapes: bool = True
    analyses: Any = None  # the aggregates ``rows`` are of (None: those shown)


@dataclass
class ShowUnattributed(Message):
    """The GPU work that no phase launched, as a kernel's instances are shown."""


@dataclass
class ExportRows(Message):
    """Write ``rows`` under ``header`` as a CSV named after ``what``."""

    what: str
    header: list[str]
    rows: list[list[Any]]


@dataclass
class LoadProgress(Message):
    """How far the load has read (posted from its worker thread; a newer one replaces one
    not yet handled, so a slow frame never queues a backlog)."""

    progress: Progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LoadProgress)


@dataclass
class PanesMade(Message):
    """The figures of everyday pane ``pane`` (steps, operators, modules) of ``analyses``
    are made (posted by their worker: the handler runs in the app's own context, not the
    worker's, which would otherwise be copied into every screen it starts and hold the
    aggregates for as long)."""

    analyses: Any
    pane: str
