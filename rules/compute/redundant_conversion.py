"""ADV303 redundant-conversion: data converted back and forth, or converted again.

The patterns are found in the syntax of program lines that the samples show as costly;
the savings are the sampled time under the line (excluding what it spends in the
program's own functions), times the share of that time the fix removes, measured with
``timeit`` on CPython 3.11 and rounded down (see ``FRACTIONS``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from advisor.frames import is_user_file
from advisor.source import FunctionNode, enclosing_function, names_loaded, names_stored, parse_file

from ..base import Advice, Rule, RuleContext

SERIALIZERS = {"json", "orjson", "ujson", "simplejson", "pickle", "marshal"}
DUMPS = {"dumps", "dump_json"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault",
            "sort", "reverse", "popitem"}
# calls that read their argument without changing it
READ_ONLY_CALLS = {"len", "print", "sum", "min", "max", "sorted", "str", "repr", "dumps", "dump", "deepcopy", "copy",
                   "isinstance", "list", "dict", "tuple", "set", "frozenset", "any", "all", "enumerate", "iter", "zip",
                   "hash", "id", "type", "bool", "format", "reversed"}
DUMP_METHODS = {"model_dump": "model_validate", "dict": "parse_obj", "model_dump_json": "model_validate_json",
                "json": "parse_raw"}
DATE_PARSERS = {"strptime", "fromisoformat", "isoparse"}

# Share of the line's own time each fix removes (timeit, CPython 3.11, rounded down):
#   json round trip dropped (the copy is never modified) ............ all of it
#   json round trip -> pickle round trip (a real deep copy is needed) 356 -> 109 us: 0.69
#     (copy.deepcopy is slower than the json round trip on JSON-shaped data: 638 us)
#   int(str(n)) / str(int(s)) -> n / s ............................... 0.94
#   float(str(x)) -> float(x) ......................................... 0.76-0.92
#   str(str(x)), int(int(x)), list(list(x)), set(set(x)) -> one ....... ~0.5
#   list(sorted(x)), list([... for ...]) -> without the list() ........ 0.01-0.2
#   model_validate(m.model_dump()) -> m.model_copy() .................. 4.7 -> 1.1 us: 0.77
#   a loop-invariant strptime/fromisoformat hoisted out of the loop ... all but one call
# The line's other work shares its time, hence the margin below the measurements.
FRACTIONS = {
    "round-trip-unused": 0.9,
    "round-trip-copy": 0.6,
    "scalar-pair": 0.7,
    "float-str": 0.6,
    "same-type": 0.4,
    "list-of-list": 0.1,
    "tuple-of-tuple": 0.05,
    "model-copy": 0.7,
    "date-invariant": 0.9,
}


@dataclass
class Conversion:
    """One redundant conversion found in the source."""

    node: ast.Call  # the outer call: its lines are where the time is read
    kind: str
    written: str
    fix: str
    why: str
    extra_lines: tuple[int, ...] = ()  # other lines whose time the fix also saves (a dumps through a variable)


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _module(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id
    return ""


def _serializer_pair(outer: ast.Call, inner: ast.AST) -> str | None:
    """The serializer module when `outer` is ``<mod>.loads`` of ``<mod>.dumps(...)``."""
    if not isinstance(inner, ast.Call) or _name(outer.func) != "loads" or _name(inner.func) != "dumps":
        return None
    module = _module(outer.func)
    if module != _module(inner.func) or module not in SERIALIZERS:
        return None
    # a default= / cls= / object_hook= changes the data: a conversion, not a copy
    if any(k.arg in ("default", "cls", "object_hook", "object_pairs_hook", "parse_float", "parse_int")
           for k in (*outer.keywords, *inner.keywords)):
        return None
    return module


def _base_name(node: ast.AST) -> str:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


def _mutated(function: ast.AST | None, name: str, escaping: bool = True) -> bool:
    """Whether `name` is (or may be) changed in place within the function; with `escaping`, also
    when it leaves the function or is aliased (it may be changed elsewhere)."""
    if function is None:
        return True
    for child in ast.walk(function):
        if isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, (ast.Store, ast.Del)) \
                and _base_name(child) == name:
            return True
        if isinstance(child, ast.Call):
            if isinstance(child.func, ast.Attribute) and child.func.attr in MUTATORS and \
                    _base_name(child.func.value) == name:
                return True
            # handed to another function, which may change it
            if any(isinstance(arg, ast.Name) and arg.id == name for arg in child.args) and \
                    _name(child.func) not in READ_ONLY_CALLS:
                return True
        if not escaping:
            continue
        if isinstance(child, (ast.Return, ast.Yield)) and child.value is not None and name in names_loaded(child.value):
            return True
        # aliased or stored away: it may be modified under another name
        if isinstance(child, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and child.value is not None and \
                name in names_loaded(child.value) and not _only_read_through(child.value, name):
            return True
    return False


def _only_read_through(value: ast.AST, name: str) -> bool:
    """Whether every use of `name` in `value` reads a part of it (``name["k"]``, ``len(name)``),
    so the assignment does not alias it."""
    for child in ast.walk(value):
        if isinstance(child, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Starred)) and any(
                isinstance(element, ast.Name) and element.id == name for element in ast.iter_child_nodes(child)):
            return False
    if isinstance(value, ast.Name):
        return value.id != name
    return not (isinstance(value, (ast.IfExp, ast.BoolOp)) and any(
        isinstance(part, ast.Name) and part.id == name for part in ast.iter_child_nodes(value)))


def _assigned_to(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    parent = parents.get(node)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
        return parent.targets[0].id
    return ""


def _enclosing(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> FunctionNode | None:
    current = parents.get(node)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
        current = parents.get(current)
    return current


def _round_trip(outer: ast.Call, module: str, source: str, parents: dict[ast.AST, ast.AST],
                extra: tuple[int, ...] = ()) -> Conversion:
    written = ast.unparse(outer)
    target = _assigned_to(outer, parents)
    function = _enclosing(outer, parents)
    origin = _base_name(ast.parse(source, mode="eval").body) if source != "the data" else ""
    if target and not _mutated(function, target) and origin and not _mutated(function, origin, escaping=False):
        return Conversion(outer, "round-trip-unused", written,
                          fix=f"{target} = {source}  # the copy is never modified: use the data itself",
                          why=f"a {module} round trip that only copies {source}, and the copy is never modified",
                          extra_lines=extra)
    return Conversion(outer, "round-trip-copy", written,
                      fix=(f"copy only the parts that are modified (new dicts/lists for what changes, e.g. "
                           f"`{{**{source}, key: new_value}}`), "
                           f"or `pickle.loads(pickle.dumps({source}, pickle.HIGHEST_PROTOCOL))` for a full deep copy "
                           f"(~3x faster than the {module} round trip; `copy.deepcopy` is clearer but slower)"),
                      why=f"a {module} round trip used as a deep copy of {source}", extra_lines=extra)


def _same_model(receiver: ast.expr, model: ast.expr, function: FunctionNode | None) -> bool:
    """Whether `receiver` is known to be an instance of `model` (so dump + validate is a copy)."""
    model_text, receiver_text = ast.unparse(model), ast.unparse(receiver)
    if model_text in (f"type({receiver_text})", f"{receiver_text}.__class__", receiver_text):
        return True
    if function is None or not isinstance(receiver, ast.Name):
        return False
    for arg in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs):
        if arg.arg == receiver.id and arg.annotation is not None and ast.unparse(arg.annotation) == model_text:
            return True
    constructors = (model_text, f"{model_text}.model_validate", f"{model_text}.parse_obj")
    for child in ast.walk(function):
        if isinstance(child, ast.Assign) and any(isinstance(t, ast.Name) and t.id == receiver.id
                                                 for t in child.targets):
            value = child.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) in constructors:
                return True
        if isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name) \
                and child.target.id == receiver.id and ast.unparse(child.annotation) == model_text:
            return True
    return False


def _model_round_trip(call: ast.Call, parents: dict[ast.AST, ast.AST]) -> Conversion | None:
    """``M.model_validate(m.model_dump())``, ``M(**m.model_dump())`` and their pydantic v1 forms."""
    dumped: ast.Call | None = None
    model: ast.expr | None = None
    if isinstance(call.func, ast.Attribute) and call.func.attr in DUMP_METHODS.values() and len(call.args) == 1:
        inner = call.args[0]
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                DUMP_METHODS.get(inner.func.attr) == call.func.attr and not inner.args and not inner.keywords:
            dumped, model = inner, call.func.value
    elif not call.args and len(call.keywords) == 1 and call.keywords[0].arg is None:
        inner = call.keywords[0].value
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                inner.func.attr in ("model_dump", "dict") and not inner.args and not inner.keywords:
            dumped, model = inner, call.func
    if dumped is None or model is None or not isinstance(dumped.func, ast.Attribute):
        return None
    receiver = dumped.func.value
    if not _same_model(receiver, model, _enclosing(call, parents)):
        return None
    source = ast.unparse(receiver)
    return Conversion(call, "model-copy", ast.unparse(call),
                      fix=f"{source}.model_copy()  # or .model_copy(update={{...}}); deep=True only if nested "
                          f"models are modified (it is slower than the round trip)",
                      why=f"{source} is dumped to a dict and validated back into the same model")


def _scalar(call: ast.Call) -> Conversion | None:
    """``str(int(s))``, ``int(str(n))``, ``float(str(x))``, ``list(list(x))``, ``list(sorted(x))``..."""
    if not isinstance(call.func, ast.Name) or len(call.args) != 1 or call.keywords:
        return None
    outer, inner = call.func.id, call.args[0]
    written = ast.unparse(call)
    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and len(inner.args) == 1 \
            and not inner.keywords:
        source = ast.unparse(inner.args[0])
        pair = (outer, inner.func.id)
        if pair in (("str", "int"), ("int", "str")):
            return Conversion(call, "scalar-pair", written, fix=f"keep one form: convert {source} once, where it "
                              f"is read, and use that value here (`{source}`)",
                              why=f"{source} is converted to {inner.func.id} and straight back to {outer}")
        if pair == ("float", "str"):
            return Conversion(call, "float-str", written, fix=f"float({source})",
                              why=f"{source} is turned into a string only to be parsed back as a float")
        if outer == inner.func.id and outer in ("str", "int", "float", "list", "set", "dict", "frozenset"):
            return Conversion(call, "same-type", written, fix=ast.unparse(inner),
                              why=f"the result of {inner.func.id}() is converted to {outer} again")
        if outer == "tuple" and inner.func.id == "tuple":
            return Conversion(call, "tuple-of-tuple", written, fix=ast.unparse(inner),
                              why="a tuple is converted to a tuple again")
        if outer == "list" and inner.func.id == "sorted":
            return Conversion(call, "list-of-list", written, fix=ast.unparse(inner),
                              why="sorted() already returns a new list; list() copies it again")
    if outer == "list" and isinstance(inner, ast.ListComp):
        return Conversion(call, "list-of-list", written, fix=ast.unparse(inner),
                          why="a list comprehension already builds a list; list() copies it again")
    if outer == "list" and isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
            inner.func.attr in ("split", "splitlines", "rsplit"):
        return Conversion(call, "list-of-list", written, fix=ast.unparse(inner),
                          why=f"str.{inner.func.attr}() already returns a list; list() copies it again")
    return None


Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


def _loop_names(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> set[str] | None:
    """The names that change from one iteration to the next of the innermost loop (statement or
    comprehension) that runs `node` repeatedly; None when `node` is not in a loop of its function."""
    child, current = node, parents.get(node)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                                             ast.ClassDef)):
        if isinstance(current, (ast.For, ast.AsyncFor)) and child is not current.iter:
            changing = names_stored(current.target)
            for statement in current.body:
                changing |= names_stored(statement)
            return changing
        if isinstance(current, ast.While):
            changing = set()
            for statement in current.body:
                changing |= names_stored(statement)
            return changing
        if isinstance(current, ast.comprehension):
            comprehension = parents[current]
            assert isinstance(comprehension, Comprehension)
            if child is not current.iter or current is not comprehension.generators[0]:
                return names_stored(comprehension)
            child, current = comprehension, parents.get(comprehension)  # the first iterable is evaluated once
            continue
        if isinstance(current, Comprehension) and child is not current.generators[0]:
            return names_stored(current)  # the element expression
        child, current = current, parents.get(current)
    return None


def _date_in_loop(call: ast.Call, parents: dict[ast.AST, ast.AST]) -> Conversion | None:
    """``datetime.strptime(s, fmt)`` / ``fromisoformat(s)`` of a string that does not change in the loop."""
    if _name(call.func) not in DATE_PARSERS or not call.args:
        return None
    changing = _loop_names(call, parents)
    if changing is None:
        return None
    for argument in call.args:
        if any(isinstance(child, (ast.Call, ast.Await, ast.NamedExpr)) for child in ast.walk(argument)):
            return None
        if names_loaded(argument) & changing:
            return None
    written = ast.unparse(call)
    return Conversion(call, "date-invariant", written,
                      fix=f"parse it once, before the loop: `parsed = {written}`, and use `parsed` inside",
                      why="the same string is parsed again on every iteration of the loop")


def find_conversions(file: str) -> list[Conversion]:
    """Every redundant conversion in a file's syntax."""
    parsed = parse_file(file)
    if parsed is None:
        return []
    parents = parsed.parents
    found: list[Conversion] = []
    for node in ast.walk(parsed.tree):
        if not isinstance(node, ast.Call):
            continue
        if node.args and (module := _serializer_pair(node, node.args[0])):
            found.append(_round_trip(node, module, ast.unparse(node.args[0].args[0]) if
                                     isinstance(node.args[0], ast.Call) and node.args[0].args else "the data",
                                     parents))
            continue
        for check in (_model_round_trip,):
            conversion = check(node, parents)
            if conversion is not None:
                found.append(conversion)
                break
        else:
            conversion = _scalar(node) or _date_in_loop(node, parents)
            if conversion is not None:
                found.append(conversion)
    found.extend(_round_trips_through_a_name(parsed.tree, parents))
    return found


def _round_trips_through_a_name(tree: ast.Module, parents: dict[ast.AST, ast.AST]) -> Iterator[Conversion]:
    """``text = json.dumps(x)`` ... ``json.loads(text)`` within one function."""
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        dumped: dict[str, tuple[ast.Assign, ast.Call, int]] = {}
        stores: dict[str, int] = defaultdict(int)
        uses: dict[str, int] = defaultdict(int)
        for child in ast.walk(function):
            if isinstance(child, ast.Name):
                if isinstance(child.ctx, ast.Store):
                    stores[child.id] += 1
                else:
                    uses[child.id] += 1
            if isinstance(child, ast.Assign) and len(child.targets) == 1 and isinstance(child.targets[0], ast.Name) \
                    and isinstance(child.value, ast.Call) and _name(child.value.func) == "dumps" \
                    and _module(child.value.func) in SERIALIZERS and child.value.args:
                dumped[child.targets[0].id] = (child, child.value, child.lineno)
        for child in ast.walk(function):
            if not (isinstance(child, ast.Call) and _name(child.func) == "loads" and len(child.args) == 1
                    and isinstance(child.args[0], ast.Name) and child.args[0].id in dumped):
                continue
            name = child.args[0].id
            _assign, dumps_call, dumps_line = dumped[name]
            module = _module(child.func)
            if module != _module(dumps_call.func) or stores[name] != 1 or \
                    any(k.arg in ("default", "cls") for k in dumps_call.keywords):
                continue
            # the dumps is saved too when its text serves only this loads
            extra = (dumps_line,) if uses[name] == 1 else ()
            yield _round_trip(child, module, ast.unparse(dumps_call.args[0]), parents, extra)


def own_line_costs(context: RuleContext) -> dict[tuple[str, int], tuple[float, set[str]]]:
    """Sampled time under each program line, leaving out what it spends in the program's own callees."""
    samples = context.report.samples
    kinds = {task.id: task.kind for task in context.report.tasks}
    user = [is_user_file(frame.file) for frame in samples.frames]
    costs: dict[tuple[str, int], tuple[float, set[str]]] = {}
    for stack in samples.stacks:
        if kinds.get(stack.unit) != "thread" or stack.state == "idle":
            continue
        weight = stack.on_cpu_s + (stack.off_cpu_s if stack.state != "running" else 0.0)
        for position, index in enumerate(stack.frames):
            if not user[index]:
                continue
            if position > 0 and user[stack.frames[position - 1]]:
                continue  # this line's time is in a program callee: that callee's lines have it
            frame = samples.frames[index]
            key = (frame.file, frame.line)
            seconds, units = costs.get(key, (0.0, set()))
            costs[key] = (seconds + weight, units | {stack.unit})
    return costs


class RedundantConversionRule(Rule):
    """
    ## What it does
    Finds data converted back and forth, or converted again, on lines the samples show
    as costly: `json.loads(json.dumps(x))` (also through a variable), `int(str(n))`,
    `str(int(s))`, `float(str(x))`, `list(list(x))`, `list(sorted(x))`, a pydantic model
    dumped and validated back into the same model, and `datetime.strptime` /
    `fromisoformat` of a string that does not change inside the loop parsing it.

    ## Why is this bad?
    Each conversion allocates and fills a new object; converting to a form and straight
    back (or to the form the data already has) does that work for nothing. A JSON round
    trip used to copy data serializes every key and value to text and parses it all back.

    ## Example
    ```python
    for event in events:
        snapshot = json.loads(json.dumps(state))
        apply(snapshot, event)
    cutoff_hits = [r for r in rows if datetime.strptime(CUTOFF, "%Y-%m-%d") <= r.day]
    ```

    ## Use instead
    ```python
    for event in events:
        snapshot = {**state, "items": [dict(item) for item in state["items"]]}
        apply(snapshot, event)
    cutoff = datetime.strptime(CUTOFF, "%Y-%m-%d")
    cutoff_hits = [r for r in rows if cutoff <= r.day]
    ```
    (`copy.deepcopy` is the general deep copy, but on JSON-shaped data it is slower than
    the round trip; `pickle.loads(pickle.dumps(x, -1))` is about 3x faster.)
    """

    slug = "redundant-conversion"
    code = "ADV303"
    summary = "the same data converted back and forth, or re-converted"
    family = "compute"
    default_severity = "medium"
    defaults = {"min_share": 0.02}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        wall = context.wall_s
        if wall <= 0.0:
            return
        minimum = context.option(self, "min_share") * wall
        costs = own_line_costs(context)
        by_file: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for (file, line), (seconds, _units) in costs.items():
            by_file[file].append((line, seconds))
        for file in sorted(by_file):
            if sum(seconds for _line, seconds in by_file[file]) < minimum:
                continue
            for conversion in find_conversions(file):
                node = conversion.node
                first, last = node.lineno, node.end_lineno or node.lineno
                lines = [*range(first, last + 1), *conversion.extra_lines]
                seconds = sum(costs.get((file, line), (0.0, set()))[0] for line in set(lines))
                savings = seconds * FRACTIONS[conversion.kind]
                if savings < minimum:
                    continue
                units = sorted(set().union(*(costs.get((file, line), (0.0, set()))[1] for line in set(lines))))
                owner = enclosing_function(file, first)
                function = owner.name if owner is not None else "<module>"
                yield Advice(
                    file=file, line=first, function=function,
                    message=f"{conversion.written}: {conversion.why}; {seconds:.2f} s sampled on this line",
                    fix=conversion.fix,
                    savings_s=savings,
                    evidence={"units": units, "line_s": round(seconds, 6), "pattern": conversion.kind,
                              "saved_fraction": FRACTIONS[conversion.kind]},
                )
