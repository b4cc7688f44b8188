"""(g) Programs that install their own task factory: a Task subclass with the current
signature, then an old-style factory that takes no context."""

import asyncio
import time

import groundtruth as truth


class TracedTask(asyncio.Task):
    made = 0

    def __init__(self, coro, **kwargs):
        TracedTask.made += 1
        super().__init__(coro, **kwargs)


def factory(loop, coro, **kwargs):
    return TracedTask(coro, loop=loop, **kwargs)


def legacy_factory(loop, coro):
    return asyncio.Task(coro, loop=loop)


async def worker(name):
    for _ in range(2):
        with truth.phase(name, "waiting", cap=0.1):
            await asyncio.sleep(0.1)
    truth.end(name)


async def main(install, names):
    asyncio.get_running_loop().set_task_factory(install)
    tasks = []
    for name in names:
        truth.begin(name)
        tasks.append(asyncio.create_task(worker(name), name=name))
    await asyncio.gather(*tasks)


asyncio.run(main(factory, ["custom-1", "custom-2"]))
assert TracedTask.made >= 2
time.sleep(0.01)
asyncio.run(main(legacy_factory, ["legacy-1"]))
truth.save()
print("done")
