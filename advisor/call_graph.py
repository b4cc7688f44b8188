"""Sums over a call graph's subtrees, in time linear in its size whatever its recursion.

Deep mode takes yappi's overhead out of each function's total time, so it needs, for each
function, the overhead in everything it called. Functions that call each other (a parser's
descent, an interpreter's eval and apply, a visitor) make cycles; walking them path by path
took exponential time (10 functions that all call each other: 110 s). Here the graph is
condensed into its strongly connected components (Tarjan's algorithm, without recursion),
each component's sum is computed once, in reverse topological order, and a caller gets a
callee component's sum in proportion to the calls it made of all the calls that came into
that component from outside it. A function inside a cycle gets its component's sum in
proportion to its total time against the component's longest: yappi's total time of a
recursive function covers its outermost calls, so the function that entered the cycle
covers all of it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)


def components(nodes: list[Node], edges: Mapping[Node, Mapping[Node, int]]) -> list[list[Node]]:
    """The strongly connected components of the graph on `nodes` (edges to other nodes are
    ignored), each after every component it reaches: callees before callers."""
    known = set(nodes)
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    found: list[list[Node]] = []
    work: list[tuple[Node, list[Node]]] = []  # the walk's path: each node with its callees left

    def enter(node: Node) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        work.append((node, [callee for callee in edges.get(node, {}) if callee in known]))

    for root in nodes:
        if root in index:
            continue
        enter(root)
        while work:
            node, pending = work[-1]
            if pending:
                callee = pending.pop()
                if callee not in index:
                    enter(callee)
                elif callee in on_stack:
                    low[node] = min(low[node], index[callee])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found


def subtree_sums(own: Mapping[Node, float], calls: Mapping[Node, int], total_time: Mapping[Node, float],
                 edges: Mapping[Node, Mapping[Node, int]]) -> dict[Node, float]:
    """For each node of `own`: its own amount plus its share of its callees' subtree sums.

    `calls` is each node's number of calls; a callee component's calls from outside it are
    its members' calls less those they made of each other, and a caller's share is the calls
    it made of the component over those (at most all). Sums are taken in sorted order, so the
    result does not depend on the order of the graph's dicts."""
    nodes = sorted(own, key=repr)
    found = components(nodes, edges)
    component_of = {node: number for number, members in enumerate(found) for node in members}
    under: list[float] = []  # by component: its subtree sum
    external_calls: list[int] = []  # by component: the calls that came into it from outside
    for number, members in enumerate(found):  # callees first
        members.sort(key=repr)
        member_set = set(members)
        inside = sum(calls_made for member in members for callee, calls_made in edges.get(member, {}).items()
                     if callee in member_set)
        amount = sum(own[member] for member in members)
        outgoing: dict[int, int] = {}
        for member in members:
            for callee, calls_made in edges.get(member, {}).items():
                other = component_of.get(callee)
                if other is not None and other != number:
                    outgoing[other] = outgoing.get(other, 0) + calls_made
        for other in sorted(outgoing):
            external = external_calls[other]
            if external > 0:
                amount += under[other] * min(1.0, outgoing[other] / external)
        under.append(amount)
        external_calls.append(sum(calls.get(member, 0) for member in members) - inside)
    result: dict[Node, float] = {}
    for number, members in enumerate(found):
        longest = max(total_time.get(member, 0.0) for member in members)
        for member in members:
            if len(members) == 1 or longest <= 0.0:
                result[member] = under[number]
            else:
                result[member] = under[number] * min(1.0, total_time.get(member, 0.0) / longest)
    return result

