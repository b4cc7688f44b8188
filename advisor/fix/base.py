"""What a fixer is given and what it answers: a parsed source, and an edit or a refusal.

A fixer looks at one finding in one parsed file (``SourceTree``: the libcst module with
positions, parents, scopes and qualified names resolved once) and answers either an
``Edit`` — replacements of nodes of that tree, and the imports the new code needs — or a
``Refusal`` saying in one sentence why the change would not be safe. Fixers never touch
files; ``advisor.fix.apply`` combines the edits of every finding of a file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    CodeRange,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from advisor.profile import Finding

Replacement = cst.CSTNode | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel


@dataclass(frozen=True)
class Edit:
    """One finding's fix: nodes of the original tree and what replaces them."""

    finding: Finding
    replacements: Mapping[cst.CSTNode, Replacement]
    summary: str  # one line: what the change does
    imports: tuple[str, ...] = ()  # modules the new code needs (`import NAME`)
    unused: tuple[tuple[str, str | None], ...] = ()  # (module, name) imports to drop when nothing uses them
    note: str = ""  # what the user should know about the change, if anything


@dataclass(frozen=True)
class Refusal:
    """Why a finding's fix is not made automatically."""

    finding: Finding
    reason: str


class Fixer(Protocol):
    """A mechanical fix for the findings of one rule."""

    slug: str

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal: ...


@dataclass
class SourceTree:
    """A parsed file with the metadata every fixer needs, resolved once."""

    text: str
    wrapper: MetadataWrapper = field(init=False)

    def __post_init__(self) -> None:
        # the tree is parsed here and shared by nobody else: no need for the wrapper's defensive copy
        self.wrapper = MetadataWrapper(cst.parse_module(self.text), unsafe_skip_copy=True)

    @property
    def module(self) -> cst.Module:
        return self.wrapper.module

    @cached_property
    def positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        return self.wrapper.resolve(PositionProvider)

    @cached_property
    def parents(self) -> Mapping[cst.CSTNode, cst.CSTNode]:
        return self.wrapper.resolve(ParentNodeProvider)

    @cached_property
    def scopes(self) -> Mapping[cst.CSTNode, Scope | None]:
        return self.wrapper.resolve(ScopeProvider)

    @cached_property
    def qualified(self) -> Mapping[cst.CSTNode, object]:
        return self.wrapper.resolve(QualifiedNameProvider)

    def on_line(self, line: int, kind: type[cst.CSTNode]) -> list[cst.CSTNode]:
        """Nodes of this kind that start on the line, outermost first."""
        return [node for node, where in self.positions.items() if isinstance(node, kind) and where.start.line == line]

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def enclosing(self, node: cst.CSTNode) -> cst.FunctionDef | cst.Lambda | cst.ClassDef | None:
        """The nearest function, lambda or class around the node."""
        for parent in self.ancestors(node):
            if isinstance(parent, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
                return parent
        return None

    def names(self, node: cst.CSTNode) -> set[str]:
        """The qualified names an expression can refer to (``time.sleep`` for ``sleep`` after
        ``from time import sleep``)."""
        found = self.qualified.get(node, set())
        if callable(found):  # qualified names are computed on first use (libcst's LazyValue)
            found = found()
        return {qualified.name for qualified in found} if isinstance(found, (set, frozenset)) else set()

    def binds_module(self, node: cst.CSTNode, name: str) -> bool:
        """Whether ``name`` at this node is free or bound only by ``import name``: so new code
        may write ``name.attr`` there once the import is added."""
        scope = self.scopes.get(node)
        if scope is None:
            return False
        for assignment in scope[name]:
            statement = getattr(assignment, "node", None)
            if not isinstance(statement, cst.Import):
                return False
            if not any(alias.asname is None and get_full_name_for_node(alias.name) == name
                       for alias in statement.names):
                return False
        return True

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


def names_in(node: cst.CSTNode) -> set[str]:
    """Every plain name an expression reads or writes."""
    found: set[str] = set()

    class Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

    node.visit(Collect())
    return found


def contains(node: cst.CSTNode, *kinds: type[cst.CSTNode]) -> bool:
    """Whether the node or anything under it is one of these kinds."""
    hit = False

    class Find(cst.CSTVisitor):
        def on_visit(self, child: cst.CSTNode) -> bool:
            nonlocal hit
            if isinstance(child, kinds):
                hit = True
            return not hit

    node.visit(Find())
    return hit
