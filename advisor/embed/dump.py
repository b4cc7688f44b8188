"""Writing reports of a running server to a directory: periodically, with rotation.

Each file is ``advisor-<pid>-<kind>-<UTC time>-<sequence>.json`` (``kind`` is ``light`` for
the periodic reports, ``deep`` for on-demand deep captures), so the workers of a
multi-process server never overwrite or rotate each other's files, and ``advisor merge``
can combine them. A file is written to a temporary name and renamed into place: a reader
sees a whole report or none. Only the newest ``keep`` files of each pid and kind are kept.
The periodic writer is a raw OS thread (it works the same under gevent's monkey-patching)
that the reports leave out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from advisor.probes.native import allocate_lock, clear_profile, sleep, start_new_thread

from ..profile import Report, report_json, write_atomically

LOG = logging.getLogger("advisor")
PREFIX = "advisor"


class ReportDumper:
    """Writes reports into `directory`, keeping the newest `keep` of each kind."""

    def __init__(self, directory: str | os.PathLike[str], keep: int = 10, interval_s: float = 60.0) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        if interval_s <= 0.0:
            raise ValueError("interval_s must be positive")
        self.directory = Path(directory)
        self.keep = keep
        self.interval_s = interval_s
        self._sequence = 0
        self._lock = allocate_lock()
        self._stopping = False
        self._running = allocate_lock()
        self.failed: str | None = None

    def pattern(self, kind: str, pid: int | None = None) -> str:
        return f"{PREFIX}-{pid or os.getpid()}-{kind}-*.json"

    def write(self, report: Report, kind: str = "light") -> Path:
        """Write one report (atomically) and rotate this process's files of that kind."""
        with self._lock:
            self._sequence += 1
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
            # the sequence keeps names unique and in order within one second
            path = self.directory / f"{PREFIX}-{os.getpid()}-{kind}-{stamp}-{self._sequence:06d}.json"
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomically(path, report_json(report))
            self._rotate(kind)
            return path

    def files(self, kind: str = "light") -> list[Path]:
        """This process's files of a kind, oldest first."""
        return sorted(self.directory.glob(self.pattern(kind)))

    def _rotate(self, kind: str) -> None:
        files = self.files(kind)
        for old in files[: max(0, len(files) - self.keep)]:
            try:
                old.unlink()
            except OSError:
                pass

    # -- the periodic writer ---------------------------------------------------------------
    def start(self, take: Callable[[], Report], on_thread: Callable[[], None] | None = None) -> None:
        """Every `interval_s`, write the report `take()` returns, from a raw thread (which
        calls `on_thread` first: the profiler leaves it out of its reports)."""
        self._stopping = False
        self._running.acquire()
        try:
            start_new_thread(self._loop, (take, on_thread))
        except BaseException:
            self._running.release()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._running.acquire(timeout=timeout):
            self._running.release()

    def _loop(self, take: Callable[[], Report], on_thread: Callable[[], None] | None) -> None:
        try:
            if on_thread is not None:
                on_thread()
            waited = 0.0
            while not self._stopping:
                sleep(0.05)  # short naps: stop() answers quickly
                waited += 0.05
                if waited + 1e-9 < self.interval_s or self._stopping:
                    continue
                waited = 0.0
                if "yappi" in sys.modules:  # a deep capture's yappi, started for every thread
                    clear_profile()
                try:
                    self.write(take())
                except Exception as error:  # a failed dump must not end the server: log once, go on
                    if self.failed is None:
                        self.failed = f"{type(error).__name__}: {error}"
                        LOG.warning("advisor: could not write a report to %s: %s", self.directory, self.failed)
        finally:
            self._running.release()
