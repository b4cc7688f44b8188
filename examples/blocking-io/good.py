"""Two fetcher coroutines read from a local TCP service with asyncio streams.

The same service as in bad.py (0.1 s replies); `fetch()` awaits its replies with
asyncio.open_connection(), so the two fetchers overlap and nothing blocks the loop.
"""

import asyncio
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
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for number in range(REQUESTS):
        writer.write(f"{name} {number}\n".encode())
        await writer.drain()
        received += len(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return received


async def main() -> None:
    port, stop = start_service()
    sizes = await asyncio.gather(fetch(port, "a"), fetch(port, "b"))
    stop.set()
    print(f"received {sum(sizes)} bytes")


if __name__ == "__main__":
    asyncio.run(main())
