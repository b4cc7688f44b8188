"""ADV304 call-overhead: very many calls of a tiny function from a hot loop."""

from __future__ import annotations

from collections.abc import Iterator

from advisor.source import enclosing_loop

from ..base import Advice, Rule, RuleContext
from .call_evidence import call_sites


class CallOverheadRule(Rule):
    """
    ## What it does
    Finds a tiny function of the program (a few hundred nanoseconds a call) called
    hundreds of thousands of times from a loop, where the cost of the calls themselves
    (frame set-up, argument passing) is a real part of the run. The call counts come from
    standard mode's counted window; the cost of one Python call is measured on this
    machine at start-up.

    ## Why is this bad?
    Each Python call costs tens of nanoseconds before the function does anything; a
    one-line function called a million times in a loop spends much of its time in calls.

    ## Example
    ```python
    def with_tax(cents):
        return cents * 120 // 100

    total = 0
    for cents in prices:
        total += with_tax(cents)
    ```

    ## Use instead
    ```python
    total = sum(prices) * 120 // 100          # batch the work
    # or inline it: total += cents * 120 // 100; or vectorize with numpy
    ```
    """

    slug = "call-overhead"
    code = "ADV304"
    summary = "very many calls of a tiny function in a hot loop"
    family = "compute"
    default_severity = "low"
    defaults = {"min_calls": 200_000, "max_per_call_s": 2e-6, "min_share": 0.1}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        call_cost = context.report.run.overhead.python_call_s
        for function in context.report.functions:
            window = function.window
            calls = function.calls or 0
            if window is None or calls < context.option(self, "min_calls"):
                continue
            if window.per_call_s > context.option(self, "max_per_call_s"):
                continue
            if function.total_s < context.option(self, "min_share") * context.wall_s:
                continue
            sites = [site for site in call_sites(context.report, function) if enclosing_loop(site[0], site[1])]
            if not sites:
                continue
            file, line, _seconds = sites[0]
            short = function.function.rsplit(".", 1)[-1]
            # inlining saves the measured price of a one-line method call, per call
            per_call_saving = call_cost
            yield Advice(
                file=file, line=line, function=function.function,
                message=(f"{short}() is called ~{calls} times from this loop at "
                         f"{window.per_call_s * 1e9:.0f} ns a call ({function.total_s:.2f} s in all)"),
                fix=f"inline {short}() in the loop, or batch the whole loop into one call (or vectorize with numpy)",
                savings_s=min(function.total_s, calls * per_call_saving),
                evidence={"calls": calls, "per_call_s": window.per_call_s, "total_s": function.total_s},
            )
