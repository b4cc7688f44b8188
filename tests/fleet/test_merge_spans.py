"""``advisor merge`` of reports with spans: counts, times and labels add up, percentiles come
from the merged histograms; hot spots with per-line figures merge by place."""

from __future__ import annotations

from advisor.embed.routes import LogHistogram, merge_routes
from advisor.profile import Breakdown, HotSpot, LineStat, RouteStat, SpanStat
from advisor.span_stats import merge_spans


def span(count: int, each_s: float, labels: dict[str, dict[str, int]], histogram: bool = True) -> SpanStat:
    buckets = LogHistogram()
    for _ in range(count):
        buckets.add(each_s)
    return SpanStat(name="checkout", count=count, measured=count, wall_s=count * each_s, p50_s=each_s,
                    p95_s=each_s, p99_s=each_s, max_s=each_s,
                    breakdown=Breakdown(compute_s=count * each_s * 0.25, waiting_s=count * each_s * 0.75),
                    file="app.py", line=12, function="checkout", labels=labels,
                    hot=[HotSpot(function="app.price", file="app.py", line=30, self_s=0.01,
                                 lines=[LineStat(line=30, self_s=0.01)])],
                    histogram=buckets.sparse() if histogram else {})


def test_spans_of_two_reports_add_up_and_their_percentiles_come_from_both() -> None:
    fast = span(90, 0.010, {"tier": {"gold": 90}})
    slow = span(10, 0.200, {"tier": {"basic": 10}})
    (merged,) = merge_spans([[fast], [slow]])
    assert merged.count == 100 and merged.measured == 100
    assert merged.wall_s == round(0.9 + 2.0, 6)
    assert merged.breakdown.waiting_s == round(0.75 * 2.9, 6)
    assert merged.labels == {"tier": {"gold": 90, "basic": 10}}
    assert abs(merged.p50_s - 0.010) < 0.0006 and abs(merged.p95_s - 0.200) < 0.01
    assert merged.max_s == 0.2 and merged.hot[0].self_s == 0.02
    assert sum(merged.histogram.values()) == 100


def test_a_report_without_a_histogram_gives_the_larger_percentiles() -> None:
    (merged,) = merge_spans([[span(90, 0.010, {})], [span(10, 0.200, {}, histogram=False)]])
    assert merged.p50_s == 0.2 and merged.histogram == {}


def test_label_values_stay_bounded_when_merged() -> None:
    many = [[span(1, 0.01, {"order": {str(index): 1}})] for index in range(50)]
    (merged,) = merge_spans(many)
    assert len(merged.labels["order"]) == 21 and merged.labels["order"]["other"] == 30


def test_routes_whose_hot_spots_have_lines_merge() -> None:
    spot = HotSpot(function="app.price", file="app.py", line=30, self_s=0.01, lines=[LineStat(line=30, self_s=0.01)])
    route = RouteStat(route="GET /", count=1, wall_s=0.1, max_s=0.1, hot=[spot])
    (merged,) = merge_routes([[route], [route]])
    assert merged.count == 2 and merged.hot[0].self_s == 0.02
