"""Run tracetui in a pseudo-terminal and record every byte it writes (tests of what reaches a
real terminal: injection, colours, resizes)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import weakref
from typing import Sequence

ESC, ENTER, TAB = b"\x1b", b"\r", b"\t"


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
ANSI = re.compile(rb"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b[PX^_\]].*?(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class PtyApp:
    """``tracetui ARGS`` in a pty of ``cols`` x ``rows``; :attr:`out` is everything written."""

    def __init__(self, args: Sequence[str], cols: int = 120, rows: int = 40,
                 env: dict[str, str] | None = None, cwd: str | None = None,
                 shell: str | None = None) -> None:
        """``shell``: a shell command line to run instead (``{tracetui}`` in it is replaced),
        with the pty as its controlling terminal (``/dev/tty`` works in it)."""
        self.master, slave = os.openpty()
        self.size(cols, rows, signal_app=False, fd=slave)
        # (COLUMNS and LINES too: Textual takes them over the terminal's own size, and
        # pytest-xdist's workers set them to 80x24)
        base = {k: v for k, v in os.environ.items()
                if k not in ("NO_COLOR", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "FORCE_COLOR",
                             "COLUMNS", "LINES")}
        full_env = {**base, "TERM": "xterm-256color", **(env or {})}
        argv = [sys.executable, "-m", "tracetui", *args]
        if shell is not None:
            cmd = shell.replace("{tracetui}", f"'{sys.executable}' -m tracetui")
            argv = ["/bin/sh", "-c", cmd]

        def controlling_tty() -> None:  # after setsid: the pty becomes this session's terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     env=full_env, cwd=cwd, start_new_session=True,
                                     preexec_fn=controlling_tty if shell is not None else None)
        os.close(slave)
        self.out = bytearray()
        # a test that fails before finish() must not leave the app running (with its pty
        # gone and no terminal to hang up on, it would spin): killed when this is dropped
        weakref.finalize(self, _kill, self.proc)

    def size(self, cols: int, rows: int, signal_app: bool = True, fd: int | None = None) -> None:
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))
        if signal_app:  # not the pty's session leader: tell it as the terminal would
            os.kill(self.proc.pid, signal.SIGWINCH)

    def pump(self, seconds: float) -> None:
        """Read what the app writes for ``seconds``."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if r:
                try:
                    data = os.read(self.master, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                self.out += data

    def text(self) -> str:
        """What was written, without escape sequences (rough, but enough to find words)."""
        return ANSI.sub(b"", bytes(self.out)).decode("utf-8", "replace")

    def wait_for(self, needle: str, timeout: float = 60.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.1)
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                self.pump(0.2)
                return needle in self.text()
        return False

    def settle(self, quiet: float = 0.25, limit: float = 8.0) -> None:
        """Read until the app has written nothing for ``quiet`` seconds (it has handled what
        it was sent and drawn the result), or ``limit`` seconds passed."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            before = len(self.out)
            self.pump(quiet)
            if len(self.out) == before:
                return

    def keys(self, *keys: str | bytes, pause: float = 0.05) -> None:
        """Type ``keys``; after an Escape, wait until it was handled (an Escape followed at
        once by a key reads as alt+key)."""
        for k in keys:
            os.write(self.master, k.encode() if isinstance(k, str) else k)
            if k == ESC:
                self.settle()
            else:
                self.pump(pause)
        self.settle()

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for the app to exit (after "q"); kill it if it does not."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self.pump(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self.pump(0.2)
        os.close(self.master)
        return rc


