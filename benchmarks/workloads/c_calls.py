"""Benchmark workload: a loop of C calls (``len``, ``list.append``) and few Python calls.

yappi times every call of a C function, so deep mode slows this loop as much as a
call-heavy one, with almost no Python call to count the cost by: the correction must know
the C calls' own cost. The last stdout lines are ``cpu=<seconds>`` (process CPU, all
threads) and ``elapsed=<seconds>``, measured around the work only.
"""

from __future__ import annotations

import sys
import time

ROUNDS = 10
ITEMS = 100_000


class Reading:
    def __init__(self) -> None:
        self.scale = 1.5
        self.offset = 2


def tally(n: int) -> float:
    reading = Reading()
    acc = 0.0
    window: list[float] = []
    for i in range(n):
        value = reading.scale * i + reading.offset
        if value > 100.0:
            acc += value % 7
        else:
            acc -= 1
        window.append(value)
        if len(window) > 64:
            window.clear()
    return acc


def main(rounds: int, items: int) -> float:
    return sum(tally(items) for _ in range(rounds))


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    items = int(sys.argv[2]) if len(sys.argv) > 2 else ITEMS
    started = time.perf_counter()
    cpu_started = time.process_time()
    checksum = main(rounds, items)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"checksum={checksum:.6f}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
