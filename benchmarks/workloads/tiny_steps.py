"""Benchmark workload: ~200,000 tiny asyncio steps (1,000 tasks x 200 ``sleep(0)``).

Almost no work per step, so the cost of anything hooked on every task step shows in full.
The last stdout lines are ``cpu=<seconds>`` (process CPU, all threads) and
``elapsed=<seconds>``, measured around the event loop only.
"""

from __future__ import annotations

import asyncio
import sys
import time

TASKS = 1_000
STEPS = 200


async def spin(steps: int) -> int:
    for _ in range(steps):
        await asyncio.sleep(0)
    return steps


async def main(tasks: int, steps: int) -> int:
    results = await asyncio.gather(*(spin(steps) for _ in range(tasks)))
    return sum(results)


if __name__ == "__main__":
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else TASKS
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else STEPS
    started = time.perf_counter()
    cpu_started = time.process_time()
    total = asyncio.run(main(tasks, steps))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"steps={total}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
