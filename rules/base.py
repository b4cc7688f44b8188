"""What a rule is, what it is given, and what it returns.

A rule is a small class with a stable ``slug`` and ``code``, a one-line ``summary``, a
docstring in fixed sections (What it does / Why is this bad? / Example / Use instead)
and a ``check(context)`` that yields ``Advice``: where the fix goes, what to write
instead, and the wall time it would save. Rules never measure and never print; the
engine turns advice into ranked findings with a severity from the savings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from advisor.frames import is_user_file
from advisor.profile import Report, Severity, Task


@dataclass
class Advice:
    """A finding as a rule states it; the engine adds code, severity and ranking."""

    file: str
    line: int
    function: str
    message: str
    fix: str
    savings_s: float
    evidence: dict[str, Any] = field(default_factory=dict)
    # the savings are judged against this wall time (default: the run's)
    base_s: float | None = None
    # never rank above this severity (e.g. advice that is fine to ignore in threads)
    max_severity: Severity = "high"


@dataclass
class LineCost:
    """Sampled time under one line of the program's code (inclusive of what it called)."""

    on_cpu_s: float = 0.0
    off_cpu_s: float = 0.0
    units: set[str] = field(default_factory=set)

    @property
    def total_s(self) -> float:
        return self.on_cpu_s + self.off_cpu_s


class RuleContext:
    """The report under analysis and helpers over it, shared by all rules of a run."""

    def __init__(self, report: Report, options: dict[str, dict[str, float]] | None = None) -> None:
        self.report = report
        self._options = options or {}

    @property
    def wall_s(self) -> float:
        return self.report.run.wall_s

    @property
    def cpu_count(self) -> int:
        return max(1, self.report.run.cpu_count)

    def option(self, rule: Rule, name: str) -> float:
        """A rule threshold: ``[tool.advisor.<slug>]`` in pyproject.toml, else the rule's default."""
        configured = self._options.get(rule.slug, {})
        return float(configured.get(name, rule.defaults[name]))

    def tasks(self, *kinds: str) -> list[Task]:
        return [task for task in self.report.tasks if not kinds or task.kind in kinds]

    @cached_property
    def _unit_kinds(self) -> dict[str, str]:
        return {task.id: task.kind for task in self.report.tasks}

    def line_costs(self, *kinds: str) -> dict[tuple[str, int], LineCost]:
        """Sampled time under each program line, from units of these kinds (threads by
        default, where every sample is counted once). Idle samples are left out."""
        return self._line_costs(kinds or ("thread",))

    def _line_costs(self, kinds: tuple[str, ...]) -> dict[tuple[str, int], LineCost]:
        cache: dict[tuple[str, ...], dict[tuple[str, int], LineCost]] = self.__dict__.setdefault(
            "_line_cost_cache", {})
        if kinds in cache:
            return cache[kinds]
        samples = self.report.samples
        unit_kinds = self._unit_kinds
        costs: dict[tuple[str, int], LineCost] = defaultdict(LineCost)
        for stack in samples.stacks:
            if unit_kinds.get(stack.unit) not in kinds or stack.state == "idle":
                continue
            seen: set[tuple[str, int]] = set()
            for index in stack.frames:
                frame = samples.frames[index]
                key = (frame.file, frame.line)
                if key in seen or not is_user_file(frame.file):
                    continue
                seen.add(key)
                cost = costs[key]
                cost.on_cpu_s += stack.on_cpu_s
                if stack.state != "running":
                    cost.off_cpu_s += stack.off_cpu_s
                cost.units.add(stack.unit)
        cache[kinds] = dict(costs)
        return cache[kinds]

    def frames_of(self, stack_index: int) -> list[tuple[str, str, int]]:
        """(function, file, line) of a sampled stack, leaf first."""
        samples = self.report.samples
        return [(samples.frames[i].function, samples.frames[i].file, samples.frames[i].line)
                for i in samples.stacks[stack_index].frames]


def unit_label(task: Task) -> str:
    """How a finding names a unit: its own name, or its coroutine for an anonymous task."""
    if task.kind == "asyncio-task" and (task.name.startswith("Task-") or task.count > 1):
        short = task.target.rsplit(".", 1)[-1]
        return f"{short}()" + (f" x{task.count}" if task.count > 1 else "")
    return task.name


class Rule:
    """Base class of every rule; subclasses set the class attributes and ``check``."""

    slug: ClassVar[str]
    code: ClassVar[str]
    summary: ClassVar[str]
    family: ClassVar[str]
    # the severity used when a finding's savings cannot be judged against a wall time
    default_severity: ClassVar[Severity] = "medium"
    defaults: ClassVar[dict[str, float]] = {}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        raise NotImplementedError

    def merged_message(self, first: str, evidence: dict[str, Any]) -> str:
        """The message of a finding merged from advice at one line (its evidence merged):
        by default the first advice's; rules whose message names one unit say more."""
        return first
