#!/usr/bin/env python3
"""Turn a bench/tls.sh results directory into a markdown report.

    python3 bench/tls_report.py bench/results/tls-YYYYmmdd-HHMMSS

Reads meta.txt (key=value), probes.tsv (what each system negotiated) and
runs.tsv (one row per measured run); prints medians over the repetitions per
(test, system, W), with ratios to nginx and to HAProxy at the same W.
"""
import sys
from pathlib import Path

from reportlib import fmt, median as med, num, ratio, read_meta, read_tsv

ORDER = ["nginx", "haproxy", "switchyard-base", "switchyard"]


def spread(vals, digits=0):
    vals = [v for v in vals if v is not None]
    return f"{fmt(min(vals), digits)}–{fmt(max(vals), digits)}" if vals else "—"


def per_req(cpu_s, n):
    return cpu_s / n * 1e6 if cpu_s is not None and n else None


def summarize(rows):
    """Medians of one (test, system, W) group."""
    rate = [num(r["rate"]) for r in rows]
    reqs = [num(r["requests"]) for r in rows]
    win = [num(r["window_s"]) for r in rows]
    cpu = [per_req(num(r["proxy_cpu_s"]), n) for r, n in zip(rows, reqs)]
    ccpu = [per_req(num(r["client_cpu_s"]), n) for r, n in zip(rows, reqs)]
    pct = lambda key: med([100 * num(r[key]) / w if num(r[key]) is not None and w else None  # noqa: E731
                           for r, w in zip(rows, win)])
    return {
        "rate": med(rate), "rate_all": rate,
        "p50": med([num(r["p50_us"]) for r in rows]),
        "p99": med([num(r["p99_us"]) for r in rows]),
        "mean": med([num(r["mean_us"]) for r in rows]),
        "cpu": med(cpu), "cpu_all": cpu, "client_cpu": med(ccpu),
        "resumed": med([num(r["resumed_pct"]) for r in rows]),
        "resumed_all": [num(r["resumed_pct"]) for r in rows],
        "offered": med([num(r.get("offered_pct")) for r in rows]),
        "tickets": med([num(r["tickets_per_conn"]) for r in rows]),
        "errors": sum(int(num(r["errors"]) or 0) for r in rows),
        "runs": len(rows),
        "proxy_pct": pct("proxy_cpu_s"), "client_pct": pct("client_cpu_s"), "up_pct": pct("upstream_cpu_s"),
        "client_core": med([num(r["client_core_busy_pct"]) for r in rows]),
        "proxy_core": med([num(r["proxy_core_busy_pct"]) for r in rows]),
        "busy": med([num(r["machine_busy_pct"]) for r in rows]),
        "steal": med([num(r["steal_pct"]) for r in rows]),
        "load": med([num(r["loadavg1"]) for r in rows]),
        "proto": sorted({r["proto"] for r in rows if r["proto"] not in ("", "NA", "none")}),
    }


def limit(x, pinned):
    """Which side most likely capped the rate (a guess from CPU use during the window)."""
    p, cc, pc = x["proxy_pct"], x["client_core"], x["proxy_core"]
    if p is None:
        return "—"
    if p >= 85:
        return "proxy"
    if pinned and pc is not None and pc >= 95:
        return "proxy core (shared with other work)"
    if pinned and cc is not None and cc >= 90:
        return "client core"
    if not pinned and x["busy"] is not None and x["busy"] >= 95:
        return "CPU (all shared)"
    return "—"


def ratios(d, ref, key):
    return ratio(d[key], ref[key] if ref else None)


def main():
    d = Path(sys.argv[1])
    meta = read_meta(d)
    probes = read_tsv(d / "probes.tsv")
    runs = read_tsv(d / "runs.tsv")
    workers = meta.get("workers", "1 2").split()
    tests = meta.get("tests", "keepalive full resume reuse h2").split()
    pinned = bool(meta.get("proxy_cpu"))
    h2ok = {p["system"]: p["h2"] == "1" for p in probes}

    groups = {}
    for r in runs:
        groups.setdefault((r["test"], r["system"], r["workers"]), []).append(r)
    m = {k: summarize(v) for k, v in groups.items()}

    print("## TLS termination (bench/tls.sh)")
    print()
    print(f"{meta.get('date', '?')} · commit `{meta.get('switchyard_commit', '?')}` · switchyard sha256 "
          f"`{meta.get('switchyard_sha256', '?')}` (built {meta.get('switchyard_built', '?')}) · nginx "
          f"{meta.get('nginx', '?')} · HAProxy {meta.get('haproxy', '?')} · OpenSSL {meta.get('openssl', '?')} · "
          f"wrk {meta.get('wrk', '?')} · h2load {meta.get('h2load', '?')} · {meta.get('host_cpus', '?')} CPUs "
          f"({meta.get('cpu_model', '?')})")
    print()
    print(f"loadavg at start `{meta.get('loadavg_start', '?')}`, at end `{meta.get('loadavg_end', '?')}`. "
          f"Medians of {meta.get('repeat')} runs, systems alternated run by run. CPU placement: {meta.get('pinning')} "
          f"(read back from /proc: client {meta.get('client_cpus', '?')}, upstream {meta.get('upstream_cpus', '?')}, "
          f"proxies as in the next table). "
          f"Certificate: {meta.get('certificate', '?').rstrip('; ')}.")
    for s in ORDER:
        if f"{s}_skipped" in meta:
            print()
            print(f"**{s} skipped**: {meta[f'{s}_skipped']}")
    cpus = num(meta.get("host_cpus")) or 1
    la = num(meta.get("loadavg_start", "").split(" ")[0])
    if la is not None and la > cpus / 2:
        print()
        print(f"**Warning**: 1-minute loadavg at start was {la} on {int(cpus)} CPUs: other work was running; "
              "compare CPU per request/handshake rather than rates.")
    print()

    if probes:
        print("What each system negotiated with `tlshs probe` (TLS ≤ "
              f"{meta.get('hs_tls', '1.3')}, ALPN http/1.1, SNI localhost), and whether a second connection "
              "offering the ticket of the first resumed:")
        print()
        print("| system | protocol | cipher | group | ALPN | tickets per full handshake | 2nd connection resumed | h2 (ALPN) | "
              "CPUs of its threads |")
        print("|---|---|---|---|---|---:|---|---|---|")
        for p in sorted(probes, key=lambda p: ORDER.index(p["system"]) if p["system"] in ORDER else 9):
            print(f"| {p['system']} | {p['proto']} | {p['cipher']} | {p['group']} | {p['alpn']} | {p['tickets']} | "
                  f"{'yes' if p['resumed'] == '1' else '**no**'} | { {'1': 'yes', '0': 'no'}.get(p['h2'], 'not probed')} | "
                  f"{p.get('cpus') or '—'} |")
        print()

    def rows_of(test):
        out = []
        for s in ORDER:
            for w in workers:
                if (test, s, w) in m:
                    out.append((s, w, m[(test, s, w)]))
        return out

    def ref(test, s, w):
        return m.get((test, s, w))

    if "keepalive" in tests:
        print(f"### 1. HTTPS/1.1 keep-alive: `wrk -t1 -c{meta.get('conns')} -d{meta.get('duration')}`")
        print()
        print("| system | W | req/s | p50 µs | p99 µs | proxy CPU µs/req | req/s ÷ nginx | req/s ÷ HAProxy | "
              "CPU/req ÷ nginx | CPU/req ÷ HAProxy | p99 ÷ nginx | req/s min–max | errors | runs |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s, w, x in rows_of("keepalive"):
            n, h = ref("keepalive", "nginx", w), ref("keepalive", "haproxy", w)
            print(f"| {s} | {w} | {fmt(x['rate'])} | {fmt(x['p50'])} | {fmt(x['p99'])} | {fmt(x['cpu'], 1)} | "
                  f"{ratios(x, n, 'rate')} | {ratios(x, h, 'rate')} | {ratios(x, n, 'cpu')} | {ratios(x, h, 'cpu')} | "
                  f"{ratios(x, n, 'p99')} | {spread(x['rate_all'])} | {x['errors']} | {x['runs']} |")
        print()

    titles = {
        "full": "2. Full handshakes (ECDSA P-256, no resumption)",
        "resume": "3. Resumed handshakes (session tickets, each ticket used once)",
        "reuse": "3b. Resumed handshakes (a ticket offered again until a newer one arrives)",
    }
    notes = {
        "full": "No session is offered, ever.",
        "resume": "Each connection offers the newest ticket its slot received, once: OpenSSL clients treat a "
                  "TLS 1.3 ticket as single-use (RFC 8446 C.4; browsers too), so a server that sends no new "
                  "ticket after a resumed handshake gets a full handshake on the next connection.",
        "reuse": "Each connection offers a copy of the newest ticket its slot received, however often it was "
                 "used: the server's resumption capacity whatever its ticket policy.",
    }
    for test in ("full", "resume", "reuse"):
        if test not in tests:
            continue
        print(f"### {titles[test]}: `tlshs run -m {test} -c {meta.get('hs_conns')} -d {meta.get('hs_duration')}`")
        print()
        print(f"{notes[test]} Each connection: connect + handshake + one GET (Connection: close) + close. Latency is "
              "connect to last response byte. Proxy CPU per connection includes the proxied GET. tickets/conn: "
              "NewSessionTicket messages the client received per connection.")
        print()
        print("| system | W | handshakes/s | resumed % (min–max) | offered a ticket % | p50 µs | p99 µs | proxy CPU µs/conn | "
              "client CPU µs/conn | hs/s ÷ nginx | hs/s ÷ HAProxy | CPU/conn ÷ nginx | CPU/conn ÷ HAProxy | "
              "tickets/conn | hs/s min–max | errors | runs |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s, w, x in rows_of(test):
            n, h = ref(test, "nginx", w), ref(test, "haproxy", w)
            print(f"| {s} | {w} | {fmt(x['rate'])} | {fmt(x['resumed'], 1)} ({spread(x['resumed_all'], 1)}) | "
                  f"{fmt(x['offered'], 1)} | "
                  f"{fmt(x['p50'])} | {fmt(x['p99'])} | {fmt(x['cpu'], 0)} | {fmt(x['client_cpu'], 0)} | "
                  f"{ratios(x, n, 'rate')} | {ratios(x, h, 'rate')} | {ratios(x, n, 'cpu')} | {ratios(x, h, 'cpu')} | "
                  f"{fmt(x['tickets'], 2)} | {spread(x['rate_all'])} | {x['errors']} | {x['runs']} |")
        print()

    if "h2" in tests:
        print(f"### 4. HTTP/2 over TLS: `h2load -c{meta.get('h2_conns')} -m{meta.get('h2_streams')} "
              f"-D {meta.get('h2_duration')}`")
        print()
        print("| system | W | req/s | mean µs | proxy CPU µs/req | req/s ÷ nginx | req/s ÷ HAProxy | CPU/req ÷ nginx | "
              "CPU/req ÷ HAProxy | req/s min–max | errors | runs |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in ORDER:
            if s not in h2ok:
                continue
            for w in workers:
                x = m.get(("h2", s, w))
                if x is None:
                    why = f"{s}: h2 not implemented" if not h2ok.get(s) else f"{s}: no h2 result"
                    print(f"| {s} | {w} | {why} | | | | | | | | | |")
                    continue
                n, h = ref("h2", "nginx", w), ref("h2", "haproxy", w)
                print(f"| {s} | {w} | {fmt(x['rate'])} | {fmt(x['mean'])} | {fmt(x['cpu'], 1)} | "
                      f"{ratios(x, n, 'rate')} | {ratios(x, h, 'rate')} | {ratios(x, n, 'cpu')} | "
                      f"{ratios(x, h, 'cpu')} | {spread(x['rate_all'])} | {x['errors']} | {x['runs']} |")
        print()

    print("Diagnostics (medians over the measured windows; % of one core): the proxy's process tree, the client "
          "(tlshs only; wrk and h2load are not measured by themselves), the upstream, and how busy each core was "
          "(any process, including other work on the machine).")
    print()
    print("| test | system | W | proxy CPU % | client CPU % | upstream CPU % | client core busy % | proxy core busy % | "
          "machine busy % | steal % | loadavg1 | protocol | limited by |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for test in ("keepalive", "full", "resume", "reuse", "h2"):
        for s, w, x in rows_of(test):
            print(f"| {test} | {s} | {w} | {fmt(x['proxy_pct'])} | {fmt(x['client_pct'])} | {fmt(x['up_pct'])} | "
                  f"{fmt(x['client_core'])} | {fmt(x['proxy_core'])} | {fmt(x['busy'])} | {fmt(x['steal'], 1)} | "
                  f"{fmt(x['load'], 2)} | {', '.join(x['proto']) or '—'} | {limit(x, pinned)} |")
    print()
    print("limited by: *proxy* when the proxy used ≥ 85% of a core (with W=2 both workers share its core); "
          "*proxy core (shared …)* when its core was ≥ 95% busy but not with the proxy; *client core* when the "
          "client's core (client + upstream + anything else) was ≥ 90% busy: the rate is then the client's, a "
          "lower bound for that proxy, and the CPU columns are the ones to compare.")
    print()

    bars = []
    for test, label, unit in (("keepalive", "HTTPS/1.1 keep-alive req/s ≥ nginx", "req/s"),
                              ("full", "full handshakes/s ≥ nginx", "hs/s"),
                              ("resume", "resumed handshakes/s ≥ nginx", "hs/s"),
                              ("reuse", "resumed handshakes/s ≥ nginx (tickets reused)", "hs/s")):
        if test not in tests:
            continue
        for w in workers:
            s, n = m.get((test, "switchyard", w)), m.get((test, "nginx", w))
            if not s or not n or s["rate"] is None or not n["rate"]:
                continue
            extra = ""
            if test in ("resume", "reuse"):
                extra = f"; resumed {fmt(s['resumed'], 1)}% vs {fmt(n['resumed'], 1)}%"
            cpu = ""
            if s["cpu"] is not None and n["cpu"]:
                cpu = f"; CPU/{'req' if test == 'keepalive' else 'conn'} {s['cpu'] / n['cpu']:.2f}×"
            bars.append(f"| {label}, W={w} | {s['rate']:,.0f} vs {n['rate']:,.0f} {unit} "
                        f"({s['rate'] / n['rate']:.2f}×{cpu}{extra}) | {'yes' if s['rate'] >= n['rate'] else '**no**'} |")
    # HTTP/2: the bar is nginx, the goal HAProxy.
    if "h2" in tests:
        for w in workers:
            s, n, h = (m.get(("h2", sysname, w)) for sysname in ("switchyard", "nginx", "haproxy"))
            if not s or s["rate"] is None:
                continue
            for ref, name, kind in ((n, "nginx", "bar"), (h, "HAProxy", "goal")):
                if not ref or not ref["rate"]:
                    continue
                cpu = f"; CPU/req {s['cpu'] / ref['cpu']:.2f}×" if s["cpu"] is not None and ref["cpu"] else ""
                bars.append(f"| h2 over TLS req/s ≥ {name} ({kind}), W={w} | {s['rate']:,.0f} vs {ref['rate']:,.0f} req/s "
                            f"({s['rate'] / ref['rate']:.2f}×{cpu}) | {'yes' if s['rate'] >= ref['rate'] else '**no**'} |")
    if bars:
        print("| bar | measured (Switchyard vs nginx, medians) | met? |")
        print("|---|---|---|")
        print("\n".join(bars))
        print()


if __name__ == "__main__":
    main()
