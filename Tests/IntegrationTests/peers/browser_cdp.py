#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol for BrowserTests.swift.

Usage: browser_cdp.py --chromium PATH --profile DIR --out FILE [--parent PID]
                      [--timeout S] [--chromium-arg ARG ...] [--trust-cert PEM ...]
                      URL [URL ...]

--chromium-arg ARG (repeatable) is added to Chromium's command line (e.g.
"--host-resolver-rules=MAP *.apps.test 127.0.0.1"). --trust-cert PEM
(repeatable) makes Chromium accept certificate chains that contain any
certificate of that PEM file (its SPKI SHA-256 goes to
--ignore-certificate-errors-spki-list; openssl computes it): a test CA's chain
is then as good as a trusted one, without --ignore-certificate-errors.

Starts Chromium (its own process group, a fresh profile in DIR), opens each
URL in turn in one tab (so cookies set by one page go with the next), waits
until the page reports body[data-state] "closed" or "error" (hmrpage.py's
pages do, once their WebSocket exchange is over) or --timeout passes, and
records what the page shows. `--dump-dom --virtual-time-budget` is not used:
virtual time does not wait for network I/O such as a WebSocket, so the DOM it
dumps can predate the messages.

Writes JSON to --out:
  {"version": "...",
   "visits": [{"url", "error" (navigation error text or null), "state",
               "title", "page_port", "page_cookie", "ws_url", "body" (text, first
               500 characters), "log": [...],
               "next_hop_protocol" (the navigation entry's nextHopProtocol, e.g.
               "h2" or "http/1.1"), "protocol" (Network.responseReceived's
               response.protocol of the main document), "status" (its status), "security_state" (its securityState),
               "websockets": [{"url", "request_headers", "status",
               "response_headers", "errors": [...], "closed"}] (from the
               Network.webSocket* events of this visit)}],
   "cookies": [{"name", "value", "path", "httpOnly", "sameSite"}],
   "leftover": [pids of Chromium processes still alive after shutdown]}

Chromium and every process it started are killed at the end (SIGTERM to the
process group, SIGKILL after 5 s), also when this script is terminated or its
parent test process disappears. Exits 0 when the JSON was written, 2 when
Chromium could not be driven at all (the reason on stderr).
"""

import argparse
import asyncio
import base64
import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from websockets.asyncio.client import connect

PR_SET_PDEATHSIG = 1

SNAPSHOT = """JSON.stringify({
  stale: document.documentElement.dataset.driverStale === '1',
  href: location.href,
  ready: document.readyState,
  state: document.body ? (document.body.dataset.state || null) : null,
  title: document.title,
  page_port: (document.getElementById('page-port') || {}).textContent || null,
  page_cookie: (document.getElementById('page-cookie') || {}).textContent || null,
  ws_url: (document.getElementById('ws-url') || {}).textContent || null,
  next_hop_protocol: ((performance.getEntriesByType('navigation')[0]) || {}).nextHopProtocol || null,
  body: document.body ? document.body.innerText.slice(0, 500) : null,
  log: Array.from(document.querySelectorAll('#log li')).map(function (li) { return li.textContent; })
})"""


class DriverError(Exception):
    pass


class CDP:
    """Minimal DevTools client: one page session, commands answered by id. Events that
    arrive meanwhile are kept in `events` (the caller takes and clears them)."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    async def call(self, method, params=None, timeout=15):
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverError("no answer to %s within %ss" % (method, timeout))
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg.get("id") != my_id:
                if "method" in msg and "id" not in msg:
                    self.events.append(msg)
                continue  # an event, or an answer we stopped waiting for
            if "error" in msg:
                raise DriverError("%s failed: %s" % (method, msg["error"]))
            return msg.get("result", {})

    async def evaluate(self, expression):
        r = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise DriverError("evaluate threw: %s" % r["exceptionDetails"])
        return r.get("result", {}).get("value")


def http_json(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return json.loads(r.read())


def set_pdeathsig():
    """Chromium dies with this script even if we are SIGKILLed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def spki_hashes(pem_path):
    """base64(SHA-256(SubjectPublicKeyInfo)) of every certificate in a PEM file."""
    with open(pem_path) as f:
        text = f.read()
    hashes = []
    for block in text.split("-----END CERTIFICATE-----")[:-1]:
        cert = block[block.index("-----BEGIN CERTIFICATE-----"):] + "-----END CERTIFICATE-----\n"
        pub = subprocess.run(["openssl", "x509", "-noout", "-pubkey"], input=cert.encode(),
                             capture_output=True, check=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                             capture_output=True, check=True).stdout
        hashes.append(base64.b64encode(hashlib.sha256(der).digest()).decode())
    if not hashes:
        raise DriverError("no certificate in %s" % pem_path)
    return hashes


def start_chromium(chromium, profile, log_path, extra=()):
    args = [
        chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
        "--user-data-dir=" + profile, "--remote-debugging-port=0",
        "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
        "--disable-extensions", "--disable-background-networking", "--disable-sync",
        "--disable-component-update", "--disable-default-apps", "--disable-breakpad",
        "--disable-dev-shm-usage", "--mute-audio", "--password-store=basic",
        "--use-mock-keychain",
    ] + list(extra) + ["about:blank"]
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, preexec_fn=set_pdeathsig)
    finally:
        log.close()


def profile_processes(profile):
    """Pids of live processes whose command line names our profile directory."""
    needle = profile.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if needle in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return [p for p in pids if p != os.getpid()]


def stop_chromium(proc, profile):
    """Process group first (every child Chromium forked), then any straggler."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if proc.returncode is not None and not profile_processes(profile):
                return []
            time.sleep(0.05)
    for pid in profile_processes(profile):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    proc.poll()
    return profile_processes(profile)


def wait_for_devtools(proc, profile, timeout=60):
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DriverError("chromium exited with status %s before DevTools listened" % proc.returncode)
        try:
            with open(port_file) as f:
                lines = f.read().split("\n")
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
        except OSError:
            pass
        time.sleep(0.05)
    raise DriverError("no DevToolsActivePort in %s after %ss" % (profile, timeout))


async def visit(cdp, url, timeout):
    # Mark the current document, so the wait below cannot mistake it for the new one.
    await cdp.evaluate("document.documentElement && (document.documentElement.dataset.driverStale = '1')")
    cdp.events.clear()
    nav = await cdp.call("Page.navigate", {"url": url})
    record = {"url": url, "error": nav.get("errorText")}
    events = []
    snap = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            snap = json.loads(await cdp.evaluate(SNAPSHOT))
        except DriverError:
            snap = None  # the context went away mid-navigation; ask again
        events += cdp.events
        cdp.events.clear()
        if snap and not snap["stale"] and snap["state"] in ("closed", "error"):
            break
        if record["error"] and snap and not snap["stale"]:
            break  # the error page is up; nothing will change
        if snap and not snap["stale"] and snap["ready"] == "complete" and snap["page_port"] is None:
            break  # loaded, but not hmrpage's page (e.g. the gateway's JSON error)
        await asyncio.sleep(0.1)
    if snap is None or snap["stale"]:
        snap = {"state": None, "title": None, "page_port": None, "page_cookie": None,
                "ws_url": None, "log": [], "href": None, "body": None, "next_hop_protocol": None}
    snap.pop("stale", None)
    snap.pop("ready", None)
    record.update(snap)
    events += cdp.events
    cdp.events.clear()
    record.update(network_summary(events, nav.get("loaderId")))
    return record


def network_summary(events, loader_id):
    """The main document's protocol and status, and each WebSocket's handshake and fate."""
    out = {"protocol": None, "status": None, "security_state": None, "websockets": []}
    sockets = {}
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Network.responseReceived" and p.get("type") == "Document" \
                and (loader_id is None or p.get("loaderId") == loader_id) and out["protocol"] is None:
            out["protocol"] = p.get("response", {}).get("protocol")
            out["status"] = p.get("response", {}).get("status")
            out["security_state"] = p.get("response", {}).get("securityState")
        elif method == "Network.webSocketCreated":
            sockets[p.get("requestId")] = {"url": p.get("url"), "request_headers": None, "status": None,
                                           "response_headers": None, "errors": [], "closed": False}
            out["websockets"].append(sockets[p.get("requestId")])
        elif method.startswith("Network.webSocket") and p.get("requestId") in sockets:
            s = sockets[p["requestId"]]
            if method == "Network.webSocketWillSendHandshakeRequest":
                s["request_headers"] = p.get("request", {}).get("headers")
            elif method == "Network.webSocketHandshakeResponseReceived":
                s["status"] = p.get("response", {}).get("status")
                s["response_headers"] = p.get("response", {}).get("headers")
            elif method == "Network.webSocketFrameError":
                s["errors"].append(p.get("errorMessage"))
            elif method == "Network.webSocketClosed":
                s["closed"] = True
    return out


async def drive(port, urls, timeout):
    targets = http_json("http://127.0.0.1:%d/json/list" % port)
    pages = [t for t in targets if t.get("type") == "page"]
    if not pages:
        raise DriverError("no page target in %s" % targets)
    version = http_json("http://127.0.0.1:%d/json/version" % port).get("Browser")
    async with connect(pages[0]["webSocketDebuggerUrl"], max_size=None, ping_interval=None,
                       proxy=None, open_timeout=15) as ws:
        cdp = CDP(ws)
        await cdp.call("Page.enable")
        await cdp.call("Network.enable")
        visits = []
        for url in urls:
            visits.append(await visit(cdp, url, timeout))
        cookies = (await cdp.call("Network.getCookies", {"urls": urls})).get("cookies", [])
        return {
            "version": version,
            "visits": visits,
            "cookies": [{k: c.get(k) for k in ("name", "value", "path", "httpOnly", "sameSite")}
                        for c in cookies],
        }


def watch_parent(ppid, on_gone):
    import threading

    def loop():
        while True:
            time.sleep(0.5)
            try:
                os.kill(ppid, 0)
            except OSError:
                on_gone()
            if os.getppid() != ppid:
                on_gone()

    threading.Thread(target=loop, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("urls", nargs="+")
    ap.add_argument("--chromium", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parent", type=int)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--chromium-arg", action="append", default=[])
    ap.add_argument("--trust-cert", action="append", default=[])
    args = ap.parse_args()

    extra = list(args.chromium_arg)
    if args.trust_cert:
        try:
            hashes = [h for pem in args.trust_cert for h in spki_hashes(pem)]
        except (DriverError, OSError, subprocess.CalledProcessError) as e:
            print("browser_cdp: --trust-cert: %s" % e, file=sys.stderr)
            sys.exit(2)
        extra.append("--ignore-certificate-errors-spki-list=" + ",".join(hashes))
    os.makedirs(args.profile, exist_ok=True)
    log_path = args.profile.rstrip("/") + ".chromium.log"
    proc = start_chromium(args.chromium, args.profile, log_path, extra)

    def emergency_exit(*_):
        stop_chromium(proc, args.profile)
        os._exit(3)

    signal.signal(signal.SIGTERM, emergency_exit)
    signal.signal(signal.SIGINT, emergency_exit)
    if args.parent:
        watch_parent(args.parent, emergency_exit)

    report = None
    failure = None
    try:
        port = wait_for_devtools(proc, args.profile)
        report = asyncio.run(drive(port, args.urls, args.timeout))
    except (DriverError, OSError, asyncio.TimeoutError) as e:
        failure = "%s: %s" % (type(e).__name__, e)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        leftover = stop_chromium(proc, args.profile)
    if failure is not None:
        try:
            with open(log_path, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            tail = ""
        print("browser_cdp: %s\nleftover: %s\nchromium log tail:\n%s" % (failure, leftover, tail),
              file=sys.stderr)
        sys.exit(2)
    report["leftover"] = leftover
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
    os.rename(tmp, args.out)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
