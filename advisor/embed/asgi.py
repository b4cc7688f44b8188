"""ASGI middleware for asyncio servers (uvicorn, hypercorn…): a plain ASGI callable.

Each HTTP request runs in one asyncio task of the server; the meter reads that task's
counters at the start and end of the app's call (see ``advisor.embed.meter``). The route
is ``METHOD path`` unless path templates (``routes``) or a ``route`` function of the scope
name it. Websocket scopes
pass through untouched, lifespan ones too, but at the lifespan shutdown the last report is
written; requests for the control endpoint (off unless a
token is given) are answered here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .agent import Agent
from .templates import NO_TEMPLATES, PathTemplates

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteOf = Callable[[Scope], str]


def default_route(scope: Scope) -> str:
    """``METHOD /path`` (no query string)."""
    return NO_TEMPLATES.of_scope(scope)


class AdvisorASGIMiddleware:
    """Wrap an ASGI app: ``app = AdvisorASGIMiddleware(app, dump_dir="/var/tmp/advisor")``
    (keyword arguments as for ``AdvisorWSGIMiddleware``)."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[str] = (), route: RouteOf | None = None,
                 agent: Agent | None = None, **options: Any) -> None:
        if route is not None and routes:
            raise ValueError("name routes by templates (routes=) or by a function (route=), not both")
        self.app = app
        self.route_of: RouteOf = route or PathTemplates(routes).of_scope
        self.agent = agent if agent is not None else Agent(on_loop=True, **options)

    @property
    def profiler(self) -> Any:
        return self.agent.profiler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "lifespan":
            await self.app(scope, self._closing_at_shutdown(receive), send)
            return
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        agent = self.agent
        path = scope.get("path", "") or "/"
        if agent.handles(path):
            await self._control(scope, send, path)
            return
        try:
            route = self.route_of(scope)
        except Exception:
            route = default_route(scope)
        pending = agent.begin(route)
        if pending is None:
            await self.app(scope, receive, send)
            return
        status = [0]

        async def send_status(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status[0] = int(message.get("status", 0))
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            agent.end(pending, True)
            raise
        agent.end(pending, status[0] >= 500)

    def _closing_at_shutdown(self, receive: Receive) -> Receive:
        """The server is shutting down: write the last report before the app winds down
        (some servers end the process by re-raising the signal, so no atexit runs)."""
        async def receive_then_close() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.shutdown":
                try:
                    self.agent.close()
                except Exception as error:
                    self.agent.meter.disable(error)
            return message

        return receive_then_close

    async def _control(self, scope: Scope, send: Send, path: str) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers", [])}
        from .control import presented_token

        token = presented_token(headers.get("authorization"), headers.get("x-advisor-token"))
        client = scope.get("client")
        remote = client[0] if client else None
        query = scope.get("query_string", b"").decode("latin-1")
        answer = await self.agent.answer_async(scope.get("method", "GET"), path, query, token, remote)
        response_headers = [(b"content-type", answer.content_type.encode()),
                            (b"content-length", str(len(answer.body)).encode()), (b"cache-control", b"no-store")]
        response_headers += [(name.lower().encode(), value.encode()) for name, value in answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": answer.body})
