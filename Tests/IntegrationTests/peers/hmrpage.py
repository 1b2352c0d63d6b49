#!/usr/bin/env python3
"""A dev-server stand-in for the browser tests (BrowserTests.swift): an HTML
page whose script opens a WebSocket with the subprotocol `vite-hmr`, the way
Vite's HMR client does, plus the WebSocket endpoint it talks to.

Usage: hmrpage.py [--ready-file PATH] [--parent PID] [--handshake-log FILE]
                  PORT [PORT ...]

Each PORT (0 picks a free one) is an independent "workspace node"; once all
listen, their ports are written space separated to --ready-file (atomically,
via rename) and to stdout. Built on `websockets` (asyncio): run it with the
venv made by `make venv`.

HTTP (requests without `Upgrade`; answered with Connection: close, as
websockets answers every plain HTTP request):
  /ws/<id>/...   the page; its script connects to /ws/<id>/hmr?token=t1
  /              the page; its script connects to /?token=t1 (root path, as
                 Vite's client does; a gateway routes it by the ws_uid cookie)
  anything else  404 (e.g. /favicon.ico)
  The page shows the port that served it (#page-port) and the Cookie header
  it came with (#page-cookie); header X-Page-Port carries the port too.

WebSocket (any path): accepts the subprotocol `vite-hmr` only, then sends, one
text message each:
  node:<port>            the port that accepted the WebSocket
  protocol:<selected>    the subprotocol the server selected
  uid:<value>            the ws_uid cookie of the handshake request, or "-"
  path:<target>          the request target of the handshake
then waits for one message from the page and answers echo:<message>, sends
big:<n> followed by a text message of n characters (n = 200000, several TCP
segments, compressed if permessage-deflate was negotiated), then done, and
closes with 1000 "bye".

With --handshake-log FILE, every WebSocket handshake request is appended to
FILE as one JSON line, {"port", "path", "headers": [[name, value], ...]}, as it
arrives (before it is accepted or refused); websockets parses nothing but an
HTTP/1.1 GET, so a line there is an HTTP/1.1 request with an Upgrade field.

The page logs one line per event into <ol id="log">: open <ws.protocol>,
msg:<text> (big messages as big-received:<length>:<ok|corrupt>), and
close:<code>:<reason>:<wasClean>; body[data-state] becomes "open", "closed" or
"error", so a driver knows when the exchange is over.
"""

import sigreset  # noqa: F401  (first: see sigreset.py)
import argparse
import asyncio
import html
import http.cookies
import json
import urllib.parse

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

import peerproc

BIG = 200_000

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>hmrpage {port}</title></head>
<body data-state="loading">
<p>page-port:<span id="page-port">{port}</span></p>
<p>page-cookie:<span id="page-cookie">{cookie}</span></p>
<p>ws-url:<span id="ws-url"></span></p>
<ol id="log"></ol>
<script>
(function () {{
  var log = document.getElementById('log');
  function line(text) {{
    var li = document.createElement('li');
    li.textContent = text;
    log.appendChild(li);
  }}
  // Same origin as the page, like Vite: ws(s)://<host of the page><path>.
  var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + {ws_path};
  document.getElementById('ws-url').textContent = url;
  var ws = new WebSocket(url, 'vite-hmr');
  var bigExpected = -1;
  ws.onopen = function () {{
    document.body.dataset.state = 'open';
    line('open ' + ws.protocol);
    ws.send('hello-from-browser');
  }};
  ws.onmessage = function (ev) {{
    var text = String(ev.data);
    if (bigExpected >= 0) {{
      var ok = text.length === bigExpected;
      for (var i = 0; ok && i < text.length; i++) {{
        if (text.charCodeAt(i) !== 97 + (i % 26)) ok = false;
      }}
      line('big-received:' + text.length + ':' + (ok ? 'ok' : 'corrupt'));
      bigExpected = -1;
      return;
    }}
    if (text.indexOf('big:') === 0) bigExpected = parseInt(text.slice(4), 10);
    line('msg:' + text);
  }};
  ws.onerror = function () {{ line('error'); }};
  ws.onclose = function (ev) {{
    line('close:' + ev.code + ':' + ev.reason + ':' + ev.wasClean);
    document.body.dataset.state = ws.readyState === 3 && ev.wasClean ? 'closed' : 'error';
  }};
}})();
</script>
</body>
</html>
"""


def big_message():
    return "".join(chr(97 + (i % 26)) for i in range(BIG))


def ws_uid(request):
    raw = "; ".join(request.headers.get_all("Cookie"))
    if not raw:
        return None
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(raw)
    except http.cookies.CookieError:
        return None
    return jar["ws_uid"].value if "ws_uid" in jar else None


def make_node(port_holder, handshake_log=None):
    def process_request(connection, request):
        if request.headers.get("Upgrade") is not None:
            if handshake_log:
                with open(handshake_log, "a") as f:
                    f.write(json.dumps({"port": port_holder[0], "path": request.path,
                                        "headers": [[k, v] for k, v in request.headers.raw_items()]}) + "\n")
            return None  # a WebSocket handshake: let websockets do it
        path = urllib.parse.urlsplit(request.path).path
        parts = path.split("/")
        if path == "/":
            ws_path = "/?token=t1"
        elif len(parts) >= 4 and parts[1] == "ws" and parts[2]:
            ws_path = "/ws/%s/hmr?token=t1" % parts[2]
        else:
            return plain(404, "Not Found", b"no such page\n", port_holder[0])
        cookie = "; ".join(request.headers.get_all("Cookie")) or "-"
        body = PAGE.format(port=port_holder[0], cookie=html.escape(cookie),
                           ws_path=repr(ws_path)).encode()
        return plain(200, "OK", body, port_holder[0], "text/html; charset=utf-8")

    async def handler(ws):
        try:
            await ws.send("node:%d" % port_holder[0])
            await ws.send("protocol:%s" % (ws.subprotocol or "-"))
            await ws.send("uid:%s" % (ws_uid(ws.request) or "-"))
            await ws.send("path:%s" % ws.request.path)
            got = await ws.recv()
            await ws.send("echo:%s" % got)
            await ws.send("big:%d" % BIG)
            await ws.send(big_message())
            await ws.send("done")
            await ws.close(1000, "bye")
        except ConnectionClosed:
            pass

    return process_request, handler


def plain(status, reason, body, port, content_type="text/plain; charset=utf-8"):
    headers = Headers([
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("X-Page-Port", str(port)),
        ("Connection", "close"),
    ])
    return Response(status, reason, headers, body)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ports", nargs="+", type=int)
    ap.add_argument("--handshake-log")
    peerproc.add_arguments(ap)
    args = ap.parse_args()

    servers = []
    for p in args.ports:
        holder = [p]
        process_request, handler = make_node(holder, args.handshake_log)
        server = await serve(handler, "127.0.0.1", p, process_request=process_request,
                             subprotocols=["vite-hmr"], ping_interval=None,
                             server_header="hmrpage")
        holder[0] = server.sockets[0].getsockname()[1]
        servers.append(server)
    peerproc.announce(args.ready_file, " ".join(str(s.sockets[0].getsockname()[1]) for s in servers))
    peerproc.watch_parent(args.parent)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
