"""A span in a uvloop task (which advisor's task hooks cannot see): two tasks, one sleeps 50 ms
in a span while the other burns CPU; the span must not take the other task's CPU as its own."""

import asyncio

import uvloop

import advisor


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


async def sleeper() -> None:
    with advisor.span("nap"):
        await asyncio.sleep(0.05)


async def burner() -> None:
    await asyncio.sleep(0.005)
    burn(400_000)


async def main() -> None:
    await asyncio.gather(sleeper(), burner())


uvloop.run(main())
