"""Fetch the price of every item in a basket from a small quote service, one by one.

The quote service (started here on 127.0.0.1) takes ~50 ms per answer. `quote_all()`
awaits each request before sending the next, although no request needs the previous
answer: the waits add up. advisor reports sequential-awaits at the awaited call.
"""

import asyncio

ITEMS = [f"sku-{n:03d}" for n in range(14)]
LATENCY = 0.05


async def serve_quote(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sku = (await reader.readline()).decode().strip()
    await asyncio.sleep(LATENCY)  # the backend's lookup time
    writer.write(f"{sku} {sum(map(ord, sku)) / 100:.2f}\n".encode())
    await writer.drain()
    writer.close()


async def fetch_quote(port: int, sku: str) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{sku}\n".encode())
    await writer.drain()
    answer = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return float(answer.split()[1])


async def quote_all(port: int, items: list[str]) -> dict[str, float]:
    prices = {}
    for sku in items:
        prices[sku] = await fetch_quote(port, sku)  # expect: sequential-awaits
    return prices


async def main() -> None:
    server = await asyncio.start_server(serve_quote, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        prices = await quote_all(port, ITEMS)
    print(f"{len(prices)} quotes, basket total {sum(prices.values()):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
