"""Deep mode's accuracy: how close the corrected compute time comes to the bare run's CPU.

Deep mode runs every call through yappi, which slows call-heavy code 5-10x; the report takes
yappi's cost back out (a per-call cost calibrated at start-up and at the end, by kind of
call, and the slower bytecode, scaled to the speed the main thread ran at as the program
ran). The check the greenlet/deep issue asks for: on a call-heavy
program with known CPU time, the corrected ``compute_s`` of its thread within 20% of the
bare run's CPU.

One run of each says little on a shared machine (the same bare program moves by 30-50%
from one run to the next here), so each workload runs bare and under ``advisor run --mode
deep`` in turns, ``--rounds`` times. Each round's error is its deep run's ``MainThread``
compute over the bare CPU of the same round (the mean of a bare run just before the deep
run and one just after), minus one; the table gives the median error,
the spread, and how many rounds came within 20%. The bare figure is the CPU the program
measured around its own work (its ``cpu=`` line); the deep figure is the thread's whole
compute, a few milliseconds of module set-up more.

Workloads (``benchmarks/workloads/``), sized to ~0.3-0.5 s of bare CPU:

- ``call_heavy``: recursive Fibonacci and small method calls (the issue's program);
- ``small_methods``: attribute-heavy small methods, keyword arguments, a tree walk;
- ``c_calls``: a loop of ``len`` and ``list.append`` calls and almost no Python call.

    python benchmarks/deep_accuracy.py [--rounds 7] [--only call_heavy] [--json results.json]

Goal: the median error on ``call_heavy`` within 20%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from overhead import workload_figures  # benchmarks/ is sys.path[0] when a benchmark runs

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
# workload -> its arguments (sizes for ~0.3-0.5 s of bare CPU)
SIZES: dict[str, tuple[str, ...]] = {
    "call_heavy": ("28", "400000"),
    "small_methods": ("150000", "400"),
    "c_calls": ("10", "100000"),
}
GOAL_WORKLOAD = "call_heavy"
WITHIN = 0.20
TIMEOUT_S = 300.0


@dataclass
class Rounds:
    """One workload's figures, round by round."""

    bare_cpu_s: list[float] = field(default_factory=list)
    deep_cpu_s: list[float] = field(default_factory=list)  # the program's CPU under deep mode
    compute_s: list[float] = field(default_factory=list)  # MainThread compute_s, corrected
    factor: list[float] = field(default_factory=list)  # run.overhead.factor_estimate

    def errors(self) -> list[float]:
        return [compute / bare - 1.0 for compute, bare in zip(self.compute_s, self.bare_cpu_s, strict=True)]


def program_cpu(stdout: str) -> float:
    """The ``cpu=`` line the workload printed (read as overhead.py reads it)."""
    _elapsed, cpu = workload_figures(stdout)
    if cpu is None:
        raise RuntimeError("the workload printed no cpu= and elapsed= lines")
    return cpu


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(argv[-3:])}: exit status {done.returncode} ({tail[0][:160]})")
    return done.stdout


def one_round(name: str, scratch: Path, rounds: Rounds) -> None:
    script = WORKLOADS / f"{name}.py"
    args = SIZES[name]
    bare_before = program_cpu(run([sys.executable, str(script), *args], scratch))
    report_file = scratch / f"deep-{name}.json"
    report_file.unlink(missing_ok=True)
    stdout = run([sys.executable, "-m", "advisor", "run", "--mode", "deep", "--no-status", "--json",
                  str(report_file), str(script), *args], scratch)
    # the machine's speed moves from one second to the next: the bare CPU is taken on both
    # sides of the deep run, and their mean stands for the bare run at its time
    bare_after = program_cpu(run([sys.executable, str(script), *args], scratch))
    report = json.loads(report_file.read_text())
    main = next(unit for unit in report["tasks"] if unit["name"] == "MainThread")
    rounds.bare_cpu_s.append((bare_before + bare_after) / 2)
    rounds.deep_cpu_s.append(program_cpu(stdout))
    rounds.compute_s.append(main["breakdown"]["compute_s"])
    rounds.factor.append(report["run"]["overhead"].get("factor_estimate") or 1.0)


def percent(value: float) -> str:
    return f"{100 * value:+.0f}%"


def table(results: dict[str, Rounds]) -> str:
    lines = ["| workload | bare CPU | under deep mode | corrected compute | median error | spread | "
             f"within {100 * WITHIN:.0f}% |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rounds in results.items():
        errors = rounds.errors()
        bare = statistics.median(rounds.bare_cpu_s)
        deep = statistics.median(rounds.deep_cpu_s)
        within = sum(abs(error) <= WITHIN for error in errors)
        lines.append(f"| `{name}` | {bare:.3f} s | {deep:.3f} s ({deep / bare:.1f}x) | "
                     f"{statistics.median(rounds.compute_s):.3f} s | {percent(statistics.median(errors))} | "
                     f"{percent(min(errors))} to {percent(max(errors))} | {within}/{len(errors)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="bare and deep runs of each workload (default 7)")
    parser.add_argument("--only", action="append", choices=sorted(SIZES), help="this workload only (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="also write every round's figures here")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = options.only or list(SIZES)
    results = {name: Rounds() for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(options.rounds):
            for name in names:  # in turns: a slow spell of the machine hits every workload alike
                one_round(name, Path(scratch), results[name])
                error = results[name].errors()[-1]
                print(f"round {index + 1} {name:14s} bare {results[name].bare_cpu_s[-1]:.3f} s  "
                      f"compute {results[name].compute_s[-1]:.3f} s  error {percent(error)}", flush=True)
    print()
    print(table(results))
    if options.json:
        Path(options.json).write_text(json.dumps({name: vars(rounds) for name, rounds in results.items()}, indent=2))
    if GOAL_WORKLOAD in results:
        error = statistics.median(results[GOAL_WORKLOAD].errors())
        verdict = "met" if abs(error) <= WITHIN else "missed"
        print(f"\ngoal: median error on {GOAL_WORKLOAD} within {100 * WITHIN:.0f}%: {verdict} ({percent(error)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
