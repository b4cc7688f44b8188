"""Deep mode's calibration of yappi's per-call cost.

The paired timing and the cost per kind of call are checked on made-up numbers (exact);
the start-up plus end-of-run calibration on a real yappi run, where what is checked is
exact too: the run's call counts, and that the second calibration neither erases nor
pollutes the run's stats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from advisor.deep_attribution import call_cost, profiler_seconds
from advisor.probes import deep
from advisor.probes.deep import CallCost, DeepFunction, DeepProbe, _extra

COST = CallCost(caller_s=1.0, callee_s=2.0, wall_s=3.0, recursive_wall_s=4.0, method_wall_s=5.0,
                init_wall_s=6.0, recursive_method_wall_s=7.0)


class FakeYappi:
    """start/stop only: says whether a timed loop runs profiled."""

    def __init__(self) -> None:
        self.running = False
        self.starts = 0

    def start(self, **_options: object) -> None:
        self.running = True
        self.starts += 1

    def stop(self) -> None:
        self.running = False


def test_extra_is_the_median_of_paired_differences() -> None:
    yappi = FakeYappi()
    # (bare, profiled) per pair; one pair hit by a slow spell on its profiled side, one by a
    # clock that read a third of the time: the median of the differences ignores both
    pairs: Iterator[tuple[float, float]] = iter([(1.0, 4.0), (1.1, 4.1), (1.0, 9.0), (0.9, 3.9), (1.0, 2.0)])
    current: list[tuple[float, float]] = []

    def timer() -> float:
        if not yappi.running:
            current[:] = [next(pairs)]
            return current[0][0]
        return current[0][1]

    assert _extra(yappi, timer, pairs=5) == pytest.approx(3.0)
    assert yappi.starts == 5 and not yappi.running


def test_mean_of_two_calibrations_is_field_by_field_and_skips_a_missing_one() -> None:
    other = CallCost(**{name: 3 * value for name, value in vars(COST).items()})
    mean = COST.mean(other)
    assert vars(mean) == {name: 2 * value for name, value in vars(COST).items()}
    assert COST.mean(CallCost()) == COST
    assert CallCost().mean(COST) == COST


def test_calibrations_that_agree_are_averaged_and_ones_that_do_not_give_the_lower() -> None:
    near = CallCost(**{name: 1.1 * value for name, value in vars(COST).items()})
    assert vars(COST.combined(near)) == pytest.approx({name: 1.05 * value for name, value in vars(COST).items()})
    slow_spell = CallCost(**{name: 1.75 * value for name, value in vars(COST).items()})
    assert COST.combined(slow_spell) == COST
    assert slow_spell.combined(COST) == COST
    assert COST.combined(CallCost()) == COST
    assert CallCost().combined(COST) == COST


def function(name: str, recursive: bool = False, ncall: int = 10) -> DeepFunction:
    children = [("prog.py", name, 1, ncall - 1, 0.0, 0.0)] if recursive else []
    return DeepFunction("prog.py", name, 1, ncall, 0.0, 0.0, 0, 0, children)


@pytest.mark.parametrize(("name", "recursive", "expected"), [
    ("fib", True, COST.recursive_wall_s),
    ("Node.total", True, COST.recursive_method_wall_s),
    ("Point.__init__", False, COST.init_wall_s),
    ("Point.scaled", False, COST.method_wall_s),
    ("clamp", False, COST.wall_s),
])
def test_each_kind_of_call_has_its_own_cost(name: str, recursive: bool, expected: float) -> None:
    assert call_cost(function(name, recursive), COST) == expected


def test_an_older_calibration_without_recursive_methods_falls_back_to_recursion() -> None:
    older = CallCost(wall_s=3.0, recursive_wall_s=4.0, method_wall_s=5.0, init_wall_s=6.0)
    assert call_cost(function("Node.total", recursive=True), older) == 4.0
    assert profiler_seconds([function("fib", True, 5), function("Point.scaled", ncall=7)], COST) == \
        5 * COST.recursive_wall_s + 7 * COST.method_wall_s


def busy(count: int) -> int:
    return count


def test_the_end_of_run_calibration_keeps_the_runs_stats_and_adds_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[CallCost] = []
    calibrate = deep._calibrate

    def recorded(yappi: object, **options: object) -> CallCost:
        measured.append(calibrate(yappi, **options))  # type: ignore[arg-type]
        return measured[-1]

    monkeypatch.setattr(deep, "_calibrate", recorded)
    # `advisor run`'s case: no other thread runs under yappi (test_deep_teardown: a server's)
    monkeypatch.setattr(deep, "others_run", lambda ignored=(): False)
    probe = DeepProbe()
    probe.prepare()
    start = probe.cost
    assert start.wall_s > 0.0 and start.init_wall_s > 0.0 and start.recursive_method_wall_s > 0.0
    probe.start()
    try:
        for index in range(1_000):
            busy(index)
    finally:
        probe.stop()
    profile = probe.drain()
    probe.clear()
    calls = {f.name: f.ncall for f in profile.functions if f.module == __file__}
    assert calls.get("busy") == 1_000, calls
    names = {f.name for f in profile.functions}
    assert not names & {"_empty", "_caller", "_fib", "_Point.norm", "_Point.__init__", "_Link.length"}, names
    # a second measure was taken at the end, and the report's cost is the two made one
    # (their mean, or the lower when they disagree: either may equal the start-up's)
    assert len(measured) == 2 and measured[0] == start
    assert profile.cost is probe.cost and profile.cost == start.combined(measured[1])
    assert profile.cost.wall_s > 0.0
