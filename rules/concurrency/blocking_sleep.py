"""ADV101 blocking-sleep: a sleep that holds an event loop, a gevent hub, or a lone thread."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from advisor.source import call_name

from ..base import Advice, Rule, RuleContext, unit_label
from .loop_blocking import HeldMessage, blocking_call, held_message, lone_thread_sites, loop_blocking_sites, savings_of

SLEEPS = ("sleep",)


class BlockingSleepRule(HeldMessage, Rule):
    """
    ## What it does
    Finds `time.sleep()` (or any blocking sleep) called while a coroutine step or a
    greenlet holds its event loop or gevent hub, measured by how long the loop was held.
    In a plain single-threaded script it also flags sleeps that take a large share of the
    run, at low severity.

    ## Why is this bad?
    While a coroutine sleeps with `time.sleep`, the event loop cannot run anything else:
    every other task waits, timers fire late, requests queue up. Under gevent without
    monkey-patching, `time.sleep` freezes every greenlet the same way.

    ## Example
    ```python
    async def poll(job):
        while not job.done():
            time.sleep(0.2)
    ```

    ## Use instead
    ```python
    async def poll(job):
        while not job.done():
            await asyncio.sleep(0.2)
    ```
    (`gevent.sleep(0.2)` in a greenlet, or `gevent.monkey.patch_all()` first thing.)
    """

    slug = "blocking-sleep"
    code = "ADV101"
    summary = "a sleep that blocks an event loop or gevent hub"
    family = "concurrency"
    default_severity = "high"
    defaults = {"min_blocked_s": 0.02, "script_share": 0.2}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        minimum = context.option(self, "min_blocked_s")
        for blocked in loop_blocking_sites(context, "waiting"):
            site, task = blocked.site, blocked.task
            call = blocking_call(site.file, site.line, SLEEPS)
            if call is None or site.seconds < minimum:
                continue
            written = ast.unparse(call)
            delay = ", ".join(ast.unparse(arg) for arg in call.args) or "..."
            if task.kind == "greenlet":
                fix = f"gevent.sleep({delay})  # or gevent.monkey.patch_all() before anything else"
                held = "the gevent hub"
            elif blocked.in_async_def:
                fix = f"await asyncio.sleep({delay})"
                held = "the event loop"
            else:
                fix = f"make {site.function.rsplit('.', 1)[-1]}() async and `await asyncio.sleep({delay})`, " \
                      f"or run it with `await asyncio.to_thread(...)`"
                held = "the event loop"
            yield Advice(
                file=site.file, line=site.line, function=site.function,
                message=held_message(f"{written} blocks {held} in {site.function.rsplit('.', 1)[-1]}()",
                                     [unit_label(task)], site.seconds),
                fix=fix,
                savings_s=savings_of(context, task, site.seconds),
                evidence={"units": [unit_label(task)], "blocked_s": round(site.seconds, 6), "call": call_name(call)},
            )
        yield from self._single_thread(context)

    def _single_thread(self, context: RuleContext) -> Iterator[Advice]:
        """A lone thread that spends a large share of the run asleep could overlap its work."""
        for thread, site in lone_thread_sites(context, "waiting", context.option(self, "script_share")):
            call = blocking_call(site.file, site.line, SLEEPS)
            if call is None:
                continue
            yield Advice(
                file=site.file, line=site.line, function=site.function,
                message=(f"{ast.unparse(call)} keeps the only thread asleep {site.seconds:.2f} s "
                         f"({100 * site.seconds / context.wall_s:.0f}% of the run)"),
                fix="overlap the waits: run the independent pieces as asyncio tasks "
                    "(`await asyncio.sleep`) or in threads",
                savings_s=site.seconds / 2.0,
                evidence={"units": [thread.name], "blocked_s": round(site.seconds, 6)},
                max_severity="low",
            )
