"""One policy for the signals that ask tracetui to stop: SIGINT (Ctrl+C, ``kill -INT``),
SIGTERM (``kill``, a job scheduler) and SIGHUP (the SSH link dropped, ``tmux kill-session``).

Whatever tracetui is doing when one comes (copying stdin, `summary DIR` with its pool of
processes, the app loading a trace), it:

1. kills every process it started, and theirs (a pool worker holds a trace of hundreds of MB
   and has no work once the command is gone; left alone, it would be orphaned, or waited for
   until every file is read);
2. removes the temporary copies of pipes (they are as big as the trace, in ``$TMPDIR``,
   often a tmpfs: memory);
3. gives the terminal back: a running app is asked to exit, through its own loop, so that its
   driver leaves the alternate screen, turns mouse reporting off, shows the cursor and
   restores the terminal's modes (nothing else knows all it changed); if it has not exited
   after :data:`APP_GRACE_S` (a loop that does not answer), or a second signal comes, this
   module writes the sequences that undo what Textual turns on and exits anyway;
4. exits with status 128+N, as a shell reports a process killed by signal N (130, 143, 129),
   with one line on stderr.

Installed by the command line (:func:`install` in ``tracetui.cli.main``), in the main thread
(the only one where Python runs signal handlers); the app registers with :func:`running`.
No textual or rich here: the app is only told to exit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from .trace.source import remove_spools

#: The signals handled, where the platform has them.
SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_SAID = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hung up"}
#: Seconds a running app has to exit by itself (Textual's shutdown takes ~0.1 s) before
#: the terminal is restored here and the process exits regardless.
APP_GRACE_S = 1.0
#: What Textual's Linux driver turns on, turned off (kitty keyboard, mouse reporting, focus
#: events, bracketed paste, line wrap, alternate screen, hidden cursor): the fallback only.
RESTORE = ("\x1b[<u\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?1004l"
           "\x1b[?2004l\x1b[?7h\x1b[?1049l\x1b[?25h")

_installed = False
_app: Any = None  # the running app, if any (see running())
_tty: tuple[int, Any] | None = None  # (fd, termios modes) from before the app started
_fired: int | None = None  # the first signal that came


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP by this policy from now on. A signal that was
    ignored when the process started stays ignored (``nohup`` ignores SIGHUP; a shell's
    background job, SIGINT). Only in the main thread; a second call does nothing."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _on_signal)
    _installed = True


@contextmanager
def running(app: Any) -> Iterator[None]:
    """Around ``app.run()``: a signal meanwhile asks ``app`` to exit (its driver restores the
    terminal); once it has, the process stops here with status 128+N."""
    global _app, _tty
    _tty = _tty_modes()
    _app = app
    try:
        yield
    finally:
        _app = None
        if _fired is not None:
            _finish(_fired, restore=False)


def stop_workers() -> None:
    """Kill every process this one started, and the processes they started: the pool of
    `summary DIR`, the ranges of a parallel load, multiprocessing's helper. SIGKILL: none of
    them holds anything that outlives it, and none is waited for."""
    pids = _descendants(os.getpid())
    if pids is None:  # no /proc: the processes multiprocessing knows (a pool's)
        mp = sys.modules.get("multiprocessing")
        pids = [p.pid for p in mp.active_children()] if mp is not None else []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _descendants(root: int) -> list[int] | None:
    """The processes below ``root``, from /proc (None without it). One pass over every
    process's ``stat``: a few milliseconds, even on a login node with thousands."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    children: dict[int, list[int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _on_signal(signum: int, frame: Any) -> None:
    global _fired
    first = _fired is None
    if first:
        _fired = signum
    stop_workers()  # at once: they compete with the app's exit for the cores
    app = _app
    if first and app is not None and _ask_to_exit(app, 128 + signum):
        timer = threading.Timer(APP_GRACE_S, _finish, (signum, True))
        timer.daemon = True
        timer.start()
        return  # the app exits, then running() finishes
    _finish(_fired or signum, restore=app is not None)


def _ask_to_exit(app: Any, code: int) -> bool:
    """Ask ``app`` to exit with ``code`` through its own event loop; False when none runs
    (not started yet, or already over: then the terminal is the shell's)."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()  # a handler runs in the main thread: the app's
    except RuntimeError:
        return False
    try:
        loop.call_soon_threadsafe(app.exit, None, code)  # wakes the loop up
    except RuntimeError:  # closing
        return False
    return True


def _finish(signum: int, restore: bool) -> None:
    """Kill the workers, remove the spools, restore the terminal if asked, say why on
    stderr and exit 128+N, now: no exit handler, no thread to join (a pool's would wait)."""
    stop_workers()  # again: a load may have started one since
    remove_spools()
    if restore:
        _restore_terminal()
    name = signal.Signals(signum).name
    _write(2, f"tracetui: {_SAID.get(name, 'stopped')} ({name})\n")
    os._exit(128 + signum)


def _tty_modes() -> tuple[int, Any] | None:
    """The terminal's modes, as the app's driver found them (for the fallback)."""
    try:
        import termios
    except ImportError:  # pragma: no cover - not POSIX
        return None
    try:
        return (0, termios.tcgetattr(0)) if os.isatty(0) else None
    except (termios.error, OSError, ValueError):
        return None


def _restore_terminal() -> None:
    """The fallback when the app did not exit in time: undo what Textual turns on."""
    for fd in (2, 1):
        try:
            if os.isatty(fd):
                _write(fd, RESTORE)
                break
        except OSError:
            continue
    if _tty is not None:
        try:
            import termios

            termios.tcsetattr(_tty[0], termios.TCSANOW, _tty[1])
        except Exception:  # noqa: BLE001 - a terminal that hung up
            pass


def _write(fd: int, text: str) -> None:
    """Write, clearing a progress line first on a terminal; never fails (a terminal that
    hung up answers EIO)."""
    try:
        if os.isatty(fd) and fd == 2:
            text = "\r\x1b[K" + text
        os.write(fd, text.encode("utf-8", "replace"))
    except OSError:
        pass
