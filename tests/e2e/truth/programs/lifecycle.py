"""Tasks that never finish: one created on a loop that never runs it, one that ran a
step and was then garbage-collected while still waiting."""

import asyncio
import gc
import time

import groundtruth as truth


async def work():
    await asyncio.sleep(0.1)


async def stuck(future):
    with truth.phase("stuck", "waiting"):
        await future


idle_loop = asyncio.new_event_loop()
truth.begin("never-ran")
never_ran = idle_loop.create_task(work(), name="never-ran")

loop = asyncio.new_event_loop()
truth.begin("stuck")
task = loop.create_task(stuck(loop.create_future()), name="stuck")
loop.run_until_complete(asyncio.sleep(0.1))
del task
gc.collect()  # the stuck task and its future form a cycle: collected here, still pending
time.sleep(0.2)
assert not never_ran.done()
truth.end("never-ran")
truth.save()
print("done")
