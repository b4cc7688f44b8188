"""Route names from path templates: ``/products/{id}`` names ``/products/1`` and ``/products/2``.

A template is a path whose segments are either literal or a placeholder, ``{name}``, that
stands for any one non-empty segment. A request's route is ``METHOD template`` for the
first template its path matches, segment for segment, and ``METHOD path`` for a path that
matches none (the middlewares' default). The route strings of templates are made once per
method and handed out again, so a templated request builds no string. The WSGI
middleware's C call (``_gate.c``) matches the same patterns without a Python call; this
module is the reference it is tested against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# methods whose route strings are kept (a client may send any word as a method: past this
# many, routes of new methods are made for each request instead)
MAX_METHODS = 32

Pattern = tuple["str | None", ...]  # the path's segments as str.split("/") cuts them; None: any


def parse_template(template: str) -> Pattern:
    """The segments of ``template``; ValueError, saying why, for one that is not a template."""
    if not isinstance(template, str) or not template.startswith("/"):
        raise ValueError(f"a route template is a path starting with '/': {template!r}")
    pattern: list[str | None] = []
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment[1:-1].isidentifier():
            pattern.append(None)
        elif "{" in segment or "}" in segment:
            raise ValueError(f"a placeholder is a whole segment, {{name}}: {segment!r} in {template!r}")
        else:
            pattern.append(segment)
    return tuple(pattern)


class PathTemplates:
    """Names a request's route by the first of ``templates`` its path matches.

    Called with a WSGI environ it gives the WSGI route; ``of_scope`` gives an ASGI scope's.
    """

    def __init__(self, templates: Iterable[str] = ()) -> None:
        if isinstance(templates, str):
            raise ValueError(f"route templates are a list of paths, not one str: [{templates!r}]")
        self.templates: tuple[str, ...] = tuple(templates)
        self.patterns: tuple[Pattern, ...] = tuple(parse_template(template) for template in self.templates)
        seen: dict[Pattern, str] = {}
        for template, pattern in zip(self.templates, self.patterns, strict=True):
            if pattern in seen:
                raise ValueError(f"route templates {seen[pattern]!r} and {template!r} match the same paths")
            seen[pattern] = template
        # method -> the route of each template for it, made at the method's first request
        self.names: dict[str, list[str]] = {}

    def match(self, path: str) -> int:
        """The index of the first template ``path`` matches, -1 for none."""
        segments = path.split("/")
        count = len(segments)
        for index, pattern in enumerate(self.patterns):
            if len(pattern) == count and all(segment if part is None else part == segment
                                             for part, segment in zip(pattern, segments, strict=True)):
                return index
        return -1

    def name(self, method: Any, path: Any) -> str:
        """``METHOD template`` for a path that matches a template, else ``METHOD path``."""
        index = self.match(path) if isinstance(path, str) else -1
        if index < 0:
            return f"{method} {path}"
        names = self.names.get(method) if isinstance(method, str) else None
        if names is None:
            made = [f"{method} {template}" for template in self.templates]
            if isinstance(method, str) and len(self.names) < MAX_METHODS:
                self.names[method] = made
            return made[index]
        return names[index]

    def __call__(self, environ: Mapping[str, Any]) -> str:
        """A WSGI request's route (the method ``GET`` and the path ``/`` where unset)."""
        return self.name(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "") or "/")

    def of_scope(self, scope: Mapping[str, Any]) -> str:
        """An ASGI request's route."""
        return self.name(scope.get("method", "GET"), scope.get("path", "") or "/")


# the middlewares' default route, METHOD path: no templates
NO_TEMPLATES = PathTemplates()
