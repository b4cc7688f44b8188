"""Run a callback right after a module is imported (or now, if it already is).

The greenlet probe must wrap ``gevent.spawn`` before the program calls it, but the
program imports gevent after advisor starts. A finder at the front of ``sys.meta_path``
lets the normal import machinery find the module, then wraps its loader so the callback
runs once the module is executed. It never changes what gets imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class _LoaderWrapper(importlib.abc.Loader):
    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        # the module keeps its real loader: nothing of the wrapper stays visible
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            spec.loader = self._loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        self._loader.exec_module(module)
        try:
            self._callback(module)
        except Exception:  # a probe's callback must not break the import
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class PostImportHooks(importlib.abc.MetaPathFinder):
    """Callbacks per module name, run after that module is first imported."""

    def __init__(self) -> None:
        self._callbacks: dict[str, Callable[[ModuleType], None]] = {}
        self._busy: set[str] = set()

    def when_imported(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        module = sys.modules.get(name)
        if module is not None:
            try:
                callback(module)
            except Exception:
                pass
            return
        self._callbacks[name] = callback

    def install(self) -> None:
        if self._callbacks and self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        callback = self._callbacks.get(fullname)
        if callback is None or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)  # the rest of the machinery finds it
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        del self._callbacks[fullname]
        spec.loader = _LoaderWrapper(spec.loader, callback)
        return spec
