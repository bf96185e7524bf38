"""Writing exports (CSV tables, SVG screenshots) safely: never over an existing file, never a
half-written one.

The data goes to a temporary file in the target folder, is flushed to disk, then linked to its
final name with ``os.link``, which fails if that name exists (then the next free name is
tried: ``name-2.csv``, ``name-3.csv``, ...); the temporary file is removed in every case.
Pure: no textual or rich.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from .textutil import safe_text

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def csv_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula and no terminal runs as a sequence."""
    if not isinstance(value, str):
        return value
    value = safe_text(value)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(h) for h in header])
    for r in rows:
        w.writerow([csv_cell(v) for v in r])
    return buf.getvalue()


def export_name(trace_path: str, what: str, ext: str, when: float | None = None) -> str:
    """``tracetui-<trace stem>-<what>-<YYYYmmdd-HHMMSS>.<ext>``, with only safe characters."""
    stem = Path(trace_path).name
    for suffix in (".gz", ".json"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    parts = [_UNSAFE_NAME.sub("_", p).strip("._")[:60] for p in ("tracetui", stem, what)]
    return "-".join(p for p in parts if p) + f"-{stamp}.{ext}"


def write_new(folder: str | os.PathLike[str], name: str, data: str | bytes) -> Path:
    """Write ``data`` to a new file ``folder/name`` (or ``stem-2.ext``, ... if that exists) and
    return its path. Atomic: the file appears whole or not at all; nothing is overwritten."""
    folder = Path(folder)
    # (a lone surrogate cannot be UTF-8: written as its escape, never a crash)
    raw = data.encode("utf-8", errors="backslashreplace") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=".tracetui-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        for k in range(1, 10_000):
            target = folder / (name if k == 1 else f"{stem}-{k}{dot}{ext}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:
                # no hard links here (some network/FAT mounts): reserve the name with an
                # empty file, then rename the whole temporary file over it in one step
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    continue
                try:
                    os.replace(tmp, target)
                except OSError:
                    os.unlink(target)
                    raise
            return target
        raise OSError(f"no free file name for {name} in {folder}")
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m
