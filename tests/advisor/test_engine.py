"""The rule engine: severity from the share of wall time saved, rule selection by slug / code /
code prefix, and what analyze() does with the rules' advice (drops advice outside the
program's code or suppressed on its line, merges one rule's advice at one line, ranks by
savings, survives a crashing rule).

The analyze() tests run throwaway rules installed by monkeypatching ``advisor.engine.RULES``,
so each test controls exactly the advice the engine receives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pydantic
import pytest

from advisor import engine
from advisor.config import Settings
from advisor.engine import MIN_SAVINGS_S, SEVERITY_SHARES, analyze, select_rules, severity_for
from advisor.errors import UsageError
from advisor.profile import Report, RunInfo, Severity
from advisor.rules.base import Advice, Rule, RuleContext
from advisor.rules.registry import RULES

SOURCE = """\
def work(items):
    total = 0
    total += 1  # advisor: ignore
    total += 2  # advisor: ignore[throwaway]
    total += 3  # advisor: ignore[ADV391]
    total += 4  # advisor: ignore[some-other-rule]
    total += 5  # advisor: ignore[some-other-rule, throwaway]
    total += 6  # advisor:ignore[ ADV391 ]
    return total
"""
PLAIN, IGNORE_ALL, IGNORE_SLUG, IGNORE_CODE, IGNORE_OTHER, IGNORE_LIST, IGNORE_SPACED, RETURN = range(2, 10)


# --- helpers ---------------------------------------------------------------------------------------------------------


def make_rule(slug: str = "throwaway", code: str = "ADV391", advice: Sequence[Advice] = (),
              error: Exception | None = None, cap: Severity = "high") -> type[Rule]:
    """A Rule subclass that yields `advice` (then raises `error`, when given)."""

    def check(self: Rule, context: RuleContext) -> Iterator[Advice]:
        yield from advice
        if error is not None:
            raise error

    return type(f"Rule_{slug.replace('-', '_')}", (Rule,), {
        "__doc__": "## What it does\nx\n\n## Why is this bad?\nx\n\n## Example\nx\n\n## Use instead\nx\n",
        "slug": slug, "code": code, "summary": "a throwaway rule", "family": "test", "default_severity": cap,
        "check": check,
    })


def advise(line: int = PLAIN, savings: float = 0.3, file: str = "app.py", units: Sequence[str] = ("a",),
           **extra: Any) -> Advice:
    return Advice(file=file, line=line, function="app.work", message=f"advice at {line}", fix="do better",
                  savings_s=savings, evidence={"units": list(units)}, **extra)


def make_report(wall: float = 1.0) -> Report:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=wall,
                  cpu_s=0.1, exit_code=0)
    return Report(run=run)


@pytest.fixture
def program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """SOURCE written as app.py in a temp working directory (the path relative to it, as in reports)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(SOURCE, encoding="utf-8")
    return "app.py"


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the engine's registry with exactly these rules."""

    def install(*rules: type[Rule]) -> None:
        monkeypatch.setattr(engine, "RULES", {rule.code: rule for rule in rules})

    return install


def lines_of(report: Report) -> list[int]:
    return [finding.location.line for finding in report.findings]


# --- severity_for ----------------------------------------------------------------------------------------------------


def test_the_thresholds_are_a_fifth_a_twentieth_and_a_hundredth() -> None:
    assert SEVERITY_SHARES == ((0.20, "high"), (0.05, "medium"), (0.01, "low"))
    assert MIN_SAVINGS_S == 0.005


@pytest.mark.parametrize(("savings", "expected"), [
    (10.0, "high"), (2.0, "high"), (1.999, "medium"), (0.5, "medium"), (0.499, "low"), (0.1, "low"),
    (0.099, "info"), (0.0, "info"),
])
def test_severity_is_the_share_of_the_base_wall(savings: float, expected: Severity) -> None:
    assert severity_for(savings, 10.0, "high") == expected


def test_savings_below_the_minimum_are_info_whatever_their_share() -> None:
    assert severity_for(MIN_SAVINGS_S * 0.9, 0.01, "high") == "info"  # 45% of a 10 ms run: noise
    assert severity_for(MIN_SAVINGS_S, 0.01, "high") == "high"


@pytest.mark.parametrize("base", [0.0, -1.0])
def test_no_base_wall_gives_info(base: float) -> None:
    assert severity_for(1.0, base, "high") == "info"


@pytest.mark.parametrize(("savings", "cap", "expected"), [
    (5.0, "high", "high"), (5.0, "medium", "medium"), (5.0, "low", "low"), (5.0, "info", "info"),
    (0.6, "low", "low"), (0.6, "medium", "medium"),
    # a cap never raises a severity
    (0.2, "high", "low"), (0.2, "medium", "low"), (0.01, "low", "info"),
])
def test_max_severity_caps_and_never_raises(savings: float, cap: Severity, expected: Severity) -> None:
    assert severity_for(savings, 10.0, cap) == expected


# --- select_rules ----------------------------------------------------------------------------------------------------


def by_code(prefix: str) -> list[type[Rule]]:
    return [rule for rule in RULES.values() if rule.code.startswith(prefix)]


def test_no_selection_runs_every_registered_rule_in_registry_order() -> None:
    assert select_rules(Settings()) == list(RULES.values())


@pytest.mark.parametrize("name", ["blocking-sleep", "ADV101"])
def test_a_rule_is_selected_by_slug_or_code(name: str) -> None:
    assert [rule.slug for rule in select_rules(Settings(), [name])] == ["blocking-sleep"]


def test_a_code_prefix_selects_the_family() -> None:
    chosen = select_rules(Settings(), ["ADV1"])
    assert chosen == by_code("ADV1")
    assert "blocking-sleep" in {rule.slug for rule in chosen}
    assert "blocking-io" not in {rule.slug for rule in chosen}
    assert select_rules(Settings(), ["ADV"]) == list(RULES.values())


def test_several_names_are_a_union() -> None:
    chosen = {rule.slug for rule in select_rules(Settings(), ["blocking-sleep", "ADV201"])}
    assert chosen == {"blocking-sleep", "blocking-io"}


@pytest.mark.parametrize("name", ["blocking-sleep", "ADV101", "ADV1"])
def test_ignore_removes_by_slug_code_or_prefix(name: str) -> None:
    chosen = select_rules(Settings(), ignore=[name])
    assert "blocking-sleep" not in {rule.slug for rule in chosen}
    assert "blocking-io" in {rule.slug for rule in chosen}
    assert len(chosen) == len(RULES) - len(select_rules(Settings(), [name]))


def test_ignore_wins_over_select() -> None:
    assert select_rules(Settings(), ["ADV1"], ["blocking-sleep"]) == [r for r in by_code("ADV1")
                                                                       if r.slug != "blocking-sleep"]
    assert select_rules(Settings(), ["blocking-sleep"], ["ADV101"]) == []


def test_settings_select_applies_unless_the_command_line_selects() -> None:
    settings = Settings(select=["blocking-io"])
    assert [rule.slug for rule in select_rules(settings)] == ["blocking-io"]
    assert [rule.slug for rule in select_rules(settings, ["blocking-sleep"])] == ["blocking-sleep"]


def test_settings_ignore_adds_to_the_command_line_ignore() -> None:
    chosen = {rule.slug for rule in select_rules(Settings(ignore=["blocking-sleep"]), ignore=["blocking-io"])}
    assert "blocking-sleep" not in chosen
    assert "blocking-io" not in chosen


@pytest.mark.parametrize(("select", "ignore", "settings"), [
    (["nonexistent"], [], Settings()),
    ([], ["nonexistent"], Settings()),
    (["blocking-sleep", "nonexistent"], [], Settings()),
    (["ADV9"], [], Settings()),  # a prefix that matches no rule
    (["adv101"], [], Settings()),  # codes are case-sensitive
    ([], [], Settings(select=["nonexistent"])),
    ([], [], Settings(ignore=["nonexistent"])),
])
def test_an_unknown_rule_name_is_a_usage_error(select: list[str], ignore: list[str], settings: Settings) -> None:
    with pytest.raises(UsageError) as raised:
        select_rules(settings, select, ignore)
    message = str(raised.value)
    assert "'nonexistent'" in message or "'ADV9'" in message or "'adv101'" in message
    assert "advisor rules" in message
    assert "\n" not in message


# --- analyze: what is dropped ----------------------------------------------------------------------------------------


def test_advice_in_program_code_becomes_a_finding(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.3)]))
    [finding] = analyze(make_report()).findings
    assert (finding.rule, finding.code, finding.severity) == ("throwaway", "ADV391", "high")
    assert (finding.location.file, finding.location.line, finding.location.function) == ("app.py", PLAIN,
                                                                                          "app.work")
    assert (finding.message, finding.fix, finding.estimated_savings_s) == (f"advice at {PLAIN}", "do better", 0.3)
    assert finding.evidence == {"units": ["a"]}


def library_files() -> list[str]:
    return [os.__file__, pydantic.__file__, engine.__file__, "<frozen runpy>", "<string>"]


@pytest.mark.parametrize("file", library_files(), ids=["stdlib", "site-packages", "advisor", "frozen", "string"])
def test_advice_outside_program_code_is_dropped(file: str, program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.3, file=file), advise(PLAIN, 0.1)]))
    assert [(f.location.file, f.location.line) for f in analyze(make_report()).findings] == [("app.py", PLAIN)]


@pytest.mark.parametrize(("file", "line"), [("", PLAIN), ("app.py", 0), ("app.py", -3)])
def test_advice_without_a_place_is_dropped(file: str, line: int, program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(line, 0.3, file=file)]))
    assert analyze(make_report()).findings == []


def test_advice_in_a_file_that_cannot_be_read_is_kept(program: str, install: Callable[..., None]) -> None:
    """A program file deleted since the run is still the user's code; only suppression cannot be read."""
    install(make_rule(advice=[advise(3, 0.3, file="gone.py")]))
    assert [(f.location.file, f.location.line) for f in analyze(make_report()).findings] == [("gone.py", 3)]


# --- analyze: suppression comments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "kept"), [
    (PLAIN, True),
    (IGNORE_ALL, False),  # `# advisor: ignore`
    (IGNORE_SLUG, False),  # `# advisor: ignore[throwaway]`
    (IGNORE_CODE, False),  # `# advisor: ignore[ADV391]`
    (IGNORE_OTHER, True),  # `# advisor: ignore[some-other-rule]` does not name this rule
    (IGNORE_LIST, False),  # a comma-separated list naming it
    (IGNORE_SPACED, False),  # spaces are allowed
])
def test_a_suppression_comment_on_the_line(line: int, kept: bool, program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(line, 0.3)]))
    assert lines_of(analyze(make_report())) == ([line] if kept else [])


def test_a_suppression_names_one_rule_not_another(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(IGNORE_SLUG, 0.3)]),
            make_rule("other-rule", "ADV392", advice=[advise(IGNORE_SLUG, 0.2)]))
    assert [(f.rule, f.location.line) for f in analyze(make_report()).findings] == [("other-rule", IGNORE_SLUG)]


def test_a_suppression_only_covers_its_own_line(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(IGNORE_ALL - 1, 0.3), advise(RETURN, 0.2)]))
    assert lines_of(analyze(make_report())) == [IGNORE_ALL - 1, RETURN]


# --- analyze: merging and ranking ------------------------------------------------------------------------------------


def test_one_rules_advice_at_one_line_is_merged(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.10, units=["a", "b"]), advise(PLAIN, 0.05, units=["b", "c"]),
                              advise(PLAIN, 0.02, units=["a"])]))
    [finding] = analyze(make_report(wall=10.0)).findings
    assert finding.estimated_savings_s == pytest.approx(0.17)
    assert finding.evidence["units"] == ["a", "b", "c"]
    assert finding.message == f"advice at {PLAIN}"  # the first advice speaks for the line


def test_merging_keeps_the_highest_severity_of_the_parts(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.02), advise(PLAIN, 0.3)]))
    [finding] = analyze(make_report(wall=1.0)).findings
    assert finding.severity == "high"


def test_merged_savings_are_judged_together(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.15, units=["a"]), advise(PLAIN, 0.15, units=["b"])]))
    [finding] = analyze(make_report(wall=1.0)).findings
    assert finding.estimated_savings_s == pytest.approx(0.30)
    assert finding.severity == "high"  # 30% of the run


def test_different_rules_at_one_line_stay_apart(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.3)]), make_rule("other-rule", "ADV392", advice=[advise(PLAIN, 0.2)]))
    assert [(f.rule, f.location.line) for f in analyze(make_report()).findings] == [("throwaway", PLAIN),
                                                                                   ("other-rule", PLAIN)]


def test_one_rule_at_two_lines_gives_two_findings(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.3), advise(IGNORE_OTHER, 0.2)]))
    assert lines_of(analyze(make_report())) == [PLAIN, IGNORE_OTHER]


def test_one_rule_at_one_line_of_two_files_gives_two_findings(program: str, install: Callable[..., None]) -> None:
    Path("other.py").write_text(SOURCE, encoding="utf-8")
    install(make_rule(advice=[advise(PLAIN, 0.3), advise(PLAIN, 0.2, file="other.py")]))
    assert [(f.location.file, f.location.line) for f in analyze(make_report()).findings] == [("app.py", PLAIN),
                                                                                            ("other.py", PLAIN)]


def test_findings_are_ranked_by_savings(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(2, 0.05), advise(6, 0.50), advise(RETURN, 0.01)]),
            make_rule("other-rule", "ADV392", advice=[advise(2, 0.30), advise(6, 0.001)]))
    ranked = [(f.rule, f.location.line, f.estimated_savings_s) for f in analyze(make_report(wall=1.0)).findings]
    assert ranked == [("throwaway", 6, 0.5), ("other-rule", 2, 0.3), ("throwaway", 2, 0.05),
                      ("throwaway", RETURN, 0.01), ("other-rule", 6, 0.001)]


def test_equal_savings_rank_by_severity_then_rule(program: str, install: Callable[..., None]) -> None:
    install(make_rule("zz-capped", "ADV393", advice=[advise(2, 0.3, max_severity="low")]),
            make_rule("mm-rule", "ADV392", advice=[advise(2, 0.3)]),
            make_rule("aa-rule", "ADV391", advice=[advise(6, 0.3)]))
    ranked = [(f.rule, f.severity) for f in analyze(make_report(wall=1.0)).findings]
    assert ranked == [("aa-rule", "high"), ("mm-rule", "high"), ("zz-capped", "low")]


def test_severity_uses_the_advice_base_and_cap(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(2, 0.3, base_s=10.0), advise(6, 0.3, max_severity="medium"),
                              advise(RETURN, -0.2)]))
    found = {f.location.line: (f.severity, f.estimated_savings_s) for f in analyze(make_report(wall=1.0)).findings}
    assert found == {2: ("low", 0.3), 6: ("medium", 0.3), RETURN: ("info", 0.0)}


def test_analyze_returns_a_copy_with_the_findings(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(PLAIN, 0.3)]))
    report = make_report()
    analyzed = analyze(report)
    assert len(analyzed.findings) == 1
    assert report.findings == []


def test_selection_is_passed_through(program: str, install: Callable[..., None]) -> None:
    install(make_rule(advice=[advise(2, 0.3)]), make_rule("other-rule", "ADV392", advice=[advise(6, 0.2)]))
    assert [f.rule for f in analyze(make_report(), select=["other-rule"]).findings] == ["other-rule"]
    assert [f.rule for f in analyze(make_report(), ignore=["ADV392"]).findings] == ["throwaway"]
    assert [f.rule for f in analyze(make_report(), Settings(ignore=["throwaway"])).findings] == ["other-rule"]
    with pytest.raises(UsageError):
        analyze(make_report(), select=["blocking-sleep"])  # not installed: unknown here


def test_rule_options_reach_the_rule(program: str, install: Callable[..., None]) -> None:
    seen: list[float] = []

    class Configured(Rule):
        slug, code, summary, family = "configured", "ADV394", "reads an option", "test"
        defaults = {"limit": 1.0, "other": 2.0}

        def check(self, context: RuleContext) -> Iterator[Advice]:
            seen.extend([context.option(self, "limit"), context.option(self, "other")])
            yield from ()

    class Neighbour(Rule):
        slug, code, summary, family = "neighbour", "ADV395", "has a threshold of the same name", "test"
        defaults = {"other": 1.0}

        def check(self, context: RuleContext) -> Iterator[Advice]:
            yield from ()

    install(Configured, Neighbour)
    analyze(make_report(), Settings(options={"configured": {"limit": 7.0}, "neighbour": {"other": 9.0}}))
    assert seen == [7.0, 2.0]


# --- analyze: a rule that raises -------------------------------------------------------------------------------------


def test_a_crashing_rule_is_skipped_and_noted_while_the_others_run(program: str,
                                                                   install: Callable[..., None]) -> None:
    install(make_rule("before", "ADV391", advice=[advise(2, 0.3)]),
            make_rule("boom", "ADV392", error=RuntimeError("kaput")),
            make_rule("after", "ADV393", advice=[advise(6, 0.2)]))
    analyzed = analyze(make_report())
    assert [f.rule for f in analyzed.findings] == ["before", "after"]
    [note] = [probe for probe in analyzed.run.probes if probe.name == "rule boom"]
    assert note.active is False
    assert "RuntimeError" in note.note and "kaput" in note.note


def test_a_rule_that_crashes_midway_contributes_nothing(program: str, install: Callable[..., None]) -> None:
    install(make_rule("boom", "ADV392", advice=[advise(2, 0.3)], error=KeyError("missing")),
            make_rule("after", "ADV393", advice=[advise(6, 0.2)]))
    analyzed = analyze(make_report())
    assert [f.rule for f in analyzed.findings] == ["after"]
    assert [probe.name for probe in analyzed.run.probes] == ["rule boom"]


def test_a_rule_that_does_not_implement_check_is_noted(program: str, install: Callable[..., None]) -> None:
    class Unfinished(Rule):
        slug, code, summary, family = "unfinished", "ADV395", "no check", "test"

    install(Unfinished, make_rule(advice=[advise(2, 0.3)]))
    analyzed = analyze(make_report())
    assert [f.rule for f in analyzed.findings] == ["throwaway"]
    assert "NotImplementedError" in analyzed.run.probes[0].note
