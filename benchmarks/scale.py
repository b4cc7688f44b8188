"""Scale benchmark: memory and time of advisor's light mode with very many asyncio tasks
and gevent greenlets.

Scenarios (``benchmarks/workloads/many_tasks.py`` and ``many_greenlets.py``), each bare and
under ``advisor run --mode light``, interleaved round by round:

- ``no tasks``: the fixed cost of advisor (its imports, probes and report), to subtract;
- ``100k concurrent``: 100,000 tasks created, all suspended at once, then released;
- ``100k short-lived`` and ``1M short-lived``: tasks created in batches of 10,000 (at most
  10,000 alive at a time), to show that a finished task costs no memory: advisor's peak
  must not grow from 100k to 1M finished tasks;
- the same with gevent greenlets: ``no greenlets`` (gevent imported, the baseline),
  ``100k greenlets concurrent`` and ``100k greenlets short-lived``.

Peak RSS is read two ways. The whole process: each run is one child reaped with
``os.wait4``, whose rusage belongs to that child alone (``RUSAGE_CHILDREN`` would be the
maximum over every child this script ever waited for). The program: the workload's own
``ru_maxrss`` at its end, before advisor builds and writes its report. The advisor
report is checked: the JSON exists and the tasks of the workload's coroutine are folded
into one entry whose count is the number of tasks.

    python benchmarks/scale.py [--rounds 1] [--json results.json] [--skip-million] [--only asyncio|greenlets]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tables import render  # benchmarks/ is sys.path[0] when a benchmark runs

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "workloads" / "many_tasks.py"
GREENLET_WORKLOAD = HERE / "workloads" / "many_greenlets.py"
BATCH = 10_000


@dataclass(frozen=True)
class Scenario:
    label: str
    args: tuple[str, ...]
    tasks: int
    coroutine: str  # the workload's coroutine (or greenlet function) whose units advisor folds into one entry
    workload: Path = WORKLOAD
    kind: str = "asyncio-task"


SCENARIOS = (
    Scenario("no tasks", ("concurrent", "0"), 0, "holder"),
    Scenario("100k concurrent", ("concurrent", "100000"), 100_000, "holder"),
    Scenario("100k short-lived", ("batches", "100000", str(BATCH)), 100_000, "short_lived"),
    Scenario("1M short-lived", ("batches", "1000000", str(BATCH)), 1_000_000, "short_lived"),
    Scenario("no greenlets", ("concurrent", "0"), 0, "holder", GREENLET_WORKLOAD, "greenlet"),
    Scenario("100k greenlets concurrent", ("concurrent", "100000"), 100_000, "holder", GREENLET_WORKLOAD,
             "greenlet"),
    Scenario("100k greenlets short-lived", ("batches", "100000", str(BATCH)), 100_000, "short_lived",
             GREENLET_WORKLOAD, "greenlet"),
)
# (baseline scenario, scenario with every unit alive at once, units): advisor's bytes per live unit
PER_LIVE_UNIT = (("no tasks", "100k concurrent", 100_000, "task"),
                 ("no greenlets", "100k greenlets concurrent", 100_000, "greenlet"))


@dataclass
class Run:
    """One subprocess: its wall time, whole-process peak RSS and what the workload printed."""

    wall_s: float
    peak_rss_kb: int
    facts: dict[str, float] = field(default_factory=dict)
    failure: str = ""


def run_child(argv: list[str], cwd: Path, timeout: float) -> Run:
    """Run one child, reaping it with os.wait4 to read its own peak RSS."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.DEVNULL)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            child.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    run = Run(wall, usage.ru_maxrss)  # KiB on Linux
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            try:
                run.facts[key] = float(value)
            except ValueError:
                pass
    if timed_out.is_set():
        run.failure = f"timeout after {timeout:g} s"
    elif child.returncode != 0:
        run.failure = f"exit status {child.returncode}"
    elif "elapsed" not in run.facts:
        run.failure = "no elapsed= line on stdout"
    return run


def check_report(path: Path, scenario: Scenario) -> str:
    """"ok" when the report exists and folds the workload's tasks into one entry of the right count."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return f"no report ({type(error).__name__})"
    entries = [task for task in report.get("tasks", [])
               if task.get("kind") == scenario.kind
               and str(task.get("target", "")).endswith(scenario.coroutine)]
    if scenario.tasks == 0:
        return "ok" if not entries else f"unexpected {scenario.coroutine} entries"
    counts = sorted((int(task.get("count", 0)) for task in entries), reverse=True)
    if counts == [scenario.tasks]:
        return "ok"
    return f"{scenario.coroutine} entries with counts {counts[:5]}, expected [{scenario.tasks}]"


def measure(scenarios: tuple[Scenario, ...], rounds: int, timeout: float,
            progress: bool) -> dict[str, dict[str, list[Run] | str]]:
    results: dict[str, dict[str, list[Run] | str]] = {
        s.label: {"bare": [], "advisor": [], "report": ""} for s in scenarios}
    with tempfile.TemporaryDirectory(prefix="advisor-scale-") as tmp:
        scratch = Path(tmp)
        for round_no in range(1, rounds + 1):
            for scenario in scenarios:
                report = scratch / "report.json"
                report.unlink(missing_ok=True)
                variants = {
                    "bare": [sys.executable, str(scenario.workload), *scenario.args],
                    "advisor": [sys.executable, "-m", "advisor", "run", "--mode", "light", "--json",
                                str(report), str(scenario.workload), *scenario.args],
                }
                for variant, argv in variants.items():
                    run = run_child(argv, scratch, timeout)
                    runs = results[scenario.label][variant]
                    assert isinstance(runs, list)
                    runs.append(run)
                    if progress:
                        shown = run.failure or (f"{run.facts['elapsed']:.2f} s inside, "
                                                f"peak {run.peak_rss_kb / 1024:.1f} MiB")
                        print(f"  round {round_no}/{rounds} {scenario.label:<26} {variant:<8} {shown}",
                              file=sys.stderr, flush=True)
                    if variant == "advisor" and not run.failure:
                        results[scenario.label]["report"] = check_report(report, scenario)
    return results


def good(runs: list[Run]) -> list[Run]:
    return [run for run in runs if not run.failure]


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def smallest(runs: list[Run], key: str) -> str:
    """The smallest of a memory figure (KiB) the workload printed, in MiB."""
    return mib(min(run.facts.get(key, 0) for run in runs))


def tables(results: dict[str, dict[str, list[Run] | str]]) -> tuple[list[list[str]], list[list[str]]]:
    """(memory and time table, short-lived growth table), from the best run of each variant."""
    main_rows = [["scenario", "bare peak MiB", "advisor peak MiB", "ratio", "diff MiB",
                  "program peak diff MiB", "bare s", "time ratio", "CPU ratio", "report"]]
    growth_rows = [["scenario", "bare after 1st batch MiB", "bare after last MiB",
                    "advisor after 1st batch MiB", "advisor after last MiB"]]
    for label, by_variant in results.items():
        bare_runs = by_variant["bare"]
        advisor_runs = by_variant["advisor"]
        assert isinstance(bare_runs, list) and isinstance(advisor_runs, list)
        bare, advisor = good(bare_runs), good(advisor_runs)
        report = by_variant["report"]
        assert isinstance(report, str)
        if not bare or not advisor:
            failures = [run.failure for run in bare_runs + advisor_runs if run.failure]
            main_rows.append([label, *(["-"] * 8), failures[0] if failures else "failed"])
            continue
        # memory: the smallest peak of each (the least disturbed run); time: the fastest
        bare_peak = min(run.peak_rss_kb for run in bare)
        advisor_peak = min(run.peak_rss_kb for run in advisor)
        program_diff = (min(run.facts.get("peak_rss_kb", 0) for run in advisor)
                        - min(run.facts.get("peak_rss_kb", 0) for run in bare))
        bare_s = min(run.facts["elapsed"] for run in bare)
        advisor_s = min(run.facts["elapsed"] for run in advisor)
        bare_cpu = min(run.facts.get("cpu", 0.0) for run in bare)
        advisor_cpu = min(run.facts.get("cpu", 0.0) for run in advisor)
        main_rows.append([label, mib(bare_peak), mib(advisor_peak), f"{advisor_peak / bare_peak:.2f}x",
                          f"{(advisor_peak - bare_peak) / 1024:+.1f}", f"{program_diff / 1024:+.1f}",
                          f"{bare_s:.2f}",
                          # a run of no tasks takes a millisecond: its time ratio means nothing
                          f"{advisor_s / bare_s:.2f}x" if bare_s >= 0.05 else "-",
                          f"{advisor_cpu / bare_cpu:.2f}x" if bare_s >= 0.05 and bare_cpu > 0 else "-",
                          report or "-"])
        if "rss_kb_first_batch" in bare[0].facts:
            growth_rows.append([label, *(smallest(runs, key) for runs in (bare, advisor)
                                         for key in ("rss_kb_first_batch", "rss_kb_last_batch"))])
    return main_rows, growth_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument("--json", metavar="PATH", help="save every run and the tables as JSON")
    parser.add_argument("--skip-million", action="store_true", help="leave out the 1M short-lived tasks")
    parser.add_argument("--only", choices=("asyncio", "greenlets"), help="only the asyncio or the greenlet scenarios")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to one subprocess")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    scenarios = tuple(s for s in SCENARIOS if not (options.skip_million and s.tasks >= 1_000_000)
                      and not (options.only == "asyncio" and s.kind != "asyncio-task")
                      and not (options.only == "greenlets" and s.kind != "greenlet"))

    load_before = os.getloadavg()[0]
    results = measure(scenarios, options.rounds, options.timeout, not options.quiet)
    load_after = os.getloadavg()[0]
    main_rows, growth_rows = tables(results)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before:.1f} "
          f"before / {load_after:.1f} after; best of {options.rounds} interleaved round(s); "
          "advisor run --mode light.")
    print()
    print("Peak RSS of the whole process (os.wait4 per child); 'program peak diff' is advisor's extra "
          "ru_maxrss at the end of the program, before the report is built; time and process CPU "
          "measured inside the workload:")
    print()
    print(render(main_rows))
    for baseline, alive, units, what in PER_LIVE_UNIT:
        fixed = next((row for row in main_rows[1:] if row[0] == baseline and row[5] != "-"), None)
        concurrent = next((row for row in main_rows[1:] if row[0] == alive and row[5] != "-"), None)
        if fixed and concurrent:
            per_unit = (float(concurrent[5]) - float(fixed[5])) * 1024 * 1024 / units
            print()
            print(f"advisor's memory per live {what} (program peak, {alive} less {baseline}): "
                  f"~{per_unit:,.0f} bytes")
    if len(growth_rows) > 1:
        print()
        print(f"Resident memory after the first and after the last batch of {BATCH:,} short-lived tasks "
              "(a finished task should cost nothing):")
        print()
        print(render(growth_rows))

    if options.json:
        payload = {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "rounds": options.rounds,
            "load_average": [load_before, load_after],
            "runs": {label: {variant: ([vars(run) for run in runs] if isinstance(runs, list) else runs)
                             for variant, runs in by_variant.items()}
                     for label, by_variant in results.items()},
            "tables": {"main": main_rows, "growth": growth_rows},
        }
        Path(options.json).write_text(json.dumps(payload, indent=2) + "\n")
    failed = any(row[-1] != "ok" for row in main_rows[1:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
