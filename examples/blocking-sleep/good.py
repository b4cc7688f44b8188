"""A job poller and two heartbeat tickers share one event loop; the poller awaits its pauses.

`poll()` waits between status checks with await asyncio.sleep(), so the loop stays free:
the heartbeats keep their rhythm. advisor reports nothing.
"""

import asyncio

CHECKS = 4
PAUSE = 0.15


async def poll(statuses: list[str]) -> None:
    for attempt in range(CHECKS):
        statuses.append(f"check {attempt}")
        await asyncio.sleep(0)
        await asyncio.sleep(PAUSE)


async def tick(beats: list[int]) -> None:
    for beat in range(12):
        await asyncio.sleep(0.04)
        beats.append(beat)


async def main() -> None:
    statuses: list[str] = []
    beats: list[int] = []
    await asyncio.gather(poll(statuses), tick(beats), tick(beats))
    print(f"{len(statuses)} checks, {len(beats)} heartbeats")


if __name__ == "__main__":
    asyncio.run(main())
