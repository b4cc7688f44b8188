"""asyncio programs under ``advisor run``: each named task's breakdown against its measured truth.

The programs (``programs/*.py``) measure their own truth around the work they do; see
this folder's conftest for how, and for the tolerance: max(15% of the unit's wall, 50 ms).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import PARTS, Profiled, assert_adds_up, assert_matches, assert_report_consistent, tolerance

Profile = Callable[[str], Profiled]


def ran(profiled: Profiled) -> None:
    assert profiled.process.returncode == 0, profiled.process.stderr[-4000:]
    assert profiled.process.stdout.strip().endswith("done"), profiled.process.stdout[-2000:]
    assert not profiled.report["run"]["partial"]
    failed = [probe for probe in profiled.report["run"].get("probes", []) if not probe["active"]]
    assert not failed, failed


# -- (a) timers, CPU, loopback I/O and a queue on one loop ------------------------------------

MIX = ("sleeper", "cruncher", "client", "producer", "consumer")


def test_mix_program_did_what_it_was_built_to_do(profile: Profile) -> None:
    mix = profile("async_mix")
    ran(mix)
    truth = mix.truth
    assert truth["sleeper"]["waiting_s"] == pytest.approx(0.5, abs=1e-6)
    assert truth["producer"]["waiting_s"] == pytest.approx(0.5, abs=1e-6)
    assert truth["cruncher"]["compute_s"] == pytest.approx(0.3, abs=0.01)
    # four round trips to a server that replies after 0.1 s, once the loop is free again
    assert truth["client"]["io_s"] == pytest.approx(0.4, abs=0.05)
    assert truth["client"]["waiting_s"] >= 0.2  # for the cruncher's event
    assert truth["consumer"]["waiting_s"] >= 0.4


@pytest.mark.parametrize("name", MIX)
def test_mix_unit_matches_its_truth(profile: Profile, name: str) -> None:
    mix = profile("async_mix")
    unit = mix.unit(name, "asyncio-task")
    assert unit["count"] == 1
    assert unit["target"].rsplit(".", 1)[-1] == name
    assert_matches(mix, name, "asyncio-task")
    assert_adds_up(unit)


def test_mix_units_are_what_their_names_say(profile: Profile) -> None:
    """Beyond the tolerance: each unit's largest part is the kind of time it was built to spend
    (the client's round trips are ~0.4 s of I/O, its wait for the cruncher depends on the CPU)."""
    mix = profile("async_mix")
    built_for = {"sleeper": "waiting_s", "cruncher": "compute_s", "producer": "waiting_s", "consumer": "waiting_s"}
    for name, part in built_for.items():
        breakdown = mix.unit(name)["breakdown"]
        assert max(("compute_s", "io_s", "waiting_s"), key=breakdown.__getitem__) == part, (name, breakdown)
    client = mix.unit("client")
    assert abs(client["breakdown"]["io_s"] - 0.4) <= tolerance(client["wall_s"])
    # the cruncher held the loop: the timers' extra time is scheduling, their waiting nominal
    assert mix.unit("sleeper")["breakdown"]["scheduling_s"] > 0.15
    assert mix.unit("sleeper")["breakdown"]["waiting_s"] == pytest.approx(0.5, abs=0.01)


# -- (b) time.sleep inside a coroutine holds the loop ------------------------------------------

def test_blocking_sleeper_blocks_and_waits(profile: Profile) -> None:
    blocking = profile("async_blocking")
    ran(blocking)
    sleeper = blocking.unit("sleeper", "asyncio-task")
    assert 0.6 <= blocking.truth["sleeper"]["blocking_s"] < 0.7
    assert_matches(blocking, "sleeper", "asyncio-task")
    allowed = tolerance(sleeper["wall_s"])
    assert abs(sleeper["blocking_s"] - 0.6) <= allowed
    assert abs(sleeper["breakdown"]["waiting_s"] - 0.6) <= allowed
    assert sleeper["blocking_s"] <= sleeper["breakdown"]["io_s"] + sleeper["breakdown"]["waiting_s"] + 1e-6
    assert_adds_up(sleeper)
    sites = [site for site in sleeper.get("blocking", []) if site["call"] == "time.sleep"]
    assert sites, sleeper.get("blocking")


@pytest.mark.parametrize("name", ["ticker-1", "ticker-2"])
def test_tickers_wait_their_nominal_ticks_and_lose_the_rest(profile: Profile, name: str) -> None:
    blocking = profile("async_blocking")
    ticker = blocking.unit(name, "asyncio-task")
    truth = blocking.truth[name]
    assert truth["waiting_s"] == pytest.approx(12 * 0.05, abs=1e-6)
    assert truth["scheduling_s"] > 0.3  # the sleeper held the loop under them
    assert_matches(blocking, name, "asyncio-task")
    assert ticker["breakdown"]["scheduling_s"] > 0.5 * truth["scheduling_s"]
    assert ticker["blocking_s"] == pytest.approx(0.0, abs=0.01)
    assert_adds_up(ticker)


# -- (e) 2,000 anonymous tasks fold into one entry; named tasks keep their names ----------------

def test_anonymous_tasks_fold_into_one_entry_per_target(profile: Profile) -> None:
    fold = profile("anonymous_fold")
    ran(fold)
    work = [task for task in fold.units("asyncio-task") if task["target"].rsplit(".", 1)[-1] == "work"]
    assert len(work) == 1, [(task["name"], task["count"]) for task in work]
    (entry,) = work
    assert entry["count"] == 2000
    assert entry["name"] == entry["target"]
    assert not any(task["name"].startswith("Task-") and task["target"] == entry["target"]
                   for task in fold.report["tasks"])
    assert_adds_up(entry)


@pytest.mark.parametrize("name", ["named-0", "named-1", "named-2"])
def test_named_tasks_next_to_a_fold_keep_their_names(profile: Profile, name: str) -> None:
    fold = profile("anonymous_fold")
    unit = fold.unit(name, "asyncio-task")
    assert unit["count"] == 1
    assert_matches(fold, name, "asyncio-task")
    assert_adds_up(unit)


# -- (f) several asyncio.run calls, and a loop in another thread ----------------------------------

@pytest.mark.parametrize("name", ["round-0", "round-1", "round-2", "threaded"])
def test_every_loop_of_the_run_is_profiled(profile: Profile, name: str) -> None:
    loops = profile("several_loops")
    ran(loops)
    unit = loops.unit(name, "asyncio-task")
    assert unit["count"] == 1
    assert loops.truth[name]["waiting_s"] == pytest.approx(0.1, abs=1e-6)
    assert_matches(loops, name, "asyncio-task")
    assert_adds_up(unit)


def test_each_asyncio_run_main_task_is_counted(profile: Profile) -> None:
    loops = profile("several_loops")
    mains = [task for task in loops.units("asyncio-task") if task["target"].rsplit(".", 1)[-1] == "run_round"]
    assert sum(task["count"] for task in mains) == 4
    assert loops.unit("loop-thread", "thread")["wall_s"] >= 0.1


# -- (g) a program's own task factory --------------------------------------------------------------

@pytest.mark.parametrize("name", ["custom-1", "custom-2", "legacy-1"])
def test_tasks_made_by_a_task_factory_have_entries(profile: Profile, name: str) -> None:
    factory = profile("task_factory")
    ran(factory)
    unit = factory.unit(name, "asyncio-task")
    assert unit["count"] == 1
    assert unit["target"].rsplit(".", 1)[-1] == "worker"
    assert factory.truth[name]["waiting_s"] == pytest.approx(0.2, abs=1e-6)
    assert_matches(factory, name, "asyncio-task")
    assert_adds_up(unit)


# -- tasks that never finish ----------------------------------------------------------------------

def test_a_task_that_never_ran_was_ready_all_its_wall(profile: Profile) -> None:
    lifecycle = profile("lifecycle")
    ran(lifecycle)
    unit = lifecycle.unit("never-ran", "asyncio-task")
    assert unit["wall_s"] >= 0.2
    assert_adds_up(unit)
    assert_matches(lifecycle, "never-ran", "asyncio-task", fields=PARTS)


def test_a_task_collected_while_pending_still_has_an_entry(profile: Profile) -> None:
    lifecycle = profile("lifecycle")
    stuck = [task for task in lifecycle.units("asyncio-task") if task["target"].rsplit(".", 1)[-1] == "stuck"]
    assert len(stuck) == 1, stuck
    assert stuck[0]["wall_s"] == pytest.approx(lifecycle.truth["stuck"]["wall_s"],
                                               abs=tolerance(stuck[0]["wall_s"]))


def test_a_task_collected_while_pending_accounts_its_wait(profile: Profile) -> None:
    lifecycle = profile("lifecycle")
    (unit,) = [task for task in lifecycle.units("asyncio-task") if task["target"].rsplit(".", 1)[-1] == "stuck"]
    assert_adds_up(unit)
    truth = lifecycle.truth["stuck"]
    assert abs(unit["breakdown"]["waiting_s"] - truth["waiting_s"]) <= tolerance(unit["wall_s"])


def test_a_task_collected_while_pending_keeps_its_name(profile: Profile) -> None:
    lifecycle = profile("lifecycle")
    assert lifecycle.unit("stuck", "asyncio-task")["count"] == 1


@pytest.mark.parametrize("program", ["async_mix", "async_blocking", "anonymous_fold", "several_loops", "task_factory"])
def test_every_unit_of_the_report_adds_up(profile: Profile, program: str) -> None:
    assert_report_consistent(profile(program))
