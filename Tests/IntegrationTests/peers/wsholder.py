#!/usr/bin/env python3
"""Holds WebSocket connections open through the gateway while an admin test moves users.

Usage: wsholder.py --port P --users u1,u2 [--expect-close u1,...] --ready-file F
                   --stop-file S [--parent PID] [--timeout 60]

Per user: connects to ws://127.0.0.1:P/ws/<user>/hmr (the keyed route), asks the
wspeer.py upstream "__info__" for the port that serves it, and keeps the
connection open. Once all are open, {"user": port, ...} is written to
--ready-file (atomically, via rename). Then it waits for --stop-file (or the
timeout), waits up to 5 s more for every user in --expect-close to have been
closed by the gateway, reconnects each closed user once to learn its new port,
and asks every connection still open to echo a message. One JSON report goes to
stdout:

  {"users": {user: {"port", "closed", "code", "reason", "echo", "reconnect_port"}},
   "error": "..." (only when something broke)}

`code`/`reason` are those of the close frame the client received (null if none).
It judges nothing; the Swift tests assert on the report.
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import asyncio
import json
import os
import sys
import time
import traceback

import peerproc

from websockets.asyncio.client import connect

STEP = 10  # seconds for any single step


def options():
    # No proxy from the environment, no compression, no background pings.
    return dict(proxy=None, compression=None, max_size=None, ping_interval=None,
                open_timeout=STEP, close_timeout=STEP)


async def info_port(ws):
    await ws.send("__info__")
    return json.loads(await asyncio.wait_for(ws.recv(), STEP))["port"]


async def run(args, out):
    users = [u for u in args.users.split(",") if u]
    expect = [u for u in (args.expect_close or "").split(",") if u]
    url = "ws://127.0.0.1:%d/ws/%s/hmr"
    conns = {}
    for u in users:
        ws = await connect(url % (args.port, u), **options())
        conns[u] = ws
        out["users"][u] = {"port": await info_port(ws), "closed": False, "code": None,
                           "reason": None, "echo": None, "reconnect_port": None}
    ready = {u: out["users"][u]["port"] for u in users}
    # Not `announce`: stdout carries the report alone.
    peerproc.write_ready(args.ready_file, json.dumps(ready))

    deadline = time.monotonic() + args.timeout
    while not os.path.exists(args.stop_file) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    # The gateway's workers act on a move on their next loop turn: give them a moment.
    grace = time.monotonic() + 5
    for u in expect:
        left = grace - time.monotonic()
        if left > 0:
            try:
                await asyncio.wait_for(conns[u].wait_closed(), left)
            except asyncio.TimeoutError:
                pass

    for u, ws in conns.items():
        r = out["users"][u]
        frame = ws.protocol.close_rcvd
        if ws.protocol.state.name == "CLOSED" or frame is not None:
            r["closed"] = True
            r["code"] = None if frame is None else frame.code
            r["reason"] = None if frame is None else frame.reason
            again = await connect(url % (args.port, u), **options())
            r["reconnect_port"] = await info_port(again)
            await again.close()
        else:
            message = "echo-" + u
            await ws.send(message)
            r["echo"] = (await asyncio.wait_for(ws.recv(), STEP)) == message
            await ws.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--expect-close")
    peerproc.add_arguments(ap, ready_required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    peerproc.watch_parent(args.parent)
    out = {"users": {}}
    try:
        asyncio.run(run(args, out))
    except Exception as e:  # the report says what broke
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["trace"] = traceback.format_exc()[-2000:]
    print(json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
