"""The report's step timeline, made from what the asyncio and greenlet probes recorded.

A probe's ``StepTimeline`` holds flat arrays keyed by its ledger's record uids and
``perf_counter`` times; the report's ``Timeline`` holds one track per task or greenlet,
named by the report entry it belongs to (a folded unit by its fold's entry), with times
from the run's start and the units it waited on as track indices. Tracks of units that
have no entry (asyncio's own housekeeping) are left out, and so are references to them.
"""

from __future__ import annotations

import math

from advisor.probes.task_ledger import IO, LOCK, READY, TIMER, WAITING
from advisor.probes.timeline import NEW, StepTimeline

from .profile import Task, Timeline, TimelineTrack, WaitKind

WAIT_NAMES: dict[int, WaitKind] = {NEW: "new", READY: "ready", TIMER: "timer", IO: "io", WAITING: "waiting",
                                   LOCK: "lock"}


def _r(value: float) -> float:
    return round(value, 6)


def timeline_entry(timelines: list[StepTimeline], tasks: list[Task], started: float) -> Timeline:
    """The report's timeline of the probes' steps; `tasks` are the report's entries."""
    entries = {task.id: task for task in tasks}
    result = Timeline()
    for timeline in timelines:
        tracks = _tracks(timeline, entries, started, offset=len(result.tracks))
        result.tracks.extend(tracks)
        result.steps += len(timeline.due)
        result.truncated = result.truncated or timeline.truncated
    return result


def _tracks(timeline: StepTimeline, entries: dict[str, Task], started: float, offset: int) -> list[TimelineTrack]:
    """One probe's tracks; their indices (creators, awaited units) start at `offset`."""
    # the arrays grow in this order: the last one's length is the number of complete steps
    count = len(timeline.due)
    units, starts, ends = timeline.unit[:count], timeline.start[:count], timeline.end[:count]
    cpus, kinds, dues = timeline.cpu[:count], timeline.waits[:count], timeline.due[:count]
    after = dict(timeline.after)
    facts = dict(timeline.units)
    tracks: list[TimelineTrack] = []
    index_of: dict[int, int] = {}
    steps_of: dict[int, list[int]] = {}
    for step, uid in enumerate(units):
        steps_of.setdefault(uid, []).append(step)
    for uid, (created, _creator, _ident) in sorted(facts.items(), key=lambda item: item[1][0]):
        entry = entries.get(f"{timeline.kind}:{timeline.entry_of(uid)}")
        if entry is None:
            continue
        index_of[uid] = offset + len(tracks)
        track = TimelineTrack(unit=entry.id, loop=entry.loop, created_s=_r(created - started))
        for step in steps_of.get(uid, ()):
            track.start_s.append(_r(starts[step] - started))
            track.end_s.append(_r(ends[step] - started))
            track.cpu_s.append(_r(cpus[step]) if cpus[step] >= 0.0 else None)
            track.waits.append(WAIT_NAMES.get(kinds[step], "waiting"))
            # a timer that never fired (its task was cancelled while it waited) is due never:
            # inf, which JSON writes as null and which the replay took as "at time 0"
            due = dues[step]
            track.due_s.append(_r(due - started) if kinds[step] == TIMER and 0.0 < due < math.inf else None)
        tracks.append(track)
    for uid, (_created, creator, _ident) in facts.items():
        if uid in index_of and creator in index_of:
            tracks[index_of[uid] - offset].creator = index_of[creator]
    for uid, index in index_of.items():
        for position, step in enumerate(steps_of.get(uid, ())):
            others = [index_of[other] for other in after.get(step, ()) if other in index_of]
            if others:
                tracks[index - offset].after[position] = others
    return tracks


__all__ = ["WAIT_NAMES", "timeline_entry"]
