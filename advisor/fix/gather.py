"""sequential-awaits: a ``for`` loop that awaits one independent call per item becomes one ``asyncio.gather``.

Three loop shapes are rewritten, each a ``for`` whose whole body is one statement:

* ``for x in xs: await f(x)`` → ``await asyncio.gather(*(f(x) for x in xs))``
* ``for x in xs: out.append(await f(x))`` → ``out.extend(await asyncio.gather(*(f(x) for x in xs)))``,
  when ``out`` is a list the function made
* ``for x in xs: d[x] = await f(x)`` → ``d.update(zip(xs, await asyncio.gather(...), strict=True))``,
  when ``d`` is a dict the function made and ``xs`` can be iterated twice (a parameter
  annotated as a list, tuple, set or sequence, a name bound once to a literal or
  comprehension, or ``range(...)``).

Refused: ``async for``, an ``else`` branch, an awaited call that reads what the loop
stores (``out``, ``d``) — a later call would depend on an earlier result — or that holds
another await or an assignment expression, and a loop variable used outside the loop
(after the loop it would no longer hold the last item). What changes even so: the calls
overlap instead of running one after another, and when one raises the others still run
and nothing is stored; the note printed with the diff says so.
"""

from __future__ import annotations

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Refusal, SourceTree, contains, names_in

NOTE = ("the calls now run concurrently: each starts before the previous one ends, and if one raises, the others "
        "still run and no result is stored")
REITERABLE = {"list", "tuple", "set", "frozenset", "Sequence", "Collection", "dict", "List", "Tuple", "Set",
              "FrozenSet", "Mapping", "range"}
FRESH = (cst.List, cst.Tuple, cst.Set, cst.Dict, cst.ListComp, cst.SetComp, cst.DictComp)


def _uses_outside(function: cst.FunctionDef, loop: cst.For, names: set[str]) -> bool:
    """Whether any of these names appears in the function outside the loop."""
    used = False

    class Find(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> bool:
            return node is not loop

        def visit_Name(self, node: cst.Name) -> None:
            nonlocal used
            used |= node.value in names

    function.body.visit(Find())
    return used


def _sole_binding(tree: SourceTree, at: cst.CSTNode, name: str) -> cst.CSTNode | None:
    """What binds ``name`` where it is read, when it is bound exactly once: a Param, or the
    value of a plain assignment."""
    scope = tree.scopes.get(at)
    assignments = list(scope[name]) if scope is not None else []
    if len(assignments) != 1:
        return None
    bound = getattr(assignments[0], "node", None)
    if isinstance(bound, cst.Param):
        return bound
    target = tree.parents.get(bound) if bound is not None else None
    statement = tree.parents.get(target) if isinstance(target, cst.AssignTarget) else None
    if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
        return statement.value
    return None


def _reiterable(tree: SourceTree, loop: cst.For) -> bool:
    """Whether the loop's iterable gives the same items when iterated a second time."""
    items = loop.iter
    if isinstance(items, cst.Call):
        return isinstance(items.func, cst.Name) and items.func.value == "range" and not contains(items, cst.Await)
    if not isinstance(items, cst.Name):
        return isinstance(items, (cst.List, cst.Tuple))
    bound = _sole_binding(tree, loop, items.value)
    if isinstance(bound, cst.Param):
        annotation = bound.annotation.annotation if bound.annotation is not None else None
        if isinstance(annotation, cst.Subscript):
            annotation = annotation.value
        while isinstance(annotation, cst.Attribute):  # typing.Sequence, collections.abc.Sequence
            annotation = annotation.attr
        return isinstance(annotation, cst.Name) and annotation.value in REITERABLE
    return isinstance(bound, FRESH)


class SequentialAwaitsFixer:
    slug = "sequential-awaits"

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal:
        awaits = [node for node in tree.on_line(finding.location.line, cst.Await) if isinstance(node, cst.Await)]
        if len(awaits) != 1 or not isinstance(awaits[0].expression, cst.Call):
            return Refusal(finding, "no single awaited call on this line")
        awaited = awaits[0]
        call = awaited.expression
        assert isinstance(call, cst.Call)
        shape = self._shape(tree, awaited)
        if isinstance(shape, str):
            return Refusal(finding, shape)
        line, store, container = shape
        block = tree.parents.get(line)
        loop = tree.parents.get(block) if isinstance(block, cst.IndentedBlock) else None
        if not isinstance(loop, cst.For) or not isinstance(block, cst.IndentedBlock):
            return Refusal(finding, "the await is not in the body of a for loop")
        if len(block.body) != 1:
            return Refusal(finding, "the loop body does more than this one await")
        if loop.asynchronous is not None or loop.orelse is not None:
            return Refusal(finding, "an async for or a for with an else branch is left as it is")
        targets = self._targets(loop.target)
        if targets is None:
            return Refusal(finding, "the loop variable is not a plain name or tuple of names")
        function = tree.enclosing(loop)
        if not isinstance(function, cst.FunctionDef) or function.asynchronous is None:
            return Refusal(finding, "the loop is not directly in an async def")
        if contains(call, cst.Await, cst.Yield, cst.NamedExpr):
            return Refusal(finding, "the awaited call holds another await, a yield or an assignment expression")
        if container and container in names_in(call):
            return Refusal(finding, f"each call reads {container}, which the loop fills: a call depends on the "
                                    f"previous results")
        if container and container in names_in(loop.iter):
            return Refusal(finding, f"the loop iterates over {container}, which it fills")
        if container and container in targets:
            return Refusal(finding, "the loop variable is where the results go")
        if _uses_outside(function, loop, targets):
            return Refusal(finding, f"the loop variable {', '.join(sorted(targets))} is used outside the loop")
        if store == "item":
            why = self._item_store(tree, loop, line, container)
            if why is not None:
                return Refusal(finding, why)
        if store == "append":
            made = _sole_binding(tree, loop, container)
            if not (isinstance(made, (cst.List, cst.ListComp)) or (isinstance(made, cst.Call) and isinstance(
                    made.func, cst.Name) and made.func.value == "list")):
                return Refusal(finding, f"{container} is not known to be a list made in the function "
                                        f"(extend() may not exist or differ)")
        header = block.header.comment
        trailing = line.trailing_whitespace
        if header is not None and trailing.comment is not None:
            return Refusal(finding, "both the loop and its body have a comment: merging them is left to you")
        if header is not None:
            trailing = block.header
        if any(empty.comment is not None for empty in block.footer):
            return Refusal(finding, "the loop ends with comments")
        gathered = (f"await asyncio.gather(*({tree.code(call)} for {tree.code(loop.target)} in "
                    f"{tree.code(loop.iter)}))")
        if store == "none":
            code = gathered
        elif store == "append":
            code = f"{container}.extend({gathered})"
        else:
            code = f"{container}.update(zip({tree.code(loop.iter)}, {gathered}, strict=True))"
        if not tree.binds_module(loop, "asyncio"):
            return Refusal(finding, "the name asyncio means something else here")
        try:
            statement = cst.parse_statement(code + "\n")
        except cst.ParserSyntaxError:
            return Refusal(finding, "the gathered form does not parse")
        assert isinstance(statement, cst.SimpleStatementLine)
        statement = statement.with_changes(leading_lines=[*loop.leading_lines, *line.leading_lines],
                                           trailing_whitespace=trailing)
        return Edit(finding, {loop: statement}, summary=f"for loop of awaits -> {code.split('(', 1)[0]}(...) with "
                                                        f"asyncio.gather", imports=("asyncio",), note=NOTE)

    @staticmethod
    def _shape(tree: SourceTree, awaited: cst.Await) -> tuple[cst.SimpleStatementLine, str, str] | str:
        """The statement line, what it does with the result (none, append, item) and where it
        stores it; or why the statement is not one of the three shapes."""
        parent = tree.parents.get(awaited)
        store, container = "none", ""
        statement: cst.CSTNode | None = parent
        if isinstance(parent, cst.Arg):
            append = tree.parents.get(parent)
            if not (isinstance(append, cst.Call) and isinstance(append.func, cst.Attribute)
                    and append.func.attr.value == "append" and len(append.args) == 1
                    and isinstance(append.func.value, cst.Name)):
                return "the awaited result is passed on in a way that is not out.append(...)"
            store, container = "append", append.func.value.value
            statement = tree.parents.get(append)
        elif isinstance(parent, cst.Assign):
            if len(parent.targets) != 1 or not isinstance(parent.targets[0].target, cst.Subscript):
                return "the awaited result is assigned to a name: the next iteration may depend on it"
            subscript = parent.targets[0].target
            if not isinstance(subscript.value, cst.Name) or len(subscript.slice) != 1 \
                    or not isinstance(subscript.slice[0].slice, cst.Index) \
                    or not isinstance(subscript.slice[0].slice.value, cst.Name):
                return "the result is stored under a key other than the loop variable"
            store, container = "item", subscript.value.value
        elif not isinstance(parent, cst.Expr):
            return "the awaited result is used in an expression"
        line = tree.parents.get(statement) if statement is not None else None
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return "the await is not a statement of its own"
        return line, store, container

    @staticmethod
    def _targets(target: cst.BaseAssignTargetExpression) -> set[str] | None:
        if isinstance(target, cst.Name):
            return {target.value}
        if isinstance(target, cst.Tuple) and all(isinstance(element.value, cst.Name) and
                                                 isinstance(element, cst.Element) for element in target.elements):
            return {element.value.value for element in target.elements}  # type: ignore[attr-defined]
        return None

    @staticmethod
    def _item_store(tree: SourceTree, loop: cst.For, line: cst.SimpleStatementLine, container: str) -> str | None:
        """Why ``d[x] = await f(x)`` cannot become ``d.update(zip(xs, ...))``, or None."""
        assign = line.body[0]
        assert isinstance(assign, cst.Assign)
        subscript = assign.targets[0].target
        assert isinstance(subscript, cst.Subscript)
        key = subscript.slice[0].slice
        if not (isinstance(loop.target, cst.Name) and isinstance(key, cst.Index) and isinstance(key.value, cst.Name)
                and key.value.value == loop.target.value):
            return "the result is stored under a key other than the loop variable"
        made = _sole_binding(tree, loop, container)
        if not (isinstance(made, cst.Dict) or (isinstance(made, cst.Call) and isinstance(made.func, cst.Name)
                                               and made.func.value == "dict")):
            return f"{container} is not known to be a dict made in the function (update() may not exist or differ)"
        if not _reiterable(tree, loop):
            return (f"{tree.code(loop.iter)} may not give its items a second time (the rewrite zips the items "
                    f"with the results)")
        return None
