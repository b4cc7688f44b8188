"""Rule documentation from the rules themselves: the listing, one rule's page, docs/rules.md.

Each rule's docstring has the sections What it does / Why is this bad? / Example / Use
instead; its page adds the runnable example pair ``examples/<slug>/bad.py`` and
``good.py`` when they are present next to the package (a source checkout).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from advisor.fix import FIXED_RULES
from advisor.rules.base import Rule
from advisor.rules.registry import RULES, rule_by_name

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def fix_mark(rule: type[Rule]) -> str:
    """'*' for a rule whose findings ``advisor fix`` can rewrite (where it finds it safe)."""
    return "*" if rule.slug in FIXED_RULES else ""


def rule_listing() -> str:
    lines = [f"{'code':<8}{'rule':<22}{'severity':<10}{'fix':<5}summary"]
    for rule in RULES.values():
        lines.append(f"{rule.code:<8}{rule.slug:<22}{rule.default_severity:<10}{fix_mark(rule):<5}{rule.summary}")
    return "\n".join(lines) + "\n"


def rule_doc(rule: type[Rule]) -> str:
    return inspect.cleandoc(rule.__doc__ or "")


def rule_page(name: str) -> str | None:
    rule = rule_by_name(name)
    if rule is None:
        return None
    parts = [f"# {rule.code} {rule.slug}\n", f"{rule.summary} (family: {rule.family}, "
             f"default severity: {rule.default_severity})\n", rule_doc(rule), ""]
    if fix_mark(rule):
        parts.append("Automatic fix: `advisor fix REPORT.json` rewrites these findings where it can show the "
                     "change is safe (a diff; `--apply` writes it).\n")
    if rule.defaults:
        settings = ", ".join(f"{key} = {value:g}" for key, value in rule.defaults.items())
        parts.append(f"Thresholds ([tool.advisor.{rule.slug}] in pyproject.toml): {settings}\n")
    for kind in ("bad", "good"):
        example = EXAMPLES / rule.slug / f"{kind}.py"
        if example.is_file():
            parts.append(f"## examples/{rule.slug}/{kind}.py\n```python\n{example.read_text(encoding='utf-8')}```\n")
    return "\n".join(parts)


def rules_markdown() -> str:
    """docs/rules.md: every rule's documentation, generated."""
    parts = ["# advisor rules\n", "Generated from the rules' docstrings by `python -m advisor.rule_docs`; "
             "a test keeps it in sync. Fix *: `advisor fix` can rewrite the rule's findings where it is safe.\n",
             "| code | rule | fix | summary |", "|---|---|---|---|"]
    parts += [f"| {rule.code} | [`{rule.slug}`](#{rule.slug}) | {fix_mark(rule)} | {rule.summary} |"
              for rule in RULES.values()]
    for rule in RULES.values():
        body = rule_doc(rule).replace("\n## ", "\n### ")
        if body.startswith("## "):
            body = "#" + body
        parts += ["", f'<a id="{rule.slug}"></a>', f"## {rule.code} {rule.slug}", "", body]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(rules_markdown())
