"""blocking-sleep (ADV101) on hand-built reports over a real source file: a sleep that holds an
event loop or gevent hub is found at its line with the fix for where it is (`await
asyncio.sleep(<arg>)` in an async def, `gevent.sleep` in a greenlet, the to_thread / make-it-async
variant in a plain function run by a task); the savings are what the others were kept from
running (capped by the time held); short sleeps, non-sleep waits and threads of a
multi-threaded program stay silent; a lone thread asleep for a large share of the run gets
the low-severity variant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.config import Settings
from advisor.engine import analyze
from advisor.profile import BlockingSite, Finding, Report, Task

APP = """\
import asyncio
import threading
import time
from time import sleep

import gevent

PAUSE = 0.3
lock = threading.Lock()


async def poll(job):
    while not job.done():
        time.sleep(0.2)


async def nap():
    sleep(PAUSE * 2)


def pause(delay):
    time.sleep(delay)


async def caller():
    pause(0.5)


def crawl(seconds):
    time.sleep(seconds)


async def guarded():
    lock.acquire()


async def quiet():
    time.sleep(0.2)  # advisor: ignore[blocking-sleep]


def main():
    time.sleep(1.5)
"""


def line_of(text: str) -> int:
    [line] = [number for number, source in enumerate(APP.splitlines(), 1) if source.strip() == text]
    return line


POLL = line_of("time.sleep(0.2)")
NAP = line_of("sleep(PAUSE * 2)")
PAUSE_LINE = line_of("time.sleep(delay)")
CRAWL = line_of("time.sleep(seconds)")
LOCK = line_of("lock.acquire()")
QUIET = line_of("time.sleep(0.2)  # advisor: ignore[blocking-sleep]")
MAIN = line_of("time.sleep(1.5)")
FUNCTIONS = {POLL: "app.poll", NAP: "app.nap", PAUSE_LINE: "app.pause", CRAWL: "app.crawl", LOCK: "app.guarded",
             QUIET: "app.quiet", MAIN: "app.main"}


def findings(report: Report, settings: Settings | None = None) -> list[Finding]:
    return list(analyze(report, settings, select=["blocking-sleep"]).findings)


@pytest.fixture
def blocked(build_task: Callable[..., Task], write_source: Callable[[str, str], str]) -> Callable[..., Task]:
    """A unit that held its loop `seconds` at `line` of app.py (kind "waiting", unless told)."""
    file = write_source("app.py", APP)

    def make(name: str, line: int, seconds: float, kind: str = "asyncio-task", site: str = "waiting",
             call: str = "time.sleep", **fields: Any) -> Task:
        task = build_task(name, kind=kind, blocking=seconds, **fields)
        task.blocking = [BlockingSite(kind=site, call=call, function=FUNCTIONS[line], file=file, line=line,
                                      seconds=seconds)]  # type: ignore[arg-type]
        return task

    return make


# --- in a coroutine --------------------------------------------------------------------------------------------------


def test_a_sleep_in_an_async_def_is_found_at_its_line_with_the_await_fix(
        blocked: Callable[..., Task], build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    poller = blocked("poller", POLL, 0.6, wall=1.0)
    ticker = build_task("ticker", wall=1.0, scheduling=0.5)
    [finding] = findings(build_report([poller, ticker], wall=1.0))
    assert (finding.rule, finding.code) == ("blocking-sleep", "ADV101")
    assert (finding.location.file, finding.location.line, finding.location.function) == ("app.py", POLL, "app.poll")
    assert finding.fix == "await asyncio.sleep(0.2)"
    assert "time.sleep(0.2) blocks the event loop in poll()" in finding.message
    assert "poller held it 0.60 s" in finding.message
    assert finding.estimated_savings_s == pytest.approx(0.5)
    assert finding.severity == "high"
    assert finding.evidence == {"units": ["poller"], "blocked_s": 0.6, "call": "time.sleep"}


def test_the_fix_keeps_the_sleeps_argument_as_written(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                                      build_report: Callable[..., Report]) -> None:
    napper = blocked("napper", NAP, 0.6)
    [finding] = findings(build_report([napper, build_task("ticker", scheduling=0.5)], wall=1.0))
    assert finding.location.line == NAP
    assert finding.fix == "await asyncio.sleep(PAUSE * 2)"
    assert "sleep(PAUSE * 2) blocks the event loop in nap()" in finding.message


def test_a_sleep_in_a_plain_function_run_by_a_task_gets_the_sync_variant(
        blocked: Callable[..., Task], build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    caller = blocked("caller", PAUSE_LINE, 0.5)
    [finding] = findings(build_report([caller, build_task("ticker", scheduling=0.5)], wall=1.0))
    assert (finding.location.line, finding.location.function) == (PAUSE_LINE, "app.pause")
    assert finding.fix == ("make pause() async and `await asyncio.sleep(delay)`, "
                           "or run it with `await asyncio.to_thread(...)`")
    assert "blocks the event loop in pause()" in finding.message


def test_a_sleep_in_a_greenlet_gets_the_gevent_fix(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                                   build_report: Callable[..., Report]) -> None:
    crawler = blocked("crawler", CRAWL, 0.4, kind="greenlet")
    other = build_task("other", kind="greenlet", scheduling=0.4)
    [finding] = findings(build_report([crawler, other], wall=1.0))
    assert finding.location.line == CRAWL
    assert finding.fix is not None
    assert finding.fix.startswith("gevent.sleep(seconds)")
    assert "gevent.monkey.patch_all()" in finding.fix
    assert "time.sleep(seconds) blocks the gevent hub in crawl()" in finding.message
    assert finding.estimated_savings_s == pytest.approx(0.4)


# --- savings ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "lost", "savings"), [
    (0.6, [0.5], 0.5),  # the others lost less than the loop was held
    (0.3, [0.9], 0.3),  # never more than the time held
    (0.6, [0.2, 0.4, 0.1], 0.4),  # the most any other lost, not their sum
    (0.6, [], 0.0),  # nobody else to run: nothing gained
])
def test_savings_are_the_least_of_held_and_the_others_scheduling(
        held: float, lost: list[float], savings: float, blocked: Callable[..., Task],
        build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    others = [build_task(f"ticker-{n}", scheduling=seconds) for n, seconds in enumerate(lost)]
    [finding] = findings(build_report([blocked("poller", POLL, held), *others], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(savings)
    if not savings:
        assert finding.severity == "info"


def test_a_units_own_scheduling_is_not_a_saving(blocked: Callable[..., Task],
                                                build_report: Callable[..., Report]) -> None:
    alone = blocked("poller", POLL, 0.6, scheduling=0.3)
    [finding] = findings(build_report([alone], wall=1.0))
    assert finding.estimated_savings_s == 0.0


def test_a_folded_entrys_scheduling_is_what_its_siblings_lost(blocked: Callable[..., Task],
                                                              build_report: Callable[..., Report]) -> None:
    folded = blocked("poll", POLL, 0.6, count=3, target="app.poll", wall=3.0, scheduling=0.4)
    [finding] = findings(build_report([folded], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(0.4)
    assert finding.evidence["units"] == ["poll() x3"]
    assert "poll() x3 held it 0.60 s" in finding.message


def test_a_folded_other_entry_counts_like_any_other(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                                    build_report: Callable[..., Report]) -> None:
    tickers = build_task("tick", count=5, target="app.tick", wall=5.0, scheduling=0.35)
    [finding] = findings(build_report([blocked("poller", POLL, 0.6), tickers], wall=1.0))
    assert finding.estimated_savings_s == pytest.approx(0.35)


def test_two_units_held_at_one_sleep_give_one_finding(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                                      build_report: Callable[..., Report]) -> None:
    first, second = blocked("poller-1", POLL, 0.2), blocked("poller-2", POLL, 0.3)
    [finding] = findings(build_report([first, second, build_task("ticker", scheduling=0.5)], wall=1.0))
    assert finding.evidence["units"] == ["poller-1", "poller-2"]
    assert finding.estimated_savings_s == pytest.approx(0.5)
    # the message and evidence speak for both units, not the first one alone
    assert finding.evidence["blocked_s"] == pytest.approx(0.5)
    assert finding.message.endswith("; 2 units held it 0.50 s in all (poller-1, poller-2)"), finding.message


# --- silent ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("held", "fires"), [(0.019, False), (0.02, True), (0.05, True)])
def test_silent_below_min_blocked_s(held: float, fires: bool, blocked: Callable[..., Task],
                                    build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    report = build_report([blocked("poller", POLL, held), build_task("ticker", scheduling=0.5)], wall=1.0)
    assert len(findings(report)) == int(fires)


def test_min_blocked_s_is_configurable(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                       build_report: Callable[..., Report]) -> None:
    report = build_report([blocked("poller", POLL, 0.3), build_task("ticker", scheduling=0.5)], wall=1.0)
    assert findings(report, Settings(options={"blocking-sleep": {"min_blocked_s": 0.5}})) == []
    assert len(findings(report, Settings(options={"blocking-sleep": {"min_blocked_s": 0.1}}))) == 1


def test_silent_on_a_wait_that_is_not_a_sleep(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                              build_report: Callable[..., Report]) -> None:
    holder = blocked("holder", LOCK, 0.6, call="threading.Lock.acquire")
    assert findings(build_report([holder, build_task("ticker", scheduling=0.5)], wall=1.0)) == []


def test_silent_on_an_io_site(blocked: Callable[..., Task], build_task: Callable[..., Task],
                              build_report: Callable[..., Report]) -> None:
    io = blocked("poller", POLL, 0.6, site="io")
    assert findings(build_report([io, build_task("ticker", scheduling=0.5)], wall=1.0)) == []


def test_silent_when_suppressed_on_the_line(blocked: Callable[..., Task], build_task: Callable[..., Task],
                                            build_report: Callable[..., Report]) -> None:
    quiet = blocked("quiet", QUIET, 0.6)
    assert findings(build_report([quiet, build_task("ticker", scheduling=0.5)], wall=1.0)) == []


def test_silent_for_threads_of_a_multi_threaded_program(blocked: Callable[..., Task],
                                                        build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, 1.5, kind="thread", id="thread:main", wall=2.0)
    worker = blocked("worker", CRAWL, 1.5, kind="thread", id="thread:worker", wall=2.0, scheduling=0.5)
    assert findings(build_report([main, worker], wall=2.0)) == []


# --- a lone thread ---------------------------------------------------------------------------------------------------


def test_a_lone_thread_asleep_for_a_large_share_gets_the_low_variant(blocked: Callable[..., Task],
                                                                     build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, 1.5, kind="thread", id="thread:main", wall=2.0)
    [finding] = findings(build_report([main], wall=2.0))
    assert (finding.location.line, finding.location.function) == (MAIN, "app.main")
    assert finding.severity == "low"  # capped: 37% of the run would otherwise be high
    assert finding.estimated_savings_s == pytest.approx(0.75)
    assert "time.sleep(1.5) keeps the only thread asleep 1.50 s (75% of the run)" in finding.message
    assert finding.fix is not None and "await asyncio.sleep" in finding.fix
    assert finding.evidence["units"] == ["MainThread"]


@pytest.mark.parametrize(("held", "fires"), [(0.39, False), (0.4, True)])
def test_the_lone_thread_variant_needs_script_share_of_the_run(held: float, fires: bool,
                                                               blocked: Callable[..., Task],
                                                               build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, held, kind="thread", id="thread:main", wall=2.0)
    assert len(findings(build_report([main], wall=2.0))) == int(fires)


def test_script_share_is_configurable(blocked: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    report = build_report([blocked("MainThread", MAIN, 0.3, kind="thread", id="thread:main", wall=2.0)], wall=2.0)
    assert findings(report) == []
    assert len(findings(report, Settings(options={"blocking-sleep": {"script_share": 0.1}}))) == 1


def test_no_lone_thread_variant_when_the_thread_runs_an_event_loop(
        blocked: Callable[..., Task], build_task: Callable[..., Task], build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", MAIN, 1.5, kind="thread", id="thread:main", wall=2.0)
    assert findings(build_report([main, build_task("Task-1", wall=1.0)], wall=2.0)) == []


def test_the_lone_thread_variant_ignores_waits_that_are_not_sleeps(blocked: Callable[..., Task],
                                                                   build_report: Callable[..., Report]) -> None:
    main = blocked("MainThread", LOCK, 1.5, kind="thread", id="thread:main", wall=2.0, call="threading.Lock.acquire")
    assert findings(build_report([main], wall=2.0)) == []
