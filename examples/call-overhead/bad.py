"""Total five million ledger amounts, adding tax through a one-line method.

`Ledger.with_tax()` does one multiplication, but it is called for every amount from the
loop in `total_with_tax()`: a large part of the run is the calls themselves (frame
set-up, argument passing, the attribute look-up). advisor reports call-overhead at the
call in the loop.
"""

ENTRIES = 5_000_000


class Ledger:
    rate_percent = 120

    def with_tax(self, cents: int) -> int:
        return cents * self.rate_percent // 100


def total_with_tax(ledger: Ledger, entries: int) -> int:
    total = 0
    for number in range(entries):
        cents = number * 37 % 10_000
        total += ledger.with_tax(cents)  # expect: call-overhead
    return total


if __name__ == "__main__":
    print(f"total with tax: {total_with_tax(Ledger(), ENTRIES)} cents")
