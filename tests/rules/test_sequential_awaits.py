"""sequential-awaits (ADV103) on hand-built reports: fires on independent awaits in a loop,
stays silent on dependent loops (tokens, cursors, stop-on-result), sleeps and stream reads."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import AwaitSite, CodePlace, Finding, Report, UnitFunction
from advisor.rules.concurrency.sequential_awaits import loop_await, loop_dependency

APP = """\
import asyncio


async def fetch(port, sku):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sku.encode())
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    return answer


async def quote_all(port, skus):
    prices = {}
    for sku in skus:
        prices[sku] = await fetch(port, sku)
    return prices


async def main(port, skus):
    return await quote_all(port, skus)
"""
LOOP_LINE = 16  # prices[sku] = await fetch(port, sku)
CONNECT_LINE, READ_LINE = 5, 8
MAIN_LINE = 21


def findings(report: Report) -> list[Finding]:
    return list(analyze(report, select=["sequential-awaits"]).findings)


def place(file: str, line: int, function: str) -> CodePlace:
    return CodePlace(function=function, file=file, line=line)


def site(chain: list[CodePlace], io: float, calls: int = 1, suspensions: int = 1, waiting: float = 0.0,
         longest: float | None = None, **extra: Any) -> AwaitSite:
    return AwaitSite(function=chain[0].function, file=chain[0].file, line=chain[0].line, chain=chain,
                     suspensions=suspensions, calls=calls, io_s=io, waiting_s=waiting,
                     longest_s=io if longest is None else longest, **extra)


@pytest.fixture
def report_with(build_task: Callable[..., Any], build_report: Callable[..., Report],
                write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    """A report with one task whose await sites are given; `source` is written as app.py."""

    def build(sites: Callable[[str], list[AwaitSite]], source: str = APP, wall: float = 1.0,
              task_wall: float | None = None, count: int = 1, name: str = "Task-1",
              functions: tuple[UnitFunction, ...] = ()) -> Report:
        file = write_source("app.py", source)
        task = build_task(name, wall=task_wall or wall, io=0.9 * (task_wall or wall), count=count,
                          awaits=sites(file), target="app.main", functions=list(functions))
        return build_report([task], wall=wall)

    return build


def nested_sites(file: str, io: float = 0.7, items: int = 14) -> list[AwaitSite]:
    """The loop in quote_all(), awaited from main(): the probe counts one call at main's line."""
    outer = [place(file, MAIN_LINE, "app.main"), place(file, LOOP_LINE, "app.quote_all")]
    return [
        site([*outer, place(file, READ_LINE, "app.fetch")], io=io, suspensions=items),
        site([*outer, place(file, CONNECT_LINE, "app.fetch")], io=0.01, suspensions=2 * items),
    ]


def test_fires_at_the_awaited_call_in_the_loop_with_gather_fix(report_with: Callable[..., Report]) -> None:
    [finding] = findings(report_with(nested_sites))
    assert finding.code == "ADV103"
    assert (finding.location.file, finding.location.line, finding.location.function) == \
        ("app.py", LOOP_LINE, "app.quote_all")
    assert finding.evidence["calls"] == 14 and finding.evidence["calls_estimated"] is True
    # 0.71 s of I/O in 14 calls: all but one call's share would overlap
    assert finding.estimated_savings_s == pytest.approx(0.71 * 13 / 14, rel=1e-3)
    assert finding.severity == "high"
    assert finding.fix is not None
    assert "asyncio.gather(*(fetch(port, sku) for sku in skus))" in finding.fix
    assert finding.fix.startswith("prices.update(zip(skus, await asyncio.gather(")


def test_outermost_loop_uses_the_counted_calls_and_the_longest_call(build_task: Callable[..., Any],
                                                                    build_report: Callable[..., Report],
                                                                    write_source: Callable[[str, str], str]) -> None:
    loop = "    out = []\n    for sku in skus:\n        out.append(await fetch(port, sku))\n    return out\n"
    source = APP.replace("    return await quote_all(port, skus)\n", loop)
    file = write_source("app.py", source)
    line = MAIN_LINE + 2
    task = build_task("Task-1", wall=1.0, io=0.9, target="app.main", awaits=[
        site([place(file, line, "app.main"), place(file, READ_LINE, "app.fetch")], io=0.8, calls=8,
             suspensions=8, longest=0.2)])
    [finding] = findings(build_report([task], wall=1.0))
    assert finding.location.line == line
    assert finding.evidence["calls"] == 8 and finding.evidence["calls_estimated"] is False
    assert finding.estimated_savings_s == pytest.approx(0.8 - 0.2)  # the sum minus the longest call
    assert finding.fix is not None and finding.fix.startswith("out.extend(await asyncio.gather(*(fetch(port, sku)")


def test_a_per_level_call_count_from_the_probe_is_used_as_is(report_with: Callable[..., Report]) -> None:
    def sites(file: str) -> list[AwaitSite]:
        found = nested_sites(file)
        for entry in found:
            entry.level_calls = [1, 7, 1]  # type: ignore[attr-defined]
        return found

    [finding] = findings(report_with(sites))
    assert finding.evidence["calls"] == 7 and finding.evidence["calls_estimated"] is False


def test_deep_mode_counts_the_calls_of_the_awaited_coroutine(report_with: Callable[..., Report]) -> None:
    fetch = UnitFunction(function="app.fetch", file="app.py", line=4, calls=9, self_s=0.01, total_s=0.7)
    [finding] = findings(report_with(nested_sites, functions=(fetch,)))
    assert finding.evidence["calls"] == 9 and finding.evidence["calls_estimated"] is False
    assert finding.estimated_savings_s == pytest.approx(0.71 * 8 / 9, rel=1e-3)


def test_folded_tasks_running_the_loop_together_are_not_counted_twice(report_with: Callable[..., Report]) -> None:
    # four folded tasks, each 1 s of the 1 s run: the summed I/O overlapped four ways
    [finding] = findings(report_with(lambda file: nested_sites(file, io=2.8), task_wall=4.0, count=4,
                                     name="quote_all"))
    assert finding.estimated_savings_s == pytest.approx(2.81 * 13 / 14 / 4, rel=1e-3)


TOKEN_CHAIN = """\
import asyncio


async def session(client, steps):
    token = await client.login()
    for step in range(steps):
        reply = await client.call(step, token)
        token = reply.next_token
    return token
"""
CURSOR = """\
import asyncio


async def all_pages(client):
    pages = []
    cursor = ""
    while cursor is not None:
        page = await client.page(cursor)
        cursor = page.next
        pages.append(page)
    return pages
"""
STOP_ON_RESULT = """\
import asyncio


async def first_free(client, names):
    for name in names:
        answer = await client.lookup(name)
        if answer.free:
            return name
    return None
"""
STREAM = """\
import asyncio


async def read_lines(reader, count):
    lines = []
    for _ in range(count):
        lines.append(await reader.readline())
    return lines
"""
FOLD = """\
import asyncio


async def plan(port, items, budget):
    plans = []
    for item in items:
        reply = await fetch(port, item)
        budget, step = spend(reply, budget)
        plans.append(step)
    return plans
"""
CONNECTION = """\
import asyncio


async def copy_all(names):
    for name in names:
        conn = await connect(name)
        data = await conn.read()
        await store(name, data)
"""
COMPREHENSION = """\
import asyncio


async def sizes(client, urls):
    return [await client.size(url) for url in urls]
"""
ASYNC_FOR_HEADER = """\
import asyncio


async def drain(cursor):
    rows = []
    async for row in cursor.rows():
        rows.append(row)
    return rows
"""


def await_line(source: str, needle: str) -> int:
    return next(number for number, text in enumerate(source.splitlines(), 1) if needle in text)


@pytest.mark.parametrize(("source", "needle", "why"), [
    (TOKEN_CHAIN, "client.call", "token"),
    (CURSOR, "client.page", "condition"),
    (STOP_ON_RESULT, "client.lookup", "stops on a result"),
    (STREAM, "reader.readline", "same at every iteration"),
])
def test_dependent_loops_are_recognized(source: str, needle: str, why: str,
                                        write_source: Callable[[str, str], str]) -> None:
    file = write_source("loop.py", source)
    found, reason = loop_await(file, await_line(source, needle))
    assert found is not None
    assert reason is not None and why in reason


@pytest.mark.parametrize(("source", "needle"), [
    (APP, "await fetch(port, sku)"),
    (FOLD, "await fetch(port, item)"),  # the budget folds the replies; the fetches are independent
    (CONNECTION, "conn.read()"),  # conn comes from this iteration's own await
    (COMPREHENSION, "client.size"),
])
def test_independent_loops_are_recognized(source: str, needle: str, write_source: Callable[[str, str], str]) -> None:
    file = write_source("loop.py", source)
    found, reason = loop_await(file, await_line(source, needle))
    assert found is not None and reason is None


def test_comprehension_fix_replaces_the_comprehension(write_source: Callable[[str, str], str]) -> None:
    file = write_source("loop.py", COMPREHENSION)
    found, _ = loop_await(file, await_line(COMPREHENSION, "client.size"))
    assert found is not None and found.fix.startswith("await asyncio.gather(*(client.size(url) for url in urls))")


def test_an_async_for_header_or_a_line_outside_loops_is_no_loop_await(
        write_source: Callable[[str, str], str]) -> None:
    file = write_source("loop.py", ASYNC_FOR_HEADER)
    assert loop_await(file, await_line(ASYNC_FOR_HEADER, "async for")) == (None, None)
    file = write_source("app.py", APP)
    assert loop_await(file, MAIN_LINE) == (None, None)


def test_dependency_is_loop_carried_only() -> None:
    loop = ast.parse("for x in xs:\n    a = await f(x)\n    b = await g(a)\n").body[0]
    assert isinstance(loop, ast.For)
    second = loop.body[1]
    assert isinstance(second, ast.Assign) and isinstance(second.value, ast.Await)
    assert loop_dependency(loop, second.value.value, {}) is None
    carried = ast.parse("for x in xs:\n    b = await g(a, x)\n    a = await f(x)\n").body[0]
    assert isinstance(carried, ast.For)
    first = carried.body[0]
    assert isinstance(first, ast.Assign) and isinstance(first.value, ast.Await)
    assert loop_dependency(carried, first.value.value, {}) is not None


def _loop_sites(source: str, needle: str, io: float = 0.8, waiting: float = 0.0, calls: int = 8,
                function: str = "app.f") -> Callable[[str], list[AwaitSite]]:
    def sites(file: str) -> list[AwaitSite]:
        return [site([place(file, await_line(source, needle), function)], io=io, waiting=waiting, calls=calls,
                     suspensions=calls, longest=(io + waiting) / calls)]
    return sites


@pytest.mark.parametrize(("source", "needle"), [
    (TOKEN_CHAIN, "client.call"),
    (CURSOR, "client.page"),
    (STOP_ON_RESULT, "client.lookup"),
    (STREAM, "reader.readline"),
    (ASYNC_FOR_HEADER, "async for"),
])
def test_silent_on_dependent_loops(source: str, needle: str, report_with: Callable[..., Report]) -> None:
    assert findings(report_with(_loop_sites(source, needle), source=source)) == []


def test_silent_on_sleeps_in_a_loop(report_with: Callable[..., Report]) -> None:
    source = "import asyncio\n\n\nasync def tick(beats):\n    for beat in beats:\n        await asyncio.sleep(beat)\n"
    assert findings(report_with(_loop_sites(source, "asyncio.sleep", io=0.0, waiting=0.8), source=source)) == []


def test_silent_below_three_calls_or_a_small_share(report_with: Callable[..., Report]) -> None:
    assert findings(report_with(lambda file: nested_sites(file, items=2))) == []
    assert findings(report_with(lambda file: nested_sites(file, io=0.015), wall=1.0)) == []


def test_fires_on_an_independent_fold_and_on_a_comprehension(report_with: Callable[..., Report]) -> None:
    [fold] = findings(report_with(_loop_sites(FOLD, "await fetch"), source=FOLD))
    assert fold.location.line == await_line(FOLD, "await fetch")
    [comprehension] = findings(report_with(_loop_sites(COMPREHENSION, "client.size"), source=COMPREHENSION))
    assert comprehension.estimated_savings_s == pytest.approx(0.8 - 0.1)


def test_loop_else_and_repeated_comprehension_calls_are_not_independent_loops(
        write_source: Callable[[str, str], str]) -> None:
    source = ("import asyncio\n\n\nasync def f(reader, items):\n    for item in items:\n        pass\n"
              "    else:\n        await reader.close(items)\n"
              "    return [await reader.readline() for _ in range(3)]\n")
    file = write_source("loop.py", source)
    assert loop_await(file, 8) == (None, None)
    found, reason = loop_await(file, 9)
    assert found is not None and reason is not None and "same at every iteration" in reason
