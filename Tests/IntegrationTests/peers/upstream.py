#!/usr/bin/env python3
"""HTTP/1.1 upstream peer for Switchyard's end-to-end tests (stdlib only).

Usage: upstream.py [--ready-file PATH] [--parent PID] [--tls-cert PEM --tls-key PEM] PORT [PORT ...]

Each PORT (0 picks a free one) is an independent "upstream" with its own
connection counters. Once every socket listens, the actual ports are written,
space separated, to --ready-file (atomically, via rename) and to stdout.

The parser here is deliberately plain: it trusts what the gateway sends, since
the gateway is the thing under test, and it answers on the same connection
until the peer closes (keep-alive), so the tests can observe pooling.

Endpoints (query strings are ignored unless noted):
  /echo            JSON: method, target, version, headers (ordered [name, value]
                   pairs), body_length, body_sha256, port
  /upload          reads the body streamingly; JSON: size, sha256, port
  /bytes/N         N bytes of deterministic data with Content-Length, or chunked
                   with ?chunked=1; header X-Body-SHA256 carries the digest
  /slow?delay=S    sleeps S seconds, then answers JSON
  /silent          reads the request, never answers (holds the connection)
  /status/N        answers status N (204 without body; 304 with a
                   Content-Length but no body, as RFC 9110 15.4.5 allows)
  /hop             answers with hop-by-hop headers the gateway must strip
  /conn            JSON: conn_id (per TCP connection), requests (on it), port;
                   ?close=1 answers with Connection: close, ?close_after=S
                   hangs up the idle connection S seconds after answering
  /stats           JSON: connections (accepted on this port), port
  /bad/<kind>      a malformed response, then close: cl-te, two-cl,
                   status-line, garbage, chunk-size, obs-fold, nul-header, close
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import hashlib
import json
import socket
import socketserver
import sys
import ssl
import threading
import time
import urllib.parse

import peerproc

BLOCK = 64 * 1024
# Deterministic payload: a 64 KiB block repeated. Not compressible by accident
# of being all zeros, and cheap to regenerate on any side.
PATTERN = bytes(((i * 131) + 17 + (i >> 8)) & 0xFF for i in range(BLOCK))

_digest_cache = {}
_digest_lock = threading.Lock()


def pattern_digest(n):
    with _digest_lock:
        if n in _digest_cache:
            return _digest_cache[n]
    h = hashlib.sha256()
    left = n
    while left > 0:
        take = min(left, BLOCK)
        h.update(PATTERN[:take])
        left -= take
    d = h.hexdigest()
    with _digest_lock:
        _digest_cache[n] = d
    return d


class BadRequest(Exception):
    pass


class PortStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0

    def accept(self):
        with self.lock:
            self.connections += 1
            return self.connections


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), order kept

    def get(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def path(self):
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)

    def wants_close(self):
        tokens = ",".join(self.get_all("connection")).lower()
        tokens = [t.strip() for t in tokens.split(",")]
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.sock = self.request
        if self.server.tls is not None:
            # An origin that terminates TLS itself (edge passthrough tests): the handshake runs
            # on this connection's thread, never on the accepting one.
            self.sock.settimeout(10)
            self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb", buffering=BLOCK)
        self.port = self.server.server_address[1]
        self.conn_id = self.server.stats.accept()
        self.requests = 0
        self.method = "GET"

    def finish(self):
        try:
            self.rfile.close()
        except OSError:
            pass

    # -- reading -----------------------------------------------------------

    def read_line(self):
        line = self.rfile.readline(65537)
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise BadRequest("line too long or truncated")
        return line.rstrip(b"\r\n")

    def read_head(self):
        line = self.read_line()
        while line == b"":  # tolerate stray CRLF between requests
            line = self.read_line()
        if line is None:
            return None
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3:
            raise BadRequest("bad request line")
        headers = []
        while True:
            h = self.read_line()
            if h is None:
                raise BadRequest("eof in head")
            if h == b"":
                break
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest("bad header")
            headers.append((name, value.strip(" \t")))
        return Request(parts[0], parts[1], parts[2], headers)

    def body_chunks(self, req):
        """Yields the request body in pieces, whichever framing it uses."""
        te = ",".join(req.get_all("transfer-encoding")).lower()
        if te:
            if [t.strip() for t in te.split(",")][-1] != "chunked":
                raise BadRequest("unsupported transfer-encoding")
            while True:
                size_line = self.read_line()
                if size_line is None:
                    raise BadRequest("eof in chunk size")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers (reported by /echo)
                        t = self.read_line()
                        if t is None or t == b"":
                            return
                        name, _, value = t.decode("latin-1").partition(":")
                        self.__dict__.setdefault("trailers", []).append([name, value.strip(" \t")])
                left = size
                while left > 0:
                    data = self.rfile.read(min(left, BLOCK))
                    if not data:
                        raise BadRequest("eof in chunk")
                    left -= len(data)
                    yield data
                if self.read_line() != b"":
                    raise BadRequest("missing CRLF after chunk")
        cl = req.get("content-length")
        if cl is None:
            return
        left = int(cl)
        while left > 0:
            data = self.rfile.read(min(left, BLOCK))
            if not data:
                raise BadRequest("eof in body")
            left -= len(data)
            yield data

    def has_body(self, req):
        return req.get("transfer-encoding") is not None or int(req.get("content-length") or "0") > 0

    def consume_body(self, req):
        """Reads the whole body without keeping it; returns (size, sha256)."""
        # RFC 9110 10.1.1: answer 100 before reading a body the client holds back.
        if (req.get("expect") or "").lower() == "100-continue" and self.has_body(req):
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        h = hashlib.sha256()
        n = 0
        for piece in self.body_chunks(req):
            h.update(piece)
            n += len(piece)
        return n, h.hexdigest()

    # -- writing -----------------------------------------------------------

    def send(self, status, reason, headers, body=b"", close=False):
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        lines.append("X-Upstream-Port: %d" % self.port)
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if status not in (204, 304) and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
            lines.append("Content-Length: %d" % len(body))
        if close:
            lines.append("Connection: close")
        if self.method == "HEAD":
            body = b""  # RFC 9110 9.3.2: same head as GET, never a body
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def send_json(self, obj, status=200, reason="OK", close=False):
        body = (json.dumps(obj, sort_keys=True) + "\n").encode()
        self.send(status, reason, [("Content-Type", "application/json")], body, close)

    # -- dispatch ----------------------------------------------------------

    def handle(self):
        try:
            while True:
                req = self.read_head()
                if req is None:
                    return
                self.requests += 1
                self.method = req.method
                close = req.wants_close()
                if self.route(req, close) is False or close:
                    return
        except (BadRequest, ValueError):
            try:
                self.send(400, "Bad Request", [], b"bad request\n", close=True)
            except OSError:
                pass
        except OSError:
            pass

    def route(self, req, close):
        """Answers one request; returns False when the connection must end."""
        path = req.path
        if path == "/echo" or path.startswith("/echo/"):
            self.trailers = []
            size, digest = self.consume_body(req)
            self.send_json({
                "method": req.method, "target": req.target, "version": req.version,
                "headers": [[k, v] for k, v in req.headers],
                "body_length": size, "body_sha256": digest, "port": self.port, "trailers": self.trailers,
            }, close=close)
        elif path == "/upload":
            size, digest = self.consume_body(req)
            self.send_json({"size": size, "sha256": digest, "port": self.port}, close=close)
        elif path.startswith("/bytes/"):
            self.consume_body(req)
            self.send_bytes(req, int(path[len("/bytes/"):]), close)
        elif path == "/slow":
            self.consume_body(req)
            delay = float(req.query.get("delay", ["1"])[0])
            time.sleep(delay)
            self.send_json({"slept": delay, "port": self.port}, close=close)
        elif path == "/silent":
            self.consume_body(req)
            while self.rfile.read1(BLOCK):  # hold until the peer gives up
                pass
            return False
        elif path.startswith("/status/"):
            self.consume_body(req)
            code = int(path[len("/status/"):])
            if code == 204:
                self.send(204, "No Content", [], close=close)
            elif code == 304:
                self.send(304, "Not Modified", [("Content-Length", "42"), ("ETag", '"v1"')], close=close)
            else:
                self.send(code, "Status", [], b"status %d\n" % code, close=close)
        elif path == "/hop":
            self.consume_body(req)
            self.send(200, "OK", [
                ("Connection", "X-Hop-Secret, keep-alive"), ("X-Hop-Secret", "1"),
                ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                ("Upgrade", "example/1"), ("X-End-To-End", "kept"),
            ], b"hop\n", close=close)
        elif path == "/conn":
            self.consume_body(req)
            q = req.query
            close = close or q.get("close", ["0"])[0] == "1"
            self.send_json({"conn_id": self.conn_id, "requests": self.requests, "port": self.port}, close=close)
            if "close_after" in q:
                # Close the idle keep-alive connection later, without notice
                # (what an upstream's own idle timeout does to a pool).
                threading.Timer(float(q["close_after"][0]), self.hang_up).start()
            if close:
                return False
        elif path == "/stats":
            self.consume_body(req)
            self.send_json({"connections": self.server.stats.connections, "port": self.port}, close=close)
        elif path.startswith("/bad/"):
            self.consume_body(req)
            self.send_bad(path[len("/bad/"):])
            return False
        else:
            self.consume_body(req)
            self.send(404, "Not Found", [], b"no such endpoint\n", close=close)
        return True

    def hang_up(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_bytes(self, req, n, close):
        chunked = req.query.get("chunked", ["0"])[0] == "1"
        headers = [("Content-Type", "application/octet-stream"), ("X-Body-SHA256", pattern_digest(n))]
        headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(n)))
        self.send(200, "OK", headers, close=close)
        if req.method == "HEAD":
            return
        left = n
        while left > 0:
            take = min(left, BLOCK)
            if chunked:
                self.sock.sendall(b"%x\r\n" % take + PATTERN[:take] + b"\r\n")
            else:
                self.sock.sendall(PATTERN[:take])
            left -= take
        if chunked:
            self.sock.sendall(b"0\r\n\r\n")

    BAD = {
        "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
        "status-line": b"HTTP/1.1 abc Whatever\r\nContent-Length: 2\r\n\r\nok",
        "garbage": b"this is not http at all\r\n\r\n",
        "chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nxx\r\n0\r\n\r\n",
        "obs-fold": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Folded: a\r\n b\r\n\r\nok",
        "nul-header": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Nul: a\x00b\r\n\r\nok",
        "close": b"",
    }

    def send_bad(self, kind):
        self.sock.sendall(self.BAD.get(kind, b"HTTP/1.1 500 Unknown Bad Kind\r\n\r\n"))
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # Give the gateway time to read it all before the kernel could reset.
        self.sock.settimeout(2)
        try:
            while self.sock.recv(BLOCK):
                pass
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, port, tls=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.stats = PortStats()
        self.tls = tls

    def handle_error(self, request, client_address):
        pass  # connection resets are expected in these tests; stay quiet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ports", nargs="+", type=int)
    ap.add_argument("--tls-cert", help="serve TLS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="the key of --tls-cert")
    peerproc.add_arguments(ap)
    args = ap.parse_args()

    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        tls.set_alpn_protocols(["http/1.1"])
    servers = [Server(p, tls) for p in args.ports]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    peerproc.announce(args.ready_file, " ".join(str(s.server_address[1]) for s in servers))
    peerproc.watch_parent(args.parent)
    peerproc.wait_forever()


if __name__ == "__main__":
    main()
