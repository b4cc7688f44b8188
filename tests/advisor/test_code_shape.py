"""Finding a profiled function's code from yappi's name for it, and its shape."""

from __future__ import annotations

import dis
import os
from pathlib import Path

from advisor.code_shape import CodeShapes, shape_of

SOURCE = '''\
def plain(x):
    return x + 1


def looping(n):
    total = 0
    while n:
        n -= 1
    return total


class Base:
    def method(self):
        return self


async def waits(future):
    return await future


def outer():
    def inner(v):
        return [v for _ in range(3)]
    return inner
'''


def write(tmp_path: Path, text: str = SOURCE) -> str:
    path = tmp_path / "app.py"
    path.write_text(text)
    return str(path)


def test_a_function_is_found_by_file_name_and_first_line(tmp_path: Path) -> None:
    path = write(tmp_path)
    shapes = CodeShapes()
    plain = shapes.find(path, "plain", 1)
    expected = len(list(dis.get_instructions(compile(SOURCE, path, "exec").co_consts[0])))
    assert plain is not None and plain.instructions == expected and not plain.loops
    looping = shapes.find(path, "looping", 5)
    assert looping is not None and looping.loops


def test_yappi_names_methods_by_the_class_it_saw_and_nested_functions_by_their_own_name(tmp_path: Path) -> None:
    path = write(tmp_path)
    shapes = CodeShapes()
    # yappi names a method by the class of the object it was called on (a subclass's name)
    assert shapes.find(path, "Base.method", 13) == shapes.find(path, "Derived.method", 13) is not None
    inner = shapes.find(path, "inner", 22)
    assert inner is not None and not inner.loops  # its comprehension is a code of its own


def test_an_await_is_not_a_loop(tmp_path: Path) -> None:
    shape = CodeShapes().find(write(tmp_path), "waits", 17)
    assert shape is not None and not shape.loops


def test_what_cannot_be_found_has_no_shape(tmp_path: Path) -> None:
    path = write(tmp_path)
    shapes = CodeShapes()
    assert shapes.find(path, "plain", 2) is None  # another line
    assert shapes.find(path, "missing", 1) is None
    assert shapes.find(str(tmp_path / "gone.py"), "plain", 1) is None
    assert shapes.find("<frozen posixpath>", "join", 71) is None
    assert shapes.find("builtins", "len", 0) is None
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    assert shapes.find(str(broken), "f", 1) is None


def test_a_changed_file_is_compiled_again(tmp_path: Path) -> None:
    path = write(tmp_path)
    shapes = CodeShapes()
    assert shapes.find(path, "plain", 1) is not None
    Path(path).write_text("def plain(x):\n    for _ in x:\n        pass\n")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = shapes.find(path, "plain", 1)
    assert changed is not None and changed.loops


def test_the_shape_counts_instructions_without_their_caches() -> None:
    def adds(a: int, b: int) -> int:
        return a + b

    assert shape_of(adds.__code__).instructions == 5  # RESUME, LOAD_FAST, LOAD_FAST, BINARY_OP, RETURN
