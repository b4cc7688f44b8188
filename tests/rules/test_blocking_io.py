"""blocking-io (ADV201) on hand-built reports over a real source file: synchronous I/O that holds
an event loop or gevent hub is found at its line with the fix for where it is (an async client
or `asyncio.to_thread(<function>, ...)` under asyncio, monkey-patching under gevent); the
savings are what the others were kept from running (capped by the time held); short
calls, waits that are not I/O and threads of a multi-threaded program stay silent; a lone
thread waiting on I/O for a large share of the run gets the low-severity variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.config import Settings
from advisor.engine import analyze
from advisor.profile import BlockingSite, Finding, Report, Task

APP = """\
import asyncio
import socket
import time

import requests

URL = "http://localhost:8000/"


async def handler(request):
    body = requests.get(URL).text
    return body.upper()


def fetch(url):
    with socket.create_connection(("localhost", 8000)) as conn:
        return conn.recv(4096)


async def caller():
    return fetch(URL)


def crawl(url):
    return requests.get(url).text


async def quiet():
    return requests.get(URL).text  # advisor: ignore[ADV201]


async def poll():
    time.sleep(0.2)


def main():
    for page in range(10):
        requests.get(URL, params={"page": page})
"""


def line_of(text: str) -> int:
    [line] = [number for number, source in enumerate(APP.splitlines(), 1) if source.strip() == text]
    return line


HANDLER = line_of("body = requests.get(URL).text")
RECV = line_of("return conn.recv(4096)")
CRAWL = line_of("return requests.get(url).text")
QUIET = line_of("return requests.get(URL).text  # advisor: ignore[ADV201]")
SLEEP = line_of("time.sleep(0.2)")
MAIN = line_of('requests.get(URL, params={"page": page})')
FUNCTIONS = {HANDLER: "app.handler", RECV: "app.fetch", CRAWL: "app.crawl", QUIET: "app.quiet", SLEEP: "app.poll",
             MAIN: "app.main"}


def findings(report: Report, settings: Settings | None = None) -> list[Finding]:
    return list(analyze(report, settings, select=["blocking-io"]).findings)


@pytest.fixture
def blocked(build_task: Callable[..., Task], write_source: Callable[[str, str], str]) -> Callable[..., Task]:
    """A unit that held its loop `seconds` at `line` of app.py in `call` (kind "io", unless told)."""
    file = write_source("app.py", APP)

    def make(name: str, line: int, seconds: float, kind: str = "asyncio-task", site: str = "io",
             call: str = "requests.get", **fields: Any) -> Task:
        task = build_task(name, kind=kind, blocking=seconds, **fields)
        task.blocking = [BlockingSite(kind=site, call=call, function=FUNCTIONS[line], file=file, line=line,
                                      seconds=seconds)]  # type: ignore[arg-type]
        return task

    return make


# --- in a coroutine or greenlet --------------------------------------------------------------------------------------


def test_io_in_an_async_def_is_found_at_its_line_with_the_async_fix(
        blocked: Callable[..., Task], build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    handler = blocked("handler-1", HANDLER, 0.6)
    other = build_task("handler-2", scheduling=0.5)
    [finding] = findings(build_report([handler, other], wall=1.0))
    assert (finding.rule, finding.code) == ("blocking-io", "ADV201")
    assert (finding.location.file, finding.location.line, finding.location.function) == ("app.py", HANDLER,
                                                                                          "app.handler")
    assert finding.fix == ("an async client (asyncio streams, httpx.AsyncClient, aiofiles) "
                           "or `await asyncio.to_thread(handler, ...)`")
    assert finding.message == "blocking requests.get in handler() holds the event loop; handler-1 held it 0.60 s"
    assert finding.estimated_savings_s == pytest.approx(0.5)
    assert finding.severity == "high"
    assert finding.evidence == {"units": ["handler-1"], "blocked_s": 0.6, "call": "requests.get"}


def test_io_in_a_plain_function_run_by_a_task_names_that_function(
        blocked: Callable[..., Task], build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    caller = blocked("caller", RECV, 0.3, call="socket.socket.recv")
    [finding] = findings(build_report([caller, build_task("other", scheduling=0.3)], wall=1.0))
    assert (finding.location.line, finding.location.function) == (RECV, "app.fetch")
    assert finding.fix is not None and "`await asyncio.to_thread(fetch, ...)`" in finding.fix
    assert "blocking socket.socket.recv in fetch() holds the event loop" in finding.message


def test_io_in_a_greenlet_gets_the_monkey_patching_fix(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                                       build_report: Callable[..., Report]) -> None:
    crawler = blocked("crawler", CRAWL, 0.4, kind="greenlet")
    other = build_task("other", kind="greenlet", scheduling=0.4)
    [finding] = findings(build_report([crawler, other], wall=1.0))
    assert finding.location.line == CRAWL
    assert finding.fix == "gevent.monkey.patch_all() before anything else, or a gevent-aware client"
    assert "blocking requests.get in crawl() holds the gevent hub; crawler held it 0.40 s" in finding.message
    assert finding.estimated_savings_s == pytest.approx(0.4)


# --- savings ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "lost", "savings"), [
    (0.6, [0.5], 0.5),
    (0.3, [0.9], 0.3),
    (0.6, [0.2, 0.4, 0.1], 0.4),
    (0.6, [], 0.0),
])
def test_savings_are_the_least_of_held_and_the_others_scheduling(
        held: float, lost: list[float], savings: float, blocked: Callable[..., Task],
        build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    others = [build_task(f"other-{n}", scheduling=seconds) for n, seconds in enumerate(lost)]
    [finding] = findings(build_report([blocked("handler", HANDLER, held), *others], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(savings)


def test_a_units_own_scheduling_is_not_a_saving(blocked: Callable[..., Task],
                                                build_report: Callable[..., Report]) -> None:
    [finding] = findings(build_report([blocked("handler", HANDLER, 0.6, scheduling=0.3)], wall=1.0))
    assert finding.estimated_savings_s == 0.0
    assert finding.severity == "info"


def test_a_folded_entrys_scheduling_is_what_its_siblings_lost(blocked: Callable[..., Task],
                                                              build_report: Callable[..., Report]) -> None:
    folded = blocked("handler", HANDLER, 0.6, count=4, target="app.handler", wall=4.0, scheduling=0.45)
    [finding] = findings(build_report([folded], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(0.45)
    assert finding.evidence["units"] == ["handler() x4"]


def test_a_folded_greenlet_entry_counts_too(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                           build_report: Callable[..., Report]) -> None:
    crawler = blocked("crawler", CRAWL, 0.6, kind="greenlet")
    workers = build_task("worker", kind="greenlet", count=8, wall=8.0, scheduling=0.25)
    [finding] = findings(build_report([crawler, workers], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(0.25)


# --- silent ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "fires"), [(0.019, False), (0.02, True)])
def test_silent_below_min_blocked_s(held: float, fires: bool, blocked: Callable[..., Task],
                                    build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    report = build_report([blocked("handler", HANDLER, held), build_task("other", scheduling=0.5)], wall=1.0)
    assert len(findings(report)) == int(fires)


def test_min_blocked_s_is_configurable(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                       build_report: Callable[..., Report]) -> None:
    report = build_report([blocked("handler", HANDLER, 0.3), build_task("other", scheduling=0.5)], wall=1.0)
    assert findings(report, Settings(options={"blocking-io": {"min_blocked_s": 0.5}})) == []
    # blocking-sleep's threshold of the same name is not blocking-io's
    assert len(findings(report, Settings(options={"blocking-sleep": {"min_blocked_s": 0.5}}))) == 1


def test_silent_on_a_wait_that_is_not_io(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                         build_report: Callable[..., Report]) -> None:
    poller = blocked("poller", SLEEP, 0.6, site="waiting", call="time.sleep")
    assert findings(build_report([poller, build_task("other", scheduling=0.5)], wall=1.0)) == []


def test_silent_when_suppressed_by_code(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                       build_report: Callable[..., Report]) -> None:
    quiet = blocked("quiet", QUIET, 0.6)
    assert findings(build_report([quiet, build_task("other", scheduling=0.5)], wall=1.0)) == []


def test_silent_for_threads_of_a_multi_threaded_program(blocked: Callable[..., Task],
                                                        build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, 1.5, kind="thread", id="thread:main", wall=2.0)
    worker = blocked("worker", CRAWL, 1.5, kind="thread", id="thread:worker", wall=2.0, scheduling=0.5)
    assert findings(build_report([main, worker], wall=2.0)) == []


# --- a lone thread ---------------------------------------------------------------------------------------------------


def test_a_lone_thread_waiting_on_io_for_a_large_share_gets_the_low_variant(
        blocked: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, 1.2, kind="thread", id="thread:main", wall=2.0)
    [finding] = findings(build_report([main], wall=2.0))
    assert (finding.location.line, finding.location.function) == (MAIN, "app.main")
    assert finding.severity == "low"
    assert finding.estimated_savings_s == pytest.approx(0.6)
    assert finding.message == "the only thread waits 1.20 s in requests.get (60% of the run), one request at a time"
    assert finding.fix is not None and "ThreadPoolExecutor" in finding.fix
    assert finding.evidence["units"] == ["MainThread"]


@pytest.mark.parametrize(("held", "fires"), [(0.59, False), (0.6, True)])
def test_the_lone_thread_variant_needs_script_share_of_the_run(held: float, fires: bool,
                                                               blocked: Callable[..., Task],
                                                               build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, held, kind="thread", id="thread:main", wall=2.0)
    assert len(findings(build_report([main], wall=2.0))) == int(fires)


def test_no_lone_thread_variant_beside_tasks_or_greenlets(blocked: Callable[..., Task],
                                                          build_task: Callable[..., Task],
                                                          build_report: Callable[..., Report]) -> None:
    for kind in ("asyncio-task", "greenlet"):
        main = blocked("MainThread", MAIN, 1.5, kind="thread", id="thread:main", wall=2.0)
        assert findings(build_report([main, build_task("unit", kind=kind)], wall=2.0)) == [], kind


def test_the_lone_thread_variant_ignores_waits(blocked: Callable[..., Task],
                                               build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", SLEEP, 1.5, kind="thread", id="thread:main", wall=2.0, site="waiting",
                   call="time.sleep")
    assert findings(build_report([main], wall=2.0)) == []
