"""ADV201 blocking-io: synchronous I/O while holding an event loop or gevent hub."""

from __future__ import annotations

from collections.abc import Iterator

from ..base import Advice, Rule, RuleContext, unit_label
from ..concurrency.loop_blocking import HeldMessage, held_message, lone_thread_sites, loop_blocking_sites, savings_of


class BlockingIoRule(HeldMessage, Rule):
    """
    ## What it does
    Finds blocking I/O (a plain socket, `requests`, a file read, a subprocess) done while a
    coroutine step or greenlet holds its event loop or gevent hub, measured by how long
    the loop was held. In a single-threaded script it flags sequential blocking I/O that
    takes a large share of the run, at low severity.

    ## Why is this bad?
    The whole loop waits for the slowest server: every other task is stalled, and the
    program's concurrency is gone.

    ## Example
    ```python
    async def handler(request):
        body = requests.get(URL).text
    ```

    ## Use instead
    ```python
    async def handler(request):
        async with httpx.AsyncClient() as client:
            body = (await client.get(URL)).text
        # or: body = await asyncio.to_thread(fetch, URL)
    ```
    (under gevent: `gevent.monkey.patch_all()` before anything else is imported.)
    """

    slug = "blocking-io"
    code = "ADV201"
    summary = "synchronous I/O inside a coroutine or an unpatched greenlet"
    family = "io"
    default_severity = "high"
    defaults = {"min_blocked_s": 0.02, "script_share": 0.3}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        minimum = context.option(self, "min_blocked_s")
        for blocked in loop_blocking_sites(context, "io"):
            site, task = blocked.site, blocked.task
            if site.seconds < minimum:
                continue
            short = site.function.rsplit(".", 1)[-1]
            if task.kind == "greenlet":
                fix = "gevent.monkey.patch_all() before anything else, or a gevent-aware client"
                held = "the gevent hub"
            else:
                fix = ("an async client (asyncio streams, httpx.AsyncClient, aiofiles) "
                       f"or `await asyncio.to_thread({short}, ...)`")
                held = "the event loop"
            yield Advice(
                file=site.file, line=site.line, function=site.function,
                message=held_message(f"blocking {site.call} in {short}() holds {held}", [unit_label(task)],
                                     site.seconds),
                fix=fix,
                savings_s=savings_of(context, task, site.seconds),
                evidence={"units": [unit_label(task)], "blocked_s": round(site.seconds, 6), "call": site.call},
            )
        for thread, site in lone_thread_sites(context, "io", context.option(self, "script_share")):
            yield Advice(
                file=site.file, line=site.line, function=site.function,
                message=(f"the only thread waits {site.seconds:.2f} s in {site.call} "
                         f"({100 * site.seconds / context.wall_s:.0f}% of the run), one request at a time"),
                fix="overlap independent requests: asyncio with an async client, or a ThreadPoolExecutor",
                savings_s=site.seconds / 2.0,
                evidence={"units": [thread.name], "blocked_s": round(site.seconds, 6)},
                max_severity="low",
            )
