"""The public API for profiling inside a running process: ``Profiler`` and ``analyze``.

``Profiler`` starts the probes of a mode in the current process (from any thread), takes a
report of what they measured so far without stopping them (``snapshot``), and stops them
(``stop``), as a context manager too. It reuses the CLI's pieces: ``Capture`` for the
probes, ``build_report`` for the report and the rules engine for the findings, plus the
per-route table that the server middlewares of ``advisor.embed`` fill. ``analyze`` runs the
rules over a report (a fresh one, or one loaded from a file).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

from advisor.probes.forks import renew_in_child
from advisor.probes.native import allocate_lock, get_ident

from .capture import DEFAULT_SAMPLE_RATE, Capture, RawCapture
from .config import Settings, load_settings
from .embed.routes import DEFAULT_MAX_ROUTES, RouteTable, with_routes
from .engine import analyze as run_rules
from .engine import select_rules
from .profile import Report
from .report import RunFacts, build_report

Mode = Literal["light", "standard", "deep"]
MODES: tuple[Mode, ...] = ("light", "standard", "deep")


def analyze(profile: Report, settings: Settings | None = None, select: Sequence[str] = (),
            ignore: Sequence[str] = ()) -> Report:
    """The report with the rules' findings (any findings it had are replaced): `select` and
    `ignore` name rules by slug, code or code prefix, as on the command line."""
    return run_rules(profile, settings, select, ignore)


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    try:
        return bool(monkey is not None and monkey.is_module_patched("threading"))
    except Exception:
        return False


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Profiler:
    """advisor's probes in the current process.

    ``mode`` is ``light`` (made to be left on), ``standard`` (light plus call counting of the
    hottest functions) or ``deep`` (yappi; its profile is read at ``stop`` only).
    ``sample_rate`` is the stack samples a second. With a ``steady_rate`` below it, a gevent
    program is sampled that often, and at ``sample_rate`` only while a greenlet holds its hub
    (a blocking call, a long CPU step): the sampler watches the C switch hook's clock for
    that without taking the GIL. Elsewhere (no greenlets, no C hook) ``sample_rate`` holds.
    """

    def __init__(self, mode: Mode = "light", *, sample_rate: float = DEFAULT_SAMPLE_RATE,
                 gevent: bool | None = None, select: Sequence[str] = (), ignore: Sequence[str] = (),
                 settings: Settings | None = None, max_routes: int = DEFAULT_MAX_ROUTES,
                 calibrate: bool | None = None, steady_rate: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not 1.0 <= sample_rate <= 1000.0:
            raise ValueError("sample_rate must be between 1 and 1000 samples a second")
        if steady_rate is not None and not 1.0 <= steady_rate <= sample_rate:
            raise ValueError("steady_rate must be between 1 and sample_rate samples a second")
        self.mode: Mode = mode
        self.sample_rate = sample_rate
        self.steady_rate = steady_rate
        self.gevent = gevent
        self.settings = settings if settings is not None else load_settings()
        self.select, self.ignore = tuple(select), tuple(ignore)
        # measure what one hooked task step costs before starting (None: where it can run)
        self.calibrate = calibrate
        select_rules(self.settings, self.select, self.ignore)  # a misspelt rule fails here, not later
        self.routes = RouteTable(max_routes)
        self._capture: Capture | None = None
        self._started_at = dt.datetime.now(dt.timezone.utc)
        self._lock = allocate_lock()
        # threads where greenlet tracing was installed, and captures to take out of them
        self._attached: set[int] = set()
        self._detach: list[tuple[Capture, set[int]]] = []
        self.last_report: Report | None = None
        # profilers started after this one whose hooks wrap its own (a deep capture beside
        # the always-on probes): they stop first, so every hook is put back in order
        self.riders: list[Profiler] = []
        renew_in_child(self, "_forked")

    def _forked(self) -> None:
        """In a child the program forked: the probes are the parent's (their sampling thread
        did not survive the fork, their records go to no report), so their hooks are put back
        (the riders' first, whose hooks wrap these) and this profiler is stopped. The child
        runs unprofiled, at full speed, until it starts a profiler of its own (a server's
        agent does, at the child's first request)."""
        self._lock = allocate_lock()  # a parent's thread may have held it at the fork
        for rider in reversed(self.riders):
            rider._forked()
        self.riders.clear()
        capture, self._capture = self._capture, None
        self._attached, self._detach = set(), []
        if capture is not None:
            capture.abandon_after_fork()

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._capture is not None

    @property
    def capture(self) -> Capture | None:
        """The running probes (None when stopped)."""
        return self._capture

    def start(self) -> None:
        """Start the probes (from any thread; a second call does nothing)."""
        with self._lock:
            if self._capture is not None:
                return
            greenlets = self.gevent if self.gevent is not None else "gevent" in sys.modules
            capture = Capture(mode=self.mode, sample_rate=self.sample_rate, greenlets=greenlets,
                              calibrate=self.calibrate if self.calibrate is not None
                              else not (_gevent_patched() or _loop_running()), steady_rate=self.steady_rate)
            capture.start()
            self._started_at = dt.datetime.now(dt.timezone.utc)
            self._capture = capture
            self._attached = {get_ident()}

    def stop(self) -> Report:
        """Stop the probes and return the report of everything they measured."""
        for rider in list(self.riders):
            if rider.running:
                try:
                    rider.stop()
                except Exception:
                    pass
        self.riders.clear()
        with self._lock:
            capture = self._capture
            if capture is None:
                if self.last_report is None:
                    raise RuntimeError("the profiler was never started")
                return self.last_report
            self._capture = None
            raw = capture.stop()
            # greenlet tracing is per thread: the threads other than this one drop it at their
            # next request (see attach_current_thread)
            self._detach.append((capture, self._attached - {get_ident()}))
            self._attached = set()
            report = self._report(raw, partial=False)
            self.last_report = report
            return report

    def snapshot(self) -> Report:
        """The report of what was measured so far; the probes keep running."""
        with self._lock:
            capture = self._capture
            if capture is None:
                raise RuntimeError("the profiler is not running")
            raw = capture.snapshot()
            return self._report(raw, partial=True)

    def __enter__(self) -> Profiler:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # -- threads ---------------------------------------------------------------------
    def attach_current_thread(self) -> Capture | None:
        """Called by the middlewares on each request: greenlet switches are traced per thread,
        so a profiler started (or stopped) from another thread than the server's completes
        its start (or stop) in the server's thread here. Cheap when there is nothing to do.
        Returns the running capture (None when stopped), which the request meter reads."""
        ident = get_ident()
        if self._detach:
            self._detach_here(ident)
        capture = self._capture
        if capture is not None and ident not in self._attached:
            capture.attach_current_thread()
            self._attached.add(ident)
        return capture

    def _detach_here(self, ident: int) -> None:
        for capture, idents in list(self._detach):
            if ident in idents:
                capture.greenlet_probe.uninstall_here()
                idents.discard(ident)
            if not idents:
                try:
                    self._detach.remove((capture, idents))
                except ValueError:
                    pass

    @property
    def tracing_elsewhere(self) -> bool:
        """Stopped, but still traced in a thread that has not served a request since."""
        return bool(self._detach)

    def ignore_current_thread(self) -> None:
        """Leave the calling thread out of the report (advisor's own dump and control threads)."""
        capture = self._capture
        if capture is not None:
            capture.threads.ignored.add(get_ident())

    def unignore_current_thread(self) -> None:
        """Profile the calling thread again: a raw thread of advisor's that is about to end,
        whose ident a thread of the program's may take next."""
        capture = self._capture
        if capture is not None:
            capture.threads.ignored.discard(get_ident())

    # -- the report --------------------------------------------------------------------
    def _report(self, raw: RawCapture, partial: bool) -> Report:
        report = build_report(raw, RunFacts(argv=list(sys.argv), mode=self.mode, started_at=self._started_at,
                                            exit_code=0, partial=partial))
        report = run_rules(report, self.settings, self.select, self.ignore)
        return with_routes(report, self.routes)
