"""Reconcile a day of warehouse barcode scans against the catalogue.

Every scan's SKU is checked against the catalogue's SKUs, and the scans of unknown
SKUs are written into an exceptions report. The SKUs are kept in a list, so each check
scans it item by item, and the report's text grows with `+=` on an attribute, which
copies it whole every time. advisor reports slow-construct on both lines.
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
    known = [row["sku"] for row in catalogue]
    report = ExceptionsReport()
    for dock, sku in scans:
        if sku not in known:  # expect: slow-construct
            report.text += f"dock {dock}: unknown SKU {sku} (scan held for review)\n"  # expect: slow-construct
            report.count += 1
    return report


def main() -> None:
    catalogue = make_catalogue(CATALOGUE_SIZE)
    scans = make_scans(SCANS, CATALOGUE_SIZE)
    report = reconcile(scans, catalogue)
    print(f"{len(scans)} scans, {report.count} of unknown SKUs, report {len(report.text)} characters")


if __name__ == "__main__":
    main()
