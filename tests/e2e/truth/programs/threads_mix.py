"""(c) Threads: blocking socket round trips to a loopback server thread that replies after
0.1 s (io), a thread in time.sleep (waiting), a thread doing CPU (compute)."""

import socket
import threading
import time

import groundtruth as truth

REPLY_DELAY = 0.1
TRIPS = 4


def serve(listener):
    truth.begin("server")
    with truth.phase("server", "io"):
        conn, _ = listener.accept()
    with conn:
        while True:
            with truth.phase("server", "io"):
                data = conn.recv(64)
            if not data:
                break
            with truth.phase("server", "waiting"):
                time.sleep(REPLY_DELAY)
            with truth.phase("server", "io"):
                conn.sendall(data)
    truth.end("server")


def fetch(port):
    truth.begin("reader")
    with truth.phase("reader", "io"):
        sock = socket.create_connection(("127.0.0.1", port))
    with sock:
        for n in range(TRIPS):
            with truth.phase("reader", "io"):
                sock.sendall(b"%d" % n)
                sock.recv(64)
    truth.end("reader")


def nap():
    truth.begin("napper")
    for _ in range(4):
        with truth.phase("napper", "waiting"):
            time.sleep(0.1)
    truth.end("napper")


def crunch():
    truth.begin("cruncher")
    with truth.phase("cruncher", "compute"):
        truth.burn(0.3)
    truth.end("cruncher")


listener = socket.create_server(("127.0.0.1", 0))
port = listener.getsockname()[1]
threads = [threading.Thread(target=serve, args=(listener,), name="server"),
           threading.Thread(target=fetch, args=(port,), name="reader"),
           threading.Thread(target=nap, name="napper"),
           threading.Thread(target=crunch, name="cruncher")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
listener.close()
truth.save()
print("done")
