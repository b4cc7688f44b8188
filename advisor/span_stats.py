"""Measuring user spans while the probes run, and turning them into the report's ``spans``.

A span is measured the way the server middlewares measure a request (``advisor.embed.meter``):
at its start and end the recorder reads the running unit's accumulated running, io, waiting
and scheduling seconds from its probe (an asyncio task's or greenlet's current step counted up
to now), and points the unit's ``tag_samples`` at a table of the span's own, so the sampler
charges the span's samples to it as well; the differences are the span's. A span in a plain
thread reads the thread's CPU clock instead (exact compute) and splits the rest by its
off-CPU samples, as a thread's own figures are. Each span name keeps a few sums, a fixed-size
histogram and a stack table (aggregates, never a list of calls), capped in names and label
values. Listeners (the OpenTelemetry export) get each finished span and request with its own
breakdown. Any error turns the recorder off; the program goes on.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from advisor.probes.greenlet_probe import greenlet_name
from advisor.probes.native import allocate_lock, get_ident
from advisor.probes.records import (
    MAX_TAG_KEYS,
    MAX_TAG_VALUES,
    OTHER_TAG_VALUE,
    Stack,
    UnitRecord,
    add_weights,
)

from . import spans as api
from .attribution import OffCpu, blocking_sites, hot_spots, off_cpu, task_entry, thread_entry
from .embed.routes import LogHistogram, _summed
from .frames import display_path
from .profile import Breakdown, Report, SpanStat

LOG = logging.getLogger("advisor")

# told about every span and request of every capture (advisor.export.otel adds one)
LISTENERS: list[SpanListener] = []

MAX_SPAN_NAMES = 200
OTHER_SPAN = "other"
MAX_LABEL_CHARS = 64


@dataclass
class FinishedSpan:
    """One span or request as it ended, with its own breakdown (for listeners)."""

    name: str
    kind: str  # "span" or "request"
    start_ns: int  # wall-clock time (time.time_ns) at start and end
    end_ns: int
    wall_s: float
    breakdown: Breakdown | None  # None when the span's unit could not be followed
    blocking_s: float
    unit: str
    unit_kind: str
    labels: dict[str, str] = field(default_factory=dict)
    error: bool = False


class SpanListener(Protocol):
    """Told about each span or request as it starts and ends (in the unit that runs it)."""

    def started(self, opened: OpenSpan) -> Any: ...

    def ended(self, finished: FinishedSpan, handle: Any) -> None: ...


def _label(value: object) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (int, float, bool)) else str(value)
    return text[:MAX_LABEL_CHARS]


class SpanAggregate:
    """The sums of one span name's calls (see the module docstring)."""

    __slots__ = ("count", "errors", "file", "function", "histogram", "labels", "line", "loop_io",
                 "loop_measured", "loop_running", "loop_samples", "loop_scheduling", "loop_waiting", "loop_wall",
                 "measured", "name", "thread_cpu", "thread_measured", "thread_samples", "thread_wall")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.errors = 0
        self.measured = 0
        self.loop_measured = 0
        self.loop_wall = self.loop_running = self.loop_io = self.loop_waiting = self.loop_scheduling = 0.0
        self.thread_measured = 0
        self.thread_wall = self.thread_cpu = 0.0
        self.histogram = LogHistogram()
        self.loop_samples: dict[Stack, list[float]] = {}
        self.thread_samples: dict[Stack, list[float]] = {}
        self.labels: dict[str, dict[str, int]] = {}
        self.file = ""
        self.line = 0
        self.function = ""

    def add_labels(self, labels: dict[str, str]) -> None:
        for key, value in labels.items():
            if key not in self.labels and len(self.labels) >= MAX_TAG_KEYS:
                continue
            counts = self.labels.setdefault(key, {})
            if value not in counts and len(counts) >= MAX_TAG_VALUES:
                value = OTHER_TAG_VALUE
            counts[value] = counts.get(value, 0) + 1


def _merge(into: dict[Stack, list[float]], samples: dict[Stack, list[float]]) -> None:
    for stack, weights in samples.items():
        add_weights(into, stack, *weights)


class OpenSpan(api.Span):
    """One span being measured: what was read at its start."""

    __slots__ = ("aggregate", "cpu0", "handles", "io0", "kind", "labels", "name", "on_loop", "parent",
                 "previous", "record", "recorder", "running0", "samples", "scheduling0", "start_ns", "t0",
                 "token", "waiting0")

    def __init__(self, recorder: SpanRecorder, name: str, labels: dict[str, str], kind: str = "span") -> None:
        self.recorder = recorder
        self.name = name
        self.labels = labels
        self.kind = kind
        self.aggregate: SpanAggregate | None = None
        self.record: UnitRecord | None = None
        self.on_loop = False
        self.t0 = self.running0 = self.io0 = self.waiting0 = self.scheduling0 = 0.0
        self.cpu0 = -1.0
        self.start_ns = 0
        self.previous: dict[Stack, list[float]] | None = None
        self.samples: dict[Stack, list[float]] | None = None
        self.parent: OpenSpan | None = None
        self.token: Any = None
        self.handles: list[tuple[SpanListener, Any]] = []

    def __enter__(self) -> OpenSpan:
        recorder = self.recorder
        if recorder.failed is None:
            try:
                recorder.begin(self)
            except Exception as error:
                recorder.disable(error)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        recorder = self.recorder
        if recorder.failed is None and self.t0:
            try:
                recorder.end(self, error is not None and not isinstance(error, GeneratorExit))
            except Exception as failure:
                recorder.disable(failure)


# the innermost open span of the running task, greenlet or thread
_CURRENT: ContextVar[OpenSpan | None] = ContextVar("advisor_span", default=None)


class SpanRecorder:
    """The spans of one capture: opened by ``advisor.span``, summed per name."""

    def __init__(self, capture: Any, max_names: int = MAX_SPAN_NAMES) -> None:
        self.capture = capture
        self.max_names = max_names
        self.spans: dict[str, SpanAggregate] = {}
        self.listeners = LISTENERS
        self.failed: str | None = None
        self._lock = allocate_lock()

    # -- what advisor.spans calls ----------------------------------------------------------
    def open(self, name: str, labels: dict[str, object], where: tuple[str, int, str] | None = None) -> api.Span:
        if self.failed is not None:
            return api.Span()
        aggregate = self.spans.get(name)
        if aggregate is None:
            aggregate = self._aggregate(name)
            if not aggregate.file:
                if where is None:
                    # the line of the `with advisor.span(...)`: advisor.span's caller
                    frame = sys._getframe(2)
                    where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
                aggregate.file, aggregate.line = display_path(where[0]), where[1]
                aggregate.function = where[2]
        opened = OpenSpan(self, name, {key: _label(value) for key, value in labels.items()})
        opened.aggregate = aggregate
        return opened

    def tag(self, labels: dict[str, object]) -> None:
        """Label the running unit and every span open in it."""
        if self.failed is not None:
            return
        values = {str(key): _label(value) for key, value in labels.items()}
        unit = self._unit()
        if unit is not None:
            record = unit[0]
            # a unit has one value per key (the latest): a fold counts its units per value
            tags = record.tags if record.tags is not None else {}
            for key, value in values.items():
                if key in tags or len(tags) < MAX_TAG_KEYS:
                    tags[key] = {value: 1}
            record.tags = tags
        opened = _CURRENT.get()
        while opened is not None:
            opened.labels.update(values)
            opened = opened.parent

    def disable(self, error: BaseException) -> None:
        """Stop measuring spans (the program goes on) and say why, once."""
        if self.failed is None:
            self.failed = f"{type(error).__name__}: {error}"
            LOG.warning("advisor: span measurement disabled after an internal error: %s", self.failed)
        api.deactivate(self)

    # -- the unit a span runs in (what the request meter reads too) ---------------------------
    def _unit(self) -> tuple[UnitRecord, float, bool] | None:
        """(record, start of its current step, runs on a loop) of the unit running here."""
        capture = self.capture
        for probe in (capture.asyncio_probe, capture.greenlet_probe):
            step = probe.current_step()
            if step is not None:
                return step[0], step[1], True
        if _in_untracked_task():
            # a task the probe does not see (uvloop's, or one created before the profiler
            # started): its thread's CPU clock would count the other tasks' work as the span's
            return None
        info = capture.threads.alive.get(get_ident())
        if info is not None:
            return info.record, -1.0, False
        return None

    def _aggregate(self, name: str) -> SpanAggregate:
        with self._lock:
            if name not in self.spans and len(self.spans) >= self.max_names:
                name = OTHER_SPAN
            found = self.spans.get(name)
            if found is None:
                found = self.spans[name] = SpanAggregate(name)
            return found

    # -- start and end -----------------------------------------------------------------------
    def begin(self, opened: OpenSpan) -> None:
        unit = self._unit()
        now = time.perf_counter()
        if unit is not None:
            record, step_start, on_loop = unit
            opened.record, opened.on_loop = record, on_loop
            tags = record.tags
            if tags:
                # a span in a tagged unit carries the unit's labels (its own win)
                for key, values in list(tags.items()):
                    if key not in opened.labels and values:
                        opened.labels[key] = next(iter(values))
            if on_loop:
                # what the sampler saw of this step so far belongs to the enclosing table
                self.capture.sampler.flush_step(get_ident(), record, step_start, now)
                opened.running0 = record.running_s + (now - step_start)
                opened.io0, opened.waiting0, opened.scheduling0 = record.io_s, record.waiting_s, record.scheduling_s
            else:
                opened.cpu0 = time.thread_time()
            opened.previous = record.tag_samples
            opened.samples = {}
            record.tag_samples = opened.samples
        opened.parent = _CURRENT.get()
        opened.token = _CURRENT.set(opened)
        opened.t0 = now
        if self.listeners:
            opened.start_ns = time.time_ns()
            for listener in list(self.listeners):
                opened.handles.append((listener, listener.started(opened)))

    def end(self, opened: OpenSpan, error: bool) -> None:
        now = time.perf_counter()
        wall = max(0.0, now - opened.t0)
        cpu = time.thread_time() if opened.cpu0 >= 0.0 else 0.0
        try:
            _CURRENT.reset(opened.token)
        except ValueError:  # ended in another context than it began (an async generator)
            _CURRENT.set(opened.parent)
        record = opened.record
        parts: tuple[float, float, float, float] | None = None
        samples = opened.samples or {}
        if record is not None:
            if opened.on_loop:
                unit = self._unit()
                if unit is not None and unit[0] is record:
                    self.capture.sampler.flush_step(get_ident(), record, unit[1], now)
                    running = record.running_s + (now - unit[1])
                    parts = (max(0.0, running - opened.running0), max(0.0, record.io_s - opened.io0),
                             max(0.0, record.waiting_s - opened.waiting0),
                             max(0.0, record.scheduling_s - opened.scheduling0))
            else:
                parts = (wall, 0.0, 0.0, 0.0)
            record.tag_samples = opened.previous
            # once the sampler's lock is ours, no tick still writes to the span's table; the
            # enclosing span or request gets the samples too
            with self.capture.sampler.lock:
                if opened.previous is not None and samples:
                    _merge(opened.previous, samples)
        aggregate = opened.aggregate
        if aggregate is not None:
            with self._lock:
                aggregate.count += 1
                aggregate.errors += error
                aggregate.histogram.add(wall)
                aggregate.add_labels(opened.labels)
                if parts is not None:
                    aggregate.measured += 1
                    if opened.on_loop:
                        aggregate.loop_measured += 1
                        aggregate.loop_wall += sum(parts)
                        aggregate.loop_running += parts[0]
                        aggregate.loop_io += parts[1]
                        aggregate.loop_waiting += parts[2]
                        aggregate.loop_scheduling += parts[3]
                        _merge(aggregate.loop_samples, samples)
                    else:
                        aggregate.thread_measured += 1
                        aggregate.thread_wall += wall
                        aggregate.thread_cpu += min(wall, max(0.0, cpu - opened.cpu0))
                        _merge(aggregate.thread_samples, samples)
        if opened.handles:
            finished = self._finished(opened, wall, parts, cpu, samples, error)
            for listener, handle in opened.handles:
                try:
                    listener.ended(finished, handle)
                except Exception as failure:  # a failing exporter is dropped, spans go on
                    LOG.warning("advisor: span listener removed after an error: %s", failure)
                    if listener in LISTENERS:
                        LISTENERS.remove(listener)

    def _finished(self, opened: OpenSpan, wall: float, parts: tuple[float, float, float, float] | None,
                  cpu: float, samples: dict[Stack, list[float]], error: bool) -> FinishedSpan:
        record = opened.record
        breakdown, blocking = None, 0.0
        if parts is not None:
            if opened.on_loop:
                breakdown, blocking = loop_breakdown(*parts, samples)
            else:
                breakdown = thread_breakdown(wall, min(wall, max(0.0, cpu - opened.cpu0)), samples)
        name = "" if record is None else unit_name(record)
        return FinishedSpan(name=opened.name, kind=opened.kind, start_ns=opened.start_ns, end_ns=time.time_ns(),
                            wall_s=wall, breakdown=breakdown, blocking_s=blocking, unit=name,
                            unit_kind="" if record is None else record.kind, labels=dict(opened.labels),
                            error=error)

    # -- requests (advisor.embed's meter) -------------------------------------------------------
    def open_request(self, route: str) -> OpenSpan:
        """A request as a span for the listeners only (the route table has its sums)."""
        return OpenSpan(self, route, {"route": route}, kind="request")

    def report_spans(self) -> list[SpanStat]:
        return [span_stat(aggregate) for aggregate in list(self.spans.values())]


def _in_untracked_task() -> bool:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no loop running in this thread
        return False


def unit_name(record: UnitRecord) -> str:
    """The running unit's name as the report will show it (a live record has none yet):
    the task's ``get_name()``, the greenlet's or the thread's name, else its target."""
    try:
        if record.kind == "asyncio-task":
            import asyncio

            task = asyncio.current_task()
            if task is not None:
                return task.get_name()
        elif record.kind == "greenlet":
            import greenlet

            name = greenlet_name(greenlet.getcurrent())
            if name:
                return name
        else:
            thread = threading._active.get(get_ident())  # type: ignore[attr-defined]
            if thread is not None:
                return str(thread.name)
    except Exception:
        pass
    return record.name or record.target


def loop_breakdown(running: float, io: float, waiting: float, scheduling: float,
                   samples: dict[Stack, list[float]]) -> tuple[Breakdown, float]:
    """A task's (or greenlet's) time over one span, split as ``attribution.task_entry``
    splits a task's (kept apart from it: this runs per exported span, without the report
    models): off-CPU samples inside its steps are blocking, the rest of the steps compute."""
    offcpu = off_cpu(samples)
    inside = offcpu.total
    scale = running / inside if inside > running > 0.0 else 1.0 if running > 0.0 else 0.0
    blocked = inside * scale
    split = Breakdown.model_construct(
        compute_s=max(0.0, running - blocked), io_s=io + offcpu.io * scale,
        waiting_s=waiting + (offcpu.waiting + offcpu.idle) * scale, scheduling_s=scheduling + offcpu.scheduling * scale)
    return split, (offcpu.io + offcpu.waiting + offcpu.idle) * scale


def thread_breakdown(wall: float, cpu: float, samples: dict[Stack, list[float]]) -> Breakdown:
    """A thread's time over one span: exact CPU, the rest split in the proportions of its
    off-CPU samples (all waiting when none was taken), as ``attribution.thread_entry`` does."""
    rest = max(0.0, wall - cpu)
    offcpu = off_cpu(samples)
    sampled = offcpu.total
    if sampled <= 0.0:
        return Breakdown.model_construct(compute_s=cpu, io_s=0.0, waiting_s=rest, scheduling_s=0.0)
    share = rest / sampled
    return Breakdown.model_construct(compute_s=cpu, io_s=offcpu.io * share,
                                     waiting_s=(offcpu.waiting + offcpu.idle) * share,
                                     scheduling_s=offcpu.scheduling * share)


def span_stat(aggregate: SpanAggregate) -> SpanStat:
    """One span name as the report shows it: the loop part summed like a folded task whose
    steps are the calls, the thread part like a thread."""
    loop = UnitRecord(0, "asyncio-task", aggregate.name, "", 0, 0.0)
    loop.wall_s = aggregate.loop_wall
    loop.running_s, loop.io_s = aggregate.loop_running, aggregate.loop_io
    loop.waiting_s, loop.scheduling_s = aggregate.loop_waiting, aggregate.loop_scheduling
    loop.samples = {stack: list(weights) for stack, weights in list(aggregate.loop_samples.items())}
    loop_entry, loop_off = task_entry(loop)
    thread = UnitRecord(0, "thread", aggregate.name, "", 0, 0.0)
    thread.wall_s, thread.cpu_s = aggregate.thread_wall, aggregate.thread_cpu
    thread.samples = {stack: list(weights) for stack, weights in list(aggregate.thread_samples.items())}
    thread_entry_, thread_off = thread_entry(thread)
    parts = [entry.breakdown for entry, measured in ((loop_entry, aggregate.loop_measured),
                                                      (thread_entry_, aggregate.thread_measured)) if measured]
    breakdown = Breakdown(**{name: round(sum(getattr(part, name) for part in parts), 6)
                             for name in ("compute_s", "io_s", "waiting_s", "scheduling_s")})
    both = dict(loop.samples)
    _merge(both, thread.samples)
    off = OffCpu(sites=dict(loop_off.sites))
    for key, seconds in thread_off.sites.items():
        off.sites[key] = off.sites.get(key, 0.0) + seconds
    histogram = aggregate.histogram
    return SpanStat(
        name=aggregate.name, count=aggregate.count, errors=aggregate.errors, measured=aggregate.measured,
        wall_s=round(breakdown.total(), 6),
        p50_s=round(histogram.quantile(0.50), 6), p95_s=round(histogram.quantile(0.95), 6),
        p99_s=round(histogram.quantile(0.99), 6), max_s=round(histogram.largest, 6),
        breakdown=breakdown, blocking_s=loop_entry.blocking_s if aggregate.loop_measured else 0.0,
        file=aggregate.file, line=aggregate.line, function=aggregate.function,
        hot=hot_spots(both), blocking=blocking_sites(off),
        labels={key: dict(values) for key, values in aggregate.labels.items()}, histogram=histogram.sparse())


def merge_spans(tables: Iterable[Iterable[SpanStat]]) -> list[SpanStat]:
    """The spans of several reports (runs, or a server's workers) as one table: counts, times
    and label counts summed, percentiles from the merged histograms (from the largest of the
    reports' percentiles when one was written without a histogram)."""
    groups: dict[str, list[SpanStat]] = {}
    for table in tables:
        for stat in table:
            groups.setdefault(stat.name, []).append(stat)
    merged = []
    for name, group in groups.items():
        complete = all(stat.histogram for stat in group)
        histogram = LogHistogram()
        for stat in group:
            histogram.merge(LogHistogram.from_sparse(stat.histogram, 0.0, stat.max_s))
        histogram.smallest, histogram.largest = 0.0, max(stat.max_s for stat in group)
        percentiles = {field: round(histogram.quantile(q), 6) if complete
                       else max(float(getattr(stat, field)) for stat in group)
                       for field, q in (("p50_s", 0.50), ("p95_s", 0.95), ("p99_s", 0.99))}
        labels = UnitRecord(0, "span", name, "", 0, 0.0)  # its tag counting, with the same caps
        for stat in group:
            labels.add_tags(stat.labels)
        first = next((stat for stat in group if stat.file), group[0])
        merged.append(SpanStat(
            name=name, count=sum(stat.count for stat in group), errors=sum(stat.errors for stat in group),
            measured=sum(stat.measured for stat in group), wall_s=round(sum(stat.wall_s for stat in group), 6),
            max_s=histogram.largest, **percentiles,
            breakdown=Breakdown(**{part: round(sum(getattr(stat.breakdown, part) for stat in group), 6)
                                   for part in ("compute_s", "io_s", "waiting_s", "scheduling_s")}),
            blocking_s=round(sum(stat.blocking_s for stat in group), 6),
            file=first.file, line=first.line, function=first.function,
            hot=_summed([spot for stat in group for spot in stat.hot], "self_s"),
            blocking=_summed([site for stat in group for site in stat.blocking], "seconds"),
            labels=labels.tags or {}, histogram=histogram.sparse() if complete else {}))
    return sorted(merged, key=lambda stat: (-stat.wall_s, -stat.count, stat.name))


def span_stats(recorder: SpanRecorder) -> list[SpanStat]:
    """Every span name for the report, most total wall time first."""
    return sorted(recorder.report_spans(), key=lambda stat: (-stat.wall_s, -stat.count, stat.name))


def with_span_places(report: Report) -> Report:
    """Each finding with the spans that spent sampled time in its function or on its line
    (from the spans' hot functions and blocking sites, so a saved report works too)."""
    if not report.spans or not report.findings:
        return report
    findings = []
    for finding in report.findings:
        where = finding.location
        # spans that spent time on the finding's very line; only when none did, the spans
        # that spent time in its function (a function may hold several spans: a finding on
        # one line must not name the spans around the others)
        on_line = [stat.name for stat in report.spans
                   if any(site.file == where.file and site.line == where.line for site in stat.blocking)
                   or any(spot.file == where.file and spot.line == where.line for spot in stat.hot)]
        names = on_line or [stat.name for stat in report.spans if where.function and any(
            spot.file == where.file and (spot.function == where.function or spot.function.endswith(
                "." + where.function)) for spot in stat.hot)]
        findings.append(finding.model_copy(update={"spans": sorted(names)}) if names else finding)
    return report.model_copy(update={"findings": findings})


# -- requests of advisor.embed's meter, for listeners -------------------------------------------
def request_started(route: str) -> OpenSpan | None:
    """A request's span when a listener wants requests (None otherwise: nothing to do)."""
    recorder = api.active_recorder()
    if recorder is None or not recorder.listeners or recorder.failed is not None:
        return None
    opened: OpenSpan = recorder.open_request(route)
    opened.__enter__()
    return opened


def request_ended(opened: OpenSpan | None, error: bool) -> None:
    if opened is not None:
        opened.__exit__(RuntimeError if error else None, RuntimeError() if error else None, None)


def add_listener(listener: SpanListener) -> Callable[[], None]:
    """Tell `listener` about every span and request from now on, of any profiler running now
    or started later; returns a function that removes it."""
    LISTENERS.append(listener)

    def remove() -> None:
        if listener in LISTENERS:
            LISTENERS.remove(listener)

    return remove
