"""Replay a day's stock adjustments against a warehouse cart, keeping only valid states.

The same program as bad.py, with the draft made by copying only what an adjustment
changes: a new items list (sharing the untouched item dicts) and a new dict for the one
item it modifies. No JSON text is produced or parsed, and nothing is reported.
"""

import random

ITEMS = 40
ADJUSTMENTS = 15_000
VALUE_LIMIT = 2_500_000


def make_cart(count: int) -> dict:
    return {
        "warehouse": "north-2",
        "items": [{"sku": f"SKU-{n:04d}", "qty": 50 + n % 17, "unit_cents": 199 + 37 * n,
                   "tags": ["bulk" if n % 3 else "retail", f"zone-{n % 4}"]} for n in range(count)],
    }


def make_adjustments(count: int, items: int) -> list[tuple[int, int]]:
    rng = random.Random(7)
    return [(rng.randrange(items), rng.randint(-30, 25)) for _ in range(count)]


def valid(cart: dict) -> bool:
    value = 0
    for item in cart["items"]:
        if item["qty"] < 0:
            return False
        value += item["qty"] * item["unit_cents"]
    return value <= VALUE_LIMIT


def replay(cart: dict, adjustments: list[tuple[int, int]]) -> tuple[dict, int]:
    rejected = 0
    for index, delta in adjustments:
        items = list(cart["items"])
        items[index] = {**items[index], "qty": items[index]["qty"] + delta}
        draft = {**cart, "items": items}
        if valid(draft):
            cart = draft
        else:
            rejected += 1
    return cart, rejected


def main() -> None:
    cart = make_cart(ITEMS)
    cart, rejected = replay(cart, make_adjustments(ADJUSTMENTS, ITEMS))
    stock = sum(item["qty"] for item in cart["items"])
    print(f"{ADJUSTMENTS} adjustments, {rejected} rejected, {stock} units in stock")


if __name__ == "__main__":
    main()
