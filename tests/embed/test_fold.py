"""The route table's fold in C (_fold.c) against its Python loop: the same batch of
unfolded requests, folded each way into fresh tables, must leave every aggregate and
histogram equal to the bit, for any wall time and breakdown (negative parts are clamped,
tiny and huge walls land in the first and last buckets), and entries whose aggregate is not
a plain RouteAggregate are counted by the Python function."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.embed import routes
from advisor.embed.routes import FOLD_EVERY, RouteAggregate, RouteTable

pytestmark = pytest.mark.skipif(routes._fold is None, reason="the C fold was not built")

ROUTES = ("GET /a", "GET /b", "POST /c")
walls = st.one_of(st.floats(min_value=-1.0, max_value=1e6, allow_nan=False),
                  st.floats(min_value=1e-9, max_value=1e-5), st.floats(min_value=1e-4, max_value=0.5))
parts = st.floats(min_value=-0.01, max_value=10.0, allow_nan=False)
requests = st.lists(st.tuples(st.sampled_from(ROUTES), walls, parts, parts, parts, parts, st.booleans()),
                    max_size=3 * FOLD_EVERY)


def fold_into(table: RouteTable, batch: list[tuple[Any, ...]], in_c: bool) -> None:
    """Fold (route name, wall, ...) entries into the table, in C or in Python."""
    fold_entries(table, batch, in_c)


def state(table: RouteTable) -> dict[str, tuple[Any, ...]]:
    """Every slot of every aggregate and its histogram (floats as their bits: -0.0 != 0.0)."""
    def exact(value: Any) -> Any:
        return value.hex() if isinstance(value, float) else value

    return {name: (tuple(exact(getattr(aggregate, slot)) for slot in RouteAggregate.__slots__
                         if slot not in ("histogram", "samples")),
                   tuple(aggregate.histogram.counts), aggregate.histogram.count,
                   exact(aggregate.histogram.largest), exact(aggregate.histogram.smallest))
            for name, aggregate in table.named.items()}


@settings(max_examples=60, deadline=None)
@given(batch=requests)
def test_the_c_fold_leaves_the_numbers_of_the_python_loop(batch: list[tuple[Any, ...]]) -> None:
    assert_folds_alike(batch)


def assert_folds_alike(batch: list[tuple[Any, ...]]) -> None:
    in_c, in_python = RouteTable(), RouteTable()
    fold_into(in_c, batch, in_c=True)
    fold_into(in_python, batch, in_c=False)
    assert not in_c.unfolded
    assert state(in_c) == state(in_python)


def test_a_fold_adds_to_what_the_routes_had() -> None:
    in_c, in_python = RouteTable(), RouteTable()
    first = [("GET /a", 0.02, 0.01, 0.0, 0.01, 0.0, False)] * 5
    second = [("GET /a", 0.5, 0.1, 0.2, 0.1, 0.1, True), ("GET /b", 3e-7, 0.0, 0.0, 0.0, 3e-7, False)]
    for table, in_c_too in ((in_c, True), (in_python, False)):
        fold_into(table, first, in_c_too)
        fold_into(table, second, in_c_too)
    assert state(in_c) == state(in_python)
    aggregate = in_c.named["GET /a"]
    assert aggregate.count == aggregate.measured == aggregate.loop_requests == 6 and aggregate.errors == 1
    assert aggregate.histogram.largest == 0.5 and math.isclose(aggregate.wall_s, 5 * 0.02 + 0.5)


class CountedAggregate(RouteAggregate):
    """Not a plain RouteAggregate: the C fold leaves it to the Python function."""

    __slots__ = ()


def test_an_aggregate_that_is_not_plain_is_counted_in_python() -> None:
    tables = RouteTable(), RouteTable()
    for table, in_c in zip(tables, (True, False), strict=True):
        table._routes["GET /odd"] = CountedAggregate("GET /odd")
        fold_into(table, [("GET /odd", 0.01, 0.004, 0.0, 0.006, 0.0, False), ("GET /a", 0.02, 0.02, 0.0, 0.0, 0.0,
                                                                            True)], in_c)
    assert state(tables[0]) == state(tables[1])
    assert tables[0].named["GET /odd"].count == 1 and tables[0].named["GET /a"].errors == 1


def test_a_nan_wall_fails_as_the_python_loop_does() -> None:
    for in_c in (True, False):
        with pytest.raises(ValueError):
            fold_into(RouteTable(), [("GET /a", math.nan, 0.0, 0.0, 0.0, 0.0, False)], in_c)


# While tracing pauses (advisor.embed.windows): a request timed only (its parts None), or
# counted only (the aggregate itself; a server error's tuple has None for its wall time)
paused = st.one_of(
    st.tuples(st.sampled_from(ROUTES), walls, st.just(None), st.just(None), st.just(None), st.just(None),
              st.booleans()),
    st.tuples(st.sampled_from(ROUTES), st.just(None), st.just(None), st.just(None), st.just(None), st.just(None),
              st.booleans()),
    st.tuples(st.sampled_from(ROUTES)))
mixed = st.lists(st.one_of(requests.filter(bool).map(lambda batch: batch[0]), paused), max_size=3 * FOLD_EVERY)


def entry_of(table: RouteTable, item: tuple[Any, ...]) -> Any:
    aggregate = table.route(item[0])
    return aggregate if len(item) == 1 else (aggregate, *item[1:])


def fold_entries(table: RouteTable, batch: list[tuple[Any, ...]], in_c: bool) -> None:
    table.unfolded.extend(entry_of(table, item) for item in batch)
    saved = routes._fold
    routes._fold = saved if in_c else None
    try:
        table.fold()
    finally:
        routes._fold = saved


def test_a_paused_request_counts_without_a_breakdown() -> None:
    for in_c in (True, False):
        table = RouteTable()
        fold_entries(table, [("GET /a", 0.02, 0.01, 0.0, 0.01, 0.0, False),  # measured
                             ("GET /a", 0.04, None, None, None, None, False),  # timed only
                             ("GET /a", None, None, None, None, None, True),  # counted: a server error
                             ("GET /a",)], in_c)  # counted
        aggregate = table.named["GET /a"]
        assert (aggregate.count, aggregate.errors, aggregate.measured, aggregate.histogram.count) == (4, 1, 1, 2)
        assert aggregate.wall_s == 0.02 and aggregate.histogram.largest == 0.04


@settings(max_examples=60, deadline=None)
@given(batch=mixed)
def test_requests_counted_while_tracing_paused_fold_alike(batch: list[tuple[Any, ...]]) -> None:
    assert_folds_alike(batch)
