#!/usr/bin/env python3
"""The markdown report of bench/edge.sh: medians over the repetitions of each system's
raw/<system>-<rep> files (key=value lines)."""
import pathlib
import sys

from reportlib import fmt, median, num, read_meta

PUBLISHED = [("frp (published, own loopback run)", 690, 113.7), ("rathole (published, own loopback run)", 1349, 35.8)]


def raw(d, system):
    runs = []
    for p in sorted((d / "raw").glob(f"{system}-*")):
        if "." in p.name:
            continue
        kv = {}
        for line in p.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                kv[k] = v
        runs.append(kv)
    return runs


def main():
    d = pathlib.Path(sys.argv[1])
    meta = read_meta(d)
    ticks = 100.0  # CLK_TCK on Linux
    idle_n = int(meta.get("idle_n", "1000"))
    rows = {}
    for system in meta.get("systems", "").split():
        runs = raw(d, system)
        single = median([num(r.get("single_bps")) for r in runs])
        par = median([num(r.get("par_bytes")) / num(r.get("par_seconds")) if num(r.get("par_seconds")) else None for r in runs])
        cpu = median([num(r.get("par_ticks")) / ticks / (num(r.get("par_bytes")) / 2**20) * 1000
                      if num(r.get("par_bytes")) else None for r in runs])
        ttfb = median([num(r.get("ttfb")) for r in runs])
        per_conn = []
        for r in runs:
            if "idle_rss_after" not in r:
                continue
            before = [int(x) for x in r["idle_rss_before"].split()]
            after = [int(x) for x in r["idle_rss_after"].split()]
            per_conn.append([(a - b) / idle_n for a, b in zip(after, before)])
        mem = [median([p[i] for p in per_conn]) for i in range(len(per_conn[0]))] if per_conn else []
        rows[system] = (single, par, cpu, ttfb, mem)
    direct = rows.get("direct")
    print(f"Edge tunnel bench ({meta.get('date', '?')}, {meta.get('host_cpus', '?')} CPUs shared by client, proxy, "
          f"agent and origin; medians of {meta.get('repeat')} runs; commit {meta.get('switchyard_commit')})\n")
    print(f"| system | 1 connection MB/s | {meta.get('par')} connections MB/s | proxy CPU ms per MB ({meta.get('par')} conns) "
          f"| time to first byte, fresh connection | added to direct | proxy RSS per idle connection ({idle_n}) |")
    print("|---|---|---|---|---|---|---|")
    for system, (single, par, cpu, ttfb, mem) in rows.items():
        added = (ttfb - direct[3]) * 1000 if direct and ttfb is not None and direct[3] is not None else None
        if system == "switchyard" and len(mem) == 2:
            mem_text = f"{mem[0] + mem[1]:.1f} KiB (gateway {mem[0]:.1f} + agent {mem[1]:.1f})"
        elif mem:
            mem_text = f"{sum(mem):.1f} KiB"
        else:
            mem_text = "—"
        print(f"| {system} | {fmt(single and single / 2**20)} | {fmt(par and par / 2**20)} | "
              f"{'—' if system == 'direct' else fmt(cpu, 2)} | {fmt(ttfb and ttfb * 1000, 2)} ms | "
              f"{'—' if system == 'direct' else fmt(added, 2) + ' ms'} | {mem_text} |")
    for name, mbs, kb in PUBLISHED:
        print(f"| {name} | {mbs:,} | | | | | {kb} KB |")
    print(f"\nFile sizes: {meta.get('big_mb')} MB (1 connection), {meta.get('par_mb')} MB each ({meta.get('par')} connections, "
          f"4 curl processes). Time to first byte: median of {meta.get('connect_n')} sequential curl runs, each a new TCP "
          "and TLS connection (curl's time_starttransfer).")


if __name__ == "__main__":
    main()
