"""Reading the program's source: the syntax around a line, for rules and suppressions.

Rules confirm what the profile shows with the code itself: that a ``time.sleep`` is
called inside an ``async def``, that an await sits in a ``for`` loop whose iterations do
not feed each other, that a logging call formats its message eagerly. Files are parsed
once and cached; a file that cannot be read or parsed simply yields no answers.
"""

from __future__ import annotations

import ast
import os
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
LoopNode = ast.For | ast.AsyncFor | ast.While

_SUPPRESS = re.compile(r"#\s*advisor:\s*ignore(?:\[(?P<rules>[^\]]*)\])?")


@dataclass(frozen=True)
class Parsed:
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    # line -> the calls whose span covers it: rules ask line by line, and a walk of the
    # whole tree per question was most of a live server's report (21 lines: 0.5 s)
    calls: dict[int, list[ast.Call]]


def _version(path: str) -> tuple[str, int, int] | None:
    """The cache key of a file: absolute path, modification time and size."""
    absolute = os.path.abspath(path)
    try:
        status = os.stat(absolute)
    except OSError:
        return None
    return absolute, status.st_mtime_ns, status.st_size


@lru_cache(maxsize=256)
def _read(version: tuple[str, int, int]) -> tuple[str, ...]:
    try:
        with tokenize.open(version[0]) as source:
            return tuple(source.readlines())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ()


def source_lines(path: str) -> tuple[str, ...]:
    """The file's lines (empty when it cannot be read)."""
    version = _version(path)
    return _read(version) if version is not None else ()


@lru_cache(maxsize=256)
def _parse(version: tuple[str, int, int]) -> Parsed | None:
    lines = _read(version)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines), version[0])
    except (SyntaxError, ValueError, RecursionError):
        return None
    parents: dict[ast.AST, ast.AST] = {}
    calls: dict[int, list[ast.Call]] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        if isinstance(node, ast.Call):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                calls.setdefault(line, []).append(node)
    for found in calls.values():  # outermost first, as calls_on_line answers (sorted once, here)
        found.sort(key=lambda node: (node.lineno, -(node.end_lineno or node.lineno)))
    return Parsed(tree, parents, calls)


def parse_file(path: str) -> Parsed | None:
    """The parsed module at `path` with a child -> parent map, or None."""
    version = _version(path)
    return _parse(version) if version is not None else None


def line_text(path: str, line: int) -> str:
    lines = source_lines(path)
    return lines[line - 1] if 0 < line <= len(lines) else ""


def suppressed(path: str, line: int, slug: str, code: str) -> bool:
    """Whether the line carries ``# advisor: ignore`` or ``# advisor: ignore[slug-or-code]``."""
    match = _SUPPRESS.search(line_text(path, line))
    if match is None:
        return False
    rules = match.group("rules")
    if rules is None:
        return True
    names = {name.strip() for name in rules.split(",")}
    return slug in names or code in names


def nodes_on_line(path: str, line: int) -> Iterator[ast.AST]:
    """Every node whose first line is `line` (statement and expression nodes)."""
    parsed = parse_file(path)
    if parsed is None:
        return
    for node in ast.walk(parsed.tree):
        if getattr(node, "lineno", None) == line:
            yield node


def statement_at(path: str, line: int) -> ast.stmt | None:
    """The innermost statement that spans `line`."""
    parsed = parse_file(path)
    if parsed is None:
        return None
    best: ast.stmt | None = None
    for node in ast.walk(parsed.tree):
        if not isinstance(node, ast.stmt) or not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if best is None or (node.lineno >= best.lineno and (node.end_lineno or 0) <= (best.end_lineno or 0)):
            best = node
    return best


def ancestors(path: str, node: ast.AST) -> Iterator[ast.AST]:
    parsed = parse_file(path)
    if parsed is None:
        return
    current = parsed.parents.get(node)
    while current is not None:
        yield current
        current = parsed.parents.get(current)


def enclosing_function(path: str, line: int) -> FunctionNode | None:
    statement = statement_at(path, line)
    if statement is None:
        return None
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.lineno == line:
        return statement
    for parent in ancestors(path, statement):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return parent
    return None


def enclosing_loop(path: str, line: int) -> LoopNode | None:
    """The innermost loop around `line` inside the same function."""
    statement = statement_at(path, line)
    if statement is None:
        return None
    for parent in ancestors(path, statement):
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)):
            return parent
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return None
    return None


def calls_in(node: ast.AST) -> Iterator[ast.Call]:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            yield child


def call_name(call: ast.Call) -> str:
    """The dotted text of a call's callee (``time.sleep``, ``log.debug``, ``fetch``)."""
    try:
        return ast.unparse(call.func)
    except Exception:
        return ""


def calls_on_line(path: str, line: int) -> list[ast.Call]:
    """Calls whose span covers `line`, innermost last."""
    parsed = parse_file(path)
    if parsed is None:
        return []
    return list(parsed.calls.get(line, ()))


def names_loaded(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)}


def names_stored(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store)}
