"""Ground truth for spans in asyncio: each of 4 workers sleeps 50 ms in a span, burns CPU in
another, awaits a traced coroutine that sleeps 30 ms, and blocks the loop 20 ms in a span."""

import asyncio
import time

import advisor

WORKERS = 4


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


@advisor.trace
async def fetch() -> None:
    await asyncio.sleep(0.03)


async def worker(index: int) -> None:
    advisor.tag(shard=f"s{index % 2}")
    with advisor.span("sleepy", kind="timer"):
        await asyncio.sleep(0.05)
    with advisor.span("crunch"):
        burn(300_000)
    await fetch()
    with advisor.span("stall"):
        time.sleep(0.02)  # blocks the loop: a finding the span points to


async def main() -> None:
    await asyncio.gather(*(asyncio.create_task(worker(i), name=f"worker-{i}") for i in range(WORKERS)))


asyncio.run(main())
