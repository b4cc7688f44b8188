"""The replay on hand-made runs whose outcome is worked out by hand in each test's docstring."""

from __future__ import annotations

import pytest

from advisor.profile import AwaitSite, BlockingSite, Finding, FunctionStat, Report, Task
from advisor.whatif import build_model, predict, replay, with_prediction
from advisor.whatif.replay import Edit, Outcome

from .conftest import awaited, finding, gathered_units, report, sleep_site, unit


def after(outcome: Outcome, label: str) -> float:
    return next(item.after_s for item in outcome.units if item.unit.label == label)


def blocking_sleep_run() -> Report:
    """examples/blocking-sleep in figures: a poller blocks the loop 0.6 s; two tickers (one
    fold) need 0.48 s each of their own and lost 0.52 s each to it; main() gathers them."""
    return report([unit("poll", wall=0.6, blocked=0.6, blocking=[sleep_site(0.6)]),
                   unit("tick", wall=2.0, scheduling=1.04, count=2, target="app.tick"),
                   *gathered_units(1.0)], wall=1.0)


def test_replaying_no_fix_gives_the_measured_run() -> None:
    outcome = predict(blocking_sleep_run(), [])
    assert outcome is not None
    assert (outcome.wall_before_s, outcome.wall_after_s, outcome.units) == (1.0, 1.0, [])


def test_a_blocking_sleep_saves_what_the_others_lost_not_what_it_blocked() -> None:
    """Without the block the tickers take their own 0.48 s, the poller its own 0.6 s: the run
    takes 0.6 s, a saving of 0.4 s (the rule of thumb said the 0.6 s blocked)."""
    run = blocking_sleep_run()
    outcome = predict(run, [finding("blocking-sleep", 18, units=["poll"], blocked_s=0.6)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.4)
    assert outcome.wall_after_s == pytest.approx(0.6)
    assert after(outcome, "tick() x2") == pytest.approx(0.96)  # both tickers, their own time only
    assert after(outcome, "poll") == pytest.approx(0.6)  # the sleeps still take their time
    assert after(outcome, "main()") == pytest.approx(0.6)  # waits for the others: ends with them


def test_the_engine_sets_savings_and_prediction_and_keeps_the_rules_estimate() -> None:
    run = blocking_sleep_run()
    sleep = finding("blocking-sleep", 18, units=["poll"], blocked_s=0.6, savings=0.6)
    assert with_prediction(run, sleep, build_model(run))
    assert sleep.estimated_savings_s == pytest.approx(0.4)
    assert sleep.prediction is not None
    assert (sleep.prediction.wall_before_s, sleep.prediction.rule_estimate_s) == (1.0, 0.6)
    assert sleep.prediction.wall_after_s == pytest.approx(0.6)
    # a saved report replayed again starts from the rule's estimate, not from the replay's
    assert with_prediction(run, sleep, build_model(run))
    assert sleep.prediction.rule_estimate_s == 0.6


def test_two_blocking_sites_of_one_poller_share_its_critical_path() -> None:
    """The poller blocks 0.3 s at each of two lines; the ticker needs 0.3 s and lost 0.6 s.
    Either fix alone gives the ticker 0.3 s back (0.3 s saved); both give it 0.6 s, but
    the poller's own 0.6 s path is then the run: together they also save only 0.3 s."""
    run = report([unit("poll", wall=0.6, blocked=0.6, blocking=[sleep_site(0.3, 18), sleep_site(0.3, 20)]),
                  unit("tick", wall=0.9, scheduling=0.6), *gathered_units(0.9)], wall=0.9)
    first = finding("blocking-sleep", 18, units=["poll"])
    second = finding("blocking-sleep", 20, units=["poll"])
    alone = [predict(run, [fix]) for fix in (first, second)]
    both = predict(run, [first, second])
    assert [outcome.savings_s for outcome in alone if outcome] == [pytest.approx(0.3), pytest.approx(0.3)]
    assert both is not None and both.savings_s == pytest.approx(0.3)


def test_fixing_one_of_two_blocking_units_leaves_the_other_blocking_everyone() -> None:
    """A and B each block 0.6 s and lost 0.6 s to each other; the ticker needs 0.3 s and
    lost 1.2 s. Fixing A frees B (0.6 s) and half the ticker's loss (0.9 s), but A still
    loses its 0.6 s to B: 1.2 s, a saving of 0.3 s. Fixing both: 0.6 s, a saving of 0.9 s,
    more than the sum of the two alone."""
    run = report([unit("A", wall=1.2, blocked=0.6, scheduling=0.6, blocking=[sleep_site(0.6, 18)]),
                  unit("B", wall=1.2, blocked=0.6, scheduling=0.6, blocking=[sleep_site(0.6, 28)]),
                  unit("tick", wall=1.5, scheduling=1.2), *gathered_units(1.5)], wall=1.5)
    fix_a = finding("blocking-sleep", 18, units=["A"])
    fix_b = finding("blocking-sleep", 28, units=["B"])
    only_a, both = predict(run, [fix_a]), predict(run, [fix_a, fix_b])
    assert only_a is not None and both is not None
    assert only_a.savings_s == pytest.approx(0.3)
    assert (after(only_a, "B"), after(only_a, "tick")) == (pytest.approx(0.6), pytest.approx(0.9))
    assert both.savings_s == pytest.approx(0.9)


def test_a_fix_off_the_critical_path_saves_the_run_nothing() -> None:
    """A CPU-bound thread runs until 1.0 s on its own: freeing the loop shortens the ticker,
    not the run."""
    run = report([unit("poll", wall=0.6, blocked=0.6, blocking=[sleep_site(0.6)]),
                  unit("tick", wall=0.9, scheduling=0.6), *gathered_units(1.0),
                  unit("crunch", "thread", wall=1.0, compute=0.95)], wall=1.0)
    outcome = predict(run, [finding("blocking-sleep", 18, units=["poll"])])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.0)
    assert after(outcome, "tick") == pytest.approx(0.3)


def test_overlapped_awaits_take_one_call_instead_of_all() -> None:
    """14 sequential calls of 0.05 s: overlapped they take one call's 0.05 s; the server's
    handlers (a fold, one after the other) end with the fetcher and do not hold the run."""
    run = report([unit("fetcher", wall=0.72, io=0.7, awaits=[awaited(0.7, 35, calls=14)]),
                  unit("serve", wall=0.7, count=14, start=0.01, end=0.71, target="app.serve"),
                  unit("MainThread", "thread", wall=0.72, compute=0.01)], wall=0.72)
    outcome = predict(run, [finding("sequential-awaits", 35, units=["fetcher"], calls=14, io_s=0.7)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.65)
    assert after(outcome, "fetcher") == pytest.approx(0.07)


def lock_wait(seconds: float) -> BlockingSite:
    return BlockingSite(kind="waiting", call="with cache_lock", function="app.lookup", file="app.py", line=42,
                        seconds=seconds)


def idle(seconds: float) -> BlockingSite:
    return BlockingSite(kind="waiting", call="concurrent.futures.thread._worker", function="", file="", line=0,
                        seconds=seconds)


def test_a_shorter_critical_section_spreads_the_pool_work_evenly() -> None:
    """Four pool workers did 0.64 s of lookups in all, one at a time behind the lock; with the
    round trip outside it, each does a quarter: 0.16 s instead of 0.64 s."""
    workers = [(0.28, 0.24, 0.12), (0.24, 0.40, 0.0), (0.04, 0.56, 0.04), (0.08, 0.48, 0.08)]
    tasks = [unit(f"ThreadPoolExecutor-0_{n}", "thread", wall=0.64, io=io,
                  blocking=[lock_wait(lock)] + ([idle(rest)] if rest else []))
             for n, (io, lock, rest) in enumerate(workers)]
    run = report([*tasks, unit("MainThread", "thread", wall=0.65)], wall=0.65)
    names = [task.name for task in tasks]
    outcome = predict(run, [finding("lock-contention", 42, units=names, lock_wait_s=1.68)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.48)
    assert [after(outcome, name) for name in names] == [pytest.approx(0.16)] * 4


def cached_run(other_thread: Task | None = None) -> Report:
    """unit_price() took 0.47 s of the main thread's 0.5 s: 29,000 counted calls, 16 distinct."""
    price = FunctionStat(function="app.unit_price", file="app.py", line=14, calls=30_000, self_s=0.47, total_s=0.47,
                         cpu_s=0.47)
    threads = [unit("MainThread", "thread", wall=0.5, compute=0.5)] + ([other_thread] if other_thread else [])
    stacks = [("thread:MainThread", [("app.unit_price", "app.py", 18), ("app.main", "app.py", 25)], 0.45),
              ("thread:MainThread", [("app.main", "app.py", 26)], 0.05)]
    return report(threads, wall=max(task.end_s or 0.0 for task in threads), functions=[price], stacks=stacks)


def cache_finding() -> Finding:
    """At the def (line 14), which the samples do not show: the function's frames are found by name."""
    return finding("cacheable-function", 14, function="app.unit_price", calls=30_000, counted_calls=29_000,
                   distinct_args=16, total_s=0.47)


def test_cached_calls_cost_nothing_but_the_distinct_ones() -> None:
    outcome = predict(cached_run(), [cache_finding()])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.47 * (1 - 16 / 29_000))


def test_the_unit_that_runs_the_function_gains_even_when_the_run_does_not() -> None:
    run = cached_run(unit("encoder", "thread", wall=0.8, compute=0.8))
    outcome = predict(run, [cache_finding()])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.0)  # the encoder thread ends last anyway
    assert after(outcome, "MainThread") == pytest.approx(0.5 - 0.47 * (1 - 16 / 29_000))


def cpu_in_loop_run(cores: int) -> Report:
    """build_report() holds the loop 0.23 s of CPU; the health checks need 0.64 s and lost 0.23 s."""
    return report([unit("Task-2", wall=0.24, compute=0.23, start=0.01, target="app.build_report"),
                   unit("Task-3", wall=0.87, scheduling=0.23, start=0.01, target="app.health_checks"),
                   *gathered_units(0.89)], wall=0.89, cpu_count=cores)


@pytest.mark.parametrize(("cores", "saved"), [(2, 0.23), (1, 0.0)])
def test_cpu_moved_to_a_process_pool_frees_the_loop_when_a_core_is_free(cores: int, saved: float) -> None:
    outcome = predict(cpu_in_loop_run(cores), [finding("cpu-in-event-loop", 29, units=["build_report()"],
                                                       compute_s=0.23)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(saved)


def test_serial_cpu_splits_over_the_cores_less_the_pool_start() -> None:
    run = report([unit("MainThread", "thread", wall=0.87, compute=0.86)], wall=0.87)
    outcome = predict(run, [finding("parallelizable-cpu", 37, units=["MainThread"], loop_cpu_s=0.86, items=24,
                                    cores=2, processes=3)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.43 - 0.01)


def test_dropped_log_records_cost_nothing() -> None:
    run = report([unit("MainThread", "thread", wall=0.66, compute=0.6)], wall=0.66)
    outcome = predict(run, [finding("excess-logging", 48, units=["thread:MainThread"], eager_s=0.44)])
    assert outcome is not None
    assert outcome.wall_after_s == pytest.approx(0.22)


def test_what_the_replay_cannot_model_keeps_the_rules_estimate() -> None:
    lone = report([unit("MainThread", "thread", wall=1.0, blocking=[sleep_site(0.6)])], wall=1.0)
    sleep = finding("blocking-sleep", 18, units=["MainThread"], blocked_s=0.6, savings=0.3)
    assert predict(lone, [sleep]) is None  # a lone thread's sleep: nothing else waits on it
    assert not with_prediction(lone, sleep, build_model(lone))
    assert (sleep.estimated_savings_s, sleep.prediction) == (0.3, None)
    assert predict(lone, [finding("some-new-rule", 3)]) is None
    untimed = blocking_sleep_run()
    for task in untimed.tasks:
        task.start_s = task.end_s = None  # a report made before units had a timeline
    assert predict(untimed, [finding("blocking-sleep", 18, units=["poll"])]) is None


def test_a_fold_of_concurrent_units_moves_its_end_by_one_units_share() -> None:
    """Two fetchers (one fold) each blocked the loop 0.4 s and lost 0.4 s to the other:
    their span is 0.8 s, so the fold ran two at a time; without blocking each takes 0.4 s."""
    run = report([unit("fetch", wall=1.6, io=0.8, blocked=0.8, scheduling=0.8, count=2, target="app.fetch",
                       blocking=[BlockingSite(kind="io", call="sock.recv", function="app.fetch", file="app.py",
                                              line=47, seconds=0.8)]),
                  *gathered_units(0.8)], wall=0.8)
    model = build_model(run)
    assert model.units[0].lanes == 2
    outcome = replay(model, Edit(held_s={"asyncio-task:fetch": -0.8}, targets={"asyncio-task:fetch"}))
    assert outcome.wall_after_s == pytest.approx(0.4)
    assert after(outcome, "fetch() x2") == pytest.approx(0.8)


def test_a_gathering_task_that_lost_scheduling_too_ends_with_what_it_gathers() -> None:
    """main() spent its life in one await of gather() but also lost 0.05 s to build_report()'s
    step: that does not make it end earlier than the health checks it gathers."""
    main = unit("Task-1", wall=0.89, scheduling=0.05, target="app.main",
                awaits=[AwaitSite(function="app.main", file="app.py", line=42, suspensions=1, calls=1, io_s=0.0,
                                  waiting_s=0.84, longest_s=0.84)])
    run = report([unit("Task-2", wall=0.24, compute=0.23, start=0.01, target="app.build_report"),
                  unit("Task-3", wall=0.87, scheduling=0.23, start=0.01, target="app.health_checks"),
                  main, unit("MainThread", "thread", wall=0.89, compute=0.25)], wall=0.89)
    assert build_model(run).units[2].waits_for_others
    outcome = predict(run, [finding("cpu-in-event-loop", 29, units=["build_report()"], compute_s=0.23)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.23)
    assert after(outcome, "main()") == pytest.approx(0.89 - 0.23)


def audited_orders() -> Report:
    """Three orders query for 0.2 s side by side, then each blocks the loop 0.03 s in an audit:
    the second's reply waits behind the first's audit, the third's behind both. That wait
    is counted as their io (a socket's ready moment is not observable), not scheduling."""
    orders = [unit(f"order-{n}", wall=0.23 + 0.03 * n, io=0.2 + 0.03 * n, blocked=0.03,
                   blocking=[sleep_site(0.03, 69)], awaits=[awaited(0.2 + 0.03 * n, 52, calls=4)])
              for n in range(3)]
    return report([*orders, *gathered_units(0.29)], wall=0.29)


def test_a_reply_that_waited_behind_a_blocked_loop_is_io_the_fix_gives_back() -> None:
    """Without the audits holding the loop the last order ends at 0.23 s: 0.06 s saved, though
    no order lost any scheduling."""
    outcome = predict(audited_orders(), [finding("blocking-sleep", 69, units=["order-0", "order-1", "order-2"])])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.06)


def test_overlapping_the_queries_does_not_overlap_the_wait_for_a_held_loop() -> None:
    """Gathering the four queries shortens what was I/O, not what was waiting behind the other
    orders' audits: the last order's 0.26 s of io hid 0.06 s of them, so 0.26 x (1 - 0.06/0.23)
    of it overlaps to a quarter."""
    outcome = predict(audited_orders(), [finding("sequential-awaits", 52, units=["order-0", "order-1", "order-2"],
                                                 calls=4, io_s=0.69)])
    assert outcome is not None
    assert outcome.savings_s == pytest.approx(0.26 * (1 - 0.06 / 0.23) * 0.75)


def test_the_text_markdown_and_html_reports_show_each_findings_replay() -> None:
    from advisor.render import RENDERERS
    from advisor.render.html import render_html
    from advisor.render.markdown import render_markdown

    run = blocking_sleep_run()
    sleep = finding("blocking-sleep", 18, units=["poll"], blocked_s=0.6, savings=0.6)
    assert with_prediction(run, sleep, build_model(run))
    run.findings = [sleep]
    line = "replay: run 1.00 s -> 600.0 ms; gains: tick() x2 -1.04 s, main() -400.0 ms, MainThread -400.0 ms"
    assert line in RENDERERS["text"](run)
    assert f"  - {line}" in render_markdown(run).splitlines()
    assert f'<p class="replay muted">{line.replace("->", "-&gt;")}</p>' in render_html(run)
