"""Deep mode's calibration of yappi's per-call cost.

The paired timing and the cost per kind of call are checked on made-up numbers (exact);
the start-up plus end-of-run calibration on a real yappi run, where what is checked is
exact too: the run's call counts, and that the second calibration neither erases nor
pollutes the run's stats.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from advisor.deep_attribution import call_cost, profiler_seconds
from advisor.probes import deep
from advisor.probes.deep import CallCost, DeepFunction, DeepProbe, _extra

COST = CallCost(caller_s=1.0, callee_s=2.0, wall_s=3.0, recursive_wall_s=4.0, method_wall_s=5.0,
                init_wall_s=6.0, recursive_method_wall_s=7.0, builtin_wall_s=8.0, builtin_callee_s=1.5,
                builtin_method_wall_s=9.0, bytecode_factor=2.0, instruction_s=0.1)


def scaled(cost: CallCost, by: float) -> CallCost:
    """Every cost `by` times as high, the bytecode factor's excess over 1 too."""
    return CallCost(**{name: (1.0 + (value - 1.0) * by if name == "bytecode_factor" else value * by)
                       for name, value in vars(cost).items()})


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

    assert _extra(yappi, timer, pairs=5) == pytest.approx((3.0, 1.0))
    assert yappi.starts == 5 and not yappi.running


def test_the_cost_per_call_leaves_out_the_loops_slower_bytecode() -> None:
    # a loop of 10 calls: 1.0 s bare, 3.0 s more under yappi, whose bytecode runs 1.5x slower:
    # 0.5 s of the 3.0 is the loop's bytecode, 2.5 s its 10 calls
    assert deep._per_call((3.0, 1.0), 10, 1.5) == pytest.approx(0.25)
    assert deep._per_call((3.0, 1.0), 10, 1.0) == pytest.approx(0.3)
    assert deep._per_call((0.2, 1.0), 10, 1.5) == 0.0  # never below nothing


def test_the_bytecode_factor_and_an_instructions_time_come_from_the_paired_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    yappi = FakeYappi()
    yappi.clear_stats = lambda: None  # type: ignore[attr-defined]
    # 1,000 rounds of the loop: 1.0 s bare, 0.9 s more under yappi
    monkeypatch.setattr(deep, "_extra", lambda *args, **options: (0.9, 1.0))
    factor, instruction = deep._bytecode_factor(yappi, 1_000, threads=False)
    assert factor == pytest.approx(1.9)
    assert instruction == pytest.approx(1.9 / (1_000 * deep._loop_instructions(deep._bytecode)))
    monkeypatch.setattr(deep, "_extra", lambda *args, **options: (0.9, 0.0))  # a clock that did not move
    assert deep._bytecode_factor(yappi, 1_000, threads=False) == (1.0, 0.0)


def test_the_calibrations_loop_is_counted_from_its_bytecode() -> None:
    # _bytecode's loop: from FOR_ITER to the backward jump, both branches of its `if`
    assert 20 <= deep._loop_instructions(deep._bytecode) <= 40


def test_calibrations_that_agree_are_averaged_and_ones_that_do_not_give_the_lower() -> None:
    assert vars(COST.combined(scaled(COST, 1.1))) == pytest.approx(vars(scaled(COST, 1.05)))
    slow_spell = scaled(COST, 1.75)
    assert COST.combined(slow_spell) == COST
    assert slow_spell.combined(COST) == COST


def test_a_slow_spell_in_one_loop_of_a_calibration_costs_only_that_field() -> None:
    spell = CallCost(**{**vars(scaled(COST, 1.1)), "method_wall_s": 1.7 * COST.method_wall_s})
    combined = COST.combined(spell)
    assert combined.method_wall_s == COST.method_wall_s
    assert combined.wall_s == pytest.approx(1.05 * COST.wall_s)
    assert combined.bytecode_factor == pytest.approx(2.05)
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
    assert not names & {"_empty", "_caller", "_reference_loop", "_reference_callee", "_fib", "_Point.norm",
                        "_Point.__init__", "_Link.length", "_bytecode",
                        "_lengths", "_counts", "len", "<method 'count' of 'list' objects>"}, names
    for cost in measured:  # every part was measured
        assert cost.bytecode_factor > 1.0 and cost.instruction_s > 0.0, cost
        assert cost.builtin_wall_s > 0.0 and cost.builtin_method_wall_s >= cost.builtin_wall_s, cost
    # a second measure was taken at the end, and the report's cost is the two made one
    # (their mean, or the lower when they disagree: either may equal the start-up's)
    assert len(measured) == 2 and measured[0] == start
    assert profile.cost is probe.cost and profile.cost == start.combined(measured[1])
    assert profile.cost.wall_s > 0.0
    # and each at the speed of its own reference loop (no speed sample: no sampler ran here)
    assert all(cost.reference_s > 0.0 for cost in measured)
    assert profile.speed_samples == 0 and profile.speed_scale == 1.0


def test_a_speed_change_inside_a_calibration_leaves_its_measures_alone() -> None:
    """A machine twice as slow from the third pair on: the loops and the reference beside
    them take twice as long, and each pair divided by its reference is what it was."""
    yappi = FakeYappi()
    pair = [0]

    def speed() -> float:
        return 2.0 if pair[0] >= 3 else 1.0

    def timer() -> float:
        if not yappi.running:
            pair[0] += 1
            return 1.0 * speed()
        return 4.0 * speed()

    reference = deep.Reference(timer=lambda: 0.5 * speed())
    assert _extra(yappi, timer, pairs=5, reference=reference) == pytest.approx((6.0, 2.0))  # in references
    assert reference.seen == [0.5, 0.5, 1.0, 1.0, 1.0] and reference.typical == 1.0
    assert reference.since(2) == 1.0 and reference.since(5) == 1.0  # none since: a unit of 1
    # a clock that did not move: the references so far stand for it (none: a unit of 1)
    assert deep.Reference(timer=lambda: 0.0).take() == 1.0
    reference = deep.Reference(timer=iter([0.4, 0.6, 0.0]).__next__)
    assert [reference.take() for _ in range(3)] == [0.4, 0.6, 0.5] and reference.seen == [0.4, 0.6]
    # without a reference the medians of seconds take the slow pairs' side
    pair[0] = 0
    assert _extra(yappi, timer, pairs=5) == pytest.approx((6.0, 2.0))


def test_calibrations_at_two_speeds_are_combined_at_the_speed_between() -> None:
    """The end's calibration on a machine 1.5x as slow (its reference too): the same costs,
    not a disagreement, so not the lower one; both taken to the speed between the two."""
    start = CallCost(**{**vars(COST), "reference_s": 1.0})
    end = start.scaled(1.5)
    assert end.reference_s == 1.5 and end.bytecode_factor == COST.bytecode_factor
    combined = start.combined(end)
    assert vars(combined) == pytest.approx(vars(start.scaled(1.25)))
    # without references (an older calibration), a disagreement as before
    assert COST.combined(COST.scaled(1.5)) == COST


def test_the_speed_is_the_harmonic_mean_of_the_samples() -> None:
    samples = deep.SpeedSamples()
    assert samples.typical == 0.0
    for value in (1.0, 1.0, 4.0, 0.0, -1.0):  # a clock that did not move counts for nothing
        samples.add(value)
    assert samples.count == 3
    assert samples.typical == pytest.approx(3 / (1 + 1 + 0.25))


def test_the_run_cost_follows_the_main_threads_speed_once_sampled_enough() -> None:
    probe = DeepProbe()
    calibrated = CallCost(**{**vars(COST), "reference_s": 2.0})
    for _ in range(deep.MIN_SPEED_SAMPLES - 1):
        probe.speed.add(3.0)
    assert probe.run_cost(calibrated) == (calibrated, 1.0)  # too few samples
    probe.speed.add(3.0)
    cost, scale = probe.run_cost(calibrated)
    assert scale == pytest.approx(1.5)
    assert vars(cost) == pytest.approx(vars(calibrated.scaled(1.5)))
    assert probe.run_cost(COST) == (COST, 1.0)  # no reference measured: nothing to scale by


def test_a_calibration_that_saw_a_faster_machine_is_scaled_back_by_the_runs_samples(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibrations caught in a spell ten times as fast as the run (their costs and
    their reference a tenth of the truth): the main thread's speed samples, taken by the
    pending calls a sampler-like thread's ticks ask for, scale them back (~10x)."""
    true_costs: list[CallCost] = []

    def faster(yappi: object, **options: object) -> CallCost:
        true_costs.append(deep._measure_calls(yappi, 20_000, True))
        return true_costs[-1].scaled(0.1)

    monkeypatch.setattr(deep, "_calibrate", faster)
    monkeypatch.setattr(deep, "others_run", lambda ignored=(): False)
    probe = DeepProbe()
    probe.prepare()
    done = threading.Event()

    def ticks() -> None:  # the sampler's part: a tick every 10 ms
        while not done.wait(0.01):
            probe.watch(time.perf_counter())

    ticker = threading.Thread(target=ticks, daemon=True)
    probe.start()
    ticker.start()
    try:
        deadline = time.monotonic() + 10.0
        while probe.speed.count < deep.MIN_SPEED_SAMPLES + 5 and time.monotonic() < deadline:
            for index in range(1_000):
                busy(index)
    finally:
        done.set()
        ticker.join()
        probe.stop()
    profile = probe.drain()
    probe.clear()
    assert profile.speed_samples >= deep.MIN_SPEED_SAMPLES + 5
    assert 4.0 < profile.speed_scale < 25.0, profile.speed_scale
    truth = true_costs[0].combined(true_costs[1])
    assert 0.4 * truth.wall_s < profile.cost.wall_s < 2.5 * truth.wall_s, (profile.cost, truth)
    calls = {f.name: f.ncall for f in profile.functions if f.module == __file__}
    assert calls.get("busy", 0) >= 1_000 and "_reference_loop" not in calls


def test_call_on_main_runs_a_function_in_the_main_thread_and_keeps_its_failures() -> None:
    _yappi_context = pytest.importorskip("advisor.probes._yappi_context")
    ran: list[str] = []

    def sample() -> None:
        ran.append(threading.current_thread().name)
        raise RuntimeError("a probe's failure stays in the probe")

    asked: list[bool] = []
    worker = threading.Thread(target=lambda: asked.append(_yappi_context.call_on_main(sample)))
    worker.start()
    worker.join()
    deadline = time.monotonic() + 5.0
    while not ran and time.monotonic() < deadline:
        sum(range(100))  # the main thread runs instructions: the pending call among them
    assert asked == [True] and ran == ["MainThread"]
    with pytest.raises(TypeError):
        _yappi_context.call_on_main(42)
