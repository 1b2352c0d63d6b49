#!/usr/bin/env python3
"""TLS client scenarios for Switchyard's TLS listener tests.

Usage: tlsclient.py SCENARIO [options]

Prints JSON on stdout, one object per line, and judges nothing itself beyond
recording facts; the Swift tests assert on them. An exception becomes
{"error": "..."} (with whatever was recorded so far) and exit status 0.

Scenarios:
  hold  --port P --name N --cafile F --go PREFIX [--rounds K]
        one TLS connection (SNI N, verified against F for N) kept open: a
        keep-alive GET /echo at once, printed as {"round": 0, ...}; then for
        each round i in 1..K waits for the file PREFIX.i to exist (30 s at
        most) and sends one more GET /echo on the same connection, printed as
        {"round": i, ...}. Each line carries the certificate of the connection
        (subject OU), the status, X-Forwarded-Proto the upstream saw and the
        local port (the same for every round: one TCP connection).
  wss   --url U --name N --cafile F [--sizes N,N,...] [--code C] [--reason R]
        the `websockets` library over TLS (server_hostname N): text and binary
        messages of each size echoed; a closing handshake started by the client
        with code C and reason R, then one started by the server (wspeer.py's
        __close__) with code C+1; what each side received (the server's record
        is asked for over a further connection with __closes__).
  closing --port P --name N --cafile F
        requests after which the gateway ends the connection (Connection:
        close, HTTP/1.0, a malformed head), each on its own TLS connection
        read to its end: the status, the bytes, and how the stream ended:
        "close_notify" (RFC 8446 6.1), "unexpected_eof" (TCP FIN without it)
        or the error.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import ssl
import sys
import time
import traceback

TIMEOUT = 20


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def sha(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def subject_ou(cert):
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "organizationalUnitName":
                return value
    return None


# -- hold ---------------------------------------------------------------------


class Conn:
    """A blocking TLS socket with a minimal HTTP/1.1 response reader
    (Content-Length bodies only: /echo always sends one)."""

    def __init__(self, port, name, cafile):
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock = context(cafile).wrap_socket(raw, server_hostname=name)
        self.buf = b""

    def read_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the gateway (%d bytes pending)" % len(self.buf))
        self.buf += data

    def request(self, path, name):
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, name)).encode())
        while b"\r\n\r\n" not in self.buf:
            self.read_more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [line.split(":", 1) for line in lines[1:]]
        headers = [[k.strip(), v.strip()] for k, v in headers]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        while len(self.buf) < length:
            self.read_more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def hold(args, out):
    conn = Conn(args.port, args.name, args.cafile)
    cert = conn.sock.getpeercert()
    local_port = conn.sock.getsockname()[1]
    for i in range(args.rounds + 1):
        if i > 0:
            go = "%s.%d" % (args.go, i)
            deadline = time.monotonic() + 30
            while not os.path.exists(go):
                if time.monotonic() > deadline:
                    raise TimeoutError("no %s within 30 s" % go)
                time.sleep(0.02)
        status, headers, body = conn.request("/echo", args.name)
        seen = json.loads(body)
        proto = [v for k, v in seen.get("headers", []) if k.lower() == "x-forwarded-proto"]
        emit({"round": i, "status": status, "ou": subject_ou(cert), "version": conn.sock.version(),
              "local_port": local_port, "forwarded_proto": proto})
    conn.sock.close()
    out["done"] = True


# -- wss ----------------------------------------------------------------------


def frame_info(frame):
    return None if frame is None else {"code": frame.code, "reason": frame.reason}


async def wss(args, out):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    def opts():
        return dict(ssl=context(args.cafile), server_hostname=args.name, proxy=None, compression=None,
                    max_size=None, ping_interval=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT)

    async def recv(ws):
        return await asyncio.wait_for(ws.recv(), TIMEOUT)

    sizes = [int(s) for s in args.sizes.split(",")]
    out["echoes"] = []
    tag = "t%d-%d" % (os.getpid(), time.monotonic_ns())
    async with connect(args.url + "?tag=" + tag + "-c", **opts()) as ws:
        out["response_status"] = ws.response.status_code
        out["tls_version"] = ws.transport.get_extra_info("ssl_object").version()
        for i, n in enumerate(sizes):
            for kind in ("text", "binary"):
                data = random.Random(i).randbytes(n)
                sent = data.hex()[:n] if kind == "text" else data
                await ws.send(sent)
                got = await recv(ws)
                out["echoes"].append({
                    "kind": kind, "size": n, "sent_sha256": sha(sent), "received_sha256": sha(got),
                    "received_kind": "text" if isinstance(got, str) else "binary"})
        await ws.close(args.code, args.reason)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        out["client_close"] = {"rcvd": frame_info(ws.protocol.close_rcvd),
                               "sent": frame_info(ws.protocol.close_sent)}
    async with connect(args.url + "?tag=" + tag + "-s", **opts()) as ws:
        await ws.send("__close__ %d %s" % (args.code + 1, args.reason))
        try:
            await recv(ws)
            out["unexpected"] = "a message instead of the close"
        except ConnectionClosed:
            pass
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        out["server_close"] = {"rcvd": frame_info(ws.protocol.close_rcvd),
                               "sent": frame_info(ws.protocol.close_sent)}
    async with connect(args.url, **opts()) as ws:
        await ws.send("__closes__ " + tag + "-c")
        out["upstream_client_close"] = json.loads(await recv(ws))
        await ws.send("__closes__ " + tag + "-s")
        out["upstream_server_close"] = json.loads(await recv(ws))


# -- closing ------------------------------------------------------------------

CLOSING = [
    ("connection_close", "GET /echo HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"),
    ("http10", "GET /echo HTTP/1.0\r\nHost: {name}\r\n\r\n"),
    ("malformed", "GET /echo HTTP/1.1\r\nHost: {name}\r\nNo colon here\r\n\r\n"),
]


def closing(args, out):
    for label, request in CLOSING:
        raw = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
        # suppress_ragged_eofs=False: a FIN without close_notify is an error, not an EOF.
        sock = context(args.cafile).wrap_socket(raw, server_hostname=args.name, suppress_ragged_eofs=False)
        sock.sendall(request.format(name=args.name).encode())
        data = b""
        record = {}
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    record["eof"] = "close_notify"
                    break
                data += chunk
        except ssl.SSLEOFError:
            record["eof"] = "unexpected_eof"
        except (OSError, ssl.SSLError) as e:
            record["eof"] = "%s: %s" % (type(e).__name__, e)
        sock.close()
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        record["status"] = int(line.split(" ")[1]) if line.startswith("HTTP/") else None
        record["bytes"] = len(data)
        out[label] = record


SCENARIOS = {"hold": hold, "wss": wss, "closing": closing}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int)
    ap.add_argument("--name")
    ap.add_argument("--cafile")
    ap.add_argument("--go")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--url")
    ap.add_argument("--sizes", default="0,125,65536,4194304")
    ap.add_argument("--code", type=int, default=4000)
    ap.add_argument("--reason", default="bye")
    args = ap.parse_args()
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
    emit(out)


if __name__ == "__main__":
    main()
