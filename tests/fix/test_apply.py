"""Fixing a file: several findings in one pass, overlaps, files that do not parse, the diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

from advisor.fix import FIXED_RULES
from advisor.fix.apply import fix_source, unified_diff
from advisor.fix.registry import FIXERS
from advisor.profile import Finding, Location

SOURCE = '''"""A worker."""
import json
import logging
import time

log = logging.getLogger("worker")


async def work(items):
    for item in items:
        time.sleep(0.1)
        log.info(f"item {item} done, {describe(item)}")
    return json.loads(json.dumps(items))
'''


def finding(rule: str, line: int, code: str = "ADV000") -> Finding:
    return Finding(rule=rule, code=code, severity="high", message="m", location=Location(file="w.py", line=line))


def test_every_finding_of_a_file_is_fixed_in_one_pass() -> None:
    result = fix_source(SOURCE, [finding("excess-logging", 12), finding("blocking-sleep", 11),
                                 finding("lock-contention", 10)])
    assert [edit.finding.rule for edit in result.edits] == ["blocking-sleep", "excess-logging"]
    assert not result.refusals  # lock-contention has no fixer: its advice stays written, no refusal
    assert result.after == '''"""A worker."""
import asyncio
import json
import logging

log = logging.getLogger("worker")


async def work(items):
    for item in items:
        await asyncio.sleep(0.1)
        if log.isEnabledFor(logging.INFO):
            log.info("item %s done, %s", item, describe(item))
    return json.loads(json.dumps(items))
'''
    compile(result.after, "w.py", "exec")


def test_a_second_fix_of_the_same_code_is_refused() -> None:
    result = fix_source(SOURCE, [finding("blocking-sleep", 11), finding("blocking-sleep", 11)])
    assert len(result.edits) == 1
    assert "another fix" in result.refusals[0].reason


def test_a_fix_inside_code_another_fix_replaces_is_refused() -> None:
    source = "import asyncio\nasync def f(xs):\n    for x in xs:\n        await g(x)\n"
    # the same loop named twice (from two await sites): the second plan would edit replaced code
    result = fix_source(source, [finding("sequential-awaits", 4), finding("sequential-awaits", 4)])
    assert len(result.edits) == 1 and len(result.refusals) == 1


def test_a_file_that_does_not_parse_is_refused_whole() -> None:
    result = fix_source("def f(:\n    time.sleep(1)\n", [finding("blocking-sleep", 2), finding("cpu-in-event-loop", 2)])
    assert result.after == result.before
    assert [refusal.finding.rule for refusal in result.refusals] == ["blocking-sleep"]
    assert "does not parse" in result.refusals[0].reason


def test_the_diff_applies_with_patch(tmp_path: Path) -> None:
    result = fix_source(SOURCE.rstrip("\n"), [finding("blocking-sleep", 11)])  # no newline at the end
    diff = unified_diff("w.py", result.before, result.after)
    assert diff.startswith("--- a/w.py\n+++ b/w.py\n")
    assert "-        time.sleep(0.1)\n+        await asyncio.sleep(0.1)\n" in diff
    (tmp_path / "w.py").write_text(result.before)
    patch = subprocess.run(["git", "apply", "-"], input=diff, cwd=tmp_path, capture_output=True, text=True)
    assert patch.returncode == 0, patch.stderr
    assert (tmp_path / "w.py").read_text() == result.after
    assert unified_diff("w.py", SOURCE, SOURCE) == ""


def test_the_cheap_rule_table_matches_the_fixers() -> None:
    assert set(FIXERS) == FIXED_RULES


def test_a_new_import_takes_its_place_in_a_sorted_block_and_keeps_the_comment_above() -> None:
    source = "# standard library\nimport json\nimport time\n\nimport numpy\n\n\nasync def f():\n    time.sleep(1)\n"
    result = fix_source(source, [finding("blocking-sleep", 9)])
    assert result.after == ("# standard library\nimport asyncio\nimport json\n\nimport numpy\n\n\n"
                            "async def f():\n    await asyncio.sleep(1)\n")


def test_an_unsorted_block_gets_the_import_after_it() -> None:
    source = "import time\nimport json\n\n\nasync def f():\n    time.sleep(json.loads('1'))\n"
    result = fix_source(source, [finding("blocking-sleep", 6)])
    assert result.after.startswith("import json\nimport asyncio\n")  # and the unused time goes
