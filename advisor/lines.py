"""Per-line hot spots: the hottest lines of each hot function, from the sampled stacks.

The sampler already records the line each frame was on, so this costs the run nothing: a
pure pass over the report's ``samples`` table adds ``lines`` to every function of the
function table (self time per line, on and off the CPU, idle excluded, and the units that
spent it) and to every unit's hot spots (that unit's on-CPU time per line). ``hot_line``
gives the rules engine the hottest line of the function a finding is in, for its evidence.
Because it reads only the report, a saved report gets the same lines.
"""

from __future__ import annotations

from collections import defaultdict

from .profile import Finding, FunctionStat, LineStat, LineUnit, Report, StackSample

LINES_PER_FUNCTION = 5
LINES_PER_HOT_SPOT = 3
UNITS_PER_LINE = 3

# (file, function) -> line -> seconds
Place = tuple[str, str]
PerLine = dict[Place, dict[int, float]]


def _busy(stack: StackSample) -> float:
    """A stack's self time as the function table counts it: idle waiting is not the code's."""
    return stack.on_cpu_s + (stack.off_cpu_s if stack.state != "idle" else 0.0)


def _r(value: float) -> float:
    return round(max(0.0, value), 6)


def with_lines(report: Report) -> Report:
    """The report with ``lines`` on its functions and on its units' hot spots."""
    samples = report.samples
    if not samples.stacks or not samples.frames:
        return report
    frames = samples.frames
    kinds = {task.id: task.kind for task in report.tasks}
    names = {task.id: task.name for task in report.tasks}
    # a thread's samples hold everything that ran on it; its tasks' samples are the same time
    # again, per task: the thread's give the self time, the tasks' say who spent it
    busy: PerLine = defaultdict(lambda: defaultdict(float))
    on_cpu: PerLine = defaultdict(lambda: defaultdict(float))
    by_thread: dict[tuple[Place, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_task: dict[tuple[Place, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    unit_lines: dict[str, PerLine] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for stack in samples.stacks:
        if not stack.frames or stack.frames[0] >= len(frames):
            continue
        leaf = frames[stack.frames[0]]
        place = (leaf.file, leaf.function)
        seconds = _busy(stack)
        if stack.on_cpu_s > 0.0:
            unit_lines[stack.unit][place][leaf.line] += stack.on_cpu_s
        if seconds <= 0.0:
            continue
        if kinds.get(stack.unit) == "thread":
            busy[place][leaf.line] += seconds
            on_cpu[place][leaf.line] += stack.on_cpu_s
            by_thread[(place, leaf.line)][names.get(stack.unit, stack.unit)] += seconds
        else:
            by_task[(place, leaf.line)][names.get(stack.unit, stack.unit)] += seconds
    functions = [_function_lines(function, busy, on_cpu, by_thread, by_task) for function in report.functions]
    tasks = []
    for task in report.tasks:
        per_unit = unit_lines.get(task.id)
        if per_unit is None or not task.hot:
            tasks.append(task)
            continue
        hot = [spot.model_copy(update={"lines": [
            LineStat(line=line, self_s=_r(seconds), cpu_s=_r(seconds))
            for line, seconds in _top(per_unit.get((spot.file, spot.function), {}), LINES_PER_HOT_SPOT)]})
            for spot in task.hot]
        tasks.append(task.model_copy(update={"hot": hot}))
    return report.model_copy(update={"functions": functions, "tasks": tasks})


def _top(per_line: dict[int, float], limit: int) -> list[tuple[int, float]]:
    ranked = sorted(per_line.items(), key=lambda item: (-item[1], item[0]))
    return [(line, seconds) for line, seconds in ranked[:limit] if seconds > 0.0]


def _function_lines(function: FunctionStat, busy: PerLine, on_cpu: PerLine,
                     by_thread: dict[tuple[Place, int], dict[str, float]],
                     by_task: dict[tuple[Place, int], dict[str, float]]) -> FunctionStat:
    place = (function.file, function.function)
    per_line = busy.get(place)
    if not per_line:
        return function
    lines = []
    for line, seconds in _top(per_line, LINES_PER_FUNCTION):
        # the tasks or greenlets that ran the line, else the threads
        spenders = by_task.get((place, line)) or by_thread.get((place, line)) or {}
        units = [LineUnit(unit=name, seconds=_r(spent))
                 for name, spent in sorted(spenders.items(), key=lambda item: (-item[1], item[0]))[:UNITS_PER_LINE]]
        lines.append(LineStat(line=line, self_s=_r(seconds), cpu_s=_r(on_cpu[place].get(line, 0.0)), units=units))
    return function.model_copy(update={"lines": lines})


def _same_function(name: str, short: str) -> bool:
    """A finding names a function as the rules do (``handler``, ``Cart.total``); the table
    qualifies it with its module (``app.handler``)."""
    return name == short or name.endswith("." + short)


def hot_line(report: Report, finding: Finding) -> dict[str, object] | None:
    """The hottest sampled line of the function a finding is located in, as evidence:
    ``{"file", "line", "self_s", "units"}``; None when that function was not sampled."""
    where = finding.location
    candidates = [function for function in report.functions if function.file == where.file and function.lines]
    chosen = None
    if where.function:
        chosen = next((function for function in candidates if _same_function(function.function, where.function)),
                      None)
    if chosen is None:
        # no name to go by: the function whose sampled lines include the finding's line
        chosen = next((function for function in candidates
                       if any(line.line == where.line for line in function.lines)), None)
    if chosen is None:
        return None
    top = chosen.lines[0]
    return {"file": chosen.file, "line": top.line, "function": chosen.function, "self_s": top.self_s,
            "units": [unit.unit for unit in top.units]}


def with_hot_lines(report: Report) -> Report:
    """Each finding located in a sampled function gets that function's hottest line as
    ``evidence["hot_line"]`` (a rule's own evidence of that name is kept)."""
    findings = []
    for finding in report.findings:
        evidence = hot_line(report, finding) if "hot_line" not in finding.evidence else None
        if evidence is None:
            findings.append(finding)
        else:
            findings.append(finding.model_copy(update={"evidence": {**finding.evidence, "hot_line": evidence}}))
    return report.model_copy(update={"findings": findings})
