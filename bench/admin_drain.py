#!/usr/bin/env python3
"""bench/admin_drain.py - issue 5 bars against a running gateway (started by bench/admin.sh).

drain:   POST /admin/nodes/A/drain (to B) of N placements: wall time of the call (and the
         registry's own took_ms); meanwhile a client thread requests moved users in a loop on
         a keep-alive connection and records, from X-WS-Upstream, when traffic reached B:
         "follow" = first response from B minus the drain call's return (negative: B served
         before the answer reached us, since memory changes before the JSON is written).
scrape:  handled by bench/admin.sh (wrk with and without a 100 ms /metrics scraper).
"""
import http.client, json, sys, threading, time

gw_port, admin_port, token, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
probe_users = [f"u{i}" for i in range(0, n, max(1, n // 50))][:50]

def admin(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=60)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"X-Admin-Token": token, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data)

stop = False
seen = []  # (time, node)
def prober():
    c = http.client.HTTPConnection("127.0.0.1", gw_port, timeout=10)
    i = 0
    while not stop:
        u = probe_users[i % len(probe_users)]
        i += 1
        c.request("GET", f"/ws/{u}/")
        r = c.getresponse()
        r.read()
        seen.append((time.monotonic(), r.getheader("X-WS-Upstream"), r.status))

status, nodes = admin("GET", "/admin/nodes")
before = {x["name"]: x["placements"] for x in nodes["nodes"]}
t = threading.Thread(target=prober)
t.start()
time.sleep(0.5)
t0 = time.monotonic()
status, result = admin("POST", "/admin/nodes/A/drain", {"target": "B", "list_limit": 0})
t1 = time.monotonic()
time.sleep(0.5)
stop = True
t.join()
assert status == 200, result
status, nodes = admin("GET", "/admin/nodes")
after = {x["name"]: x["placements"] for x in nodes["nodes"]}
first_b = next((ts for ts, node, st in seen if ts >= t0 and node == "B"), None)
last_a = max((ts for ts, node, st in seen if node == "A"), default=None)
errors = sum(1 for _, _, st in seen if st != 200)
print(json.dumps({
    "placements": n, "moved": result["moved"], "unmoved": result["unmoved"],
    "drain_call_ms": round((t1 - t0) * 1000, 1), "registry_took_ms": round(result["took_ms"], 1),
    "follow_ms_after_return": None if first_b is None else round((first_b - t1) * 1000, 1),
    "last_A_response_ms_after_return": None if last_a is None else round((last_a - t1) * 1000, 1),
    "probe_requests": len(seen), "probe_errors": errors, "before": before, "after": after,
}))
