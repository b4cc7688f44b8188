"""100,000 short anonymous tasks under the real probes, in this process.

What the ledger keeps must not grow with the number of tasks: finished anonymous tasks
fold by target into a handful of records, no live record or weak reference outlives its
task, and the folds' counts account for every task. (No RSS or time threshold: the bound
is on what the ledger holds.)
"""

from __future__ import annotations

import asyncio

from advisor.probes.asyncio_probe import AsyncioProbe
from advisor.probes.sampler import Sampler
from advisor.probes.threads import ThreadRegistry

TASKS = 100_000
BATCH = 2_000


async def work(n: int) -> int:
    await asyncio.sleep(0)
    return n


async def tick() -> None:
    await asyncio.sleep(0.001)


async def main() -> int:
    done = 0
    for start in range(0, TASKS, BATCH):
        results = await asyncio.gather(*(asyncio.create_task(work(n)) for n in range(start, start + BATCH)))
        done += len(results)
    await asyncio.gather(*(asyncio.create_task(tick(), name=f"named-{n}") for n in range(3)))
    return done


def test_many_short_tasks_leave_a_handful_of_folded_records() -> None:
    threads = ThreadRegistry()
    sampler = Sampler(threads)
    probe = AsyncioProbe(sampler)
    threads.start()
    sampler.start()
    probe.start()
    try:
        done = asyncio.run(main())
    finally:
        probe.stop()
        sampler.stop()
        threads.stop()
    assert done == TASKS
    assert probe.failed is None
    ledger = probe.ledger
    assert len(ledger.live) == 0
    assert len(ledger.refs) == 0
    # work (one fold), main, three named tasks, asyncio.run's two housekeeping tasks
    assert len(ledger.finished) <= 8, [(key, record.count) for key, record in ledger.finished.items()]
    records = probe.drain()
    by_target: dict[str, list] = {}
    for record in records:
        by_target.setdefault(record.target.rsplit(".", 1)[-1], []).append(record)
    (folded,) = by_target["work"]
    assert folded.count == TASKS
    assert folded.steps == 2 * TASKS
    assert not folded.named
    assert sorted(record.name for record in by_target["tick"]) == ["named-0", "named-1", "named-2"]
    assert all(record.count == 1 for record in by_target["tick"])
    assert sum(record.count for record in records) == TASKS + 3 + 1
    # the fold's parts add up to the sum of its tasks' wall times
    assert abs(folded.running_s + folded.io_s + folded.waiting_s + folded.scheduling_s - folded.wall_s) < 1e-6 * TASKS
