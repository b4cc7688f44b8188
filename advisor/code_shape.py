"""The shape of a profiled function's code: how many instructions it has, and whether it
loops. Deep mode divides a function's own time by the bytecode factor (how much slower
bytecode runs under yappi), but a function's own time also holds what it spent in C code
that yappi does not see as a call (a C object called, such as json's encoder and scanner;
a type; an operator on a large container), and C code does not run slower. A function with
no loop cannot run more of its own instructions per call than it has, so only the time its
instructions can take is slowed bytecode; the rest is C, left as it is. The code is found
by compiling the function's source file, as yappi names functions by file, qualified name
and first line.
"""

from __future__ import annotations

import dis
import os
from dataclasses import dataclass
from types import CodeType

MAX_FILE_BYTES = 2_000_000  # a generated module this large is not worth compiling for this


@dataclass(frozen=True)
class CodeShape:
    instructions: int
    loops: bool  # a `for` or `while` loop


def shape_of(code: CodeType) -> CodeShape:
    names = [instruction.opname for instruction in dis.get_instructions(code)]
    # 3.11 closes a `for` with JUMP_BACKWARD and a `while` often with a conditional
    # POP_JUMP_BACKWARD_IF_*; an await or a `yield from` loops with _NO_INTERRUPT, once a resume
    loops = any("BACKWARD" in name and not name.endswith("_NO_INTERRUPT") for name in names)
    return CodeShape(instructions=len(names), loops=loops)


def _all_code(code: CodeType) -> list[CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found.extend(_all_code(const))
    return found


class CodeShapes:
    """Shapes by (file, qualified name, first line), each version of a file compiled once."""

    def __init__(self, max_files: int = 2_000) -> None:
        self._files: dict[tuple[str, int, int], dict[tuple[str, int], CodeShape]] = {}
        self._max_files = max_files

    def _compiled(self, path: str) -> dict[tuple[str, int], CodeShape]:
        try:
            status = os.stat(path)
        except (OSError, ValueError):
            return {}  # not a file: frozen, built in, generated
        version = (path, status.st_mtime_ns, status.st_size)
        shapes = self._files.get(version)
        if shapes is None:
            shapes = {}
            try:
                if status.st_size <= MAX_FILE_BYTES:
                    with open(path, "rb") as source:
                        module = compile(source.read(), path, "exec", dont_inherit=True)
                    shapes = {(code.co_qualname, code.co_firstlineno): shape_of(code) for code in _all_code(module)}
            except (OSError, SyntaxError, ValueError, TypeError):
                pass  # unreadable, or not Python: no shape
            if len(self._files) >= self._max_files:
                self._files.clear()
            self._files[version] = shapes
        return shapes

    def find(self, path: str, name: str, line: int) -> CodeShape | None:
        """The code of `name` (yappi's name: a qualified name without ``<locals>``) defined at
        `line` of `path`, if it is there."""
        shapes = self._compiled(path)
        shape = shapes.get((name, line))
        if shape is not None:
            return shape
        short = name.rsplit(".", 1)[-1]
        matches = [found for (qualname, first), found in shapes.items()
                   if first == line and qualname.rsplit(".", 1)[-1] == short]
        return matches[0] if len(matches) == 1 else None


SHAPES = CodeShapes()  # shared by every report a process builds (a server's captures)
