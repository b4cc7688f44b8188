"""gevent's own machinery under ``advisor run``: its monitor thread, and monkey-patching that
always comes after advisor started (advisor's probes and sampler thread are already there)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Profiled = Any  # conftest.Profiled
ProfileOnce = Callable[..., Profiled]
Near = Callable[[float, float, float, str], None]

# -- (f) gevent's monitor thread installs its own greenlet trace function on top of advisor's --

MONITORED = """
    import time

    import gevent

    {config}

    def blocker():
        time.sleep(0.15)


    def napper():
        gevent.sleep(0.1)


    glets = [gevent.spawn(blocker), gevent.spawn(napper)]
    glets[0].name = "blocker"
    glets[1].name = "napper"
    gevent.joinall(glets, raise_error=True)
    print("monitored", gevent.get_hub().periodic_monitoring_thread is not None)
"""
BY_CONFIG = MONITORED.format(config="gevent.config.monitor_thread = True\n    gevent.config.max_blocking_time = 0.05\n")
BY_ENV = MONITORED.format(config="")
MONITOR_ENV = {"GEVENT_MONITOR_THREAD_ENABLE": "1", "GEVENT_MAX_BLOCKING_TIME": "0.05"}


@pytest.mark.parametrize("how", ["config", "env"])
def test_monitor_thread_on_program_runs_and_both_tracers_see_the_switches(
        how: str, profile_once: ProfileOnce, near: Near) -> None:
    if how == "config":
        run = profile_once("monitor-config", BY_CONFIG)
    else:
        run = profile_once("monitor-env", BY_ENV, env=MONITOR_ENV)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "monitored True"
    # gevent's tracer (installed after advisor's) still saw the hub blocked...
    assert "appears to be blocked" in run.stderr
    # ...and advisor's, chained under it, saw every switch
    assert run.probe("greenlet")["active"], run.probe("greenlet")
    assert run.unit("Hub")["kind"] == "greenlet"
    blocker, napper = run.unit("blocker"), run.unit("napper")
    near(blocker["blocking_s"], 0.15, blocker["wall_s"], "blocker blocking")
    near(napper["breakdown"]["waiting_s"], 0.1, napper["wall_s"], "napper waiting")
    near(napper["breakdown"]["scheduling_s"], 0.15, napper["wall_s"], "napper scheduling (held by blocker)")
    line = run.line_of("time.sleep(0.15)")
    assert any(f["location"]["line"] == line for f in run.findings("blocking-sleep")), run.report["findings"]


# -- (h) the program patches after advisor started ---------------------------------------------

PATCH_LATE = """
    from gevent import monkey

    monkey.patch_all()

    import queue
    import threading
    import time

    results = queue.Queue()


    def worker(n):
        time.sleep(0.1)
        results.put(n * n)


    threads = [threading.Thread(target=worker, args=(n,), name=f"patched-{n}") for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(sorted(results.get() for _ in range(3)))
"""


@pytest.fixture
def patched_late(profile_once: ProfileOnce) -> Profiled:
    return profile_once("patch-late", PATCH_LATE)


def test_program_patching_after_advisor_started_runs_and_is_reported(patched_late: Profiled, near: Near) -> None:
    assert patched_late.returncode == 0, patched_late.stderr[-3000:]
    assert patched_late.stdout.strip() == "[0, 1, 4]"
    report = patched_late.report
    assert report["run"]["exit_code"] == 0 and not report["run"]["partial"]
    assert patched_late.unit("MainThread")["kind"] == "thread"
    for n in range(3):
        worker = patched_late.unit(f"patched-{n}")
        # patched, time.sleep is a gevent timer: the worker waited its 0.1 s, it did not hold the hub
        near(worker["breakdown"]["waiting_s"], 0.1, worker["wall_s"], f"patched-{n} waiting")
        near(worker["blocking_s"], 0.0, worker["wall_s"], f"patched-{n} blocking")
    assert not patched_late.findings("blocking-sleep"), patched_late.findings("blocking-sleep")


def test_program_patching_after_advisor_started_keeps_the_greenlet_probe(patched_late: Profiled) -> None:
    probe = patched_late.probe("greenlet")
    assert probe["active"], probe


def test_program_patching_after_advisor_started_gets_no_advisor_noise(patched_late: Profiled) -> None:
    assert "Exception ignored" not in patched_late.stderr, patched_late.stderr[:1500]
    assert "KeyError" not in patched_late.stderr, patched_late.stderr[:1500]


def test_program_patching_after_advisor_started_reports_each_thread_once(patched_late: Profiled) -> None:
    entries = [(unit["kind"], unit["name"], unit["target"], unit["count"]) for unit in patched_late.report["tasks"]
               if unit["name"].startswith("patched-") or unit["target"].endswith("Thread._bootstrap")
               or unit["target"].endswith(".worker")]
    assert sum(count for *_, count in entries) == 3, entries
