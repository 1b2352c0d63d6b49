#!/usr/bin/env python3
"""A center node's local pod server for Switchyard's center-node tests (stdlib only).

Usage: podserver.py --name NAME [--ready-file PATH] [--parent PID]

One ThreadingHTTPServer on a free loopback port (HTTP/1.1, keep-alive); once it
listens, the port is written to --ready-file (atomically, via rename) and to
stdout. It stands for the data-pod server a center serves its own pods from, so
every answer says who answered and what the gateway told it:

  any request      JSON {"server": NAME, "method", "path", "hop", "cluster",
                   "received", "sha256"}: `hop` and `cluster` are the request's
                   X-Switchyard-Hop / X-Switchyard-Cluster (all values joined
                   with ", ", null when absent); a body (Content-Length or
                   chunked) is read in blocks and only counted and hashed,
                   never held whole; ?mbps=R reads it at about R MiB/s (a slow
                   consumer: the gateways in front must hold back, not buffer).
                   Header X-Pod-Server: NAME on every answer.
  GET /<pod>/slow?seconds=S&size=N
                   N bytes (Content-Length) written in 20 steps over S
                   seconds: an in-flight download
  GET /<pod>/-/terminal with a WebSocket upgrade
                   an echo terminal (the RFC 6455 handshake by hand): a text
                   message T is answered "NAME: T"; the text "__info__" with
                   the JSON above (of the upgrade request); binary messages
                   come back as is; pings are ponged; a close is answered
  GET /-/stats     (asked directly, not through a gateway) JSON: total
                   (requests seen, this one excluded), pods ({first path
                   segment: count}), slow_active, slow_started,
                   terminals_open, terminals_opened

It judges nothing; the Swift tests assert on what it reports.
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import base64
import hashlib
import json
import socket
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import peerproc

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
BLOCK = 64 * 1024
SLOW_BLOCK = bytes((i * 131 + 17) & 0xFF for i in range(BLOCK))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.pods = {}
        self.slow_active = 0
        self.slow_started = 0
        self.terminals_open = 0
        self.terminals_opened = 0

    def request(self, path):
        segment = path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
        with self.lock:
            self.total += 1
            self.pods[segment] = self.pods.get(segment, 0) + 1

    def add(self, field, n):
        with self.lock:
            setattr(self, field, getattr(self, field) + n)

    def snapshot(self):
        with self.lock:
            return {"total": self.total, "pods": dict(self.pods), "slow_active": self.slow_active,
                    "slow_started": self.slow_started, "terminals_open": self.terminals_open,
                    "terminals_opened": self.terminals_opened}


STATS = Stats()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; BaseHTTPRequestHandler answers Expect: 100-continue
    server_version = "podserver"
    name = "?"

    def log_message(self, *args):
        pass  # quiet: stderr is for real failures

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- reading -------------------------------------------------------------

    def header_values(self, name):
        values = self.headers.get_all(name) or []
        return ", ".join(v.strip() for v in values) if values else None

    def read_body(self, mbps=0.0):
        """Reads the request body in blocks (at about `mbps` MiB/s when > 0); returns (bytes
        received, sha256 hex)."""
        digest = hashlib.sha256()
        received = 0
        started = time.monotonic()

        def pace():
            if mbps > 0:
                due = started + received / (mbps * 1024 * 1024)
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                left = size
                while left > 0:
                    data = self.rfile.read(min(left, BLOCK))
                    if not data:
                        raise ConnectionError("eof in chunk")
                    digest.update(data)
                    received += len(data)
                    left -= len(data)
                    pace()
                self.rfile.readline(3)  # CRLF after the chunk
        else:
            left = int(self.headers.get("Content-Length") or "0")
            while left > 0:
                data = self.rfile.read(min(left, BLOCK))
                if not data:
                    raise ConnectionError("eof in body")
                digest.update(data)
                received += len(data)
                left -= len(data)
                pace()
        return received, digest.hexdigest()

    # -- answering -----------------------------------------------------------

    def seen(self, received=0, sha=None):
        return {"server": self.name, "method": self.command, "path": self.path,
                "hop": self.header_values("X-Switchyard-Hop"),
                "cluster": self.header_values("X-Switchyard-Cluster"),
                "received": received, "sha256": sha or hashlib.sha256(b"").hexdigest()}

    def send_json(self, obj, status=200):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pod-Server", self.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def handle_any(self):
        split = urllib.parse.urlsplit(self.path)
        if split.path == "/-/stats":
            self.read_body()
            self.send_json(STATS.snapshot())
            return
        STATS.request(self.path)
        if split.path.endswith("/-/terminal") and "websocket" in (self.headers.get("Upgrade") or "").lower():
            self.terminal()
            return
        if self.command == "GET" and split.path.endswith("/slow"):
            self.read_body()
            query = urllib.parse.parse_qs(split.query)
            self.slow(float(query.get("seconds", ["1"])[0]), int(query.get("size", ["1048576"])[0]))
            return
        query = urllib.parse.parse_qs(split.query)
        received, sha = self.read_body(float(query.get("mbps", ["0"])[0]))
        self.send_json(self.seen(received, sha))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def slow(self, seconds, size):
        STATS.add("slow_active", 1)
        STATS.add("slow_started", 1)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("X-Pod-Server", self.name)
            self.end_headers()
            self.wfile.flush()
            steps = 20
            left = size
            for i in range(steps):
                take = left if i == steps - 1 else min(left, size // steps)
                while take > 0:
                    n = min(take, BLOCK)
                    self.wfile.write(SLOW_BLOCK[:n])
                    take -= n
                    left -= n
                self.wfile.flush()
                if i < steps - 1:
                    time.sleep(seconds / steps)
        finally:
            STATS.add("slow_active", -1)

    # -- the WebSocket terminal ----------------------------------------------

    def terminal(self):
        info = self.seen()
        key = self.headers.get("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\nX-Pod-Server: %s\r\n\r\n" % (accept, self.name)).encode())
        self.wfile.flush()
        self.close_connection = True
        STATS.add("terminals_open", 1)
        STATS.add("terminals_opened", 1)
        try:
            while True:
                frame = self.read_frame()
                if frame is None:
                    return
                opcode, payload = frame
                if opcode == 0x1:
                    text = payload.decode("utf-8", "replace")
                    reply = json.dumps(info) if text == "__info__" else "%s: %s" % (self.name, text)
                    self.send_frame(0x1, reply.encode())
                elif opcode == 0x2:
                    self.send_frame(0x2, payload)
                elif opcode == 0x9:
                    self.send_frame(0xA, payload)
                elif opcode == 0x8:
                    self.send_frame(0x8, payload[:2])
                    return
        except (OSError, ValueError):
            pass
        finally:
            STATS.add("terminals_open", -1)

    def read_exact(self, n):
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            return None
        return data

    def read_frame(self):
        """One whole message (continuations joined); None on EOF."""
        message, first = b"", None
        while True:
            head = self.read_exact(2)
            if head is None:
                return None
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            masked, length = head[1] & 0x80, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.read_exact(2) or b"\0\0")[0]
            elif length == 127:
                length = struct.unpack("!Q", self.read_exact(8) or b"\0" * 8)[0]
            mask = self.read_exact(4) if masked else b"\0\0\0\0"
            payload = self.read_exact(length) if length else b""
            if mask is None or payload is None:
                return None
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode >= 0x8:  # control frames stand alone
                return opcode, payload
            if first is None:
                first = opcode
            message += payload
            if fin:
                return first, message

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # resets are expected when a test ends early or a center is killed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    peerproc.add_arguments(ap)
    args = ap.parse_args()

    handler = type("NamedHandler", (Handler,), {"name": args.name})
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    peerproc.announce(args.ready_file, str(server.server_address[1]))
    peerproc.watch_parent(args.parent)
    peerproc.wait_forever()


if __name__ == "__main__":
    main()
