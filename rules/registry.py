"""The one table of rules: code -> rule class. Adding a rule means adding a line here."""

from __future__ import annotations

from .base import Rule
from .compute.cacheable_function import CacheableFunctionRule
from .compute.call_overhead import CallOverheadRule
from .concurrency.blocking_sleep import BlockingSleepRule
from .io.blocking_io import BlockingIoRule

RULES: dict[str, type[Rule]] = {
    rule.code: rule
    for rule in (
        BlockingSleepRule,
        BlockingIoRule,
        CacheableFunctionRule,
        CallOverheadRule,
    )
}


def rule_by_name(name: str) -> type[Rule] | None:
    """A rule by slug or code."""
    for rule in RULES.values():
        if name in (rule.slug, rule.code):
            return rule
    return None
