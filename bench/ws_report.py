#!/usr/bin/env python3
"""Turn a bench/websocket.sh results directory into a markdown report.

    python3 bench/ws_report.py bench/results/websocket-YYYYmmdd-HHMMSS

Reads meta.txt (key=value), idle.tsv (one row per idle-tunnel run) and
runs.tsv (one row per echo or bulk run); prints medians over the repetitions
with ratios to HAProxy and to nginx.
"""
import sys
from pathlib import Path

from reportlib import fmt, median as med, num, ratio, read_meta, read_tsv

ORDER = ["nginx", "haproxy", "switchyard-base", "switchyard", "switchyard-nosplice"]


def spread(vals, digits=0):
    vals = [v for v in vals if v is not None]
    return f"{fmt(min(vals), digits)}–{fmt(max(vals), digits)}" if vals else "—"


def by_system(rows):
    out = {}
    for r in rows:
        out.setdefault(r["system"], []).append(r)
    return {s: out[s] for s in ORDER if s in out}


def idle_section(meta, rows):
    n = meta.get("idle_conns", "?")
    print(f"### Idle tunnels: memory per tunnel ({int(n):,} tunnels, W={meta.get('workers')})")
    print()
    print("| system | RSS before MiB | RSS with tunnels MiB | RSS KiB/tunnel | PSS KiB/tunnel | "
          "KiB/tunnel ÷ HAProxy | KiB/tunnel ÷ nginx | proxy fds/tunnel | tunnels open / held / echoed after idle (worst run) | "
          "RSS KiB/tunnel min–max | RSS after closing MiB | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    per, table = {}, {}
    for name, rs in by_system(rows).items():
        ok = [num(r["ok"]) for r in rs]
        kib = [(num(r["rss1_kb"]) - num(r["rss0_kb"])) / o for r, o in zip(rs, ok) if o]
        pkib = [(num(r["pss1_kb"]) - num(r["pss0_kb"])) / o for r, o in zip(rs, ok) if o]
        fds = [(num(r["fds1"]) - num(r["fds0"])) / o for r, o in zip(rs, ok) if o]
        worst = min(rs, key=lambda r: (num(r["verify_echoed"]) or 0, num(r["held"]) or 0))
        per[name] = med(kib)
        table[name] = (
            med([num(r["rss0_kb"]) / 1024 for r in rs]), med([num(r["rss1_kb"]) / 1024 for r in rs]),
            med(pkib), med(fds), f"{worst['ok']} / {worst['held']} / {worst['verify_echoed']}", spread(kib, 2),
            med([num(r["rss_closed_kb"]) / 1024 for r in rs if num(r["rss_closed_kb"])]), len(rs))
    for name, (r0, r1, pk, fd, conns, sp, r2, runs) in table.items():
        print(f"| {name} | {fmt(r0, 1)} | {fmt(r1, 1)} | {fmt(per[name], 2)} | {fmt(pk, 2)} | "
              f"{ratio(per[name], per.get('haproxy'))} | {ratio(per[name], per.get('nginx'))} | {fmt(fd, 2)} | "
              f"{conns} | {sp} | {fmt(r2, 1)} | {runs} |")
    print()
    return per


def load_section(meta, rows, test):
    rs_all = [r for r in rows if r["test"] == test]
    if not rs_all:
        return {}
    groups = by_system(rs_all)
    m = {}
    for name, rs in groups.items():
        msgs = [num(r["messages"]) for r in rs]
        byts = [num(r["bytes"]) for r in rs]
        cpu = [num(r["proxy_cpu_s"]) for r in rs]
        m[name] = {
            "msgs": med([num(r["msgs_per_s"]) for r in rs]),
            "msgs_all": [num(r["msgs_per_s"]) for r in rs],
            "mib": med([num(r["mib_per_s"]) for r in rs]),
            "mib_all": [num(r["mib_per_s"]) for r in rs],
            "p50": med([num(r["p50_us"]) for r in rs]),
            "p99": med([num(r["p99_us"]) for r in rs]),
            "p99_all": [num(r["p99_us"]) for r in rs],
            "p999": med([num(r["p999_us"]) for r in rs]),
            # one message = one round trip: two frames through the proxy
            "cpu_msg": med([c / n * 1e6 if n else None for c, n in zip(cpu, msgs)]),
            # each echoed byte crosses the proxy twice (to the upstream and back)
            "cpu_mib": med([c / (2 * b / 1048576) * 1e6 if b else None for c, b in zip(cpu, byts)]),
            "errors": sum(int(num(r["errors"]) or 0) for r in rs),
            "runs": len(rs),
            "proxy_pct": med([100 * num(r["proxy_cpu_s"]) / num(r["window_s"]) for r in rs]),
            "up_pct": med([100 * num(r["upstream_cpu_s"]) / num(r["window_s"]) for r in rs]),
            "client_pct": med([100 * num(r["client_cpu_s"]) / num(r["window_s"]) for r in rs]),
            "busy": med([num(r["machine_busy_pct"]) for r in rs]),
            "steal": med([num(r["steal_pct"]) for r in rs]),
            "load": med([num(r["loadavg1"]) for r in rs]),
        }
    h, n = m.get("haproxy"), m.get("nginx")
    g = lambda d, k: d[k] if d else None  # noqa: E731
    if test == "echo":
        print(f"### Echo latency: {meta.get('echo_conns')} connections, {meta.get('echo_size')}-byte messages, "
              f"ping-pong for {meta.get('echo_duration')} s")
        print()
        print("| system | msg/s | p50 µs | p99 µs | p99.9 µs | proxy CPU µs/msg | msg/s ÷ HAProxy | p99 ÷ HAProxy | "
              "msg/s ÷ nginx | p99 ÷ nginx | p99 µs min–max | errors | runs |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, d in m.items():
            print(f"| {name} | {fmt(d['msgs'])} | {fmt(d['p50'])} | {fmt(d['p99'])} | {fmt(d['p999'])} | "
                  f"{fmt(d['cpu_msg'], 1)} | {ratio(d['msgs'], g(h, 'msgs'))} | {ratio(d['p99'], g(h, 'p99'))} | "
                  f"{ratio(d['msgs'], g(n, 'msgs'))} | {ratio(d['p99'], g(n, 'p99'))} | {spread(d['p99_all'])} | "
                  f"{d['errors']} | {d['runs']} |")
    else:
        size = int(meta.get("bulk_size", 0))
        label = f"{size // 1048576} MiB" if size % 1048576 == 0 else f"{size:,}-byte"
        print(f"### Throughput: {meta.get('bulk_conns')} connections, {label} messages, echo for "
              f"{meta.get('bulk_duration')} s")
        print()
        print("| system | MiB/s | proxy CPU µs/MiB moved | MiB/s ÷ HAProxy | CPU/byte ÷ HAProxy | MiB/s ÷ nginx | "
              "CPU/byte ÷ nginx | round trip p50 ms | MiB/s min–max | errors | runs |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, d in m.items():
            p50 = None if d["p50"] is None else d["p50"] / 1000
            print(f"| {name} | {fmt(d['mib'])} | {fmt(d['cpu_mib'])} | {ratio(d['mib'], g(h, 'mib'))} | "
                  f"{ratio(d['cpu_mib'], g(h, 'cpu_mib'))} | {ratio(d['mib'], g(n, 'mib'))} | "
                  f"{ratio(d['cpu_mib'], g(n, 'cpu_mib'))} | {fmt(p50, 1)} | {spread(d['mib_all'])} | "
                  f"{d['errors']} | {d['runs']} |")
    print()
    return m


def limit(x, pinned, load_cap):
    """Which side most likely capped the rate of a run (a guess from CPU use)."""
    p, u, c, busy = x["proxy_pct"], x["up_pct"], x["client_pct"], x["busy"]
    if p is None or u is None or c is None:
        return "—"
    if pinned:
        if p >= 90:
            return "proxy"
        if u + c >= 0.85 * load_cap:
            return "client+upstream"
    if busy is not None and busy >= 95:
        return "other work" if pinned else "CPU (all shared)"
    return "—"


def main():
    d = Path(sys.argv[1])
    meta = read_meta(d)
    idle = read_tsv(d / "idle.tsv")
    runs = read_tsv(d / "runs.tsv")

    print("## WebSocket proxying (bench/websocket.sh)")
    print()
    print(f"{meta.get('date', '?')} · commit `{meta.get('switchyard_commit', '?')}` · switchyard sha256 "
          f"`{meta.get('switchyard_sha256', '?')}` · nginx {meta.get('nginx', '?')} · HAProxy {meta.get('haproxy', '?')}")
    print()
    print(f"loadavg at start `{meta.get('loadavg_start', '?')}`, at end `{meta.get('loadavg_end', '?')}`. "
          f"Medians of {meta.get('repeat')} runs, systems alternated run by run, W={meta.get('workers')}; "
          f"pinning: {meta.get('pinning')}.")
    if "switchyard_skipped" in meta:
        print()
        print(f"**Switchyard skipped**: {meta['switchyard_skipped']}")
    cpus = num(meta.get("host_cpus")) or 1
    la = num(meta.get("loadavg_start", "").split(" ")[0])
    if la is not None and la > cpus / 2:
        print()
        print(f"**Warning**: 1-minute loadavg at start was {la} on {int(cpus)} CPUs: other work was running; "
              "compare CPU per message/byte and memory rather than rates.")
    print()

    mem = idle_section(meta, idle) if idle else {}
    echo = load_section(meta, runs, "echo")
    bulk = load_section(meta, runs, "bulk")

    if echo or bulk:
        pinned = meta.get("pinned") == "1"
        load_cap = 100 * (num(meta.get("load_cpus")) or 1)
        print("Diagnostics (medians): CPU used during the measured window, in % of one core"
              + ("; the proxy is pinned alone, client and upstream share the rest." if pinned else "."))
        print()
        print("| test | system | proxy CPU % | upstream CPU % | client CPU % | machine busy % | steal % | loadavg1 | "
              "limited by |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for test, m in (("echo", echo), ("bulk", bulk)):
            for name, x in m.items():
                print(f"| {test} | {name} | {fmt(x['proxy_pct'])} | {fmt(x['up_pct'])} | {fmt(x['client_pct'])} | "
                      f"{fmt(x['busy'])} | {fmt(x['steal'], 1)} | {fmt(x['load'], 2)} | {limit(x, pinned, load_cap)} |")
        print()
        print("limited by: *proxy* when the proxy used ≥ 90% of its core; *client+upstream* when they used "
              "≥ 85% of theirs (the rate is then a lower bound for that proxy); *other work* when the machine "
              "was busy otherwise.")
        print()

    if "switchyard" in mem or "switchyard" in echo or "switchyard" in bulk:
        print("| bar | measured | met? |")
        print("|---|---|---|")
        if mem.get("switchyard") is not None:
            v = mem["switchyard"]
            print(f"| idle tunnel ≤ 4 KiB RSS | {v:.2f} KiB | {'yes' if v <= 4 else '**no**'} |")
        s, h = echo.get("switchyard"), echo.get("haproxy")
        if s and h and s["p99"] is not None and h["p99"] is not None:
            print(f"| echo p99 ≤ HAProxy's | {s['p99']:,.0f} vs {h['p99']:,.0f} µs ({s['p99'] / h['p99']:.2f}×) | "
                  f"{'yes' if s['p99'] <= h['p99'] else '**no**'} |")
        s, h = bulk.get("switchyard"), bulk.get("haproxy")
        if s and h and s["mib"] is not None and h["mib"] is not None:
            print(f"| 1 MiB echo MiB/s ≥ HAProxy's | {s['mib']:,.0f} vs {h['mib']:,.0f} ({s['mib'] / h['mib']:.2f}×) | "
                  f"{'yes' if s['mib'] >= h['mib'] else '**no**'} |")
        if s and h and s["cpu_mib"] is not None and h["cpu_mib"]:
            print(f"| CPU per byte < HAProxy's | {s['cpu_mib']:,.0f} vs {h['cpu_mib']:,.0f} µs/MiB "
                  f"({s['cpu_mib'] / h['cpu_mib']:.2f}×) | {'yes' if s['cpu_mib'] < h['cpu_mib'] else '**no**'} |")
        print()


if __name__ == "__main__":
    main()
