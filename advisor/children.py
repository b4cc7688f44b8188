"""Profiling the processes the target forks (``advisor run --children``).

A forked child inherits the parent's probes half alive: their hooks are in place, the
sampling thread is gone and the records are the parent's. By default the child is left
alone and writes no report. With ``--children``, right after each fork the child puts the
inherited hooks back and starts a capture of its own, with the parent's options; when the
child ends — through the runner (``os.fork`` in the program), from ``multiprocessing``'s
process bootstrap (which then leaves with ``os._exit``), or stopped by SIGTERM — it writes
its report next to the parent's ``--json PATH`` as ``STEM.PID.json``, for ``advisor
merge``. Processes started fresh (multiprocessing's spawn and forkserver, subprocesses) run
without advisor. Whatever fails here leaves the child running, unprofiled.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import Any

from .capture import Capture, RawCapture
from .profile import Report, report_json, write_atomically

# how a child's report is built from its capture: (raw capture, exit code, partial, start)
MakeReport = Callable[[RawCapture, int, bool, dt.datetime], Report]


def child_report_path(json_path: str, pid: int) -> str:
    """``out/report.json`` -> ``out/report.PID.json``."""
    stem, suffix = os.path.splitext(json_path)
    return f"{stem}.{pid}{suffix or '.json'}"


class ForkedChildren:
    """Gives every child forked from now on a capture and, at its end, a report file."""

    def __init__(self, inherited: Capture, new_capture: Callable[[], Capture], make_report: MakeReport,
                 json_path: str) -> None:
        self._inherited = inherited
        self._new_capture = new_capture
        self._make_report = make_report
        self.json_path = json_path
        self.capture: Capture | None = None  # this process' own, in a child
        self._started_at = dt.datetime.now(dt.timezone.utc)

    def install(self) -> None:
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        try:
            # a grandchild inherits its parent's capture, not the first one
            inherited = self.capture or self._inherited
            inherited.abandon_after_fork()
            self.capture = None
            capture = self._new_capture()
            capture.per_step_cost = inherited.per_step_cost  # measured once, in the first process
            capture.start()
            self.capture = capture
            self._started_at = dt.datetime.now(dt.timezone.utc)
            self._wrap_process_bootstrap()
        except Exception:
            self.capture = None

    def _wrap_process_bootstrap(self) -> None:
        """A multiprocessing child runs ``BaseProcess._bootstrap`` and then calls ``os._exit``:
        its report is written between the two."""
        process = sys.modules.get("multiprocessing.process")
        base = getattr(process, "BaseProcess", None)
        original = getattr(base, "_bootstrap", None)
        if base is None or original is None or getattr(original, "_advisor_children", False):
            return
        children = self

        def _bootstrap(owner: Any, *args: Any, **kwargs: Any) -> Any:
            code = original(owner, *args, **kwargs)
            children.finish(code if isinstance(code, int) else 1, False)
            return code

        _bootstrap._advisor_children = True  # type: ignore[attr-defined]
        base._bootstrap = _bootstrap

    def finish(self, exit_code: int, partial: bool) -> None:
        """The child ends: stop its capture and write its report (once)."""
        capture, self.capture = self.capture, None
        if capture is None:
            return
        try:
            raw = capture.stop()
            report = self._make_report(raw, exit_code, partial, self._started_at)
            write_atomically(child_report_path(self.json_path, os.getpid()), report_json(report))
        except Exception:  # a child's report is extra: it never changes how the child ends
            pass
