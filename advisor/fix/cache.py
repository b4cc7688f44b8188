"""cacheable-function: ``@functools.lru_cache(maxsize=N)`` on a module-level function that is pure.

The finding says the function was called many times with few distinct arguments; this
fixer adds the decorator (and ``import functools``) only when ``purity.impurity`` finds no
reason to doubt that caching keeps the program's behaviour. Methods are refused (the cache
would key on ``self`` and keep every instance alive), nested functions too (their cache
would be rebuilt on every call of the outer function), and functions that already have
decorators (where the cache goes among them is a judgement call). ``maxsize`` is the one
the finding suggests: room for every distinct argument seen, rounded up to a power of two.
"""

from __future__ import annotations

import ast
import re

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Refusal, SourceTree
from .purity import impurity

CACHES = {"functools.lru_cache", "functools.cache", "functools.cached_property"}
_MAXSIZE = re.compile(r"maxsize=(\d+)")


def cache_size(finding: Finding) -> int:
    """The size the finding suggests, else room for twice the distinct arguments seen."""
    suggested = _MAXSIZE.search(finding.fix or "")
    if suggested:
        return int(suggested.group(1))
    distinct = finding.evidence.get("distinct_args")
    size = 32
    while isinstance(distinct, int) and size < 2 * distinct:
        size *= 2
    return size


def _syntax_of(text: str, name: str, line: int) -> tuple[ast.Module, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    """The file's ``ast`` and the function's node in it (what the purity check reads)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name and node.lineno == line:
            return tree, node
    return None


class CacheableFunctionFixer:
    slug = "cacheable-function"

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal:
        name = finding.location.function.rsplit(".", 1)[-1]
        line = finding.location.line
        function: cst.FunctionDef | None = None
        for node, where in tree.positions.items():
            if isinstance(node, cst.FunctionDef) and name in ("", node.name.value):
                first = min([tree.positions[d].start.line for d in node.decorators] + [where.start.line])
                if first <= line <= where.start.line:
                    function = node
        if function is None:
            return Refusal(finding, f"no definition of {name or 'a function'}() at this line")
        name = function.name.value
        outer = tree.enclosing(function)
        if isinstance(outer, cst.ClassDef):
            return Refusal(finding, f"{name}() is a method: a cache would key on self and keep every instance alive")
        if outer is not None:
            return Refusal(finding, f"{name}() is defined inside a function: its cache would start empty on "
                                    f"every call of the outer function")
        if any(tree.names(decorator.decorator) & CACHES or tree.names(getattr(decorator.decorator, "func", None)
                                                                      or decorator.decorator) & CACHES
               for decorator in function.decorators):
            return Refusal(finding, f"{name}() is already cached")
        if function.decorators:
            return Refusal(finding, f"{name}() already has decorators: where the cache goes among them is a "
                                    f"judgement call")
        syntax = _syntax_of(tree.text, name, tree.positions[function].start.line)
        if syntax is None:
            return Refusal(finding, f"{name}() could not be read")
        why = impurity(syntax[1], syntax[0])
        if why is not None:
            return Refusal(finding, f"{name}() may not be pure: {why}")
        if not tree.binds_module(function, "functools"):
            return Refusal(finding, "the name functools means something else here")
        size = cache_size(finding)
        decorator = cst.Decorator(decorator=cst.parse_expression(f"functools.lru_cache(maxsize={size})"))
        cached = function.with_changes(decorators=[decorator])
        return Edit(finding, {function: cached}, summary=f"@functools.lru_cache(maxsize={size}) on {name}()",
                    imports=("functools",))
