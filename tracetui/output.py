"""Where the commands write: the text console, and what a closed or failing output means.

``tracetui summary T | head -1`` closes the pipe early: that is the reader's choice, not an
error (exit 0). Rich's own console answers a broken pipe with ``SystemExit(1)``; ours raises
``BrokenPipeError`` for the command line to handle as it handles any write. Rich is imported
only when a console is made (``--json`` needs none).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def console(**kw: Any) -> Any:
    """A Rich console for the commands' text output (no highlighting, no soft wrap)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    return _Console(highlight=False, soft_wrap=False, **kw)


def usable_streams() -> None:
    """Standard streams the commands can always write to: a closed one (``2>&-``) is
    ``None`` in Python (``print(file=None)`` would write the error to stdout instead) and
    becomes the null device; text that cannot be encoded (a lone surrogate, a name in a
    C locale) is written as escapes, never as raw bytes or a crash."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            try:
                setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
            except OSError:
                pass
            continue
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass  # (a replaced stream: a test's capture, a pipe wrapper)
