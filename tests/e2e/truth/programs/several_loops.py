"""(f) Three asyncio.run calls in a row, then a loop in a thread that is not the main one."""

import asyncio
import threading

import groundtruth as truth


async def step(name):
    for _ in range(2):
        with truth.phase(name, "waiting", cap=0.05):
            await asyncio.sleep(0.05)
    truth.end(name)


async def run_round(name):
    truth.begin(name)
    await asyncio.create_task(step(name), name=name)


def in_thread():
    asyncio.run(run_round("threaded"))


for n in range(3):
    asyncio.run(run_round(f"round-{n}"))
thread = threading.Thread(target=in_thread, name="loop-thread")
thread.start()
thread.join()
truth.save()
print("done")
