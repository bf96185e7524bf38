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


def write_json(data: Any, out: Any = None) -> None:
    """``data`` as JSON on ``out`` (stdout): the top-level keys one per line, and each row of
    a table (a list of objects: kernels, lanes, ranks) on a line of its own, written by the
    C encoder. ``json.dump(indent=2)`` runs the pure-Python encoder: 1 M kernel rows took 100 s
    to write (567 MB); now a few seconds, and a row is still one grep-able line. Strict JSON:
    no NaN or Infinity, ASCII only (names are data: escaped, never raw)."""
    import json

    out = sys.stdout if out is None else out
    enc = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(", ", ": ")).encode
    if not isinstance(data, dict) or not data:
        out.write(enc(data) + "\n")
        return
    items = list(data.items())
    out.write("{\n")
    for k, (key, value) in enumerate(items):
        out.write(f"  {enc(str(key))}: ")
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            out.write("[\n")
            last = len(value) - 1
            for start in range(0, len(value), 4096):  # a few thousand rows per write
                rows = value[start:start + 4096]
                out.write("".join("    " + enc(row) + (",\n" if start + j < last else "\n")
                                  for j, row in enumerate(rows)))
            out.write("  ]")
        else:
            out.write(enc(value))
        out.write(",\n" if k < len(items) - 1 else "\n")
    out.write("}\n")
