"""``tracetui diff`` of every ordered pair of traces: the samples, the bundled demo and
``../shared/traces`` (where present), each pair as the command's text (``--text``, with and
without ``--group``), its ``--json``, and the compare view (under Textual's Pilot: every
table of every pair drawn). Not a timing: a sweep too slow for each test run (the tests take
each trace against two others). Prints one JSON line: pairs, failures (each named), seconds.

    python bench/diff_pairs.py [TRACE ...]
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _traces(given: list[str]) -> list[str]:
    if given:
        return given
    found = sorted(str(p) for p in (ROOT / "sample_traces").iterdir()
                   if p.name.endswith((".json", ".json.gz")))
    found.append(str(ROOT / "tracetui" / "data" / "demo.json.gz"))
    shared = ROOT.parent / "shared" / "traces"
    if shared.is_dir():
        found += sorted(str(p) for p in shared.rglob("*") if p.name.endswith((".json", ".json.gz")))
    return found


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from tracetui import output
    from tracetui.cli import many as cli_many
    from tracetui.analysis.diff import compare
    from tracetui.analysis.report import analyze
    from tracetui.trace import TraceError, load

    started = time.perf_counter()
    reports, refused = {}, []
    for p in _traces(list(argv if argv is not None else sys.argv[1:])):
        try:
            reports[p] = analyze(load(p))
        except TraceError:
            refused.append(os.path.basename(p))  # not a trace: one line, as it should
    pairs = [(a, b) for a in reports for b in reports if a != b]
    failures: list[str] = []
    diffs = []
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None)
    output.console = lambda: console  # the text as `diff --text` prints it, into buf
    for a, b in pairs:
        name = f"{os.path.basename(a)} -> {os.path.basename(b)}"
        try:
            d = compare(reports[a], reports[b])
            for group in (False, True):
                cli_many._print_diff(d, 20, group)
            output.write_json(d, io.StringIO())
            diffs.append((name, d))
        except Exception as e:  # noqa: BLE001 - counted and named
            failures.append(f"{name}: text/json: {type(e).__name__}: {e}")

    async def views() -> None:
        from tracetui.app.compare import CompareApp, CompareScreen

        app = CompareApp(diffs[0][1], "diff-pairs")
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            for name, d in diffs:
                try:
                    scr = CompareScreen(d, app.palette)
                    await app.push_screen(scr)
                    await pilot.pause()
                    for table in scr.TABLES:
                        scr.action_table(table, toggle=False)
                        await pilot.pause()
                        assert scr.grid is not None
                        for y in range(min(len(scr.grid.order), 20) + 1):
                            scr.grid.render_line(y)
                    app.pop_screen()
                    await pilot.pause()
                except Exception as e:  # noqa: BLE001
                    failures.append(f"{name}: view: {type(e).__name__}: {e}: "
                                    + traceback.format_exc(limit=2).replace("\n", " | "))

    if diffs:
        asyncio.run(views())
    print(json.dumps({"traces": len(reports), "refused": refused, "pairs": len(pairs),
                      "failures": failures, "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
