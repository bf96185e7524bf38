"""A worker process of a parallel load: ``python -m tracetui.trace.worker FD PATH START END
PIECE EXACT PARENT FIND``. It parses one range of the events array with its own loader
(:meth:`~.loader.Loader.parse_range`) and answers on the socket ``FD``:

- ``("progress", bytes, events)`` a few times a second;
- ``("cut", offset)`` when it finds its own start (``FIND``, gzip);
- then ``("done", report)`` followed by each column as raw bytes, or ``("exact", None)``
  (a time that needs exact decoding: the loading process redoes the load), or
  ``("error", text)``.

It exits as soon as the loading process (``PARENT``) is gone.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from multiprocessing.connection import Connection
from typing import Any

from .builder import NeedExact
from .loader import Loader
from .parallel import send_columns
from .source import InflateError, TraceError


def main(argv: list[str]) -> int:
    fd, path, start_s, end_s, piece_s, exact_s, parent_s, find_s, size_s = argv
    conn = Connection(int(fd))
    start, end, parent = int(start_s), (int(end_s) if end_s else None), int(parent_s)
    last = [0.0]
    loaders: list[Loader] = []

    def progress(p: Any) -> None:
        if os.getppid() != parent:  # the loading process is gone: so is the point
            os._exit(1)
        now = time.perf_counter()
        if now - last[0] >= 0.1:
            last[0] = now
            base = loaders[0].range_base if loaders else 0  # bytes on disk before the range
            conn.send(("progress", p.bytes_done - base, p.events))

    def found(at: int) -> None:
        conn.send(("cut", at))

    try:
        loader = Loader(path, progress=progress, progress_interval=0.1,
                        piece_bytes=int(piece_s), workers=1,
                        size=int(size_s) if size_s else None)  # the size at open: no further
        loaders.append(loader)
        report = loader.parse_range(start, end, exact_s == "1", find_start=find_s == "1",
                                    on_start=found)
    except NeedExact:
        conn.send(("exact", None))
        return 0
    except TraceError as err:
        conn.send(("error", str(err)))
        return 0
    except (OSError, ValueError, MemoryError, RecursionError, zlib.error, InflateError,
            EOFError) as err:
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return 0
    conn.send(("done", report))
    send_columns(conn, loader.builder)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
