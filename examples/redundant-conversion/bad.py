"""Replay a day's stock adjustments against a warehouse cart, keeping only valid states.

Each adjustment is tried on a draft of the cart: if the draft stays valid (no negative
stock, within the value limit) it becomes the cart, else it is rejected. The draft is
made with json.loads(json.dumps(cart)) -- a deep copy through JSON text that serializes
and parses every item of the cart for every adjustment, although an adjustment only
changes one item. advisor reports redundant-conversion at that line.
"""

import json
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
        draft = json.loads(json.dumps(cart))  # expect: redundant-conversion
        draft["items"][index]["qty"] += delta
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
