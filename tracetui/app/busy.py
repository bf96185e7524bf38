"""How many of the app's thread workers are running their work now.

A thread worker that Textual cancels (an exclusive group's next worker, a screen dismissed)
is only forgotten by Textual: its thread runs its work to the end, holding what it works on.
The app freezes its heap (gc.freeze) once a trace's views are made; what a worker still holds
then - the trace shown before, a view let go of - is frozen with it and would never be
collected: while work runs (:func:`running`), the heap is thawed, collected and frozen again
once it is done."""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_running = 0


def counted(fn: F) -> F:
    """``fn`` (run in a worker's thread), counted while it runs."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        global _running
        with _lock:
            _running += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with _lock:
                _running -= 1

    return run  # type: ignore[return-value]


def running() -> int:
    """How many counted works are running now."""
    return _running
