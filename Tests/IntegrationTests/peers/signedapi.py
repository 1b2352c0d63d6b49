#!/usr/bin/env python3
"""A workspace node's API (:7001) that requires the gateway's signature
(docs/node-api-signature.md), checked the way the document tells a node to: the three
X-Switchyard-* fields present exactly once, the timestamp within 300 s, the nonce never seen
before, and HMAC-SHA-256(secret, "v1\\n" method "\\n" target "\\n" timestamp "\\n" nonce)
equal (constant time) to the signature. Stdlib only.

Usage: signedapi.py --secret-file F [--ready-file PATH] [--parent PID]

Any request: 200 {"verified": true, "method", "target", "timestamp", "nonce", "signature"} when
it verifies, else 401 {"error": why}."""
import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import hashlib
import hmac
import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler

import peerproc

SEEN = set()
LOCK = threading.Lock()
SECRET = b""


def verify(method, target, headers):
    """None when the request verifies, else the reason."""
    fields = {}
    for name in ("x-switchyard-timestamp", "x-switchyard-nonce", "x-switchyard-signature"):
        values = headers.get_all(name) or []
        if len(values) != 1:
            return "%s: %d copies" % (name, len(values))
        fields[name] = values[0]
    ts, nonce, sig = fields["x-switchyard-timestamp"], fields["x-switchyard-nonce"], fields["x-switchyard-signature"]
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        return "timestamp out of window"
    if not sig.startswith("v1="):
        return "unknown signature version"
    message = b"\n".join([b"v1", method.encode(), target.encode(), ts.encode(), nonce.encode()])
    want = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig[3:]):
        return "bad signature"
    with LOCK:
        if nonce in SEEN:
            return "replayed nonce"
        SEEN.add(nonce)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        why = verify(self.command, self.path, self.headers)
        if why:
            status, doc = 401, {"error": why}
        else:
            status, doc = 200, {"verified": True, "method": self.command, "target": self.path,
                                "timestamp": self.headers["x-switchyard-timestamp"],
                                "nonce": self.headers["x-switchyard-nonce"],
                                "signature": self.headers["x-switchyard-signature"]}
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global SECRET
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret-file", required=True)
    peerproc.add_arguments(ap)
    args = ap.parse_args()
    SECRET = open(args.secret_file, "rb").read().strip()
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    peerproc.watch_parent(args.parent)
    peerproc.announce(args.ready_file, str(server.server_address[1]))
    peerproc.wait_forever()


if __name__ == "__main__":
    main()
