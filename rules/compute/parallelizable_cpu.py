"""ADV301 parallelizable-cpu: CPU-bound work over independent items, done serially in a thread."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from advisor.frames import is_user_file
from advisor.profile import Task
from advisor.source import calls_on_line, enclosing_function, nodes_on_line, parse_file, statement_at

from ..base import Advice, Rule, RuleContext

# Calls that collect a result (``results.append(work(item))``): the work is their argument.
COLLECTORS = {"append", "add", "extend", "appendleft", "put", "put_nowait", "insert", "setdefault", "update"}
# Builtins whose call is never "the work per item".
CHEAP = {"len", "range", "enumerate", "zip", "iter", "next", "int", "float", "str", "bool", "tuple", "list",
         "dict", "set", "print", "isinstance", "min", "max", "abs", "round", "sorted", "reversed", "repr",
         "format", "getattr", "setattr", "hasattr", "id", "type", "open"}
# Draws from a random generator: each call advances state the next one reads.
RANDOM_DRAWS = {"random", "randrange", "randint", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
                "normalvariate", "getrandbits", "randbytes", "triangular", "expovariate", "betavariate"}
Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
# Below this much CPU per item, items go to the workers in batches (one pickle per batch).
BATCH_BELOW_S = 0.01
SAVINGS_FORMULA = "loop_cpu_s x (1 - 1/min(items, cores))"


@dataclass
class LineCpu:
    """On-CPU samples of one thread under one program line, and what they ran below it."""

    cpu_s: float = 0.0
    depth: int = 0  # distance from the root of the stack (outer lines first)
    event_loop: bool = False  # some of those stacks run inside an asyncio event loop
    callees: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    function: str = ""


def _is_event_loop_frame(function: str, file: str) -> bool:
    return function.startswith("asyncio.") or "/asyncio/" in file.replace("\\", "/")


def _pure_line(file: str, line: int) -> bool:
    """A line of plain bytecode (no call but cheap builtins, no await): a thread sampled off
    the CPU there was not blocked in anything, only descheduled (or waiting for the GIL)."""
    if not is_user_file(file) or not parse_file(file):
        return False
    if any(_callee_name(call) not in CHEAP for call in calls_on_line(file, line)):
        return False
    return not any(isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom, ast.With, ast.AsyncWith))
                   for node in nodes_on_line(file, line))


def thread_lines(context: RuleContext, task: Task) -> tuple[float, float, dict[tuple[str, int], LineCpu]]:
    """The CPU of one thread from its samples (stacks that were running, or that were only
    kept off the CPU while at a line of plain bytecode), the time it was so kept off, and
    how much of the CPU sat under each program line."""
    samples = context.report.samples
    total = 0.0
    descheduled = 0.0
    lines: dict[tuple[str, int], LineCpu] = defaultdict(LineCpu)
    for stack in samples.stacks:
        if stack.unit != task.id or stack.state == "idle" or not stack.frames:
            continue
        frames = [samples.frames[index] for index in stack.frames]
        if stack.state != "running":
            if not _pure_line(frames[0].file, frames[0].line):
                continue
            descheduled += stack.off_cpu_s
        total += stack.on_cpu_s
        event_loop = any(_is_event_loop_frame(frame.function, frame.file) for frame in frames)
        seen: set[tuple[str, int]] = set()
        # root first, so that `depth` counts from the outside; the callee of a line is the
        # frame called from its innermost occurrence (a comprehension shares its line)
        for depth, position in enumerate(range(len(frames) - 1, -1, -1)):
            frame = frames[position]
            key = (frame.file, frame.line)
            if not is_user_file(frame.file):
                continue
            cost = lines[key]
            if key not in seen:
                seen.add(key)
                cost.cpu_s += stack.on_cpu_s
                cost.depth = depth if not cost.function else min(cost.depth, depth)
                cost.function = cost.function or frame.function
                cost.event_loop = cost.event_loop or event_loop
            callee = frames[position - 1] if position > 0 else None
            if callee is not None and (callee.file, callee.line) != key:
                cost.callees[callee.function] += stack.on_cpu_s
    return total, descheduled, dict(lines)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _callee_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _loop_of(path: str, line: int) -> ast.For | Comprehension | None:
    """The `for` loop or comprehension whose body runs `line` (within one function)."""
    parsed = parse_file(path)
    statement = statement_at(path, line)
    if parsed is None or statement is None:
        return None
    for node in ast.walk(statement):  # a comprehension on the line itself
        if isinstance(node, Comprehension) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return node
    if isinstance(statement, ast.For) and statement.lineno == line:
        return None  # the loop header itself is not a line of its body
    current = parsed.parents.get(statement)
    while current is not None:
        if isinstance(current, (ast.For, ast.AsyncFor, ast.While)):
            return current if isinstance(current, ast.For) else None
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return None
        current = parsed.parents.get(current)
    return None


def _work_call(statement: ast.AST, line: int, callees: dict[str, float]) -> ast.Call | None:
    """The call on the line that does the work per item: the one the samples ran into, else
    the outermost call that is neither a collector (``append``) nor a cheap builtin."""
    calls = [node for node in ast.walk(statement)
             if isinstance(node, ast.Call) and node.lineno <= line <= (node.end_lineno or node.lineno)]
    for name, _seconds in sorted(callees.items(), key=lambda item: -item[1]):
        for call in calls:
            if _callee_name(call) == _short(name):
                return call
    for call in calls:
        name = _callee_name(call)
        if name and name not in COLLECTORS and name not in CHEAP:
            return call
    return None


def _ordered_names(node: ast.AST) -> Iterator[tuple[str, str]]:
    """("load" | "store", name) of plain names, in the order they execute (roughly: a value
    before the targets it is assigned to; both branches of an `if`)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return
    if isinstance(node, ast.Assign):
        yield from _ordered_names(node.value)
        for target in node.targets:
            yield from _ordered_names(target)
        return
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        if isinstance(node.target, ast.Name) and isinstance(node, ast.AugAssign):
            yield "load", node.target.id
        if node.value is not None:
            yield from _ordered_names(node.value)
        yield from _ordered_names(node.target)
        return
    if isinstance(node, (ast.For, ast.AsyncFor)):
        yield from _ordered_names(node.iter)
        yield from _ordered_names(node.target)
        for statement in (*node.body, *node.orelse):
            yield from _ordered_names(statement)
        return
    if isinstance(node, ast.NamedExpr):
        yield from _ordered_names(node.value)
        yield "store", node.target.id
        return
    if isinstance(node, ast.Name):
        yield ("store" if isinstance(node.ctx, (ast.Store, ast.Del)) else "load"), node.id
        return
    for child in ast.iter_child_nodes(node):
        yield from _ordered_names(child)


def _loop_carried(loop: ast.For) -> set[str]:
    """Names whose value flows from one iteration into the next: read in the body before
    the body assigns them, plus whatever is computed from those."""
    loop_targets = {node.id for node in ast.walk(loop.target) if isinstance(node, ast.Name)}
    stored_anywhere = {name for child in loop.body for kind, name in _ordered_names(child) if kind == "store"}
    stored: set[str] = set()
    carried: set[str] = set()
    for child in loop.body:
        for kind, name in _ordered_names(child):
            if kind == "store":
                stored.add(name)
            elif name in stored_anywhere and name not in stored and name not in loop_targets:
                carried.add(name)
    # propagate: a name assigned from a carried value is carried too
    changed = True
    while changed:
        changed = False
        for node in ast.walk(loop):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                loads = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                if loads & carried and not names <= carried:
                    carried |= names
                    changed = True
    return carried


def _result_is_kept(call: ast.Call, statement: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether the call's result is stored or collected (not a call made for its effects)."""
    node: ast.AST = call
    while node is not statement:
        parent = parents.get(node)
        if parent is None:
            return False
        if isinstance(parent, ast.Call) and node is not parent.func and _callee_name(parent) in COLLECTORS:
            return True
        if isinstance(parent, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node is parent.value:
            return True
        if isinstance(parent, (ast.Yield, ast.YieldFrom, Comprehension)):
            return True
        node = parent
    return False


def _independent(loop: ast.For | Comprehension, call: ast.Call, statement: ast.AST,
                 parents: dict[ast.AST, ast.AST]) -> bool:
    """No dependency between iterations visible in the code around the call."""
    if _callee_name(call) in RANDOM_DRAWS:
        return False  # the generator's state runs from one call into the next
    if isinstance(loop, Comprehension):
        per_item = [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
        if not any(call is node for part in per_item for node in ast.walk(part)):
            return False  # the call makes the items, it is not made per item
        return not any(isinstance(node, ast.NamedExpr) for node in ast.walk(loop))
    if isinstance(loop.iter, ast.Name):
        for node in ast.walk(loop):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == loop.iter.id
                    and node.func.attr in COLLECTORS):
                return False  # a work list that grows with what the iterations find
    for node in ast.walk(loop):
        if node is loop:
            continue
        if isinstance(node, (ast.Break, ast.Return)) and not any(
                isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                for parent in _parents_until(node, loop, parents)):
            return False  # the loop stops on what an iteration found
        if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom)):
            return False
    if not _result_is_kept(call, statement, parents):
        return False
    carried = _loop_carried(loop)
    used = {node.id for node in ast.walk(call) if isinstance(node, ast.Name)}
    return not used & carried


def _parents_until(node: ast.AST, stop: ast.AST, parents: dict[ast.AST, ast.AST]) -> Iterator[ast.AST]:
    current = parents.get(node)
    while current is not None and current is not stop:
        yield current
        current = parents.get(current)


def _known_items(loop: ast.For | Comprehension) -> int | None:
    """The number of iterations when the code spells it out (``range(8)``, a literal list)."""
    iterable = loop.iter if isinstance(loop, ast.For) else loop.generators[0].iter
    if isinstance(iterable, (ast.List, ast.Tuple, ast.Set)) and not any(
            isinstance(e, ast.Starred) for e in iterable.elts):
        return len(iterable.elts)
    if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range":
        bounds = [arg.value for arg in iterable.args if isinstance(arg, ast.Constant) and isinstance(arg.value, int)]
        if bounds and len(bounds) == len(iterable.args) and not iterable.keywords:
            return len(range(*bounds))
    return None


def pool_fix(loop: ast.For | Comprehension, call: ast.Call, processes: int, cores: int,
             chunksize: int | None = None) -> str:
    """`with multiprocessing.Pool(...) as pool: results = pool.map(work, items)` for this loop."""
    if isinstance(loop, ast.For):
        target, iterable = loop.target, loop.iter
    else:
        target, iterable = loop.generators[0].target, loop.generators[0].iter
    work = ast.unparse(call.func)
    items = ast.unparse(iterable)
    names = ", ".join(ast.unparse(elt) for elt in target.elts) if isinstance(target, ast.Tuple) else ast.unparse(target)
    args = call.args
    comment = ""
    if call.keywords or any(isinstance(arg, ast.Starred) for arg in args):
        method, arguments = "starmap", f"[({', '.join(ast.unparse(a) for a in args)},) for {names} in {items}]"
        comment = f"  # keyword arguments: functools.partial({work}, ...)"
    elif len(args) == 1 and ast.dump(args[0]) == ast.dump(target).replace("Store()", "Load()"):
        method, arguments = "map", items
    elif (isinstance(target, ast.Tuple) and len(args) == len(target.elts)
          and all(isinstance(a, ast.Name) and isinstance(t, ast.Name) and a.id == t.id
                  for a, t in zip(args, target.elts, strict=True))):
        method, arguments = "starmap", items
    elif len(args) == 1:
        method, arguments = "map", f"[{ast.unparse(args[0])} for {names} in {items}]"
    else:
        method, arguments = "starmap", f"[({', '.join(ast.unparse(a) for a in args)}) for {names} in {items}]"
    batch = f", chunksize={chunksize}" if chunksize else ""
    return (f"with multiprocessing.Pool(processes={processes}) as pool:  "
            f"# round(1.5 * os.cpu_count()), {cores} cores here\n"
            f"    results = pool.{method}({work}, {arguments}{batch}){comment}")


class ParallelizableCpuRule(Rule):
    """
    ## What it does
    Finds a plain thread (not an event loop) that spends most of its time on the CPU, most
    of it under one line of a `for` loop (or comprehension) that calls a function per
    item, where the code shows no dependency between iterations: the call's result is
    appended or stored, and nothing it reads is computed by an earlier iteration. The CPU
    share comes from the sampled stacks of the thread; the independence from the code.
    Time the thread spent off the CPU at a line of plain bytecode (no call to block in)
    is the machine's other processes (or the GIL) keeping it from running, and does not
    count against its CPU share.

    ## Why is this bad?
    A Python thread runs on one core at a time (the GIL), so the items are processed one
    after the other while the machine's other cores sit idle. Independent items can be
    processed by a pool of worker processes, each with its own interpreter: on N cores the
    loop's CPU time shrinks towards 1/N (the estimate is the loop's CPU time x
    (1 - 1/min(items, cores))). Items of less than ~20 µs of work each are not worth
    shipping to another process (pickling costs about that much; see `call-overhead`), so
    the rule stays silent when the counted calls show such items, and suggests a
    `chunksize` for items under 10 ms; it also stays silent under 0.2 s of loop CPU,
    where starting the pool costs a good part of the gain. Threads do not help pure-Python CPU work; asyncio does not
    either (CPU work in a coroutine is `cpu-in-event-loop`'s business). For a gevent
    server, run more worker processes (`gunicorn -k gevent -w N`); Dask or Ray only when
    one machine is not enough.

    ## Example
    ```python
    results = []
    for bounds in chunks:
        results.append(chunk_stats(bounds))
    ```

    ## Use instead
    ```python
    with multiprocessing.Pool(processes=round(1.5 * os.cpu_count())) as pool:
        results = pool.map(chunk_stats, chunks)
    ```
    (the worker function must be defined at module level and its items picklable;
    keep the `if __name__ == "__main__":` guard.)
    """

    slug = "parallelizable-cpu"
    code = "ADV301"
    summary = "CPU-bound work over independent items done serially"
    family = "compute"
    default_severity = "medium"
    defaults = {"min_compute_share": 0.6, "min_line_share": 0.5, "min_run_share": 0.2, "min_item_s": 2e-5,
                "min_cpu_s": 0.2}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        cores = context.cpu_count
        if cores < 2:
            return
        gevent = bool(context.tasks("greenlet"))
        for task in context.tasks("thread"):
            advice = self._for_thread(context, task, cores, gevent)
            if advice is not None:
                yield advice

    def _for_thread(self, context: RuleContext, task: Task, cores: int, gevent: bool) -> Advice | None:
        running, descheduled, lines = thread_lines(context, task)
        # the thread's CPU must dominate its wall, not counting the time the machine's other
        # processes kept it off the CPU at plain bytecode (the OS's doing, not the thread's)
        busy_wall = task.wall_s - min(descheduled, task.breakdown.waiting_s + task.breakdown.scheduling_s)
        if running <= 0 or busy_wall <= 0:
            return None
        if task.breakdown.compute_s < context.option(self, "min_compute_share") * busy_wall:
            return None
        floor = max(context.option(self, "min_line_share") * running,
                    context.option(self, "min_run_share") * context.wall_s)
        best: Advice | None = None
        best_key: tuple[float, int] = (0.0, 0)
        for (file, line), cost in lines.items():
            if cost.cpu_s < floor or cost.cpu_s < context.option(self, "min_cpu_s") or cost.event_loop:
                continue
            found = self._candidate(context, task, file, line, cost, cores, gevent)
            if found is not None and (found.savings_s, -cost.depth) > best_key:
                best, best_key = found, (found.savings_s, -cost.depth)
        return best

    def _candidate(self, context: RuleContext, task: Task, file: str, line: int, cost: LineCpu,
                   cores: int, gevent: bool) -> Advice | None:
        parsed = parse_file(file)
        if parsed is None or isinstance(enclosing_function(file, line), ast.AsyncFunctionDef):
            return None
        loop = _loop_of(file, line)
        statement = statement_at(file, line)
        if loop is None or statement is None:
            return None
        # the CPU must be spent in the function called per item, not in the line's own bytecode
        if sum(cost.callees.values()) < 0.5 * cost.cpu_s:
            return None
        call = _work_call(statement, line, cost.callees)
        if call is None or not _independent(loop, call, statement, parsed.parents):
            return None
        items = _known_items(loop)
        work = _callee_name(call)
        how_many = f"{items} " if items is not None else ""
        if items is None:  # counted calls (standard mode) may miss the first few
            counted = [stat.calls for stat in context.report.functions
                       if stat.calls and _short(stat.function) == work and stat.file == file]
            items = counted[0] if counted else None
            how_many = f"~{items} " if items is not None else ""
        if items is not None and items < 2:
            return None
        processes = round(1.5 * cores)
        chunksize = None
        if items is not None:
            per_item = cost.cpu_s / items
            if per_item < context.option(self, "min_item_s"):
                return None  # shipping each item to a worker would cost more than its work
            if per_item < BATCH_BELOW_S:
                chunksize = max(1, items // (4 * processes))
        workers = min(items, cores) if items is not None else cores
        savings = cost.cpu_s * (1.0 - 1.0 / workers)
        fix = pool_fix(loop, call, processes, cores, chunksize)
        if gevent:
            fix += f"\n# a gevent server: run more worker processes instead, gunicorn -k gevent -w {processes}"
        share = cost.cpu_s / task.wall_s
        function = enclosing_function(file, line)
        return Advice(
            file=file, line=line, function=cost.function if function is not None else "<module>",
            message=(f"{work}() runs over {how_many}independent items one after the other in {task.name}: "
                     f"{cost.cpu_s:.2f} s of CPU under this loop ({100 * share:.0f}% of the thread's wall) "
                     f"on one of {cores} cores; a process pool would save ~{savings:.2f} s "
                     f"(loop CPU x (1 - 1/min(items, cores)))"),
            fix=fix,
            savings_s=savings,
            evidence={"units": [task.name], "loop_cpu_s": round(cost.cpu_s, 6), "items": items, "cores": cores,
                      "processes": processes, "savings": SAVINGS_FORMULA},
        )
