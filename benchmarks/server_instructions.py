"""Server cost in instructions: what the example gevent service runs per request, bare and
under advisor's WSGI middleware in light mode, counted by callgrind (valgrind).

A shared machine moves requests/s and CPU time by 10-50% from one round to the next;
the count of instructions a request takes does not move (0.3% between runs here), so this is
the figure to compare two versions of the probes by. Each variant's server runs under
``valgrind --tool=callgrind`` on 127.0.0.1 (a port picked by the kernel); one keep-alive
connection sends 300 requests to warm up, the counters are zeroed, then ``--requests``
more are sent (``/health`` and product lookups, the store's wait made a bare yield) and
the counters are dumped. Bounded: every socket operation has a timeout.

What is counted is the request path: the middleware, the request meter and the greenlet
switch hook. Two things are set apart, as valgrind slows the server ~50x: the sampling
thread is not started (it costs per tick, not per request, and would tick 50 times as
often per request), and no unit becomes a suspect whose steps read the CPU clock (under
valgrind every step lasts longer than ``SUSPECT_STEP_S``). Instructions are not time: the
probes' code chases pointers and runs slower per instruction than the server's own.

    python benchmarks/server_instructions.py [--requests 400] [--keep DIR] [--variants bare,light,paused,probes]

The ``probes`` variant starts ``advisor.Profiler`` and serves the bare app: the switch
hook's share of the cost, the rest of light's being the middleware and request meter.
Under valgrind a server is slow enough that light mode stays within its trace budget and
traces every request; ``paused`` counts a request while tracing pauses (see
``advisor.embed.windows``): its budget is so small that, past a first window of 1 s, the
tracing pauses for 49 s.

With ``--keep DIR`` the dumps stay in DIR: ``callgrind_annotate DIR/callgrind-light.out.*``
shows which functions the instructions are in.

Needs valgrind (``apt install valgrind``); a few minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "gevent_server"
PATHS = ["/health", "/products/3", "/health", "/products/42"]
WARM_UP = 300
START_TIMEOUT_S = 180.0  # the interpreter and gevent start slowly under valgrind
SOCKET_TIMEOUT_S = 60.0
VARIANTS = ("bare", "light", "paused", "probes")


def serve(variant: str, port_file: str) -> None:
    """The example service on a kernel-picked port, bare or under the middleware."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from gevent.pywsgi import WSGIServer

    sys.path.insert(0, str(EXAMPLE))
    import app as service  # the example service (examples/gevent_server/app.py)

    served = service.app
    if variant in ("light", "paused", "probes"):
        from advisor.embed import AdvisorWSGIMiddleware
        from advisor.probes import greenlet_probe
        from advisor.probes.sampler import Sampler

        greenlet_probe.SUSPECT_STEP_S = 1e9  # see the module docstring
        Sampler.start = lambda self: None  # type: ignore[method-assign]
        Sampler.stop = lambda self: None  # type: ignore[method-assign]
        if variant == "light":
            served = AdvisorWSGIMiddleware(service.app, routes=service.ROUTES, deep_signal=None)
        elif variant == "paused":  # tracing paused (trace windows): one window of 1 s, then 49 s paused
            served = AdvisorWSGIMiddleware(service.app, routes=service.ROUTES, deep_signal=None, trace_budget=1e-9)
            served.agent.windows.window_s = 1.0
        else:  # the probes alone (the switch hook), no middleware: the bare app's requests
            import advisor

            profiler = advisor.Profiler(mode="light")
            profiler.start()
            profiler.attach_current_thread()
    server = WSGIServer(("127.0.0.1", 0), served, log=None)
    server.start()
    Path(port_file + ".tmp").write_text(str(server.server_port))
    os.replace(port_file + ".tmp", port_file)
    gevent.signal_handler(15, server.stop)
    server.serve_forever()


def send(stream: socket.socket, path: str, pending: bytearray) -> None:
    """One request and its whole response (headers, Content-Length body) on a keep-alive connection."""
    stream.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode())
    while b"\r\n\r\n" not in pending:
        chunk = stream.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = stream.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    pending[:] = rest[length:]


def instructions_per_request(variant: str, requests: int, scratch: Path) -> float:
    """Start the variant under callgrind, send the requests, read the dumped count."""
    port_file = scratch / f"port-{variant}"
    out = scratch / f"callgrind-{variant}.out"
    env = dict(os.environ, PYTHONPATH=str(REPO), STORE_LATENCY_S="0")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                               sys.executable, __file__, "--serve", variant, "--port-file", str(port_file)],
                              env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{variant}: the server did not start under valgrind")
            time.sleep(0.2)
        stream = socket.create_connection(("127.0.0.1", int(port_file.read_text())), timeout=SOCKET_TIMEOUT_S)
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = bytearray()
        try:
            for index in range(WARM_UP):
                send(stream, PATHS[index % len(PATHS)], pending)
            subprocess.run(["callgrind_control", "--zero", str(server.pid)], capture_output=True, check=True,
                           timeout=60)
            for index in range(requests):
                send(stream, PATHS[index % len(PATHS)], pending)
            subprocess.run(["callgrind_control", "--dump=measured", str(server.pid)], capture_output=True,
                           check=True, timeout=60)
        finally:
            stream.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    dumps = sorted(scratch.glob(f"callgrind-{variant}.out.*"))
    if not dumps:
        raise RuntimeError(f"{variant}: callgrind wrote no dump")
    for line in dumps[0].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1]) / requests
    raise RuntimeError(f"{variant}: no total in {dumps[0]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="measured requests per variant (default 400)")
    parser.add_argument("--keep", metavar="DIR", help="keep callgrind's dumps in DIR (for callgrind_annotate)")
    parser.add_argument("--variants", default="bare,light",
                        help="comma-separated, of bare, light, probes (the probes started, no middleware)")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.port_file)
        return 0
    variants = [name.strip() for name in options.variants.split(",") if name.strip()]
    if "bare" not in variants or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: bare and any of {', '.join(VARIANTS)}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("server_instructions: valgrind (with callgrind_control) is not installed", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        kept = Path(options.keep or scratch)
        kept.mkdir(parents=True, exist_ok=True)
        counts = {variant: instructions_per_request(variant, options.requests, kept)
                  for variant in variants}
    bare = counts["bare"]
    print(f"{'variant':8s} {'instructions/request':>21s} {'of bare':>8s}")
    for variant, count in counts.items():
        print(f"{variant:8s} {count:21,.0f} {count / bare:7.2f}x" + (f"  (+{count - bare:,.0f})" if variant != "bare"
                                                                     else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
