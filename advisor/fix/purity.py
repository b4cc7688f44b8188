"""A conservative check that a module-level function is pure enough to cache.

``lru_cache`` returns the first result for every later call with equal arguments, so it
keeps a program's behaviour only if the function's result depends on its arguments alone,
the call has no effect, and callers cannot change the result they get back. This check
reads the function (and the module around it) with ``ast`` and answers the first reason
it finds to doubt that — a global or nonlocal rebinding, a changed argument or global, a
call that does I/O or reads time or randomness — or any call it cannot see into: only
pure builtins, methods and standard modules, and functions of the same module that pass
the same check, are allowed — a global that the module rebinds or mutates, an argument
annotated with an unhashable type, a mutable result. It errs on the side of refusing: a
function it passes is one a reviewer would cache without a second look.
"""

from __future__ import annotations

import ast

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# calls whose result or effect is not a function of their arguments
IMPURE_CALLS = {"print", "open", "input", "exec", "eval", "compile", "setattr", "delattr", "globals", "locals",
                "vars", "next", "breakpoint", "__import__", "id"}
IMPURE_MODULES = {"random", "time", "datetime", "uuid", "secrets", "os", "sys", "socket", "requests", "logging",
                  "subprocess", "shutil", "threading", "asyncio", "urllib", "http", "io", "pathlib", "tempfile",
                  "sqlite3", "multiprocessing", "signal", "gc", "warnings", "builtins", "importlib"}
IMPURE_METHODS = {"write", "writelines", "read", "readline", "readlines", "send", "sendall", "recv", "sleep", "now",
                  "utcnow", "today", "time", "perf_counter", "monotonic", "random", "randint", "randrange", "choice",
                  "choices", "shuffle", "sample", "uniform", "uuid4", "urandom", "token_hex", "debug", "info",
                  "warning", "error", "exception", "critical", "log", "execute", "commit", "emit", "flush", "close",
                  "get", "post", "put", "delete", "request", "urlopen", "acquire", "release", "wait", "set"}
MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "add", "discard", "setdefault",
            "sort", "reverse", "popitem", "__setitem__", "__delitem__", "appendleft", "extendleft", "popleft",
            "difference_update", "intersection_update", "symmetric_difference_update"}
# what a cacheable function may call: builtins, modules and methods whose result depends on
# their arguments only; anything else is a call advisor cannot see into, and is refused
PURE_BUILTINS = {"len", "range", "sum", "min", "max", "abs", "round", "int", "float", "str", "bool", "bytes", "tuple",
                 "frozenset", "sorted", "enumerate", "zip", "map", "filter", "any", "all", "isinstance", "issubclass",
                 "hash", "divmod", "pow", "repr", "format", "ord", "chr", "reversed", "list", "dict", "set", "complex",
                 "hex", "oct", "bin", "ascii", "slice", "iter"}
PURE_MODULES = {"math", "cmath", "hashlib", "re", "string", "operator", "itertools", "functools", "bisect",
                "statistics", "unicodedata", "struct", "binascii", "base64", "zlib", "textwrap", "colorsys", "decimal",
                "fractions", "json", "heapq", "collections", "ipaddress"}
PURE_METHODS = {"encode", "decode", "digest", "hexdigest", "lower", "upper", "strip", "lstrip", "rstrip", "split",
                "rsplit", "splitlines", "join", "replace", "startswith", "endswith", "format", "find", "rfind", "index",
                "rindex", "count", "keys", "values", "items", "copy", "isdigit", "isalpha", "isalnum", "isspace",
                "isupper", "islower", "title", "capitalize", "casefold", "zfill", "partition", "rpartition", "ljust",
                "rjust", "center", "translate", "maketrans", "expandtabs", "removeprefix", "removesuffix", "to_bytes",
                "from_bytes", "bit_length", "bit_count", "as_integer_ratio", "is_integer", "conjugate", "isoformat",
                "strftime", "total_seconds", "weekday", "isoweekday", "group", "groups", "groupdict", "match",
                "search", "fullmatch", "findall", "finditer", "sub", "subn", "most_common", "union", "intersection",
                "difference", "symmetric_difference", "issubset", "issuperset", "isdisjoint", "fromhex", "quantize",
                "normalize", "sqrt", "exp", "ln", "log10"}
HASHABLE_TYPES = {"int", "float", "str", "bytes", "bool", "complex", "frozenset", "tuple", "Hashable", "None",
                  "Decimal", "Fraction", "date", "datetime", "time", "timedelta"}
HASHABLE_GENERICS = {"tuple", "Tuple", "frozenset", "FrozenSet", "Optional", "Union", "Literal", "Final"}
MUTABLE_RESULTS = {"list", "dict", "set", "bytearray", "List", "Dict", "Set", "defaultdict", "deque", "Counter",
                   "OrderedDict", "MutableMapping", "MutableSequence", "MutableSet"}


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node


def _root_name(node: ast.expr) -> str:
    root = _root(node)
    return root.id if isinstance(root, ast.Name) else ""


def _type_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def hashable_annotation(node: ast.expr | None) -> bool:
    """An annotation that only admits hashable values (no annotation: the caller's values decide,
    and the profile saw them hash)."""
    if node is None:
        return True
    if isinstance(node, ast.Constant):
        if node.value is None:
            return True
        if isinstance(node.value, str):  # a forward reference: read what it names
            try:
                return hashable_annotation(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                return False
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return hashable_annotation(node.left) and hashable_annotation(node.right)
    if isinstance(node, ast.Subscript):
        if _type_name(node.value) == "Literal":
            return True
        if _type_name(node.value) not in HASHABLE_GENERICS:
            return False
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return all((isinstance(item, ast.Constant) and item.value is Ellipsis) or hashable_annotation(item)
                   for item in inner)
    return _type_name(node) in HASHABLE_TYPES


def _parameters(function: FunctionNode) -> list[ast.arg]:
    arguments = function.args
    found = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    found += [extra for extra in (arguments.vararg, arguments.kwarg) if extra is not None]
    return found


def _locals(function: FunctionNode) -> set[str]:
    """Names the function binds itself (assignments, loops, with, imports, comprehensions)."""
    bound: set[str] = set()
    for child in ast.walk(function):
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            bound.add(child.id)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child is not function:
            bound.add(child.name)
    return bound


def _owned(function: FunctionNode, bound: set[str]) -> set[str]:
    """Local names only ever bound to a container the function made itself (a literal, a
    comprehension, a constructor): changing those changes nothing the caller can see."""
    fresh = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.Constant, ast.JoinedStr)
    owned = set(bound)
    for child in ast.walk(function):
        if isinstance(child, (ast.Assign, ast.AnnAssign)) and child.value is not None:
            targets = child.targets if isinstance(child, ast.Assign) else [child.target]
            value = child.value
            made = isinstance(value, fresh) or (isinstance(value, ast.Call) and _type_name(value.func) in
                                                MUTABLE_RESULTS | {"sorted", "deepcopy"})
            if not made:
                owned -= {node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name)}
        elif isinstance(child, (ast.For, ast.comprehension, ast.withitem, ast.NamedExpr)):
            target = child.optional_vars if isinstance(child, ast.withitem) else child.target
            if target is not None:
                owned -= {node.id for node in ast.walk(target) if isinstance(node, ast.Name)}
        elif isinstance(child, ast.AugAssign) and isinstance(child.target, ast.Name):
            owned.discard(child.target.id)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            owned -= {(alias.asname or alias.name).split(".")[0] for alias in child.names}
    return owned


def _module_state(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Module-level names the program rebinds (bound twice at the top, or declared ``global``
    somewhere) and names it mutates somewhere (a mutator method, an item or attribute store)."""
    counts: dict[str, int] = {}
    for statement in tree.body:
        for child in ast.walk(statement):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                counts[child.id] = counts.get(child.id, 0) + 1
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[statement.name] = counts.get(statement.name, 0) + 1
    rebound = {name for name, count in counts.items() if count > 1}
    mutated: set[str] = set()
    for child in ast.walk(tree):
        if isinstance(child, ast.Global):
            rebound.update(child.names)
        elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr in MUTATORS:
            mutated.add(_root_name(child.func.value))
        elif isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, (ast.Store, ast.Del)):
            mutated.add(_root_name(child.value))
        elif isinstance(child, ast.AugAssign) and isinstance(child.target, (ast.Attribute, ast.Subscript)):
            mutated.add(_root_name(child.target.value))
    return rebound, mutated - {""}


def _mutable_result(function: FunctionNode) -> str | None:
    returns = function.returns
    if returns is not None:
        named = _type_name(returns.value if isinstance(returns, ast.Subscript) else returns)
        if named in MUTABLE_RESULTS:
            return named
    for child in ast.walk(function):
        if isinstance(child, ast.Return) and child.value is not None:
            value = child.value
            if isinstance(value, (ast.List, ast.ListComp)):
                return "list"
            if isinstance(value, (ast.Dict, ast.DictComp)):
                return "dict"
            if isinstance(value, (ast.Set, ast.SetComp)):
                return "set"
            if isinstance(value, ast.Call) and _type_name(value.func) in MUTABLE_RESULTS:
                return _type_name(value.func)
    return None


def _imports(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Module-level imports: alias -> module (``import x as y``), and name -> module (``from x import y``)."""
    modules: dict[str, str] = {}
    names: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                modules[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
            for alias in statement.names:
                names[alias.asname or alias.name] = statement.module.split(".")[0]
    return modules, names


def _call_doubt(call: ast.Call, tree: ast.Module, bound: set[str], parameters: set[str],
                seen: frozenset[str]) -> str | None:
    """Why a call may have an effect or depend on more than its arguments, or None when it is
    known not to (a pure builtin, module or method, or a pure function of this module)."""
    func = call.func
    modules, imported = _imports(tree)
    if isinstance(func, ast.Name):
        name = func.id
        if name in parameters:
            return f"it calls its argument {name}()"
        if name in bound:
            return f"it calls {name}(), a function it was not given by name"
        if name in imported:
            return None if imported[name] in PURE_MODULES else f"it calls {name}() from {imported[name]}"
        defined = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        target = defined.get(name)
        if isinstance(target, ast.FunctionDef):
            if name in seen:
                return None  # recursion: the function is being checked already
            why = impurity(target, tree, seen, callee=True)
            return f"it calls {name}(), and {why}" if why else None
        if isinstance(target, ast.ClassDef):
            return f"it creates a {name}, whose constructor may have effects"
        return None if name in PURE_BUILTINS else f"it calls {name}(), which advisor cannot see is pure"
    if isinstance(func, ast.Attribute):
        root = _root(func.value)
        if isinstance(root, ast.Name) and root is func.value and root.id in modules and root.id not in bound:
            module = modules[root.id]
            return None if module in PURE_MODULES else f"it calls {ast.unparse(func)}()"
        if func.attr in PURE_METHODS:
            return None
        return f"it calls {ast.unparse(func)}(), which advisor cannot see is pure"
    return f"it calls {ast.unparse(func)}(), which advisor cannot see is pure"


def impurity(function: FunctionNode, tree: ast.Module, seen: frozenset[str] = frozenset(),
             callee: bool = False) -> str | None:
    """Why caching this module-level function could change what the program does, or None.

    ``callee``: the function is called by the one being checked, so only its effects and
    inputs matter (not its annotations or the mutability of its result).
    """
    if isinstance(function, ast.AsyncFunctionDef):
        return "it is a coroutine (a cached coroutine object can be awaited only once)"
    seen = seen | {function.name}
    parameters = _parameters(function)
    names = {parameter.arg for parameter in parameters}
    for parameter in parameters:
        if not callee and not hashable_annotation(parameter.annotation):
            written = ast.unparse(parameter.annotation) if parameter.annotation is not None else ""
            return f"its argument {parameter.arg} is annotated {written}, which is not hashable"
    local = _locals(function) - names
    owned = _owned(function, local)
    rebound, mutated = _module_state(tree)
    for child in ast.walk(function):
        if isinstance(child, (ast.Global, ast.Nonlocal)):
            return "it rebinds a global or nonlocal name"
        if isinstance(child, (ast.Yield, ast.YieldFrom, ast.Await)):
            return "it is a generator or coroutine"
        if isinstance(child, ast.Call):
            func = child.func
            name = _type_name(func)
            base = _root_name(func.value) if isinstance(func, ast.Attribute) else ""
            if isinstance(func, ast.Name) and name in IMPURE_CALLS and name not in local:
                return f"it calls {name}()"
            if base in IMPURE_MODULES and base not in local:
                return f"it calls {ast.unparse(func)}()"
            if isinstance(func, ast.Attribute) and name in IMPURE_METHODS and base not in local:
                return f"it calls {ast.unparse(func)}(), which may do I/O or read the clock"
            if isinstance(func, ast.Attribute) and name in MUTATORS:
                if base not in owned:
                    return f"it changes {base} with {name}()"
                continue
            doubt = _call_doubt(child, tree, local, names, seen)
            if doubt is not None:
                return doubt
        if isinstance(child, (ast.Attribute, ast.Subscript)) and isinstance(child.ctx, (ast.Store, ast.Del)):
            base = _root_name(child.value)
            if base not in owned:
                return f"it changes {base or 'an object it did not create'} in place"
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id not in local | names:
            if child.id in rebound:
                return f"it reads the global {child.id}, which the program rebinds"
            if child.id in mutated:
                return f"it reads the global {child.id}, which the program changes in place"
    result = None if callee else _mutable_result(function)
    if result is not None:
        return f"it returns a {result}: a caller that changes it would change the cached result"
    return None
