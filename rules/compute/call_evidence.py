"""Shared reading of the call evidence standard mode collects for hot functions.

``FunctionStat.window`` holds what a bounded window of counted calls saw; these helpers
find a function's definition in the source and where in the program it is called from,
using the sampled stacks.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from advisor.frames import is_user_file
from advisor.profile import FunctionStat, Report
from advisor.source import FunctionNode, parse_file


def definition(function: FunctionStat) -> FunctionNode | None:
    """The def of a function from its report entry (its line may be a decorator's)."""
    parsed = parse_file(function.file)
    if parsed is None:
        return None
    name = function.function.rsplit(".", 1)[-1]
    for node in ast.walk(parsed.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            if first == function.line or node.lineno == function.line:
                return node
    return None


def parameters(node: FunctionNode) -> list[str]:
    arguments = node.args
    return [arg.arg for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)] + [
        arg.arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]


def call_sites(report: Report, function: FunctionStat) -> list[tuple[str, int, float]]:
    """Program lines that call `function`, with the sampled time spent through each."""
    samples = report.samples
    weights: dict[tuple[str, int], float] = defaultdict(float)
    kinds = {task.id: task.kind for task in report.tasks}
    for stack in samples.stacks:
        if kinds.get(stack.unit) != "thread":
            continue
        frames = [samples.frames[index] for index in stack.frames]
        for position, frame in enumerate(frames[:-1]):
            if frame.function == function.function and frame.file == function.file:
                caller = frames[position + 1]
                if is_user_file(caller.file):
                    weights[(caller.file, caller.line)] += stack.on_cpu_s + stack.off_cpu_s
                break
    return sorted(((file, line, seconds) for (file, line), seconds in weights.items()), key=lambda item: -item[2])
