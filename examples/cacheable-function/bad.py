"""Price a day of orders; the price of a product is recomputed for every order line.

`unit_price()` is pure (it depends only on the product code) but is called for each of
30,000 order lines, with only 16 distinct product codes. advisor reports
cacheable-function at its definition.
"""

import hashlib

PRODUCTS = [f"P-{number:03d}" for number in range(16)]
ORDER_LINES = 30_000


def unit_price(code: str) -> int:  # expect: cacheable-function
    """A price in cents derived from the catalogue entry (a little CPU work)."""
    digest = code.encode()
    for _ in range(60):
        digest = hashlib.sha256(digest).digest()
    return 100 + digest[0] * 7


def main() -> None:
    total = 0
    for line in range(ORDER_LINES):
        total += unit_price(PRODUCTS[line * 7 % len(PRODUCTS)])
    print(f"{ORDER_LINES} order lines, {total} cents")


if __name__ == "__main__":
    main()
