#!/usr/bin/env bash
# bench/cluster.sh - center nodes (issue 14): what one forwarding hop between two gateways costs.
#
# Two Switchyard centers, A and B, share one SQLite registry file; pod `alice` is owned by A.
# One nginx upstream (the pod server, lib.sh's fixed ~100-byte body) sits behind A. Rows, each
# started fresh for its run, warmed up, measured, stopped:
#
#   upstream      client → upstream                          the baseline for "added p50"
#   direct        client → A (public) → upstream             A owns alice: one proxied request
#   chain         client → B (public) → A (internal) → upstream
#   nginx-direct  client → nginx → upstream                  (reference)
#   nginx-chain   client → nginx 1 → nginx 2 → upstream      both with keep-alive upstream pools
#
# `direct` and `chain` run the same pair of centers (A and B up, pod created through A's admin
# API, B routing it); only the entry point differs. B's own pod server is a port nothing
# listens on, so a request B answered by itself could not pass the body check as the chain.
# Every row must return the upstream body verbatim on GET /alice/x before it is measured.
#
# wrk drives each row twice: a throughput case (-c$CONNS) and a single-connection latency case
# (-c1). CPU per request: utime+stime of every proxy process of the row (both centers for
# `chain`, both nginx for `nginx-chain`, A alone for `direct`) ÷ requests. Rows alternate run by
# run (bench_rounds); the report shows medians of REPEAT repetitions.
#
#   bench/cluster.sh
#   REPEAT=5 DURATION=10s bench/cluster.sh
#   SYSTEMS="upstream nginx-direct nginx-chain" bench/cluster.sh     # without Switchyard
#   bench/cluster.sh --report bench/results/cluster-YYYYmmdd-HHMMSS   # the report again
#
# Environment (defaults in brackets): WORKERS [1] (per gateway, per nginx)  REPEAT [3]
#   CONNS [50]  THREADS [1]  DURATION [6s]  LAT_DURATION [3s]  WARMUP [1s]  UPSTREAM_WORKERS [1]
#   SYSTEMS ["upstream direct chain nginx-direct nginx-chain"]  SWITCHYARD_BIN
#
# stdout: the markdown report. stderr: progress. Raw data: bench/results/cluster-<stamp>/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ------------------------------------------------------------------ report ---
# The markdown report of a results directory (runs.tsv + meta.txt).
cluster_report() {  # results_dir
    PYTHONPATH="$BENCH_DIR" python3 - "$1" <<'PY'
import sys
from pathlib import Path
from reportlib import fmt, median, num, ratio, read_meta, read_tsv

d = Path(sys.argv[1])
meta = read_meta(d)
rows = read_tsv(d / "runs.tsv")
ORDER = ["upstream", "direct", "chain", "nginx-direct", "nginx-chain"]
PATHS = {
    "upstream": "client → upstream",
    "direct": "client → A → upstream",
    "chain": "client → B → A (internal) → upstream",
    "nginx-direct": "client → nginx → upstream",
    "nginx-chain": "client → nginx 1 → nginx 2 → upstream",
}
tput = f"c{meta.get('conns', '50')}"
groups = {}
for r in rows:
    groups.setdefault((r["system"], r["case"]), []).append(r)

def g(s, case):
    return groups.get((s, case), [])

def med(s, case, key):
    return median(num(r[key]) for r in g(s, case))

present = [s for s in ORDER if g(s, tput)]
base_p50 = med("upstream", tput, "p50_us")
base_c1 = med("upstream", "c1", "p50_us")
W = meta.get("workers", "1")

out = ["## Center chain (bench/cluster.sh)\n"]
out.append(
    f"{meta.get('date', '?')} · {meta.get('host_cpus', '?')} CPUs (shared by wrk, the upstream and every proxy) · "
    f"kernel {meta.get('kernel', '?')} · nginx {meta.get('nginx', '?')} · wrk {meta.get('wrk', '?')} · "
    f"switchyard commit {meta.get('switchyard_commit', '?')}, binary sha256 {meta.get('switchyard_sha256', '?')}\n"
)
out.append(
    f"Throughput case `wrk -t{meta.get('threads')} -c{meta.get('conns')} -d{meta.get('duration')}`, latency case "
    f"`wrk -t1 -c1 -d{meta.get('lat_duration')}`, GET /alice/x, keep-alive HTTP/1.1, {meta.get('body_bytes')}-byte "
    f"body from an nginx upstream ({meta.get('upstream_workers')} worker); {W} worker(s) per gateway and per nginx; "
    f"medians of {meta.get('repeat')} repetitions, rows alternated run by run.\n"
)
out.append(f"loadavg at start `{meta.get('loadavg_start', '?')}`, at end `{meta.get('loadavg_end', '?')}`\n")
if meta.get("switchyard_skipped"):
    out.append(f"**Switchyard rows skipped:** {meta['switchyard_skipped']}\n")

out.append(
    "| row | path | req/s | p50 µs | added p50 µs | c1 p50 µs | c1 added p50 µs | CPU µs/req (all proxies) "
    "| req/s ÷ nginx-chain | CPU/req ÷ nginx-chain | req/s min–max | runs | errors |"
)
out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
n_rps, n_cpu = med("nginx-chain", tput, "rps"), med("nginx-chain", tput, "proxy_cpu_us_per_req")
for s in present:
    t, c1 = g(s, tput), g(s, "c1")
    rps, p50, cpu = med(s, tput, "rps"), med(s, tput, "p50_us"), med(s, tput, "proxy_cpu_us_per_req")
    c1p50 = med(s, "c1", "p50_us")
    added = None if s == "upstream" or p50 is None or base_p50 is None else p50 - base_p50
    c1added = None if s == "upstream" or c1p50 is None or base_c1 is None else c1p50 - base_c1
    vals = [num(r["rps"]) for r in t if num(r["rps"]) is not None]
    spread = f"{min(vals):,.0f}–{max(vals):,.0f}" if vals else "—"
    errs = sum(int(num(r["errors"]) or 0) for r in t + c1)
    out.append(
        f"| {s} | {PATHS[s]} | {fmt(rps)} | {fmt(p50)} | {fmt(added)} | {fmt(c1p50)} | {fmt(c1added)} | "
        f"{fmt(cpu, 1)} | {ratio(rps, n_rps)} | {ratio(cpu, n_cpu) if s != 'upstream' else '—'} | {spread} | "
        f"{len(t)} | {errs} |"
    )
out.append("")

# Goals of issue 14.
def per_rep(a, b, f):
    """f(a_row, b_row) for each repetition where both rows have a throughput run."""
    ra = {r["rep"]: r for r in g(a, tput)}
    rb = {r["rep"]: r for r in g(b, tput)}
    res = []
    for k in sorted(set(ra) & set(rb), key=int):
        try:
            res.append(f(ra[k], rb[k]))
        except (TypeError, ZeroDivisionError):
            pass
    return res

def cpu_of(r):
    return num(r["proxy_cpu_us_per_req"])

lines = []
c_rps, c_cpu = med("chain", tput, "rps"), med("chain", tput, "proxy_cpu_us_per_req")
d_cpu = med("direct", tput, "proxy_cpu_us_per_req")
nd_cpu = med("nginx-direct", tput, "proxy_cpu_us_per_req")
def reps_text(a, b, key):
    vals = per_rep(a, b, lambda x, y: num(x[key]) / num(y[key]))
    return f"; per repetition {', '.join(f'{v:.2f}' for v in vals)}" if vals else ""

if c_rps is not None and n_rps is not None:
    lines.append(
        f"| chain req/s > nginx-chain | {fmt(c_rps)} vs {fmt(n_rps)} req/s ({ratio(c_rps, n_rps)}×"
        f"{reps_text('chain', 'nginx-chain', 'rps')}) | "
        f"{'yes' if c_rps > n_rps else '**no**'} |"
    )
if c_cpu is not None and n_cpu is not None:
    lines.append(
        f"| chain CPU/req < nginx-chain | {fmt(c_cpu, 1)} vs {fmt(n_cpu, 1)} µs ({ratio(c_cpu, n_cpu)}×"
        f"{reps_text('chain', 'nginx-chain', 'proxy_cpu_us_per_req')}) | "
        f"{'yes' if c_cpu < n_cpu else '**no**'} |"
    )
if c_cpu is not None and d_cpu is not None:
    hop = c_cpu - d_cpu
    reps = per_rep("chain", "direct", lambda a, b: (cpu_of(a) - cpu_of(b)) / cpu_of(b))
    rr = f"; per repetition {', '.join(f'{x:.2f}' for x in reps)}" if reps else ""
    lines.append(
        f"| one extra hop (chain − direct CPU/req) ≤ direct CPU/req | {fmt(c_cpu, 1)} − {fmt(d_cpu, 1)} = "
        f"{fmt(hop, 1)} vs {fmt(d_cpu, 1)} µs ({hop / d_cpu:.2f}×{rr}) | {'yes' if hop <= d_cpu else '**no**'} |"
    )
if lines:
    out.append("| goal (issue 14) | measured (medians) | met? |")
    out.append("|---|---|---|")
    out += lines
    if n_cpu is not None and nd_cpu is not None:
        out.append(
            f"| (reference) nginx's extra hop: nginx-chain − nginx-direct | {fmt(n_cpu, 1)} − {fmt(nd_cpu, 1)} = "
            f"{fmt(n_cpu - nd_cpu, 1)} vs {fmt(nd_cpu, 1)} µs ({(n_cpu - nd_cpu) / nd_cpu:.2f}×) | — |"
        )
    out.append("")

out.append("Diagnostics (medians, throughput case unless noted): CPU µs/req of each proxy process, the upstream's, "
           "the machine, and the TCP connections of the row at the end of its throughput run.\n")
out.append(
    "| row | entry proxy µs/req | second proxy µs/req | idle center µs/req | upstream µs/req | CPU µs/req (c1) "
    "| machine busy % | steal % | p99 µs | hop conns: open / closed during run | upstream conns: open / closed during run |"
)
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in present:
    def m(k, case=tput):
        return med(s, case, k)
    hop = "—" if s in ("upstream", "direct", "nginx-direct") else f"{fmt(m('hop_estab'))} / {fmt(m('hop_tw'))}"
    ups = "—" if s == "upstream" else f"{fmt(m('up_estab'))} / {fmt(m('up_tw'))}"
    out.append(
        f"| {s} | {fmt(m('p1_us_per_req'), 1)} | {fmt(m('p2_us_per_req'), 1)} | {fmt(m('idle_us_per_req'), 1)} | "
        f"{fmt(m('upstream_cpu_us_per_req'), 1)} | {fmt(m('proxy_cpu_us_per_req', 'c1'), 1)} | "
        f"{fmt(m('machine_busy_pct'))} | {fmt(m('steal_pct'), 1)} | {fmt(m('p99_us'))} | {hop} | {ups} |"
    )
out.append("")
out.append(
    "Entry proxy: B for `chain`, A for `direct`, nginx 1 for the nginx rows; second proxy: A for `chain`, nginx 2 "
    "for `nginx-chain`; idle center: B during `direct` (up, not in the path, not counted in the row's CPU). "
    "CPU µs/req = (utime+stime of the process tree after − before the wrk run) ÷ requests wrk completed "
    "(CLK_TCK resolution, 10 ms). added p50 = the row's p50 − the upstream row's p50 in the same case. "
    "hop conns: TCP connections to the second proxy's port (A's internal listener, nginx 2) established at the end of "
    "the run / new TIME-WAIT sockets towards it during the run (connections not reused); upstream conns the same "
    "towards the upstream (for the upstream row: wrk's own)."
)
print("\n".join(out))
PY
}

if [[ ${1:-} == --report ]]; then
    [[ -d ${2:-} ]] || die "usage: bench/cluster.sh --report RESULTS_DIR"
    cluster_report "$2"
    exit
fi

WORKERS=${WORKERS:-1}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
DURATION=${DURATION:-6s}
LAT_DURATION=${LAT_DURATION:-3s}
WARMUP=${WARMUP:-1s}
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}
SYSTEMS=${SYSTEMS:-upstream direct chain nginx-direct nginx-chain}
ADMIN_TOKEN=bench-admin-token-0123456789
POD_PATH=/alice/x

need nginx wrk curl python3 ss ps
((REPEAT >= 1)) || die "REPEAT must be >= 1"
for s in $SYSTEMS; do
    case $s in upstream | direct | chain | nginx-direct | nginx-chain) ;; *) die "unknown row '$s'" ;; esac
done

bench_init cluster
bench_results cluster

cat >"$BENCH_TMP/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

LOADAVG_START=$(cat /proc/loadavg)
{
    bench_meta
    wrk_meta
    echo "systems=$SYSTEMS"
} >"$RESULTS/meta.txt"
log "loadavg at start: $LOADAVG_START"

start_upstream "$UPSTREAM_WORKERS"

# ----------------------------------------------------------------- systems ---

# Wait until http://127.0.0.1:port/path answers with the upstream body; fails early when pid dies.
wait_body() {  # port path pid timeout_s
    local port=$1 path=$2 pid=$3 timeout=$4 deadline body
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        body=$(curl -s -m 2 "http://127.0.0.1:$port$path" 2>/dev/null) && [[ $body == "$UPSTREAM_BODY" ]] && return 0
        sleep 0.1
    done
    return 1
}

# N distinct free ports in PORTS (free_port runs in a subshell each time, so its own list of
# ports handed out does not see the others of one start).
distinct_ports() {  # n
    local p
    PORTS=()
    while ((${#PORTS[@]} < $1)); do
        p=$(free_port)
        [[ " ${PORTS[*]} " == *" $p "* ]] || PORTS+=("$p")
    done
}

# The processes of the running row: PROC_PIDS[0] the entry proxy, [1] the second proxy (chains),
# IDLE_PID a center that is up but not in the path; ENTRY_PORT takes wrk, HOP_PORT is the
# second proxy's port, ROW_ERR says why a start failed.
PROC_PIDS=() IDLE_PID="" ENTRY_PORT="" HOP_PORT="" ROW_ERR=""

start_nginx_proxy() {  # dir port upstream_port
    write_nginx_proxy_conf "$1" "$2" "$3" "$WORKERS"
    bench_spawn "$1/logs/stdout.log" nginx -p "$1" -c "$1/nginx.conf" -e "$1/logs/error.log"
}

# Centers A and B on a fresh shared registry, pod alice created through A's admin API and
# routed by both. Sets A_PID, B_PID, A_PUBLIC, A_INTERNAL, B_PUBLIC.
start_centers() {  # dir
    local d=$1 a_admin b_admin b_internal b_pods code rc
    [[ -x $SWITCHYARD_BIN ]] || { ROW_ERR="binary $SWITCHYARD_BIN not found (build it with: swift build -c release)"; return 1; }
    mkdir -p "$d"
    distinct_ports 7
    read -r A_PUBLIC A_INTERNAL a_admin B_PUBLIC b_internal b_admin b_pods <<<"${PORTS[*]}"
    # b_pods: B's own pod server, where nothing listens (see the header).
    printf 'bench-cluster-secret-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$d/cluster-secret"
    chmod 600 "$d/cluster-secret"
    write_center_conf "$d/a" center-a "$A_PUBLIC" "$A_INTERNAL" "$a_admin" "$UPSTREAM_PORT" "$d/registry.db" "$d/cluster-secret"
    write_center_conf "$d/b" center-b "$B_PUBLIC" "$b_internal" "$b_admin" "$b_pods" "$d/registry.db" "$d/cluster-secret"
    bench_spawn "$d/a/switchyard.log" "$SWITCHYARD_BIN" serve --config "$d/a/switchyard.yaml"; A_PID=$SPAWNED_PID
    wait_listen "$a_admin" "$A_PID" 15; rc=$?
    if ((rc != 0)); then ROW_ERR="center A did not start ($rc): $(tail -c 600 "$d/a/switchyard.log" | tr '\n' ' ')"; return 1; fi
    bench_spawn "$d/b/switchyard.log" "$SWITCHYARD_BIN" serve --config "$d/b/switchyard.yaml"; B_PID=$SPAWNED_PID
    wait_listen "$b_admin" "$B_PID" 15; rc=$?
    if ((rc != 0)); then ROW_ERR="center B did not start ($rc): $(tail -c 600 "$d/b/switchyard.log" | tr '\n' ' ')"; return 1; fi
    code=$(curl -sS -o "$d/pod-create.json" -w '%{http_code}' -X POST -H "X-Admin-Token: $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' \
        --data "{\"pod_id\":\"alice\",\"node_id\":\"center-a\",\"base_url\":\"http://127.0.0.1:$A_PUBLIC/alice/\"}" \
        "http://127.0.0.1:$a_admin/.cluster/pods" 2>&1)
    if [[ $code != 201 ]]; then ROW_ERR="pod creation answered $code: $(head -c 300 "$d/pod-create.json" 2>/dev/null)"; return 1; fi
    wait_body "$A_PUBLIC" "$POD_PATH" "$A_PID" 10 || { ROW_ERR="A does not route $POD_PATH: $(curl -s -m 2 -i "http://127.0.0.1:$A_PUBLIC$POD_PATH" | head -c 300 | tr '\r\n' '  ')"; return 1; }
    wait_body "$B_PUBLIC" "$POD_PATH" "$B_PID" 10 || { ROW_ERR="B does not route $POD_PATH to A: $(curl -s -m 2 -i "http://127.0.0.1:$B_PUBLIC$POD_PATH" | head -c 300 | tr '\r\n' '  ')"; return 1; }
    return 0
}

# Start the row's processes; returns non-zero with ROW_ERR set if the row does not answer
# GET /alice/x with the upstream body.
start_row() {  # row dir
    local row=$1 d=$2 p1 p2
    PROC_PIDS=() IDLE_PID="" ENTRY_PORT="" HOP_PORT="" ROW_ERR=""
    mkdir -p "$d"
    case $row in
        upstream) ENTRY_PORT=$UPSTREAM_PORT ;;
        direct | chain)
            start_centers "$d" || return 1
            if [[ $row == direct ]]; then
                PROC_PIDS=("$A_PID"); IDLE_PID=$B_PID; ENTRY_PORT=$A_PUBLIC
            else
                PROC_PIDS=("$B_PID" "$A_PID"); ENTRY_PORT=$B_PUBLIC; HOP_PORT=$A_INTERNAL
            fi ;;
        nginx-direct)
            p1=$(free_port)
            start_nginx_proxy "$d/nginx" "$p1" "$UPSTREAM_PORT"; PROC_PIDS=("$SPAWNED_PID"); ENTRY_PORT=$p1 ;;
        nginx-chain)
            distinct_ports 2; p1=${PORTS[0]}; p2=${PORTS[1]}
            start_nginx_proxy "$d/nginx2" "$p2" "$UPSTREAM_PORT"; PROC_PIDS=("$SPAWNED_PID")
            start_nginx_proxy "$d/nginx1" "$p1" "$p2"; PROC_PIDS=("$SPAWNED_PID" "${PROC_PIDS[@]}")
            ENTRY_PORT=$p1; HOP_PORT=$p2 ;;
    esac
    local pid
    for pid in "${PROC_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { ROW_ERR="a process of $row exited during startup"; return 1; }
    done
    wait_body "$ENTRY_PORT" "$POD_PATH" "${PROC_PIDS[0]:-$UPSTREAM_PID}" 10 ||
        { ROW_ERR="$row does not answer $POD_PATH with the upstream body: $(curl -s -m 2 -i "http://127.0.0.1:$ENTRY_PORT$POD_PATH" | head -c 300 | tr '\r\n' '  ')"; return 1; }
    return 0
}

stop_row() {
    local pid
    for pid in "${PROC_PIDS[@]}" $IDLE_PID; do stop_pid "$pid"; done
    # Whatever start_centers left half-started.
    for pid in "${A_PID:-}" "${B_PID:-}"; do [[ -n $pid ]] && stop_pid "$pid"; done
    PROC_PIDS=() IDLE_PID="" A_PID="" B_PID=""
}

# Probe the centers once: skip the Switchyard rows cleanly if the binary is missing or the
# cluster does not work (yet).
if [[ " $SYSTEMS " == *" direct "* || " $SYSTEMS " == *" chain "* ]]; then
    if start_row chain "$BENCH_TMP/probe"; then
        curl -s -D "$RESULTS/raw/probe-chain-headers.txt" -o /dev/null "http://127.0.0.1:$ENTRY_PORT$POD_PATH"
        curl -s -D "$RESULTS/raw/probe-direct-headers.txt" -o /dev/null "http://127.0.0.1:$A_PUBLIC$POD_PATH"
        stop_row
        log "switchyard centers answer: included"
    else
        stop_row
        log "SKIP direct, chain: $ROW_ERR"
        echo "switchyard_skipped=$ROW_ERR" >>"$RESULTS/meta.txt"
        keep=""
        for s in $SYSTEMS; do [[ $s == direct || $s == chain ]] || keep+="$s "; done
        SYSTEMS=$keep
    fi
fi

# ----------------------------------------------------------------- measure ---

cpu_stat() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $9; exit}' /proc/stat; }
conns() {  # port: TCP connections to 127.0.0.1:port that are established
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}
tw_list() {  # port: the TIME-WAIT sockets towards it (one 4-tuple a line, sorted)
    ss -Htn state time-wait "( dport = :$1 or sport = :$1 )" 2>/dev/null | awk '{print $(NF-1), $NF}' | sort
}
tw_new() {  # before_file port: TIME-WAIT sockets towards port that were not there before
    comm -13 "$1" <(tw_list "$2") | wc -l
}

TSV="$RESULTS/runs.tsv"
printf 'rep\tsystem\tcase\tconns\trequests\tduration_s\trps\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\terrors\terr_status\tproxy_cpu_us_per_req\tp1_us_per_req\tp2_us_per_req\tidle_us_per_req\tupstream_cpu_us_per_req\tmachine_busy_pct\tsteal_pct\thop_estab\thop_tw\tup_estab\tup_tw\tloadavg1\n' >"$TSV"

ticks_of() { [[ -n ${1:-} ]] && tree_ticks "$1" || echo 0; }

measure() {  # rep row case conns threads duration
    local rep=$1 row=$2 case=$3 c=$4 t=$5 dur=$6
    local raw="$RESULTS/raw/r$rep-$row-$case.txt" a0 a1 b0 b1 i0 i1 u0 u1 s0 s1 res
    a0=$(ticks_of "${PROC_PIDS[0]:-}"); b0=$(ticks_of "${PROC_PIDS[1]:-}"); i0=$(ticks_of "$IDLE_PID")
    # Connections closed during the run (not reused) leave TIME-WAIT sockets behind: count the new ones.
    tw_list "$UPSTREAM_PORT" >"$BENCH_TMP/tw-up"
    if [[ -n $HOP_PORT ]]; then tw_list "$HOP_PORT" >"$BENCH_TMP/tw-hop"; fi
    u0=$(tree_ticks "$UPSTREAM_PID"); s0=$(cpu_stat)
    run_bg "$raw" wrk -t"$t" -c"$c" -d"$dur" --timeout 5s --latency -s "$BENCH_TMP/report.lua" \
        "http://127.0.0.1:$ENTRY_PORT$POD_PATH"
    s1=$(cpu_stat)
    a1=$(ticks_of "${PROC_PIDS[0]:-}"); b1=$(ticks_of "${PROC_PIDS[1]:-}"); i1=$(ticks_of "$IDLE_PID")
    u1=$(tree_ticks "$UPSTREAM_PID")
    local hop_e=NA hop_t=NA up_e up_t
    if [[ -n $HOP_PORT ]]; then hop_e=$(conns "$HOP_PORT"); hop_t=$(tw_new "$BENCH_TMP/tw-hop" "$HOP_PORT"); fi
    up_e=$(conns "$UPSTREAM_PORT"); up_t=$(tw_new "$BENCH_TMP/tw-up" "$UPSTREAM_PORT")
    local pid
    for pid in "${PROC_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || log "WARNING: a process of $row died during the $case run"
    done
    res=$(grep '^RESULT ' "$raw")
    [[ -n $res ]] || { log "WARNING: no wrk result for $row $case (see $raw)"; return 1; }
    local requests duration_us p50_us p90_us p99_us p999_us max_us err_connect err_read err_write err_status err_timeout bytes mean_us
    eval "$(echo "${res#RESULT }" | tr ' ' '\n' | grep -E '^[a-z0-9_]+=[0-9.]+$')"
    awk -v OFS='\t' -v rep="$rep" -v sys="$row" -v cs="$case" -v conns="$c" -v req="$requests" \
        -v dur="$duration_us" -v p50="$p50_us" -v p90="$p90_us" -v p99="$p99_us" -v p999="$p999_us" -v mx="$max_us" \
        -v errs=$((err_connect + err_read + err_write + err_timeout + err_status)) -v est="$err_status" \
        -v n="${#PROC_PIDS[@]}" -v at=$((a1 - a0)) -v bt=$((b1 - b0)) -v it=$((i1 - i0)) -v ut=$((u1 - u0)) \
        -v hasidle="${IDLE_PID:+1}" -v hz="$CLK_TCK" -v s0="$s0" -v s1="$s1" -v la="$(cut -d' ' -f1 /proc/loadavg)" \
        -v he="$hop_e" -v ht="$hop_t" -v ue="$up_e" -v ut2="$up_t" '
        function per(x) { return req > 0 ? sprintf("%.2f", x / hz / req * 1e6) : "NA" }
        BEGIN {
            split(s0, a, " "); split(s1, b, " ")
            tot = b[1] - a[1]; idle = b[2] - a[2]; steal = b[3] - a[3]
            secs = dur / 1e6
            all = (n > 0) ? per(at + bt) : "NA"; first = (n > 0) ? per(at) : "NA"
            second = (n > 1) ? per(bt) : "NA"; idlec = hasidle ? per(it) : "NA"
            print rep, sys, cs, conns, req, sprintf("%.3f", secs), sprintf("%.1f", req / secs),
                  p50, p90, p99, p999, mx, errs, est, all, first, second, idlec, per(ut),
                  sprintf("%.1f", tot > 0 ? 100 * (tot - idle) / tot : 0),
                  sprintf("%.1f", tot > 0 ? 100 * steal / tot : 0), he, ht, ue, ut2, la
        }' >>"$TSV"
    tail -1 "$TSV" | awk -F'\t' '{printf "    %-12s %-4s %9.0f req/s  p50 %7.0fus  p99 %7.0fus  cpu/req %6s us (%s + %s)  errors %s\n", $2, $3, $7, $8, $10, $15, $16, $17, $13}' >&2
}

run_row() {  # rep row
    local rep=$1 row=$2
    if ! start_row "$row" "$BENCH_TMP/r$rep-$row"; then
        log "  $row: failed to start, run skipped: $ROW_ERR"
        stop_row
        return
    fi
    run_bg /dev/null wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" --timeout 5s "http://127.0.0.1:$ENTRY_PORT$POD_PATH"
    measure "$rep" "$row" "c$CONNS" "$CONNS" "$THREADS" "$DURATION"
    measure "$rep" "$row" c1 1 1 "$LAT_DURATION"
    stop_row
}

# shellcheck disable=SC2086
set -- $SYSTEMS
log "rows: $*; $REPEAT repetitions"
bench_rounds run_row "$@"

loadavg_end=$(cat /proc/loadavg)
echo "loadavg_end=$loadavg_end" >>"$RESULTS/meta.txt"
log "loadavg at end: $loadavg_end"
cluster_report "$RESULTS" >"$RESULTS/summary.md" || die "report failed"
cp "$RESULTS/summary.md" "$BENCH_DIR/results/cluster-latest.md"
log "raw results: $RESULTS"
cat "$RESULTS/summary.md"
