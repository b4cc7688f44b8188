"""Benchmark workload: ~50 gevent greenlets mixing small CPU work, sleeps and loopback I/O.

gevent monkey-patches the standard library first thing. The script starts a gevent
``StreamServer`` echo server on 127.0.0.1 (port 0, so the kernel picks a free one; nothing
leaves the machine); each worker greenlet keeps one connection to it and, round after
round, computes a little, sleeps a little (``gevent.sleep``) and makes a request/response
round trip. The last stdout lines are ``cpu=<seconds>`` (process CPU, all threads) and
``elapsed=<seconds>``, measured from the server being ready to the last worker finishing.
"""

from gevent import monkey

monkey.patch_all()

import random  # noqa: E402 (after monkey-patching, as gevent asks)
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

WORKERS = 50
ROUNDS = 160
PAYLOAD = b"x" * 1_024
TIMEOUT_S = 60.0  # no socket operation may hang the benchmark


def echo(sock: socket.socket, _address: object) -> None:
    sock.settimeout(TIMEOUT_S)
    while True:
        data = sock.recv(65_536)
        if not data:
            return
        sock.sendall(data)


def crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total += (i * 13) % 11
    return total


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    left = size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("server closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def worker(port: int, rounds: int, seed: float) -> int:
    rng = random.Random(seed)
    total = 0
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(rounds):
            total += crunch(rng.randint(500, 2_500))
            gevent.sleep(rng.uniform(0.0, 0.01))
            sock.sendall(PAYLOAD)
            total += len(receive_exactly(sock, len(PAYLOAD)))
    return total


def main(workers: int, rounds: int) -> tuple[int, float, float]:
    server = StreamServer(("127.0.0.1", 0), echo)
    server.start()
    try:
        port = server.server_port
        rng = random.Random(1234)
        started = time.perf_counter()
        cpu_started = time.process_time()
        greenlets = [gevent.spawn(worker, port, rounds, rng.random()) for _ in range(workers)]
        gevent.joinall(greenlets, timeout=TIMEOUT_S, raise_error=True)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if not all(g.successful() for g in greenlets):
            raise SystemExit(f"workers unfinished after {TIMEOUT_S:g} s")
    finally:
        server.stop(timeout=1)
    return sum(g.value for g in greenlets), cpu, elapsed


if __name__ == "__main__":
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else WORKERS
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS
    checksum, cpu, elapsed = main(workers, rounds)
    print(f"checksum={checksum}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
