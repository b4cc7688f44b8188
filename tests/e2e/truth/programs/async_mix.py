"""(a) Four kinds of asyncio task on one loop: timers, CPU, loopback I/O, a queue.

- sleeper: awaits asyncio.sleep(0.1) five times (waiting 0.5)
- cruncher: ~0.3 s of pure-Python CPU in three steps (compute 0.3)
- client: waits for an asyncio.Event the cruncher sets when done (waiting), then makes
  four round trips to a server on 127.0.0.1 that replies after 0.1 s (io ~0.4)
- consumer: awaits an asyncio.Queue that producer feeds every 0.1 s (waiting)
"""

import asyncio

import groundtruth as truth

REPLY_DELAY = 0.1


async def handle(reader, writer):
    while line := await reader.readline():
        await asyncio.sleep(REPLY_DELAY)
        writer.write(line)
        await writer.drain()
    writer.close()


async def sleeper():
    for _ in range(5):
        with truth.phase("sleeper", "waiting", cap=0.1):
            await asyncio.sleep(0.1)
    truth.end("sleeper")


async def cruncher(done):
    for _ in range(3):
        with truth.phase("cruncher", "compute"):
            truth.burn(0.1)
        await asyncio.sleep(0)
    done.set()
    truth.end("cruncher")


async def client(port, cruncher_done):
    with truth.phase("client", "waiting"):
        await cruncher_done.wait()
    with truth.phase("client", "io"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for n in range(4):
        with truth.phase("client", "io"):
            writer.write(b"ping %d\n" % n)
            await writer.drain()
            await reader.readline()
    writer.close()
    with truth.phase("client", "io"):
        await writer.wait_closed()
    truth.end("client")


async def producer(queue):
    for n in range(5):
        with truth.phase("producer", "waiting", cap=0.1):
            await asyncio.sleep(0.1)
        queue.put_nowait(n)
    queue.put_nowait(None)
    truth.end("producer")


async def consumer(queue):
    while True:
        with truth.phase("consumer", "waiting"):
            item = await queue.get()
        if item is None:
            break
    truth.end("consumer")


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    queue = asyncio.Queue()
    done = asyncio.Event()
    units = {"sleeper": sleeper(), "cruncher": cruncher(done), "client": client(port, done),
             "producer": producer(queue), "consumer": consumer(queue)}
    tasks = []
    for name, coro in units.items():
        truth.begin(name)
        tasks.append(asyncio.create_task(coro, name=name))
    await asyncio.gather(*tasks)
    server.close()
    await server.wait_closed()


asyncio.run(main())
truth.save()
print("done")
