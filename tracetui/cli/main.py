"""Command line: ``tracetui TRACE``, ``tracetui summary TRACE [--json | --csv TABLE]`` and
``tracetui diff``: parsing, and what each command does (its text: :mod:`.render`; over
several files: :mod:`.many`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from .. import __version__
from ..export import csv_text
from ..tables import JOB_TABLES, TABLES
from ..textutil import safe_text
from ..trace import Progress, TraceError
from .render import fmt_bytes, print_rules, print_summary

_COMMANDS = ("summary", "diff")
#: the report's other tables ``--csv NAME`` writes (their plain fields)
OTHER_CSV = ("annotations", "streams", "lanes", "overlap", "stream_overlap", "exposed", "memory",
             "memory_ops", "memory_allocations", "graphs", "in_flight", "collectives",
             "collective_kinds")
EARLY_LOAD_MAX = 32 << 20  # bytes on disk


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


def _spooled(path: str) -> str:
    """A file to load for ``path``: itself, or for stdin (``-``) and pipes (``<(zcat t.gz)``)
    a temporary copy (the loader seeks: parallel ranges, re-reading args)."""
    from ..trace.source import needs_spool, spool

    if not needs_spool(path):
        return path
    shown = [False]

    def progress(n: int) -> None:
        if sys.stderr.isatty():
            shown[0] = True
            sys.stderr.write(f"\rreading {'stdin' if path == '-' else 'the pipe'}: "
                             f"{fmt_bytes(n)} ")
            sys.stderr.flush()

    try:
        return spool(path, progress)
    finally:
        if shown[0]:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _load(path: str) -> Any:
    from ..trace import load

    progress = _StderrProgress()
    try:
        return load(path, progress=progress)
    finally:
        progress.done()


def _rules(args: argparse.Namespace) -> Any:
    from ..analysis.rules import load_rules

    return load_rules(comm=args.comm or (), config=args.config,
                      in_flight=getattr(args, "in_flight", None) or (),
                      no_in_flight=getattr(args, "no_in_flight", False))


def _keymap(args: argparse.Namespace) -> dict[str, str]:
    """The config's [keys] for the app (an unknown id: one line, before the screen changes)."""
    from ..app.app import TraceApp
    from ..app.keys import load_keymap

    return load_keymap(args.config, (b.id for b in TraceApp.BINDINGS if b.id))


def _summary(args: argparse.Namespace) -> int:
    from ..analysis.report import analyze

    rules = _rules(args)
    if args.rules:
        print_rules(rules, as_json=args.json)
        if not args.trace:
            return 0
    if not args.trace:
        raise TraceError("summary: a trace file is needed (or --rules alone)")
    from ..analysis.report import is_report

    # a report (summary --json of a trace) is a rank: alone, the rank table of that one
    if len(args.trace) > 1 or os.path.isdir(args.trace[0]) or \
            (os.path.isfile(args.trace[0]) and is_report(args.trace[0])):  # (a pipe: read once)
        if args.csv and args.csv not in ("default", *JOB_TABLES):
            raise TraceError(f"summary --csv {safe_text(args.csv, 40)}: of several traces, "
                             "the table is " + ", ".join(JOB_TABLES) + " (--json gives every "
                             "figure)")
        from .many import rank_summary

        return rank_summary(args.trace, rules, as_json=args.json,
                            scheduler=getattr(args, "scheduler", None),
                            csv="ranks" if args.csv else None)
    from ..analysis.phases import DEFAULT_GROUPS
    from ..analysis.streams import kernel_wait

    if getattr(args, "scheduler", None):
        raise TraceError("summary --scheduler: for several traces (a directory, or A B …); "
                         "one trace is read here")
    kernel_wait(args.kernel_wait)  # a bad threshold: one line, before any loading
    if args.csv == "default":
        args.csv = "kernels"
    if args.csv and args.csv not in TABLES and args.csv not in OTHER_CSV:
        raise TraceError(f"summary --csv {safe_text(args.csv, 40)}: no such table ("
                         + ", ".join([*TABLES, *OTHER_CSV]) + ")")
    trace = _load(_spooled(args.trace[0]))
    from ..heap import keep_freed_memory

    keep_freed_memory(trace.slice_count)  # (after the load: as when loaded alone)
    from ..analysis.rules import load_peaks

    report = analyze(trace, rules, kernel_wait_us=args.kernel_wait,
                     level=getattr(args, "level", None), blocks=getattr(args, "phases", False),
                     groups=getattr(args, "phase_groups", None) or DEFAULT_GROUPS,
                     step_regex=getattr(args, "step", None),
                     shapes=getattr(args, "shapes", False) or args.csv == "operator_shapes",
                     peaks=load_peaks(args.config))
    if args.csv:
        rows = report[args.csv]
        if args.csv in TABLES:
            fields = TABLES[args.csv].csv_fields()
        else:  # a table of the report without a definition: its plain fields, in order
            keys = list(dict.fromkeys(k for r in rows for k in r))
            fields = [k for k in keys if all(r.get(k) is None or isinstance(r.get(k), (
                str, int, float)) for r in rows)]
        sys.stdout.write(csv_text(fields, ([row.get(f) for f in fields] for row in rows)))
        return 0
    if args.json:
        # ensure_ascii: every control or bidi character in a name is written as \uXXXX
        from ..output import write_json

        write_json(report)
        return 0
    print_summary(report, args.top, group=getattr(args, "group", False))
    return 0


def _interactive() -> bool:
    """A terminal the app can run in: stdin and stdout are terminals, TERM is not dumb."""
    return sys.stdout.isatty() and sys.stdin.isatty() and \
        os.environ.get("TERM", "") not in ("dumb", "")


def _ranks_view(args: argparse.Namespace) -> int:
    """Several traces or a directory: one timeline, lanes grouped by rank, in a terminal
    (R: the rank view); elsewhere the per-rank table."""
    from .many import rank_summary

    rules = _rules(args)
    if not _interactive():
        return rank_summary(args.trace, rules, as_json=False, scheduler=args.scheduler)
    from ..job.many import trace_files

    files = trace_files(args.trace)
    for f in files:
        from ..trace.source import Source

        Source.open(f)  # a missing or unreadable file: one line, before the screen changes
    from ..app.app import TraceApp
    from ..app.themes import load_theme

    load_theme(args.theme)
    label = os.path.basename(os.path.normpath(args.trace[0])) if len(args.trace) == 1 \
        else f"{len(files)} traces"
    keymap = _keymap(args)
    if args.scheduler:
        from ..job.cluster import check_scheduler

        sys.stderr.write(f"connecting to the Dask scheduler at {safe_text(args.scheduler, 80)} …\r")
        sys.stderr.flush()
        try:
            check_scheduler(args.scheduler)  # unreachable, or no distributed: one line, now
        finally:
            sys.stderr.write("\r\x1b[K")
    ranks = f"{len(files)} rank{'' if len(files) == 1 else 's'}"
    app = TraceApp(f"{label} ({ranks})", rules, theme=args.theme, ranks=files,
                   align=args.align, phase_groups=args.phase_groups, keymap=keymap,
                   max_ranks=args.max_ranks, scheduler=args.scheduler, step_regex=args.step)
    from ..app.process import exit_status
    from ..signals import running

    with running(app):  # a signal: the app exits (the terminal restored), then 128+N
        app.run()
    return exit_status(app)


def _view(args: argparse.Namespace) -> int:
    """The interactive timeline in a terminal; elsewhere (a pipe, TERM=dumb) the summary."""
    args.trace = _spooled(args.trace)
    if not sys.stdin.isatty() and sys.stdout.isatty():
        _keys_from_tty()  # `zcat t.json.gz | tracetui -`: keys come from the terminal
    if not _interactive():
        why = "TERM=dumb" if sys.stdout.isatty() and sys.stdin.isatty() else "not a terminal"
        print(f"tracetui: {why}: here is the summary instead of the timeline "
              "(`tracetui summary TRACE [--json | --csv]` prints it directly)", file=sys.stderr)
        ns = argparse.Namespace(trace=[args.trace], json=False, csv=None, rules=False,
                                top=args.top, comm=args.comm, config=args.config,
                                step=args.step, shapes=False,
                                phases=False, kernel_wait=_parser_summary().get_default(
                                    "kernel_wait"))
        return _summary(ns)
    from ..trace.source import Source

    Source.open(args.trace)  # a missing or unreadable file: one line, before the screen changes
    from ..analysis.report import is_report

    if os.path.isfile(args.trace) and is_report(args.trace):
        raise TraceError(f"{args.trace}: a tracetui report, which holds no timeline (summary "
                         "takes it as its rank; open the trace it was made from)")
    rules = _rules(args)
    # Reading starts now, in a thread, while the UI is imported and started (see EarlyLoad).
    early = _early_load(args.trace, pause_after_first=os.path.getsize(args.trace) > EARLY_LOAD_MAX)
    from ..app.app import TraceApp
    from ..app.themes import load_theme

    load_theme(args.theme)  # an unknown theme: one line, before the screen changes
    keymap = _keymap(args)
    from ..analysis.rules import load_peaks

    app = TraceApp(args.trace, rules, theme=args.theme, early=early,
                   phase_groups=args.phase_groups, keymap=keymap, step_regex=args.step,
                   peaks=load_peaks(args.config))
    from ..app.process import exit_status
    from ..signals import running

    with running(app):  # a signal: the app exits (the terminal restored), then 128+N
        app.run()
    return exit_status(app)


def _keys_from_tty() -> None:
    """Make the controlling terminal the standard input (as `less` does when data is piped
    in), so that the app can read keys; without one, nothing changes (the summary is shown)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return
    try:
        if os.isatty(fd):
            os.dup2(fd, 0)
    finally:
        os.close(fd)


def _early_load(path: str, pause_after_first: bool) -> Any:
    from ..trace.loader import EarlyLoad

    return EarlyLoad(path, pause_after_first)


def demo_path() -> str:
    """The bundled sample (a DeepSeek-prefill-like trace: 2 GPUs, two micro-batches)."""
    from importlib import resources

    return str(resources.files("tracetui").joinpath("data", "demo.json.gz"))


def _parser_summary() -> argparse.ArgumentParser:
    from ..analysis.streams import KERNEL_WAIT_US

    p = argparse.ArgumentParser(
        prog="tracetui summary",
        description="Kernels, streams, annotations and how much communication hides behind "
                    "computation, without the UI.")
    p.add_argument("trace", nargs="*",
                   help="trace file (.json or .json.gz, - for stdin); several files or a "
                        "directory: the per-rank figures and the straggler")
    p.add_argument("--json", action="store_true", help="everything, machine-readable")
    p.add_argument("--csv", nargs="?", const="default", default=None, metavar="TABLE",
                   help="a table as CSV on stdout: kernels (the default), "
                        + ", ".join([*list(TABLES)[1:], *OTHER_CSV])
                        + "; of several traces: " + ", ".join(JOB_TABLES))
    p.add_argument("--step", type=_regex, default=None, metavar="REGEX",
                   help="steps are the CPU annotations whose name REGEX matches (default: "
                        "ProfilerStep#N; with none, the whole trace is one step)")
    p.add_argument("--shapes", action="store_true",
                   help="operators by input shapes and types too (their args are re-read "
                        "from the file: seconds on a large trace)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="several traces: make their reports on this running Dask distributed "
                        "cluster (tcp://host:8786; the files on a filesystem its workers "
                        "share; pip install 'tracetui[dask]') instead of local processes")
    p.add_argument("--top", type=_count, default=15, metavar="N",
                   help="rows per table in the text output (0: all; default 15)")
    p.add_argument("--group", action="store_true",
                   help="kernel table by short name (templates and arguments elided)")
    p.add_argument("--phases", action="store_true",
                   help="the phase diagram: per GPU, computation and communication rows of "
                        "the repeating annotations' kernels (and `phases` in --json)")
    p.add_argument("--level", type=_depth, default=None, metavar="DEPTH",
                   help="the phases are the repeating annotations at this nesting depth "
                        "(default: the innermost that repeat)")
    p.add_argument("--phase-groups", action="append", metavar="REGEX", type=_regex,
                   help="--phases: the chunk or micro-batch of a phase: the first group of "
                        "the first REGEX that matches its name (repeatable; default: (F)/(B)/"
                        "(W) and mb0/micro_batch_1-style names)")
    p.add_argument("--kernel-wait", type=float, default=KERNEL_WAIT_US, metavar="US",
                   help="idle split: gaps shorter than US µs between kernels a stream already "
                        f"had are kernel wait (default {KERNEL_WAIT_US:g})")
    _rule_args(p)
    p.add_argument("--rules", action="store_true",
                   help="print the active classification rules (a trace is then optional)")
    return p


def _parser_diff() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracetui diff",
        description="What changed from a baseline run to a new one: kernels by impact "
                    "(count, total, average), kernels in one run only, overlap per GPU and "
                    "per annotation, before and after.")
    p.add_argument("base", help="the baseline trace (or a directory of a job's rank traces)")
    p.add_argument("new", help="the trace to compare with it (or the other job's directory)")
    p.add_argument("--json", action="store_true", help="everything, machine-readable")
    p.add_argument("--top", type=_count, default=20, metavar="N",
                   help="rows per table in the text output (0: all; default 20)")
    p.add_argument("--group", action="store_true",
                   help="kernels by short name (survives changed template arguments)")
    p.add_argument("--text", action="store_true",
                   help="print the tables even in a terminal (piped, they are printed anyway)")
    p.add_argument("--theme", default="dark", metavar="NAME", help="colour theme of the view")
    _rule_args(p)
    return p


def _diff(args: argparse.Namespace) -> int:
    from .many import diff, diff_ranks

    for p in (args.base, args.new):
        if p != "-" and not os.path.exists(p):
            raise TraceError(f"{p}: no such file or directory")
    if args.base == args.new == "-":
        raise TraceError("diff: stdin (-) can be one side only: the other is a file")
    dirs = [os.path.isdir(p) for p in (args.base, args.new)]
    if any(dirs):
        if not all(dirs):
            raise TraceError("diff: two directories of rank traces (two jobs), or two traces")
        return diff_ranks(args.base, args.new, _rules(args), as_json=args.json, top=args.top,
                          group=args.group)
    interactive = _interactive() and not args.text
    if interactive:
        from ..app.themes import load_theme

        load_theme(args.theme)  # an unknown theme: one line, before the screen changes
    return diff(_spooled(args.base), _spooled(args.new), _rules(args), as_json=args.json,
                top=args.top, group=args.group, view=interactive, theme=args.theme)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {safe_text(text, 40)!r}") \
            from None


def _count(text: str) -> int:
    """A row count (0: all): a negative one used to drop rows silently."""
    v = _whole(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} is negative (0 shows every row)")
    return v


def _positive(text: str) -> int:
    """A count of at least one."""
    v = _whole(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v}: at least 1")
    return v


def _depth(text: str) -> int:
    v = _count(text) if not text.strip().startswith("-") else -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"{safe_text(text, 40)} is not a depth (0 is the "
                                         "outermost annotations)")
    return v


def _regex(text: str) -> str:
    """A regular expression, checked here: a bad one was an internal error later."""
    import re

    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regex {safe_text(text, 60)!r}: {e}") from None
    return text


def _rule_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--comm", action="append", metavar="REGEX",
                   help="kernel names matching REGEX are communication (repeatable; "
                        "checked before the built-in rules)")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default ~/.config/tracetui/config.toml if it exists)")
    p.add_argument("--in-flight", action="append", metavar="REGEX",
                   help="communication kernels matching REGEX come as a short send and a later "
                        "receive, the transfer in flight between them (repeatable; built in: "
                        "DeepEP's low-latency _ll< and internode_ll::)")
    p.add_argument("--no-in-flight", action="store_true",
                   help="pair no send with a receive: kernel time only")


def _parser_main() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracetui",
        description="Terminal explorer for PyTorch Profiler (Kineto) and Chrome JSON traces.",
        epilog="commands: summary TRACE|DIR [--json | --csv] [--rules]   (tracetui summary -h); "
               "diff BASE NEW [--json]   (tracetui diff -h)")
    p.add_argument("trace", nargs="*",
                   help="trace file (.json or .json.gz, - for stdin); several, or a directory: "
                        "the ranks of one job on one timeline (piped: the per-rank figures)")
    p.add_argument("--demo", action="store_true", help="open the bundled sample trace")
    p.add_argument("--theme", default="dark", metavar="NAME",
                   help="colour theme: dark, light, high-contrast")
    p.add_argument("--align", default="start", metavar="ORIGIN",
                   help="several ranks: their common time origin: start (each trace's "
                        "start), step (the first ProfilerStep), clock (as recorded), or the "
                        "name of an annotation (its first occurrence); T cycles in the app")
    p.add_argument("--phase-groups", action="append", metavar="REGEX", type=_regex,
                   help="the phase view's chunk or micro-batch of a phase name: the first "
                        "group of the first REGEX that matches (repeatable)")
    p.add_argument("--max-ranks", type=_positive, metavar="N",
                   help="several ranks: the most rank timelines held at once (default 8, "
                        "fewer if memory is short); a job of more opens on demand: the rank "
                        "view from their reports, then the straggler's and the median rank's "
                        "timelines, and any rank ⏎ opens")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="several ranks: make their reports on the Dask distributed cluster "
                        "at ADDRESS (tcp://host:8786), the files on a filesystem its workers "
                        "share; the timelines opened are loaded here")
    p.add_argument("--step", type=_regex, default=None, metavar="REGEX",
                   help="the step view's steps: the CPU annotations whose name REGEX matches "
                        "(default: ProfilerStep#N)")
    p.add_argument("--top", type=_count, default=15, metavar="N", help=argparse.SUPPRESS)
    _rule_args(p)
    p.add_argument("--version", action="version", version=f"tracetui {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the program (tests call main(argv) in their own process): see signals
        from ..signals import install

        install()
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..output import usable_streams

    usable_streams()
    try:
        rc = _main(argv)
        sys.stdout.flush()  # here, not at exit: a full disk is one line, not a traceback
        return rc
    except TraceError as e:
        from ..trace.source import relabel

        print(f"tracetui: error: {safe_text(relabel(str(e)))}", file=sys.stderr)
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
    except OSError as e:  # the output: a full disk (> /dev/full), a dead terminal
        try:
            sys.stdout = open(os.devnull, "w")  # (what is left unwritten goes nowhere)
        except OSError:
            pass
        what = e.strerror or type(e).__name__
        print(f"tracetui: error: cannot write the output: {safe_text(what, 100)}",
              file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        print(f"tracetui: internal error: {type(e).__name__}: {safe_text(str(e), 200)} "
              "(please report this with the trace if you can)", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "summary":
        args = _parser_summary().parse_args(argv[1:])
        return _summary(args)
    if argv and argv[0] == "diff":
        return _diff(_parser_diff().parse_args(argv[1:]))
    parser = _parser_main()
    args = parser.parse_args(argv)
    if args.demo:
        args.trace = [demo_path()]
    if not args.trace:
        parser.print_usage(sys.stderr)
        print("tracetui: error: a trace file is needed (or --demo)", file=sys.stderr)
        return 2
    if len(args.trace) > 1 or os.path.isdir(args.trace[0]):
        return _ranks_view(args)
    for flag, value in (("--scheduler", args.scheduler), ("--max-ranks", args.max_ranks)):
        if value:
            raise TraceError(f"{flag}: for the ranks of a job (a directory, or A B …); "
                             "one trace is opened here")
    args.trace = args.trace[0]
    return _view(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
