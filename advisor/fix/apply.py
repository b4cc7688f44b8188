"""Fixing one file: every finding's edit in one pass over the tree, then imports, then a diff.

``fix_source`` asks each finding's fixer for an edit of the parsed file, refuses edits that
touch the same code as an earlier one, replaces the nodes in one transformer pass, adds the
imports the new code needs and drops the ones it left unused (libcst's import codemods, so
the file keeps its formatting and comments). ``unified_diff`` shows the result the way
``git diff`` would.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Fixer, Refusal, Replacement, SourceTree
from .registry import FIXERS


@dataclass
class FileFix:
    """What fixing one file gives: the new text, the edits made and the findings refused."""

    before: str
    after: str
    edits: list[Edit] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)


class _Replace(cst.CSTTransformer):
    """Swap the planned nodes (by identity: the edits name nodes of this very tree)."""

    def __init__(self, replacements: Mapping[cst.CSTNode, Replacement]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Replacement:  # type: ignore[override]
        return self.replacements.get(original_node, updated_node)


def plan_edits(tree: SourceTree, findings: Sequence[Finding],
               fixers: Mapping[str, Fixer] = FIXERS) -> tuple[list[Edit], list[Refusal]]:
    """Each fixable finding's edit, or why not; edits that overlap an earlier one are refused."""
    edits: list[Edit] = []
    refusals: list[Refusal] = []
    claimed: set[cst.CSTNode] = set()
    claimed_around: set[cst.CSTNode] = set()  # the ancestors of claimed nodes
    for finding in sorted(findings, key=lambda f: f.location.line):
        fixer = fixers.get(finding.rule)
        if fixer is None:
            continue
        try:
            answer = fixer.plan(tree, finding)
        except Exception as error:  # a bug of ours: the finding keeps its written advice
            refusals.append(Refusal(finding, f"advisor could not plan this fix ({type(error).__name__}: {error})"))
            continue
        if isinstance(answer, Refusal):
            refusals.append(answer)
            continue
        touched = set(answer.replacements)
        around = {ancestor for node in touched for ancestor in tree.ancestors(node)}
        # nested or shared nodes: the second edit was planned on code the first one replaces
        if touched & claimed or around & claimed or touched & claimed_around:
            refusals.append(Refusal(finding, "it touches the code of another fix: run advisor again after that one"))
            continue
        claimed_around |= around
        claimed |= touched
        edits.append(answer)
    return edits, refusals


def _plain_import(statement: cst.CSTNode) -> str | None:
    """``NAME`` when the statement is exactly ``import NAME`` (one module, no alias)."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        node = statement.body[0]
        if isinstance(node, cst.Import) and len(node.names) == 1 and node.names[0].asname is None:
            return cst.Module([]).code_for_node(node.names[0].name)
    return None


def _import_in_sorted_block(module: cst.Module, name: str) -> cst.Module | None:
    """The module with ``import NAME`` at its place in its first block of plain imports, when
    that block is sorted (as isort or ruff keep it); None to leave the placing to libcst."""
    body = list(module.body)
    imported = [_plain_import(statement) for statement in body]
    if name in imported:
        return module
    start = next((index for index, found in enumerate(imported) if found is not None), None)
    if start is None:
        return None
    end = start
    while end < len(body) and imported[end] is not None and (end == start or not body[end].leading_lines):
        end += 1
    block = [found for found in imported[start:end] if found is not None]
    if block != sorted(block) or any(found is not None and found.split(".")[0] == name
                                     for found in imported[end:]):
        return None
    position = start + sum(found < name for found in block)
    line = cst.parse_statement(f"import {name}\n")
    if position == start:  # the new first line takes over the comments and blank lines above the block
        line = line.with_changes(leading_lines=body[start].leading_lines)
        body[start] = body[start].with_changes(leading_lines=[])
    body.insert(position, line)
    return module.with_changes(body=body)


def apply_edits(tree: SourceTree, edits: Sequence[Edit]) -> str:
    """The file's text with the edits made and its imports brought in line."""
    if not edits:
        return tree.text
    # the codemod machinery costs more to import than the rest of libcst: only writing needs it
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

    replacements: dict[cst.CSTNode, Replacement] = {}
    for edit in edits:
        replacements.update(edit.replacements)
    module = tree.module.visit(_Replace(replacements))
    context = CodemodContext()
    for name in sorted({name for edit in edits for name in edit.imports}):
        placed = _import_in_sorted_block(module, name)
        if placed is not None:
            module = placed
        else:
            AddImportsVisitor.add_needed_import(context, name)
    module = AddImportsVisitor(context).transform_module(module)
    unused = {pair for edit in edits for pair in edit.unused}
    if unused:
        context = CodemodContext()
        for name, obj in sorted(unused, key=lambda pair: (pair[0], pair[1] or "")):
            RemoveImportsVisitor.remove_unused_import(context, name, obj)
        module = RemoveImportsVisitor(context).transform_module(module)
    return module.code


def fix_source(text: str, findings: Sequence[Finding], fixers: Mapping[str, Fixer] = FIXERS) -> FileFix:
    """Fix what can be fixed of these findings (all of one file) in its text."""
    relevant = [finding for finding in findings if finding.rule in fixers]
    try:
        tree = SourceTree(text)
    except cst.ParserSyntaxError as error:
        reason = f"the file does not parse ({str(error).splitlines()[0]})"
        return FileFix(text, text, refusals=[Refusal(finding, reason) for finding in relevant])
    edits, refusals = plan_edits(tree, relevant, fixers)
    return FileFix(text, apply_edits(tree, edits), edits, refusals)


def unified_diff(path: str, before: str, after: str) -> str:
    """The change as a unified diff (``a/PATH`` → ``b/PATH``), empty when there is none."""
    lines = list(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                      fromfile=f"a/{path}", tofile=f"b/{path}"))
    # a last line without its newline is marked the way diff and patch expect
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
