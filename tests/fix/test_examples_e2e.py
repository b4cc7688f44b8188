"""`advisor fix --apply` on the real example programs: the finding goes, the output stays.

Each ``examples/<slug>/bad.py`` is copied to a temporary directory and profiled with
``advisor run --json``; the finding must be marked fixable (``[*]`` in the text report),
``advisor fix --apply`` must rewrite the file, and a second run must no longer report that
rule while the program prints exactly what it printed before. Where ``good.py`` is the
mechanical fix, the rewritten lines are the ones it has. The json round trip of
``redundant-conversion/bad.py`` copies an untyped ``dict`` that the loop rebinds: that fix
must be refused, with its reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Run = Callable[..., subprocess.CompletedProcess[str]]

# lines the fixed bad.py must contain (as good.py has them, where good.py is the mechanical fix)
EXPECTED = {
    "blocking-sleep": ["        await asyncio.sleep(PAUSE)  # expect: blocking-sleep\n"],
    "cacheable-function": ["import functools\n",
                           "@functools.lru_cache(maxsize=32)\ndef unit_price(code: str) -> int:"],
    "excess-logging": ["        if log.isEnabledFor(logging.DEBUG):\n"
                       '            log.debug("movements of bin %s", describe(bin_id, moves))'],
    "sequential-awaits": ["    prices.update(zip(items, await asyncio.gather(*(fetch_quote(port, sku) for sku in "
                          "items)), strict=True))"],
}


def profile(run_advisor: Run, where: Path, name: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = run_advisor(["run", "--json", name, "--no-status", "bad.py"], cwd=where)
    assert done.returncode == 0, done.stderr[-2000:]
    return done, json.loads((where / name).read_text())


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_fix_apply_removes_the_finding_and_keeps_the_output(slug: str, run_advisor: Run, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / slug / "bad.py", tmp_path / "bad.py")
    first, report = profile(run_advisor, tmp_path, "before.json")
    found = [finding for finding in report["findings"] if finding["rule"] == slug]
    assert found and all(finding["fixable"] for finding in found), found
    assert f"[*] {slug}" in first.stderr
    assert report["sources"].keys() >= {"bad.py"}

    fixing = run_advisor(["fix", "before.json", "--apply"], cwd=tmp_path)
    assert fixing.returncode == 0, fixing.stderr
    assert fixing.stdout.startswith("--- a/bad.py\n+++ b/bad.py\n")
    fixed = (tmp_path / "bad.py").read_text()
    for lines in EXPECTED[slug]:
        assert lines in fixed, fixed

    second, after = profile(run_advisor, tmp_path, "after.json")
    assert [finding for finding in after["findings"] if finding["rule"] == slug] == []
    assert second.stdout == first.stdout


def test_the_json_round_trip_of_an_untyped_dict_is_refused(run_advisor: Run, tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "redundant-conversion" / "bad.py", tmp_path / "bad.py")
    _done, report = profile(run_advisor, tmp_path, "report.json")
    found = [finding for finding in report["findings"] if finding["rule"] == "redundant-conversion"]
    assert found and not any(finding["fixable"] for finding in found)
    fixing = run_advisor(["fix", "report.json", "--apply"], cwd=tmp_path)
    assert fixing.returncode == 0 and fixing.stdout == ""
    assert "redundant-conversion: not fixed: cannot tell that cart holds only JSON types" in fixing.stderr
    assert "nothing to fix" in fixing.stderr
    assert (tmp_path / "bad.py").read_bytes() == (EXAMPLES / "redundant-conversion" / "bad.py").read_bytes()
