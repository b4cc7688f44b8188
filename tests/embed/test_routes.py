"""Route aggregation in bounded memory: log-bucket percentiles against exact ones, the cap
on distinct routes, sums that add up, and findings mapped to the routes sampled there."""

from __future__ import annotations

import math
import random
import sys

from advisor.embed.routes import (
    BUCKETS,
    FOLD_EVERY,
    OTHER_ROUTE,
    LogHistogram,
    RouteTable,
    merge_routes,
    route_stat,
    with_routes,
)
from advisor.profile import Finding, Location, Report, RunInfo


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_percentiles_are_within_five_percent_of_the_exact_ones() -> None:
    generator = random.Random(7)
    values = [generator.lognormvariate(math.log(0.02), 1.0) for _ in range(20_000)]
    histogram = LogHistogram()
    for value in values:
        histogram.add(value)
    for q in (0.5, 0.9, 0.95, 0.99):
        assert abs(histogram.quantile(q) - exact_quantile(values, q)) <= 0.05 * exact_quantile(values, q)
    assert histogram.quantile(1.0) == max(values)
    assert histogram.count == len(values)


def test_histogram_size_is_fixed_and_merges_add_up() -> None:
    first, second = LogHistogram(), LogHistogram()
    for index in range(1, 1001):
        first.add(index / 1000.0)
        second.add(index / 10.0)
    size = sys.getsizeof(first.counts)
    first.merge(second)
    assert len(first.counts) == BUCKETS and sys.getsizeof(first.counts) == size
    assert first.count == 2000 and first.largest == 100.0 and first.smallest == 0.001
    assert 0.9 <= first.quantile(0.5) <= 1.05  # the middle of both: 1.0 s
    assert LogHistogram().quantile(0.5) == 0.0
    tiny = LogHistogram()
    tiny.add(0.0)
    assert tiny.quantile(0.99) == 0.0


def test_routes_past_the_cap_count_as_other_and_memory_does_not_grow() -> None:
    table = RouteTable(max_routes=3)
    for index in range(10_000):
        aggregate = table.route(f"GET /item/{index % 50}")
        table.add(aggregate, 0.01, (0.004, 0.003, 0.002, 0.001), error=index % 100 == 0, on_loop=True)
    names = {aggregate.route for aggregate in table.aggregates()}
    assert len(names) == 4 and OTHER_ROUTE in names
    counts = {aggregate.route: aggregate.count for aggregate in table.aggregates()}
    assert sum(counts.values()) == 10_000
    assert counts["GET /item/0"] == 200 and counts[OTHER_ROUTE] == 10_000 - 3 * 200


def test_a_route_sums_like_a_unit_whose_steps_are_its_requests() -> None:
    table = RouteTable()
    aggregate = table.route("GET /a")
    for _ in range(4):
        table.add(aggregate, 0.1, (0.04, 0.03, 0.02, 0.01), error=False, on_loop=True)
    table.add(aggregate, 0.2, None, error=True, on_loop=True)  # not measured: counts, no breakdown
    stat = route_stat(aggregate)
    assert stat.count == 5 and stat.measured == 4 and stat.errors == 1
    assert stat.wall_s == 0.4
    assert stat.breakdown.compute_s == 0.16  # no samples: all of its running time was compute
    assert (stat.breakdown.io_s, stat.breakdown.waiting_s, stat.breakdown.scheduling_s) == (0.12, 0.08, 0.04)
    assert abs(stat.p50_s - 0.1) <= 0.005 and abs(stat.max_s - 0.2) < 1e-9


def slow_handler() -> object:
    return sys._getframe()


def test_findings_carry_the_routes_sampled_at_their_line() -> None:
    frame = slow_handler()
    code = frame.f_code
    table = RouteTable()
    slow = table.route("GET /slow")
    slow.samples[((code, code.co_firstlineno + 1),)] = [0.0, 0.5, 0.0, 0.0]
    table.route("GET /fast").samples[((test_findings_carry_the_routes_sampled_at_their_line.__code__, 70),)] = [
        0.1, 0.0, 0.0, 0.0]
    table.add(slow, 0.5, (0.5, 0.0, 0.0, 0.0), error=False, on_loop=True)
    here = "tests/embed/test_routes.py"
    finding = Finding(rule="blocking-sleep", code="ADV101", severity="high", message="m",
                      location=Location(file=here, line=code.co_firstlineno + 1, function="slow_handler"))
    elsewhere = finding.model_copy(update={"location": Location(file=here, line=1, function="nothing")})
    report = Report(run=RunInfo(argv=[], python="3", cpu_count=2, started_at="", wall_s=1.0, cpu_s=1.0,
                                exit_code=0), findings=[finding, elsewhere])
    mapped = with_routes(report, table)
    assert mapped.findings[0].routes == ["GET /slow"]
    assert mapped.findings[1].routes == []
    assert mapped.routes[0].route == "GET /slow"
    slow_stat = mapped.routes[0]
    assert slow_stat.blocking_s == 0.5 and slow_stat.breakdown.compute_s == 0.0


def test_the_routes_of_several_workers_merge_into_one_table() -> None:
    workers = []
    every: list[float] = []
    for worker in range(3):
        table = RouteTable()
        aggregate = table.route("GET /a")
        for index in range(100):
            wall = 0.001 * (1 + index + 100 * worker)
            every.append(wall)
            table.add(aggregate, wall, (wall, 0.0, 0.0, 0.0), error=False, on_loop=True)
        table.add(table.route(f"GET /only-{worker}"), 0.5, (0.5, 0.0, 0.0, 0.0), error=True, on_loop=True)
        workers.append(table.stats())
    merged = {stat.route: stat for stat in merge_routes(workers)}
    assert set(merged) == {"GET /a", "GET /only-0", "GET /only-1", "GET /only-2"}
    route = merged["GET /a"]
    assert route.count == route.measured == 300 and route.max_s == max(every)
    assert abs(route.wall_s - sum(every)) < 1e-3
    for q, value in ((0.5, route.p50_s), (0.95, route.p95_s), (0.99, route.p99_s)):
        assert abs(value - exact_quantile(every, q)) <= 0.05 * exact_quantile(every, q)
    assert merged["GET /only-1"].errors == 1
    # a report without histograms (older) still merges: its largest percentiles stand
    old = workers[0][0].model_copy(update={"histogram": {}})
    assert merge_routes([[old], workers[1][:1]])[0].p99_s == max(old.p99_s, workers[1][0].p99_s)


def test_requests_added_up_later_give_what_add_gives() -> None:
    """The meter appends a server's requests to ``unfolded``; folded in batches (and when
    the table is read), they add up to what ``add`` gives one by one."""
    generator = random.Random(3)
    eager, later = RouteTable(), RouteTable()
    for index in range(3 * FOLD_EVERY + 17):
        wall = generator.lognormvariate(math.log(0.002), 1.0)
        # a part can come out a hair below zero (clocks read at different moments): clamped
        parts = (wall * 0.5, wall * 0.2, -1e-9 if index % 5 == 0 else wall * 0.2, wall * 0.1)
        error = index % 11 == 0
        route = f"GET /{index % 3}"
        eager.add(eager.route(route), wall, (parts[0], parts[1], max(0.0, parts[2]), parts[3]), error, True)
        later.unfolded.append((later.route(route), wall, *parts, error))
        if len(later.unfolded) >= FOLD_EVERY:
            later.fold()
    assert later.unfolded  # the last ones wait until the table is read
    assert later.stats() == eager.stats()
    assert not later.unfolded

