#!/usr/bin/env python3
"""Turn a bench/http1.sh results directory into a markdown report.

    python3 bench/report.py bench/results/http1-YYYYmmdd-HHMMSS

Reads runs.tsv (one row per wrk run) and meta.txt (key=value); prints medians
over the repetitions, with ratios to nginx at the same worker count.
"""
import sys
from pathlib import Path

from reportlib import fmt, median, num, ratio, read_meta, read_tsv

ORDER = ["direct", "relay", "nginx", "haproxy", "switchyard-base", "switchyard", "static-ws", "sticky"]


def med(rows, key):
    return median(num(r[key]) for r in rows)


def main():
    d = Path(sys.argv[1])
    meta = read_meta(d)
    rows = read_tsv(d / "runs.tsv")

    groups = {}
    for r in rows:
        groups.setdefault((r["system"], r["workers"], r["case"]), []).append(r)
    tput_case = f"c{meta.get('conns', '50')}"

    def g(sys_, w, case):
        return groups.get((sys_, w, case), [])

    workers = meta.get("workers", "1 2").split()
    # Row order: direct, relay, then each proxy per W.
    keys = []
    for s in ORDER:
        ws = sorted({k[1] for k in groups if k[0] == s}, key=lambda x: (x == "-", x))
        for w in ws:
            keys.append((s, w))
    direct_c1_p50 = med(g("direct", "-", "c1"), "p50_us")

    def nginx_ref(w):
        # direct and relay have no W of their own: compare with nginx W=1.
        ref_w = w if w in workers and w != "-" else "1"
        return g("nginx", ref_w, tput_case)

    out = []
    out.append("## HTTP/1.1 proxy benchmark (bench/http1.sh)\n")
    out.append(
        f"{meta.get('date', '?')} · {meta.get('host_cpus', '?')} CPUs (shared with wrk and the upstream) · "
        f"kernel {meta.get('kernel', '?')} · nginx {meta.get('nginx', '?')} · HAProxy {meta.get('haproxy', '?')} · "
        f"wrk {meta.get('wrk', '?')} · switchyard commit {meta.get('switchyard_commit', '?')}, "
        f"binary sha256 {meta.get('switchyard_sha256', '?')}\n"
    )
    out.append(
        f"Throughput case: `wrk -t{meta.get('threads')} -c{meta.get('conns')} -d{meta.get('duration')}`; "
        f"latency case: `wrk -t1 -c1 -d{meta.get('lat_duration')}`; {meta.get('body_bytes')}-byte body from an "
        f"nginx upstream ({meta.get('upstream_workers')} worker); medians of {meta.get('repeat')} repetitions, "
        f"systems alternated run by run.\n"
    )
    out.append(f"loadavg at start: `{meta.get('loadavg_start', '?')}` · at end: `{meta.get('loadavg_end', '?')}`\n")
    try:
        la1 = float(meta.get("loadavg_start", "").split()[0])
        cpus = int(meta.get("host_cpus", "2"))
    except (ValueError, IndexError):
        la1, cpus = 0.0, 2
    if la1 > 0.5 * cpus:
        out.append(
            f"**Warning:** the machine was already busy when the run started (1-min loadavg {la1:.2f} on "
            f"{cpus} CPUs): req/s and latency are unreliable; CPU µs/req suffers least.\n"
        )

    out.append(
        "| system | W | req/s | p50 µs | p99 µs | CPU µs/req | req/s ÷ nginx | p99 ÷ nginx | CPU/req ÷ nginx "
        "| c1 p50 µs | c1 p99 µs | c1 p50 added vs direct µs | req/s min–max | runs | errors |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s, w in keys:
        t = g(s, w, tput_case)
        c1 = g(s, w, "c1")
        ref = nginx_ref(w)
        rps, p50, p99, cpu = (med(t, k) for k in ("rps", "p50_us", "p99_us", "proxy_cpu_us_per_req"))
        nrps, np99, ncpu = (med(ref, k) for k in ("rps", "p99_us", "proxy_cpu_us_per_req"))
        c1p50, c1p99 = med(c1, "p50_us"), med(c1, "p99_us")
        added = None if c1p50 is None or direct_c1_p50 is None else c1p50 - direct_c1_p50
        rps_all = [num(r["rps"]) for r in t if num(r["rps"]) is not None]
        spread = f"{min(rps_all):,.0f}–{max(rps_all):,.0f}" if rps_all else "—"
        errs = sum(int(num(r["errors"]) or 0) for r in t + c1)
        wlabel = {"-": "—"}.get(w, w)
        if s == "relay":
            wlabel = "1 (fixed)"
        out.append(
            f"| {s} | {wlabel} | {fmt(rps)} | {fmt(p50)} | {fmt(p99)} | {fmt(cpu, 1)} | {ratio(rps, nrps)} | "
            f"{ratio(p99, np99)} | {ratio(cpu, ncpu)} | {fmt(c1p50)} | {fmt(c1p99)} | "
            f"{fmt(added) if s != 'direct' else '—'} | {spread} | {len(t)} | {errs} |"
        )
    out.append("")
    if meta.get("switchyard_skipped"):
        out.append(f"**switchyard skipped:** {meta['switchyard_skipped']}\n")

    out.append("Diagnostics (medians; throughput case unless noted):\n")
    out.append(
        "| system | W | upstream CPU µs/req | proxy CPU µs/req (c1) | machine busy % | steal % | "
        "p99.9 µs | c1 req/s |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for s, w in keys:
        t = g(s, w, tput_case)
        c1 = g(s, w, "c1")
        out.append(
            f"| {s} | {w} | {fmt(med(t, 'upstream_cpu_us_per_req'), 1)} | {fmt(med(c1, 'proxy_cpu_us_per_req'), 1)} | "
            f"{fmt(med(t, 'machine_busy_pct'))} | {fmt(med(t, 'steal_pct'), 1)} | {fmt(med(t, 'p999_us'))} | "
            f"{fmt(med(c1, 'rps'))} |"
        )
    out.append("")
    out.append(
        "CPU µs/req = (utime+stime of the proxy's whole process tree, incl. reaped children, after − before) ÷ "
        "requests wrk completed. Ratios compare with nginx at the same W (direct and relay: with nginx W=1). "
        "\"c1 p50 added\" = proxy p50 − direct p50 in the single-connection case."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
