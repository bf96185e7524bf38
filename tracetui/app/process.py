"""How an app behaves as a process of the shell. It suspends as any terminal program does
(ctrl+z; `fg` brings it back drawn whole). It fails one way: an exception nobody handled
ends the app with status 1 and one line (``tracetui: internal error: …``), never Textual's
traceback with its locals (a trace's names among them) on the user's terminal.
``TRACETUI_DEBUG=1`` keeps that traceback, for a bug report."""

from __future__ import annotations

import os
import sys
from typing import Any

from textual.app import ScreenError

from ..textutil import safe_text


class Suspends:
    """Mixed into an :class:`~textual.app.App`: ``ctrl+z`` suspends it to the shell, and
    back from a suspend (ctrl+z, or ``kill -TSTP`` from outside) and ``fg`` (SIGCONT) every
    screen is drawn again whole (the terminal showed the shell meanwhile, and Textual would
    draw only what changed)."""

    def watch_for_resume(self) -> None:
        """Call once mounted (in the event loop's thread, the main one)."""
        self.app_resume_signal.subscribe(self, self._redraw)  # type: ignore[attr-defined]
        self._wake_on_signals()

    def _wake_on_signals(self) -> None:
        """Any signal wakes the event loop. Textual handles SIGCONT (and SIGTSTP) with
        ``signal.signal``: Python runs such a handler in the main thread the next time it
        runs bytecode. The kernel may deliver the signal to another thread (the key reader,
        a worker): the main thread then sleeps on in the event loop's wait, with no timer to
        end it, and ``fg`` brought back a blank terminal until a key was pressed (the suspend
        test, one run in six on a busy machine; every time with SIGCONT sent to another
        thread). The C handler writes to a socket the loop watches: it wakes, and Python
        runs the handler. (Left alone if something set a wakeup fd already: asyncio does,
        for its own signal handlers.)"""
        import asyncio
        import signal
        import socket

        try:
            loop = asyncio.get_running_loop()
            r, w = socket.socketpair()
            r.setblocking(False)
            w.setblocking(False)
            old = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        except (RuntimeError, ValueError, OSError):  # not the main thread, or no loop
            return
        if old != -1:  # someone's already: theirs stays
            signal.set_wakeup_fd(old)
            r.close()
            w.close()
            return

        def drain() -> None:
            try:
                while r.recv(512):
                    pass
            except OSError:  # (BlockingIOError: drained)
                pass

        loop.add_reader(r.fileno(), drain)
        self._wakeup = (loop, r, w)

    def _stop_waking(self) -> None:
        """Undo :meth:`_wake_on_signals` (the app is closing)."""
        import signal

        got = getattr(self, "_wakeup", None)
        if got is None:
            return
        loop, r, w = got
        self._wakeup = None
        try:
            cur = signal.set_wakeup_fd(-1)
            if cur != w.fileno():  # someone set theirs since: it stays
                signal.set_wakeup_fd(cur)
            loop.remove_reader(r.fileno())
        except (ValueError, OSError, RuntimeError):
            pass
        r.close()
        w.close()

    def on_unmount(self) -> None:
        self._stop_waking()

    def _redraw(self, _app: Any = None) -> None:
        """The whole screen drawn again (the one in front, with those it sits over), header
        and key bar included, as after a resize; and a moment later once more, as one whole
        frame written whatever Textual thinks changed (seen on a loaded machine: only the
        lines that changed came back, the bookkeeping of what is dirty having been spent on
        the resize that the resume also sends)."""
        self._repaint_all()
        self.set_timer(0.3, self._whole_frame)  # type: ignore[attr-defined]

    def _repaint_all(self) -> None:
        for screen in self.screen_stack:  # type: ignore[attr-defined]
            screen.refresh(layout=True)
        self.refresh(layout=True)  # type: ignore[attr-defined]

    def _whole_frame(self) -> None:
        """Every cell of the screen written, as a screenshot renders it (Textual's own
        full update; private, and textual is pinned for it)."""
        app: Any = self
        try:
            screen = app.screen
            frame = screen._compositor.render_update(full=True,
                                                     screen_stack=app._background_screens)
        except ScreenError:  # (no screen: quitting) nothing to draw
            return
        app._display(screen, frame)


class OneLineFailure:
    """Mixed into an :class:`~textual.app.App` before it: :attr:`failure` is the line, and
    :func:`exit_status` the process's status once ``run()`` has returned."""

    failure: str | None = None

    def _handle_exception(self, error: Exception) -> None:
        if self.failure is None:
            self.failure = (f"internal error: {type(error).__name__}: "
                            f"{safe_text(str(error), 200)} (please report this with the trace "
                            "if you can; TRACETUI_DEBUG=1 shows where)")
        super()._handle_exception(error)  # type: ignore[misc]  # exits; Pilot re-raises it
        if not os.environ.get("TRACETUI_DEBUG"):
            self._exit_renderables.clear()  # type: ignore[attr-defined]


def exit_status(app: Any) -> int:
    """What the process exits with after ``app.run()``: 0, or the app's own return code; a
    failure says its one line on stderr first."""
    failure = getattr(app, "failure", None)
    if failure is not None:
        print(f"tracetui: {failure}", file=sys.stderr)
        return 1
    session = getattr(app, "session", None)
    error = getattr(session, "error", None)
    if error and getattr(session, "trace", None) is None:  # nothing could be shown
        print(f"tracetui: error: {safe_text(error, 300)}", file=sys.stderr)
        return 2
    code = app.return_code
    return code if isinstance(code, int) and code > 0 else 0
