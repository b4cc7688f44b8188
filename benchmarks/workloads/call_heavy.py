"""Benchmark workload: very many small Python calls, a plain script (no tasks, no threads).

A recursive Fibonacci and a loop of small method calls on little objects: almost all of
the time is function-call overhead, the worst case of a deterministic (per-call) profiler.
The last stdout lines are ``cpu=<seconds>`` (process CPU, all threads) and
``elapsed=<seconds>``, measured around the work only.
"""

from __future__ import annotations

import sys
import time

FIB_N = 32
POINTS = 800_000


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def moved(self, dx: float, dy: float) -> Point:
        return Point(self.x + dx, self.y + dy)

    def dot(self, other: Point) -> float:
        return self.x * other.x + self.y * other.y

    def norm2(self) -> float:
        return self.dot(self)


class Accumulator:
    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


def walk(points: int) -> float:
    accumulator = Accumulator()
    point = Point(0.0, 0.0)
    for i in range(points):
        point = point.moved(1.0, -0.5 if i % 2 else 0.5)
        accumulator.add(point.norm2() % 97.0)
    return accumulator.mean()


def main(fib_n: int, points: int) -> float:
    return fib(fib_n) + walk(points)


if __name__ == "__main__":
    fib_n = int(sys.argv[1]) if len(sys.argv) > 1 else FIB_N
    points = int(sys.argv[2]) if len(sys.argv) > 2 else POINTS
    started = time.perf_counter()
    cpu_started = time.process_time()
    checksum = main(fib_n, points)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"checksum={checksum:.6f}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
