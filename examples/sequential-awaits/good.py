"""Fetch the price of every item in a basket from a small quote service, all at once.

The same program as bad.py, with `quote_all()` starting every request together with
`asyncio.gather`: the ~50 ms answers overlap instead of adding up. advisor reports nothing.
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
    quotes = await asyncio.gather(*(fetch_quote(port, sku) for sku in items))
    return dict(zip(items, quotes, strict=True))


async def main() -> None:
    server = await asyncio.start_server(serve_quote, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        prices = await quote_all(port, ITEMS)
    print(f"{len(prices)} quotes, basket total {sum(prices.values()):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
