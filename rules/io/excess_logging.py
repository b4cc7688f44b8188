"""ADV202 excess-logging: logging that costs a large share of the run.

Two costs are read from the sampled stacks, per program line that makes a logging call
(the first program frame above the ``logging`` package's frames):

* the message built eagerly (an f-string, ``%`` or ``.format()``, calls in the arguments):
  time sampled under the call line but outside logging's frames. When the record is
  dropped (its level is disabled) that work is thrown away; lazy ``%s`` arguments or an
  ``isEnabledFor`` guard save all of it.
* the handler's I/O: time under the line inside logging whose leaf is a handler's
  ``emit`` / ``flush`` (the ``write`` and ``flush`` system calls of a per-record flush),
  or off the CPU under a handler (a slow stream, a socket, the handler lock). Fewer
  records (per-item details at DEBUG), a higher level, or a ``QueueHandler`` in front of
  a slow handler save it.

Record creation and formatting of enabled records is the price of the output the
program asked for and is reported as evidence only.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import string
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from advisor.frames import is_user_file
from advisor.profile import SampleFrame
from advisor.source import enclosing_function, enclosing_loop, parse_file

from ..base import Advice, Rule, RuleContext

LEVEL_METHODS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
                 "exception": "ERROR", "critical": "CRITICAL", "fatal": "CRITICAL", "log": ""}
# logging frames that only exist when a record is really created and handled
ENABLED_FRAMES = ("._log", ".makeRecord", ".handle", ".callHandlers", ".emit", ".format", ".getMessage")
# a leaf in one of these logging methods is the handler's system call (write, flush, send)
IO_METHODS = {"emit", "flush", "send", "makeSocket", "createSocket", "_open", "doRollover", "shouldRollover",
              "acquire", "handleError"}
HANDLER_FRAMES = (".callHandlers", "Handler.")
# calls cheap enough to leave in the arguments of a lazy call
CHEAP_CALLS = {"len", "id", "type", "bool", "int", "float", "round", "abs", "min", "max", "repr", "str", "format"}
_LOGGING_DIR = os.path.dirname(os.path.abspath(logging.__file__)) + os.sep
_PRINTF_SPEC = re.compile(r"[-+ 0#]?\d*(?:\.\d+)?[diouxXeEfFgGcrs]?")
_LOGGERISH = re.compile(r"log", re.IGNORECASE)


def is_logging_frame(frame: SampleFrame) -> bool:
    """A frame of the standard ``logging`` package (``logging/__init__.py``, ``handlers``, ``config``)."""
    if is_user_file(frame.file):
        return False
    if os.path.abspath(frame.file).startswith(_LOGGING_DIR):
        return True
    return frame.function == "logging" or frame.function.startswith("logging.")


@dataclass
class CallCost:
    """What the samples saw under one logging-call line."""

    eager_s: float = 0.0  # outside logging: building the message and its arguments
    record_s: float = 0.0  # inside logging, not handler I/O: the record, filters, formatting
    io_s: float = 0.0  # the handler's I/O
    enabled: bool = False  # a record was really created and handled
    handlers: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    units: set[str] = field(default_factory=set)

    @property
    def logging_s(self) -> float:
        return self.record_s + self.io_s

    @property
    def total_s(self) -> float:
        return self.eager_s + self.record_s + self.io_s


def logging_call_costs(context: RuleContext) -> dict[tuple[str, int], CallCost]:
    """Per (file, line) of the program that calls into logging: the sampled costs of the call."""
    samples = context.report.samples
    kinds = {task.id: task.kind for task in context.report.tasks}
    user = [is_user_file(frame.file) for frame in samples.frames]
    in_logging = [is_logging_frame(frame) for frame in samples.frames]
    costs: dict[tuple[str, int], CallCost] = defaultdict(CallCost)
    for stack in samples.stacks:
        if kinds.get(stack.unit) != "thread" or stack.state == "idle" or not stack.frames:
            continue
        weight = stack.on_cpu_s + (stack.off_cpu_s if stack.state != "running" else 0.0)
        frames = stack.frames
        # from the root down: the outermost logging frame with a program frame just above it
        entry = next((position for position in range(len(frames) - 2, -1, -1)
                      if in_logging[frames[position]] and user[frames[position + 1]]), None)
        if entry is not None:
            caller = samples.frames[frames[entry + 1]]
            cost = costs[(caller.file, caller.line)]
            cost.units.add(stack.unit)
            inside = [samples.frames[index] for index in frames[: entry + 1]]
            names = [frame.function for frame in inside]
            if any(name.endswith(ENABLED_FRAMES) for name in names):
                cost.enabled = True
            # the handler's class: the outermost emit (a FileHandler's, not the StreamHandler's it calls)
            handler = next((name.rsplit(".", 2)[-2] for name in reversed(names)
                            if name.endswith(".emit") and name.count(".") >= 2), "")
            leaf = samples.frames[frames[0]]
            leaf_io = in_logging[frames[0]] and leaf.function.rsplit(".", 1)[-1] in IO_METHODS
            off_in_handler = stack.state in ("io", "waiting") and any(
                any(marker in name for marker in HANDLER_FRAMES) for name in names)
            if leaf_io or off_in_handler:
                cost.io_s += weight
                if handler:
                    cost.handlers[handler] += weight
            else:
                cost.record_s += weight
            continue
        # no logging frame: every program line on the stack may be evaluating a logging call's arguments
        seen: set[tuple[str, int]] = set()
        for index in frames:
            if not user[index]:
                continue
            frame = samples.frames[index]
            key = (frame.file, frame.line)
            if key not in seen:
                seen.add(key)
                costs_at = costs.get(key)
                if costs_at is None:
                    costs_at = costs[key] = CallCost()
                costs_at.eager_s += weight
                costs_at.units.add(stack.unit)
    return costs


def _level_calls(file: str) -> list[ast.Call]:
    """The file's ``<x>.debug/info/.../log(...)`` calls with a message, innermost (shortest) first."""
    parsed = parse_file(file)
    if parsed is None:
        return []
    cached = _LEVEL_CALLS.get(file)
    if cached is not None and cached[0] is parsed.tree:
        return cached[1]
    found = [node for node in ast.walk(parsed.tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in LEVEL_METHODS and len(node.args) >= (2 if node.func.attr == "log" else 1)]
    found.sort(key=lambda node: (node.end_lineno or node.lineno) - node.lineno)
    _LEVEL_CALLS[file] = (parsed.tree, found)
    return found


# file -> (the parsed tree the list was made from, its logging calls)
_LEVEL_CALLS: dict[str, tuple[ast.Module, list[ast.Call]]] = {}


def logging_call(file: str, line: int, seen_logging: bool) -> ast.Call | None:
    """The ``<logger>.debug/info/.../log(...)`` call that spans `line`, if there is one."""
    for call in _level_calls(file):
        if not call.lineno <= line <= (call.end_lineno or call.lineno):
            continue
        assert isinstance(call.func, ast.Attribute)
        if seen_logging or _LOGGERISH.search(ast.unparse(call.func.value)):
            return call
    return None


def message_and_args(call: ast.Call) -> tuple[ast.expr, list[ast.expr]]:
    skip = 2 if isinstance(call.func, ast.Attribute) and call.func.attr == "log" else 1
    return call.args[skip - 1], list(call.args[skip:])


def is_expensive_call(node: ast.AST) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            name = child.func.id if isinstance(child.func, ast.Name) else ""
            if name not in CHEAP_CALLS:
                return True
    return False


def eager_kind(call: ast.Call) -> str | None:
    """How the call builds its message before logging decides to keep it, or None when lazy and cheap."""
    message, args = message_and_args(call)
    if isinstance(message, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in message.values):
        return "an f-string"
    if isinstance(message, ast.BinOp) and isinstance(message.op, ast.Mod):
        return "%-formatting"
    if isinstance(message, ast.BinOp) and isinstance(message.op, ast.Add):
        return "string concatenation"
    if isinstance(message, ast.Call) and isinstance(message.func, ast.Attribute) and message.func.attr == "format":
        return "str.format()"
    if any(is_expensive_call(node) for node in (message, *args)):
        return "calls in its arguments"
    return None


def _percent(text: str) -> str:
    return text.replace("%", "%%")


def _printf(spec: str, conversion: str | None) -> str:
    if conversion == "r":
        return "%r"
    if spec and _PRINTF_SPEC.fullmatch(spec) and spec[-1:] not in ("", "s"):
        return "%" + spec
    return "%s" if not spec else ""


def _from_format(text: str, call: ast.Call) -> tuple[str, list[ast.expr]] | None:
    """``"a {} b {name:.2f}".format(x, name=y)`` as ``("a %s b %.2f", [x, y])``, or None."""
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(k.arg is None for k in call.keywords):
        return None
    keywords = {k.arg: k.value for k in call.keywords}
    parts: list[str] = []
    lazy: list[ast.expr] = []
    automatic = 0
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return None
    for literal, name, spec, conversion in fields:
        parts.append(_percent(literal))
        if name is None:
            continue
        if any(mark in name for mark in ".[") or "{" in (spec or ""):
            return None
        if name == "":
            index: int | str = automatic
            automatic += 1
        else:
            index = int(name) if name.isdigit() else name
        value = call.args[index] if isinstance(index, int) and index < len(call.args) else \
            keywords.get(index) if isinstance(index, str) else None
        if value is None:
            return None
        placeholder = _printf(spec or "", conversion)
        if not placeholder:
            return None
        parts.append(placeholder)
        lazy.append(value)
    return "".join(parts), lazy


def lazy_call(call: ast.Call) -> tuple[str, list[ast.expr]]:
    """The call rewritten with lazy %-style arguments, and the arguments it passes."""
    message, args = message_and_args(call)
    template: str | None = None
    lazy: list[ast.expr] = []
    if isinstance(message, ast.JoinedStr):
        parts = []
        for value in message.values:
            if isinstance(value, ast.Constant):
                parts.append(_percent(str(value.value)))
                continue
            assert isinstance(value, ast.FormattedValue)
            spec = ""
            if value.format_spec is not None:
                spec_values = getattr(value.format_spec, "values", [])
                spec = "".join(str(v.value) for v in spec_values if isinstance(v, ast.Constant))
                if len(spec_values) != sum(isinstance(v, ast.Constant) for v in spec_values):
                    spec = "?"
            if value.conversion == ord("r"):
                parts.append("%r")
            elif spec and _PRINTF_SPEC.fullmatch(spec) and spec[-1:] not in ("", "s"):
                parts.append("%" + spec)
            elif spec:
                parts.append("%s")
                lazy.append(ast.Call(ast.Name("format"), [value.value, ast.Constant(spec)], []))
                continue
            else:
                parts.append("%s")
            lazy.append(value.value)
        template = "".join(parts)
    elif (isinstance(message, ast.BinOp) and isinstance(message.op, ast.Mod)
          and isinstance(message.left, ast.Constant) and isinstance(message.left.value, str)):
        template = message.left.value
        lazy = list(message.right.elts) if isinstance(message.right, ast.Tuple) else [message.right]
    elif (isinstance(message, ast.Call) and isinstance(message.func, ast.Attribute)
          and message.func.attr == "format" and isinstance(message.func.value, ast.Constant)
          and isinstance(message.func.value.value, str)):
        converted = _from_format(message.func.value.value, message)
        if converted is not None:
            template, lazy = converted
    elif isinstance(message, ast.BinOp) and isinstance(message.op, ast.Add):
        pieces_of: list[ast.expr] = []
        node: ast.expr = message
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            pieces_of.insert(0, node.right)
            node = node.left
        pieces_of.insert(0, node)
        if any(isinstance(piece, ast.Constant) and isinstance(piece.value, str) for piece in pieces_of):
            template = "".join(_percent(piece.value) if isinstance(piece, ast.Constant) and
                               isinstance(piece.value, str) else "%s" for piece in pieces_of)
            lazy = [piece for piece in pieces_of if not (isinstance(piece, ast.Constant)
                                                         and isinstance(piece.value, str))]
    if template is None:
        return ast.unparse(call), args
    func = ast.unparse(call.func)
    level = [ast.unparse(call.args[0])] if isinstance(call.func, ast.Attribute) and call.func.attr == "log" else []
    pieces = [*level, repr(template), *(ast.unparse(node) for node in [*lazy, *args])]
    keywords = [ast.unparse(keyword) for keyword in call.keywords]
    return f"{func}({', '.join(pieces + keywords)})", [*lazy, *args]


def guard_level(call: ast.Call) -> str:
    assert isinstance(call.func, ast.Attribute)
    if call.func.attr == "log":
        return ast.unparse(call.args[0])
    return f"logging.{LEVEL_METHODS[call.func.attr]}"


def handler_site(files: set[str], handler_class: str) -> tuple[str, int] | None:
    """The line that creates the handler doing the I/O (``logging.FileHandler(...)``, ``basicConfig``)."""
    found: list[tuple[bool, str, int]] = []
    for file in sorted(files):
        parsed = parse_file(file)
        if parsed is None:
            continue
        for node in ast.walk(parsed.tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else \
                node.func.id if isinstance(node.func, ast.Name) else ""
            if name.endswith("Handler") and name[:1].isupper() and name not in ("QueueHandler", "NullHandler"):
                found.append((name == handler_class, file, node.lineno))
            elif name == "basicConfig" and any(k.arg in ("filename", "stream", "handlers") for k in node.keywords):
                found.append((handler_class in ("FileHandler", "StreamHandler"), file, node.lineno))
    matching = [(file, line) for exact, file, line in found if exact]
    if len(matching) == 1:
        return matching[0]
    if len(found) == 1:
        return found[0][1], found[0][2]
    return None


class ExcessLoggingRule(Rule):
    """
    ## What it does
    Finds logging that costs a large share of the run, from the sampled stacks: messages
    built eagerly (f-strings, `%` or `.format()`, calls such as `describe(order)` in the
    arguments) for records that are then dropped because their level is disabled, and
    handlers whose per-record I/O (a `write` and a `flush` for every record) runs on the
    program's thread. The time is charged to the program line that made the logging call.

    ## Why is this bad?
    An f-string is built before `log.debug()` is even called: at INFO level every DEBUG
    message is formatted, and every function in it called, only to be thrown away. A
    `FileHandler` writes and flushes each record on the calling thread, so logging every
    item of a hot loop can cost more than the loop's own work.

    ## Example
    ```python
    for order_id, lines in orders:
        log.debug(f"order details: {describe(order_id, lines)}")
        log.info(f"order {order_id} priced: {total:.2f}")
    ```

    ## Use instead
    ```python
    for order_id, lines in orders:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("order details: %s", describe(order_id, lines))
        log.debug("order %s priced: %.2f", order_id, total)   # per item: DEBUG
    log.info("%d orders priced", len(orders))                  # one INFO summary
    ```
    For a slow handler (network, syslog, a synced disk), put a
    `logging.handlers.QueueHandler` in front of it and run the handler in a
    `QueueListener` thread.
    """

    slug = "excess-logging"
    code = "ADV202"
    summary = "logging that costs a large share: dropped records built eagerly, per-record handler I/O"
    family = "io"
    default_severity = "medium"
    defaults = {"min_share": 0.05, "min_savings_share": 0.01}

    def check(self, context: RuleContext) -> Iterator[Advice]:
        wall = context.wall_s
        if wall <= 0.0:
            return
        min_cost = context.option(self, "min_share") * wall
        min_savings = context.option(self, "min_savings_share") * wall
        io_by_call: dict[tuple[str, int], tuple[str, CallCost]] = {}
        calls: dict[tuple[str, int], ast.Call] = {}
        for (file, line), cost in sorted(logging_call_costs_cached(context).items()):
            if cost.total_s <= 0.0 or not is_user_file(file):
                continue
            call = logging_call(file, line, cost.logging_s > 0.0)
            if call is not None:
                calls.setdefault((file, call.lineno), call)
        for (file, line), call in sorted(calls.items()):
            total = self._whole_call(context, file, call)
            if total.total_s < min_cost:
                continue
            function = self._function_name(file, line)
            kind = eager_kind(call)
            if kind is not None and not total.enabled and total.eager_s >= min_savings:
                yield self._eager_advice(file, call, function, kind, total)
            elif total.enabled and total.io_s >= min_savings:
                handler = max(total.handlers, key=total.handlers.__getitem__) if total.handlers else ""
                io_by_call[(file, line)] = (handler, total)
        yield from self._handler_advice(context, io_by_call)

    @staticmethod
    def _whole_call(context: RuleContext, file: str, call: ast.Call) -> CallCost:
        """The costs of every line a (multi-line) call spans, added up."""
        costs = logging_call_costs_cached(context)
        total = CallCost()
        for line in range(call.lineno, (call.end_lineno or call.lineno) + 1):
            part = costs.get((file, line))
            if part is None:
                continue
            total.eager_s += part.eager_s
            total.record_s += part.record_s
            total.io_s += part.io_s
            total.enabled |= part.enabled
            total.units |= part.units
            for handler, seconds in part.handlers.items():
                total.handlers[handler] += seconds
        return total

    @staticmethod
    def _function_name(file: str, line: int) -> str:
        node = enclosing_function(file, line)
        return node.name if node is not None else "<module>"

    def _eager_advice(self, file: str, call: ast.Call, function: str, kind: str, cost: CallCost) -> Advice:
        written, lazy_args = lazy_call(call)
        receiver = ast.unparse(call.func.value) if isinstance(call.func, ast.Attribute) else "log"
        if receiver == "logging":  # the module's functions log to the root logger
            receiver = "logging.getLogger()"
        if written == ast.unparse(call) or any(is_expensive_call(node) for node in lazy_args):
            fix = f"if {receiver}.isEnabledFor({guard_level(call)}):\n    {written}"
        else:
            fix = written
        in_loop = enclosing_loop(file, call.lineno) is not None
        place = " in a loop" if in_loop else ""
        seen_dropped = cost.logging_s > 0.0
        dropped = "the record is dropped (its level is disabled)" if seen_dropped else \
            "no record was ever handled (its level looks disabled)"
        return Advice(
            file=file, line=call.lineno, function=function,
            message=(f"{ast.unparse(call.func)}(){place} builds its message with {kind} before logging "
                     f"checks the level: {cost.eager_s:.2f} s of formatting, but {dropped}"),
            fix=fix,
            savings_s=cost.eager_s,
            evidence={"units": sorted(cost.units), "eager_s": round(cost.eager_s, 6),
                      "logging_s": round(cost.logging_s, 6), "record_dropped": seen_dropped or None,
                      "eager": kind},
        )

    def _handler_advice(self, context: RuleContext,
                        io_by_call: dict[tuple[str, int], tuple[str, CallCost]]) -> Iterator[Advice]:
        """One finding per handler, at the line that creates it when its I/O dominates the calls' cost
        (else at the call line)."""
        if not io_by_call:
            return
        call_files = {file for file, _line in io_by_call}
        sampled_files = {frame.file for frame in context.report.samples.frames if is_user_file(frame.file)}
        grouped: dict[tuple[str, int], list[tuple[tuple[str, int], str, CallCost]]] = defaultdict(list)
        for site, (handler, cost) in io_by_call.items():
            where = None
            if cost.io_s > cost.eager_s + cost.record_s:
                where = handler_site(call_files, handler) or handler_site(sampled_files, handler)
            grouped[where or site].append((site, handler, cost))
        for (file, line), entries in sorted(grouped.items()):
            io_s = sum(cost.io_s for _site, _handler, cost in entries)
            other_s = sum(cost.record_s + cost.eager_s for _site, _handler, cost in entries)
            handler = next((name for _site, name, _cost in entries if name), "the handler")
            calls = sorted(site for site, _handler, _cost in entries)
            units = sorted({unit for _site, _handler, cost in entries for unit in cost.units})
            call_lines = ", ".join(f"{os.path.basename(f)}:{n}" for f, n in calls)
            yield Advice(
                file=file, line=line, function=self._function_name(file, line),
                message=(f"{handler} writes (and flushes) every record on the calling thread: "
                         f"{io_s:.2f} s of handler I/O for the records logged at {call_lines} "
                         f"(+{other_s:.2f} s building and formatting them)"),
                fix=("log per-item records at DEBUG (or raise the logger's level) and one INFO summary per batch; "
                     "for a slow handler, put `logging.handlers.QueueHandler(queue)` on the logger and run the "
                     "handler in a `logging.handlers.QueueListener(queue, handler)` thread"),
                savings_s=io_s,
                evidence={"units": units, "handler_io_s": round(io_s, 6), "records_s": round(other_s, 6),
                          "calls": [f"{f}:{n}" for f, n in calls], "handler": handler},
            )


def logging_call_costs_cached(context: RuleContext) -> dict[tuple[str, int], CallCost]:
    cache: dict[str, dict[tuple[str, int], CallCost]] = context.__dict__.setdefault("_logging_call_costs", {})
    if "costs" not in cache:
        cache["costs"] = logging_call_costs(context)
    return cache["costs"]
