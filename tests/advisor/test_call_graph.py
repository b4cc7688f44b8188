"""Components and subtree sums of call graphs: chains, shared callees, recursion, cycles."""

from __future__ import annotations

import pytest

from advisor.call_graph import components, subtree_sums


def test_components_come_callees_first_and_group_each_cycle() -> None:
    # a -> b -> c -> b (a cycle), c -> d; e stands alone
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"b": 1, "d": 3}}
    found = [sorted(component) for component in components(["a", "b", "c", "d", "e"], edges)]
    assert sorted(map(tuple, found)) == [("a",), ("b", "c"), ("d",), ("e",)]
    assert found.index(["d"]) < found.index(["b", "c"]) < found.index(["a"])


def test_edges_to_nodes_outside_the_graph_are_ignored() -> None:
    assert components(["a"], {"a": {"elsewhere": 5}}) == [["a"]]


def test_a_long_chain_needs_no_recursion() -> None:
    nodes = list(range(20_000))
    edges = {node: {node + 1: 1} for node in nodes[:-1]}
    found = components(nodes, edges)
    assert len(found) == 20_000 and found[0] == [19_999] and found[-1] == [0]
    sums = subtree_sums({node: 1.0 for node in nodes}, {node: 1 for node in nodes}, {}, edges)
    assert sums[0] == 20_000.0 and sums[19_999] == 1.0


def test_a_shared_callee_is_shared_by_calls_and_self_calls_are_not_outside_calls() -> None:
    # a -> c x300, b -> c x100, c -> c x600 (recursion: 1000 calls, 400 from outside)
    edges = {"a": {"c": 300}, "b": {"c": 100}, "c": {"c": 600}}
    sums = subtree_sums({"a": 1.0, "b": 2.0, "c": 4.0}, {"a": 1, "b": 1, "c": 1000}, {}, edges)
    assert sums == pytest.approx({"a": 1.0 + 3.0, "b": 2.0 + 1.0, "c": 4.0})


def test_in_a_cycle_each_function_gets_its_share_by_total_time() -> None:
    # main -> even <-> odd: the cycle's sum is both functions' own; even entered it (its total
    # time covers it all), odd's covers 90% of it
    edges = {"main": {"even": 1}, "even": {"odd": 50}, "odd": {"even": 49}}
    sums = subtree_sums({"main": 1.0, "even": 2.0, "odd": 3.0}, {"main": 1, "even": 50, "odd": 50},
                        {"main": 11.0, "even": 10.0, "odd": 9.0}, edges)
    assert sums == pytest.approx({"main": 6.0, "even": 5.0, "odd": 4.5})


def test_many_functions_that_all_call_each_other() -> None:
    """Walked path by path, 10 such functions took 110 s (12: hours)."""
    names = [f"f{number}" for number in range(40)]
    edges = {name: {other: 10 for other in names if other != name} for name in names}
    sums = subtree_sums({name: 1.0 for name in names}, {name: 390 for name in names},
                        {name: 5.0 for name in names}, edges)
    assert sums == pytest.approx({name: 40.0 for name in names})


def test_the_sums_do_not_depend_on_the_order_of_the_graph() -> None:
    edges = {"a": {"b": 1, "c": 2}, "b": {"c": 1, "a": 1}, "c": {"d": 4}, "d": {}}
    own = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    calls = {"a": 2, "b": 1, "c": 3, "d": 4}
    times = {"a": 1.0, "b": 0.5, "c": 0.7, "d": 0.4}
    forward = subtree_sums(own, calls, times, edges)
    backward = subtree_sums(dict(reversed(own.items())), dict(reversed(calls.items())),
                            dict(reversed(times.items())), {k: dict(reversed(v.items())) for k, v in
                                                             reversed(edges.items())})
    assert forward == backward
