"""Deep mode's overhead correction on hand-built yappi stats.

Each profile below is built from a bare program whose self times are known: yappi's
stats are those times plus its per-call cost (``callee_s`` in the callee's own time,
``caller_s`` in the caller's), so the correction must give the bare times back.
"""

from __future__ import annotations

import pytest

from advisor.deep_attribution import Key, Totals, aggregate, corrected, profiler_seconds
from advisor.probes.deep import CallCost, DeepFunction

FILE = "/app/app.py"
COST = CallCost(caller_s=1e-7, callee_s=2e-7, wall_s=4e-7, recursive_wall_s=9e-7)
APPROX = 1e-12


def fn(name: str, ncall: int, tsub: float, ttot: float, children: list[tuple[str, int, float, float]] = (),
       ctx: int = 1, line: int | None = None) -> DeepFunction:
    """A DeepFunction of FILE; children are (name, calls, tsub, ttot) of functions in FILE."""
    return DeepFunction(FILE, name, line if line is not None else _line(name), ncall, tsub, ttot, ctx, 0,
                        [(FILE, child, _line(child), calls, sub, tot) for child, calls, sub, tot in children])


def _line(name: str) -> int:
    return 10 + sum(map(ord, name)) % 500


def key(name: str) -> Key:
    return FILE, name, _line(name)


def correct(functions: list[DeepFunction], cost: CallCost = COST) -> dict[Key, tuple[float, float]]:
    totals, edges = aggregate(functions)
    return corrected(totals, edges, cost)


# -- aggregate ------------------------------------------------------------------------------

def test_aggregate_sums_a_function_over_contexts_and_counts_its_edges() -> None:
    functions = [
        fn("main", 1, 0.01, 0.05, [("leaf", 300, 0.003, 0.003), ("other", 2, 0.001, 0.001)], ctx=1),
        fn("main", 1, 0.02, 0.06, [("leaf", 100, 0.001, 0.001)], ctx=2),
        fn("leaf", 400, 0.004, 0.004),
    ]
    totals, edges = aggregate(functions)
    assert totals[key("main")] == Totals(ncall=2, tsub=pytest.approx(0.03), ttot=pytest.approx(0.11), calls_made=402)
    assert totals[key("leaf")] == Totals(ncall=400, tsub=0.004, ttot=0.004, calls_made=0)
    assert dict(edges[key("main")]) == {key("leaf"): 400, key("other"): 2}
    assert key("leaf") not in edges
    # a callee that has no stats of its own is an edge, not a function
    assert key("other") not in totals


def test_aggregate_keeps_same_named_functions_of_different_lines_apart() -> None:
    totals, _ = aggregate([fn("f", 1, 0.1, 0.1, line=3), fn("f", 2, 0.2, 0.2, line=30)])
    assert totals[(FILE, "f", 3)].ncall == 1
    assert totals[(FILE, "f", 30)].ncall == 2


# -- corrected --------------------------------------------------------------------------------

def profiled_chain() -> tuple[list[DeepFunction], dict[str, tuple[float, float]]]:
    """main -> helper (x1000) -> leaf (x1000 each, 1e6 in all), as yappi reports them, and the
    bare (self, total) times."""
    bare = {"leaf": 0.05, "helper": 0.02, "main": 0.01}
    leaf_tsub = bare["leaf"] + 1_000_000 * COST.callee_s
    helper_tsub = bare["helper"] + 1000 * COST.callee_s + 1_000_000 * COST.caller_s
    main_tsub = bare["main"] + 1 * COST.callee_s + 1000 * COST.caller_s
    helper_ttot = helper_tsub + leaf_tsub
    main_ttot = main_tsub + helper_ttot
    functions = [
        fn("main", 1, main_tsub, main_ttot, [("helper", 1000, helper_tsub, helper_ttot)]),
        fn("helper", 1000, helper_tsub, helper_ttot, [("leaf", 1_000_000, leaf_tsub, leaf_tsub)]),
        fn("leaf", 1_000_000, leaf_tsub, leaf_tsub),
    ]
    expected = {"leaf": (0.05, 0.05), "helper": (0.02, 0.07), "main": (0.01, 0.08)}
    return functions, expected


def test_self_time_loses_callee_and_caller_cost_and_total_loses_the_subtree() -> None:
    functions, expected = profiled_chain()
    times = correct(functions)
    for name, (self_s, total_s) in expected.items():
        assert times[key(name)][0] == pytest.approx(self_s, abs=APPROX), f"{name} self"
        assert times[key(name)][1] == pytest.approx(total_s, abs=APPROX), f"{name} total"


def test_the_correction_does_not_depend_on_the_order_of_the_stats() -> None:
    functions, _ = profiled_chain()
    assert correct(functions) == correct(list(reversed(functions)))


def test_without_cost_nothing_changes() -> None:
    functions, _ = profiled_chain()
    times = correct(functions, CallCost())
    for function in functions:
        assert times[key(function.name)] == (function.tsub, function.ttot)


def test_a_shared_callee_charges_each_caller_its_share_of_the_calls() -> None:
    # a -> c (x300), b -> c (x100): each caller's total loses its share of c's overhead
    c_own = 400 * COST.callee_s
    c_tsub = 0.004 + c_own
    a_tsub = 0.01 + COST.callee_s + 300 * COST.caller_s
    b_tsub = 0.02 + COST.callee_s + 100 * COST.caller_s
    functions = [
        fn("a", 1, a_tsub, a_tsub + 0.003 + 300 * COST.callee_s, [("c", 300, 0.0, 0.0)]),
        fn("b", 1, b_tsub, b_tsub + 0.001 + 100 * COST.callee_s, [("c", 100, 0.0, 0.0)]),
        fn("c", 400, c_tsub, c_tsub),
    ]
    times = correct(functions)
    assert times[key("c")] == pytest.approx((0.004, 0.004), abs=APPROX)
    assert times[key("a")] == pytest.approx((0.01, 0.013), abs=APPROX)
    assert times[key("b")] == pytest.approx((0.02, 0.021), abs=APPROX)


def fib_under_main() -> list[DeepFunction]:
    """main -> fib(20): 21891 fib calls, 21890 of them made by fib itself and 1 by main; yappi's
    ttot of a recursive function is its outermost calls' time. Bare: fib 2 ms, main 1 ms self."""
    calls, inner = 21_891, 21_890
    fib_tsub = 0.002 + calls * COST.callee_s + inner * COST.caller_s
    main_tsub = 0.001 + COST.callee_s + 1 * COST.caller_s
    return [
        fn("fib", calls, fib_tsub, fib_tsub, [("fib", inner, 0.0, 0.0)]),
        fn("main", 1, main_tsub, main_tsub + fib_tsub, [("fib", 1, fib_tsub, fib_tsub)]),
    ]


def test_direct_recursion_is_corrected_once_without_looping() -> None:
    times = correct(fib_under_main())
    assert times[key("fib")] == pytest.approx((0.002, 0.002), abs=APPROX)
    assert times[key("main")][0] == pytest.approx(0.001, abs=APPROX)


def test_the_caller_of_a_recursive_function_loses_its_whole_overhead() -> None:
    times = correct(fib_under_main())
    assert times[key("main")][1] == pytest.approx(0.003, abs=APPROX)


def test_mutual_recursion_terminates_with_sane_times() -> None:
    functions = [
        fn("even", 50, 0.01, 0.03, [("odd", 50, 0.0, 0.0)]),
        fn("odd", 50, 0.01, 0.03, [("even", 49, 0.0, 0.0)]),
        fn("main", 1, 0.001, 0.031, [("even", 1, 0.0, 0.0)]),
    ]
    times = correct(functions)
    for function in functions:
        self_s, total_s = times[key(function.name)]
        assert 0.0 <= self_s <= function.tsub
        assert self_s <= total_s <= function.ttot


def test_mutual_recursion_correction_does_not_depend_on_the_order_of_the_stats() -> None:
    functions = [
        fn("even", 50, 0.01, 0.03, [("odd", 50, 0.0, 0.0)]),
        fn("odd", 50, 0.01, 0.03, [("even", 49, 0.0, 0.0)]),
    ]
    assert correct(functions) == correct(list(reversed(functions)))


def test_overhead_larger_than_the_time_is_clamped_and_total_stays_at_least_self() -> None:
    functions = [
        fn("tiny", 1000, 1000 * COST.callee_s * 0.5, 1000 * COST.callee_s * 0.5),
        fn("caller", 1, 0.0002, 0.0002 + 1000 * COST.callee_s * 0.5, [("tiny", 1000, 0.0, 0.0)]),
    ]
    times = correct(functions)
    assert times[key("tiny")] == (0.0, 0.0)
    self_s, total_s = times[key("caller")]
    assert self_s == pytest.approx(0.0002 - 1000 * COST.caller_s - COST.callee_s, abs=APPROX)
    assert total_s >= self_s


# -- profiler_seconds ---------------------------------------------------------------------------

def test_profiler_seconds_charge_recursive_calls_at_the_recursive_cost() -> None:
    functions = [
        fn("fib", 21_891, 0.01, 0.01, [("fib", 21_890, 0.0, 0.0)]),
        fn("main", 1, 0.001, 0.011, [("fib", 1, 0.0, 0.0)]),
        fn("leaf", 1000, 0.001, 0.001),
    ]
    expected = 21_891 * COST.recursive_wall_s + (1 + 1000) * COST.wall_s
    assert profiler_seconds(functions, COST) == pytest.approx(expected, rel=1e-12)


def test_profiler_seconds_of_nothing_is_zero() -> None:
    assert profiler_seconds([], COST) == 0.0
    assert profiler_seconds([fn("f", 10, 0.1, 0.1)], CallCost()) == 0.0
