"""ADV302 cacheable-function: many calls, few distinct arguments, no side effects."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from advisor.source import FunctionNode

from ..base import Advice, Rule, RuleContext
from .call_evidence import definition, parameters

# Calls that make a function's result depend on more than its arguments, or have effects.
IMPURE_CALLS = {"print", "open", "input", "write", "writelines", "read", "readline", "send", "sendall", "recv",
                "urlopen", "request", "get", "post", "put", "delete", "sleep", "now", "utcnow", "today", "time",
                "perf_counter", "monotonic", "random", "randint", "choice", "shuffle", "uniform", "uuid4",
                "urandom", "token_hex", "next", "debug", "info", "warning", "error", "exception", "critical",
                "log", "execute", "commit", "emit", "flush"}
IMPURE_MODULES = {"random", "time", "datetime", "uuid", "secrets", "os", "sys", "socket", "requests", "logging",
                  "subprocess", "shutil"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault",
            "sort", "reverse", "popitem", "__setitem__"}


def impurity(node: FunctionNode) -> str | None:
    """Why the function is obviously not pure (I/O, randomness, time, mutation), or None."""
    params = set(parameters(node))
    for child in ast.walk(node):
        if isinstance(child, (ast.Global, ast.Nonlocal)):
            return "it rebinds a global or nonlocal name"
        if isinstance(child, (ast.Yield, ast.YieldFrom, ast.Await)):
            return "it is a generator or coroutine"
        if isinstance(child, ast.Call):
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            base = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if name in IMPURE_CALLS or base in IMPURE_MODULES:
                return f"it calls {ast.unparse(func)}()"
            if name in MUTATORS and base in params:
                return f"it mutates its argument {base}"
        if isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, ast.Store):
            target = child.value
            while isinstance(target, (ast.Attribute, ast.Subscript)):
                target = target.value
            if isinstance(target, ast.Name) and target.id in params:
                return f"it mutates its argument {target.id}"
    return None


def cache_size(distinct: int) -> int:
    """Room for every distinct argument tuple seen, rounded up to a power of two."""
    size = 32
    while size < 2 * distinct:
        size *= 2
    return size


class CacheableFunctionRule(Rule):
    """
    ## What it does
    Finds a function of the program that is called many times with few distinct
    arguments and has no visible side effects. Standard mode counts the calls of the
    hottest functions for a bounded window and keeps a hash of each argument tuple (never
    the values), so the ratio of distinct arguments to calls is measured, not guessed.

    ## Why is this bad?
    Every repeated call recomputes a result the program already had: with 20,000 calls
    and 12 distinct arguments, 19,988 calls are wasted work.

    ## Example
    ```python
    def price_for(sku):
        return sum(slow_tier_lookup(sku, tier) for tier in TIERS)
    ```

    ## Use instead
    ```python
    @functools.lru_cache(maxsize=32)
    def price_for(sku):
        return sum(slow_tier_lookup(sku, tier) for tier in TIERS)
    ```
    """

    slug = "cacheable-function"
    code = "ADV302"
    summary = "a pure function called many times with few distinct arguments"
    family = "compute"
    default_severity = "medium"
    defaults = {"min_calls": 200, "max_distinct_ratio": 0.5, "min_share": 0.02}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        for function in context.report.functions:
            window = function.window
            if window is None or window.calls < context.option(self, "min_calls") or window.unhashable_calls:
                continue
            ratio = window.distinct_args / window.calls
            if ratio > context.option(self, "max_distinct_ratio") or window.distinct_args >= 4096:
                continue
            if function.total_s < context.option(self, "min_share") * context.wall_s:
                continue
            node = definition(function)
            if node is None or isinstance(node, ast.AsyncFunctionDef):
                continue
            params = parameters(node)
            if params[:1] in (["self"], ["cls"]) or impurity(node) is not None:
                continue
            calls = function.calls or window.calls
            savings = (1.0 - ratio) * function.total_s
            short = function.function.rsplit(".", 1)[-1]
            size = cache_size(window.distinct_args)
            yield Advice(
                file=function.file, line=function.line, function=function.function,
                message=(f"{short}() was called ~{calls} times with only {window.distinct_args} distinct "
                         f"arguments in {window.calls} counted calls; it took {function.total_s:.2f} s"),
                fix=f"@functools.lru_cache(maxsize={size})  # on def {short}(...), with `import functools`",
                savings_s=savings,
                evidence={"calls": calls, "counted_calls": window.calls, "distinct_args": window.distinct_args,
                          "total_s": function.total_s},
            )
