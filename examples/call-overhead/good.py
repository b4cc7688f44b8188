"""Total five million ledger amounts, adding tax inline.

The same program as bad.py with the one-line method inlined into the loop (its rate
read once, before the loop), so nothing is called per amount. advisor reports nothing.
"""

ENTRIES = 5_000_000


class Ledger:
    rate_percent = 120


def total_with_tax(ledger: Ledger, entries: int) -> int:
    total = 0
    rate = ledger.rate_percent
    for number in range(entries):
        cents = number * 37 % 10_000
        total += cents * rate // 100
    return total


if __name__ == "__main__":
    print(f"total with tax: {total_with_tax(Ledger(), ENTRIES)} cents")
