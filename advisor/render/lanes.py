"""Timeline lanes from the recorded steps: where each unit's time went, when it went there.

A report with a step timeline (standard and deep mode) knows when each task step ran and
what the task waited for between steps, so its lane in the HTML report can show the real
sequence instead of one bar split in proportion: each step is compute (and, where its CPU
was read, the rest of it blocking, as far as the report counts the unit's blocking; beyond
that the step was preempted: scheduling), each gap before a step is what the task waited for —
a timer until it was due (then scheduling), I/O, another task or lock, or nothing at all
(scheduling: ready, the loop busy elsewhere). A step whose CPU was not read (the probe
reads it once a task has held the loop for long) gets the share of the unit's measured
blocking that the steps with a known CPU do not account for, by length. Units with too
many segments to draw keep the proportional bar.
"""

from __future__ import annotations

from collections import defaultdict

from advisor.profile import LONG_STEP_S, Report, TimelineTrack

# segments drawn per unit at most (beyond that a lane is a proportional bar: an SVG with
# hundreds of thousands of rectangles makes the page slow to zoom)
MAX_SEGMENTS_PER_UNIT = 1_500
# less off-CPU time than this in a step is the clocks' and the OS's noise, drawn as compute
MIN_BLOCKING_S = 0.001
GAP_PARTS = {"io": "io", "waiting": "waiting", "lock": "waiting", "ready": "scheduling", "new": "scheduling"}

Segment = tuple[float, float, str]


def _gap(track: TimelineTrack, step: int) -> list[Segment]:
    """What the task waited for before this step (from its creation before the first one)."""
    begin = track.created_s if step == 0 else track.end_s[step - 1]
    end = track.start_s[step]
    if end <= begin:
        return []
    wait = track.waits[step]
    due = track.due_s[step]
    if wait == "timer" and due is not None:
        due = min(max(due, begin), end)
        return [part for part in ((begin, due, "waiting"), (due, end, "scheduling")) if part[1] > part[0]]
    return [(begin, end, GAP_PARTS.get(wait, "waiting"))]


def _steps(track: TimelineTrack, unknown_blocking_share: float, known_blocking_share: float) -> list[Segment]:
    segments: list[Segment] = []
    for step, (start, end) in enumerate(zip(track.start_s, track.end_s, strict=True)):
        segments.extend(_gap(track, step))
        length = end - start
        cpu = track.cpu_s[step]
        share = known_blocking_share
        if cpu is None:
            cpu = length * (1.0 - unknown_blocking_share) if length >= LONG_STEP_S else length
            share = 1.0
        cpu = min(max(cpu, 0.0), length)
        if length - cpu < MIN_BLOCKING_S:
            cpu = length
        blocked = (length - cpu) * share
        if blocked < MIN_BLOCKING_S:
            blocked = 0.0
        elif length - cpu - blocked < MIN_BLOCKING_S:
            blocked = length - cpu  # what is left is rounding
        split = end if blocked >= length - cpu else start + cpu + blocked
        if cpu > 0.0:
            segments.append((start, start + cpu, "compute"))
        if blocked > 0.0:
            segments.append((start + cpu, split, "blocking"))
        if split < end:  # off the CPU, but not blocking by the report: preempted
            segments.append((split, end, "scheduling"))
    return segments


def unit_segments(report: Report) -> dict[str, list[list[float | str]]]:
    """Per unit id, its lane's segments [start, end, part] in seconds from the run's start."""
    timeline = report.timeline
    if timeline is None:
        return {}
    tracks: dict[str, list[TimelineTrack]] = defaultdict(list)
    for track in timeline.tracks:
        tracks[track.unit].append(track)
    blocking = {task.id: task.blocking_s for task in report.tasks}
    result: dict[str, list[list[float | str]]] = {}
    for unit, mine in tracks.items():
        if sum(2 * len(track.start_s) + 1 for track in mine) > MAX_SEGMENTS_PER_UNIT:
            continue
        known = sum(max(0.0, end - start - cpu) for track in mine
                    for start, end, cpu in zip(track.start_s, track.end_s, track.cpu_s, strict=True) if cpu is not None)
        unknown = sum(end - start for track in mine
                      for start, end, cpu in zip(track.start_s, track.end_s, track.cpu_s, strict=True)
                      if cpu is None and end - start >= LONG_STEP_S)
        # the lane draws no more blocking than the report counts: a step's time off the CPU
        # that the report does not call blocking (a loaded machine preempted it) is scheduling
        measured = blocking.get(unit, 0.0)
        known_share = min(1.0, measured / known) if known > 0.0 else 1.0
        share = min(1.0, max(0.0, measured - known) / unknown) if unknown > 0.0 else 0.0
        segments = [segment for track in mine for segment in _steps(track, share, known_share)]
        result[unit] = [[round(start, 6), round(end, 6), part] for start, end, part in segments]
    return result


__all__ = ["MAX_SEGMENTS_PER_UNIT", "unit_segments"]
