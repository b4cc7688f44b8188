"""``advisor rules`` and rule selection on the command line, end to end.

`advisor rules` lists every registered rule and explains one (docs sections plus the example
pair); `advisor run --select/--ignore` and ``[tool.advisor]`` in the working directory's
pyproject.toml decide which rules report; an unknown rule name stops advisor before the
target runs; `--fail-on` turns findings into exit 3, but only after a target that exited 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from advisor.rules.registry import RULES

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "blocking-sleep"
BAD = "examples/blocking-sleep/bad.py"  # as copied into each test's working directory
GOOD = "examples/blocking-sleep/good.py"
EXPECTED_LINE = next(number for number, text in enumerate((EXAMPLE / "bad.py").read_text().splitlines(), 1)
                     if "# expect: blocking-sleep" in text)
Done = Any  # conftest.Done: returncode, stdout, stderr, report, findings(rule)
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")
MARKER_TARGET = """\
from pathlib import Path

Path("ran.marker").write_text("the target ran")
"""


def one_line_error(done: Done, *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("advisor: error: "), lines
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --- advisor rules ---------------------------------------------------------------------------------------------------


def test_rules_lists_every_registered_rule(advisor: Callable[..., Done]) -> None:
    done = advisor("rules")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["code", "rule"]
    assert len(lines) == 1 + len(RULES)
    for rule in RULES.values():
        assert re.search(rf"^{rule.code}\s+{re.escape(rule.slug)}\s", done.stdout, re.MULTILINE), rule.slug
        assert rule.summary in done.stdout


@pytest.mark.parametrize("name", ["blocking-sleep", "ADV101"])
def test_rules_explains_one_rule_with_its_sections_and_examples(name: str, advisor: Callable[..., Done]) -> None:
    done = advisor("rules", name)
    assert done.returncode == 0, done.stderr
    page = done.stdout
    assert page.startswith("# ADV101 blocking-sleep\n")
    positions = [page.index(section) for section in SECTIONS]
    assert positions == sorted(positions), positions
    assert "time.sleep(0.2)" in page and "await asyncio.sleep(0.2)" in page  # the docstring's example pair
    assert "min_blocked_s = 0.02" in page  # the thresholds and where to set them
    bad = (EXAMPLE / "bad.py").read_text(encoding="utf-8")
    good = (EXAMPLE / "good.py").read_text(encoding="utf-8")
    assert f"## examples/blocking-sleep/bad.py\n```python\n{bad}```" in page
    assert f"## examples/blocking-sleep/good.py\n```python\n{good}```" in page
    assert page.index("bad.py") < page.index("good.py")


def test_rules_by_slug_and_by_code_print_the_same_page(advisor: Callable[..., Done]) -> None:
    assert advisor("rules", "blocking-sleep").stdout == advisor("rules", "ADV101").stdout


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_has_a_page(code: str, advisor: Callable[..., Done]) -> None:
    rule = RULES[code]
    done = advisor("rules", rule.slug)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# {rule.code} {rule.slug}\n")
    assert all(section in done.stdout for section in SECTIONS)


@pytest.mark.parametrize("args", [("rules", "no-such-rule"), ("rules", "ADV1"), ("rules", "ADV999")])
def test_an_unknown_rule_is_a_one_line_error(args: tuple[str, ...], advisor: Callable[..., Done]) -> None:
    done = advisor(*args)
    one_line_error(done, f"unknown rule {args[1]!r}")
    assert done.stdout == ""


def test_rules_takes_one_rule(advisor: Callable[..., Done]) -> None:
    one_line_error(advisor("rules", "blocking-sleep", "blocking-io"))


# --- advisor run --select / --ignore ---------------------------------------------------------------------------------


def test_the_default_run_reports_blocking_sleep(advisor: Callable[..., Done]) -> None:
    done = advisor("run", BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = [(f["location"]["file"], f["location"]["line"]) for f in done.findings("blocking-sleep")]
    assert found == [(BAD, EXPECTED_LINE)]
    assert "ADV101" in done.stderr  # the text report names it (the tests below check it is gone)


@pytest.mark.parametrize("options", [
    ("--select", "blocking-io"),
    ("--select", "ADV2"),
    ("--select", "excess-logging,blocking-io"),
    ("--ignore", "blocking-sleep"),
    ("--ignore", "ADV101"),
    ("--ignore", "blocking-io,ADV1"),
], ids=lambda value: " ".join(value))
def test_selection_leaves_blocking_sleep_out(options: tuple[str, str], advisor: Callable[..., Done]) -> None:
    done = advisor("run", *options, BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.findings("blocking-sleep") == []
    assert "ADV101" not in done.stderr  # nor in the text report


def test_select_keeps_the_selected_rule(advisor: Callable[..., Done]) -> None:
    done = advisor("run", "--select", "ADV101", BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {f["rule"] for f in done.report["findings"]} == {"blocking-sleep"}  # type: ignore[index]


@pytest.mark.parametrize("options", [
    ("--select", "nonexistent"),
    ("--ignore", "nonexistent"),
    ("--select", "blocking-sleep,nonexistent"),
])
def test_an_unknown_rule_stops_advisor_before_the_target_runs(options: tuple[str, str], workdir: Path,
                                                              advisor: Callable[..., Done]) -> None:
    (workdir / "target.py").write_text(MARKER_TARGET, encoding="utf-8")
    done = advisor("run", *options, "target.py")
    one_line_error(done, "unknown rule 'nonexistent'")
    assert not (workdir / "ran.marker").exists()


def test_the_marker_target_does_run_with_a_known_rule(workdir: Path, advisor: Callable[..., Done]) -> None:
    """The control of the test above: the same target, a valid selection, the marker is written."""
    (workdir / "target.py").write_text(MARKER_TARGET, encoding="utf-8")
    done = advisor("run", "--select", "blocking-io", "target.py")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (workdir / "ran.marker").read_text() == "the target ran"


# --- [tool.advisor] in the working directory -------------------------------------------------------------------------


def test_pyproject_ignore_is_honoured(workdir: Path, advisor: Callable[..., Done]) -> None:
    (workdir / "pyproject.toml").write_text('[tool.advisor]\nignore = ["blocking-sleep"]\n', encoding="utf-8")
    done = advisor("run", BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.findings("blocking-sleep") == []


def test_pyproject_select_is_honoured_from_a_parent_directory(workdir: Path, advisor: Callable[..., Done]) -> None:
    (workdir / "pyproject.toml").write_text('[tool.advisor]\nselect = ["ADV2"]\n', encoding="utf-8")
    done = advisor("run", "bad.py", report=True, cwd=workdir / "examples" / "blocking-sleep")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.findings("blocking-sleep") == []


def test_pyproject_thresholds_are_honoured(workdir: Path, advisor: Callable[..., Done]) -> None:
    """The example holds the loop 0.6 s in all: a 10 s minimum leaves nothing to report."""
    (workdir / "pyproject.toml").write_text("[tool.advisor.blocking-sleep]\nmin_blocked_s = 10\n", encoding="utf-8")
    done = advisor("run", BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.findings("blocking-sleep") == []


@pytest.mark.parametrize(("text", "fragment"), [
    ('[tool.advisor]\nselect = ["nonexistent"]\n', "unknown rule 'nonexistent'"),
    ("[tool.advisor\n", "cannot read [tool.advisor]"),
    ("[tool.advisor]\nverbose = true\n", "unknown setting tool.advisor.verbose"),
    ('[tool.advisor.blocking-sleep]\nmin_blocked_s = "high"\n', "must be a number"),
], ids=["unknown-rule", "malformed", "unknown-setting", "wrong-type"])
def test_a_bad_pyproject_stops_advisor_before_the_target_runs(text: str, fragment: str, workdir: Path,
                                                              advisor: Callable[..., Done]) -> None:
    (workdir / "pyproject.toml").write_text(text, encoding="utf-8")
    (workdir / "target.py").write_text(MARKER_TARGET, encoding="utf-8")
    one_line_error(advisor("run", "target.py"), fragment)
    assert not (workdir / "ran.marker").exists()


def test_a_pyproject_whose_tool_key_is_not_a_table_is_a_one_line_error(workdir: Path,
                                                                        advisor: Callable[..., Done]) -> None:
    (workdir / "pyproject.toml").write_text('tool = "x"\n', encoding="utf-8")
    (workdir / "target.py").write_text(MARKER_TARGET, encoding="utf-8")
    one_line_error(advisor("run", "target.py"))
    assert not (workdir / "ran.marker").exists()


# --- --fail-on -------------------------------------------------------------------------------------------------------


def test_fail_on_high_exits_3_on_the_bad_example(advisor: Callable[..., Done]) -> None:
    done = advisor("run", "--fail-on", "high", BAD, report=True)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "advisor: findings at or above high: exit 3" in done.stderr
    assert any(f["severity"] == "high" for f in done.findings("blocking-sleep"))
    assert done.report is not None and done.report["run"]["exit_code"] == 0
    assert "4 checks, 24 heartbeats" in done.stdout  # the target's own output, untouched


def test_fail_on_high_exits_0_on_the_good_example(advisor: Callable[..., Done]) -> None:
    done = advisor("run", "--fail-on", "high", GOOD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.report is not None
    assert [f for f in done.report["findings"] if f["severity"] == "high"] == []
    assert "findings at or above" not in done.stderr


def test_fail_on_does_not_apply_when_the_selection_leaves_the_finding_out(advisor: Callable[..., Done]) -> None:
    done = advisor("run", "--fail-on", "high", "--ignore", "blocking-sleep", BAD, report=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_targets_own_non_zero_exit_wins_over_fail_on(workdir: Path, advisor: Callable[..., Done]) -> None:
    source = (EXAMPLE / "bad.py").read_text(encoding="utf-8")
    ending = "    asyncio.run(main())\n"
    assert source.endswith(ending)
    (workdir / "exits.py").write_text(source + "    raise SystemExit(5)\n", encoding="utf-8")
    done = advisor("run", "--fail-on", "high", "exits.py", report=True)
    assert done.returncode == 5, done.stderr[-2000:]
    assert any(f["severity"] == "high" for f in done.findings("blocking-sleep"))  # 3 would have applied
    assert done.report is not None and done.report["run"]["exit_code"] == 5
    assert "findings at or above" not in done.stderr


@pytest.mark.parametrize("severity", ["severe", "HIGH"])
def test_fail_on_takes_a_known_severity(severity: str, workdir: Path, advisor: Callable[..., Done]) -> None:
    (workdir / "target.py").write_text(MARKER_TARGET, encoding="utf-8")
    one_line_error(advisor("run", "--fail-on", severity, "target.py"), "--fail-on")
    assert not (workdir / "ran.marker").exists()
