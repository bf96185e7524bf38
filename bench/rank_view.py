"""``tracetui DIR`` of many ranks in a terminal: how soon the rank view is on screen, and the
app's peak memory, opened on demand (the default past 8 ranks) against every rank loaded
(``--max-ranks`` as large as the job: one timeline of all the ranks, as before issue 21).

Runs the app in tmux at 120x40 (a private socket), reads its screen every 0.2 s: the rank
view is on screen when its title names the straggler; with every rank loaded, ``R`` is
pressed every few seconds once the timeline is up (the figures come after it). Peak RSS:
the app's VmHWM, and the peak of the app with its worker processes. Prints one JSON line.

    python bench/rank_view.py DIR --straggler 77 [--limit 600] [--reports REPORTS_DIR]
    (DIR: e.g. python bench/make_ranks.py DIR --ranks 128 --slow-rank 77 --mb 20)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

SOCKET = "tracetui-bench"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True,
                          text=True).stdout


def _tree_kb(root: int) -> tuple[int, list[int]]:
    """RSS (kB) of ``root`` and its descendants, and their pids."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True,
                         text=True).stdout
    rows = [tuple(map(int, ln.split())) for ln in out.splitlines() if ln.strip()]
    kids: dict[int, list[tuple[int, int]]] = {}
    total = 0
    for pid, ppid, rss in rows:
        kids.setdefault(ppid, []).append((pid, rss))
        if pid == root:
            total += rss
    pids, stack = [root], [root]
    while stack:
        for pid, rss in kids.get(stack.pop(), []):
            total += rss
            pids.append(pid)
            stack.append(pid)
    return total, pids


def _hwm_kb(pid: int | None) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return 0


def _is_app(pid: int) -> bool:
    try:
        parts = open(f"/proc/{pid}/cmdline").read().split("\0")
    except OSError:
        return False
    return "-m" in parts and parts.index("-m") + 1 < len(parts) and \
        parts[parts.index("-m") + 1] == "tracetui"


def run(directory: str, straggler: int, extra: list[str], press_r: bool,
        limit: float) -> dict:
    _tmux("kill-server")
    cmd = " ".join([sys.executable, "-m", "tracetui", directory, *extra])
    t0 = time.perf_counter()
    _tmux("new", "-d", "-x", "120", "-y", "40", cmd)
    time.sleep(0.2)
    pane = int(_tmux("display", "-p", "#{pane_pid}").strip() or 0)
    app, peak_tree, last_r = None, 0, 0.0
    got: dict = {}
    want = f"straggler: rank {straggler}"
    while time.perf_counter() - t0 < limit:
        time.sleep(0.2)
        tree, pids = _tree_kb(pane)
        peak_tree = max(peak_tree, tree)
        app = app or next((p for p in pids if _is_app(p)), None)
        screen = _tmux("capture-pane", "-p")
        now = time.perf_counter() - t0
        if "timeline_s" not in got and "· stream" in screen:
            got["timeline_s"] = round(now, 1)
        if want in screen and (press_r or "timelines held" in screen):
            got["rank_view_s"] = round(now, 1)
            got["rank_view_rss_mb"] = round(_hwm_kb(app) / 1024)
            break
        if press_r and "timeline_s" in got and now - last_r > 5:
            _tmux("send-keys", "R")
            last_r = now
    if "rank_view_s" not in got:
        got["rank_view_s"] = None  # not within the limit
    if not press_r and got["rank_view_s"] is not None:  # then the first timelines
        while time.perf_counter() - t0 < limit:
            time.sleep(0.2)
            peak_tree = max(peak_tree, _tree_kb(pane)[0])
            screen = _tmux("capture-pane", "-p")
            if "timelines held" in screen and "loading" not in screen \
                    and "0 of ≤" not in screen:
                got["first_timelines_s"] = round(time.perf_counter() - t0, 1)
                break
    got["app_peak_rss_mb"] = round(_hwm_kb(app) / 1024)
    got["with_workers_peak_rss_mb"] = round(peak_tree / 1024)
    _tmux("send-keys", "q")
    time.sleep(1.0)
    _tmux("kill-server")
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--straggler", type=int, required=True)
    ap.add_argument("--limit", type=float, default=600.0)
    ap.add_argument("--reports", metavar="DIR", help="also: opened from this directory of "
                    "the ranks' reports (summary FILE --json each, as a Slurm array makes)")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print(json.dumps({"bench": "rank_view", "skipped": "tmux is not installed"}))
        return 0
    n = len([f for f in os.listdir(args.dir) if f.endswith((".json", ".json.gz"))])
    on_demand = run(args.dir, args.straggler, [], False, args.limit)
    every = run(args.dir, args.straggler, ["--max-ranks", str(n)], True, args.limit)
    ratio = (every["rank_view_s"] / on_demand["rank_view_s"]
             if every["rank_view_s"] and on_demand["rank_view_s"] else None)
    extra = {"from_reports": run(args.reports, args.straggler, [], False, args.limit)} \
        if args.reports else {}
    print(json.dumps({"bench": "rank_view", "ranks": n, "terminal": "120x40",
                      "on_demand": on_demand, "every_rank": every, **extra,
                      "rank_view_speedup": round(ratio, 2) if ratio else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
