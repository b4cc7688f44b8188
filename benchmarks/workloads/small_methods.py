"""Benchmark workload: small methods with attribute-heavy bodies, a plain script.

Vector arithmetic through little methods (each makes a new object), keyword arguments and a
recursive walk over a binary tree: bodies heavier than a bare call, so deep mode's correction
must take out yappi's cost per call and the slower bytecode, and nothing of the work itself.
The last stdout lines are ``cpu=<seconds>`` (process CPU, all threads) and
``elapsed=<seconds>``, measured around the work only.
"""

from __future__ import annotations

import sys
import time

STEPS = 150_000
WALKS = 400


class Vec:
    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def add(self, other: Vec) -> Vec:
        return Vec(self.x + other.x, self.y + other.y)

    def scale(self, k: float) -> Vec:
        return Vec(self.x * k, self.y * k)

    def dot(self, other: Vec) -> float:
        return self.x * other.x + self.y * other.y

    def norm2(self) -> float:
        return self.dot(self)


class Node:
    def __init__(self, value: int, left: Node | None = None, right: Node | None = None) -> None:
        self.value = value
        self.left = left
        self.right = right

    def total(self) -> int:
        left = self.left.total() if self.left else 0
        right = self.right.total() if self.right else 0
        return self.value + left + right


def build(depth: int, value: int = 1) -> Node:
    if depth == 0:
        return Node(value)
    return Node(value, build(depth - 1, value * 2), build(depth - 1, value * 2 + 1))


def clamp(v: float, low: float = 0.0, high: float = 100.0) -> float:
    return low if v < low else high if v > high else v


def step(p: Vec, v: Vec, dt: float) -> tuple[Vec, float]:
    p = p.add(v.scale(dt))
    return p, clamp(p.norm2(), high=10_000.0)


def simulate(n: int) -> float:
    p, v = Vec(0.0, 0.0), Vec(1.0, 0.5)
    acc = 0.0
    for _ in range(n):
        p, e = step(p, v, 0.01)
        acc += e
    return acc


def main(steps: int, walks: int) -> float:
    tree = build(9)
    return sum(tree.total() for _ in range(walks)) + simulate(steps)


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else STEPS
    walks = int(sys.argv[2]) if len(sys.argv) > 2 else WALKS
    started = time.perf_counter()
    cpu_started = time.process_time()
    checksum = main(steps, walks)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"checksum={checksum:.6f}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
