#!/usr/bin/env python3
"""WebSocket upstream peer for Switchyard's end-to-end tests.

Usage: wspeer.py [--ws N] [--raw N] [--ready-file PATH] [--parent PID]

Runs N WebSocket servers built on the `websockets` library (asyncio) and N
"raw" servers that speak HTTP/1.1 and the RFC 6455 handshake by hand, so a
test can control every byte around the switch. Every port picks a free one;
once all listen, {"ws": [ports], "raw": [ports]} is written to --ready-file
(atomically, via rename) and to stdout.

WebSocket servers (any path):
  - a request without `Upgrade` is answered 200 with JSON {port, path}
    (plain HTTP to the same node, e.g. to learn where a user is placed), or
    for /__stats__ with the JSON of the __stats__ control below;
  - /reject/<N> answers an upgrade request with status N (websockets closes
    the connection afterwards, as the library does for every rejection);
  - otherwise the handshake completes; the subprotocol `vite-hmr` is chosen
    when the client offers it (no subprotocol otherwise). Messages are echoed
    with their type, except text messages starting with "__" (controls):
      __info__             JSON: port, path, request headers ([name, value]
                           pairs in order), subprotocol, conn (per connection)
      __ping__ PAYLOAD     the server pings the client and answers
                           "__pong__ PAYLOAD" once the matching pong arrived
      __close__ CODE WHY   the server starts the closing handshake
      __closes__ TAG       JSON of how the connection opened with ?tag=TAG
                           ended (close frames received and sent); waits up
                           to 10 s for it to end
      __stats__            JSON: active, peak (most open at once), opened,
                           paths (every request path seen, with its port)

Raw servers (keep-alive HTTP/1.1; the head parser trusts the gateway):
  /raw/http          JSON: method, target, headers
  /raw/status/N      answers N with a JSON body (what Upgrade/Connection said),
                     whether or not the request asked for an upgrade
  /raw/report?tag=T  JSON recorded by a finished half-close tunnel (waits up
                     to 10 s for it)
  /raw/delay101?ms=M&expect=N
                     holds the 101 for M ms and counts any byte that arrives
                     meanwhile ("early"); after the 101 reads until N bytes
                     came in total (or EOF), answers one JSON line {early,
                     after, sha256} and closes
  /raw/halfclose?side=client&tail=K
                     after the 101 reads until EOF, then answers a JSON line
                     {len, sha256} and K deterministic bytes, then FIN
  /raw/halfclose?side=upstream&size=S&tag=T
                     after the 101 sends S deterministic bytes and FIN at
                     once, then keeps reading until EOF and records {len,
                     sha256, eof} under T (see /raw/report)
The 101 paths answer 426 (keep-alive, JSON of what was seen) when the request
is not a WebSocket upgrade, so a gateway that drops Upgrade shows up as such.
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import asyncio
import base64
import hashlib
import json
import random
import select
import socket
import socketserver
import threading
import time
import urllib.parse

import peerproc

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def pattern(n, seed=7):
    """n deterministic bytes that do not repeat in any short period."""
    return random.Random(seed).randbytes(n)


# -- shared state ------------------------------------------------------------


class Records:
    """Tag -> JSON record, with waiting readers (tunnels finish on other threads)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = {}

    def put(self, tag, record):
        with self.cond:
            self.items[tag] = record
            self.cond.notify_all()

    def wait(self, tag, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while tag not in self.items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.items[tag]


CLOSES = Records()    # WebSocket side: how tagged connections ended
REPORTS = Records()   # raw side: what half-closed tunnels received


class WSStats:
    def __init__(self):
        self.active = 0
        self.peak = 0
        self.opened = 0
        self.paths = []  # [port, path] of every request, rejected or not


STATS = WSStats()


# -- WebSocket servers (websockets library) ----------------------------------


def frame_info(frame):
    return None if frame is None else {"code": frame.code, "reason": frame.reason}


async def control(ws, port, conn_id, text):
    verb, _, arg = text.partition(" ")
    if verb == "__info__":
        await ws.send(json.dumps({
            "port": port, "path": ws.request.path, "conn": conn_id,
            "headers": [[k, v] for k, v in ws.request.headers.raw_items()],
            "subprotocol": ws.subprotocol,
        }))
    elif verb == "__ping__":
        waiter = await ws.ping(arg.encode())
        await asyncio.wait_for(waiter, 10)
        await ws.send("__pong__ " + arg)
    elif verb == "__close__":
        code, _, reason = arg.partition(" ")
        await ws.close(int(code), reason)
    elif verb == "__closes__":
        record = await asyncio.to_thread(CLOSES.wait, arg)
        await ws.send(json.dumps(record))
    elif verb == "__stats__":
        await ws.send(json.dumps({"active": STATS.active, "peak": STATS.peak,
                                  "opened": STATS.opened, "paths": STATS.paths}))
    else:
        await ws.send(text)  # not a control after all: echo


def make_handler(port):
    counter = [0]

    async def handler(ws):
        counter[0] += 1
        conn_id = counter[0]
        STATS.active += 1
        STATS.opened += 1
        STATS.peak = max(STATS.peak, STATS.active)
        tag = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query).get("tag", [None])[0]
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("__"):
                    await control(ws, port, conn_id, message)
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            STATS.active -= 1
            if tag is not None:
                # The close frames are known as soon as they were parsed; waiting
                # for the TCP close as well would tie the record to the client.
                CLOSES.put(tag, {"rcvd": frame_info(ws.protocol.close_rcvd),
                                 "sent": frame_info(ws.protocol.close_sent),
                                 "rcvd_then_sent": ws.protocol.close_rcvd_then_sent})

    return handler


def make_process_request(port):
    def process_request(connection, request):
        STATS.paths.append([port, request.path])
        path = urllib.parse.urlsplit(request.path).path
        if "Upgrade" not in request.headers:
            if path == "/__stats__":
                body = {"active": STATS.active, "peak": STATS.peak,
                        "opened": STATS.opened, "paths": STATS.paths}
            else:
                body = {"port": port, "path": request.path}
            response = connection.respond(200, json.dumps(body) + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        if path.startswith("/reject/"):
            code = int(path[len("/reject/"):])
            return connection.respond(code, "rejected with %d\n" % code)
        return None

    return process_request


def select_subprotocol(connection, offered):
    return "vite-hmr" if "vite-hmr" in offered else None


async def run_ws(sockets, started):
    servers = []
    for sock in sockets:
        port = sock.getsockname()[1]
        server = await serve(make_handler(port), sock=sock,
                             process_request=make_process_request(port),
                             select_subprotocol=select_subprotocol,
                             compression=None, max_size=None,
                             ping_interval=None, close_timeout=5)
        servers.append(server)
    started.set()
    await asyncio.Event().wait()


# -- raw servers (the handshake by hand) -------------------------------------


class RawRequest:
    def __init__(self, head):
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = lines[0].split(" ", 2)
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name, value.strip(" \t")))
        split = urllib.parse.urlsplit(self.target)
        self.path = split.path
        self.query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query).items()}

    def get(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def is_websocket_upgrade(self):
        tokens = [t.strip().lower() for t in (self.get("connection") or "").split(",")]
        return ("upgrade" in tokens and "websocket" in (self.get("upgrade") or "").lower()
                and self.get("sec-websocket-key") is not None)


class RawHandler(socketserver.BaseRequestHandler):
    def setup(self):
        self.sock = self.request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(15)
        self.buf = b""

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return RawRequest(head)

    def skip_body(self, req):
        left = int(req.get("content-length") or "0")
        while left > 0:
            if not self.buf:
                self.buf = self.sock.recv(65536)
                if not self.buf:
                    raise ConnectionError("eof in body")
            take = min(left, len(self.buf))
            self.buf = self.buf[take:]
            left -= take

    def send_json(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.sock.sendall(b"HTTP/1.1 %d Status\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % (status, len(body)) + body)

    def handle(self):
        try:
            while True:
                req = self.read_head()
                if req is None:
                    return
                self.skip_body(req)
                if not self.route(req):
                    return
        except (OSError, ValueError):
            pass

    def route(self, req):
        """Answers one request; False when the connection is done."""
        seen = {"method": req.method, "target": req.target,
                "headers": [[k, v] for k, v in req.headers]}
        if req.path == "/raw/http":
            self.send_json(200, seen)
        elif req.path.startswith("/raw/status/"):
            code = int(req.path[len("/raw/status/"):])
            self.send_json(code, {"status": code, "upgrade": req.get("upgrade"),
                                  "connection": req.get("connection")})
        elif req.path == "/raw/report":
            self.send_json(200, REPORTS.wait(req.query.get("tag", "")))
        elif req.path in ("/raw/delay101", "/raw/halfclose"):
            if not req.is_websocket_upgrade():
                self.send_json(426, seen)
                return True
            if req.path == "/raw/delay101":
                self.delay101(req)
            else:
                self.halfclose(req)
            return False
        else:
            self.send_json(404, seen)
        return True

    def switch(self, req):
        self.sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                           % accept_key(req.get("sec-websocket-key"))).encode())

    def read_until_eof(self, limit=None):
        """Tunnel bytes until EOF (or `limit` bytes); returns (data, saw_eof)."""
        data, self.buf = self.buf, b""
        while limit is None or len(data) < limit:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return data, False
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def delay101(self, req):
        early = self.buf  # bytes that came with the head already count
        self.buf = b""
        deadline = time.monotonic() + int(req.query.get("ms", "500")) / 1000
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.sock], [], [], left)
            if readable:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                early += chunk
        self.switch(req)
        expect = int(req.query.get("expect", "0"))
        after, _ = self.read_until_eof(limit=max(0, expect - len(early)))
        line = {"early": len(early), "after": len(after),
                "sha256": hashlib.sha256(early + after).hexdigest()}
        self.sock.sendall((json.dumps(line) + "\n").encode())
        self.sock.shutdown(socket.SHUT_WR)
        self.read_until_eof()

    def halfclose(self, req):
        self.switch(req)
        if req.query.get("side") == "client":
            data, eof = self.read_until_eof()
            line = {"len": len(data), "sha256": hashlib.sha256(data).hexdigest(), "eof": eof}
            self.sock.sendall((json.dumps(line) + "\n").encode()
                              + pattern(int(req.query.get("tail", "0")), seed=11))
            self.sock.shutdown(socket.SHUT_WR)
            self.read_until_eof()
        else:
            self.sock.sendall(pattern(int(req.query.get("size", "0")), seed=13))
            self.sock.shutdown(socket.SHUT_WR)
            data, eof = self.read_until_eof()
            REPORTS.put(req.query.get("tag", ""), {"len": len(data), "eof": eof,
                                                   "sha256": hashlib.sha256(data).hexdigest()})


class RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # resets are expected when a test ends early


# -- process ------------------------------------------------------------------


def listening_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)  # 1,000 connections may arrive at once
    return sock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws", type=int, default=1)
    ap.add_argument("--raw", type=int, default=1)
    peerproc.add_arguments(ap)
    args = ap.parse_args()

    ws_sockets = [listening_socket() for _ in range(args.ws)]
    raw_servers = [RawServer(("127.0.0.1", 0), RawHandler) for _ in range(args.raw)]
    for s in raw_servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    started = threading.Event()
    threading.Thread(target=lambda: asyncio.run(run_ws(ws_sockets, started)), daemon=True).start()
    if not started.wait(15):
        raise SystemExit("websockets servers did not start")

    peerproc.announce(args.ready_file, json.dumps({"ws": [s.getsockname()[1] for s in ws_sockets],
                                                   "raw": [s.server_address[1] for s in raw_servers]}))
    peerproc.watch_parent(args.parent)
    peerproc.wait_forever()


if __name__ == "__main__":
    main()
