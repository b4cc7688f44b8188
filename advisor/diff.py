"""Comparing two saved reports: what got faster or slower, and which findings came or went.

Units are matched by kind and name (a folded entry by its target's name), functions by
name and file, findings by rule, file and line (the same key as the CI gate). The result
is plain data with a text and a JSON rendering, so a pipeline can keep it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .gate import finding_key
from .profile import CodeVersion, Report, Task
from .version import describe

PARTS = ("wall_s", "compute_s", "io_s", "waiting_s", "scheduling_s")


@dataclass
class UnitDelta:
    kind: str
    name: str
    old: dict[str, float] | None
    new: dict[str, float] | None

    def change(self, part: str) -> float:
        return (self.new or {}).get(part, 0.0) - (self.old or {}).get(part, 0.0)


@dataclass
class FunctionDelta:
    function: str
    file: str
    old_self_s: float
    new_self_s: float
    old_total_s: float
    new_total_s: float


@dataclass
class ReportDiff:
    old_wall_s: float
    new_wall_s: float
    units: list[UnitDelta] = field(default_factory=list)
    functions: list[FunctionDelta] = field(default_factory=list)
    added: list[dict[str, object]] = field(default_factory=list)
    resolved: list[dict[str, object]] = field(default_factory=list)
    # the code versions of the two runs (run.code_version), when they were recorded
    old_version: dict[str, object] | None = None
    new_version: dict[str, object] | None = None

    def between(self) -> str | None:
        """``between release A (abc1234) and release B (def5678, dirty)``, or None when neither
        run recorded its code version."""
        if self.old_version is None and self.new_version is None:
            return None
        old = describe(CodeVersion.model_validate(self.old_version) if self.old_version else None)
        new = describe(CodeVersion.model_validate(self.new_version) if self.new_version else None)
        return f"between {old} and {new}"


def unit_figures(task: Task) -> dict[str, float]:
    split = task.breakdown
    return {"wall_s": task.wall_s, "compute_s": split.compute_s, "io_s": split.io_s,
            "waiting_s": split.waiting_s, "scheduling_s": split.scheduling_s, "count": float(task.count)}


def diff_reports(old: Report, new: Report, top_functions: int = 20) -> ReportDiff:
    result = ReportDiff(old_wall_s=old.run.wall_s, new_wall_s=new.run.wall_s,
                        old_version=old.run.code_version.model_dump() if old.run.code_version else None,
                        new_version=new.run.code_version.model_dump() if new.run.code_version else None)
    old_units = {(t.kind, t.name): t for t in old.tasks}
    new_units = {(t.kind, t.name): t for t in new.tasks}
    for key in dict.fromkeys([*old_units, *new_units]):
        before, after = old_units.get(key), new_units.get(key)
        result.units.append(UnitDelta(key[0], key[1], unit_figures(before) if before else None,
                                      unit_figures(after) if after else None))
    result.units.sort(key=lambda delta: -abs(delta.change("wall_s")))
    old_functions = {(f.function, f.file): f for f in old.functions}
    new_functions = {(f.function, f.file): f for f in new.functions}
    deltas = []
    for place in dict.fromkeys([*old_functions, *new_functions]):
        was, now = old_functions.get(place), new_functions.get(place)
        deltas.append(FunctionDelta(place[0], place[1], was.self_s if was else 0.0, now.self_s if now else 0.0,
                                    was.total_s if was else 0.0, now.total_s if now else 0.0))
    deltas.sort(key=lambda delta: -abs(delta.new_self_s - delta.old_self_s))
    result.functions = deltas[:top_functions]
    old_keys = {finding_key(f) for f in old.findings}
    new_keys = {finding_key(f) for f in new.findings}
    result.added = [f.model_dump() for f in new.findings if finding_key(f) not in old_keys]
    result.resolved = [f.model_dump() for f in old.findings if finding_key(f) not in new_keys]
    return result


def diff_json(diff: ReportDiff) -> str:
    return json.dumps(asdict(diff), indent=2) + "\n"


def _signed(seconds: float) -> str:
    return f"{seconds:+.3f} s"


def diff_text(diff: ReportDiff) -> str:
    """A plain-text summary: the run, the units that changed most, functions, findings."""
    lines = [f"wall {diff.old_wall_s:.3f} s -> {diff.new_wall_s:.3f} s ({_signed(diff.new_wall_s - diff.old_wall_s)})",
             "", "units (change in seconds):",
             f"  {'unit':<30} {'kind':<13} " + " ".join(f"{part[:-2]:>10}" for part in PARTS)]
    between = diff.between()
    if between is not None:
        lines.insert(0, between)
    for unit in diff.units:
        state = "" if unit.old and unit.new else ("  (new)" if unit.new else "  (gone)")
        figures = " ".join(f"{unit.change(part):>+10.3f}" for part in PARTS)
        lines.append(f"  {unit.name[:30]:<30} {unit.kind:<13} {figures}{state}")
    if diff.functions:
        lines += ["", "functions (self time):"]
        for function in diff.functions:
            lines.append(f"  {function.function[:50]:<50} {function.old_self_s:>8.3f} -> {function.new_self_s:.3f} s")
    lines += ["", f"findings added: {len(diff.added)}, resolved: {len(diff.resolved)}"]
    for label, findings in (("+", diff.added), ("-", diff.resolved)):
        for finding in findings:
            location = finding["location"]
            lines.append(f"  {label} {finding['code']} {finding['rule']} at {location['file']}:{location['line']}"  # type: ignore[index]
                         f" [{finding['severity']}]")
    return "\n".join(lines) + "\n"
