"""ADV305 slow-construct: a hot loop written with a slow idiom that has a fast builtin form."""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from advisor.frames import is_user_file
from advisor.source import Parsed, parse_file

from ..base import Advice, Rule, RuleContext

LoopLike = ast.For | ast.AsyncFor | ast.While | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

# What share of an idiom's part of its loop's own time the fix saves, measured on
# CPython 3.11 (see the rule's docstring).
FRACTIONS = {
    "string-concat": 0.8,  # quadratic copying -> one join; 0.27 s -> 0.006 s for 100k pieces
    "list-membership": 0.8,  # linear scan -> hash lookup; 98% saved at 200 items, 78% at 10
    "list-front": 0.7,  # O(n) memmove -> O(1); 97% saved at 50k items, ~40% at 100
    "range-len": 0.2,  # index arithmetic -> direct iteration; 0-25% of a small loop body
}
# Functions and methods whose result is a string (evidence that `+=` builds one).
STR_CALLS = {"str", "repr", "format", "chr", "join", "strip", "lstrip", "rstrip", "lower", "upper", "title",
             "replace", "ljust", "rjust", "center", "zfill", "decode", "hex", "capitalize", "casefold"}
LIST_CALLS = {"list", "sorted", "split", "splitlines", "readlines", "rsplit"}
Sampled = tuple[float, list[tuple[str, int]]]  # a stack's time and its program lines
SMALL_LITERAL = 8  # a constant list this short is scanned about as fast as a set is hashed


@dataclass
class Site:
    """One slow idiom found in a loop."""

    kind: str
    line: int
    loop: LoopLike
    message: str
    fix: str
    fraction: float = 0.0
    max_severity: str = "high"
    node: ast.AST | None = None  # the offending expression or statement
    evidence: dict[str, object] = field(default_factory=dict)


def _scope_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    """The function (or None for module level) whose code `node` is."""
    current = parents.get(node)
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return current
        current = parents.get(current)
    return None


def _innermost_loop(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> LoopLike | None:
    """The loop that runs `node` once per iteration (the header of a `for` is not its body)."""
    child, current = node, parents.get(node)
    while current is not None:
        if isinstance(current, SCOPES):
            return None
        if isinstance(current, (ast.For, ast.AsyncFor)) and child is not current.iter and child is not current.target:
            return current
        if isinstance(current, ast.While):
            return current
        if isinstance(current, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)) and not _inside(
                node, current.generators[0].iter, parents):
            return current
        child, current = current, parents.get(current)
    return None


def _inside(node: ast.AST, outer: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    current: ast.AST | None = node
    while current is not None:
        if current is outer:
            return True
        current = parents.get(current)
    return False


def _bindings(name: str, scope: ast.AST | None, tree: ast.Module) -> list[ast.AST] | None:
    """Every value bound to `name` in its scope (function, else module); None when a binding
    cannot be read (a parameter without a list annotation, a loop target, an import, ...)."""
    where: ast.AST = scope if scope is not None else tree
    if scope is not None:
        declared = any(isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names for n in ast.walk(scope))
        arguments = scope.args  # type: ignore[attr-defined]
        params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                  *(a for a in (arguments.vararg, arguments.kwarg) if a is not None)]
        if declared:
            where = tree
        else:
            for param in params:
                if param.arg == name:
                    annotation = ast.unparse(param.annotation) if param.annotation is not None else ""
                    if annotation.split("[", 1)[0] not in ("list", "List", "typing.List"):
                        return None
                    return [param]
    values: list[ast.AST] = []
    stored = False
    for node in _walk_scope(where):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    values.append(node.value)
                elif any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                         for n in ast.walk(target)):
                    return None  # unpacked: the type is not visible
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            if node.value is not None:
                values.append(node.value)
        elif isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            stored = True
    if scope is not None and not values and not stored:
        return _bindings(name, None, tree)  # a module-level name read in a function
    if stored and not values:
        return None
    # a name stored in another way too (loop target, with ... as, walrus, import)
    counted = sum(1 for node in _walk_scope(where) if isinstance(node, ast.Name) and node.id == name
                  and isinstance(node.ctx, ast.Store))
    augmented = sum(1 for node in _walk_scope(where) if isinstance(node, ast.AugAssign)
                    and isinstance(node.target, ast.Name) and node.target.id == name)
    return values if counted - augmented == len(values) else None


def _walk_scope(root: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope, not descending into nested functions or classes."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _is_list_value(value: ast.AST, small_literals: bool = False) -> bool:
    if isinstance(value, ast.arg):
        return True  # annotated `list[...]`
    if isinstance(value, ast.List):
        constant = all(isinstance(e, ast.Constant) for e in value.elts)
        return small_literals or not constant or len(value.elts) >= SMALL_LITERAL or not value.elts
    if isinstance(value, ast.ListComp):
        return True
    if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Mult)):
        return _is_list_value(value.left, True) or _is_list_value(value.right, True)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in LIST_CALLS
    return False


def _is_str_value(value: ast.AST) -> bool:
    """Whether an expression visibly makes a string."""
    for node in ast.walk(value):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return True
        if isinstance(node, ast.JoinedStr):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in STR_CALLS:
                return True
    return False


def _top_level_str(value: ast.AST) -> bool:
    """The value itself is a string (`""`, an f-string, `str(...)`), not merely contains one."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str)
    if isinstance(value, ast.JoinedStr):
        return True
    if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Mod)):
        return _top_level_str(value.left)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in STR_CALLS
    return False


def _attribute_is_str(attr: str, tree: ast.Module) -> bool:
    """Some `x.<attr> = <a string>` in the file."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == attr for t in targets) and _top_level_str(node.value):
                return True
    return False


def _add_chain(value: ast.AST) -> list[ast.AST]:
    """The operands of `a + b + c` in order."""
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        return [*_add_chain(value.left), value.right]
    return [value]


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a).replace("Store()", "Load()") == ast.dump(b).replace("Store()", "Load()")


class Finder:
    """The slow idioms of one parsed file."""

    def __init__(self, tree: ast.Module, parents: dict[ast.AST, ast.AST],
                 hot: Callable[[ast.AST], bool] = lambda loop: True) -> None:
        self.tree = tree
        self.parents = parents
        self.hot = hot  # only hot loops are read further (the scope look-ups cost)

    def sites(self) -> Iterator[Site]:
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.AugAssign, ast.Assign)):
                yield from self._string_concat(node)
            elif isinstance(node, ast.Compare):
                yield from self._membership(node)
            elif isinstance(node, ast.Call):
                yield from self._list_front(node)
            if isinstance(node, ast.For):
                yield from self._range_len(node)

    # ---- string building
    def _string_concat(self, node: ast.AugAssign | ast.Assign) -> Iterator[Site]:
        loop = _innermost_loop(node, self.parents)
        if loop is None or not self.hot(loop):
            return
        scope = _scope_of(node, self.parents)
        if isinstance(node, ast.AugAssign):
            if not isinstance(node.op, ast.Add):
                return
            target = node.target
            if isinstance(target, ast.Name):
                # CPython appends in place to a local string that nothing else refers to;
                # a module-level, global or nonlocal name is copied every time
                declared = scope is not None and any(
                    isinstance(n, (ast.Global, ast.Nonlocal)) and target.id in n.names for n in ast.walk(scope))
                if scope is not None and not declared:
                    return
                values = _bindings(target.id, scope, self.tree) or []
                is_str = _is_str_value(node.value) or any(_top_level_str(v) for v in values)
                where = "a module-level" if scope is None else "a global"
            elif isinstance(target, ast.Attribute):
                is_str = _is_str_value(node.value) or _attribute_is_str(target.attr, self.tree)
                where = "an attribute"
            elif isinstance(target, ast.Subscript):
                is_str = _is_str_value(node.value)
                where = "a container item"
            else:
                return
            if not is_str:
                return
            written = ast.unparse(target)
            added = ast.unparse(node.value)
            how = f"`{written} += ...` on {where} copies the whole string on every iteration"
        else:
            if len(node.targets) != 1:
                return
            assigned = node.targets[0]
            chain = _add_chain(node.value)
            if len(chain) < 2 or not isinstance(assigned, (ast.Name, ast.Attribute, ast.Subscript)):
                return
            if _same(chain[0], assigned) and len(chain) >= 3:
                rest = chain[1:]
                how_kind = "appended"
            elif _same(chain[-1], assigned) and not any(_same(c, assigned) for c in chain[:-1]):
                rest = chain[:-1]
                how_kind = "prepended"
            else:
                return
            if not any(_is_str_value(part) for part in rest):
                return
            written = ast.unparse(assigned)
            added = " + ".join(ast.unparse(part) for part in rest)
            how = (f"`{written} = {ast.unparse(node.value)}` copies the whole string on every iteration "
                   f"({how_kind} piece by piece)")
            if how_kind == "prepended":
                yield Site(
                    kind="string-concat", line=node.lineno, loop=loop, node=node,
                    message=f"{how}: building a string this way is quadratic",
                    fix=f"parts.append({added})  # in the loop, with parts = [] before it; "
                        f"then {written} = ''.join(reversed(parts)) + {written} once after it",
                    evidence={"target": written},
                )
                return
        yield Site(
            kind="string-concat", line=node.lineno, loop=loop, node=node,
            message=f"{how}: building a string this way is quadratic",
            fix=f"parts.append({added})  # in the loop, with parts = [] before it; "
                f"then {written} += ''.join(parts) once after it",
            evidence={"target": written},
        )

    # ---- membership in a list
    def _membership(self, node: ast.Compare) -> Iterator[Site]:
        loop = _innermost_loop(node, self.parents)
        if loop is None or not self.hot(loop):
            return
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, (ast.In, ast.NotIn)) or not isinstance(comparator, ast.Name):
                continue
            name = comparator.id
            scope = _scope_of(node, self.parents)
            values = _bindings(name, scope, self.tree)
            if not values or not all(_is_list_value(v) for v in values):
                continue
            if any(_inside(v, loop, self.parents) for v in values):
                continue  # built inside the loop: a set would be built as often
            grows = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "append"
                        and isinstance(n.func.value, ast.Name) and n.func.value.id == name
                        for n in ast.walk(loop))
            fix = (f"{name} = set()  # before the loop, then {name}.add(...) instead of {name}.append(...) "
                   f"(dict.fromkeys keeps the order)" if grows else
                   f"{name}_set = set({name})  # once, before the loop; then `... in {name}_set`")
            yield Site(
                kind="list-membership", line=node.lineno, loop=loop, node=node,
                message=f"`{ast.unparse(node)}` scans the list {name} item by item on every iteration",
                fix=fix, evidence={"list": name},
            )

    # ---- insert(0, x) / pop(0) on a list
    def _list_front(self, node: ast.Call) -> Iterator[Site]:
        func = node.func
        if not isinstance(func, ast.Attribute) or node.keywords:
            return
        zero = [a for a in node.args[:1] if isinstance(a, ast.Constant) and a.value == 0 and a.value is not False]
        if func.attr == "insert" and len(node.args) == 2 and zero:
            faster = "appendleft"
            argument = ast.unparse(node.args[1])
        elif func.attr == "pop" and len(node.args) == 1 and zero:
            faster = "popleft"
            argument = ""
        else:
            return
        loop = _innermost_loop(node, self.parents)
        if loop is None or not self.hot(loop):
            return
        receiver = func.value
        if isinstance(receiver, ast.Name):
            values = _bindings(receiver.id, _scope_of(node, self.parents), self.tree)
            if not values or not all(_is_list_value(v, True) for v in values):
                return
        elif isinstance(receiver, ast.Attribute):
            if not any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == receiver.attr
                                                          for t in n.targets) and _is_list_value(n.value, True)
                       for n in ast.walk(self.tree)):
                return
        else:
            return
        name = ast.unparse(receiver)
        yield Site(
            kind="list-front", line=node.lineno, loop=loop, node=node,
            message=f"`{ast.unparse(node)}` shifts every item of the list {name} on every call",
            fix=f"{name} = collections.deque(...)  # where it is made; then {name}.{faster}({argument})",
            evidence={"list": name, "call": func.attr},
        )

    # ---- for i in range(len(seq)): ... seq[i]
    def _range_len(self, node: ast.For) -> Iterator[Site]:
        it = node.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and len(it.args) == 1 and not it.keywords and isinstance(it.args[0], ast.Call)
                and isinstance(it.args[0].func, ast.Name) and it.args[0].func.id == "len"
                and len(it.args[0].args) == 1 and isinstance(node.target, ast.Name)):
            return
        if not self.hot(node):
            return
        sequence = it.args[0].args[0]
        index = node.target.id
        indexed: list[ast.Subscript] = []
        other_use = False
        subscript_names: set[int] = set()
        for child in (n for stmt in node.body for n in ast.walk(stmt)):
            if (isinstance(child, ast.Subscript) and isinstance(child.slice, ast.Name) and child.slice.id == index
                    and _same(child.value, sequence)):
                indexed.append(child)
                subscript_names.add(id(child.slice))
        if not indexed:
            return
        for child in (n for stmt in node.body for n in ast.walk(stmt)):
            if isinstance(child, ast.Name) and child.id == index and id(child) not in subscript_names:
                other_use = True
        if any(isinstance(s.ctx, ast.Store) for s in indexed):
            other_use = True
        seq = ast.unparse(sequence)
        item = "item"
        if other_use:
            fix = f"for {index}, {item} in enumerate({seq}):  # and {item} for {seq}[{index}]"
            fraction, cap = 0.05, "low"
        else:
            fix = f"for {item} in {seq}:  # and {item} for {seq}[{index}]"
            fraction, cap = FRACTIONS["range-len"], "high"
        yield Site(
            kind="range-len", line=node.lineno, loop=node,
            message=f"`for {index} in range(len({seq}))` indexes {seq}[{index}] "
                    f"{len(indexed)} time{'s' if len(indexed) != 1 else ''} per iteration",
            fix=fix, fraction=fraction,
            max_severity=cap, evidence={"sequence": seq},
        )


class SlowConstructRule(Rule):
    """
    ## What it does
    Finds a hot loop (one under which a real share of the run was sampled) written with
    an idiom that has a much faster builtin form, read from the loop's code:

    - a string built with `+=` where CPython cannot append in place (an attribute, a
      container item, a module-level or global name), or as `s = s + a + b` / `s = a + s`;
    - `x in some_list` where the list was built outside the loop;
    - `lst.insert(0, x)` or `lst.pop(0)` on a list;
    - `for i in range(len(seq))` indexing `seq[i]`.

    The savings are estimated from the loop's own time: what was sampled in the loop's
    lines themselves, not in the functions they call. (A sampler in another thread sees
    a thread that runs C code, such as a list scan or a string copy, only where it lets
    the GIL go: at the loop's backward jump, which in CPython 3.11 has no line of its
    own. So the time is known per loop, not per line; samples without a line are given
    to the function's `for` loops.) That time is shared among the idioms of the loop (an
    idiom under an `if` counts half, `range(len())` a quarter) and each share is
    multiplied by a fraction measured on CPython 3.11: 80% for string building (quadratic
    copying becomes one `join`) and list membership (a scan becomes a hash lookup), 70%
    for `insert(0)`/`pop(0)` (an O(n) shift becomes O(1)), 20% for `range(len(seq))`
    when `for item in seq` can replace it (5%, at low severity at most, when the index is
    needed anyway: `enumerate` is clearer, not faster). A local `s += piece` is left
    alone: CPython resizes such a string in place, as fast as a join.

    ## Why is this bad?
    These idioms turn linear work quadratic (each `+=` or `insert(0)` copies everything
    so far, each `in` scans the whole list) or add index arithmetic to every iteration;
    in a loop that runs many times they dominate the run.

    ## Example
    ```python
    allowed = [row["sku"] for row in catalogue]
    for order in orders:
        if order.sku not in allowed:
            report.text += f"unknown {order.sku}\\n"
    ```

    ## Use instead
    ```python
    allowed = {row["sku"] for row in catalogue}
    lines = []
    for order in orders:
        if order.sku not in allowed:
            lines.append(f"unknown {order.sku}\\n")
    report.text += "".join(lines)
    ```
    (`collections.deque` with `appendleft`/`popleft` for a queue; `for item in seq` or
    `enumerate(seq)` for `range(len(seq))`.)
    """

    slug = "slow-construct"
    code = "ADV305"
    summary = "a hot loop using a slow idiom (string +=, list membership, range(len()))"
    family = "compute"
    default_severity = "low"
    defaults = {"min_loop_share": 0.1}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        if context.wall_s <= 0:
            return
        own, stacks = self._sampled(context)
        files = sorted({file for _seconds, lines in stacks for file, _line in lines})
        minimum = context.option(self, "min_loop_share") * context.wall_s
        hotness: dict[tuple[str, int], bool] = {}
        for file in files:
            parsed = parse_file(file)
            if parsed is None:
                continue
            by_loop: dict[int, list[Site]] = defaultdict(list)
            hot = functools.partial(self._hot, hotness, file, parsed, own, stacks, minimum)
            for site in Finder(parsed.tree, parsed.parents, hot).sites():
                if all((other.line, other.kind) != (site.line, site.kind) for other in by_loop[id(site.loop)]):
                    by_loop[id(site.loop)].append(site)
            for sites in by_loop.values():
                yield from self._loop_advice(file, parsed.tree, parsed.parents, sites, own, stacks, minimum)

    def _hot(self, cache: dict[tuple[str, int], bool], file: str, parsed: Parsed, own: dict[tuple[str, int], float],
             stacks: list[Sampled], minimum: float, loop: ast.AST) -> bool:
        """Whether a real share of the run was sampled under the loop."""
        key = (file, id(loop))
        if key not in cache:
            first, last = loop.lineno, loop.end_lineno or loop.lineno  # type: ignore[attr-defined]
            unlined = self._unlined(own, file, _scope_of(loop, parsed.parents), loop, parsed.tree)
            cache[key] = self._under(stacks, file, first, last) + unlined >= minimum
        return cache[key]

    def _loop_advice(self, file: str, tree: ast.Module, parents: dict[ast.AST, ast.AST], sites: list[Site],
                     own: dict[tuple[str, int], float], stacks: list[Sampled],
                     minimum: float) -> Iterator[Advice]:
        loop = sites[0].loop
        first, last = loop.lineno, loop.end_lineno or loop.lineno
        scope = _scope_of(loop, parents)
        unlined = self._unlined(own, file, scope, loop, tree)
        under = self._under(stacks, file, first, last) + unlined
        if under < minimum:
            return
        loop_own = sum(seconds for (f, line), seconds in own.items() if f == file and first <= line <= last)
        loop_own += unlined
        if loop_own <= 0.0:
            return
        weights = [self._weight(site, parents) for site in sites]
        function = getattr(scope, "name", "<module>")
        for site, weight in zip(sites, weights, strict=True):
            shared = loop_own * weight / sum(weights)
            fraction = site.fraction or FRACTIONS[site.kind]
            yield Advice(
                file=file, line=site.line, function=function,
                message=(f"{site.message}, in a loop that took {under:.2f} s ({loop_own:.2f} s in its own lines, "
                         f"not in the functions they call)"),
                fix=site.fix,
                savings_s=fraction * shared,
                evidence={"idiom": site.kind, "loop_s": round(under, 6), "loop_own_s": round(loop_own, 6),
                          "idioms_in_loop": len(sites), "saved_fraction": fraction, **site.evidence},
                max_severity=site.max_severity,  # type: ignore[arg-type]
            )

    @staticmethod
    def _weight(site: Site, parents: dict[ast.AST, ast.AST]) -> float:
        """How much of the loop's own time an idiom is given: a sampler sees the loop, not
        the line, so the time is shared; an idiom under an `if` runs on some iterations
        only (half), and `range(len())` costs a constant per iteration (a quarter)."""
        if site.kind == "range-len":
            return 0.25
        child = site.node
        current = parents.get(child) if child is not None else None
        while current is not None and current is not site.loop:
            if isinstance(current, (ast.If, ast.IfExp, ast.While)) and child is not current.test:
                return 0.5
            if isinstance(current, ast.Try) and child in current.handlers:
                return 0.5
            child, current = current, parents.get(current)
        return 1.0

    @staticmethod
    def _unlined(own: dict[tuple[str, int], float], file: str, scope: ast.AST | None, loop: ast.AST,
                 tree: ast.Module) -> float:
        """This `for` loop's part of the samples its function took at an instruction without a
        line (CPython 3.11's backward jump of a `for` loop: where another thread's sampler
        finds a loop that runs C code, such as a list scan or a string copy). Such samples
        carry the function's first line; they are shared by the function's `for` loops."""
        if not isinstance(loop, (ast.For, ast.AsyncFor)):
            return 0.0
        if scope is None:
            first_line = 1
        else:
            decorators = getattr(scope, "decorator_list", [])
            first_line = min([scope.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]
        seconds = own.get((file, first_line), 0.0)
        if seconds <= 0.0:
            return 0.0
        loops = sum(1 for node in _walk_scope(scope if scope is not None else tree)
                    if isinstance(node, (ast.For, ast.AsyncFor)))
        return seconds / max(1, loops)

    @staticmethod
    def _sampled(context: RuleContext) -> tuple[dict[tuple[str, int], float], list[Sampled]]:
        """Time sampled in each program line itself (it was the innermost frame), and each
        thread stack's time with its program lines (threads count every sample once)."""
        samples = context.report.samples
        kinds = {task.id: task.kind for task in context.report.tasks}
        own: dict[tuple[str, int], float] = defaultdict(float)
        stacks: list[Sampled] = []
        for stack in samples.stacks:
            if kinds.get(stack.unit) != "thread" or stack.state == "idle":
                continue
            seconds = stack.on_cpu_s + (stack.off_cpu_s if stack.state != "running" else 0.0)
            frames = [samples.frames[index] for index in stack.frames]
            if frames and is_user_file(frames[0].file):
                own[(frames[0].file, frames[0].line)] += seconds
            stacks.append((seconds, [(f.file, f.line) for f in frames if is_user_file(f.file)]))
        return dict(own), stacks

    @staticmethod
    def _under(stacks: list[Sampled], file: str, first: int, last: int) -> float:
        """Time sampled anywhere under the loop's lines (each stack once)."""
        return sum(seconds for seconds, lines in stacks
                   if any(f == file and first <= line <= last for f, line in lines))
