"""parallelizable-cpu (ADV301) on hand-built reports: fires on a CPU-bound loop over
independent items in a plain thread, stays silent on the near misses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from advisor.engine import analyze
from advisor.profile import FunctionStat, Report

SERIAL = """\
def work(item):
    total = 0
    for n in range(item * 1000):
        total += n * n
    return total


def main(items):
    results = []
    for item in items:
        results.append(work(item))
    return results
"""
CALL_LINE = 11  # results.append(work(item))
WORK_LINE = 4


def cpu_stacks(file: str, line: int, on: float, unit: str = "thread:main",
               outer: tuple[tuple[str, str, int], ...] = ()) -> list[tuple[str, Any, float, float, str]]:
    """A thread's samples: `on` seconds of CPU in work(), called from `line` of main()."""
    stack = [("app.work", file, WORK_LINE), ("app.main", file, line), *outer, ("app.<module>", file, 40)]
    return [(unit, stack, on, 0.0, "running")]


def findings(report: Report) -> list[Any]:
    return [f for f in analyze(report, select=["parallelizable-cpu"]).findings]


@pytest.fixture
def serial_report(build_task: Callable[..., Any], build_report: Callable[..., Report],
                  write_source: Callable[[str, str], str]) -> Callable[..., Report]:
    def build(source: str = SERIAL, line: int = CALL_LINE, cpu: float = 0.9, compute: float = 0.95,
              wall: float = 1.0, cores: int = 2, run_wall: float | None = None, **options: Any) -> Report:
        file = write_source("app.py", source)
        thread = build_task("MainThread", kind="thread", id="thread:main", wall=wall, compute=compute)
        return build_report([thread, *options.pop("extra_tasks", [])], wall=run_wall or wall, cpu_count=cores,
                            stacks=options.pop("stacks", None) or cpu_stacks(file, line, cpu), **options)

    return build


def test_fires_at_the_call_in_the_loop_with_process_count_and_savings(serial_report: Callable[..., Report]) -> None:
    [finding] = findings(serial_report())
    assert finding.code == "ADV301"
    assert (finding.location.file, finding.location.line) == ("app.py", CALL_LINE)
    assert finding.location.function == "app.main"
    # loop CPU x (1 - 1/min(items, cores)): items unknown -> cores
    assert finding.estimated_savings_s == pytest.approx(0.9 * (1 - 1 / 2))
    assert finding.severity == "high"
    assert "multiprocessing.Pool(processes=3)" in finding.fix
    assert "pool.map(work, items)" in finding.fix
    assert "round(1.5 * os.cpu_count())" in finding.fix
    assert "gunicorn" not in finding.fix
    assert finding.evidence["units"] == ["MainThread"]
    assert finding.evidence["cores"] == 2


def test_process_count_and_savings_follow_the_cpu_count(serial_report: Callable[..., Report]) -> None:
    [finding] = findings(serial_report(cores=4))
    assert "processes=6" in finding.fix
    assert finding.estimated_savings_s == pytest.approx(0.9 * (1 - 1 / 4))


def test_known_item_count_caps_the_savings(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("for item in items:", "for item in [3, 4]:  ")
    [finding] = findings(serial_report(source=source, cores=4))
    assert finding.evidence["items"] == 2
    assert finding.estimated_savings_s == pytest.approx(0.9 * (1 - 1 / 2))


def test_counted_calls_give_the_item_count(serial_report: Callable[..., Report]) -> None:
    counted = FunctionStat(function="app.work", file="app.py", line=1, calls=3, self_s=0.9, total_s=0.9, cpu_s=0.9)
    [finding] = findings(serial_report(cores=8, functions=[counted]))
    assert finding.estimated_savings_s == pytest.approx(0.9 * (1 - 1 / 3))
    assert "~3 independent items" in finding.message


def test_a_single_item_is_not_parallel_work(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("for item in items:", "for item in [7]:   ")
    assert findings(serial_report(source=source)) == []


def test_comprehension_and_unpacked_items(serial_report: Callable[..., Report]) -> None:
    source = """\
def work(a, b):
    total = 0
    for n in range(a * b):
        total += n
    return total


def main(pairs):
    return [work(a, b) for a, b in pairs]
"""
    [finding] = findings(serial_report(source=source, line=9))
    assert finding.location.line == 9
    assert "pool.starmap(work, pairs)" in finding.fix


def test_reduction_of_independent_results_still_fires(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("results.append(work(item))", "results += work(item) ")
    source = source.replace("results = []", "results = 0 ")
    [finding] = findings(serial_report(source=source))
    assert finding.location.line == CALL_LINE


def test_gevent_program_mentions_more_worker_processes(serial_report: Callable[..., Report],
                                                       build_task: Callable[..., Any]) -> None:
    greenlet = build_task("worker-1", kind="greenlet", wall=0.1, waiting=0.1)
    [finding] = findings(serial_report(extra_tasks=[greenlet]))
    assert "gunicorn -k gevent -w 3" in finding.fix


@pytest.mark.parametrize("body", [
    "state = work(item + state)",  # each call reads what the previous one computed
    "results.append(work(item))\n        if results[-1] > 10:\n            break",  # stops on a result
    "work(item)",  # called for its effects, the result is dropped
])
def test_silent_when_iterations_depend_on_each_other(serial_report: Callable[..., Report], body: str) -> None:
    source = SERIAL.replace("results.append(work(item))", body).replace("results = []", "state = 0")
    assert findings(serial_report(source=source)) == []


def test_silent_for_a_growing_work_list(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("results.append(work(item))", "items.append(work(item))")
    assert findings(serial_report(source=source)) == []


def test_silent_in_an_async_def_and_under_an_event_loop(serial_report: Callable[..., Report],
                                                        write_source: Callable[[str, str], str]) -> None:
    source = SERIAL.replace("def main(items):", "async def main(items):")
    assert findings(serial_report(source=source)) == []
    loop_frames = (("asyncio.events.Handle._run", "/usr/lib/python3.11/asyncio/events.py", 80),)
    stacks = cpu_stacks("app.py", CALL_LINE, 0.9, outer=loop_frames)
    assert findings(serial_report(stacks=stacks)) == []


def test_silent_when_the_cpu_is_a_small_share(serial_report: Callable[..., Report]) -> None:
    # the thread mostly waits
    assert findings(serial_report(cpu=0.3, compute=0.35)) == []
    # a busy thread, but the loop holds little of its CPU
    elsewhere = [("thread:main", [("app.main", "app.py", 12), ("app.<module>", "app.py", 40)], 0.75, 0.0, "running")]
    assert findings(serial_report(stacks=cpu_stacks("app.py", CALL_LINE, 0.15) + elsewhere)) == []
    # a busy thread in a run that is mostly something else
    assert findings(serial_report(run_wall=5.0)) == []
    assert findings(serial_report(run_wall=2.0))  # 0.9 s of 2.0 s is still a real share


def test_silent_when_the_cpu_is_the_lines_own_bytecode(serial_report: Callable[..., Report],
                                                       write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", SERIAL)
    stacks = [("thread:main", [("app.main", file, CALL_LINE), ("app.<module>", file, 40)], 0.9, 0.0, "running")]
    assert findings(serial_report(stacks=stacks)) == []


def test_silent_for_an_async_task(build_task: Callable[..., Any], build_report: Callable[..., Report],
                                  write_source: Callable[[str, str], str]) -> None:
    file = write_source("app.py", SERIAL)
    task = build_task("collector", kind="asyncio-task", id="asyncio:1", wall=1.0, compute=0.95)
    report = build_report([task], stacks=cpu_stacks(file, CALL_LINE, 0.9, unit="asyncio:1"))
    assert findings(report) == []


def test_silent_on_one_core(serial_report: Callable[..., Report]) -> None:
    assert findings(serial_report(cores=1)) == []


def test_silent_for_items_too_small_to_ship_to_a_process(serial_report: Callable[..., Report]) -> None:
    # 0.9 s over 900,000 calls: 1 µs an item, less than pickling it would cost
    counted = FunctionStat(function="app.work", file="app.py", line=1, calls=900_000, self_s=0.9, total_s=0.9,
                           cpu_s=0.9)
    assert findings(serial_report(functions=[counted])) == []


def test_small_items_are_sent_in_batches(serial_report: Callable[..., Report]) -> None:
    # 0.9 s over 9,000 calls: 100 µs an item
    counted = FunctionStat(function="app.work", file="app.py", line=1, calls=9_000, self_s=0.9, total_s=0.9,
                           cpu_s=0.9)
    [finding] = findings(serial_report(functions=[counted]))
    assert "pool.map(work, items, chunksize=750)" in finding.fix  # 9000 // (4 x 3 processes)


def test_time_descheduled_at_plain_bytecode_does_not_hide_the_cpu_work(
        serial_report: Callable[..., Report]) -> None:
    # a loaded machine: the thread ran 0.9 s of CPU in 2.7 s, kept off the CPU at `total += n * n`
    # (no call there: it was not blocked in anything); the samples say "waiting"
    stacks = [("thread:main", [("app.work", "app.py", WORK_LINE), ("app.main", "app.py", CALL_LINE),
                               ("app.<module>", "app.py", 40)], 0.9, 1.8, "waiting")]
    [finding] = findings(serial_report(stacks=stacks, wall=2.7, compute=0.9))
    assert finding.location.line == CALL_LINE
    assert finding.estimated_savings_s == pytest.approx(0.45)


def test_time_blocked_in_a_call_is_not_cpu(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("        total += n * n", "        total += len(open(str(n)).read())")
    stacks = [("thread:main", [("app.work", "app.py", WORK_LINE), ("app.main", "app.py", CALL_LINE),
                               ("app.<module>", "app.py", 40)], 0.9, 1.8, "io")]
    assert findings(serial_report(source=source, stacks=stacks, wall=2.7, compute=0.9)) == []


def test_silent_for_draws_from_a_random_generator(serial_report: Callable[..., Report]) -> None:
    source = SERIAL.replace("results.append(work(item))", "results.append(rng.randrange(item))")
    stacks = [("thread:main", [("random.Random.randrange", "/usr/lib/python3.11/random.py", 300),
                               ("app.main", "app.py", CALL_LINE), ("app.<module>", "app.py", 40)], 0.9, 0.0, "running")]
    assert findings(serial_report(source=source, stacks=stacks)) == []


def test_silent_when_the_loop_is_too_short_for_a_pool(serial_report: Callable[..., Report]) -> None:
    # 0.1 s of CPU in a 0.11 s run: starting the worker processes would eat the gain
    assert findings(serial_report(cpu=0.1, compute=0.105, wall=0.11)) == []
