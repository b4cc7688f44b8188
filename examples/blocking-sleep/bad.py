"""A job poller and two heartbeat tickers share one event loop; the poller blocks it.

`poll()` waits between status checks with time.sleep(), which holds the event loop:
the heartbeats stall for the whole pause. advisor reports blocking-sleep at that line.
"""

import asyncio
import time

CHECKS = 4
PAUSE = 0.15


async def poll(statuses: list[str]) -> None:
    for attempt in range(CHECKS):
        statuses.append(f"check {attempt}")
        await asyncio.sleep(0)
        time.sleep(PAUSE)  # expect: blocking-sleep


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
