#!/usr/bin/env python3
"""WebSocket scenario client for Switchyard's end-to-end tests.

Usage: wsclient.py SCENARIO [options]

Runs one scenario against a WebSocket server (through the gateway, or straight
at wspeer.py) and prints one JSON object on stdout: what was sent, what came
back, and the close codes, headers and digests seen. It judges nothing itself
beyond recording facts; the Swift tests assert on them. An exception becomes
{"error": "..."} (with whatever was recorded so far) and exit status 0, so a
test can show what failed; only a usage error exits non-zero.

Scenarios (the `websockets` library unless noted "raw"):
  messages   --url U [--sizes N,N,...]
             text and binary messages of each size echoed, one fragmented
             binary message, a client ping and a server ping
  handshake  --url U [--url U ...] [--cookie C ...] [--origin O] [--subprotocol P]
             per URL (cookie paired by position, "" for none): the 101's
             status and headers, the negotiated subprotocol, the server's
             __info__ (request headers it saw, port, path), one echo
  close      --url U --by server|client --code N --reason R
             the closing handshake started by one side; what each side
             received, from the client and from the server (asked on a
             second connection)
  reject     --url U [--cookie C]
             an upgrade the server (or the gateway) refuses: status, headers,
             body of that response
  concurrent --url U --count N
             N connections open at once, each echoing one message; then the
             server's stats (peak of open connections)
  halfclose  (raw) --port P --path PATH --side client|upstream [--size N] [--tail K]
             a FIN from one side of the tunnel, data still flowing the other way
  early      (raw) --port P --path PATH --early N
             the upgrade request and N bytes in one write, before any 101
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import sys
import time
import traceback

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
TIMEOUT = 20  # seconds for any single step; the Swift side has its own bound


def sha(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


def text_of_size(n, seed):
    """Valid UTF-8 text of exactly n bytes, multi-byte characters included."""
    ascii_part = base64.b64encode(pattern(n, seed)).decode()
    if n >= 9:
        return "é漢🙂" + ascii_part[:n - 9]  # 2 + 3 + 4 bytes
    return ascii_part[:n]


def options(**extra):
    """Connection options shared by every scenario: no proxy from the
    environment, no compression (the bytes on the wire are the message), no
    size limit, no background pings."""
    base = dict(proxy=None, compression=None, max_size=None, ping_interval=None,
                open_timeout=TIMEOUT, close_timeout=TIMEOUT)
    base.update(extra)
    return base


def response_info(ws):
    return {"status": ws.response.status_code,
            "headers": [[k, v] for k, v in ws.response.headers.raw_items()]}


def frame_info(frame):
    return None if frame is None else {"code": frame.code, "reason": frame.reason}


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


# -- websockets scenarios ------------------------------------------------------


async def messages(args, out):
    sizes = [int(s) for s in args.sizes.split(",")]
    out["echoes"] = []
    async with connect(args.url, **options()) as ws:
        for i, n in enumerate(sizes):
            for kind in ("text", "binary"):
                sent = text_of_size(n, i) if kind == "text" else pattern(n, 1000 + i)
                await ws.send(sent)
                got = await recv(ws)
                out["echoes"].append({
                    "kind": kind, "size": n,
                    "sent_sha256": sha(sent), "received_sha256": sha(got),
                    "received_kind": "text" if isinstance(got, str) else "binary",
                    "received_size": len(got.encode() if isinstance(got, str) else got)})
        # One message in 48 fragments (RFC 6455 5.4): the server sees one message.
        whole = pattern(3 << 20, 77)
        await ws.send([whole[i:i + 65536] for i in range(0, len(whole), 65536)])
        got = await recv(ws)
        out["fragmented"] = {"sent_sha256": sha(whole), "received_sha256": sha(got),
                             "received_size": len(got)}
        # A client ping: the pong with the same payload must come back.
        waiter = await ws.ping(b"client-ping-1")
        await asyncio.wait_for(waiter, TIMEOUT)
        out["client_ping"] = "pong"
        # A server ping: websockets answers it for us; the server reports it.
        await ws.send("__ping__ server-ping-1")
        out["server_ping"] = await recv(ws)


async def handshake(args, out):
    out["connections"] = []
    cookies = args.cookie or []
    for i, url in enumerate(args.url):
        cookie = cookies[i] if i < len(cookies) else ""
        record = {"url": url}
        out["connections"].append(record)
        extra = {}
        if cookie:
            extra["additional_headers"] = {"Cookie": cookie}
        if args.origin:
            extra["origin"] = args.origin
        if args.subprotocol:
            extra["subprotocols"] = [args.subprotocol]
        async with connect(url, **options(**extra)) as ws:
            record["response"] = response_info(ws)
            record["subprotocol"] = ws.subprotocol
            await ws.send("__info__")
            record["server"] = json.loads(await recv(ws))
            await ws.send("hello " + url)
            record["echo"] = await recv(ws)


async def close(args, out):
    tag = "t%d-%d" % (os.getpid(), time.monotonic_ns())
    url = args.url + ("&" if "?" in args.url else "?") + "tag=" + tag
    async with connect(url, **options()) as ws:
        await ws.send("before close")
        out["echo"] = await recv(ws)
        if args.by == "server":
            await ws.send("__close__ %d %s" % (args.code, args.reason))
            try:
                await recv(ws)
                out["unexpected"] = "a message instead of the close"
            except ConnectionClosed:
                pass
        else:
            await ws.close(args.code, args.reason)
        # wait_closed returns once the TCP connection is gone: the server's FIN
        # (websockets servers half-close right after the closing handshake).
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        out["client"] = {"rcvd": frame_info(ws.protocol.close_rcvd),
                         "sent": frame_info(ws.protocol.close_sent),
                         "rcvd_then_sent": ws.protocol.close_rcvd_then_sent}
    async with connect(args.url, **options()) as ws:
        await ws.send("__closes__ " + tag)
        out["server"] = json.loads(await recv(ws))


async def reject(args, out):
    extra = {"additional_headers": {"Cookie": args.cookie[0]}} if args.cookie else {}
    try:
        async with connect(args.url, **options(**extra)) as ws:
            out["status"] = ws.response.status_code  # 101: not rejected at all
            out["headers"] = [[k, v] for k, v in ws.response.headers.raw_items()]
    except InvalidStatus as e:
        out["status"] = e.response.status_code
        out["headers"] = [[k, v] for k, v in e.response.headers.raw_items()]
        out["body"] = e.response.body.decode("utf-8", "replace")


async def concurrent(args, out):
    n = args.count
    gate = asyncio.Semaphore(200)  # connects in flight: stay within listen backlogs
    all_open = asyncio.Event()
    settled = []
    failures = []

    def settle():
        settled.append(1)
        if len(settled) == n:
            all_open.set()

    async def one(i):
        try:
            async with gate:
                ws = await connect("%s?c=%d" % (args.url, i), **options())
        except Exception as e:  # noqa: BLE001 - each failure is a fact to report
            failures.append("connect %d: %s: %s" % (i, type(e).__name__, e))
            settle()
            return None, False
        settle()
        # Nothing is sent before every connection is open: they overlap for sure.
        await asyncio.wait_for(all_open.wait(), 60)
        message = "conn %d %s" % (i, "x" * (i % 200))
        await ws.send(message)
        return ws, (await recv(ws)) == message

    results = await asyncio.gather(*(one(i) for i in range(n)))
    opened = [ws for ws, _ in results if ws is not None]
    out["opened"] = len(opened)
    out["echoed"] = sum(1 for _, ok in results if ok)
    out["failures"] = failures[:10]
    # Asked while all of them are still open.
    async with connect(args.url, **options()) as ws:
        await ws.send("__stats__")
        out["server_peak"] = json.loads(await recv(ws))["peak"]
    await asyncio.gather(*(ws.close() for ws in opened))


# -- raw scenarios --------------------------------------------------------------


class Tunnel:
    """A raw TCP connection that does the RFC 6455 handshake by hand."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.buf = b""

    def upgrade(self, path, after=b""):
        head = ("GET %s HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, self.key))
        self.sock.sendall(head.encode() + after)  # one write: head and early bytes together
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response head: %r" % self.buf[:300])
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = [[n, v.strip()] for n, _, v in (line.partition(":") for line in lines[1:])]
        accept = next((v for n, v in headers if n.lower() == "sec-websocket-accept"), None)
        expected = base64.b64encode(hashlib.sha1((self.key + WS_GUID).encode()).digest()).decode()
        return {"status": int(lines[0].split(" ")[1]), "headers": headers,
                "accept_ok": accept == expected}

    def read_until_eof(self):
        data, self.buf = self.buf, b""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return data, False
            except ConnectionResetError:
                return data, "reset"
            if not chunk:
                return data, True
            data += chunk

    def send_all(self, data):
        """Sends data; returns an error string instead of raising."""
        try:
            self.sock.sendall(data)
            return None
        except OSError as e:
            return "%s: %s" % (type(e).__name__, e)


def http_get(port, path):
    """One plain HTTP/1.1 GET with Connection: close; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: ws.test\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        plain = b""
        while body:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            plain, body = plain + body[:size], body[size + 2:]
        body = plain
    return int(head.split(b" ")[1]), body


def halfclose(args, out):
    t = Tunnel(args.port)
    if args.side == "client":
        # We send, then FIN; the upstream still answers after our FIN.
        out["handshake"] = t.upgrade("%s?side=client&tail=%d" % (args.path, args.tail))
        sent = pattern(args.size, 21)
        out["sent"] = {"len": len(sent), "sha256": sha(sent)}
        out["send_error"] = t.send_all(sent)
        t.sock.shutdown(socket.SHUT_WR)
        data, eof = t.read_until_eof()
        line, _, tail = data.partition(b"\n")
        out["upstream_report"] = json.loads(line) if line else None
        out["tail"] = {"len": len(tail), "sha256": sha(tail)}
        out["tail_expected_sha256"] = sha(pattern(args.tail, 11))
        out["eof"] = eof
    else:
        # The upstream sends, then FIN; we read to EOF and only then send.
        tag = "h%d-%d" % (os.getpid(), time.monotonic_ns())
        out["handshake"] = t.upgrade("%s?side=upstream&size=%d&tag=%s" % (args.path, args.size, tag))
        data, eof = t.read_until_eof()
        out["received"] = {"len": len(data), "sha256": sha(data)}
        out["expected_sha256"] = sha(pattern(args.size, 13))
        out["eof"] = eof
        sent = pattern(args.tail, 23)
        out["sent"] = {"len": len(sent), "sha256": sha(sent)}
        out["send_error"] = t.send_all(sent)
        t.sock.shutdown(socket.SHUT_WR)
        rest, closed = t.read_until_eof()
        out["after_fin"] = {"extra_bytes": len(rest), "closed": closed}
        status, body = http_get(args.port, "/raw/report?tag=" + tag)
        out["upstream_report"] = json.loads(body) if status == 200 else {"status": status}
    t.sock.close()


def early(args, out):
    t = Tunnel(args.port)
    sent = pattern(args.early, 31)
    out["sent"] = {"len": len(sent), "sha256": sha(sent)}
    out["handshake"] = t.upgrade("%s?ms=%d&expect=%d" % (args.path, args.delay_ms, len(sent)), after=sent)
    data, eof = t.read_until_eof()
    line = data.split(b"\n", 1)[0]
    out["upstream_report"] = json.loads(line) if line else None
    out["eof"] = eof
    t.sock.close()


# -- main ---------------------------------------------------------------------------


SCENARIOS = {"messages": messages, "handshake": handshake, "close": close,
             "reject": reject, "concurrent": concurrent,
             "halfclose": halfclose, "early": early}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--url", action="append")
    ap.add_argument("--cookie", action="append")
    ap.add_argument("--origin")
    ap.add_argument("--subprotocol")
    ap.add_argument("--sizes", default="0,1,125,126,65535,65536,1048576,16777216")
    ap.add_argument("--by", choices=["server", "client"], default="client")
    ap.add_argument("--code", type=int, default=1000)
    ap.add_argument("--reason", default="")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--port", type=int)
    ap.add_argument("--path")
    ap.add_argument("--side", choices=["client", "upstream"], default="client")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--tail", type=int, default=256 << 10)
    ap.add_argument("--early", type=int, default=4096)
    ap.add_argument("--delay-ms", type=int, default=400)
    args = ap.parse_args()
    if args.url and args.scenario != "handshake":
        args.url = args.url[0]

    out = {"scenario": args.scenario}
    fn = SCENARIOS[args.scenario]
    try:
        if asyncio.iscoroutinefunction(fn):
            asyncio.run(fn(args, out))
        else:
            fn(args, out)
    except Exception as e:  # noqa: BLE001 - reported, the test decides
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["traceback"] = traceback.format_exc()[-2000:]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
