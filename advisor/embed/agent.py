"""advisor inside a server process: the pieces the WSGI and ASGI middlewares share.

An ``Agent`` owns the always-on ``Profiler`` (light mode by default), the request meter
that fills its route table, the periodic report dumps, the deep-capture trigger (signal
and HTTP endpoint) and the endpoint itself. It starts lazily, at the first request in each
process, so a server that imports the app before forking its workers (gunicorn
``--preload``) still gets one profiler per worker, each writing its own files.
"""

from __future__ import annotations

import _thread
import atexit
import logging
import math
import os
import signal
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor.probes.native import allocate_lock
from advisor.probes.threads import CallerRunDelay, main_native_id

from ..api import Mode, Profiler
from ..profile import Report
from .control import DEFAULT_PREFIX, ControlEndpoint, DeepTrigger, built, failed
from .dump import ReportDumper
from .meter import Gate, Pending, RequestMeter
from .offthread import OffThread, wait_async, wait_for
from .routes import DEFAULT_MAX_ROUTES
from .windows import DEFAULT_BUDGET, TraceWindows

LOG = logging.getLogger("advisor")

# The always-on profiler's stack samples a second while a gevent server's greenlets switch
# as they should (at 100 a second while one holds the hub: see Profiler's steady_rate). A
# saturated example server lost 5-6% of its requests/s to 100 ticks a second against 1, each
# taking the GIL from it; continuous profilers sample at ~20 a second for that reason.
STEADY_SAMPLE_RATE = 20.0

# Forks of this process so far, counted in each child: a request knows it runs in a forked
# worker without asking the kernel for its pid (a system call, ~1 µs in a busy server).
_forks = [0]
_AGENTS: weakref.WeakSet[Agent] = weakref.WeakSet()  # whose gates a fork closes


def _forked() -> None:
    _forks[0] += 1
    for agent in list(_AGENTS):  # the child is one thread now: no lock to take (or left held)
        agent.fast = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
# and every this many requests the pid itself, for a fork that ran no at-fork handlers
PID_CHECK_EVERY = 256


def on_main_os_thread() -> bool:
    """Whether this is the process's main thread, the one a signal handler is set from. Not
    ``threading.main_thread()``: under gevent a request's "thread" is its greenlet, and in a
    forked worker Python 3.11 leaves the parent's native id on that object (a worker then
    never had its handler): by kernel id (see ``main_native_id``)."""
    return _thread.get_native_id() == main_native_id()


class Agent:
    """The profiler, meter, dumps and control of one server process."""

    def __init__(self, profiler: Profiler | None = None, *, mode: Mode = "light", control_token: str | None = None,
                 control_prefix: str = DEFAULT_PREFIX, dump_dir: str | os.PathLike[str] | None = None,
                 dump_interval_s: float = 60.0, dump_keep: int = 10, deep_signal: int | None = signal.SIGUSR2,
                 deep_seconds: float = 10.0, max_routes: int = DEFAULT_MAX_ROUTES, on_loop: bool = False,
                 steady_rate: float | None = STEADY_SAMPLE_RATE,
                 trace_budget: float | None = DEFAULT_BUDGET) -> None:
        self._given = profiler
        self.mode: Mode = mode
        self.max_routes = max_routes
        self.steady_rate = steady_rate
        if trace_budget is not None and not 0.0 < trace_budget <= 1.0:
            raise ValueError("trace_budget must be a share of a core, above 0 and at most 1 (or None)")
        self.trace_budget = trace_budget
        self.profiler = profiler if profiler is not None else self._new_profiler()
        # a gevent server's light mode: tracing paused under load to keep within the budget
        self.windows = self._new_windows(on_loop)
        self._run_delay = CallerRunDelay()  # the serving thread's run-queue time, for the windows
        self.dumper = ReportDumper(dump_dir, keep=dump_keep, interval_s=dump_interval_s) if dump_dir else None
        self.deep_signal = deep_signal
        self._lock = allocate_lock()
        self.trigger = DeepTrigger(self.profiler, self.dumper, deep_seconds, on_change=self.unsettle)
        self.control = ControlEndpoint(control_token, self.snapshot, self.trigger, control_prefix)
        self.meter = RequestMeter(self.profiler.routes, asyncio_first=on_loop, on_disable=self.unsettle)
        self._pid = 0
        self._forks = -1  # _forks[0] when this process started (-1: not started)
        self._requests = 0
        self._logged_failures: set[str] = set()  # probes whose failure was logged
        self._closed = False
        # The middleware's short way for a request (see Gate): set by begin() once nothing
        # is left for it to do per request, None again (unsettle) when that changes
        self.fast: Gate | None = None
        self._generation = 0
        _AGENTS.add(self)

    def _new_profiler(self) -> Profiler:
        return Profiler(self.mode, max_routes=self.max_routes, steady_rate=self.steady_rate)

    def _new_windows(self, on_loop: bool) -> TraceWindows | None:
        if self.trace_budget is None or self.profiler.mode != "light" or on_loop:
            return None
        return TraceWindows(self.trace_budget)

    # -- lifecycle -------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start everything in this process, once (again in a forked child)."""
        if self._pid == os.getpid() or self._closed:
            return
        with self._lock:
            pid = os.getpid()
            if self._pid == pid:
                return
            if self._pid:
                # a forked worker: the parent's sampler thread does not exist here
                self.profiler = self._new_profiler()
                if self.dumper is not None:  # its locks may have been held by a parent's thread
                    self.dumper = ReportDumper(self.dumper.directory, self.dumper.keep, self.dumper.interval_s)
                self.trigger = DeepTrigger(self.profiler, self.dumper, self.trigger.default_seconds,
                                           on_change=self.unsettle)
                self.control.trigger = self.trigger
                self.meter = RequestMeter(self.profiler.routes, asyncio_first=self.meter.asyncio_first,
                                          on_disable=self.unsettle)
                self.windows = self._new_windows(self.meter.asyncio_first)
            self._pid = pid
            self._forks = _forks[0]
            self.profiler.start()
            if self.dumper is not None:
                self.dumper.start(self.snapshot, self.profiler.ignore_current_thread)
            if self.deep_signal is not None and on_main_os_thread():
                self.trigger.install_signal(self.deep_signal)
            atexit.register(self._at_exit)

    def close(self) -> Report | None:
        """Stop the deep capture, the dumps and the profiler; write the last report."""
        with self._lock:
            if self._closed or self._pid != os.getpid():
                return None
            self._closed = True
        self.trigger.uninstall_signal()
        self.trigger.stop()
        if self.dumper is not None:
            self.dumper.stop()
        self._run_delay.close()
        report = self.profiler.stop() if self.profiler.running else self.profiler.last_report
        if report is not None and self.dumper is not None:
            self.dumper.write(report)
        return report

    def _at_exit(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def snapshot(self) -> Report:
        return self.profiler.snapshot()

    # -- per request ---------------------------------------------------------------------------
    def begin(self, route: str) -> Pending | None:
        """Called as a request starts, in the thread that serves it."""
        generation = self._generation
        try:
            self._requests += 1
            # the gate's requests come here one in REQUEST_FALL_THROUGH (_switch_hook.c): check the
            # pid and the probes then; the others (no gate: an ASGI server's) one in PID_CHECK_EVERY
            now_and_then = self.fast is not None or not self._requests % PID_CHECK_EVERY
            if self._forks != _forks[0] or (now_and_then and self._pid != os.getpid()):
                self.ensure_started()
            capture = self.profiler.attach_current_thread()
            if now_and_then and capture is not None:
                self._log_failures(capture)
            trigger = self.trigger
            settled = trigger.active is None and not trigger.finished
            if self.windows is not None and capture is not None:
                self._follow_windows(capture, settled)  # before a deep capture's hook wraps this one's
            if not settled:  # a deep capture runs, or ran
                for deep in trigger.profilers():
                    deep.attach_current_thread()
                trigger.forget_detached()
            self.meter.capture = capture
        except Exception as error:
            self.meter.disable(error)
            return None
        pending = self.meter.begin(route)
        # the gate opens (or follows a new capture) once this request had nothing else to do
        gate = self.meter.gate() if settled and not self.profiler.tracing_elsewhere else None
        if gate is not self.fast and generation == self._generation:
            self.fast = gate
            # no lock (unsettle may run in a signal handler, on this thread): an unsettle()
            # between the check and the set is seen here, and wins
            if generation != self._generation:
                self.fast = None
        return pending

    def _log_failures(self, capture: Any) -> None:
        """Say once, in the server's log, that a probe disabled itself: the probes run in the
        program's threads and the sampler's, where a logging call could take the program's
        locks (gevent's, once patched) or recurse into a probe, so they only keep the reason;
        one request in 256 looks."""
        for name, reason in capture.failures().items():
            if name not in self._logged_failures:
                self._logged_failures.add(name)
                LOG.warning("advisor: the %s probe disabled itself after an internal error: %s", name, reason)

    def _follow_windows(self, capture: Any, settled: bool) -> None:
        """Pause or resume the tracing of this thread's greenlets when a window says so (see
        advisor.embed.windows); a deep capture is traced throughout."""
        probe = capture.greenlet_probe
        counters = probe.trace_counters()
        windows = self.windows
        if counters is None or windows is None or (probe.paused and not probe.paused_here()):
            return  # (another thread's tracing paused: its own requests resume it)
        switches, requests = counters
        now = probe.now()
        # the thread's time waiting for a CPU, read only where a window closes or a pause
        # ends (not at every request of a deep capture, each of which restarts the window:
        # the first window after one is costed over all its seconds)
        waited = self._run_delay() if windows.due(now) else None
        if not settled:
            probe.resume_here(now)
            windows.restart(now, switches, requests, waited)
            probe.change_tracing_at(math.inf)
            return
        change = windows.change(now, switches, requests, waited)
        if change == "pause" and not probe.pause_here(now):
            windows.restart(now, switches, requests, waited)
        elif change == "resume":
            probe.resume_here(now)
        probe.change_tracing_at(windows.next_change)

    def unsettle(self) -> None:
        """Close the gate: the next request comes through begin(), which has something to do
        (a deep capture started or ended, the meter was disabled). The generation first."""
        self._generation += 1
        self.fast = None

    def end(self, pending: Pending | None, error: bool) -> None:
        self.meter.end(pending, error)

    @property
    def dump_files(self) -> list[Path]:
        return self.dumper.files() if self.dumper is not None else []

    def handles(self, path: str) -> bool:
        return self.control.wants(path)

    def answer(self, method: str, path: str, query: str, token: str | None, remote: str | None) -> Any:
        """The control endpoint's answer, for a synchronous server: a report is built on a
        thread of advisor's own while the request waits its server's way (offthread.py)."""
        answer = self.control.handle(method, path, query, token, remote)
        if answer.build is None:
            return answer
        try:
            return built(answer, wait_for(self._off_thread(answer.build)))
        except Exception as error:
            return failed(error)

    async def answer_async(self, method: str, path: str, query: str, token: str | None,
                           remote: str | None) -> Any:
        """The control endpoint's answer, for an asyncio server (its loop serves on meanwhile)."""
        answer = self.control.handle(method, path, query, token, remote)
        if answer.build is None:
            return answer
        try:
            return built(answer, await wait_async(self._off_thread(answer.build)))
        except Exception as error:
            return failed(error)

    def _off_thread(self, build: Callable[[], bytes]) -> OffThread[bytes]:
        return OffThread(build, self.profiler.ignore_current_thread, self.profiler.unignore_current_thread)
