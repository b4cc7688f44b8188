"""Four worker threads look up exchange rates from a rate service, keeping a shared cache.

Each worker holds the cache lock for the whole lookup, network round trip included
(~40 ms at the rate service this program starts on 127.0.0.1), so only one request is
ever in flight and the workers spend most of their time waiting for the lock.
advisor reports lock-contention at the `with` that takes it.
"""

import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

WORKERS = 4
LOOKUPS = 16
LATENCY = 0.04


class RateHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        pair = self.rfile.readline().decode().strip()
        time.sleep(LATENCY)  # the rate service's own lookup
        self.wfile.write(f"{pair} {len(pair) * 0.137:.4f}\n".encode())


class RateService(socketserver.ThreadingTCPServer):
    daemon_threads = True


cache: dict[str, float] = {}
cache_lock = threading.Lock()


def fetch_rate(port: int, pair: str) -> float:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(f"{pair}\n".encode())
        return float(conn.makefile().readline().split()[1])


def lookup(port: int, pair: str) -> float:
    with cache_lock:  # expect: lock-contention
        if pair not in cache:
            cache[pair] = fetch_rate(port, pair)
        return cache[pair]


def main() -> None:
    with RateService(("127.0.0.1", 0), RateHandler) as service:
        threading.Thread(target=service.serve_forever, args=(0.01,), daemon=True).start()
        port = service.server_address[1]
        pairs = [f"EUR/C{n:02d}" for n in range(LOOKUPS)]
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            rates = list(pool.map(lambda pair: lookup(port, pair), pairs))
        service.shutdown()
    print(f"{len(rates)} rates, mean {sum(rates) / len(rates):.4f}")


if __name__ == "__main__":
    main()
