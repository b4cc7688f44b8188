"""Reconcile a day's stock movements per warehouse bin, with a DEBUG trace per bin.

The same program as bad.py, with the DEBUG trace built only when DEBUG is enabled:
`log.isEnabledFor(logging.DEBUG)` guards the expensive describe() call and the message
uses lazy %-style arguments. With the logger at INFO nothing is built for the dropped
records, and nothing is reported.
"""

import logging
import os
import tempfile

BINS = 40_000
SKUS = ("bolt-m6", "bolt-m8", "nut-m6", "nut-m8", "washer", "rivet", "anchor", "hinge", "bracket")


def make_bins(count: int) -> list[tuple[str, list[tuple[str, int, str]]]]:
    """Bins as (bin id, [(sku, signed quantity, reason), ...]), generated."""
    bins = []
    for number in range(count):
        moves = []
        for step in range(8 + number % 5):
            quantity = (number * 7 + step * 13) % 40 - 6
            moves.append((SKUS[(number + step) % len(SKUS)], quantity, "receipt" if quantity > 0 else "pick"))
        bins.append((f"B{number // 100:03d}-{number % 100:02d}", moves))
    return bins


def describe(bin_id: str, moves: list[tuple[str, int, str]]) -> str:
    """A detailed, human-readable account of one bin's movements."""
    rows = [f"{reason:<8} {sku:<8} {quantity:>+5d} (running {sum(q for _, q, _ in moves[: i + 1]):>+6d})"
            for i, (sku, quantity, reason) in enumerate(sorted(moves))]
    return f"{bin_id}: {len(moves)} moves | " + " | ".join(rows)


def reconcile(moves: list[tuple[str, int, str]]) -> dict[str, int]:
    net: dict[str, int] = {}
    for sku, quantity, _ in moves:
        net[sku] = net.get(sku, 0) + quantity
    return net


def run(bins: list[tuple[str, list[tuple[str, int, str]]]], log: logging.Logger) -> int:
    short = 0
    for bin_id, moves in bins:
        net = reconcile(moves)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("movements of bin %s", describe(bin_id, moves))
        if min(net.values()) < 0:
            short += 1
    log.info("%d bins reconciled, %d short", len(bins), short)
    return short


def main() -> None:
    bins = make_bins(BINS)
    log = logging.getLogger("stock")
    log.propagate = False
    log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="stock-log-") as log_dir:
        handler = logging.FileHandler(os.path.join(log_dir, "stock.log"), encoding="utf-8")
        log.addHandler(handler)
        try:
            short = run(bins, log)
        finally:
            log.removeHandler(handler)
            handler.close()
    print(f"{len(bins)} bins, {short} short")


if __name__ == "__main__":
    main()
