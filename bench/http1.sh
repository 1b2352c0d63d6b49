#!/usr/bin/env bash
# bench/http1.sh - HTTP/1.1 keep-alive proxy benchmark on loopback.
#
# One nginx upstream serves a fixed ~100-byte body. In front of it, one at a
# time, run: nothing ("direct"), a C byte relay (the floor), nginx, HAProxy and
# Switchyard, each with W workers. wrk drives each system twice per run: a
# throughput case (-c$CONNS) and a single-connection latency case (-c1).
# Systems alternate run by run (round-robin, rotated every repetition); every
# system is started fresh for its run, warmed up, measured, stopped.
#
#   bench/http1.sh [W ...]          default W list: 1 2
#
# Environment (defaults in brackets):
#   WORKERS ["1 2"]  REPEAT [3]  CONNS [50]  THREADS [1]  DURATION [6s]
#   LAT_DURATION [3s]  WARMUP [1s]  UPSTREAM_WORKERS [1]
#   SYSTEMS ["direct relay nginx haproxy switchyard"]; add "sticky" for Switchyard routing, and
#   "switchyard-base" for a second build (SWITCHYARD_BASE_BIN, e.g. the parent of a change)
#   measured in the same run
#     /ws/<id>/ over 10,000 user ids through its registry, and "static-ws" for the same
#     requests (same wrk Lua script) over a static route: the pair compares like with like
#     (issue 3: sticky within 10% of static)
#   SWITCHYARD_BIN [$ROOT/.build/release/switchyard]
#
# stdout: the markdown report. stderr: progress. Raw data: bench/results/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKERS=${*:-${WORKERS:-1 2}}
REPEAT=${REPEAT:-3}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
DURATION=${DURATION:-6s}
LAT_DURATION=${LAT_DURATION:-3s}
WARMUP=${WARMUP:-1s}
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}
SYSTEMS=${SYSTEMS:-direct relay nginx haproxy switchyard}

need nginx haproxy wrk curl cc python3 ss ps
((REPEAT >= 1)) || die "REPEAT must be >= 1"

bench_init http1
bench_results http1
RELAY_BIN="$BENCH_DIR/results/relay"
compile_c "$BENCH_DIR/relay.c" "$RELAY_BIN"

# The sticky case: each request for a user id drawn from 10,000 (placed on first sight, looked
# up afterwards), so wrk exercises key extraction and the registry rather than one hot key.
cat >"$BENCH_TMP/sticky-request.lua" <<'EOF'
math.randomseed(42)
request = function()
  return wrk.format("GET", "/ws/user" .. math.random(1, 10000) .. "/index.html")
end
EOF

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

cat "$BENCH_TMP/sticky-request.lua" "$BENCH_TMP/report.lua" >"$BENCH_TMP/sticky.lua"

LOADAVG_START=$(cat /proc/loadavg)
{
    bench_meta
    wrk_meta
} >"$RESULTS/meta.txt"
log "loadavg at start: $LOADAVG_START"

start_upstream "$UPSTREAM_WORKERS"

# The list of (system, W) configurations. direct and relay do not depend on W:
# they are measured once per repetition (relay is single-threaded: W=1).
CONFIGS=()
for sys in $SYSTEMS; do
    case $sys in
        direct) CONFIGS+=("direct:-") ;;
        relay) CONFIGS+=("relay:1") ;;
        nginx | haproxy | switchyard | sticky | static-ws | switchyard-base) for w in $WORKERS; do CONFIGS+=("$sys:$w"); done ;;
        *) die "unknown system '$sys'" ;;
    esac
done

# Probe Switchyard once: skip it cleanly if missing or not answering.
if [[ " $SYSTEMS " == *" switchyard "* ]]; then
    SYS_ERR=""
    if start_system switchyard 1 10; then
        stop_system
        log "switchyard answers: included"
    else
        log "SKIP switchyard: $SYS_ERR"
        echo "switchyard_skipped=${SYS_ERR%%; log tail*}" >>"$RESULTS/meta.txt"
        keep=()
        for c in "${CONFIGS[@]}"; do [[ $c == switchyard:* || $c == sticky:* || $c == static-ws:* ]] || keep+=("$c"); done
        CONFIGS=("${keep[@]}")
    fi
fi

cpu_stat() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t, $5 + $6, $9; exit}' /proc/stat; }

TSV="$RESULTS/runs.tsv"
printf 'rep\tseq\tsystem\tworkers\tcase\tconns\trequests\tduration_s\trps\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\terrors\terr_status\tproxy_cpu_s\tupstream_cpu_s\tproxy_cpu_us_per_req\tupstream_cpu_us_per_req\tmachine_busy_pct\tsteal_pct\tloadavg1\n' >"$TSV"
SEQ=0

# One wrk measurement against the running system; appends a row to runs.tsv.
measure() {  # rep sys w case conns threads duration
    local rep=$1 sys=$2 w=$3 case=$4 conns=$5 threads=$6 dur=$7
    local raw="$RESULTS/raw/r$rep-$sys-w$w-$case.txt"
    local p0 p1 u0 u1 s0 s1 res
    SEQ=$((SEQ + 1))
    p0=0; [[ -n $SYS_PID ]] && p0=$(tree_ticks "$SYS_PID")
    u0=$(tree_ticks "$UPSTREAM_PID")
    s0=$(cpu_stat)
    local script="$BENCH_TMP/report.lua"
    [[ $sys == sticky || $sys == static-ws ]] && script="$BENCH_TMP/sticky.lua"
    run_bg "$raw" wrk -t"$threads" -c"$conns" -d"$dur" --timeout 5s --latency -s "$script" \
        "http://127.0.0.1:$SYS_PORT/"
    s1=$(cpu_stat)
    p1=0; [[ -n $SYS_PID ]] && p1=$(tree_ticks "$SYS_PID")
    u1=$(tree_ticks "$UPSTREAM_PID")
    if [[ -n $SYS_PID ]] && ! kill -0 "$SYS_PID" 2>/dev/null; then
        log "WARNING: $sys (W=$w) died during the $case run"
    fi
    res=$(grep '^RESULT ' "$raw")
    if [[ -z $res ]]; then
        log "WARNING: no wrk result for $sys W=$w $case (see $raw)"
        return 1
    fi
    # shellcheck disable=SC2086
    local requests duration_us p50_us p90_us p99_us p999_us max_us err_connect err_read err_write err_status err_timeout bytes mean_us
    eval "$(echo "${res#RESULT }" | tr ' ' '\n' | grep -E '^[a-z0-9_]+=[0-9.]+$')"
    local loadavg1
    loadavg1=$(cut -d' ' -f1 /proc/loadavg)
    awk -v OFS='\t' -v rep="$rep" -v seq="$SEQ" -v sys="$sys" -v w="$w" -v cs="$case" -v conns="$conns" \
        -v req="$requests" -v dur="$duration_us" -v p50="$p50_us" -v p90="$p90_us" -v p99="$p99_us" \
        -v p999="$p999_us" -v mx="$max_us" \
        -v errs=$((err_connect + err_read + err_write + err_timeout + err_status)) -v est="$err_status" \
        -v pt=$((p1 - p0)) -v ut=$((u1 - u0)) -v hz="$CLK_TCK" -v hasp="${SYS_PID:+1}" \
        -v s0="$s0" -v s1="$s1" -v la="$loadavg1" '
        BEGIN {
            split(s0, a, " "); split(s1, b, " ")
            tot = b[1] - a[1]; idle = b[2] - a[2]; steal = b[3] - a[3]
            secs = dur / 1e6
            pcpu = hasp ? pt / hz : "NA"
            pcr = (hasp && req > 0) ? sprintf("%.2f", pt / hz / req * 1e6) : "NA"
            ucr = req > 0 ? sprintf("%.2f", ut / hz / req * 1e6) : "NA"
            print rep, seq, sys, w, cs, conns, req, sprintf("%.3f", secs), sprintf("%.1f", req / secs),
                  p50, p90, p99, p999, mx, errs, est, pcpu, ut / hz, pcr, ucr,
                  sprintf("%.1f", tot > 0 ? 100 * (tot - idle) / tot : 0),
                  sprintf("%.1f", tot > 0 ? 100 * steal / tot : 0), la
        }' >>"$TSV"
    tail -1 "$TSV" | awk -F'\t' '{printf "    %-10s W=%-2s %-4s %9.0f req/s  p50 %7.0fus  p99 %7.0fus  cpu/req %6s us  errors %s\n", $3, $4, $5, $9, $10, $12, $19, $15}' >&2
}

run_config() {  # rep "sys:w"
    local rep=$1 sys=${2%%:*} w=${2##*:} sw
    sw=$w; [[ $w == - ]] && sw=1
    SYS_ERR=""
    if ! start_system "$sys" "$sw" 10; then
        log "  $sys W=$w: failed to start, run skipped: $SYS_ERR"
        return
    fi
    run_bg /dev/null wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" --timeout 5s "http://127.0.0.1:$SYS_PORT/"
    measure "$rep" "$sys" "$w" "c$CONNS" "$CONNS" "$THREADS" "$DURATION"
    measure "$rep" "$sys" "$w" "c1" 1 1 "$LAT_DURATION"
    stop_system
}

log "configurations: ${CONFIGS[*]}; $REPEAT repetitions"
bench_rounds run_config "${CONFIGS[@]}"
bench_report report.py http1
