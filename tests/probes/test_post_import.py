"""PostImportHooks on real imports of fresh modules written to a temporary directory.

The greenlet probe relies on it to wrap ``gevent.spawn`` right after the program imports
gevent: the callback must run once, after the module's code ran, or at once if the module
is already imported, and the program must get exactly the module it would have without it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import inspect
import itertools
import json
import pkgutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from advisor.probes.post_import import PostImportHooks

_serial = itertools.count()


@pytest.fixture
def hooks() -> Iterator[PostImportHooks]:
    made = PostImportHooks()
    try:
        yield made
    finally:
        made.uninstall()


@pytest.fixture
def fresh_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """``fresh_module(source)``: a never-imported module in a temp dir on sys.path; its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def make(source: str, package: bool = False) -> str:
        name = f"advisor_post_import_probe_{next(_serial)}_{id(tmp_path)}"
        if package:
            (tmp_path / name).mkdir()
            (tmp_path / name / "__init__.py").write_text(source, encoding="utf-8")
        else:
            (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
        importlib.invalidate_caches()
        names.append(name)
        return name

    yield make
    for name in names:
        for loaded in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[loaded]


MODULE = 'VALUE = 42\nDATA = "payload"\n\n\ndef hello():\n    return "hi"\n'


def test_callback_runs_after_the_module_is_imported(hooks: PostImportHooks,
                                                    fresh_module: Callable[..., str]) -> None:
    name = fresh_module(MODULE)
    seen: list[tuple[ModuleType, int]] = []
    hooks.when_imported(name, lambda module: seen.append((module, module.VALUE)))
    hooks.install()
    assert hooks in sys.meta_path and sys.meta_path[0] is hooks
    assert seen == []  # nothing is imported yet
    module = importlib.import_module(name)
    # once, with the module itself, after its code ran (VALUE is already set)
    assert seen == [(module, 42)]
    assert importlib.import_module(name) is module
    assert len(seen) == 1


def test_callback_runs_at_once_when_the_module_is_already_imported(hooks: PostImportHooks) -> None:
    seen: list[ModuleType] = []
    hooks.when_imported("json", seen.append)
    assert seen == [json]
    hooks.install()
    assert hooks not in sys.meta_path  # nothing left to wait for


def test_import_result_is_the_same_module(hooks: PostImportHooks, fresh_module: Callable[..., str]) -> None:
    name = fresh_module(MODULE)
    hooks.when_imported(name, lambda module: None)
    hooks.install()
    # the spec the path finder gives without the hook
    plain = importlib.machinery.PathFinder.find_spec(name)
    assert plain is not None and plain.origin is not None
    module = importlib.import_module(name)
    assert sys.modules[name] is module
    assert module.__name__ == name
    assert module.VALUE == 42 and module.hello() == "hi"
    assert module.__file__ == plain.origin
    assert module.__spec__.name == name
    assert module.__spec__.origin == plain.origin
    assert module.__spec__.cached == plain.cached
    assert module.__spec__.submodule_search_locations is None
    assert "VALUE = 42" in inspect.getsource(module)
    assert module.__loader__.get_filename(name) == plain.origin
    assert not module.__loader__.is_package(name)


def test_import_of_a_package_and_its_submodule(hooks: PostImportHooks, fresh_module: Callable[..., str],
                                               tmp_path: Path) -> None:
    name = fresh_module("PARENT = True\n", package=True)
    (tmp_path / name / "sub.py").write_text("CHILD = 1\n", encoding="utf-8")
    (tmp_path / name / "data.txt").write_text("resource", encoding="utf-8")
    seen: list[str] = []
    hooks.when_imported(name, lambda module: seen.append(module.__name__))
    hooks.when_imported(f"{name}.sub", lambda module: seen.append(module.__name__))
    hooks.install()
    sub = importlib.import_module(f"{name}.sub")
    package = sys.modules[name]
    assert seen == [name, f"{name}.sub"]
    assert sub.CHILD == 1 and package.PARENT is True
    assert package.__path__ == [str(tmp_path / name)]
    assert package.__spec__.submodule_search_locations == [str(tmp_path / name)]
    assert pkgutil.get_data(name, "data.txt") == b"resource"


def test_a_failing_callback_does_not_break_the_import(hooks: PostImportHooks,
                                                      fresh_module: Callable[..., str]) -> None:
    name = fresh_module(MODULE)

    def broken(module: ModuleType) -> None:
        raise RuntimeError("probe bug")

    hooks.when_imported(name, broken)
    hooks.install()
    assert importlib.import_module(name).VALUE == 42


def test_a_failing_import_raises_as_without_the_hook(hooks: PostImportHooks,
                                                     fresh_module: Callable[..., str]) -> None:
    name = fresh_module("raise ValueError('module failed')\n")
    seen: list[ModuleType] = []
    hooks.when_imported(name, seen.append)
    hooks.when_imported(f"{name}_missing", seen.append)
    hooks.install()
    with pytest.raises(ValueError, match="module failed"):
        importlib.import_module(name)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{name}_missing")
    assert seen == []
    assert name not in sys.modules


def test_other_imports_are_left_to_the_import_system(hooks: PostImportHooks,
                                                     fresh_module: Callable[..., str]) -> None:
    watched, other = fresh_module(MODULE), fresh_module(MODULE)
    hooks.when_imported(watched, lambda module: None)
    hooks.install()
    assert hooks.find_spec(other) is None
    module = importlib.import_module(other)
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader


def test_uninstall_removes_the_finder(hooks: PostImportHooks, fresh_module: Callable[..., str]) -> None:
    name = fresh_module(MODULE)
    seen: list[ModuleType] = []
    hooks.when_imported(name, seen.append)
    hooks.install()
    hooks.uninstall()
    assert hooks not in sys.meta_path
    importlib.import_module(name)
    assert seen == []


def test_the_module_keeps_the_import_systems_loader(hooks: PostImportHooks,
                                                    fresh_module: Callable[..., str]) -> None:
    name = fresh_module(MODULE)
    hooks.when_imported(name, lambda module: None)
    hooks.install()
    module = importlib.import_module(name)
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert type(module.__spec__.loader) is importlib.machinery.SourceFileLoader
