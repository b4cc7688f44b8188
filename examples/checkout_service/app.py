"""A small asyncio checkout service, profiled by `make run`.

The program starts an inventory service on 127.0.0.1 (an ephemeral port) that answers
each stock query after 50 ms, then checks out twelve orders concurrently. Each order:
reserves stock for its items over TCP (one query per item), prices the basket (a little
CPU), and writes an audit line. Two things are slow on purpose, so that the report has
something to show:

- the audit writer pauses with ``time.sleep`` (a "rate limit"), which blocks the event
  loop: every other task's ``scheduling`` time grows while it sleeps;
- each order queries its items one after the other, although the queries are
  independent (``asyncio.gather`` would overlap them): a sequential-awaits finding.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

ORDERS = 12
ITEMS_PER_ORDER = 4
REPLY_DELAY = 0.05
AUDIT_PAUSE = 0.03


async def inventory(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The inventory service: one query line in, one stock line out, after REPLY_DELAY."""
    while line := await reader.readline():
        await asyncio.sleep(REPLY_DELAY)
        sku = line.strip().decode()
        writer.write(f"{sku} {len(sku) * 7 % 23}\n".encode())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def query(port: int, sku: str) -> tuple[str, int]:
    """One stock query on its own connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{sku}\n".encode())
    await writer.drain()
    name, count = (await reader.readline()).decode().split()
    writer.close()
    await writer.wait_closed()
    return name, int(count)


async def reserve(port: int, skus: list[str]) -> dict[str, int]:
    stock = {}
    for sku in skus:
        name, count = await query(port, sku)  # independent queries, one after the other
        stock[name] = count
    return stock


def price(stock: dict[str, int]) -> int:
    """The basket's price in cents (a little pure-Python CPU work)."""
    total = 0
    for sku, count in stock.items():
        digest = sku.encode()
        for _ in range(3_000):
            digest = hashlib.blake2s(digest).digest()
        total += (digest[0] + 100) * max(count, 1)
    return total


def audit(order: int, total: int, log: list[str]) -> None:
    time.sleep(AUDIT_PAUSE)  # a blocking "rate limit": holds the event loop
    log.append(f"order {order}: {total} cents")


async def checkout(order: int, port: int, log: list[str]) -> int:
    skus = [f"sku-{order}-{item}" for item in range(ITEMS_PER_ORDER)]
    stock = await reserve(port, skus)
    total = price(stock)
    audit(order, total, log)
    return total


async def main() -> None:
    server = await asyncio.start_server(inventory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    log: list[str] = []
    async with server:
        orders = [asyncio.create_task(checkout(n, port, log), name=f"order-{n}") for n in range(ORDERS)]
        totals = await asyncio.gather(*orders)
    print(f"{len(totals)} orders checked out, {sum(totals)} cents in all, {len(log)} audit lines")


if __name__ == "__main__":
    asyncio.run(main())
