"""sequential-awaits fixes: a for loop of independent awaits becomes asyncio.gather; dependent loops stay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest


def test_append_loop_becomes_extend_with_gather(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    before = """
        import asyncio


        async def fetch_all(client, urls):
            pages = []
            # one request per url
            for url in urls:
                pages.append(await client.get(url, timeout=5))  # <-
            return pages
    """
    assert fixed(before, "sequential-awaits") == code("""
        import asyncio


        async def fetch_all(client, urls):
            pages = []
            # one request per url
            pages.extend(await asyncio.gather(*(client.get(url, timeout=5) for url in urls)))  # <-
            return pages
    """)


def test_a_bare_await_loop_becomes_one_gather_and_asyncio_is_imported(fixed: Callable[..., str],
                                                                      code: Callable[[str], str]) -> None:
    before = """
        async def notify(users, send):
            for user in users:  # tell everyone
                await send(user)
    """
    assert fixed(before, "sequential-awaits", line=3) == code("""
        import asyncio

        async def notify(users, send):
            await asyncio.gather(*(send(user) for user in users))  # tell everyone
    """)


def test_a_dict_filled_by_key_is_updated_from_zip(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    # the shape of examples/sequential-awaits/bad.py
    before = """
        import asyncio


        async def quote_all(port: int, items: list[str]) -> dict[str, float]:
            prices = {}
            for sku in items:
                prices[sku] = await fetch_quote(port, sku)
            return prices
    """
    assert fixed(before, "sequential-awaits", line=7) == code("""
        import asyncio


        async def quote_all(port: int, items: list[str]) -> dict[str, float]:
            prices = {}
            prices.update(zip(items, await asyncio.gather(*(fetch_quote(port, sku) for sku in items)), strict=True))
            return prices
    """)


def test_the_gathered_form_gives_the_same_results_in_the_same_order() -> None:
    # ground truth on a real event loop: the rewritten statements against the loops they replace
    async def double(x: int) -> int:
        await asyncio.sleep(0.001 * (5 - x))  # later items finish first
        return 2 * x

    async def both() -> tuple[list[int], list[int], dict[int, int], dict[int, int]]:
        items = [1, 2, 3, 4]
        loop_list, loop_dict = [], {}
        for x in items:
            loop_list.append(await double(x))
        for x in items:
            loop_dict[x] = await double(x)
        gathered_list: list[int] = []
        gathered_list.extend(await asyncio.gather(*(double(x) for x in items)))
        gathered_dict: dict[int, int] = {}
        gathered_dict.update(zip(items, await asyncio.gather(*(double(x) for x in items)), strict=True))
        return loop_list, gathered_list, loop_dict, gathered_dict

    loop_list, gathered_list, loop_dict, gathered_dict = asyncio.run(both())
    assert gathered_list == loop_list == [2, 4, 6, 8]
    assert gathered_dict == loop_dict


@pytest.mark.parametrize(("body", "reason"), [
    # each call needs the previous result
    ("    res = [seed]\n    for x in xs:\n        res.append(await step(res[-1], x))  # <-\n",
     "reads res, which the loop fills"),
    ("    for x in xs:\n        seed = await step(seed, x)  # <-\n", "assigned to a name"),
    ("    for x in xs:\n        d[x] = await step(d, x)  # <-\n", "reads d"),
    ("    for x in xs:\n        await step(x)  # <-\n        done(x)\n", "does more than this one await"),
    ("    async for x in xs:\n        await step(x)  # <-\n", "async for"),
    ("    for x in xs:\n        await step(x)  # <-\n    else:\n        pass\n", "else branch"),
    ("    for x in xs:\n        await step(x)  # <-\n    return x\n", "used outside the loop"),
    ("    for x in xs:\n        await step(await prepare(x))  # <-\n", "no single awaited call"),
    ("    for x in xs:\n        await step(y := x)  # <-\n", "assignment expression"),
    ("    for x in xs:\n        total += await step(x)  # <-\n", "used in an expression"),
    ("    for x in xs:\n        out.send(await step(x))  # <-\n", "not out.append"),
    ("    for x in xs:\n        xs.append(await step(x))  # <-\n", "iterates over xs, which it fills"),
    ("    for x in xs:\n        out.append(await step(x))  # <-\n", "out is not known to be a list"),
    ("    e = {}\n    for x in xs:\n        e[x] = await step(x)  # <-\n", "may not give its items a second time"),
    ("    e = make()\n    for x in [1, 2]:\n        e[x] = await step(x)  # <-\n", "not known to be a dict"),
    ("    e = {}\n    for x in [1, 2]:\n        e[x + 1] = await step(x)  # <-\n", "key other than the loop variable"),
    ("    while xs:\n        await step(xs.pop())  # <-\n", "not in the body of a for loop"),
])
def test_dependent_or_unusual_loops_are_refused(refused: Callable[..., str], body: str, reason: str) -> None:
    assert reason in refused("async def run(xs, seed, d, out, total):\n" + body, "sequential-awaits")


def test_a_dict_over_a_list_literal_or_range_is_fixed(fixed: Callable[..., str]) -> None:
    result = fixed("import asyncio\nasync def run(n):\n    d = {}\n    for x in range(n):\n"
                   "        d[x] = await step(x)  # <-\n    return d\n", "sequential-awaits")
    assert "    d.update(zip(range(n), await asyncio.gather(*(step(x) for x in range(n))), strict=True))" in result
