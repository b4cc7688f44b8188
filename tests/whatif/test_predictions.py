"""The what-if replay proves itself on every rule's example pair, against the real saving.

For each ``examples/<slug>/bad.py`` there is the fixed ``good.py``: both run bare, in
turns, three times each (the best of each, so a noisy neighbour inflates neither), and
their difference is the real saving of the fix. ``bad.py`` then runs under ``advisor run --json`` and
``advisor whatif`` replays it with all of that rule's findings fixed together (``good.py``
fixes all of them). The prediction must be within 25% of the real saving, or within
50 ms. Timing-based by its nature: a pair outside the bound is measured again (bare runs
and the profiled run, up to three rounds) before the test fails, since a loaded machine
can skew one round.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.rules.registry import RULES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SLUGS = sorted(rule.slug for rule in RULES.values())
RUN_TIMEOUT_S = 30.0
REPEATS = 3
ROUNDS = 3


def run_bare(program: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, program.name], cwd=program.parent, check=True, timeout=RUN_TIMEOUT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def real_saving(bad: Path, good: Path) -> float:
    """The best bare wall time of bad.py minus good.py's (interpreter start included in both),
    run in turns so that a change of load on the machine falls on both alike."""
    walls: dict[Path, float] = {bad: float("inf"), good: float("inf")}
    for _ in range(REPEATS):
        for program in (bad, good):
            walls[program] = min(walls[program], run_bare(program))
    return walls[bad] - walls[good]


def predicted_saving(run_advisor: Callable[..., subprocess.CompletedProcess[str]], program: Path, slug: str,
                     out: Path) -> float:
    done = run_advisor(["run", "--no-status", "--json", str(out), program.name], cwd=program.parent,
                       timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    findings = [f for f in json.loads(out.read_text())["findings"] if f["rule"] == slug]
    assert findings, f"no {slug} finding in {program}"
    fixes = [arg for f in findings for arg in ("--fix", f"{slug}@{f['location']['file']}:{f['location']['line']}")]
    replay = run_advisor(["whatif", str(out), *fixes, "--format", "json"], cwd=program.parent, timeout=RUN_TIMEOUT_S)
    assert replay.returncode == 0, replay.stderr[-2000:]
    return float(json.loads(replay.stdout)["savings_s"])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("slug", SLUGS)
def test_replay_predicts_the_real_saving_of_the_example_fix(
        slug: str, run_advisor: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    bad, good = EXAMPLES / slug / "bad.py", EXAMPLES / slug / "good.py"
    rounds = []
    for number in range(ROUNDS):
        real = real_saving(bad, good)
        predicted = predicted_saving(run_advisor, bad, slug, tmp_path / f"report-{number}.json")
        rounds.append((predicted, real))
        if abs(predicted - real) <= max(0.25 * real, 0.05):
            return
    shown = "; ".join(f"predicted {p:.3f} s, real {r:.3f} s" for p, r in rounds)
    pytest.fail(f"{slug}: the replay missed the real saving by more than 25% and 50 ms: {shown}")
