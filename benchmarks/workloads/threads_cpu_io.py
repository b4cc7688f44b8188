"""Benchmark workload: a few threads mixing CPU work with blocking loopback-socket I/O.

The script starts its own echo server on 127.0.0.1 (port 0, so the kernel picks a free
one; nothing leaves the machine). Each client thread alternates a little computation with
a request/response round trip. The last stdout lines are ``cpu=<seconds>`` (process CPU, all
threads) and ``elapsed=<seconds>``, measured from the server being ready to the last client
finishing.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
import time

CLIENTS = 4
REQUESTS = 3_000
PAYLOAD = b"x" * 2_048


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        while True:
            data = sock.recv(65_536)
            if not data:
                return
            sock.sendall(data)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def crunch(n: int) -> int:
    total = 0
    for i in range(n):
        total += (i * 31) % 17
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


def client(port: int, requests: int, results: list[int], index: int) -> None:
    total = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(requests):
            total += crunch(1_500)
            sock.sendall(PAYLOAD)
            total += len(receive_exactly(sock, len(PAYLOAD)))
    results[index] = total


def main(clients: int, requests: int) -> tuple[int, float, float]:
    with EchoServer(("127.0.0.1", 0), EchoHandler) as server:
        port = server.server_address[1]
        serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                   name="echo-server", daemon=True)
        serving.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        results = [0] * clients
        workers = [threading.Thread(target=client, args=(port, requests, results, i), name=f"client-{i}")
                   for i in range(clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        server.shutdown()
    return sum(results), cpu, elapsed


if __name__ == "__main__":
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else CLIENTS
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else REQUESTS
    checksum, cpu, elapsed = main(clients, requests)
    print(f"checksum={checksum}")
    print(f"cpu={cpu:.6f}")
    print(f"elapsed={elapsed:.6f}")
