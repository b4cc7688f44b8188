"""Flame-graph exports of the sampled stacks: collapsed stacks and speedscope JSON.

Both come from the report's ``samples`` alone (frames table + per-unit stacks, leaf first),
so they can be made from any saved report. Collapsed stacks are the ``root;...;leaf N``
lines flamegraph.pl and inferno read, weighted in microseconds of sampled time (on- and
off-CPU, idle loops left out), one stack per unit under the unit's name. speedscope gets
one sampled profile per unit, weighted in seconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

from advisor.profile import Report, StackSample

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def _unit_names(report: Report) -> dict[str, str]:
    return {task.id: task.name for task in report.tasks}


def _weight(on: float, off: float, state: str) -> float:
    return on + (off if state != "idle" else 0.0)


def weighted_stacks(report: Report) -> Iterator[tuple[StackSample, list[int], float]]:
    """Each sampled stack with its frame indices root first and its flame-graph weight in
    seconds (on- and off-CPU, idle loops left out); stacks of no weight are skipped."""
    for stack in report.samples.stacks:
        weight = _weight(stack.on_cpu_s, stack.off_cpu_s, stack.state)
        if weight > 0.0:
            yield stack, list(reversed(stack.frames)), weight


def render_collapsed(report: Report) -> str:
    """``unit;root;...;leaf microseconds`` lines, heaviest first."""
    names = _unit_names(report)
    frames = report.samples.frames
    totals: dict[str, float] = defaultdict(float)
    for stack in report.samples.stacks:
        weight = _weight(stack.on_cpu_s, stack.off_cpu_s, stack.state)
        if weight <= 0.0:
            continue
        path = [names.get(stack.unit, stack.unit)]
        path += [frames[index].function.replace(";", ":") for index in reversed(stack.frames)]
        totals[";".join(part.replace(" ", "_") for part in path)] += weight
    lines = [f"{path} {round(seconds * 1_000_000)}" for path, seconds in sorted(totals.items(), key=lambda i: -i[1])
             if round(seconds * 1_000_000) > 0]
    return "\n".join(lines) + ("\n" if lines else "")


def render_speedscope(report: Report) -> str:
    """A speedscope file: one sampled profile per unit, sharing one frame table."""
    frames = [{"name": frame.function, "file": frame.file, "line": frame.line} for frame in report.samples.frames]
    names = _unit_names(report)
    by_unit: dict[str, list[tuple[list[int], float]]] = defaultdict(list)
    for stack, root_first, weight in weighted_stacks(report):
        by_unit[stack.unit].append((root_first, weight))
    profiles = []
    for unit, samples in by_unit.items():
        total = sum(weight for _, weight in samples)
        profiles.append({"type": "sampled", "name": names.get(unit, unit), "unit": "seconds", "startValue": 0,
                         "endValue": total, "samples": [stack for stack, _ in samples],
                         "weights": [weight for _, weight in samples]})
    document = {"$schema": SPEEDSCOPE_SCHEMA, "name": " ".join(report.run.argv), "exporter": "advisor",
                "shared": {"frames": frames}, "profiles": profiles, "activeProfileIndex": 0}
    return json.dumps(document) + "\n"
