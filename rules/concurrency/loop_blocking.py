"""Shared reasoning of the rules about calls that block an event loop or gevent hub.

The probes give, per task or greenlet, the places where it was off the CPU while
holding its loop (``Task.blocking``). These helpers pick the sites of one kind, find
the blocking call on the line, and estimate what making it non-blocking would save.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from advisor.profile import BlockingSite, Task
from advisor.source import call_name, calls_on_line, enclosing_function

from ..base import RuleContext

LOOP_KINDS = ("asyncio-task", "greenlet")


@dataclass
class BlockedAt:
    task: Task
    site: BlockingSite
    in_async_def: bool


def blocking_call(file: str, line: int, wanted: tuple[str, ...]) -> ast.Call | None:
    """The call on the line whose callee's last name is one of `wanted`."""
    for call in reversed(calls_on_line(file, line)):
        name = call_name(call).rsplit(".", 1)[-1]
        if name in wanted:
            return call
    return None


def loop_blocking_sites(context: RuleContext, kind: str) -> Iterator[BlockedAt]:
    """Blocking sites of one kind ("io" or "waiting") in tasks and greenlets."""
    for task in context.tasks(*LOOP_KINDS):
        for site in task.blocking:
            if site.kind != kind or not site.file:
                continue
            function = enclosing_function(site.file, site.line)
            yield BlockedAt(task, site, isinstance(function, ast.AsyncFunctionDef))


def lone_thread_sites(context: RuleContext, kind: str, share: float) -> Iterator[tuple[Task, BlockingSite]]:
    """In a program with one thread and no tasks or greenlets: its blocking sites of this
    kind that took at least `share` of the run (the work could overlap, but nothing waits)."""
    threads = context.tasks("thread")
    if len(threads) != 1 or context.tasks(*LOOP_KINDS):
        return
    for site in threads[0].blocking:
        if site.kind == kind and site.file and site.seconds >= share * context.wall_s:
            yield threads[0], site


def others_lost(context: RuleContext, task: Task) -> float:
    """The most time any other task or greenlet spent ready but not running (a folded entry
    holds several units: its own scheduling is what its siblings lost)."""
    lost = [other.breakdown.scheduling_s for other in context.tasks(*LOOP_KINDS)
            if other.id != task.id or other.count > 1]
    return max(lost, default=0.0)


def savings_of(context: RuleContext, task: Task, blocked_s: float) -> float:
    """Making the call non-blocking gives the loop back for as long as it was held, but the
    run only gets shorter by what the others were kept from running (at most)."""
    return min(blocked_s, others_lost(context, task))


def held_message(what: str, units: list[str], blocked_s: float) -> str:
    """'<what>; <unit> held it N s', or, once the advice of several units at one line is
    merged, how many units held it and for how long in all."""
    if len(units) <= 1:
        return f"{what}; {units[0] if units else 'a unit'} held it {blocked_s:.2f} s"
    named = ", ".join(units[:3]) + (", ..." if len(units) > 3 else "")
    return f"{what}; {len(units)} units held it {blocked_s:.2f} s in all ({named})"


class HeldMessage:
    """Mixin of the loop-blocking rules: a merged finding's message counts every unit."""

    def merged_message(self, first: str, evidence: dict[str, Any]) -> str:
        if " held it " not in first:  # not advice about a held loop (a lone thread's sleep)
            return first
        what = first.rsplit("; ", 1)[0]
        return held_message(what, list(evidence.get("units", [])), float(evidence.get("blocked_s", 0.0)))
