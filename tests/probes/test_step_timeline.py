"""The step timeline the asyncio probe records, on real asyncio programs run in this process.

Ground truth is the program's own structure: how many steps each task takes, what it
awaits before each, who created it and which tasks it waited on; and the bound: past its
capacity the timeline takes nothing more and says it was truncated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import pairwise
from typing import Any

from advisor.probes.asyncio_probe import AsyncioProbe
from advisor.probes.task_ledger import READY, TIMER, WAITING
from advisor.probes.timeline import NEW, StepTimeline

PAUSE = 0.01


def record(program: Callable[[], Awaitable[Any]], capacity: int = 10_000) -> tuple[StepTimeline, AsyncioProbe]:
    probe = AsyncioProbe(None)
    timeline = StepTimeline(capacity)
    probe.record_timeline(timeline)
    probe.start()
    try:
        asyncio.run(program())  # type: ignore[arg-type]
    finally:
        probe.stop()
    probe.drain()
    return timeline, probe


def steps_of(timeline: StepTimeline, uid: int) -> list[int]:
    return [index for index, owner in enumerate(timeline.unit) if owner == uid]


def uid_named(probe: AsyncioProbe, name: str) -> int:
    return next(record.uid for record in probe.ledger.all_records() if record.name == name)


async def sleeper() -> None:
    for _ in range(3):
        await asyncio.sleep(PAUSE)


async def gathering() -> None:
    await asyncio.gather(asyncio.create_task(sleeper(), name="a"), asyncio.create_task(sleeper(), name="b"))
    child = asyncio.create_task(sleeper(), name="c")
    await child
    await asyncio.sleep(0)


def test_each_step_with_its_wait_creator_and_the_tasks_it_waited_on() -> None:
    timeline, probe = record(gathering)
    main = next(uid for uid, (_t, creator, _ident) in timeline.units.items() if creator == 0)
    a, b, c = (uid_named(probe, name) for name in "abc")
    # the children: created by main, a first step, then one step after each of their 3 timers
    for child in (a, b, c):
        assert timeline.units[child][1] == main
        steps = steps_of(timeline, child)
        assert [timeline.waits[i] for i in steps] == [NEW, TIMER, TIMER, TIMER]
        for before, step in pairwise(steps):
            # the timer was due PAUSE after the step that started it, and the step ran after it was due
            assert PAUSE * 0.9 <= timeline.due[step] - timeline.end[before] <= PAUSE * 3
            assert timeline.start[step] >= timeline.due[step] - 1e-6
    # main: its first step, after the gather of a and b, after awaiting c, after a bare yield
    steps = steps_of(timeline, main)
    assert [timeline.waits[i] for i in steps] == [NEW, WAITING, WAITING, READY]
    assert set(timeline.after[steps[1]]) == {a, b}
    assert timeline.after[steps[2]] == (c,)
    assert steps[0] not in timeline.after and steps[3] not in timeline.after
    # the gather's step came after both children's last steps, and the await after c's
    assert timeline.start[steps[1]] >= max(timeline.end[steps_of(timeline, a)[-1]],
                                           timeline.end[steps_of(timeline, b)[-1]])
    assert timeline.start[steps[2]] >= timeline.end[steps_of(timeline, c)[-1]]
    assert not timeline.truncated
    assert all(end >= start for start, end in zip(timeline.start, timeline.end, strict=True))


async def yielding() -> None:
    async def spin() -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    await asyncio.gather(*(spin() for _ in range(4)))


def test_the_timeline_stops_at_its_capacity_and_says_so() -> None:
    timeline, _probe = record(yielding, capacity=60)
    assert len(timeline) == 60
    assert len(timeline.unit) == len(timeline.due) == len(timeline.cpu) == 60
    assert timeline.truncated
    full, _probe = record(yielding)
    assert not full.truncated
    main = next(uid for uid, (_t, creator, _i) in sorted(full.units.items()) if creator == 0)
    spinners = [uid for uid, (_t, creator, _i) in full.units.items() if creator == main]
    # main runs twice (start, after the gather), each spinner 51 times (start, 50 yields)
    assert len(steps_of(full, main)) == 2
    assert sorted(len(steps_of(full, uid)) for uid in spinners) == [51] * 4


async def anonymous() -> None:
    for _ in range(5):
        await asyncio.create_task(sleeper())


def test_finished_tasks_folded_together_map_to_their_folds_entry() -> None:
    timeline, probe = record(anonymous)
    folds = [record for record in probe.ledger.all_records() if record.target.endswith("sleeper")]
    assert len(folds) == 1 and folds[0].count == 5
    sleepers = [uid for uid, (_t, creator, _i) in timeline.units.items() if creator != 0]
    assert len(sleepers) == 5
    assert {timeline.entry_of(uid) for uid in sleepers} == {folds[0].uid}


def test_light_mode_records_no_timeline() -> None:
    from advisor.capture import Capture

    assert Capture(mode="light", calibrate=False).timelines == []
    assert [timeline.kind for timeline in Capture(mode="standard", calibrate=False).timelines] == [
        "asyncio", "greenlet"]
    assert [timeline.kind for timeline in Capture(mode="deep", calibrate=False).timelines] == ["asyncio"]
