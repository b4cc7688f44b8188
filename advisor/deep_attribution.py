"""Deep mode's deterministic stats, corrected for yappi's own cost, into the report.

yappi adds a measured cost to every call it sees, of Python and of C functions alike:
part lands in the caller's own time, part in the callee's. And on Python 3.11 every
instruction runs slower under it (by the calibrated bytecode factor). Each function's self
time loses ``calls x callee cost`` and ``calls it made x caller cost``, and what is left
is divided by the bytecode factor; its total time loses its own share and, through its
call edges, its callees'. Units lose the cost of the calls made inside them from their
compute, and the bytecode's slow-down of their functions' own time. C functions are
counted for that, then left out of the call graph and the tables, as they were before
yappi was asked for them. What remains is what the code took without the profiler,
which is checked against bare runs in the tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from advisor.probes.deep import CallCost, DeepFunction, DeepProfile
from advisor.probes.records import UnitRecord

from .call_graph import subtree_sums
from .code_shape import SHAPES
from .frames import display_path, is_advisor_file, module_name
from .profile import CallEdge, FunctionStat, UnitFunction

Key = tuple[str, str, int]  # file, name, first line
# A function with no loop takes at most its instructions times this many mean instructions
# a call (an instruction's time varies: a global look-up is not an integer add)
BOUND_MARGIN = 4.0
# Its code is looked for (its file compiled, once) only where the bound could change much:
# own time of a millisecond or more, at more a call than this many instructions could take
# (a large application's report would otherwise compile every module it ran)
SHAPE_MIN_OWN_S = 0.001
SHAPE_MIN_INSTRUCTIONS = 50
TOP_PER_UNIT = 10
MAX_CALLERS = 5


@dataclass
class Totals:
    ncall: int = 0
    tsub: float = 0.0
    ttot: float = 0.0
    calls_made: int = 0
    c_calls_made: int = 0  # of which calls of C functions
    c_methods_made: int = 0  # of which calls of C methods
    builtin: bool = False


def _key(module: str, name: str, lineno: int) -> Key:
    return module, name, lineno


def aggregate(functions: Iterable[DeepFunction]) -> tuple[dict[Key, Totals], dict[Key, dict[Key, int]]]:
    """Totals per function over every context, and call edges caller -> callee -> calls."""
    functions = list(functions)
    builtins = {_key(f.module, f.name, f.lineno) for f in functions if f.builtin}
    totals: dict[Key, Totals] = defaultdict(Totals)
    edges: dict[Key, dict[Key, int]] = defaultdict(lambda: defaultdict(int))
    for function in functions:
        key = _key(function.module, function.name, function.lineno)
        total = totals[key]
        total.ncall += function.ncall
        total.tsub += function.tsub
        total.ttot += function.ttot
        total.builtin = function.builtin
        for module, name, lineno, ncall, _tsub, _ttot in function.children:
            callee = _key(module, name, lineno)
            edges[key][callee] += ncall
            total.calls_made += ncall
            if callee in builtins:
                total.c_calls_made += ncall
                total.c_methods_made += ncall if is_c_method(name) else 0
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


def drop_c_functions(totals: dict[Key, Totals], edges: dict[Key, dict[Key, int]]) -> None:
    """Remove C functions from the call graph with their edges, once their callers' C calls
    are counted: the graph is then the one yappi shows with builtins off (Python functions
    only). Not linked through: the graph's cycles would multiply (greenlet's ``switch``
    between a hub and every greenlet's functions), and the subtree sums with them."""
    builtins = {key for key, total in totals.items() if total.builtin}
    for key in builtins:
        del totals[key]
        edges.pop(key, None)
    for callees in edges.values():
        for key in builtins & callees.keys():
            del callees[key]


def is_c_method(name: str) -> bool:
    """yappi's name of a C method: ``<method 'append' of 'list' objects>``."""
    return name.startswith("<method ")


def call_overhead(total: Totals, cost: CallCost) -> float:
    """What yappi's calls added to a function's own time (as yappi timed it)."""
    if total.builtin:
        return total.ncall * cost.builtin_callee_s
    c_functions = total.c_calls_made - total.c_methods_made
    return (total.ncall * cost.callee_s + (total.calls_made - total.c_calls_made) * cost.caller_s
            + c_functions * max(0.0, cost.builtin_wall_s - cost.builtin_callee_s)
            + total.c_methods_made * max(0.0, cost.c_method_wall_s - cost.builtin_callee_s))


def bytecode_time(key: Key, total: Totals, calls_s: float, cost: CallCost) -> float:
    """The part of a Python function's own time (`calls_s`, yappi's calls in it, taken out)
    that was its bytecode, slowed by the bytecode factor: all of it, but in a function with
    no loop, no more than its instructions can take (generously: BOUND_MARGIN times the mean
    instruction), the rest being C code it ran without a call yappi sees."""
    if total.builtin:
        return 0.0
    own = max(0.0, total.tsub - calls_s)
    per_instruction = BOUND_MARGIN * cost.instruction_s
    if per_instruction <= 0.0 or own < SHAPE_MIN_OWN_S or own <= total.ncall * SHAPE_MIN_INSTRUCTIONS * per_instruction:
        return own
    shape = SHAPES.find(*key)
    if shape is None or shape.loops:
        return own
    return min(own, total.ncall * shape.instructions * per_instruction)


def own_parts(totals: dict[Key, Totals], cost: CallCost) -> dict[Key, tuple[float, float]]:
    """Per function, the two parts of its own time that were yappi's doing: what its calls
    added, and its bytecode time (which ran slower by the bytecode factor)."""
    parts = {}
    for key, total in totals.items():
        calls_s = call_overhead(total, cost)
        parts[key] = (calls_s, bytecode_time(key, total, calls_s, cost))
    return parts


def bytecode_seconds(parts: dict[Key, tuple[float, float]]) -> float:
    """The functions' bytecode time, from their own_parts: what ran slower by the factor."""
    return sum(bytecode_s for _calls_s, bytecode_s in parts.values())


def slowdown_share(factor: float) -> float:
    """The share of a bytecode time under yappi that is yappi's, for a bytecode factor."""
    return 1.0 - 1.0 / factor if factor > 1.0 else 0.0


def corrected(totals: dict[Key, Totals], edges: dict[Key, dict[Key, int]], cost: CallCost,
              parts: dict[Key, tuple[float, float]] | None = None) -> dict[Key, tuple[float, float]]:
    """(self, total) seconds per function without yappi's per-call cost and its slow-down
    of bytecode (`parts`: the functions' own_parts, where the caller has them already)."""
    share = slowdown_share(cost.bytecode_factor)
    parts = own_parts(totals, cost) if parts is None else parts
    own_overhead = {key: calls_s + bytecode_s * share for key, (calls_s, bytecode_s) in parts.items()}
    # the part of its C calls' cost yappi timed inside them: in the caller's total time only
    in_c_calls = {key: total.c_calls_made * cost.builtin_callee_s for key, total in totals.items()}
    under = subtree_sums({key: own_overhead[key] + in_c_calls[key] for key in totals},
                         {key: total.ncall for key, total in totals.items()},
                         {key: total.ttot for key, total in totals.items()}, edges)

    result = {}
    for key, total in totals.items():
        self_s = max(0.0, total.tsub - own_overhead[key])
        total_s = max(self_s, total.ttot - under[key])
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
    drop_c_functions(totals, edges)
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
    the end of the run): a C function, a recursive function or method, a constructor, a
    method, a function."""
    if function.builtin and is_c_method(function.name):
        return cost.c_method_wall_s
    if function.builtin:
        return cost.builtin_wall_s
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


@dataclass
class UnitCost:
    """What yappi added to one unit: the wall seconds of its calls, and the own time of its
    Python functions (those calls taken out), which ran slower by `factor`."""

    calls_s: float = 0.0
    bytecode_s: float = 0.0
    factor: float = 1.0

    def taken_out(self, compute_s: float) -> float:
        """The seconds of a unit's measured compute that were yappi's: its calls, and the
        slow-down of the bytecode left (never more than the compute left by the calls)."""
        left = max(0.0, compute_s - self.calls_s)
        return self.calls_s + min(self.bytecode_s, left) * slowdown_share(self.factor)


def unit_functions(profile: DeepProfile, record: UnitRecord) -> tuple[list[UnitFunction], UnitCost]:
    """A unit's own deterministic stats (top functions by corrected self time), and what
    yappi added to it."""
    if record.kind == "asyncio-task":
        mine = [f for tag in record.contexts or () for f in profile.by_tag.get(tag, ())]
    elif record.kind == "thread":
        contexts = [ctx for ctx, ident in profile.contexts.items() if ident == record.ident]
        mine = [f for ctx in contexts for f in profile.by_context.get(ctx, ())]
    else:
        mine = [f for ctx in record.contexts or () for f in profile.by_context.get(ctx, ())]
    totals, edges = aggregate(mine)
    splice_out(totals, edges, lambda key: is_advisor_file(key[0]))
    drop_c_functions(totals, edges)
    parts = own_parts(totals, profile.cost)
    times = corrected(totals, edges, profile.cost, parts)
    ranked = sorted(totals, key=lambda key: -times[key][0])[:TOP_PER_UNIT]
    entries = []
    for key in ranked:
        function, file, line = display(key)
        entries.append(UnitFunction(function=function, file=file, line=line, calls=totals[key].ncall,
                                    self_s=round(times[key][0], 6), total_s=round(times[key][1], 6)))
    # advisor's own wrappers were profiled calls too: their cost is taken out as well
    return entries, UnitCost(profiler_seconds(mine, profile.cost), bytecode_seconds(parts),
                             profile.cost.bytecode_factor)
