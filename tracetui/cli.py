"""Command line: ``tracetui TRACE`` and ``tracetui summary TRACE [--json]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from . import __version__
from .textutil import safe_text
from .trace import Progress, TraceError

_COMMANDS = ("summary",)


def _fmt_ns(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.3f} µs"
    return f"{ns} ns"


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"


class _StderrProgress:
    """A one-line progress report on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled or p.elapsed_s < 0.5:
            return
        self.shown = True
        sys.stderr.write(f"\rloading {p.fraction * 100:5.1f}%  {p.mb_per_s:6.1f} MB/s  "
                         f"{p.events:,} events ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _load(path: str) -> Any:
    from .trace import load

    progress = _StderrProgress()
    try:
        return load(path, progress=progress)
    finally:
        progress.done()


def _summary(args: argparse.Namespace) -> int:
    from .analysis.facts import trace_facts

    trace = _load(args.trace)
    facts = trace_facts(trace)
    if args.json:
        # ensure_ascii: every control or bidi character in a name is written as \uXXXX
        json.dump(facts, sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
        return 0
    _print_summary(facts, args.top)
    return 0


def _print_summary(facts: dict[str, Any], top: int) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=False)
    t = Text()
    t.append("trace  ", style="bold")
    t.append(safe_text(facts["file"]))
    console.print(t)
    size = _fmt_bytes(facts["size_bytes"]) + (" (gzip)" if facts["compressed"] else "")
    ndev = len(facts["devices"])
    console.print(Text(f"{size} · {facts['events']:,} events · span {_fmt_ns(facts['span_ns'])}"
                       f" · {ndev} GPU{'' if ndev == 1 else 's'}"))
    console.print(Text(f"{facts['slices']:,} slices · {facts['flows']:,} flows · "
                       f"{facts['kernel_launch_links']:,} kernel↔launch links"))
    di = {k: v for k, v in facts["distributed_info"].items()
          if isinstance(v, (int, float, str)) and not str(v).startswith(("[", "{"))}
    if di:
        console.print(Text("distributed  " + ", ".join(f"{safe_text(k, 20)}={safe_text(v, 24)}"
                                                       for k, v in di.items())))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("lane", overflow="ellipsis", no_wrap=True,
                     max_width=max(20, min(64, console.width - 42)))
    table.add_column("kind", no_wrap=True, min_width=14)
    table.add_column("events", justify="right", no_wrap=True, min_width=8)
    table.add_column("depth", justify="right", no_wrap=True, min_width=5)
    lanes = facts["lanes"]
    for ln in lanes[:top] if top else lanes:
        table.add_row(Text(safe_text(ln["name"], 64)), ln["kind"], f"{ln['events']:,}",
                      str(ln["max_depth"] + 1) if ln["slices"] else "")
    console.print(table)
    if top and len(lanes) > top:
        console.print(Text(f"… {len(lanes) - top} more lanes (--top 0 shows all)"))
    if facts["truncated"] or facts["warnings"]:
        for w in facts["warnings"]:
            console.print(Text("warning: " + safe_text(w, 300), style="yellow"))


def _view(args: argparse.Namespace) -> int:
    # The interactive timeline is its own piece of work; until it lands, the plain
    # command shows the same facts as `summary` so that `tracetui TRACE` is useful.
    ns = argparse.Namespace(trace=args.trace, json=False, top=args.top)
    return _summary(ns)


def _parser_summary() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracetui summary",
                                description="Facts about a trace, without the UI.")
    p.add_argument("trace", help="trace file (.json or .json.gz)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--top", type=int, default=40, metavar="N",
                   help="show at most N lanes (0: all; text output only)")
    return p


def _parser_main() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracetui",
        description="Terminal explorer for PyTorch Profiler (Kineto) and Chrome JSON traces.",
        epilog="commands: summary TRACE [--json]   (tracetui summary -h for more)")
    p.add_argument("trace", help="trace file (.json or .json.gz)")
    p.add_argument("--top", type=int, default=40, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--version", action="version", version=f"tracetui {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "summary":
            args = _parser_summary().parse_args(argv[1:])
            return _summary(args)
        args = _parser_main().parse_args(argv)
        return _view(args)
    except TraceError as e:
        print(f"tracetui: error: {safe_text(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tracetui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # e.g. `tracetui summary t.json | head`: the reader went away; not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except MemoryError:
        print("tracetui: error: out of memory", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        print(f"tracetui: internal error: {type(e).__name__}: {safe_text(str(e), 200)} "
              "(please report this with the trace if you can)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
