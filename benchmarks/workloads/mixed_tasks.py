"""Benchmark workload: ~2,000 asyncio tasks mixing small CPU work with asyncio.sleep.

Each task runs a few rounds of a little arithmetic followed by a short sleep, the shape of a
typical service handling many requests at once. The last stdout lines are
``cpu=<seconds>`` (process CPU, all threads) and ``elapsed=<seconds>``, measured around the
event loop only, so a profiler's start-up and report writing do not count.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

TASKS = 2_000
ROUNDS = 10


def crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total


async def handle(rng: random.Random) -> int:
    result = 0
    for _ in range(ROUNDS):
        result += crunch(rng.randint(400, 2_000))
        await asyncio.sleep(rng.uniform(0.0, 0.02))
    return result


async def main(tasks: int) -> int:
    rng = random.Random(1234)
    results = await asyncio.gather(*(handle(random.Random(rng.random())) for _ in range(tasks)))
    return sum(results)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else TASKS
    started = time.perf_counter()
    cpu_started = time.process_time()
    checksum = asyncio.run(main(count))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"checksum={checksum}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
