"""Two orders checked out concurrently: each waits 40 ms for "payment" and hashes a cart."""

import asyncio
import hashlib

import advisor


@advisor.trace(name="hash-cart")
def hash_cart(index: int) -> str:
    digest = b"%d" % index
    for _ in range(20_000):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


async def checkout(index: int) -> None:
    with advisor.span("checkout", region="eu"):
        with advisor.span("payment"):
            await asyncio.sleep(0.04)
        hash_cart(index)


async def main() -> None:
    await asyncio.gather(*(asyncio.create_task(checkout(i), name=f"order-{i}") for i in range(2)))


asyncio.run(main())
