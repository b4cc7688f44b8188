"""Deep mode's deterministic stats, corrected for yappi's own cost, into the report.

yappi adds a measured cost to every call it sees: part lands in the caller's own time,
part in the callee's. Each function's self time loses ``calls x callee cost`` and
``calls it made x caller cost``; its total time loses its own share and, through its
call edges, its callees' overhead. Units lose the cost of the calls made inside them
from their compute. What remains is what the code took without the profiler, which is
checked against bare runs in the tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from advisor.probes.deep import CallCost, DeepFunction, DeepProfile
from advisor.probes.records import UnitRecord

from .frames import display_path, is_advisor_file, module_name
from .profile import CallEdge, FunctionStat, UnitFunction

Key = tuple[str, str, int]  # file, name, first line
TOP_PER_UNIT = 10
MAX_CALLERS = 5


@dataclass
class Totals:
    ncall: int = 0
    tsub: float = 0.0
    ttot: float = 0.0
    calls_made: int = 0


def _key(module: str, name: str, lineno: int) -> Key:
    return module, name, lineno


def aggregate(functions: Iterable[DeepFunction]) -> tuple[dict[Key, Totals], dict[Key, dict[Key, int]]]:
    """Totals per function over every context, and call edges caller -> callee -> calls."""
    totals: dict[Key, Totals] = defaultdict(Totals)
    edges: dict[Key, dict[Key, int]] = defaultdict(lambda: defaultdict(int))
    for function in functions:
        key = _key(function.module, function.name, function.lineno)
        total = totals[key]
        total.ncall += function.ncall
        total.tsub += function.tsub
        total.ttot += function.ttot
        for module, name, lineno, ncall, _tsub, _ttot in function.children:
            edges[key][_key(module, name, lineno)] += ncall
            total.calls_made += ncall
    return totals, edges


def splice_out(totals: dict[Key, Totals], edges: dict[Key, dict[Key, int]],
               drop: Callable[[Key], bool]) -> None:
    """Remove functions (advisor's own wrappers) from the call graph, linking their callers
    straight to their callees, in proportion to the calls each callee got from them."""
    for middle in [key for key in totals if drop(key)]:
        outgoing = {callee: calls for callee, calls in edges.pop(middle, {}).items() if callee != middle}
        out_total = sum(outgoing.values())
        for callees in list(edges.values()):
            calls = callees.pop(middle, 0)
            if not calls or not out_total:
                continue
            for callee, share in outgoing.items():
                callees[callee] = callees.get(callee, 0) + round(calls * share / out_total)
        del totals[middle]


def corrected(totals: dict[Key, Totals], edges: dict[Key, dict[Key, int]],
              cost: CallCost) -> dict[Key, tuple[float, float]]:
    """(self, total) seconds per function without yappi's per-call cost."""
    own_overhead = {key: total.ncall * cost.callee_s + total.calls_made * cost.caller_s
                    for key, total in totals.items()}
    subtree: dict[Key, float] = {}

    def external_calls(key: Key) -> int:
        """Calls of a function from other functions (its recursive calls left out)."""
        return totals[key].ncall - edges.get(key, {}).get(key, 0)

    def overhead_under(key: Key, active: set[Key]) -> tuple[float, bool]:
        """The overhead in a function's subtree, and whether no recursion cycle was cut."""
        if key in subtree:
            return subtree[key], True
        if key in active:  # recursion: its overhead is already counted once
            return 0.0, False
        active.add(key)
        amount, complete = own_overhead.get(key, 0.0), True
        for callee, calls in edges.get(key, {}).items():
            if callee == key or callee not in totals:
                continue
            external = external_calls(callee)
            if external <= 0:
                continue
            below, whole = overhead_under(callee, active)
            amount += below * min(1.0, calls / external)
            complete = complete and whole
        active.discard(key)
        if complete:  # a value computed with a cycle cut depends on where it was cut
            subtree[key] = amount
        return amount, complete

    result = {}
    for key, total in totals.items():
        self_s = max(0.0, total.tsub - own_overhead[key])
        total_s = max(self_s, total.ttot - overhead_under(key, set())[0])
        result[key] = (self_s, total_s)
    return result


def display(key: Key) -> tuple[str, str, int]:
    file, name, line = key
    module = module_name(file)
    return (f"{module}.{name}" if module else name), display_path(file), line


def deep_functions(profile: DeepProfile, sampled: list[FunctionStat], limit: int = 200) -> list[FunctionStat]:
    """The function table from yappi: exact calls, corrected times, CPU where sampled, callers."""
    totals, edges = aggregate(profile.functions)
    splice_out(totals, edges, lambda key: is_advisor_file(key[0]))
    times = corrected(totals, edges, profile.cost)
    cpu_by_place = {(f.file, f.line): f for f in sampled}
    callers: dict[Key, list[tuple[Key, int]]] = defaultdict(list)
    for caller, callees in edges.items():
        for callee, calls in callees.items():
            callers[callee].append((caller, calls))
    ranked = sorted(totals, key=lambda key: -times[key][0])[:limit]
    table = []
    for key in ranked:
        function, file, line = display(key)
        sampled_entry = cpu_by_place.get((file, line))
        self_s, total_s = times[key]
        table.append(FunctionStat(
            function=function, file=file, line=line, calls=totals[key].ncall,
            self_s=round(self_s, 6), total_s=round(total_s, 6),
            cpu_s=sampled_entry.cpu_s if sampled_entry is not None else 0.0,
            window=sampled_entry.window if sampled_entry is not None else None,
            callers=[CallEdge(function=display(caller)[0], file=display(caller)[1], line=display(caller)[2],
                              calls=calls)
                     for caller, calls in sorted(callers[key], key=lambda item: -item[1])[:MAX_CALLERS]],
        ))
    return table


def call_cost(function: DeepFunction, cost: CallCost) -> float:
    """What yappi adds to one call of this function, by its kind (measured at start-up and at
    the end of the run): a recursive function or method, a constructor, a method, a function."""
    method = "." in function.name
    if any(child[:3] == (function.module, function.name, function.lineno) for child in function.children):
        return (cost.recursive_method_wall_s or cost.recursive_wall_s) if method else cost.recursive_wall_s
    if function.name.endswith("__init__"):
        return cost.init_wall_s or cost.wall_s
    if method:
        return cost.method_wall_s or cost.wall_s
    return cost.wall_s


def profiler_seconds(functions: Iterable[DeepFunction], cost: CallCost) -> float:
    """Wall time yappi added to these calls: its cost per call depends on the kind of call."""
    return sum(function.ncall * call_cost(function, cost) for function in functions)


def unit_functions(profile: DeepProfile, record: UnitRecord) -> tuple[list[UnitFunction], float]:
    """A unit's own deterministic stats (top functions by corrected self time), and the wall
    seconds yappi added to its calls."""
    if record.kind == "asyncio-task":
        mine = [f for tag in record.contexts or () for f in profile.by_tag.get(tag, ())]
    elif record.kind == "thread":
        contexts = [ctx for ctx, ident in profile.contexts.items() if ident == record.ident]
        mine = [f for ctx in contexts for f in profile.by_context.get(ctx, ())]
    else:
        mine = [f for ctx in record.contexts or () for f in profile.by_context.get(ctx, ())]
    totals, edges = aggregate(mine)
    splice_out(totals, edges, lambda key: is_advisor_file(key[0]))
    times = corrected(totals, edges, profile.cost)
    ranked = sorted(totals, key=lambda key: -times[key][0])[:TOP_PER_UNIT]
    entries = []
    for key in ranked:
        function, file, line = display(key)
        entries.append(UnitFunction(function=function, file=file, line=line, calls=totals[key].ncall,
                                    self_s=round(times[key][0], 6), total_s=round(times[key][1], 6)))
    # advisor's own wrappers were profiled calls too: their cost is taken out as well
    return entries, profiler_seconds(mine, profile.cost)
