"""ADV103 sequential-awaits: independent I/O awaited one call after another in a loop."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from advisor.profile import AwaitSite, CodePlace, Task
from advisor.source import FunctionNode, LoopNode, enclosing_function, names_loaded, parse_file, statement_at

from ..base import Advice, Rule, RuleContext, unit_label

Comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
LOOPS = (ast.For, ast.AsyncFor, ast.While)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
# Statements under which an await in the callee may run more or fewer times than once per call.
CONDITIONAL = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.ExceptHandler, ast.Match, ast.IfExp)
SAVINGS_FORMULA = "io_s - max(longest call, io_s / calls)  (= io_s x (1 - 1/calls) from totals)"


@dataclass
class LoopAwait:
    """What the syntax says about an await inside a loop: the loop, the awaited call, a fix."""

    loop: ast.AST
    awaited: ast.expr
    function: FunctionNode | None
    fix: str


@dataclass
class Group:
    """The await sites of one task under one loop line (a chain prefix)."""

    task: Task
    place: CodePlace
    level: int
    sites: list[AwaitSite] = field(default_factory=list)


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def _end(node: ast.AST) -> tuple[int, int]:
    """Where a binding takes effect: after its value was evaluated (which reads the old one)."""
    return getattr(node, "end_lineno", 0) or 0, getattr(node, "end_col_offset", 0) or 0


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes under `node` without entering nested functions, lambdas or classes."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, SCOPES):
            yield from _walk_scope(child)


def _has_await(node: ast.AST) -> bool:
    return isinstance(node, ast.Await) or any(isinstance(child, ast.Await) for child in _walk_scope(node))


def _stored(target: ast.AST) -> set[str]:
    """The names a target rebinds (`x`, `a, b`; not `d[k]` or `obj.attr`, which mutate)."""
    return {node.id for node in ast.walk(target) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}


def _assignments(loop: LoopNode) -> list[tuple[tuple[int, int], set[str], set[str], bool]]:
    """(position, names stored, names read by the value, value awaited) for each binding in
    the loop's body, nested statements included, nested scopes left out."""
    found = []
    nodes = [node for statement in (*loop.body, *loop.orelse) for node in (statement, *_walk_scope(statement))]
    for body_node in nodes:
        if isinstance(body_node, ast.Assign):
            names = set().union(*(_stored(target) for target in body_node.targets))
            found.append((_end(body_node), names, names_loaded(body_node.value), _has_await(body_node.value)))
        elif isinstance(body_node, (ast.AugAssign, ast.AnnAssign)) and body_node.value is not None:
            found.append((_end(body_node), _stored(body_node.target), names_loaded(body_node.value),
                          _has_await(body_node.value)))
        elif isinstance(body_node, ast.NamedExpr):
            found.append((_end(body_node), {body_node.target.id}, names_loaded(body_node.value),
                          _has_await(body_node.value)))
        elif isinstance(body_node, (ast.For, ast.AsyncFor)):
            found.append((_end(body_node.iter), _stored(body_node.target), names_loaded(body_node.iter),
                          isinstance(body_node, ast.AsyncFor) or _has_await(body_node.iter)))
        elif isinstance(body_node, (ast.With, ast.AsyncWith)):
            for item in body_node.items:
                if item.optional_vars is not None:
                    found.append((_end(item.context_expr), _stored(item.optional_vars), names_loaded(item.context_expr),
                                  isinstance(body_node, ast.AsyncWith) or _has_await(item.context_expr)))
        elif isinstance(body_node, ast.ExceptHandler) and body_node.name:
            found.append((_position(body_node), {body_node.name}, set(), False))
    return found


def _tainted(assignments: list[tuple[tuple[int, int], set[str], set[str], bool]]) -> set[str]:
    """Names whose value comes from an await in the loop, directly or through other names."""
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for _at, names, reads, awaited in assignments:
            if (awaited or reads & tainted) and not names <= tainted:
                tainted |= names
                changed = True
    return tainted


def _exits_on(loop: LoopNode, tainted: set[str], parents: dict[ast.AST, ast.AST]) -> str | None:
    """A `break` or `return` of this loop that depends on an awaited value (stop at the first
    empty page, at the first failure): the iterations cannot all be started up front."""
    for statement in loop.body:
        for node in (statement, *_walk_scope(statement)):
            if not isinstance(node, (ast.Break, ast.Return)):
                continue
            path = []
            current = parents.get(node)
            while current is not None and current is not loop:
                path.append(current)
                current = parents.get(current)
            if isinstance(node, ast.Break) and any(isinstance(step, LOOPS) for step in path):
                continue  # the break of an inner loop
            for step in path:
                if isinstance(step, (ast.If, ast.While)) and names_loaded(step.test) & tainted:
                    return f"it stops on a result (`{ast.unparse(step.test)}`)"
                if isinstance(step, ast.ExceptHandler):
                    guarded = parents.get(step)
                    if isinstance(guarded, ast.Try) and any(_has_await(s) for s in guarded.body):
                        return "it stops at the first failed call"
    return None


def loop_dependency(loop: LoopNode, awaited: ast.expr, parents: dict[ast.AST, ast.AST]) -> str | None:
    """Why the loop's awaited calls depend on each other, or None when they do not.

    The calls are dependent when what the awaited call reads (directly, or through the
    names bound earlier in the iteration that it reads) includes a value that an await of
    a *previous* iteration produced: a name bound from an await (or from such a name) that
    is read before it is bound again (a token or cursor from the previous reply). So are
    they when a `while` condition or a `break` reads an awaited value (stop at the first
    empty page), and when the call is the same at every iteration (a stream or queue read).
    Work after the await that folds the replies together (a running budget) does not make
    the calls dependent: gather them, then fold."""
    assignments = _assignments(loop)
    varying = set().union(*(names for _p, names, _r, _a in assignments)) if assignments else set()
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        varying |= _stored(loop.target)
    if not names_loaded(awaited) & varying:
        return "the awaited call is the same at every iteration (a stream, queue or cursor read)"
    tainted = _tainted(assignments)
    if isinstance(loop, ast.While) and names_loaded(loop.test) & tainted:
        return f"the loop condition `{ast.unparse(loop.test)}` reads an awaited result"
    first_bound: dict[str, tuple[int, int]] = {}
    for position, names, _reads, _awaited in sorted(assignments, key=lambda item: item[0]):
        for name in names:
            first_bound.setdefault(name, position)
    # the backward slice of the awaited call within one iteration
    pending = [(name, _position(awaited)) for name in names_loaded(awaited)]
    seen: set[tuple[str, tuple[int, int]]] = set()
    while pending:
        name, read_at = pending.pop()
        if (name, read_at) in seen:
            continue
        seen.add((name, read_at))
        if name in tainted and read_at < first_bound.get(name, (0, 0)):
            return f"`{name}` from one iteration's await is used by the next call"
        for position, names, reads, _awaited in assignments:
            if name in names and position <= read_at:
                # the binding's value was read just before it took effect
                pending.extend((read, (position[0], position[1] - 1)) for read in reads)
    return _exits_on(loop, tainted, parents)


def _awaited_on_line(path: str, line: int) -> ast.Await | None:
    parsed = parse_file(path)
    if parsed is None:
        return None
    spanning = [node for node in ast.walk(parsed.tree)
                if isinstance(node, ast.Await) and node.lineno <= line <= (node.end_lineno or node.lineno)]
    if not spanning:
        return None
    # the innermost await: the one starting last, then the shortest
    return max(spanning, key=lambda node: (node.lineno, node.col_offset, -(node.end_lineno or node.lineno)))


def _gather_fix(call: str, loop: ast.For | ast.AsyncFor, statement: ast.stmt | None, awaited: ast.Await) -> str:
    """`await asyncio.gather(...)` over the loop's items, fitted to what the loop did with each reply."""
    target, items = ast.unparse(loop.target), ast.unparse(loop.iter)
    if isinstance(loop, ast.AsyncFor):
        gathered = f"await asyncio.gather(*[{call} async for {target} in {items}])"
    else:
        gathered = f"await asyncio.gather(*({call} for {target} in {items}))"
    fix = f"results = {gathered}  # one result per item, in order"
    if isinstance(statement, ast.Expr) and statement.value is awaited:
        fix = gathered
    elif (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
          and isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr == "append"
          and statement.value.args and statement.value.args[0] is awaited):
        fix = f"{ast.unparse(statement.value.func.value)}.extend({gathered})"
    elif (isinstance(statement, ast.Assign) and statement.value is awaited and len(statement.targets) == 1
          and isinstance(statement.targets[0], ast.Subscript) and isinstance(loop, ast.For)
          and ast.unparse(statement.targets[0].slice) == target):
        fix = f"{ast.unparse(statement.targets[0].value)}.update(zip({items}, {gathered}))"
    extra = [node for node in loop.body if node is not statement]
    if extra:
        return fix + "; or move the loop body into an `async def` per item and gather those (or use asyncio.TaskGroup)"
    return fix + "; or asyncio.TaskGroup"


def loop_await(path: str, line: int) -> tuple[LoopAwait | None, str | None]:
    """The loop whose body awaits on this line, with why its iterations are dependent
    (None when they are not). (None, None) when the line awaits outside any loop."""
    parsed = parse_file(path)
    awaited = _awaited_on_line(path, line)
    if parsed is None or awaited is None:
        return None, None
    parents = parsed.parents
    function = enclosing_function(path, line)
    # an await inside a comprehension: [await fetch(x) for x in xs] runs them one by one too
    node: ast.AST | None = parents.get(awaited)
    while node is not None and not isinstance(node, ast.stmt):
        if isinstance(node, Comprehension):
            generators = " ".join(ast.unparse(generator).strip() for generator in node.generators)
            if any(isinstance(child, ast.NamedExpr) for child in ast.walk(node)):
                return None, "a walrus carries a value between iterations"
            element = node.elt if not isinstance(node, ast.DictComp) else node.value
            if not (element is awaited or _has_await(element)):
                return None, None  # the await is in the comprehension's iterable or condition
            call = ast.unparse(awaited.value)
            targets = set().union(*(_stored(generator.target) for generator in node.generators))
            if not names_loaded(awaited.value) & targets:
                return LoopAwait(node, awaited.value, function, ""), \
                    "the awaited call is the same at every iteration (a stream, queue or cursor read)"
            fix = f"await asyncio.gather(*({call} {generators}))  # instead of `{ast.unparse(node)}`"
            return LoopAwait(node, awaited.value, function, fix), None
        node = parents.get(node)
    statement = statement_at(path, line)
    loop: ast.AST | None = None
    current: ast.AST | None = awaited
    while current is not None:
        parent = parents.get(current)
        if isinstance(parent, LOOPS) and current in parent.body:
            loop = parent
            break
        if isinstance(parent, LOOPS) and current not in parent.orelse:
            return None, None  # the loop's own header: `async for`, `while await ...`
        if isinstance(parent, SCOPES):
            return None, None
        current = parent
    if not isinstance(loop, LOOPS):
        return None, None
    reason = loop_dependency(loop, awaited.value, parents)
    call = ast.unparse(awaited.value)
    if isinstance(loop, ast.While):
        fix = (f"start the calls together instead of awaiting each: `async with asyncio.TaskGroup() as tg:` "
               f"then `tg.create_task({call})` per item (or collect them and `await asyncio.gather(...)`)")
    else:
        fix = _gather_fix(call, loop, statement, awaited)
    return LoopAwait(loop, awaited.value, function, fix), reason


def runs_once_per_call(path: str, line: int) -> bool:
    """Whether the await on this line runs once each time its function is called: not under
    a loop, an `if` or an `except` of that function."""
    statement = statement_at(path, line)
    parsed = parse_file(path)
    if statement is None or parsed is None:
        return False
    current = parsed.parents.get(statement)
    while current is not None and not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if isinstance(current, CONDITIONAL):
            return False
        current = parsed.parents.get(current)
    return current is not None


class SequentialAwaitsRule(Rule):
    """
    ## What it does
    Finds a coroutine that awaits I/O in a loop, one call after the other, when the calls
    do not depend on each other: the await sites the asyncio probe recorded under a line
    inside a `for` / `async for` / `while` loop (or an `[await ... for ...]` comprehension)
    that made at least three calls and spent a real share of the run waiting for I/O,
    and whose loop body passes no awaited value from one iteration to the next (no token
    or cursor from the previous reply, no `while` condition or `break` on a result, and
    the awaited call changes with the item). Sleeps are timer waits, not I/O: a polling
    loop is never flagged.

    The estimated saving is the loop's I/O wait minus its longest call (what the calls
    would take if they all ran at once): `io_s - max(longest, io_s / calls)`, which is
    `io_s x (1 - 1/calls)` when only totals are known. Tasks folded into one entry (or
    several tasks running the same loop) are assumed to overlap as much as the run's wall
    time requires.

    ## Why is this bad?
    While a coroutine awaits one reply the event loop could already be waiting for all
    the others: N independent requests of 50 ms each take N x 50 ms in a loop and about
    50 ms together. The loop makes the program as slow as a synchronous one.

    ## Example
    ```python
    async def quote_all(skus):
        prices = {}
        for sku in skus:
            prices[sku] = await fetch_quote(sku)
        return prices
    ```

    ## Use instead
    ```python
    async def quote_all(skus):
        quotes = await asyncio.gather(*(fetch_quote(sku) for sku in skus))
        return dict(zip(skus, quotes))
    ```
    (or `asyncio.TaskGroup`; bound the concurrency with an `asyncio.Semaphore` when the
    service limits it, and keep one call at a time on a connection that cannot multiplex.)
    """

    slug = "sequential-awaits"
    code = "ADV103"
    summary = "independent awaits done one after the other in a loop"
    family = "concurrency"
    default_severity = "medium"
    defaults = {"min_calls": 3, "min_io_s": 0.02, "min_io_share": 0.05}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        facts: dict[tuple[str, int], tuple[LoopAwait | None, str | None]] = {}

        def facts_at(place: CodePlace) -> tuple[LoopAwait | None, str | None]:
            key = (place.file, place.line)
            if key not in facts:
                facts[key] = loop_await(place.file, place.line) if place.file else (None, None)
            return facts[key]

        by_line: dict[tuple[str, int], list[tuple[Group, float, int, bool]]] = defaultdict(list)
        for task in context.tasks("asyncio-task"):
            groups: dict[tuple[tuple[str, int], ...], Group] = {}
            for site in task.awaits:
                if site.io_s <= 0.0 or not site.chain:
                    continue
                # the innermost frame of the chain that awaits inside an independent loop
                for level in range(len(site.chain) - 1, -1, -1):
                    found, reason = facts_at(site.chain[level])
                    if found is not None and reason is None:
                        prefix = tuple((place.file, place.line) for place in site.chain[: level + 1])
                        group = groups.setdefault(prefix, Group(task, site.chain[level], level))
                        group.sites.append(site)
                        break
            for group in groups.values():
                calls, estimated = self._calls(group)
                io = sum(site.io_s for site in group.sites)
                if calls < context.option(self, "min_calls"):
                    continue
                # a site's longest episode is one call only where the probe counts the calls
                # (at the outermost frame); elsewhere it spans the whole loop
                outer_count = group.level == 0 and not estimated and calls == max(s.calls for s in group.sites)
                longest = max(site.longest_s for site in group.sites) if outer_count else 0.0
                savings = max(0.0, io - max(io / calls, min(longest, io)))
                by_line[(group.place.file, group.place.line)].append((group, savings, calls, estimated))
        yield from self._advise(context, by_line, facts_at)

    def _calls(self, group: Group) -> tuple[int, bool]:
        """The calls made at the loop line, and whether that number is an estimate.

        The probe counts distinct awaited objects at the chain's outermost frame only, and
        an object freed at the end of one iteration may be reallocated at the same address
        for the next (so consecutive calls can merge into one). The count is therefore
        checked against the suspensions at the awaits of the callee that run once per call
        (not under a loop, `if` or `except` there), and the larger is used. A per-level
        count in the report (``level_calls``, when the probe provides it) is used as is, and
        so is deep mode's count of calls of the awaited coroutine in the task."""
        level = group.level
        counted = 0
        exact = False
        for site in group.sites:
            per_level = getattr(site, "level_calls", None)
            if isinstance(per_level, list) and len(per_level) > level:
                counted = max(counted, int(per_level[level]))
                exact = True
            elif level == 0:
                counted = max(counted, site.calls)
        if exact:
            return counted, False
        deep = self._deep_calls(group)
        if deep is not None:
            return deep, False
        points: dict[tuple[str, int], int] = defaultdict(int)
        direct = 0
        for site in group.sites:
            if len(site.chain) > level + 1:
                inner = site.chain[level + 1]
                points[(inner.file, inner.line)] += site.suspensions
            else:
                direct += site.suspensions
        once = [count for (file, line), count in points.items() if runs_once_per_call(file, line)]
        # awaited straight into a library (or only under conditions): assume two suspensions a call
        other = [*points.values(), direct] if direct else list(points.values())
        estimate = min(once) if once else min(other, default=0) // 2
        return max(counted, estimate), estimate > counted


    @staticmethod
    def _deep_calls(group: Group) -> int | None:
        """Deep mode's count of calls of the awaited program coroutine in this task, when the
        task awaits that coroutine from this loop line only."""
        callees = {site.chain[group.level + 1].function for site in group.sites if len(site.chain) > group.level + 1}
        if len(callees) != 1 or not group.task.functions:
            return None
        callee = callees.pop()
        prefix = [(place.file, place.line) for place in group.sites[0].chain[: group.level + 1]]
        for site in group.task.awaits:
            places = [(place.file, place.line) for place in site.chain]
            for level, place in enumerate(site.chain):
                if place.function == callee and level > 0 and places[:level] != prefix:
                    return None  # also awaited from elsewhere: its count is not this loop's
        calls = [entry.calls for entry in group.task.functions if entry.function == callee]
        return calls[0] if calls else None

    def _advise(self, context: RuleContext, by_line: dict[tuple[str, int], list[tuple[Group, float, int, bool]]],
                facts_at: Callable[[CodePlace], tuple[LoopAwait | None, str | None]]) -> Iterator[Advice]:
        for (file, line), entries in by_line.items():
            found, _reason = facts_at(entries[0][0].place)
            if found is None:
                continue
            io = sum(site.io_s for group, *_ in entries for site in group.sites)
            walls = sum(group.task.wall_s for group, *_ in entries)
            # units folded together (or several tasks in the same loop) may have overlapped
            overlap = min(1.0, context.wall_s / walls) if walls > 0.0 else 1.0
            savings = sum(savings for _group, savings, _calls, _estimated in entries) * overlap
            io_run = io * overlap
            share = context.option(self, "min_io_share") * context.wall_s
            if io_run < context.option(self, "min_io_s") or io_run < share:
                continue
            calls = max(calls for _group, _savings, calls, _estimated in entries)
            estimated = all(estimated for *_, estimated in entries)
            place = entries[0][0].place
            call = ast.unparse(found.awaited)
            function = place.function.rsplit(".", 1)[-1]
            units = []
            for group, *_ in entries:
                label = unit_label(group.task)
                if label not in units:
                    units.append(label)
            many = " (bound the concurrency with an asyncio.Semaphore if the service limits it)" if calls > 50 else ""
            yield Advice(
                file=file, line=line, function=place.function,
                message=(f"{function}() awaits `{call}` {'~' if estimated else ''}{calls} times one after "
                         f"another; the calls do not depend on each other and spent {io_run:.2f} s waiting "
                         f"for I/O that could overlap{many}"),
                fix=found.fix,
                savings_s=min(savings, io_run),
                evidence={"units": units, "calls": calls, "calls_estimated": estimated,
                          "io_s": round(io_run, 6), "loop_line": getattr(found.loop, "lineno", line),
                          "savings_formula": SAVINGS_FORMULA},
            )
