#!/usr/bin/env python3
"""A stand-in for a workspace node's API (:7001) as the gateway's port lookup uses it.

GET /api/fun-ai/workspace/internal/nginx/port?userId=<id> with X-WS-Token answers 200 and
X-WS-Port: <the current container port>. Users named missing* get 404, users named hang* get
no answer at all, a wrong token gets 401. /_set_port?port=N changes the port; /_count returns
how many lookups were answered (tests check the gateway caches ports).
"""
import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import peerproc

state = {"port": 0, "count": 0, "token": ""}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers=(), body=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path == "/_set_port":
            with lock:
                state["port"] = int(q["port"][0])
            return self.reply(200, body=b"ok\n")
        if url.path == "/_count":
            with lock:
                return self.reply(200, body=str(state["count"]).encode())
        if url.path != "/api/fun-ai/workspace/internal/nginx/port":
            return self.reply(404, body=b"no such endpoint\n")
        if self.headers.get("X-WS-Token") != state["token"]:
            return self.reply(401, body=b"bad token\n")
        user = q.get("userId", [""])[0]
        if user.startswith("hang"):
            time.sleep(30)
            return
        if user.startswith("missing") or not user:
            return self.reply(404, body=b"no workspace\n")
        with lock:
            state["count"] += 1
            port = state["port"]
        self.reply(200, [("X-WS-Port", str(port))])


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--container-port", type=int, required=True)
    ap.add_argument("--token", required=True)
    peerproc.add_arguments(ap)
    a = ap.parse_args()
    state["port"], state["token"] = a.container_port, a.token
    srv = Server(("127.0.0.1", a.port), Handler)
    peerproc.watch_parent(a.parent)
    peerproc.announce(a.ready_file, str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
