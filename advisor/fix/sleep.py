"""blocking-sleep: ``time.sleep(x)`` directly inside an ``async def`` becomes ``await asyncio.sleep(x)``.

Only there is the change mechanical: the coroutine already runs on the loop and may await.
A sleep in a plain function stays as it is even when that function runs from a coroutine
or in ``asyncio.to_thread`` — making it a coroutine changes every caller, and in a thread
the sleep blocks nobody. ``import asyncio`` is added when missing and ``import time`` is
dropped when nothing else uses it.
"""

from __future__ import annotations

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Refusal, SourceTree

SLEEPS = {"time.sleep"}


def _last_name(func: cst.BaseExpression) -> str:
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""


class BlockingSleepFixer:
    slug = "blocking-sleep"

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal:
        # the callee's last name first: resolving qualified names costs a pass over the whole file
        calls = [node for node in tree.on_line(finding.location.line, cst.Call)
                 if isinstance(node, cst.Call) and _last_name(node.func) == "sleep" and tree.names(node.func) & SLEEPS]
        if len(calls) != 1:
            return Refusal(finding, "no single time.sleep() call on this line" if not calls
                           else "several time.sleep() calls on this line")
        call = calls[0]
        assert isinstance(call, cst.Call)
        if not isinstance(tree.parents.get(call), cst.Expr):
            return Refusal(finding, "the sleep's value is used: only a sleep on its own statement is rewritten")
        function = tree.enclosing(call)
        if not isinstance(function, cst.FunctionDef):
            return Refusal(finding, "the sleep is not directly inside a function")
        if function.asynchronous is None:
            return Refusal(finding, f"the sleep is in the plain function {function.name.value}(): making it a "
                                    f"coroutine changes its callers (and in a thread it blocks no loop)")
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            return Refusal(finding, "time.sleep() is not called with exactly one plain argument")
        if not tree.binds_module(call, "asyncio"):
            return Refusal(finding, "the name asyncio means something else here")
        argument = call.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        awaited = cst.Await(expression=cst.Call(
            func=cst.Attribute(value=cst.Name("asyncio"), attr=cst.Name("sleep")), args=[argument],
            whitespace_after_func=call.whitespace_after_func, whitespace_before_args=call.whitespace_before_args),
            lpar=call.lpar, rpar=call.rpar)
        # `time.sleep` may leave `import time` unused; a bare `sleep` its `from time import sleep`
        unused: tuple[tuple[str, str | None], ...] = (("time", None),) if isinstance(call.func, cst.Attribute) \
            else (("time", "sleep"),)
        return Edit(finding, {call: awaited}, summary=f"{tree.code(call)} -> {tree.code(awaited)}",
                    imports=("asyncio",), unused=unused)
