"""The live status line on a terminal: elapsed time, units alive and samples while the target runs.

Owned by the CLI, not the probes. A raw OS thread (a ``threading.Thread`` would be seen by
the thread registry, and by a program that monkey-patches threading) redraws one line on
stderr about twice a second: carriage return, the text, erase to the end of the line. It
writes to the stderr file descriptor only, never stdout, and only when stderr is a
terminal that can take it (not ``TERM=dumb``, not under ``CI``). Stopping it erases the
line, so advisor's report (or the signal's end) starts on a clean line. The target's own
output to the same terminal may land on the status line; advisor cannot see it, and the
next redraw starts over on whatever line the cursor is then.
"""

from __future__ import annotations

import os
import sys
from _thread import LockType
from collections.abc import Callable, Mapping
from typing import TextIO

from .capture import CaptureStatus
from .probes.native import allocate_lock, clear_profile, get_ident, start_new_thread

INTERVAL_S = 0.5
ERASE_LINE = "\r\x1b[K"
MIN_WIDTH = 20


def status_wanted(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether a status line fits here: a terminal, not a dumb one, not a CI log."""
    if environ.get("CI") or environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # a replaced or closed stream
        return False


def elapsed_text(seconds: float) -> str:
    if seconds < 60.0:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def status_text(status: CaptureStatus) -> str:
    """One plain ASCII line (the terminal's encoding is unknown)."""
    units = "unit" if status.units_alive == 1 else "units"
    return (f"advisor: {elapsed_text(status.elapsed_s)} elapsed, {status.units_alive} {units} alive, "
            f"{status.samples} samples")


class LiveStatus:
    """The redrawing thread: ``start()``, then ``stop()`` (idempotent) before anything else
    of advisor writes to stderr."""

    def __init__(self, read: Callable[[], CaptureStatus], fd: int, interval: float = INTERVAL_S,
                 on_thread: Callable[[int], None] | None = None) -> None:
        self._read = read
        self._fd = fd
        self._interval = interval
        self._on_thread = on_thread
        # native locks, not threading.Event: gevent's patching must not turn them into greenlet primitives
        self._stopping = allocate_lock()
        self._finished = allocate_lock()
        self._running = False
        self._drawn = False
        self._terminal = _identity(fd)

    def start(self) -> None:
        started = allocate_lock()
        started.acquire()
        self._stopping.acquire()
        self._finished.acquire()
        start_new_thread(self._run, (started,))
        self._running = True
        # the thread names itself to the capture before the probes start sampling
        started.acquire(timeout=5.0)

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._stopping.release()
        if self._finished.acquire(timeout=2.0) and self._drawn and _identity(self._fd) == self._terminal:
            try:
                self._write(ERASE_LINE)
            except OSError:
                pass

    def _run(self, started: LockType) -> None:
        try:
            if self._on_thread is not None:
                self._on_thread(get_ident())
        finally:
            started.release()
        try:
            while not self._stopping.acquire(timeout=self._interval):
                if "yappi" in sys.modules:  # deep mode's yappi, started for every thread
                    clear_profile()
                self._draw()
        except Exception:  # a display that fails (stderr closed, replaced) just stops
            pass
        finally:
            self._finished.release()

    def _draw(self) -> None:
        if _identity(self._fd) != self._terminal:
            # the program put something else on the descriptor (os.dup2 of its log file on
            # 2): the line went into the file
            raise OSError("the status line's terminal is gone")
        text = status_text(self._read())
        try:
            width = os.get_terminal_size(self._fd).columns
        except OSError:
            width = 0
        width = width or 80  # a terminal that does not know its size says 0
        # a line longer than the terminal wraps, and the carriage return would then redraw
        # only its last part: cut it to fit
        text = text[: max(MIN_WIDTH, width - 1)]
        self._write(f"\r{text}\x1b[K")
        self._drawn = True

    def _write(self, text: str) -> None:
        data = text.encode("ascii", "replace")
        while data:
            written = os.write(self._fd, data)
            data = data[written:]


def _identity(fd: int) -> tuple[int, int, int] | None:
    """What a descriptor is open on (device, inode, the terminal's device), or None."""
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_rdev


def live_status(read: Callable[[], CaptureStatus], stream: TextIO, environ: Mapping[str, str],
                on_thread: Callable[[int], None] | None = None) -> LiveStatus | None:
    """A started status line on `stream`'s terminal, or None where there should be none."""
    if not status_wanted(stream, environ):
        return None
    try:
        status = LiveStatus(read, stream.fileno(), on_thread=on_thread)
        status.start()
    except Exception:  # no status is better than no run
        return None
    return status
