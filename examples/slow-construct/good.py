"""Reconcile a day of warehouse barcode scans against the catalogue.

The same program as bad.py with the catalogue's SKUs in a set (one hash lookup per
scan) and the report's lines collected in a list and joined once. advisor reports
nothing.
"""

import random

CATALOGUE_SIZE = 3_000
SCANS = 60_000


class ExceptionsReport:
    def __init__(self) -> None:
        self.text = ""
        self.count = 0


def make_catalogue(size: int) -> list[dict[str, object]]:
    return [{"sku": f"SKU-{number:06d}", "price": 100 + number * 7 % 9_000} for number in range(size)]


def make_scans(count: int, catalogue_size: int) -> list[tuple[int, str]]:
    rng = random.Random(7)
    # one scan in ten is of a SKU missing from the catalogue (a misread or a new product)
    return [(dock, f"SKU-{rng.randrange(int(catalogue_size * 1.1)):06d}")
            for dock in (rng.randrange(1, 9) for _ in range(count))]


def reconcile(scans: list[tuple[int, str]], catalogue: list[dict[str, object]]) -> ExceptionsReport:
    known = {row["sku"] for row in catalogue}
    report = ExceptionsReport()
    lines = []
    for dock, sku in scans:
        if sku not in known:
            lines.append(f"dock {dock}: unknown SKU {sku} (scan held for review)\n")
            report.count += 1
    report.text += "".join(lines)
    return report


def main() -> None:
    catalogue = make_catalogue(CATALOGUE_SIZE)
    scans = make_scans(SCANS, CATALOGUE_SIZE)
    report = reconcile(scans, catalogue)
    print(f"{len(scans)} scans, {report.count} of unknown SKUs, report {len(report.text)} characters")


if __name__ == "__main__":
    main()
