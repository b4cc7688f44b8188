"""redundant-conversion: ``json.loads(json.dumps(x))`` used as a copy becomes ``copy.deepcopy(x)``.

The two agree only on JSON-shaped data (dicts with string keys, lists, strings, numbers,
booleans, None): the round trip turns tuples into lists and integer keys into strings and
rejects other objects, where ``deepcopy`` keeps them. So the rewrite is made only for
exactly ``json.loads(json.dumps(x))`` (no options on either call) where ``x`` is a plain
name known to hold JSON-shaped data: bound once in the function from ``json.load``/
``json.loads`` and never changed in place there, or a parameter annotated with JSON types
only (``dict[str, int]``, ``list[dict[str, str]]``…; not ``dict``, ``Any`` or ``tuple``).

The gain is clarity (no JSON text made and parsed), not speed: on JSON-shaped data
``copy.deepcopy`` costs about twice the round trip in CPython 3.11 — the note printed with
the diff says so, and copying only what changes is the faster fix the finding describes.
"""

from __future__ import annotations

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Refusal, SourceTree

JSON_SCALARS = {"str", "int", "float", "bool", "None"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault",
            "sort", "reverse", "popitem"}
NOTE = ("copy.deepcopy makes the same copy without JSON text; it is clearer, not faster (about 2x the round trip "
        "on JSON-shaped data): copy only what changes where speed matters")


def json_annotation(node: cst.BaseExpression) -> bool:
    """An annotation that admits JSON-shaped values only."""
    if isinstance(node, cst.Name):
        return node.value in JSON_SCALARS
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
        return json_annotation(node.left) and json_annotation(node.right)
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Name):
        inner = [element.slice.value for element in node.slice if isinstance(element.slice, cst.Index)]
        if len(inner) != len(node.slice):
            return False
        if node.value.value == "list" and len(inner) == 1:
            return json_annotation(inner[0])
        if node.value.value == "dict" and len(inner) == 2:
            return isinstance(inner[0], cst.Name) and inner[0].value == "str" and json_annotation(inner[1])
    return False


def _is_call_of(tree: SourceTree, node: cst.BaseExpression, name: str) -> bool:
    """Whether the node calls ``name`` (a qualified name; its last part is checked first, since
    resolving qualified names costs a pass over the whole file)."""
    if not isinstance(node, cst.Call):
        return False
    func = node.func
    last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return last == name.rsplit(".", 1)[-1] and name in tree.names(func)


def _single_plain_argument(call: cst.Call) -> cst.BaseExpression | None:
    if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
        return None
    return call.args[0].value


def _changed_in_place(function: cst.FunctionDef, name: str) -> bool:
    """Whether the function changes what ``name`` refers to (an item or attribute store, a mutator)."""
    changed = False

    def root(node: cst.BaseExpression) -> cst.BaseExpression:
        while isinstance(node, (cst.Attribute, cst.Subscript)):
            node = node.value
        return node

    class Find(cst.CSTVisitor):
        def visit_AssignTarget(self, target: cst.AssignTarget) -> None:
            self._store(target.target)

        def visit_AugAssign(self, assign: cst.AugAssign) -> None:
            self._store(assign.target)

        def visit_Del(self, delete: cst.Del) -> None:
            self._store(delete.target)

        def visit_Call(self, call: cst.Call) -> None:
            nonlocal changed
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in MUTATORS:
                found = root(call.func.value)
                changed |= isinstance(found, cst.Name) and found.value == name

        def _store(self, target: cst.BaseExpression) -> None:
            nonlocal changed
            if isinstance(target, (cst.Attribute, cst.Subscript)):
                found = root(target)
                changed |= isinstance(found, cst.Name) and found.value == name

    function.visit(Find())
    return changed


class JsonCopyFixer:
    slug = "redundant-conversion"

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal:
        trips = [node for node in tree.on_line(finding.location.line, cst.Call) if isinstance(node, cst.Call)
                 and _is_call_of(tree, node, "json.loads") and node.args
                 and _is_call_of(tree, node.args[0].value, "json.dumps")]
        if len(trips) != 1:
            return Refusal(finding, "no single json.loads(json.dumps(x)) on this line: only that pattern is "
                                    "rewritten")
        outer = trips[0]
        assert isinstance(outer, cst.Call)
        inner = _single_plain_argument(outer)
        source = _single_plain_argument(inner) if isinstance(inner, cst.Call) else None
        if source is None:
            return Refusal(finding, "json.loads or json.dumps is given options: the round trip may convert "
                                    "on purpose")
        if not isinstance(source, cst.Name):
            return Refusal(finding, f"cannot tell that {tree.code(source)} holds only JSON types: copy.deepcopy "
                                    f"would keep tuples, non-string keys and objects the round trip converts")
        why = self._not_json(tree, outer, source.value)
        if why is not None:
            return Refusal(finding, f"cannot tell that {source.value} holds only JSON types ({why}): "
                                    f"copy.deepcopy would keep tuples, non-string keys and objects the round trip "
                                    f"converts")
        if not tree.binds_module(outer, "copy"):
            return Refusal(finding, "the name copy means something else here")
        replacement = cst.Call(cst.Attribute(cst.Name("copy"), cst.Name("deepcopy")),
                               [cst.Arg(source)], lpar=outer.lpar, rpar=outer.rpar)
        return Edit(finding, {outer: replacement}, summary=f"{tree.code(outer)} -> copy.deepcopy({source.value})",
                    imports=("copy",), unused=(("json", None),), note=NOTE)

    @staticmethod
    def _not_json(tree: SourceTree, at: cst.CSTNode, name: str) -> str | None:
        """Why ``name`` is not known to hold JSON-shaped data at this node, or None."""
        function = tree.enclosing(at)
        if not isinstance(function, cst.FunctionDef):
            return "it is not inside a function"
        scope = tree.scopes.get(at)
        assignments = list(scope[name]) if scope is not None else []
        if len(assignments) != 1:
            return "it is bound more than once" if assignments else "it is not bound in the function"
        bound = getattr(assignments[0], "node", None)
        if isinstance(bound, cst.Param):
            if bound.annotation is None or not json_annotation(bound.annotation.annotation):
                return "its annotation does not restrict it to JSON types"
        else:
            statement = tree.parents.get(bound) if bound is not None else None
            statement = tree.parents.get(statement) if isinstance(statement, cst.AssignTarget) else statement
            if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1
                    and (_is_call_of(tree, statement.value, "json.loads")
                         or _is_call_of(tree, statement.value, "json.load"))):
                return "it is not the result of json.load or json.loads"
        if _changed_in_place(function, name):
            return "the function changes it in place"
        return None
