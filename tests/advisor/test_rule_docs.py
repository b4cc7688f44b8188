"""The rules document themselves: docs/rules.md is generated from the registry and must match
it, every rule's docstring has the fixed sections in order, and slugs and codes are unique
and well-formed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from advisor.fix.registry import FIXERS
from advisor.profile import SEVERITIES
from advisor.rule_docs import rule_doc, rule_listing, rule_page, rules_markdown
from advisor.rules.base import Rule
from advisor.rules.registry import RULES, rule_by_name

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
REGENERATE = ".venv/bin/python -m advisor.rule_docs > docs/rules.md"
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")
CODE = re.compile(r"ADV[1-3]\d\d")
SLUG = re.compile(r"[a-z]+(-[a-z]+)*")
ALL = sorted(RULES.values(), key=lambda rule: rule.code)


def ids(rule: type[Rule]) -> str:
    return rule.slug


def test_docs_rules_md_is_generated_from_the_rules() -> None:
    assert DOCS.is_file(), f"docs/rules.md is missing: run `{REGENERATE}`"
    assert DOCS.read_text(encoding="utf-8") == rules_markdown(), (
        f"docs/rules.md is out of date with the rules' docstrings: run `{REGENERATE}`")


@pytest.mark.parametrize("rule", ALL, ids=ids)
def test_a_rules_docstring_has_the_four_sections_in_order(rule: type[Rule]) -> None:
    doc = rule_doc(rule)
    headings = [line for line in doc.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS), f"{rule.__name__}: sections {headings}"
    for section, following in zip(SECTIONS, (*SECTIONS[1:], None), strict=True):
        start = doc.index(section) + len(section)
        body = doc[start:doc.index(following)] if following else doc[start:]
        assert body.strip(), f"{rule.__name__}: {section!r} is empty"
    # the example and its fix are code
    assert "```" in doc[doc.index("## Example"):doc.index("## Use instead")], rule.__name__
    assert "```" in doc[doc.index("## Use instead"):], rule.__name__


def test_slugs_and_codes_are_unique_and_well_formed() -> None:
    rules = list(RULES.values())
    slugs = [rule.slug for rule in rules]
    codes = [rule.code for rule in rules]
    assert len(set(slugs)) == len(slugs), slugs
    assert len(set(codes)) == len(codes), codes
    assert len({rule.__name__ for rule in rules}) == len(rules)
    for rule in rules:
        assert CODE.fullmatch(rule.code), rule.code
        assert SLUG.fullmatch(rule.slug), rule.slug
        assert RULES[rule.code] is rule


@pytest.mark.parametrize("rule", ALL, ids=ids)
def test_a_rule_declares_what_the_docs_show(rule: type[Rule]) -> None:
    assert rule.summary and "\n" not in rule.summary
    assert rule.family
    assert rule.default_severity in SEVERITIES
    assert all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in rule.defaults.values())
    assert rule_by_name(rule.slug) is rule
    assert rule_by_name(rule.code) is rule


def test_rules_md_has_a_table_row_and_a_section_per_rule() -> None:
    markdown = rules_markdown()
    for rule in RULES.values():
        mark = "*" if rule.slug in FIXERS else ""
        assert f"| {rule.code} | [`{rule.slug}`](#{rule.slug}) | {mark} | {rule.summary} |" in markdown
        assert f'<a id="{rule.slug}"></a>\n## {rule.code} {rule.slug}\n' in markdown
    # a rule's own sections sit one level below its heading
    assert "\n### What it does\n" in markdown
    assert "\n## What it does\n" not in markdown


def test_the_listing_has_a_line_per_rule() -> None:
    lines = rule_listing().splitlines()
    assert len(lines) == 1 + len(RULES)
    for line, rule in zip(lines[1:], RULES.values(), strict=True):
        assert line.split()[:3] == [rule.code, rule.slug, rule.default_severity]
        # the fix column: exactly the rules `advisor fix` has a fixer for
        assert (line.split()[3] == "*") == (rule.slug in FIXERS), line


@pytest.mark.parametrize("rule", ALL, ids=ids)
def test_a_rules_page_holds_its_docstring(rule: type[Rule]) -> None:
    page = rule_page(rule.slug)
    assert page is not None
    assert page == rule_page(rule.code)
    assert page.startswith(f"# {rule.code} {rule.slug}\n")
    assert rule_doc(rule) in page
    for name in rule.defaults:
        assert name in page


def test_an_unknown_name_has_no_page() -> None:
    assert rule_page("no-such-rule") is None
    assert rule_page("ADV1") is None
