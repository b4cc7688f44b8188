"""Per-route aggregates of the requests a server handled, in memory that does not grow.

Each route keeps a few sums (wall, running, io, waiting, scheduling), a fixed-size
log-bucket histogram of request wall times for percentiles, and the stack table the
sampler fills while one of the route's requests runs (bounded by the program's code paths,
like a unit's own samples). Distinct routes are capped; past the cap, requests count under
``other``. Turning a route into a ``RouteStat`` reuses the per-unit attribution: a route
is summed like a folded unit whose steps are its requests, so its compute, blocking and
blocking sites mean what they mean for a task (or, for a threaded server, for a thread).
Requests measured on a loop wait in a list and are added up together (``fold``), in C
where ``_fold.c`` was built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar

from advisor.probes.native import allocate_lock
from advisor.probes.records import Stack, UnitRecord

from ..attribution import task_entry, thread_entry, visible
from ..frames import display_path, function_name
from ..profile import BlockingSite, Breakdown, HotSpot, Report, RouteStat

OTHER_ROUTE = "other"
DEFAULT_MAX_ROUTES = 100

# Buckets of the wall-time histogram: 8 per doubling from 1 µs, 36 doublings (up to ~19 h).
# A percentile is its bucket's geometric middle: within 2^(1/16) - 1 ≈ 4.4% of the truth.
BUCKETS_PER_DOUBLING = 8
SMALLEST_S = 1e-6
BUCKETS = BUCKETS_PER_DOUBLING * 36 + 1
_log2 = math.log2

try:  # the fold's loop in C (optional: built where a compiler was, see _fold.c)
    from ._fold import fold as _fold  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    _fold = None


class LogHistogram:
    """Counts of values in logarithmic buckets: fixed size, mergeable, percentiles within ~4%."""

    __slots__ = ("count", "counts", "largest", "smallest")

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.largest = 0.0
        self.smallest = math.inf

    @staticmethod
    def bucket(seconds: float) -> int:
        if seconds <= SMALLEST_S:
            return 0
        return min(BUCKETS - 1, int(math.log2(seconds / SMALLEST_S) * BUCKETS_PER_DOUBLING) + 1)

    def add(self, seconds: float) -> None:
        self.counts[self.bucket(seconds)] += 1
        self.count += 1
        if seconds > self.largest:
            self.largest = seconds
        if seconds < self.smallest:
            self.smallest = seconds

    def merge(self, other: LogHistogram) -> None:
        for index, value in enumerate(other.counts):
            self.counts[index] += value
        self.count += other.count
        self.largest = max(self.largest, other.largest)
        self.smallest = min(self.smallest, other.smallest)

    def sparse(self) -> dict[str, int]:
        """The non-empty buckets (JSON keys are strings)."""
        return {str(index): value for index, value in enumerate(self.counts) if value}

    @classmethod
    def from_sparse(cls, buckets: dict[str, int], smallest: float, largest: float) -> LogHistogram:
        histogram = cls()
        for key, value in buckets.items():
            index = int(key)
            if 0 <= index < BUCKETS and value > 0:
                histogram.counts[index] += value
                histogram.count += value
        histogram.smallest, histogram.largest = smallest, largest
        return histogram

    def quantile(self, q: float) -> float:
        """The value at quantile `q` (0..1), clamped to the smallest and largest seen."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index, value in enumerate(self.counts):
            seen += value
            if seen >= rank:
                middle = SMALLEST_S * 2.0 ** ((index - 0.5) / BUCKETS_PER_DOUBLING) if index else SMALLEST_S
                return min(max(middle, self.smallest), self.largest)
        return self.largest


class RouteAggregate:
    """The sums of one route's requests (see the module docstring)."""

    __slots__ = ("count", "errors", "histogram", "io_s", "loop_requests", "measured", "route", "running_s",
                 "samples", "scheduling_s", "thread_cpu_s", "waiting_s", "wall_s")

    def __init__(self, route: str) -> None:
        self.route = route
        self.count = 0
        self.errors = 0
        self.measured = 0  # requests whose breakdown was measured (their unit was traced)
        self.loop_requests = 0  # of those, requests run by a task or greenlet (vs a thread)
        self.wall_s = 0.0  # of the measured requests: the breakdown adds up to it
        self.running_s = 0.0
        self.io_s = 0.0
        self.waiting_s = 0.0
        self.scheduling_s = 0.0
        self.thread_cpu_s = 0.0  # requests run by threads: their exact CPU (the rest is off-CPU)
        self.histogram = LogHistogram()
        # written by the sampler thread (under its lock) while a request of this route runs
        self.samples: dict[Stack, list[float]] = {}


# Requests measured on a loop wait in a list, this many at most, until they are added up
# together (or when the table is read): a server's request costs one append.
FOLD_EVERY = 256


class RouteTable:
    """Every route's aggregate, at most `max_routes` of them plus ``other``."""

    def __init__(self, max_routes: int = DEFAULT_MAX_ROUTES) -> None:
        self.max_routes = max(1, max_routes)
        self._routes: dict[str, RouteAggregate] = {}
        self.named = self._routes  # read-only: route name -> aggregate (a request's lookup, no call)
        # requests not added up yet: (aggregate, wall, running, io, waiting, scheduling, error),
        # appended by the request meter, folded by fold(); never rebound (threads append to it).
        # While tracing pauses, the parts are None (timed only), or the request is counted only
        # (see _count_entry)
        self.unfolded: list[Any] = []
        # the interpreter's lock (gevent may have patched threading): requests of a threaded
        # server add to the same sums
        self._lock = allocate_lock()

    def route(self, name: str) -> RouteAggregate:
        """The aggregate of a route, created on first use (``other`` past the cap)."""
        found = self._routes.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._routes and len(self._routes) >= self.max_routes:
                name = OTHER_ROUTE
            found = self._routes.get(name)
            if found is None:
                found = self._routes[name] = RouteAggregate(name)
            return found

    def add(self, aggregate: RouteAggregate, wall_s: float, parts: tuple[float, float, float, float] | None,
            error: bool, on_loop: bool) -> None:
        """One finished request: its wall time and, when its unit was traced, (running, io,
        waiting, scheduling) seconds over the request."""
        with self._lock:
            _count(aggregate, wall_s, parts, error, on_loop)

    def add_thread(self, aggregate: RouteAggregate, wall_s: float, cpu_s: float, error: bool) -> None:
        """One finished request run by a thread: its wall time and its thread's CPU time."""
        with self._lock:
            aggregate.count += 1
            aggregate.errors += error
            aggregate.histogram.add(wall_s)
            aggregate.measured += 1
            aggregate.wall_s += wall_s
            aggregate.running_s += wall_s  # counted as a step if the route also runs on a loop
            aggregate.thread_cpu_s += cpu_s

    def fold(self) -> None:
        """Add up the requests waiting in ``unfolded``: what ``add`` does for each, at once."""
        unfolded = self.unfolded
        with self._lock:
            count = len(unfolded)
            if not count:
                return
            batch = unfolded[:count]
            del unfolded[:count]  # what other threads appended meanwhile stays, for the next fold
            if _fold is not None:
                _fold(batch, RouteAggregate, LogHistogram, SMALLEST_S, BUCKETS, float(BUCKETS_PER_DOUBLING),
                      _count_entry)
                return
            for entry in batch:
                _count_entry(entry)

    def aggregates(self) -> list[RouteAggregate]:
        self.fold()
        return list(self._routes.values())

    def stats(self) -> list[RouteStat]:
        """Every route for the report, busiest (total wall) first."""
        return sorted((route_stat(aggregate) for aggregate in self.aggregates()),
                      key=lambda stat: (-stat.wall_s, -stat.count, stat.route))


def _count(aggregate: RouteAggregate, wall_s: float, parts: tuple[float, float, float, float] | None, error: bool,
           on_loop: bool) -> None:
    """Add one request to its route (the table's lock held): ``LogHistogram.add`` and its
    bucket inline, as a server counts every request."""
    index = (0 if wall_s <= SMALLEST_S else
             min(BUCKETS - 1, int(_log2(wall_s / SMALLEST_S) * BUCKETS_PER_DOUBLING) + 1))
    aggregate.count += 1
    if error:
        aggregate.errors += 1
    histogram = aggregate.histogram
    histogram.counts[index] += 1
    histogram.count += 1
    if wall_s > histogram.largest:
        histogram.largest = wall_s
    if wall_s < histogram.smallest:
        histogram.smallest = wall_s
    if parts is not None:
        running, io, waiting, scheduling = parts
        aggregate.measured += 1
        if on_loop:
            aggregate.loop_requests += 1
        aggregate.wall_s += running + io + waiting + scheduling
        aggregate.running_s += running
        aggregate.io_s += io
        aggregate.waiting_s += waiting
        aggregate.scheduling_s += scheduling


def _count_entry(entry: tuple[RouteAggregate, float, float, float, float, float, bool] | RouteAggregate) -> None:
    """Add one request that waited in ``unfolded`` (the table's lock held). While tracing was
    paused (see ``advisor.embed.windows``) a request is timed only (its parts None) or only
    counted: the aggregate itself, or for a server error a tuple whose wall time is None."""
    if isinstance(entry, RouteAggregate):
        entry.count += 1
        return
    aggregate, wall_s, running, io, waiting, scheduling, error = entry
    if wall_s is None:
        aggregate.count += 1
        aggregate.errors += bool(error)
        return
    if running is None:
        _count(aggregate, wall_s, None, error, True)
        return
    _count(aggregate, wall_s, (running if running > 0.0 else 0.0, io if io > 0.0 else 0.0,
                               waiting if waiting > 0.0 else 0.0, scheduling if scheduling > 0.0 else 0.0),
           error, True)


def route_stat(aggregate: RouteAggregate) -> RouteStat:
    """A route as the report shows it: summed like a folded unit whose steps are its requests."""
    # read without the table's lock: a report is a snapshot, one request more or less
    record = UnitRecord(0, "greenlet", aggregate.route, "", 0, 0.0)
    record.wall_s = aggregate.wall_s
    record.running_s = aggregate.running_s
    record.io_s = aggregate.io_s
    record.waiting_s = aggregate.waiting_s
    record.scheduling_s = aggregate.scheduling_s
    record.samples = {stack: list(weights) for stack, weights in list(aggregate.samples.items())}
    if aggregate.measured and not aggregate.loop_requests:
        # only threads: exact CPU, the rest split as the off-CPU samples show (as for a thread)
        record.kind = "thread"
        record.cpu_s = aggregate.thread_cpu_s
        entry, _ = thread_entry(record)
    else:
        entry, _ = task_entry(record)
    histogram = aggregate.histogram
    return RouteStat(
        route=aggregate.route,
        count=aggregate.count,
        errors=aggregate.errors,
        measured=aggregate.measured,
        wall_s=entry.wall_s,
        p50_s=round(histogram.quantile(0.50), 6),
        p95_s=round(histogram.quantile(0.95), 6),
        p99_s=round(histogram.quantile(0.99), 6),
        max_s=round(histogram.largest, 6),
        breakdown=Breakdown.model_validate(entry.breakdown.model_dump()),
        # a thread that blocks holds only itself: blocking means holding a loop or hub
        blocking_s=entry.blocking_s if aggregate.loop_requests else 0.0,
        hot=entry.hot,
        blocking=entry.blocking,
        histogram=histogram.sparse(),
    )


def merge_routes(tables: Iterable[Iterable[RouteStat]]) -> list[RouteStat]:
    """The routes of several reports (a server's workers) as one table: counts and times
    summed, percentiles recomputed from the merged histograms (a report written without
    histograms contributes its largest percentiles instead)."""
    groups: dict[str, list[RouteStat]] = {}
    for table in tables:
        for stat in table:
            groups.setdefault(stat.route, []).append(stat)
    merged = []
    for name, group in groups.items():
        largest = max(stat.max_s for stat in group)
        complete = all(stat.histogram for stat in group)
        histogram = LogHistogram()
        for stat in group:
            if stat.histogram:
                histogram.merge(LogHistogram.from_sparse(stat.histogram, 0.0, stat.max_s))
        histogram.smallest, histogram.largest = 0.0, largest

        def percentile(q: float, field: str, group: list[RouteStat] = group,
                       histogram: LogHistogram = histogram, complete: bool = complete) -> float:
            if complete:
                return round(histogram.quantile(q), 6)
            return max(float(getattr(stat, field)) for stat in group)

        merged.append(RouteStat(
            route=name,
            count=sum(stat.count for stat in group),
            errors=sum(stat.errors for stat in group),
            measured=sum(stat.measured for stat in group),
            wall_s=round(sum(stat.wall_s for stat in group), 6),
            p50_s=percentile(0.50, "p50_s"),
            p95_s=percentile(0.95, "p95_s"),
            p99_s=percentile(0.99, "p99_s"),
            max_s=largest,
            breakdown=Breakdown(**{part: round(sum(getattr(stat.breakdown, part) for stat in group), 6)
                                   for part in ("compute_s", "io_s", "waiting_s", "scheduling_s")}),
            blocking_s=round(sum(stat.blocking_s for stat in group), 6),
            hot=_summed([spot for stat in group for spot in stat.hot], "self_s"),
            blocking=_summed([site for stat in group for site in stat.blocking], "seconds"),
            histogram=histogram.sparse() if complete else {},
        ))
    return sorted(merged, key=lambda stat: (-stat.wall_s, -stat.count, stat.route))


Place = TypeVar("Place", HotSpot, BlockingSite)


def _summed(places: list[Place], seconds: str, limit: int = 5) -> list[Place]:
    """Hot spots or blocking sites of one place summed (their seconds), the largest first."""
    by_place: dict[tuple[object, ...], Place] = {}
    for place in places:
        # a place is what it names; its figures (and a hot spot's per-line list) are not its key
        key = tuple(value for name, value in place.model_dump().items() if name not in (seconds, "lines"))
        into = by_place.get(key)
        if into is None:
            by_place[key] = place.model_copy()
        else:
            setattr(into, seconds, round(getattr(into, seconds) + getattr(place, seconds), 6))
    return sorted(by_place.values(), key=lambda place: -float(getattr(place, seconds)))[:limit]


def with_routes(report: Report, table: RouteTable) -> Report:
    """The report with its per-route table, and each finding with the routes whose requests
    were sampled at the finding's line or in its function."""
    aggregates = table.aggregates()
    places: dict[str, set[tuple[str, int]]] = {}
    functions: dict[str, set[tuple[str, str]]] = {}
    for aggregate in aggregates:
        lines: set[tuple[str, int]] = set()
        names: set[tuple[str, str]] = set()
        for stack in list(aggregate.samples):
            for code, line in visible(stack):
                path = display_path(code.co_filename)
                lines.add((path, line))
                names.update((path, name) for name in
                             (function_name(code), getattr(code, "co_qualname", code.co_name), code.co_name))
        places[aggregate.route] = lines
        functions[aggregate.route] = names
    findings = []
    for finding in report.findings:
        where = finding.location
        routes = [route for route in places
                  if (where.file, where.line) in places[route]
                  or (where.function and (where.file, where.function) in functions[route])]
        findings.append(finding.model_copy(update={"routes": sorted(routes)}))
    return report.model_copy(update={"routes": table.stats(), "findings": findings})
