"""Overhead benchmark: advisor's light mode against the bare run and its peers.

Each workload in ``benchmarks/workloads/`` runs as a subprocess, bare and under
``advisor run --mode light``, yappi (wall clock), cProfile and pyinstrument. The variants
are interleaved round by round (bare, advisor, yappi, cProfile, pyinstrument, then again),
so a noisy neighbour slows all of them alike, and the best (minimum) time of each is kept.

Three figures per run: the time the workload measured around its own work (its last
stdout line, ``elapsed=<seconds>``), the primary ratio, since advisor's start-up
calibration and report building are not overhead of the program being profiled; the
process CPU time over the same span (``cpu=<seconds>``, all threads, the profiler's own
included), which a busy neighbour on a shared machine disturbs far less than wall time;
and the wall time of the whole subprocess (interpreter start-up, the profiler's start-up
and report writing included, alike for every variant).

    python benchmarks/overhead.py [--rounds 5] [--json results.json] [--only tiny_steps]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"

# workload -> (advisor's goal, its target) for the in-process ratio, or None
GOALS: dict[str, tuple[float, float] | None] = {
    "mixed_tasks": (1.10, 1.05),
    "tiny_steps": (1.50, 1.50),
    "threads_cpu_io": None,
}
VARIANTS = ("bare", "advisor", "yappi", "cProfile", "pyinstrument")


@dataclass
class Runs:
    """Every timing of one variant on one workload."""

    wall_s: list[float] = field(default_factory=list)
    inner_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def best(self, figure: str) -> float | None:
        values: list[float] = getattr(self, figure)
        return min(values) if values else None


def command(variant: str, script: Path, scratch: Path) -> list[str]:
    """The command line of one variant; every output file goes to the scratch directory."""
    python = sys.executable
    if variant == "bare":
        return [python, str(script)]
    if variant == "advisor":
        return [python, "-m", "advisor", "run", "--mode", "light", "--json",
                str(scratch / f"advisor-{script.stem}.json"), str(script)]
    if variant == "yappi":
        return [python, "-m", "yappi", "-c", "wall", "-o", str(scratch / f"yappi-{script.stem}.pstat"),
                str(script)]
    if variant == "cProfile":
        return [python, "-m", "cProfile", "-o", os.devnull, str(script)]
    if variant == "pyinstrument":
        return [python, "-m", "pyinstrument", "-r", "text", "-o",
                str(scratch / f"pyinstrument-{script.stem}.txt"), str(script)]
    raise ValueError(variant)


def workload_figures(stdout: str) -> tuple[float | None, float | None]:
    """The (elapsed, cpu) seconds the workload printed: ``elapsed=`` must be the last line."""
    figures: dict[str, float] = {}
    lines = stdout.strip().splitlines()
    for line in lines[-2:]:
        key, sep, value = line.partition("=")
        if sep:
            try:
                figures[key] = float(value)
            except ValueError:
                pass
    if not lines or not lines[-1].startswith("elapsed="):
        return None, None
    return figures.get("elapsed"), figures.get("cpu")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


@dataclass
class Outcome:
    wall_s: float
    inner_s: float | None = None
    cpu_s: float | None = None
    failure: str = ""


def run_once(variant: str, script: Path, scratch: Path, timeout: float) -> Outcome:
    """Run one subprocess; the failure says why, with the last line of its stderr."""
    argv = command(variant, script, scratch)
    report = scratch / f"advisor-{script.stem}.json"
    if variant == "advisor":
        report.unlink(missing_ok=True)  # a report of an earlier round must not pass for this one's
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(time.perf_counter() - started, failure=f"timeout after {timeout:g} s")
    outcome = Outcome(time.perf_counter() - started)
    outcome.inner_s, outcome.cpu_s = workload_figures(done.stdout)
    if done.returncode != 0:
        outcome.failure = f"exit status {done.returncode}"
    elif outcome.inner_s is None:
        outcome.failure = "no elapsed= line on stdout"
    elif variant == "advisor" and not report.exists():
        outcome.failure = "no JSON report written"
    if outcome.failure and last_line(done.stderr):
        outcome.failure += f" ({last_line(done.stderr)})"
    return outcome


def advisor_estimate(scratch: Path, workload: str) -> float | None:
    """advisor's own estimate of its slow-down, from the last report it wrote."""
    try:
        report = json.loads((scratch / f"advisor-{workload}.json").read_text())
        return float(report["run"]["overhead"]["factor_estimate"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def measure(workloads: list[str], rounds: int, timeout: float, variants: tuple[str, ...],
            progress: bool) -> tuple[dict[str, dict[str, Runs]], dict[str, float | None]]:
    results = {name: {variant: Runs() for variant in variants} for name in workloads}
    estimates: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        scratch = Path(tmp)
        for name in workloads:
            script = WORKLOADS / f"{name}.py"
            for round_no in range(1, rounds + 1):
                for variant in variants:
                    runs = results[name][variant]
                    if len(runs.failures) >= 2:  # a variant that keeps failing is not re-run
                        continue
                    outcome = run_once(variant, script, scratch, timeout)
                    if outcome.failure:
                        runs.failures.append(outcome.failure)
                    elif outcome.inner_s is not None:
                        runs.wall_s.append(outcome.wall_s)
                        runs.inner_s.append(outcome.inner_s)
                        if outcome.cpu_s is not None:
                            runs.cpu_s.append(outcome.cpu_s)
                    if progress:
                        shown = outcome.failure or (
                            f"{outcome.inner_s:.3f} s inside, {outcome.cpu_s or 0:.3f} s CPU, "
                            f"{outcome.wall_s:.3f} s wall")
                        print(f"  {name} round {round_no}/{rounds} {variant:<12} {shown}",
                              file=sys.stderr, flush=True)
            estimates[name] = advisor_estimate(scratch, name) if "advisor" in variants else None
    return results, estimates


def ratio_text(value: float | None, base: float | None, runs: Runs) -> str:
    if value is None or not base:
        return "failed" if runs.failures else "-"
    return f"{value / base:.2f}x"


def goal_text(name: str, advisor: float | None, bare: float | None) -> str:
    goal = GOALS.get(name)
    if goal is None:
        return "-"
    limit, target = goal
    wanted = f"<= {limit:.2f}x" + (f" (target {target:.2f}x)" if target != limit else "")
    if advisor is None or not bare:
        return wanted
    ratio = advisor / bare
    verdict = "met" if ratio <= limit else "MISSED"
    if ratio <= limit and target < limit and ratio > target:
        verdict = "met, above target"
    return f"{wanted}: {verdict}"


def table(results: dict[str, dict[str, Runs]], variants: tuple[str, ...], figure: str) -> list[list[str]]:
    """Ratios of one figure ("inner_s", "cpu_s" or "wall_s") to bare; goals go with inner_s."""
    with_goal = figure == "inner_s" and "advisor" in variants
    header = ["workload", "bare s", *[v for v in variants if v != "bare"]]
    if with_goal:
        header.append("advisor goal")
    rows = [header]
    for name, by_variant in results.items():
        bare = by_variant["bare"]
        base = bare.best(figure)
        row = [name, f"{base:.3f}" if base else ratio_text(None, None, bare)]
        for variant in variants[1:]:
            runs = by_variant[variant]
            row.append(ratio_text(runs.best(figure), base, runs))
        if with_goal:
            row.append(goal_text(name, by_variant["advisor"].best(figure), base))
        rows.append(row)
    return rows


def render(rows: list[list[str]]) -> str:
    """A Markdown table, aligned so that it also reads as plain text."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) if i == 0 else cell.rjust(width)
                  for i, (cell, width) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 1) + ":" if i else "-" * (width + 2)
                          for i, width in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--json", metavar="PATH", help="save every timing and the tables as JSON")
    parser.add_argument("--only", action="append", choices=sorted(GOALS), metavar="WORKLOAD",
                        help=f"run only this workload (repeatable; {', '.join(GOALS)})")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of " + ",".join(VARIANTS) + " (bare is always run)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed to one subprocess")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    chosen = {v.strip() for v in options.variants.split(",") if v.strip()}
    unknown = chosen - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    variants = tuple(v for v in VARIANTS if v == "bare" or v in chosen)
    workloads = options.only or list(GOALS)

    load_before = os.getloadavg()[0]
    results, estimates = measure(workloads, options.rounds, options.timeout, variants, not options.quiet)
    load_after = os.getloadavg()[0]
    inner_rows = table(results, variants, "inner_s")
    cpu_rows = table(results, variants, "cpu_s")
    wall_rows = table(results, variants, "wall_s")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before:.1f} "
          f"before / {load_after:.1f} after; best of {options.rounds} interleaved rounds; "
          "ratios to the bare run.")
    print()
    print("Time measured inside the workload (primary; excludes interpreter and profiler start-up "
          "and report writing):")
    print()
    print(render(inner_rows))
    print()
    print("Process CPU time over the same span (all threads, the profiler's own included; "
          "less disturbed by other load on the machine):")
    print()
    print(render(cpu_rows))
    print()
    print("Wall time of the whole subprocess (interpreter start-up, profiler set-up and report "
          "writing included):")
    print()
    print(render(wall_rows))
    failures = [f"{name} {variant}: {runs.failures[-1]}" for name, by_variant in results.items()
                for variant, runs in by_variant.items() if runs.failures]
    if failures:
        print()
        print("Failed runs (left out of the minimum; a variant failing twice is not run again):")
        for failure in failures:
            print(f"  {failure}")
    shown = [f"{name} {value:.2f}x" for name, value in estimates.items() if value is not None]
    if shown:
        print()
        print("advisor's own estimate of its slow-down (report run.overhead.factor_estimate, last round): "
              + ", ".join(shown))

    if options.json:
        payload = {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "rounds": options.rounds,
            "load_average": [load_before, load_after],
            "goals": {name: goal for name, goal in GOALS.items() if name in results},
            "advisor_factor_estimate": estimates,
            "runs": {name: {variant: {"wall_s": runs.wall_s, "inner_s": runs.inner_s, "cpu_s": runs.cpu_s,
                                      "failures": runs.failures}
                            for variant, runs in by_variant.items()}
                     for name, by_variant in results.items()},
            "tables": {"inner": inner_rows, "cpu": cpu_rows, "wall": wall_rows},
        }
        Path(options.json).write_text(json.dumps(payload, indent=2) + "\n")
    failed = any(runs.failures and not runs.inner_s for by_variant in results.values()
                 for runs in by_variant.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
