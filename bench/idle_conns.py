#!/usr/bin/env python3
"""Open COUNT keep-alive connections to 127.0.0.1:PORT, send one GET on each,
read its response, then hold all of them open and idle.

    python3 bench/idle_conns.py PORT COUNT READY_FILE [HOLD_SECONDS]

Writes "ok=<n> failed=<n>" to READY_FILE once every connection has either
completed its request or failed, then sleeps HOLD_SECONDS (default 120) or
until killed. Used by bench/rss.sh to measure memory per idle connection.
With TLS_NAME (and TLS_CAFILE) in the environment the connections are TLS with
that SNI, verified against TLS_CAFILE (bench/edge.sh).
"""
import asyncio
import os
import ssl
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: switchyard-idle\r\n\r\n"


def tls_context():
    name = os.environ.get("TLS_NAME")
    if not name:
        return None, None
    ctx = ssl.create_default_context(cafile=os.environ.get("TLS_CAFILE"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx, name


TLS, TLS_NAME = tls_context()


async def one(port, sem, held):
    async with sem:
        for attempt in range(5):
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=TLS, server_hostname=TLS_NAME), 10)
                writer.write(REQUEST)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await asyncio.wait_for(reader.readexactly(length), 10)
                if status != 200:
                    writer.close()
                    return False
                held.append(writer)  # keep it open and idle
                return True
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                await asyncio.sleep(0.05 * (attempt + 1))
        return False


async def main():
    port, count, ready_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    sem = asyncio.Semaphore(int(os.environ.get("CONNECT_CONCURRENCY", "100")))
    held = []
    results = await asyncio.gather(*(one(port, sem, held) for _ in range(count)))
    ok = sum(1 for r in results if r)
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"ok={ok} failed={count - ok}\n")
    os.rename(tmp, ready_file)
    await asyncio.sleep(hold)
    for w in held:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
