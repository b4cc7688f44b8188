"""Routes named by path templates: the rules of a match, the errors of a bad template, and
_gate.c's matching (the WSGI middleware's C call) against PathTemplates', the reference, on
hypothesis' templates and paths, wide characters and very long paths included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.embed import wsgi
from advisor.embed.agent import Agent
from advisor.embed.asgi import AdvisorASGIMiddleware
from advisor.embed.asgi import default_route as asgi_default_route
from advisor.embed.templates import MAX_METHODS, PathTemplates, parse_template
from advisor.embed.wsgi import AdvisorWSGIMiddleware, default_route

TEMPLATES = ["/products/{id}", "/users/{user}/orders/{order}", "/users/me/orders/{order}", "/", "/health"]


def environ(method: Any, path: Any) -> dict[str, Any]:
    made: dict[str, Any] = {}
    if method is not None:
        made["REQUEST_METHOD"] = method
    if path is not None:
        made["PATH_INFO"] = path
    return made


@pytest.mark.parametrize(("method", "path", "route"), [
    ("GET", "/products/42", "GET /products/{id}"),
    ("POST", "/products/x-1", "POST /products/{id}"),
    ("GET", "/products/", "GET /products/"),            # a placeholder is never the empty segment
    ("GET", "/products/42/", "GET /products/42/"),      # nor two segments
    ("GET", "/products", "GET /products"),
    ("GET", "/users/7/orders/9", "GET /users/{user}/orders/{order}"),
    ("GET", "/users/me/orders/9", "GET /users/{user}/orders/{order}"),  # the first that matches
    ("GET", "/", "GET /"),
    ("GET", "", "GET /"),
    ("GET", "/health", "GET /health"),
    ("DELETE", "/unknown/path", "DELETE /unknown/path"),
    ("GET", "/prodücts/1", "GET /prodücts/1"),
])
def test_a_request_is_named_by_the_first_template_its_path_matches(method: str, path: str, route: str) -> None:
    templates = PathTemplates(TEMPLATES)
    assert templates(environ(method, path)) == route
    assert templates.of_scope({"type": "http", "method": method, "path": path}) == route


def test_the_default_route_is_method_and_path() -> None:
    expected = {("GET", "/a/b"): "GET /a/b", (None, None): "GET /", ("PUT", ""): "PUT /", (b"GET", 3): "b'GET' 3"}
    for (method, path), route in expected.items():
        assert default_route(environ(method, path)) == PathTemplates()(environ(method, path)) == route
        scope = {"type": "http", **({"method": method} if method is not None else {}),
                 **({"path": path} if path is not None else {})}
        assert asgi_default_route(scope) == route


def test_a_templates_route_is_made_once_per_method_and_methods_are_bounded() -> None:
    templates = PathTemplates(["/items/{id}"])
    first = templates(environ("GET", "/items/1"))
    assert templates(environ("GET", "/items/2")) is first
    for number in range(2 * MAX_METHODS):
        assert templates(environ(f"M{number}", "/items/1")) == f"M{number} /items/{{id}}"
    assert len(templates.names) == MAX_METHODS


@pytest.mark.parametrize(("templates", "message"), [
    (["products/{id}"], "starting with '/'"),
    (["/v{n}"], "whole segment"),
    (["/{1}"], "whole segment"),
    (["/a/{"], "whole segment"),
    (["/a/{x}", "/a/{y}"], "match the same paths"),
    ("/a/{x}", "not one str"),
])
def test_a_bad_template_is_a_value_error_that_says_why(templates: list[str] | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PathTemplates(templates)
    with pytest.raises(ValueError, match=message):
        AdvisorWSGIMiddleware(lambda environ, start: [], routes=templates, agent=Agent(deep_signal=None))


def test_templates_and_a_route_function_are_not_both_given() -> None:
    for middleware in (AdvisorWSGIMiddleware, AdvisorASGIMiddleware):
        with pytest.raises(ValueError, match="not both"):
            middleware(lambda *args: None, routes=["/a/{b}"], route=lambda request: "x")  # type: ignore[operator]


def test_the_asgi_middleware_names_a_scope_by_its_templates() -> None:
    middleware = AdvisorASGIMiddleware(lambda *args: None, routes=["/products/{id}"],  # type: ignore[arg-type]
                                       agent=Agent(on_loop=True, deep_signal=None))
    assert middleware.route_of({"type": "http", "method": "GET", "path": "/products/3"}) == "GET /products/{id}"
    assert middleware.route_of({"type": "http", "method": "GET", "path": "/other"}) == "GET /other"


# -- _gate.c's matching against PathTemplates' ---------------------------------------------

class RouteSeen(AdvisorWSGIMiddleware):
    """The middleware's C call up to its route: the agent's gate is shut (no request was
    served), so the call hands the route it named to _serve, which keeps it."""

    def _serve(self, environ: dict[str, Any], start_response: Any, route: str | None = None) -> Any:
        self.seen = route
        return []


def routed(middleware: RouteSeen, made: dict[str, Any]) -> str | None:
    middleware.seen = None
    middleware(made, lambda status, headers: None)
    return middleware.seen


needs_c_call = pytest.mark.skipif(wsgi._GatedCall is None, reason="the C call was not built")
SEGMENTS = st.sampled_from(["a", "b", "ab", "", "é", "ā", "\U0001f600", "{x}", "{y}"])
PATH_SEGMENTS = st.sampled_from(["a", "b", "ab", "", "é", "ā", "\U0001f600", "1", "/"])


@st.composite
def templates_and_paths(draw: Any) -> tuple[list[str], list[str]]:
    templates: list[str] = []
    patterns = set()
    for parts in draw(st.lists(st.lists(SEGMENTS, min_size=1, max_size=5), max_size=6)):
        template = "/" + "/".join(parts)
        pattern = parse_template(template)
        if pattern not in patterns:
            patterns.add(pattern)
            templates.append(template)
    paths = draw(st.lists(st.lists(PATH_SEGMENTS, max_size=6).map(lambda parts: "/" + "/".join(parts)),
                          min_size=1, max_size=8))
    # paths made from the templates themselves, their placeholders filled
    for template in templates[:3]:
        paths.append(template.replace("{x}", draw(PATH_SEGMENTS)).replace("{y}", draw(PATH_SEGMENTS)))
    return templates, paths


@needs_c_call
@settings(max_examples=300, deadline=None)
@given(templates_and_paths(), st.sampled_from(["GET", "POST", "ÿ", "Ā"]))
def test_the_c_call_names_routes_as_path_templates_do(case: tuple[list[str], list[str]], method: str) -> None:
    templates, paths = case
    middleware = RouteSeen(lambda environ, start: [], routes=templates, agent=AGENT)
    reference = PathTemplates(templates)
    for path in paths * 2:  # the second time, the method's routes are made: C names them all
        assert routed(middleware, environ(method, path)) == reference(environ(method, path)), (templates, path)


@needs_c_call
def test_the_c_call_hands_back_the_templates_own_route_and_names_odd_requests_in_python() -> None:
    middleware = RouteSeen(lambda environ, start: [], routes=["/items/{id}"], agent=AGENT)
    first = routed(middleware, environ("GET", "/items/1"))
    assert first == "GET /items/{id}" and routed(middleware, environ("GET", "/items/2")) is first
    assert routed(middleware, environ(None, "/items/1")) == "GET /items/{id}"
    assert routed(middleware, environ(b"GET", "/items/1")) == "b'GET' /items/{id}"
    assert routed(middleware, environ("GET", 7)) == "GET 7"
    assert routed(middleware, environ("GET", "")) == "GET /"
    assert routed(middleware, environ("GET", None)) == "GET /"
    deep = "/" + "/".join(["s"] * 70)  # longer than the C call matches
    assert routed(middleware, environ("GET", deep)) == f"GET {deep}"
    long_template = "/" + "/".join(["s"] * 69) + "/{last}"
    middleware = RouteSeen(lambda environ, start: [], routes=[long_template], agent=AGENT)
    for _ in range(2):
        assert routed(middleware, environ("GET", deep)) == f"GET {long_template}"


AGENT = Agent(deep_signal=None)
