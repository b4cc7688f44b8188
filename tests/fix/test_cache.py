"""cacheable-function fixes: lru_cache on a pure module-level function, refused on any doubt."""

from __future__ import annotations

from collections.abc import Callable

import pytest

PURE = """
    import hashlib

    TIERS = (1, 2, 3)


    # the price of one product, from its code
    def unit_price(code: str, tier: int | None = None) -> int:  # <-
        digest = code.encode()
        seen = []
        for level in TIERS:
            digest = hashlib.sha256(digest).digest()
            seen.append(level)
        return 100 + digest[0] * len(seen)
"""


def test_pure_function_gets_the_decorator_and_the_import(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    result = fixed(PURE, "cacheable-function", fix="@functools.lru_cache(maxsize=32)  # on def unit_price(...)")
    assert result == code("""
        import functools
        import hashlib

        TIERS = (1, 2, 3)


        # the price of one product, from its code
        @functools.lru_cache(maxsize=32)
        def unit_price(code: str, tier: int | None = None) -> int:  # <-
            digest = code.encode()
            seen = []
            for level in TIERS:
                digest = hashlib.sha256(digest).digest()
                seen.append(level)
            return 100 + digest[0] * len(seen)
    """)


def test_maxsize_comes_from_the_distinct_arguments_without_a_suggestion(fixed: Callable[..., str]) -> None:
    result = fixed(PURE, "cacheable-function", evidence={"distinct_args": 100})
    assert "@functools.lru_cache(maxsize=256)\n" in result


@pytest.mark.parametrize(("body", "reason"), [
    ("def f(x):  # <-\n    global TOTAL\n    TOTAL = x\n    return x\n", "rebinds a global"),
    ("def f(items: tuple):  # <-\n    print(items)\n    return len(items)\n", "calls print()"),
    ("def f(x):  # <-\n    return open(x).read()\n", "open(x)"),
    ("import random\ndef f(x):  # <-\n    return x + random.random()\n", "random.random()"),
    ("import time\ndef f(x):  # <-\n    return x + time.time()\n", "time.time()"),
    ("def f(x):  # <-\n    return x + rng.randint(1, 6)\n", "rng.randint()"),
    ("def f(counts: tuple, key: str):  # <-\n    counts.append(key)\n    return key\n", "changes counts"),
    ("def f(box, key: str):  # <-\n    box[key] = 1\n    return key\n", "changes box in place"),
    ("def f(box, key: str):  # <-\n    alias = box\n    alias.update(k=key)\n    return key\n", "changes alias"),
    ("SEEN = {}\ndef f(x: int):  # <-\n    SEEN[x] = True\n    return x\n", "changes SEEN in place"),
    ("def f(items: list[int]):  # <-\n    return sum(items)\n", "annotated list[int]"),
    ("def f(table: dict):  # <-\n    return len(table)\n", "annotated dict"),
    ("def f(x: int):  # <-\n    return [x, x]\n", "returns a list"),
    ("def f(x: int) -> dict[str, int]:  # <-\n    return dict(a=x)\n", "returns a dict"),
    # calls it cannot see into
    ("def log_it(x):\n    print(x)\ndef f(x: int):  # <-\n    return log_it(x) or x\n",
     "calls log_it(), and it calls print()"),
    ("from shop.db import lookup\ndef f(x: int):  # <-\n    return lookup(x)\n", "calls lookup() from shop"),
    ("def f(fn, x: int):  # <-\n    return fn(x)\n", "calls its argument fn()"),
    ("def f(order, x: int):  # <-\n    return order.total(x)\n", "order.total(), which advisor cannot see"),
    ("class Price:\n    pass\ndef f(x: int):  # <-\n    return Price()\n", "creates a Price"),
    ("import requests\ndef f(url: str):  # <-\n    return requests.get(url).status_code\n", "requests.get"),
    ("RATE = 2\ndef set_rate(r):\n    global RATE\n    RATE = r\ndef f(x: int):  # <-\n    return x * RATE\n",
     "reads the global RATE"),
    ("PRICES = {}\ndef load():\n    PRICES.update(a=1)\ndef f(x: str):  # <-\n    return PRICES[x]\n",
     "reads the global PRICES, which the program changes in place"),
    ("def f(x):  # <-\n    yield x\n", "generator"),
    ("async def f(x):  # <-\n    return x\n", "coroutine"),
])
def test_impure_or_unhashable_functions_are_refused(refused: Callable[..., str], body: str, reason: str) -> None:
    assert reason in refused(body, "cacheable-function")


def test_a_global_read_but_never_changed_is_fine(fixed: Callable[..., str]) -> None:
    assert "@functools.lru_cache" in fixed("LIMIT = 3\ndef f(x: int):  # <-\n    return min(x, LIMIT)\n",
                                           "cacheable-function")


def test_methods_nested_functions_and_decorated_functions_are_refused(refused: Callable[..., str]) -> None:
    assert "is a method" in refused("""
        class Prices:
            def price(self, code: str) -> int:  # <-
                return len(code)
    """, "cacheable-function")
    assert "inside a function" in refused("""
        def outer():
            def price(code: str) -> int:  # <-
                return len(code)
            return price
    """, "cacheable-function")
    assert "already cached" in refused("""
        import functools

        @functools.cache
        def price(code: str) -> int:  # <-
            return len(code)
    """, "cacheable-function")
    assert "already has decorators" in refused("""
        @register
        def price(code: str) -> int:  # <-
            return len(code)
    """, "cacheable-function")


def test_the_finding_line_may_be_the_first_decorator_line(refused: Callable[..., str]) -> None:
    # a decorated function's code object starts at its first decorator: the profile names that line
    reason = refused("""
        @register  # <-
        def price(code: str) -> int:
            return len(code)
    """, "cacheable-function", function="app.price")
    assert "price() already has decorators" in reason


def test_pure_helpers_recursion_and_pure_modules_are_fine(fixed: Callable[..., str]) -> None:
    source = """
        import math
        from hashlib import sha256


        def digits(n: int) -> int:
            return len(str(n))


        def score(n: int) -> float:  # <-
            if n < 2:
                return 1.0
            return score(n - 1) + math.sqrt(digits(n)) + sha256(str(n).encode()).digest()[0]
    """
    assert "@functools.lru_cache(maxsize=32)\ndef score(n: int) -> float:" in fixed(source, "cacheable-function")
