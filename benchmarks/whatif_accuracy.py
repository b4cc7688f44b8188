"""How close the what-if replay's predictions come to the real savings of the example fixes.

For every rule's example pair: the real saving is bad.py's best bare wall time minus
good.py's (five runs each, in turns); the prediction is ``advisor whatif`` on a report of
bad.py with all of that rule's findings fixed (the median of three profiled runs), next to
the rules' own rule-of-thumb estimate it replaced. Prints a Markdown table (the README's)::

    .venv/bin/python benchmarks/whatif_accuracy.py [SLUG ...]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BARE_RUNS = 5
PROFILED_RUNS = 3


def bare(program: Path) -> float:
    started = time.perf_counter()
    # no timeout=: waiting with one polls the child's exit with sleeps of up to 50 ms, measured as its time
    subprocess.run([sys.executable, program.name], cwd=program.parent, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def real_saving(bad: Path, good: Path) -> float:
    walls = {bad: float("inf"), good: float("inf")}
    for _ in range(BARE_RUNS):
        for program in (bad, good):
            walls[program] = min(walls[program], bare(program))
    return walls[bad] - walls[good]


def predicted(bad: Path, slug: str, out: Path) -> tuple[float, float]:
    """The replay's saving and the rules' own estimate, for all of the rule's findings."""
    advisor = [sys.executable, "-m", "advisor"]
    subprocess.run([*advisor, "run", "--no-status", "--json", str(out), bad.name], cwd=bad.parent, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    findings = [f for f in json.loads(out.read_text())["findings"] if f["rule"] == slug]
    if not findings:
        return float("nan"), float("nan")
    estimate = sum((f.get("prediction") or {}).get("rule_estimate_s", f["estimated_savings_s"]) for f in findings)
    fixes = [arg for f in findings for arg in ("--fix", f"{slug}@{f['location']['file']}:{f['location']['line']}")]
    done = subprocess.run([*advisor, "whatif", str(out), *fixes, "--format", "json"], cwd=bad.parent, check=True,
                          capture_output=True, text=True, timeout=60)
    return float(json.loads(done.stdout)["savings_s"]), estimate


def error(value: float, real: float) -> str:
    return f"{100 * (value - real) / real:+.0f}%" if real > 0 else "n/a"


def main(slugs: list[str]) -> None:
    slugs = slugs or sorted(path.name for path in EXAMPLES.iterdir() if (path / "bad.py").exists())
    print("| rule | real saving | replay predicts | error | rule of thumb | its error |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for slug in slugs:
            bad, good = EXAMPLES / slug / "bad.py", EXAMPLES / slug / "good.py"
            real = real_saving(bad, good)
            runs = [predicted(bad, slug, Path(scratch) / f"{slug}-{n}.json") for n in range(PROFILED_RUNS)]
            replay = statistics.median(run[0] for run in runs)
            estimate = statistics.median(run[1] for run in runs)
            print(f"| `{slug}` | {real:.3f} s | {replay:.3f} s | {error(replay, real)} | {estimate:.3f} s | "
                  f"{error(estimate, real)} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
