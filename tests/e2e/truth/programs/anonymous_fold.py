"""(e) 2,000 anonymous tasks of one coroutine, and three named tasks of another."""

import asyncio

import groundtruth as truth


async def work(n):
    await asyncio.sleep(0)
    return n


async def named(name):
    with truth.phase(name, "waiting", cap=0.05):
        await asyncio.sleep(0.05)
    truth.end(name)


async def main():
    anonymous = [asyncio.create_task(work(n)) for n in range(2000)]
    tasks = []
    for n in range(3):
        truth.begin(f"named-{n}")
        tasks.append(asyncio.create_task(named(f"named-{n}"), name=f"named-{n}"))
    results = await asyncio.gather(*anonymous, *tasks)
    assert sum(results[:2000]) == sum(range(2000))


asyncio.run(main())
truth.save()
print("done")
