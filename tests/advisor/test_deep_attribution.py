"""Deep mode's overhead correction on hand-built yappi stats.

Each profile below is built from a bare program whose self times are known: yappi's
stats are those times plus its per-call cost (``callee_s`` in the callee's own time,
``caller_s`` in the caller's), so the correction must give the bare times back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.code_shape import SHAPES
from advisor.deep_attribution import (
    BOUND_MARGIN,
    Key,
    Totals,
    UnitCost,
    aggregate,
    bytecode_seconds,
    corrected,
    drop_c_functions,
    own_parts,
    profiler_seconds,
)
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


# -- C functions and the bytecode factor --------------------------------------------------------

C_COST = CallCost(caller_s=1e-7, callee_s=2e-7, wall_s=4e-7, builtin_wall_s=5e-7, builtin_callee_s=1e-7,
                  builtin_method_wall_s=7e-7, bytecode_factor=2.0, instruction_s=1e-8)
APPEND = "<method 'append' of 'list' objects>"


def builtin(name: str, ncall: int, tsub: float, children: list[tuple[str, int, float, float]] = ()) -> DeepFunction:
    """A C function as yappi names it (module "builtins", line 0)."""
    return DeepFunction("builtins", name, 0, ncall, tsub, tsub, 1, 0,
                        [(FILE, child, _line(child), calls, sub, tot) for child, calls, sub, tot in children],
                        builtin=True)


def c_child(name: str, calls: int) -> tuple[str, str, int, int, float, float]:
    return "builtins", name, 0, calls, 0.0, 0.0


def test_c_calls_are_counted_apart_and_charged_their_own_cost() -> None:
    """A loop of 1,000 len() and 500 list.append() calls: 0.01 s of bytecode bare, 20 µs
    in the two C functions bare. Under yappi the bytecode took twice as long, each C call
    put its callee share in the C function and the rest in the caller."""
    bare_own, bare_len, bare_append = 0.01, 1e-5, 1e-5
    in_len, in_append = bare_len + 1000 * C_COST.builtin_callee_s, bare_append + 500 * C_COST.builtin_callee_s
    tsub = (2.0 * bare_own + C_COST.callee_s + 1000 * (C_COST.builtin_wall_s - C_COST.builtin_callee_s)
            + 500 * (C_COST.builtin_method_wall_s - C_COST.builtin_callee_s))
    functions = [DeepFunction(FILE, "loop", _line("loop"), 1, tsub, tsub + in_len + in_append, 1, 0,
                              [c_child("len", 1000), c_child(APPEND, 500)]),
                 builtin("len", 1000, in_len), builtin(APPEND, 500, in_append)]
    totals, edges = aggregate(functions)
    assert totals[key("loop")].c_calls_made == 1500 and totals[key("loop")].c_methods_made == 500
    drop_c_functions(totals, edges)
    assert list(totals) == [key("loop")] and not edges[key("loop")]
    self_s, total_s = corrected(totals, edges, C_COST)[key("loop")]
    assert self_s == pytest.approx(bare_own, rel=1e-9)
    assert total_s == pytest.approx(bare_own + bare_len + bare_append, rel=1e-9)
    # the unit's compute loses every call's whole cost, by kind
    assert profiler_seconds(functions, C_COST) == pytest.approx(
        C_COST.wall_s + 1000 * C_COST.builtin_wall_s + 500 * C_COST.builtin_method_wall_s, rel=1e-12)
    assert bytecode_seconds(own_parts(totals, C_COST)) == pytest.approx(2.0 * bare_own, rel=1e-9)


def test_c_functions_leave_the_graph_with_their_edges() -> None:
    """sorted(), called by `f`, calls its key: with sorted gone, f and the key are not linked
    (linked through, greenlet's switch would tie a hub to every greenlet's functions)."""
    functions = [
        DeepFunction(FILE, "f", _line("f"), 1, 0.01, 0.02, 1, 0, [c_child("sorted", 2), ("x.py", "g", 1, 1, 0, 0)]),
        builtin("sorted", 2, 0.005, [("key", 30, 0.001, 0.001)]),
        fn("key", 30, 0.001, 0.001),
    ]
    totals, edges = aggregate(functions)
    drop_c_functions(totals, edges)
    assert set(totals) == {key("f"), key("key")}
    assert dict(edges[key("f")]) == {("x.py", "g", 1): 1}
    assert ("builtins", "sorted", 0) not in edges


def test_a_function_without_a_loop_is_slowed_only_as_far_as_its_instructions_go(tmp_path: Path) -> None:
    """`encode` has no loop: of its 0.5 s a call, its few instructions can take a few µs;
    the rest is C code it called unseen (json's encoder), which yappi does not slow. `crunch`
    loops: all of its own time is bytecode."""
    source = tmp_path / "app.py"
    source.write_text("def encode(o):\n    return _c_encoder(o, 0)\n\n\n"
                      "def crunch(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n")
    path = str(source)
    instructions = SHAPES.find(path, "encode", 1)
    assert instructions is not None and not instructions.loops
    functions = [DeepFunction(path, "encode", 1, 2, 1.0 + 2 * C_COST.callee_s, 1.0, 1, 0),
                 DeepFunction(path, "crunch", 5, 1, 0.4 + C_COST.callee_s, 0.4, 1, 0)]
    totals, edges = aggregate(functions)
    times = corrected(totals, edges, C_COST)
    bound = 2 * instructions.instructions * BOUND_MARGIN * C_COST.instruction_s
    assert times[(path, "encode", 1)][0] == pytest.approx(1.0 - bound / 2, rel=1e-9)
    assert times[(path, "crunch", 5)][0] == pytest.approx(0.2, rel=1e-9)
    assert bytecode_seconds(own_parts(totals, C_COST)) == pytest.approx(bound + 0.4, rel=1e-9)


def test_a_unit_loses_its_calls_and_its_bytecodes_slow_down_never_more_than_it_computed() -> None:
    cost = UnitCost(calls_s=1.0, bytecode_s=0.8, factor=2.0)
    assert cost.taken_out(2.0) == pytest.approx(1.0 + 0.4)
    # the bytecode time (wall, from yappi) above what the calls leave of the compute (CPU)
    assert cost.taken_out(1.5) == pytest.approx(1.0 + 0.25)
    assert cost.taken_out(0.5) == pytest.approx(1.0)
    assert UnitCost(calls_s=1.0, bytecode_s=0.8).taken_out(2.0) == pytest.approx(1.0)  # factor 1: none


def test_only_functions_whose_bound_could_matter_have_their_file_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[Key] = []
    monkeypatch.setattr(SHAPES, "find", lambda *key: looked_up.append(key))
    functions = [fn("short", 1, 0.0005, 0.0005),  # under a millisecond of own time
                 fn("many", 500_000, 0.5, 0.5),  # 1 µs a call: within what 50 instructions can take
                 fn("slow", 10, 0.5, 0.5)]  # 50 ms a call
    totals, _ = aggregate(functions)
    bytecode_seconds(own_parts(totals, C_COST))
    assert looked_up == [key("slow")]
