"""Every rule proves itself on its example pair, run for real under ``advisor run``.

``examples/<slug>/bad.py`` marks the line(s) the finding must point at with a comment
``# expect: <slug>``; the run must report that rule there, at medium severity or above,
with positive savings. ``good.py`` (the fixed program) must get no finding at medium or
above, from any rule: a false positive is worse than a miss.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.rules.registry import RULES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SLUGS = sorted(rule.slug for rule in RULES.values())
SERIOUS = ("high", "medium")


def expected_lines(program: Path, slug: str) -> set[int]:
    marker = re.compile(rf"#\s*expect:\s*[\w, -]*\b{re.escape(slug)}\b")
    return {number for number, text in enumerate(program.read_text().splitlines(), 1) if marker.search(text)}


def profile(run_advisor: Callable[..., subprocess.CompletedProcess[str]], program: Path,
            read_report: Callable[[Path], dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "report.json"
    done = run_advisor(["run", "--json", str(out), program.name], cwd=program.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return read_report(out)


def test_every_rule_has_an_example_pair() -> None:
    for slug in SLUGS:
        assert (EXAMPLES / slug / "bad.py").is_file(), slug
        assert (EXAMPLES / slug / "good.py").is_file(), slug
        assert expected_lines(EXAMPLES / slug / "bad.py", slug), f"{slug}/bad.py marks no `# expect:` line"


@pytest.mark.parametrize("slug", SLUGS)
def test_bad_example_is_found_at_the_marked_line(slug: str, run_advisor: Any, read_report: Any,
                                                 tmp_path: Path) -> None:
    program = EXAMPLES / slug / "bad.py"
    report = profile(run_advisor, program, read_report, tmp_path)
    lines = expected_lines(program, slug)
    found = [f for f in report["findings"] if f["rule"] == slug]
    assert found, f"no {slug} finding; got {[(f['rule'], f['location']['line']) for f in report['findings']]}"
    at_line = [f for f in found if f["location"]["line"] in lines and f["location"]["file"].endswith("bad.py")]
    assert at_line, f"{slug} found at {[f['location'] for f in found]}, expected lines {sorted(lines)}"
    finding = at_line[0]
    assert finding["severity"] in SERIOUS, finding
    assert finding["estimated_savings_s"] > 0, finding
    assert finding["fix"], finding


@pytest.mark.parametrize("slug", SLUGS)
def test_good_example_gets_no_serious_finding(slug: str, run_advisor: Any, read_report: Any,
                                              tmp_path: Path) -> None:
    report = profile(run_advisor, EXAMPLES / slug / "good.py", read_report, tmp_path)
    serious = [(f["rule"], f["location"]["line"], f["message"]) for f in report["findings"]
               if f["severity"] in SERIOUS]
    assert serious == []
