"""Fixing a source text for one finding at a marked line, as the CLI would.

A test writes the program as it is before the fix, with ``# <-`` at the end of the line the
finding points at; ``fix(source, rule)`` builds that finding and runs the real fixers over
the text, so each test states the exact code before and after (or the refusal).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from advisor.fix.apply import FileFix, fix_source
from advisor.profile import Finding, Location

MARK = "# <-"
CODES = {"blocking-sleep": "ADV101", "sequential-awaits": "ADV103", "excess-logging": "ADV202",
         "cacheable-function": "ADV302", "redundant-conversion": "ADV303", "lock-contention": "ADV104"}


def finding_at(source: str, rule: str, **extra: Any) -> Finding:
    """A finding of `rule` at the line marked ``# <-`` (the mark stays: comments survive fixes)."""
    lines = [number for number, text in enumerate(source.splitlines(), 1) if MARK in text]
    if "line" not in extra:
        assert len(lines) == 1, "mark exactly one line with # <- (or give line=)"
    return Finding(rule=rule, code=CODES[rule], severity="high", message="a finding",
                   location=Location(file="app.py", line=extra.pop("line", lines[0] if lines else 0),
                                     function=extra.pop("function", "")), **extra)


def run_fix(source: str, rule: str, **extra: Any) -> FileFix:
    text = textwrap.dedent(source).lstrip("\n")
    return fix_source(text, [finding_at(text, rule, **extra)])


@pytest.fixture
def fix() -> Callable[..., FileFix]:
    return run_fix


def after(source: str, rule: str, **extra: Any) -> str:
    """The fixed text; the fix must have been made."""
    result = run_fix(source, rule, **extra)
    assert not result.refusals, result.refusals[0].reason
    assert len(result.edits) == 1
    return result.after


def refusal(source: str, rule: str, **extra: Any) -> str:
    """Why the fix was refused; the text must be unchanged."""
    result = run_fix(source, rule, **extra)
    assert not result.edits and result.after == result.before
    assert len(result.refusals) == 1
    return result.refusals[0].reason


@pytest.fixture
def fixed() -> Callable[..., str]:
    return after


@pytest.fixture
def refused() -> Callable[..., str]:
    return refusal


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def code() -> Callable[[str], str]:
    return dedent
