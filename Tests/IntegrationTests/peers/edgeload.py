#!/usr/bin/env python3
"""Many HTTPS connections through an SNI passthrough at once (stdlib only).

Usage: edgeload.py --port P --name node1.edge.test --cafile ROOT --sizes 1,1024,... [--stall-size N]

Each size is one connection of its own (a thread): TLS to 127.0.0.1:P with SNI --name, the
certificate verified against --cafile for --name (so it must be the origin's, end to end),
GET /bytes/SIZE, body read and hashed, compared with the origin's X-Body-SHA256. With
--stall-size, one more connection asks for that many bytes first, reads 64 KiB and then stops
reading until every other connection is done (a stalled client); it is then read to the end.

Prints one JSON line: {"ok": n, "failed": [...], "seconds": max, "stalled_ok": bool|null,
"subjects": [issuer CNs seen]}."""
import argparse
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time


def fetch(ctx, port, name, size, results, i, hold=None):
    t0 = time.monotonic()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        tls = ctx.wrap_socket(sock, server_hostname=name)
        cert = tls.getpeercert()
        subject = dict(x[0] for x in cert.get("subject", ()))
        conn = http.client.HTTPConnection(name, port, timeout=60)
        conn.sock = tls
        conn.request("GET", "/bytes/%d" % size, headers={"Host": name})
        resp = conn.getresponse()
        want = resp.getheader("X-Body-SHA256")
        h = hashlib.sha256()
        got = 0
        if hold is not None:
            chunk = resp.read(65536)
            h.update(chunk)
            got += len(chunk)
            hold.wait(300)
        while True:
            chunk = resp.read(262144)
            if not chunk:
                break
            h.update(chunk)
            got += len(chunk)
        ok = resp.status == 200 and got == size and h.hexdigest() == want
        results[i] = (ok, time.monotonic() - t0, subject.get("commonName", ""),
                      None if ok else "status %d, %d of %d bytes" % (resp.status, got, size))
        tls.close()
    except Exception as e:  # noqa: BLE001 - reported, not raised
        results[i] = (False, time.monotonic() - t0, "", "%s: %s" % (type(e).__name__, e))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--stall-size", type=int, default=0)
    args = ap.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results = [None] * len(sizes)
    stall_result = [None]
    hold = threading.Event()
    stall = None
    if args.stall_size:
        stall = threading.Thread(target=fetch, args=(ctx, args.port, args.name, args.stall_size, stall_result, 0, hold))
        stall.start()
        time.sleep(0.5)
    threads = [threading.Thread(target=fetch, args=(ctx, args.port, args.name, s, results, i)) for i, s in enumerate(sizes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hold.set()
    if stall:
        stall.join()
    failed = [{"size": sizes[i], "why": r[3]} for i, r in enumerate(results) if not r[0]]
    print(json.dumps({
        "ok": sum(1 for r in results if r[0]),
        "failed": failed[:20],
        "seconds": max((r[1] for r in results), default=0),
        "stalled_ok": stall_result[0][0] if stall else None,
        "stalled_why": stall_result[0][3] if stall else None,
        "subjects": sorted(set(r[2] for r in results)),
    }), flush=True)


if __name__ == "__main__":
    main()
