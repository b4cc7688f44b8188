"""Starting and stopping the probes around a run, and handing over what they measured.

``Capture`` wires the probes of a mode together (thread registry, sampler, asyncio
probe), measures what one hooked task step costs on this machine before the run, and
on stop returns a ``RawCapture``: plain records and counters, still without pydantic,
for ``advisor.attribution`` to turn into a report. A probe that fails to start is
recorded as inactive with the reason; the run goes on without it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter, process_time  # bound now: a program may replace time's functions
from typing import Any

from advisor.probes.asyncio_probe import AsyncioProbe
from advisor.probes.deep import DeepProbe, DeepProfile
from advisor.probes.greenlet_probe import GreenletProbe
from advisor.probes.hot_calls import CallStats, HotCallProbe
from advisor.probes.records import UnitRecord
from advisor.probes.sampler import Sampler
from advisor.probes.threads import ThreadRegistry
from advisor.probes.timeline import StepTimeline

DEFAULT_SAMPLE_RATE = 100.0


@dataclass
class RawCapture:
    """Everything the probes measured in one run."""

    started: float
    ended: float
    cpu_s: float
    units: list[UnitRecord]
    probes: list[tuple[str, bool, str]]
    sample_interval: float
    sampler_ticks: int
    sampler_cpu_s: float
    hooked_steps: int
    per_step_cost_s: float
    call_stats: list[CallStats] = field(default_factory=list)
    call_cost_s: float = 0.0
    call_wrapper_s: float = 0.0
    deep: DeepProfile | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    timelines: list[StepTimeline] = field(default_factory=list)
    trace_paused_s: float = 0.0  # greenlet tracing paused by the agent's trace windows


@dataclass(frozen=True)
class CaptureStatus:
    """What the probes see at one moment, for a live display."""

    elapsed_s: float
    units_alive: int
    samples: int


def measure_step_cost(rounds: int = 3000) -> float:
    """Seconds one hooked task step adds, measured on a private loop with a private probe."""
    async def spin() -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    def timed() -> float:
        loop = asyncio.new_event_loop()
        try:
            begin = perf_counter()
            loop.run_until_complete(spin())
            return perf_counter() - begin
        finally:
            loop.close()

    bare = min(timed() for _ in range(3))
    probe = AsyncioProbe(Sampler(ThreadRegistry()))
    probe.start()
    try:
        hooked = min(timed() for _ in range(3))
    finally:
        probe.stop()
    return max(0.0, (hooked - bare) / rounds)


class Capture:
    """The probes of one run: start them, stop them, collect a RawCapture."""

    def __init__(self, mode: str = "standard", sample_rate: float = DEFAULT_SAMPLE_RATE, greenlets: bool = False,
                 exports: dict[str, str] | None = None, calibrate: bool = True,
                 steady_rate: float | None = None) -> None:
        self.mode = mode
        # an embedded capture skips the step-cost calibration where it cannot run a private
        # event loop (inside a running loop, or in a gevent-patched process)
        self.calibrate = calibrate
        self.threads = ThreadRegistry()
        # a steady rate (an always-on server's): samples that often, and at sample_rate while a
        # greenlet holds its hub (watched without the GIL, where the C switch hook is built)
        self.sampler = Sampler(self.threads, interval=1.0 / sample_rate,
                               steady_interval=1.0 / steady_rate if steady_rate else None)
        self.asyncio_probe = AsyncioProbe(self.sampler)
        self.greenlet_probe = GreenletProbe(self.sampler, self.threads)
        self.sampler.hold_clock = self.greenlet_probe.hold_clock
        self.sampler.hold_thread = self.greenlet_probe.hold_thread
        # standard mode adds bounded call-count windows on the hottest functions (deep mode
        # has yappi's exact counts, and a wrapper between caller and callee would blur them)
        self.hot_calls = HotCallProbe(self.sampler) if mode == "standard" else None
        # standard and deep mode record every task step for the what-if replay; light mode,
        # made to be left on in servers, keeps only the per-task sums. Greenlet steps are
        # recorded in standard mode only: the Python switch hook records them, and under
        # yappi (deep mode) the C hook keeps deep mode's cost near raw yappi's (1.15x vs 1.25x)
        self.timelines: list[StepTimeline] = []
        if mode != "light":
            self.timelines.append(StepTimeline(kind="asyncio"))
            self.asyncio_probe.record_timeline(self.timelines[-1])
            if mode == "standard":
                self.timelines.append(StepTimeline(kind="greenlet"))
                self.greenlet_probe.record_timeline(self.timelines[-1])
        # deep mode adds yappi's deterministic profile (greenlet contexts for gevent programs)
        self.deep: DeepProbe | None = None
        self.exports = exports or {}
        if mode == "deep":
            self.deep = DeepProbe(greenlets=greenlets, live_tasks=lambda: len(self.asyncio_probe.ledger.live),
                                  ignored=self.threads.ignored)
            self.asyncio_probe.tagging = True
            self.asyncio_probe.on_first_tag = self.deep.tag_tasks
            self.sampler.after_tick.append(self.deep.watch)
        self.per_step_cost = 0.0
        self.spans: Any = None  # the SpanRecorder of advisor.span / advisor.trace while running
        self._started = 0.0
        self._cpu0 = 0.0
        self._status: list[tuple[str, bool, str]] = []

    def start(self) -> None:
        # calibrations first, while nothing else of advisor runs
        try:
            self.per_step_cost = measure_step_cost() if self.calibrate else 0.0
        except Exception:
            self.per_step_cost = 0.0
        for probe in (self.hot_calls, self.deep):
            if probe is not None:
                try:
                    probe.prepare()
                except Exception as error:
                    self._status.append((f"{probe.name} calibration", False, str(error)))
        # the thread registry starts last: other probes' calibrations are not the program's
        threads, *others = self._probes()
        for probe in (*others, threads):
            try:
                probe.start()
                self._status.append((probe.name, True, ""))
            except Exception as error:  # a probe that cannot start leaves the others working
                self._status.append((probe.name, False, f"failed to start: {error}"))
        self._cpu0 = process_time()
        self._started = perf_counter()
        self._start_spans()

    def _start_spans(self) -> None:
        """Send advisor.span / advisor.trace / advisor.tag to this capture."""
        from .span_stats import SpanRecorder  # the user API (advisor.spans) stays light
        from .spans import activate

        try:
            self.spans = SpanRecorder(self)
            activate(self.spans)
            self._status.append(("spans", True, ""))
        except Exception as error:
            self._status.append(("spans", False, f"failed to start: {error}"))

    def _stop_spans(self) -> None:
        from .spans import deactivate

        if self.spans is not None:
            deactivate(self.spans)

    def stop(self) -> RawCapture:
        ended = perf_counter()
        cpu = process_time() - self._cpu0
        self._stop_spans()
        for probe in reversed(self._probes()):
            try:
                probe.stop()
            except Exception:
                pass
        deep = None
        if self.deep is not None:
            for kind, path in self.exports.items():
                try:
                    self.deep.save(path, kind)
                except Exception as error:
                    self._status.append((f"export {kind}", False, f"could not write {path}: {error}"))
        units = self.asyncio_probe.drain() + self.greenlet_probe.drain() + self.threads.drain()
        if self.deep is not None:
            tags = [tag for record in units if record.kind == "asyncio-task" for tag in record.contexts or ()]
            # each greenlet's contexts, with the thread it ran on
            contexts = {ctx: record.ident for record in units if record.kind == "greenlet"
                        for ctx in record.contexts or ()}
            deep = self.deep.drain(tags, contexts)
            self.deep.clear()
        return self._raw(ended, cpu, units, self.sampler.cpu_s,
                         self.hot_calls.drain() if self.hot_calls else [], deep)

    def status(self) -> CaptureStatus:
        """Elapsed time, units alive and samples taken so far; read from any thread.

        Only an int and the lengths of dicts are read, each one operation under the GIL:
        no lock, nothing a probe waits for, cheap enough to call a few times a second."""
        elapsed = perf_counter() - self._started if self._started else 0.0
        alive = len(self.asyncio_probe.ledger.live) + len(self.greenlet_probe.ledger.live) + len(self.threads.alive)
        return CaptureStatus(elapsed, alive, self.sampler.ticks)

    def ignore_thread(self, ident: int) -> None:
        """A thread of advisor's own (the live status), never sampled nor reported as a unit."""
        self.threads.ignored.add(ident)

    def snapshot(self) -> RawCapture:
        """What was measured so far, as ``stop`` would hand it over, with every probe left
        running: the records are copies (a live unit is closed at now in its copy). Light
        and standard modes only: yappi's deep profile is read once, at stop."""
        ended = perf_counter()
        cpu = process_time() - self._cpu0
        units = self.asyncio_probe.snapshot() + self.greenlet_probe.snapshot() + self.threads.snapshot()
        # the sampler's CPU is only known once it stops: the time its ticks held the GIL
        # stands in. list() copies in C: the sampler thread may open a new call window meanwhile
        calls = [stats for stats in list(self.hot_calls.stats.values()) if stats.calls] if self.hot_calls else []
        return self._raw(ended, cpu, units, self.sampler.held_s, calls, None)

    def _raw(self, ended: float, cpu: float, units: list[UnitRecord], sampler_cpu_s: float,
             call_stats: list[CallStats], deep: DeepProfile | None) -> RawCapture:
        return RawCapture(
            started=self._started,
            ended=ended,
            cpu_s=cpu,
            units=units,
            probes=self._statuses(),
            sample_interval=self.sampler.interval,
            sampler_ticks=self.sampler.ticks + self.sampler.early_ticks,
            sampler_cpu_s=sampler_cpu_s,
            hooked_steps=self.asyncio_probe.steps + self.greenlet_probe.switches,
            per_step_cost_s=self.per_step_cost,
            call_stats=call_stats,
            call_cost_s=self.hot_calls.call_cost_s if self.hot_calls else 0.0,
            call_wrapper_s=self.hot_calls.wrapper_cost_s if self.hot_calls else 0.0,
            deep=deep,
            extra={"spans": self.spans} if self.spans is not None else {},
            timelines=self.timelines,
            trace_paused_s=self.greenlet_probe.paused_s(ended),
        )

    def attach_current_thread(self) -> None:
        """Trace greenlets in the calling thread too (a capture started from another thread
        than the server's; greenlet tracing is per thread)."""
        if self._started:
            self.greenlet_probe.install_here()

    def failures(self) -> dict[str, str]:
        """The probes that disabled themselves so far, and why."""
        failures = {"asyncio": self.asyncio_probe.failed, "sampler": self.sampler.failed,
                    "greenlet": self.greenlet_probe.failed, "deep": self.deep.failed if self.deep else None,
                    "hot-calls": self.hot_calls.failed if self.hot_calls else None,
                    "threads": self.threads.failed,
                    "spans": self.spans.failed if self.spans is not None else None}
        return {name: reason for name, reason in failures.items() if reason}

    def _statuses(self) -> list[tuple[str, bool, str]]:
        """Each probe's state, with the reason of any that disabled itself meanwhile."""
        status = []
        failures = self.failures()
        for name, active, note in self._status:
            failed = failures.get(name)
            if failed:
                status.append((name, False, f"disabled itself: {failed}"))
            else:
                status.append((name, active, note))
        return status

    def abandon_after_fork(self) -> None:
        """In a forked child: put back every hook the inherited probes installed, without a
        report (the records are the parent's) and without waiting for the sampling thread
        (it did not survive the fork).

        Each probe's locks are renewed first: a lock a parent's thread held at the fork (the
        sampler's, held by its thread during a tick) is held for ever in the child, and a
        probe's stop takes it. The probes renew them from their own at-fork hooks too, but
        those run in the order they were registered, which may be after this call (an
        ``advisor.Profiler`` registers its hook before its probes start)."""
        try:
            self._stop_spans()
        except Exception:
            pass
        for probe in self._probes():
            renew = getattr(probe, "_forked", None)
            if renew is not None:
                try:
                    renew()
                except Exception:
                    pass
        for probe in reversed(self._probes()):
            try:
                probe.stop()
            except Exception:
                pass
        if self.deep is not None:
            try:
                self.deep.clear()  # the parent's yappi stats: a new deep capture cannot start over them
            except Exception:
                pass

    def _probes(self) -> list[Any]:
        probes: list[Any] = [self.threads, self.sampler, self.asyncio_probe, self.greenlet_probe]
        if self.hot_calls is not None:
            probes.append(self.hot_calls)
        if self.deep is not None:
            probes.append(self.deep)  # last: the other probes' start-up is not profiled
        return probes
