"""Server overhead: requests/s of the example gevent service bare, under advisor's WSGI
middleware in light mode (always on), and during a deep capture.

Each round starts a fresh ``examples/gevent_server/app.py`` on 127.0.0.1 (a port picked by
the kernel), warms it up (at least 0.5 s: past the agent's first window of tracing, see
``advisor.embed.windows``), then sends a fixed number of requests over keep-alive
connections from a client in this process (one thread on epoll, far cheaper a request
than the server), and measures requests per second. The connections (60 by default) keep
the server busy: what is measured is how many requests its core serves, not how fast the
client can ask (with 20 connections and a gevent client, the bare server idled a third
of the time, and a slower server still kept up with the client).
Rounds are interleaved (bare, light, deep, bare, light, deep, …) so a noisy neighbour
slows every variant alike; the median of each is kept. Bounded in requests and in time:
every socket operation has a timeout and each round a deadline.

The mix is the cheap routes a busy service serves most (``/health`` and product lookups
whose store round trip is a 2 ms cooperative wait, set by ``STORE_LATENCY_S``): per-request
costs show most there. The goal: light >= 95% of the bare throughput.

    python benchmarks/server_overhead.py [--rounds 5] [--requests 4000] [--connections 60]
                                         [--variants bare,light,deep] [--together]

Besides requests/s, each round reads the server process's CPU time (user + system, from
``/proc``) over the measured requests: the server's CPU per request, a steadier figure
than requests/s on a noisy machine. Where the machine has two cores or more, the server
runs on the last one and this client on the others (``--no-pin`` to let them share): the
two then do not take each other's core, and rounds vary less. Each variant's ratio is given
two ways: the ratio of the medians, and the median of each round's ratio to the bare run
just before it (neighbouring runs share the machine's state of the moment).

``--together`` also serves each variant beside a bare server, both on the server's core
and loaded at once by the client (half the connections each): the bare server's CPU per
request over the variant's, read over the same seconds, is their throughput ratio at
saturation, and the machine's speed flips (1.5x, from one second to the next) fall on both
alike. The pair starts, and is served, in the other order every other round, and each order
moves a round by about ±3%: a variant's figure is the mean of the two orders' means (a
median of rounds kept whichever order had more of the middle rounds). The first pair is
bare beside bare, the method's own error. For light mode it also prints the share of each
round's seconds that was traced (its trace windows: see ``advisor.embed.windows``), read
from the server's report before a second warm-up and after the measure: a round that fell
inside a pause measured the paused state only, not what a server left on pays.
"""

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "gevent_server" / "app.py"
TOKEN = "benchmark-token-123"
ROUND_DEADLINE_S = 120.0
PATHS = ["/health", "/products/3", "/health", "/products/42"]


def server_cpus() -> tuple[set[int], set[int]] | None:
    """(the server's core, the client's cores) when there are two or more to split, else None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


PINNED: set[int] | None = None  # the server's core, when pinned (set in main)


def start(variant: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = directory / f"port-{variant}-{time.monotonic_ns()}"
    args = [sys.executable, str(APP), "--port", "0", "--port-file", str(port_file)]
    if variant == "bare":
        args.append("--bare")
    env = dict(os.environ, ADVISOR_TOKEN=TOKEN, PYTHONPATH=str(REPO), STORE_LATENCY_S="0.002")
    if variant == "traced":  # light mode tracing every request: no trace windows
        env["ADVISOR_TRACE_BUDGET"] = "none"
    pinned = PINNED
    process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None)
    deadline = time.monotonic() + 30.0
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{variant}: the server did not start")
        time.sleep(0.05)
    return process, int(port_file.read_text())


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0.0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_bytes(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode()


def take_response(pending: bytearray) -> int | None:
    """The status of the first whole response in `pending`, which is taken out of it; None
    while it is not all there."""
    end = pending.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(pending[:end])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(pending) < end + 4 + length:
        return None
    del pending[:end + 4 + length]
    return int(head.split(b" ", 2)[1])


class Connection:
    """One keep-alive connection of the load: one request in flight at a time."""

    def __init__(self, port: int, offset: int, count: int) -> None:
        self.stream = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls
        self.stream.setblocking(False)
        self.offset, self.left = offset, count
        self.pending = bytearray()

    def send_next(self) -> None:
        self.left -= 1
        # a request is ~80 bytes: an empty socket buffer takes it whole
        self.stream.send(request_bytes("GET", PATHS[(self.offset + self.left) % len(PATHS)]))

    def received(self) -> int:
        """Responses completed by what the socket has now (a closed connection raises)."""
        chunk = self.stream.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed a connection")
        # acknowledge at once: pywsgi writes a response's headers and body separately, and with
        # Nagle on its side the body would wait for our (by default delayed, ~40 ms) ACK
        if QUICK_ACK is not None:
            self.stream.setsockopt(socket.IPPROTO_TCP, QUICK_ACK, 1)
        self.pending += chunk
        done = 0
        while (status := take_response(self.pending)) is not None:
            if status >= 500:
                raise RuntimeError("server error")
            done += 1
        return done


QUICK_ACK = getattr(socket, "TCP_QUICKACK", None)


def load(port: int | list[int], total: int, connections: int) -> float:
    """Send `total` requests over `connections` keep-alive connections (to each of the
    ports given, `total` and `connections` for each); requests per second.

    One thread, one epoll: the client's own cost per request (~20 µs of Python) is well
    under the server's, so the server is kept busy and its rate is what is measured. A
    gevent client (what this was) costs about what the server does a request: the rate
    was then the slower of the two, and a server made slower by the probes could still
    reach the client's rate (light measured at 104% of bare on an idle machine)."""
    ports = [port] if isinstance(port, int) else port
    per_connection = total // connections
    pool = [Connection(each, offset, per_connection) for each in ports for offset in range(connections)]
    by_fd = {connection.stream.fileno(): connection for connection in pool}
    poller = select.epoll()
    deadline = time.monotonic() + ROUND_DEADLINE_S
    try:
        for connection in pool:
            poller.register(connection.stream.fileno(), select.EPOLLIN)
        begin = time.perf_counter()
        for connection in pool:
            connection.send_next()
        waiting = len(pool)
        while waiting:
            events = poller.poll(10.0)
            if not events or time.monotonic() > deadline:
                raise RuntimeError("a round did not finish in time")
            for fd, _mask in events:
                connection = by_fd[fd]
                for _ in range(connection.received()):
                    if connection.left:
                        connection.send_next()
                    else:
                        waiting -= 1
        return per_connection * connections * len(ports) / (time.perf_counter() - begin)
    finally:
        poller.close()
        for connection in pool:
            connection.stream.close()


# The agent starts at a server's first request, and traces its first window (0.25 s) whatever
# the load: the measured requests come after it, in the steady state of a server left on
WARM_UP_S = 0.5


def warm_up(port: int | list[int], requests: int, connections: int) -> None:
    """At least 1,000 requests (fewer if the round has fewer) and WARM_UP_S seconds."""
    begun = time.monotonic()
    load(port, min(1000, requests), connections)
    while time.monotonic() - begun < WARM_UP_S:
        load(port, min(1000, requests), connections)


def control(port: int, method: str, path: str) -> tuple[int, bytes]:
    """The control endpoint's answer (status, body), on a connection of its own."""
    stream = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        stream.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
        answer = bytearray()
        while chunk := stream.recv(1 << 20):
            answer += chunk
    finally:
        stream.close()
    head, _, body = bytes(answer).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def paused_seconds(port: int) -> float | None:
    """The seconds the server's tracing has been paused so far (its report's
    run.overhead.trace_paused_s, through the control endpoint), or None where it says none."""
    status, body = control(port, "GET", "/_advisor/report")
    if status != 200:
        return None
    return json.loads(body)["run"]["overhead"].get("trace_paused_s")


def start_deep_capture(port: int) -> None:
    """Ask the server's control endpoint for a deep capture, and let yappi calibrate."""
    if control(port, "POST", "/_advisor/deep?seconds=120")[0] != 202:
        raise RuntimeError("the deep capture did not start")
    time.sleep(1.0)  # yappi's calibration, then the capture runs


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each server, then wait for each (killed past 30 s)."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def one_round(variant: str, requests: int, connections: int, directory: Path) -> tuple[float, float]:
    """(requests/s, the server's CPU µs per request) of one round."""
    process, port = start(variant, directory)
    try:
        warm_up(port, requests, connections)
        if variant == "deep":
            start_deep_capture(port)
        cpu0 = process_cpu_s(process.pid)
        rate = load(port, requests, connections)
        served = requests // connections * connections
        return rate, 1e6 * (process_cpu_s(process.pid) - cpu0) / served
    finally:
        stop([process])


def together_round(variant: str, index: int, requests: int, connections: int,
                   directory: Path) -> tuple[float, float | None]:
    """Bare and `variant` served at once from the server's core and loaded at once: the
    bare server's CPU per request over the variant's, in the same seconds of the machine;
    and, for light mode with trace windows, the share of those seconds it traced (a round
    shorter than a window's cycle may fall inside a pause, and measure the paused state)."""
    pair = [("base", "bare"), ("other", variant)]
    if index % 2:
        pair.reverse()  # which starts, and is served, first
    started = {role: start(name, directory) for role, name in pair}
    try:
        ports = [started[role][1] for role, _name in pair]
        warm_up(ports, requests, connections // 2)
        if variant == "deep":
            start_deep_capture(started["other"][1])
        windowed = variant == "light"
        paused0 = paused_seconds(started["other"][1]) if windowed else None
        begun = time.monotonic()
        if windowed:  # the report built for that leaves garbage behind: collected before the measure
            warm_up(ports, requests, connections // 2)
        cpu0 = {role: process_cpu_s(process.pid) for role, (process, _port) in started.items()}
        load(ports, requests, connections // 2)
        used = {role: process_cpu_s(process.pid) - cpu0[role] for role, (process, _port) in started.items()}
        paused1 = paused_seconds(started["other"][1]) if windowed else None
        seconds = time.monotonic() - begun  # (the second warm-up's and the measure's)
        traced = (None if paused0 is None or paused1 is None
                  else min(1.0, max(0.0, 1.0 - (paused1 - paused0) / max(seconds, 1e-9))))
        return used["base"] / max(used["other"], 1e-9), traced
    finally:
        stop([process for process, _port in started.values()])


def together(variants: tuple[str, ...], rounds: int, requests: int,
             connections: int) -> tuple[dict[str, list[float]], list[float]]:
    """Each variant against a bare server running beside it (the first pair: bare against
    bare, the method's own error); and the share of each light round traced."""
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    traced_shares: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(rounds):
            for variant in variants:
                ratio, traced = together_round(variant, index, requests, connections, Path(scratch))
                ratios[variant].append(ratio)
                note = ""
                if traced is not None:
                    traced_shares.append(traced)
                    note = f" (traced {100 * traced:.0f}% of the round)"
                print(f"together round {index + 1} {variant:5s} {100 * ratio:6.1f}% of bare{note}", flush=True)
    return ratios, traced_shares


def order_balanced(ratios: list[float]) -> float:
    """The mean of the rounds in which bare started first and the mean of those in which
    it started second, averaged: each order counts alike, however many rounds there were."""
    orders = [ratios[0::2], ratios[1::2]]
    return statistics.mean(statistics.mean(rounds) for rounds in orders if rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=60)
    parser.add_argument("--variants", default="bare,light,deep",
                        help="comma-separated, of bare, light, traced (light tracing every request), deep "
                             "(bare is always run)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--no-pin", action="store_true", help="let the server and the client share the cores")
    parser.add_argument("--together", action="store_true",
                        help="also serve each variant beside a bare server, both loaded at once (see the docstring)")
    options = parser.parse_args()
    global PINNED
    split = None if options.no_pin else server_cpus()
    if split is not None:
        PINNED = split[0]
        os.sched_setaffinity(0, split[1])
    wanted = {name.strip() for name in options.variants.split(",") if name.strip()}
    variants = tuple(variant for variant in ("bare", "light", "traced", "deep")
                     if variant in wanted or variant == "bare")
    results: dict[str, list[float]] = {variant: [] for variant in variants}
    cpu: dict[str, list[float]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(options.rounds):
            for variant in variants:
                rate, cpu_us = one_round(variant, options.requests, options.connections, Path(scratch))
                results[variant].append(rate)
                cpu[variant].append(cpu_us)
                print(f"round {index + 1} {variant:5s} {rate:8.0f} req/s {cpu_us:6.1f} µs CPU/request", flush=True)
    bare = statistics.median(results["bare"])
    bare_cpu = statistics.median(cpu["bare"])
    pinning = f"server pinned to CPU {min(PINNED)}" if PINNED else "not pinned"
    print(f"\n{'variant':8s} {'median req/s':>12s} {'of bare':>8s} {'paired':>7s} {'CPU µs/req':>11s} {'+µs':>6s}"
          f"   (load average {os.getloadavg()[0]:.1f}, {pinning})")
    summary = {}
    for variant in variants:
        median = statistics.median(results[variant])
        median_cpu = statistics.median(cpu[variant])
        # each round against the bare run of the same round
        paired = statistics.median(rate / base for rate, base in zip(results[variant], results["bare"], strict=True))
        summary[variant] = {"median_rps": round(median, 1), "of_bare": round(median / bare, 4),
                            "paired_of_bare": round(paired, 4),
                            "rounds": [round(rate, 1) for rate in results[variant]],
                            "median_cpu_us": round(median_cpu, 1), "cpu_us": [round(us, 1) for us in cpu[variant]]}
        print(f"{variant:8s} {median:12.0f} {100 * median / bare:7.1f}% {100 * paired:6.1f}% {median_cpu:11.1f}"
              f" {median_cpu - bare_cpu:+6.1f}")
    if options.together:
        print("\nbeside a bare server, loaded at once (bare's CPU per request over the variant's):")
        ratios, traced_shares = together(variants, options.rounds, options.requests, options.connections)
        if traced_shares:
            summary.setdefault("light", {})["together_traced_shares"] = [round(share, 4) for share in traced_shares]
        for variant in variants:
            balanced = order_balanced(ratios[variant])
            summary[variant]["together_of_bare"] = round(balanced, 4)
            summary[variant]["together_rounds"] = [round(ratio, 4) for ratio in ratios[variant]]
            label = "bare (control)" if variant == "bare" else variant
            print(f"{label:15s} {100 * balanced:6.1f}%   rounds: {' '.join(f'{100 * r:.0f}' for r in ratios[variant])}")
        if traced_shares:
            print(f"light traced {100 * statistics.mean(traced_shares):.1f}% of its measured seconds (mean of the "
                  f"rounds; a server left on traces its windows' share: see advisor.embed.windows)")
    if "light" in summary:
        print(f"\ngoal: light >= 95% of bare: {'met' if summary['light']['of_bare'] >= 0.95 else 'missed'}"
              + (f" (together: {'met' if summary['light']['together_of_bare'] >= 0.95 else 'missed'})"
                 if options.together else ""))
    if options.json:
        Path(options.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
