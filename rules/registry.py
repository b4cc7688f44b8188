"""The one table of rules: code -> rule class. Adding a rule means adding a line here."""

from __future__ import annotations

from .base import Rule
from .compute.cacheable_function import CacheableFunctionRule
from .compute.call_overhead import CallOverheadRule
from .compute.parallelizable_cpu import ParallelizableCpuRule
from .compute.redundant_conversion import RedundantConversionRule
from .compute.slow_construct import SlowConstructRule
from .concurrency.blocking_sleep import BlockingSleepRule
from .concurrency.cpu_in_event_loop import CpuInEventLoopRule
from .concurrency.lock_contention import LockContentionRule
from .concurrency.sequential_awaits import SequentialAwaitsRule
from .io.blocking_io import BlockingIoRule
from .io.excess_logging import ExcessLoggingRule

RULES: dict[str, type[Rule]] = {
    rule.code: rule
    for rule in (
        BlockingSleepRule,
        CpuInEventLoopRule,
        SequentialAwaitsRule,
        LockContentionRule,
        BlockingIoRule,
        ExcessLoggingRule,
        CacheableFunctionRule,
        CallOverheadRule,
        RedundantConversionRule,
        ParallelizableCpuRule,
        SlowConstructRule,
    )
}


def rule_by_name(name: str) -> type[Rule] | None:
    """A rule by slug or code."""
    for rule in RULES.values():
        if name in (rule.slug, rule.code):
            return rule
    return None
