"""excess-logging: a logging call with an f-string message gets lazy %-style arguments.

``log.debug(f"order {order_id} took {elapsed:.2f} s")`` becomes
``log.debug("order %s took %.2f s", order_id, elapsed)``: logging formats the message only
for a record it keeps. Placeholders are rewritten when %-style says the same thing: ``{x}``,
``{x!s}``, ``{x!r}``, ``{x!a}`` and numeric specs such as ``.2f``, ``05d`` or ``x`` (for the
numbers they are meant for); anything else (``{x=}``, alignment, nested specs, a
concatenated string) is refused. When a placeholder calls something more than a cheap
builtin, that call would still run for a dropped record, so the statement is also guarded
with ``if log.isEnabledFor(logging.LEVEL):`` — which skips computing the arguments when the
level is off, as the finding advises (a call made only to describe a record should have no
effect the program needs).
"""

from __future__ import annotations

import re

import libcst as cst

from advisor.profile import Finding

from .base import Edit, Refusal, SourceTree, contains

LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
          "exception": "ERROR", "critical": "CRITICAL", "fatal": "CRITICAL", "log": ""}
# calls cheap enough to leave unguarded in the arguments of a lazy call
CHEAP_CALLS = {"len", "id", "type", "bool", "int", "float", "round", "abs", "min", "max", "repr", "str", "format"}
# numeric format specs that %-style writes the same way (for the numbers they apply to)
_NUMERIC_SPEC = re.compile(r"[-+ ]?0?\d*(?:\.\d+)?[dfFeEgGxXo]")
_CONVERSIONS = {None: "%s", "s": "%s", "r": "%r", "a": "%a"}


def _placeholder(part: cst.FormattedStringExpression) -> str | None:
    """The %-style placeholder of an f-string field, or None when %-style cannot say it."""
    if part.equal is not None:
        return None
    if part.format_spec is None or not part.format_spec:
        return _CONVERSIONS.get(part.conversion)
    if part.conversion is not None or len(part.format_spec) != 1:
        return None
    spec = part.format_spec[0]
    if isinstance(spec, cst.FormattedStringText) and _NUMERIC_SPEC.fullmatch(spec.value):
        return "%" + spec.value
    return None


def _template(message: cst.FormattedString) -> tuple[cst.SimpleString, list[cst.BaseExpression]] | str:
    """The f-string as a %-style template and its arguments, or why it cannot be."""
    prefix = message.prefix.replace("f", "").replace("F", "")
    if "r" in prefix.lower():
        return "a raw f-string"
    pieces: list[str] = []
    arguments: list[cst.BaseExpression] = []
    for part in message.parts:
        if isinstance(part, cst.FormattedStringText):
            # the source text of the literal part: its escapes stay valid in a plain string
            pieces.append(part.value.replace("{{", "{").replace("}}", "}").replace("%", "%%"))
            continue
        assert isinstance(part, cst.FormattedStringExpression)
        placeholder = _placeholder(part)
        if placeholder is None:
            return f"the field {{{cst.Module([]).code_for_node(part.expression)}...}} has a format %-style cannot say"
        expression = part.expression
        if isinstance(expression, cst.Tuple) and not expression.lpar:
            return "a field holds a bare tuple"
        pieces.append(placeholder)
        arguments.append(expression)
    if not arguments:
        return "the f-string has no fields"
    return cst.SimpleString(prefix + message.start[len(message.prefix):] + "".join(pieces) + message.end), arguments


def _expensive(node: cst.CSTNode) -> bool:
    """Whether computing the expression calls anything but a cheap builtin."""
    found = False

    class Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            if not (isinstance(call.func, cst.Name) and call.func.value in CHEAP_CALLS):
                found = True

    node.visit(Calls())
    return found


def _simple(node: cst.BaseExpression) -> bool:
    """A name or dotted name: evaluating it twice (guard and call) does nothing more."""
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


class ExcessLoggingFixer:
    slug = "excess-logging"

    def plan(self, tree: SourceTree, finding: Finding) -> Edit | Refusal:
        calls = [node for node in tree.on_line(finding.location.line, cst.Call) if isinstance(node, cst.Call)
                 and isinstance(node.func, cst.Attribute) and node.func.attr.value in LEVELS
                 and any(contains(arg.value, cst.FormattedString) for arg in node.args)]
        if len(calls) != 1:
            return Refusal(finding, "no single logging call with an f-string message on this line" if not calls
                           else "several logging calls with f-strings on this line")
        call = calls[0]
        assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
        method = call.func.attr.value
        at = 1 if method == "log" else 0
        positional = [arg for arg in call.args if arg.keyword is None]
        if any(arg.star for arg in call.args) or len(positional) != at + 1:
            return Refusal(finding, "the call passes arguments besides its message: they would be formatted "
                                    "into the f-string's text")
        message = positional[at].value
        if not isinstance(message, cst.FormattedString):
            return Refusal(finding, "the message is not a plain f-string")
        converted = _template(message)
        if isinstance(converted, str):
            return Refusal(finding, f"{converted}: the message is left as it is")
        template, arguments = converted
        message_index = call.args.index(positional[at])
        new_args = list(call.args[:message_index])
        new_args.append(positional[at].with_changes(value=template, comma=cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))))
        for index, argument in enumerate(arguments):
            last = index == len(arguments) - 1 and message_index == len(call.args) - 1
            new_args.append(cst.Arg(argument, comma=positional[at].comma if last else cst.Comma(
                whitespace_after=cst.SimpleWhitespace(" "))))
        new_args.extend(call.args[message_index + 1:])
        lazy = call.with_changes(args=new_args)
        summary = f"{tree.code(message)} -> lazy %-style arguments"
        guard = self._guard(tree, call, lazy, method, arguments)
        if not isinstance(guard, tuple):
            return Edit(finding, {call: lazy}, summary=summary, note=guard or "")
        line, guarded = guard
        return Edit(finding, {line: guarded}, summary=summary + f", under `if {tree.code(guarded.test)}:`",
                    imports=("logging",))

    @staticmethod
    def _guard(tree: SourceTree, call: cst.Call, lazy: cst.Call, method: str,
               arguments: list[cst.BaseExpression]) -> tuple[cst.SimpleStatementLine, cst.If] | str | None:
        """The statement wrapped in an isEnabledFor check, when the arguments call something that
        would still run for a dropped record; None when they do not, why not when it cannot be."""
        if not any(_expensive(argument) for argument in arguments):
            return None
        assert isinstance(call.func, cst.Attribute)
        keep = "the arguments still call something when the level is off"
        statement, line = tree.parents.get(call), None
        if isinstance(statement, cst.Expr):
            line = tree.parents.get(statement)
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return f"{keep}: the call is not a statement of its own, so it is not guarded"
        receiver = call.func.value
        if tree.names(receiver) & {"logging"} or (isinstance(receiver, cst.Name) and receiver.value == "logging"):
            return f"{keep}: a module-level logging call (it may configure the root logger) is not guarded"
        if not _simple(receiver):
            return f"{keep}: the logger is an expression, so it is not guarded"
        if method == "log":
            level: cst.BaseExpression = call.args[0].value
            if not (_simple(level) or isinstance(level, cst.Integer)) or contains(level, cst.Call):
                return f"{keep}: the level is an expression, so it is not guarded"
        else:
            if not tree.binds_module(call, "logging"):
                return f"{keep}: the name logging means something else here"
            level = cst.Attribute(cst.Name("logging"), cst.Name(LEVELS[method]))
        test = cst.Call(cst.Attribute(receiver, cst.Name("isEnabledFor")), [cst.Arg(level)])
        inner = line.with_changes(body=[line.body[0].with_changes(value=lazy)], leading_lines=[])
        guarded = cst.If(test=test, body=cst.IndentedBlock([inner]), leading_lines=line.leading_lines)
        return line, guarded
