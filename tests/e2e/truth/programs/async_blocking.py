"""(b) A coroutine that calls time.sleep(0.2) three times, holding the loop, while two
tickers await asyncio.sleep(0.05): the sleeper blocks 0.6 s (and waits 0.6 s); the
tickers wait their nominal 0.05 s per tick and lose the rest to the blocked loop."""

import asyncio
import time

import groundtruth as truth

TICKS = 12


async def sleeper():
    for _ in range(3):
        with truth.phase("sleeper", "waiting", blocking=True):
            time.sleep(0.2)
        await asyncio.sleep(0)
    truth.end("sleeper")


async def ticker(name):
    for _ in range(TICKS):
        with truth.phase(name, "waiting", cap=0.05):
            await asyncio.sleep(0.05)
    truth.end(name)


async def main():
    tasks = []
    for name, coro in (("ticker-1", ticker("ticker-1")), ("ticker-2", ticker("ticker-2")), ("sleeper", sleeper())):
        truth.begin(name)
        tasks.append(asyncio.create_task(coro, name=name))
    await asyncio.gather(*tasks)


asyncio.run(main())
truth.save()
print("done")
