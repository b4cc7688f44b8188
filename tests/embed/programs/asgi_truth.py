"""A plain ASGI app under uvicorn, wrapped in advisor's ASGI middleware: routes that spend
known time. /wait/<anything>: asyncio.sleep(0.02), one route by its path template;
/cpu: ~20 ms of pure-Python work; /block: a time.sleep(0.02) that holds the event loop;
/ok: nothing."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from typing import Any

import uvicorn

from advisor.embed import AdvisorASGIMiddleware


def burn(seconds: float) -> float:
    """Pure-Python work for `seconds` of wall time; returns the CPU time it got (on a busy
    machine, less: the rest is the run queue)."""
    cpu = time.thread_time()
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(range(200))
    return time.thread_time() - cpu


def hold_the_loop() -> None:
    time.sleep(0.02)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    status = 200
    headers = [(b"content-type", b"text/plain")]
    if path.startswith("/wait/"):
        await asyncio.sleep(0.02)
    elif path == "/cpu":
        headers.append((b"x-burn-cpu", f"{burn(0.02):.6f}".encode()))
    elif path == "/block":
        hold_the_loop()
    elif path != "/ok":
        status = 404
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"done\n" if status == 200 else b"no such route\n"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--dump-dir", required=True)
    parser.add_argument("--deep-seconds", type=float, default=1.0)
    options = parser.parse_args()
    served = AdvisorASGIMiddleware(app, routes=["/wait/{ms}"], dump_dir=options.dump_dir,
                                   deep_seconds=options.deep_seconds, control_token=os.environ.get("ADVISOR_TOKEN"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # port 0: the kernel picks a free one
    config = uvicorn.Config(served, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        with open(options.port_file + ".tmp", "w") as out:
            out.write(str(listener.getsockname()[1]))
        os.replace(options.port_file + ".tmp", options.port_file)
        await task

    asyncio.run(serve())
    served.agent.close()


if __name__ == "__main__":
    main()
