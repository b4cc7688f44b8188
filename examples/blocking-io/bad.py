"""Two fetcher coroutines read from a local TCP service with a plain blocking socket.

The service (an asyncio server in a thread, on 127.0.0.1, ephemeral port) answers after
0.1 s. `fetch()` uses socket.create_connection() and recv() inside a coroutine, which
holds the event loop for every reply: the two fetchers cannot overlap. advisor reports
blocking-io at the recv line.
"""

import asyncio
import socket
import threading

REPLY_DELAY = 0.1
REQUESTS = 4


def start_service() -> tuple[int, threading.Event]:
    """A line service in its own thread: waits REPLY_DELAY, echoes the line back."""
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            await asyncio.sleep(REPLY_DELAY)
            writer.write(line)
            await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.02)
        server.close()

    threading.Thread(target=asyncio.run, args=(serve(),), name="service", daemon=True).start()
    ready.wait(5)
    return port[0], stop


async def fetch(port: int, name: str) -> int:
    received = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for number in range(REQUESTS):
            sock.sendall(f"{name} {number}\n".encode())
            received += len(sock.recv(1024))  # expect: blocking-io
            await asyncio.sleep(0)
    return received


async def main() -> None:
    port, stop = start_service()
    sizes = await asyncio.gather(fetch(port, "a"), fetch(port, "b"))
    stop.set()
    print(f"received {sum(sizes)} bytes")


if __name__ == "__main__":
    asyncio.run(main())
