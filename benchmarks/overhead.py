"""Overhead benchmark: advisor's three modes against the bare run and its peers.

Each workload in ``benchmarks/workloads/`` runs as a subprocess, bare, under
``advisor run --mode light``, ``--mode standard`` (advisor's default) and ``--mode deep``,
and under yappi (wall clock), cProfile and pyinstrument. The variants are interleaved round
by round (bare, advisor-light, advisor-standard, advisor-deep, yappi, cProfile,
pyinstrument, then again), so a noisy neighbour slows all of them alike, and the best
(minimum) time of each is kept.

Three figures per run: the time the workload measured around its own work (its last
stdout line, ``elapsed=<seconds>``), the primary ratio, since advisor's start-up
calibration and report building are not overhead of the program being profiled; the
process CPU time over the same span (``cpu=<seconds>``, all threads, the profiler's own
included), which a busy neighbour on a shared machine disturbs far less than wall time;
and the wall time of the whole subprocess (interpreter start-up, the profiler's start-up
and report writing included, alike for every variant).

Each table also has ``deep/yappi``: advisor-deep's time over yappi's, both with the wall
clock on the same program (deep mode runs yappi inside, plus advisor's probes). The goals:
advisor-light <= 1.10x of bare on mixed_tasks (target 1.05x) and <= 1.50x on tiny_steps;
advisor-standard <= 2.00x of bare on every workload; advisor-deep <= 1.10x of yappi on
every workload (time inside the workload).

Two caveats the output repeats. yappi's command line has no option for its context
backend, so raw yappi runs through ``benchmarks/yappi_launcher.py``, which sets the backend
advisor-deep uses: ``greenlet`` (a context per greenlet) on gevent_workers, as the same
profile costs more per switch than one context per thread. And advisor-deep pauses its yappi profile while
more than 1,000 asyncio tasks are alive (mixed_tasks has 2,000), so there deep/yappi
compares a mostly paused profile with a full one; the paused time from advisor's report is
printed.

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
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from tables import render  # benchmarks/ is sys.path[0] when a benchmark runs

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"

WORKLOAD_NAMES = ("mixed_tasks", "tiny_steps", "threads_cpu_io", "gevent_workers", "call_heavy")
# workload -> (advisor-light's goal, its target) for the in-process ratio to bare
LIGHT_GOALS: dict[str, tuple[float, float]] = {
    "mixed_tasks": (1.10, 1.05),
    "tiny_steps": (1.50, 1.50),
}
STANDARD_LIMIT = 2.00  # advisor-standard over bare, on every workload
DEEP_OVER_YAPPI_LIMIT = 1.10  # advisor-deep over yappi (both wall clock), on every workload
# variant -> advisor's --mode
ADVISOR_MODES = {"advisor-light": "light", "advisor-standard": "standard", "advisor-deep": "deep"}
VARIANTS = ("bare", *ADVISOR_MODES, "yappi", "cProfile", "pyinstrument")
ALIASES = {"advisor": "advisor-light"}  # the name of the light variant before there were three
DEEP_OVER_YAPPI = "deep/yappi"
# workloads on which advisor-deep profiles per greenlet: raw yappi gets the same backend
YAPPI_GREENLET_CONTEXTS = {"gevent_workers"}


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
    if variant in ADVISOR_MODES:
        return [python, "-m", "advisor", "run", "--mode", ADVISOR_MODES[variant], "--json",
                str(report_path(scratch, variant, script.stem)), str(script)]
    if variant == "yappi":
        # yappi's CLI sets no context backend: a launcher of ours sets the one advisor-deep uses
        backend = "greenlet" if script.stem in YAPPI_GREENLET_CONTEXTS else "native_thread"
        return [python, str(HERE / "yappi_launcher.py"), "--backend", backend, "--clock", "wall", "-o",
                str(scratch / f"yappi-{script.stem}.pstat"), str(script)]
    if variant == "cProfile":
        return [python, "-m", "cProfile", "-o", os.devnull, str(script)]
    if variant == "pyinstrument":
        return [python, "-m", "pyinstrument", "-r", "text", "-o",
                str(scratch / f"pyinstrument-{script.stem}.txt"), str(script)]
    raise ValueError(variant)


def report_path(scratch: Path, variant: str, workload: str) -> Path:
    return scratch / f"{variant}-{workload}.json"


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
    report = report_path(scratch, variant, script.stem)
    if variant in ADVISOR_MODES:
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
    elif variant in ADVISOR_MODES and not report.exists():
        outcome.failure = "no JSON report written"
    if outcome.failure and last_line(done.stderr):
        outcome.failure += f" ({last_line(done.stderr)})"
    return outcome


@dataclass
class Estimate:
    """What advisor's last report of one mode on one workload says of its own cost."""

    factor: float | None = None  # run.overhead.factor_estimate
    deep_paused_s: float | None = None  # run.overhead.deep_paused_s (deep mode)
    wall_s: float | None = None  # run.wall_s


def advisor_estimate(scratch: Path, variant: str, workload: str) -> Estimate:
    """advisor's own estimate of its slow-down, from the last report it wrote."""
    try:
        run = json.loads(report_path(scratch, variant, workload).read_text())["run"]
    except (OSError, ValueError, KeyError, TypeError):
        return Estimate()

    def number(value: object) -> float | None:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    overhead = run.get("overhead") or {}
    return Estimate(number(overhead.get("factor_estimate")), number(overhead.get("deep_paused_s")),
                    number(run.get("wall_s")))


Estimates = dict[str, dict[str, Estimate]]  # workload -> advisor variant -> its last report's figures


def measure(workloads: list[str], rounds: int, timeout: float, variants: tuple[str, ...],
            progress: bool) -> tuple[dict[str, dict[str, Runs]], Estimates]:
    results = {name: {variant: Runs() for variant in variants} for name in workloads}
    estimates: Estimates = {}
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
                        print(f"  {name} round {round_no}/{rounds} {variant:<16} {shown}",
                              file=sys.stderr, flush=True)
            estimates[name] = {variant: advisor_estimate(scratch, variant, name)
                               for variant in variants if variant in ADVISOR_MODES}
    return results, estimates


def ratio_text(value: float | None, base: float | None, runs: Runs) -> str:
    if value is None or not base:
        return "failed" if runs.failures else "-"
    return f"{value / base:.2f}x"


def verdict_text(ratio: float | None, limit: float, target: float | None = None) -> str:
    """``1.07x <= 1.10x (target 1.05x): met, above target``; without a ratio, the goal alone."""
    wanted = f"<= {limit:.2f}x" + (f" (target {target:.2f}x)" if target is not None and target != limit else "")
    if ratio is None:
        return f"{wanted}: no figure"
    verdict = "met" if ratio <= limit else "MISSED"
    if ratio <= limit and target is not None and target < limit and ratio > target:
        verdict = "met, above target"
    return f"{ratio:.2f}x {wanted}: {verdict}"


def quotient(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def goal_rows(results: dict[str, dict[str, Runs]], variants: tuple[str, ...]) -> list[list[str]]:
    """The goals, on the time inside the workload: light and standard over bare, deep over yappi."""
    header = ["workload"]
    light, standard = "advisor-light" in variants, "advisor-standard" in variants
    deep = "advisor-deep" in variants and "yappi" in variants
    if light:
        header.append("advisor-light / bare")
    if standard:
        header.append("advisor-standard / bare")
    if deep:
        header.append("advisor-deep / yappi")
    rows = [header]
    for name, by_variant in results.items():
        bare = by_variant["bare"].best("inner_s")
        row = [name]
        if light:
            goal = LIGHT_GOALS.get(name)
            ratio = quotient(by_variant["advisor-light"].best("inner_s"), bare)
            if goal is None:
                row.append(f"{ratio:.2f}x, no goal" if ratio is not None else "-")
            else:
                row.append(verdict_text(ratio, *goal))
        if standard:
            row.append(verdict_text(quotient(by_variant["advisor-standard"].best("inner_s"), bare), STANDARD_LIMIT))
        if deep:
            ratio = quotient(by_variant["advisor-deep"].best("inner_s"), by_variant["yappi"].best("inner_s"))
            row.append(verdict_text(ratio, DEEP_OVER_YAPPI_LIMIT) + ("*" if name in YAPPI_GREENLET_CONTEXTS else ""))
        rows.append(row)
    return rows


def table(results: dict[str, dict[str, Runs]], variants: tuple[str, ...], figure: str) -> list[list[str]]:
    """Ratios of one figure ("inner_s", "cpu_s" or "wall_s") to bare, and deep/yappi."""
    with_deep = "advisor-deep" in variants and "yappi" in variants
    header = ["workload", "bare s", *[v for v in variants if v != "bare"]]
    if with_deep:
        header.append(DEEP_OVER_YAPPI)
    rows = [header]
    for name, by_variant in results.items():
        bare = by_variant["bare"]
        base = bare.best(figure)
        row = [name, f"{base:.3f}" if base else ratio_text(None, None, bare)]
        for variant in variants[1:]:
            runs = by_variant[variant]
            row.append(ratio_text(runs.best(figure), base, runs))
        if with_deep:
            deep, yappi = by_variant["advisor-deep"], by_variant["yappi"]
            cell = ratio_text(deep.best(figure), yappi.best(figure), deep if deep.failures else yappi)
            row.append(cell + ("*" if name in YAPPI_GREENLET_CONTEXTS else ""))
        rows.append(row)
    return rows


def notes_text(results: dict[str, dict[str, Runs]], variants: tuple[str, ...], estimates: Estimates) -> list[str]:
    """The caveats of deep/yappi that apply to this run."""
    if "advisor-deep" not in variants or "yappi" not in variants:
        return []
    notes = []
    if YAPPI_GREENLET_CONTEXTS & set(results):
        notes.append("* on " + ", ".join(sorted(YAPPI_GREENLET_CONTEXTS & set(results)))
                     + " raw yappi ran with the greenlet context backend, as advisor-deep does"
                     + " (benchmarks/yappi_launcher.py; yappi's own command line cannot set it).")
    paused = [(name, by_variant["advisor-deep"]) for name, by_variant in estimates.items()
              if "advisor-deep" in by_variant]
    paused_text = [f"{name} {estimate.deep_paused_s:.2f} s of {estimate.wall_s:.2f} s" for name, estimate in paused
                   if estimate.deep_paused_s and estimate.wall_s]
    if paused_text:
        notes.append("advisor-deep's yappi profile was paused (over 1,000 live asyncio tasks) for part of the "
                     "run, where deep/yappi compares a paused profile with a full one (report "
                     "run.overhead.deep_paused_s, last round): " + ", ".join(paused_text))
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--json", metavar="PATH", help="save every timing and the tables as JSON")
    parser.add_argument("--only", action="append", choices=WORKLOAD_NAMES, metavar="WORKLOAD",
                        help=f"run only this workload (repeatable; {', '.join(WORKLOAD_NAMES)})")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of " + ",".join(VARIANTS) + " (bare is always run; "
                             "advisor means advisor-light)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds allowed to one subprocess")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    chosen = {ALIASES.get(v.strip(), v.strip()) for v in options.variants.split(",") if v.strip()}
    unknown = chosen - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    variants = tuple(v for v in VARIANTS if v == "bare" or v in chosen)
    workloads = [name for name in WORKLOAD_NAMES if name in options.only] if options.only else list(WORKLOAD_NAMES)

    load_before = os.getloadavg()[0]
    results, estimates = measure(workloads, options.rounds, options.timeout, variants, not options.quiet)
    load_after = os.getloadavg()[0]
    inner_rows = table(results, variants, "inner_s")
    cpu_rows = table(results, variants, "cpu_s")
    wall_rows = table(results, variants, "wall_s")
    goals = goal_rows(results, variants)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before:.1f} "
          f"before / {load_after:.1f} after; best of {options.rounds} interleaved rounds; "
          "ratios to the bare run.")
    print()
    print("Time measured inside the workload (primary; excludes interpreter and profiler start-up "
          "and report writing):")
    print()
    print(render(inner_rows))
    if len(goals[0]) > 1:
        print()
        print("Goals, on the time inside the workload:")
        print()
        print(render(goals))
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
    notes = notes_text(results, variants, estimates)
    if notes:
        print()
        for note in notes:
            print(textwrap.fill(note, width=110, subsequent_indent="  "))
    failures = [f"{name} {variant}: {runs.failures[-1]}" for name, by_variant in results.items()
                for variant, runs in by_variant.items() if runs.failures]
    if failures:
        print()
        print("Failed runs (left out of the minimum; a variant failing twice is not run again):")
        for failure in failures:
            print(f"  {failure}")
    shown = {variant: [f"{name} {by_variant[variant].factor:.2f}x" for name, by_variant in estimates.items()
                       if variant in by_variant and by_variant[variant].factor is not None]
             for variant in ADVISOR_MODES}
    if any(shown.values()):
        print()
        print("advisor's own estimate of its slow-down (report run.overhead.factor_estimate, last round):")
        for variant, figures in shown.items():
            if figures:
                print(f"  {variant}: {', '.join(figures)}")

    if options.json:
        payload = {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "rounds": options.rounds,
            "load_average": [load_before, load_after],
            "goals": {"advisor-light/bare": {name: goal for name, goal in LIGHT_GOALS.items() if name in results},
                      "advisor-standard/bare": STANDARD_LIMIT, "advisor-deep/yappi": DEEP_OVER_YAPPI_LIMIT},
            "advisor_estimates": {name: {variant: {"factor_estimate": estimate.factor,
                                                   "deep_paused_s": estimate.deep_paused_s,
                                                   "wall_s": estimate.wall_s}
                                         for variant, estimate in by_variant.items()}
                                  for name, by_variant in estimates.items()},
            "runs": {name: {variant: {"wall_s": runs.wall_s, "inner_s": runs.inner_s, "cpu_s": runs.cpu_s,
                                      "failures": runs.failures}
                            for variant, runs in by_variant.items()}
                     for name, by_variant in results.items()},
            "tables": {"inner": inner_rows, "goals": goals, "cpu": cpu_rows, "wall": wall_rows},
        }
        Path(options.json).write_text(json.dumps(payload, indent=2) + "\n")
    failed = any(runs.failures and not runs.inner_s for by_variant in results.values()
                 for runs in by_variant.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
