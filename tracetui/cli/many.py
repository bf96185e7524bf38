"""``tracetui summary DIR`` (per-rank figures, stragglers) and ``tracetui diff BASE NEW``."""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from ..tables import rank_rows
from ..textutil import cell_width, safe_text
from ..trace import TraceError


def _ms(us: float | None) -> str:
    """Milliseconds with four or five significant digits (rank tables are wide)."""
    if us is None:
        return "—"
    ms = us / 1000
    return f"{ms:,.1f}" if abs(ms) >= 100 else f"{ms:,.3f}"


def _pct(p: float | None) -> str:
    return "—" if p is None else f"{p:.1f}"


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _signed_ms(us: float | None) -> str:
    return "—" if us is None else f"{us / 1000:+,.3f}"


def _signed_pct(p: float | None) -> str:
    return "—" if p is None else f"{p:+.1f}%"


class _Progress:
    """One line on stderr for several files (a terminal only)."""

    def __init__(self, files: int) -> None:
        self.files = files
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, done: int, total: int, files_done: int) -> None:
        if not self.enabled:
            return
        self.shown = True
        frac = done / total if total else 1.0
        sys.stderr.write(f"\rloading {self.files} traces {frac * 100:5.1f}%  "
                         f"({files_done} done) ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def load_reports(paths: Sequence[str], rules: Any,
                 scheduler: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The reports of ``paths`` (files or directories), computed side by side (local
    processes, or the Dask cluster at ``scheduler``); a file that cannot be read is named
    on stderr and left out; none readable is an error."""
    from ..job.many import as_ranks, reports, trace_files

    files = trace_files(paths)
    progress = _Progress(len(files))
    try:
        got = reports(files, rules, progress=progress, scheduler=scheduler)
    finally:
        progress.done()
    ok, warnings, _inputs = as_ranks(got, rules)
    for w in warnings:
        print(f"tracetui: warning: {safe_text(w)}", file=sys.stderr)
    if not ok:
        raise TraceError("none of the traces could be read")
    return ok


def rank_summary(paths: Sequence[str], rules: Any, as_json: bool,
                 scheduler: str | None = None, csv: str | None = None) -> int:
    """The job's figures: as text, ``--json``, or one table (``csv``: ranks) as CSV."""
    from ..analysis.ranks import summarize_ranks

    summary = summarize_ranks(load_reports(paths, rules, scheduler))
    if csv:
        from ..export import csv_text
        from ..tables import JOB_TABLES

        fields = JOB_TABLES[csv].csv_fields()
        rows = JOB_TABLES[csv].sorted_rows(rank_rows(summary["ranks"]) if csv == "ranks"
                                           else summary.get(csv) or [])
        sys.stdout.write(csv_text(fields, ([r.get(f) for f in fields] for r in rows)))
        return 0
    if as_json:
        from ..output import write_json

        write_json(summary)
        return 0
    _print_ranks(summary)
    return 0


def _print_ranks(s: dict[str, Any]) -> None:
    from rich.text import Text

    from ..output import console as out_console
    from ..tables import RANKS
    from .render import def_table

    console = out_console()
    rows = s["ranks"]
    console.print(def_table(
        RANKS, rank_rows(rows), console.width,
        title=f"{len(rows)} ranks, ms" + (" (◀ straggler)" if s["stragglers"] else ""),
        row_style=lambda r: "bold red" if r["straggler"] else None))
    med = s["median_comp_per_step_us"]
    if s["stragglers"]:
        for r in rows:
            if r["straggler"]:
                ratio = r["comp_per_step_us"] / med if med else float("inf")
                console.print(Text(f"straggler: rank {r['rank']}: computation per step "
                                   f"{_ms(r['comp_per_step_us'])} ms = {ratio:.2f}× the median "
                                   f"({_ms(med)} ms)", style="bold red"))
    elif len(rows) >= 3:
        console.print(Text(f"no straggler: every rank's computation per step is within "
                           f"5 % of the median ({_ms(med)} ms) or its usual spread"))
    else:
        console.print(Text("no straggler is named with fewer than three ranks", style="dim"))
    console.print(Text(f"rule: {s['rule']}", style="dim"))
    waits = [w for w in s.get("collective_waits") or [] if w["start_skew_us"] > 0]
    if waits:
        from ..tables import COLLECTIVE_WAITS

        late: dict[int, int] = {}
        for r in rows:
            if r.get("late_count"):
                late[r["rank"]] = r["late_count"]
        console.print(def_table(COLLECTIVE_WAITS, waits[:10], console.width,
                                title=f"collectives matched across ranks: "
                                      f"{s.get('collectives_matched', 0):,}; the most skewed "
                                      "(sync: waiting for the last rank to arrive)"))
        if late:
            worst = max(late, key=lambda k: (late[k], -k))
            console.print(Text(f"last to arrive most often: rank {worst} "
                               f"({late[worst]:,} of {s.get('collectives_matched', 0):,} "
                               "collectives)", style="bold"))
    for w in s["warnings"]:
        console.print(Text("warning: " + safe_text(w, 300), style="yellow"))


def diff(base_path: str, new_path: str, rules: Any, as_json: bool, top: int,
         group: bool, view: bool = False, theme: str = "dark") -> int:
    """Compare two runs: JSON, text, or (``view``, in a terminal) the compare view."""
    from ..analysis.diff import compare

    from ..job.many import reports

    from ..trace.source import relabel, shown_path

    got = reports([base_path, new_path], rules)
    for _path, report, err in got:
        if err is not None:
            raise TraceError(relabel(err))
        report["file"] = shown_path(report["file"])  # "stdin", not the pipe's temporary copy
    result = compare(got[0][1], got[1][1])
    if view and not as_json:
        from ..app.compare import CompareApp

        label = "diff-" + os.path.basename(shown_path(new_path))
        from ..signals import running

        app = CompareApp(result, label, theme=theme)
        with running(app):  # a signal: the app exits (the terminal restored), then 128+N
            app.run()
        from ..app.process import exit_status

        return exit_status(app)
    if as_json:
        from ..output import write_json

        write_json(result)
        return 0
    _print_diff(result, top, group)
    return 0


def diff_ranks(base_dir: str, new_dir: str, rules: Any, as_json: bool, top: int,
               group: bool) -> int:
    """``tracetui diff DIR_A DIR_B``: two jobs rank by rank (JSON or tables)."""
    from ..analysis.diff import compare_ranks

    sides = []
    for side, where in (("base", base_dir), ("new", new_dir)):
        try:
            sides.append(load_reports([where], rules))
        except TraceError as e:
            raise TraceError(f"diff: the {side} job ({where}): {e}") from None
    result = compare_ranks(*sides)
    if as_json:
        from ..output import write_json

        write_json(result)
        return 0
    from rich.text import Text

    from ..output import console as out_console

    console = out_console()
    console.print(Text(f"base  {safe_text(base_dir)}  ({result['base']['ranks']} ranks)\n"
                       f"new   {safe_text(new_dir)}  ({result['new']['ranks']} ranks)"))
    rows, styles = [], []
    for r in result["ranks"]:
        rows.append([str(r["rank"]) + (" ◀" if r["changed"] else ""),
                     f"{_ms(r['base_comp_per_step_us'])}→{_ms(r['new_comp_per_step_us'])}",
                     _signed_pct(r["delta_comp_per_step_us_pct"]),
                     _signed_pct(r["delta_step_us_pct"]),
                     _signed_ms(r["delta_exposed_comm_us"]),
                     f"{_pct(r['base_overlap_pct'])}→{_pct(r['new_overlap_pct'])}"])
        styles.append("bold red" if r["changed"] else None)
    console.print(_table(console, "per rank (ms; ◀ changed unlike the others)",
                         ["rank", "comp/step", "Δ comp", "Δ step", "Δ exposed", "ovl %"], rows,
                         name=None, styles=styles))
    ch = result["changed"]
    console.print(Text("changed: " + (", ".join(f"rank {r}" for r in ch) if ch else
                                      "no rank changed unlike the others"),
                       style="bold red" if ch else ""))
    st = result["stragglers"]
    console.print(Text(f"straggler before: {', '.join(map(str, st['base'])) or 'none'}; "
                       f"after: {', '.join(map(str, st['new'])) or 'none'}"))
    every_k = result["kernel_groups" if group else "kernels"]
    ks = every_k[:top] if top else every_k
    if ks:
        krows = [[Text(safe_text(k["name"])), Text(safe_text(k["class"], 8)),
                  f"{k['base_count']}→{k['new_count']}",
                  f"{_ms(k['base_total_us'])}→{_ms(k['new_total_us'])}",
                  _signed_ms(k["delta_total_us"])] for k in ks]
        every = result["kernel_ranks"] == max(result["base"]["ranks"], result["new"]["ranks"])
        over = "all ranks" if every else f"the {result['kernel_ranks']} ranks both jobs have"
        console.print(_table(console, f"kernels over {over}, by impact (ms)",
                             ["kernel", "class", "count", "total", "Δ total"], krows))
        if len(every_k) > len(ks):
            console.print(Text(f"  … {len(every_k) - len(ks)} more kernels (--top 0 shows all)"))
    console.print(Text(f"rule: {result['rule']}", style="dim"))
    for w in result["warnings"]:
        console.print(Text("warning: " + safe_text(w, 300), style="yellow"))
    return 0


def _table(console: Any, title: str, heads: Sequence[str], rows: list[list[Any]],
           name: int | None = 0, styles: list[str | None] | None = None) -> Any:
    """A table whose number columns are as wide as their widest cell and whose ``name``
    column (text, cut with an ellipsis) gets the rest of the terminal's width."""
    from rich import box
    from rich.table import Table

    def cell_len(c: Any) -> int:
        return cell_width(c.plain if hasattr(c, "plain") else str(c))

    widths = [max([cell_width(h)] + [cell_len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title, title_justify="left",
              title_style="bold")
    fixed = sum(w for i, w in enumerate(widths) if i != name) + 3 * len(heads)
    for i, (h, w) in enumerate(zip(heads, widths)):
        if i == name:
            t.add_column(h, no_wrap=True, overflow="ellipsis",
                         max_width=max(16, min(w, console.width - fixed)))
        else:
            t.add_column(h, justify="right", no_wrap=True, min_width=w)
    for k, r in enumerate(rows):
        t.add_row(*r, style=styles[k] if styles else None)
    return t


def _print_diff(d: dict[str, Any], top: int, group: bool) -> None:
    from ..output import console as out_console
    from rich.text import Text

    console = out_console()

    def limit(rows: list[Any]) -> list[Any]:
        return rows[:top] if top else rows

    def delta(v: float | None, text: str) -> Text:
        return Text(text, style=None if not v else ("red" if v > 0 else "green"))

    for side in ("base", "new"):
        t = Text(f"{side:<5} ", style="bold")
        t.append(safe_text(d[side]["file"]))
        t.append(f"  ({d[side]['events']:,} events)", style="dim")
        console.print(t)

    labels = {"span_us": "trace span", "steps": "ProfilerSteps", "step_us": "step (median)",
              "gpu_busy_us": "GPU busy", "comp_us": "computation", "comm_us": "communication",
              "exposed_comm_us": "exposed communication", "overlap_pct": "overlap %"}
    rows = []
    for k, v in d["totals"].items():
        if k == "steps":
            cells = [str(v["base"]), str(v["new"]),
                     "—" if v["delta"] is None else f"{v['delta']:+d}", ""]
        elif k == "overlap_pct":
            cells = [_pct(v["base"]), _pct(v["new"]),
                     "—" if v["delta"] is None else f"{v['delta']:+.1f}", ""]
        else:
            cells = [_ms(v["base"]), _ms(v["new"]), _signed_ms(v["delta"]),
                     _signed_pct(v["delta_pct"])]
        bad = v["delta"] if k not in ("overlap_pct", "steps") else None
        rows.append([labels[k], *cells[:2], delta(bad, cells[2]), delta(bad, cells[3])])
    console.print(_table(console, "totals, ms", ["", "base", "new", "Δ", "Δ %"], rows))

    def only(heads: list[str], rows: list[list[Any]], table: list[dict[str, Any]]
             ) -> tuple[list[str], list[list[Any]]]:
        """With a row present in one run only: an ``only in`` column after the name, which
        says the run ("base", "new"; blank for a row of both)."""
        if all(r["in"] == "both" for r in table):
            return heads, rows
        return ([heads[0], "only in", *heads[1:]],
                [[x[0], "" if r["in"] == "both" else r["in"], *x[1:]]
                 for x, r in zip(rows, table)])

    def side(r: dict[str, Any], which: str, text: str) -> str:
        """A figure of one side, "—" where that side has no such row."""
        return "—" if r["in"] not in ("both", which) else text

    ks = d["kernel_groups"] if group else d["kernels"]
    rows = [[Text(safe_text(r["name"])), f"{side(r, 'base', str(r['base_count']))}→"
             f"{side(r, 'new', str(r['new_count']))}",
             side(r, "base", _ms(r["base_total_us"])), side(r, "new", _ms(r["new_total_us"])),
             delta(r["delta_total_us"], _signed_ms(r["delta_total_us"])),
             _signed_pct(r["delta_total_pct"]),
             "—" if r["delta_avg_us"] is None else f"{r['delta_avg_us']:+,.1f}"]
            for r in limit(ks)]
    heads, rows = only(["kernel", "count", "base", "new", "Δ total", "Δ %", "Δ avg"], rows,
                       limit(ks))
    console.print(_table(console, f"kernels by impact ({'short' if group else 'full'} names; "
                         "total ms, avg µs)", heads, rows))
    if top and len(ks) > top:
        console.print(Text(f"  … {len(ks) - top} more kernels (--top 0 shows all)"))
    one_run = {"base": d["only_in_base"], "new": d["only_in_new"]}
    if group:  # the short names in one run only, as the table above
        one_run = {side: [r["name"] for r in ks if r["in"] == side] for side in one_run}
    for side, names in one_run.items():
        if names:
            shown = ", ".join(safe_text(n, 50) for n in names[:5])
            more = f" … and {len(names) - 5} more" if len(names) > 5 else ""
            console.print(Text(f"only in {side}: {len(names)} kernel"
                               f"{'s' if len(names) != 1 else ''}: {shown}{more}"))

    if d["devices"]:
        rows = [[str(r["device"]) if r.get("new_device") in (None, r["device"]) or
                 r["in"] != "both" else f"{r['device']}→{r['new_device']}",
                 f"{_ms(r['base_comm_us'])}→{_ms(r['new_comm_us'])}",
                 f"{_ms(r['base_comp_us'])}→{_ms(r['new_comp_us'])}",
                 f"{_pct(r['base_overlap_pct'])}→{_pct(r['new_overlap_pct'])}",
                 f"{_ms(r['base_exposed_comm_us'])}→{_ms(r['new_exposed_comm_us'])}",
                 delta(r["delta_exposed_comm_us"], _signed_ms(r["delta_exposed_comm_us"]))]
                for r in d["devices"]]
        console.print(_table(console, "per GPU, ms (base → new)",
                             ["GPU", "comm", "comp", "overlap %", "exposed", "Δ exposed"],
                             rows, name=None))

    if d["annotations"]:
        rows = [[Text(safe_text(r["name"]) + (" [gpu]" if r["source"] == "gpu" else "")),
                 f"{_count(r['base_count'])}→{_count(r['new_count'])}",
                 f"{_ms(r['base_total_us'])} → {_ms(r['new_total_us'])}",
                 delta(r["delta_total_us"], _signed_ms(r["delta_total_us"])),
                 f"{_pct(r['base_overlap_pct'])} → {_pct(r['new_overlap_pct'])}",
                 delta(r["delta_exposed_comm_us"], _signed_ms(r["delta_exposed_comm_us"]))]
                for r in limit(d["annotations"])]
        heads, rows = only(["annotation", "n", "time", "Δ time", "overlap %", "Δ exposed"],
                           rows, limit(d["annotations"]))
        console.print(_table(console, "annotations by impact, ms (base → new)", heads, rows))
        if top and len(d["annotations"]) > top:
            console.print(Text(f"  … {len(d['annotations']) - top} more annotations "
                               "(--top 0 shows all)"))
    for w in d["warnings"]:
        console.print(Text("warning: " + safe_text(w, 300), style="yellow"))
