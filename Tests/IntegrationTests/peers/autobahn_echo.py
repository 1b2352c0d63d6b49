#!/usr/bin/env python3
"""WebSocket echo server for the Autobahn cases (AutobahnTests.swift).

Usage: autobahn_echo.py [--ready-file PATH] [--parent PID] [PORT]

Echoes every message back with its type, on any path, and negotiates
permessage-deflate when offered (websockets' default), so the 12.x/13.x cases
exercise extension negotiation through the gateway too. Built on `websockets`
(asyncio); run it with the venv made by `make venv`.

The server is the same for the direct run and the run through the gateway;
what the tests compare is how kosoku judges it each time, so the server does
not need to pass every case (websockets answers 7.1.5 with 1002, which
Autobahn counts as a wrong close code).

Once listening, the port is written to --ready-file (atomically, via rename)
and to stdout.
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import os

# Autobahn 9.3.x/9.4.x send 4 MiB messages in up to 65536 fragments; websockets
# refuses more than 4096 fragments per message by default ("too many
# fragments", 1009). Read by websockets at import time, so set it first.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(1 << 20))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402

import peerproc  # noqa: E402

from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", nargs="?", type=int, default=0)
    peerproc.add_arguments(ap)
    args = ap.parse_args()
    # Protocol errors are the point of the fuzzing cases; keep stderr readable.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)

    async with serve(
        echo, "127.0.0.1", args.port,
        max_size=None,         # 9.x sends messages up to 16 MiB
        max_queue=None,        # never stop reading mid-message
        ping_interval=None,    # no keepalive pings the cases did not ask for
        close_timeout=5,
    ) as server:
        peerproc.announce(args.ready_file, str(server.sockets[0].getsockname()[1]))
        peerproc.watch_parent(args.parent)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
