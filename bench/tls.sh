#!/usr/bin/env bash
# bench/tls.sh - TLS termination on loopback: nginx, HAProxy and Switchyard.
#
# One nginx upstream (plain HTTP, the fixed ~100-byte body of lib.sh). In
# front of it, one at a time, each proxy terminates TLS with the same ECDSA
# P-256 certificate (made by this script with openssl) and W workers. Every
# system is started fresh for its run and goes through the tests in order:
#   keepalive  wrk over HTTPS/1.1, -c$CONNS keep-alive connections: req/s,
#              p50/p99, proxy CPU per request
#   full       bench/tlshs.c: $HS_CONNS concurrent connections, each a loop of
#              connect + full handshake + one GET (Connection: close) + close;
#              no session is ever offered: handshakes/s, proxy CPU per connection
#   resume     the same, each connection offering the newest session ticket its
#              slot received, once (OpenSSL clients, like browsers, use a TLS 1.3
#              ticket only once); the client counts how many connections offered
#              a ticket and how many handshakes actually resumed (reported)
#   reuse      the same, but a ticket is offered again until a newer one
#              arrives: resumption capacity whatever the server's ticket policy
#   h2         h2load -c$H2_CONNS -m$H2_STREAMS over TLS (ALPN h2), every
#              stream proxied to the upstream over HTTP/1.1; a system that does
#              not negotiate h2 gets the row "<system>: h2 not implemented"
# Systems alternate run by run (round-robin over (system, W), rotated every
# repetition); the report shows medians of REPEAT runs and ratios to nginx and
# HAProxy at the same W.
#
# CPU placement (PIN=1): ECDSA handshakes cost the client more than the server
# (it verifies the signature, the server signs), so the client (wrk, tlshs,
# h2load) runs pinned to the first allowed CPU with the upstream, and the proxy,
# all its workers, alone on the last one. With 2 CPUs, W=2 thus puts both
# workers on one core: it measures the cost of a second worker, not scaling.
#
#   bench/tls.sh [W ...]            default W list: 1 2
#
# Environment (defaults in brackets):
#   WORKERS ["1 2"]  REPEAT [3]  SYSTEMS ["nginx haproxy switchyard"]; "switchyard-base": a second
#   build (SWITCHYARD_BASE_BIN, e.g. the parent of a change) in the same run
#   TESTS ["keepalive full resume reuse h2"]
#   CONNS [50]  DURATION [3s]  WARMUP [1s]          (wrk, keepalive test)
#   HS_CONNS [20]  HS_DURATION [2]  HS_WARMUP [0.5]  HS_TLS [1.3]  (tlshs; HS_TLS=1.2: TLS 1.2 tickets)
#   H2_CONNS [10]  H2_STREAMS [10]  H2_DURATION [2]  (h2load)
#   PIN [1] (0: no pinning)  UPSTREAM_WORKERS [1]  SWITCHYARD_BIN [$ROOT/.build/release/switchyard]
#
# stdout: the markdown report. stderr: progress. Raw data: bench/results/tls-*/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKERS=${*:-${WORKERS:-1 2}}
REPEAT=${REPEAT:-3}
SYSTEMS=${SYSTEMS:-nginx haproxy switchyard}
TESTS=${TESTS:-keepalive full resume reuse h2}
CONNS=${CONNS:-50}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
HS_CONNS=${HS_CONNS:-20}
HS_DURATION=${HS_DURATION:-2}
HS_WARMUP=${HS_WARMUP:-0.5}
HS_TLS=${HS_TLS:-1.3}
H2_CONNS=${H2_CONNS:-10}
H2_STREAMS=${H2_STREAMS:-10}
H2_DURATION=${H2_DURATION:-2}
PIN=${PIN:-1}
UPSTREAM_WORKERS=${UPSTREAM_WORKERS:-1}

need nginx haproxy wrk openssl cc python3 ss ps taskset
[[ " $TESTS " == *" h2 "* ]] && need h2load
((REPEAT >= 1)) || die "REPEAT must be >= 1"
for t in $TESTS; do [[ $t == keepalive || $t == full || $t == resume || $t == reuse || $t == h2 ]] || die "unknown test '$t'"; done
[[ $HS_TLS == 1.2 || $HS_TLS == 1.3 ]] || die "HS_TLS must be 1.2 or 1.3"

bench_init tls

# A binary older than the last commit that touched Sources/ is probably stale: say so.
if [[ -x $SWITCHYARD_BIN ]]; then
    src_commit_ts=$(git -C "$ROOT" log -1 --format=%ct -- Sources 2>/dev/null || echo 0)
    if (($(stat -c %Y "$(readlink -f "$SWITCHYARD_BIN")") < ${src_commit_ts:-0})); then
        log "WARNING: $SWITCHYARD_BIN is older than the last commit touching Sources/ (swift build -c release --static-swift-stdlib)"
    fi
fi
bench_results tls

TLSHS="$BENCH_DIR/results/tlshs"
if [[ ! -x $TLSHS || $BENCH_DIR/tlshs.c -nt $TLSHS ]]; then
    cc -O2 -Wall -Wextra -o "$TLSHS" "$BENCH_DIR/tlshs.c" -lssl -lcrypto || die "cannot compile bench/tlshs.c (needs libssl-dev)"
fi

# ---------------------------------------------------------------- CPUs ---

ALLOWED=$(taskset -pc $$ | sed 's/.*: //')
CPUS=()
for part in ${ALLOWED//,/ }; do
    if [[ $part == *-* ]]; then for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPUS+=("$c"); done; else CPUS+=("$part"); fi
done
PROXY_WRAP=() LOAD_WRAP=() PINNING="none (PIN=0)" PROXY_CPU="" LOAD_CPU=""
if [[ $PIN == 1 ]]; then
    if ((${#CPUS[@]} >= 2)); then
        PROXY_CPU=${CPUS[-1]}
        LOAD_CPU=${CPUS[0]}
        PROXY_WRAP=(taskset -c "$PROXY_CPU")
        LOAD_WRAP=(taskset -c "$LOAD_CPU")
        PINNING="client (wrk, tlshs, h2load) and upstream nginx on CPU $LOAD_CPU; the proxy (all workers) alone on CPU $PROXY_CPU"
    else
        PINNING="none (only ${#CPUS[@]} CPU allowed)"
    fi
fi
log "pinning: $PINNING"

# ---------------------------------------------------------------- certificate ---

# One ECDSA P-256 certificate for localhost and 127.0.0.1, for every system:
# Switchyard reads the directory (NAME.crt + NAME.key), nginx the two files,
# HAProxy one PEM with both.
CERTS="$BENCH_TMP/certs"
mkdir -p "$CERTS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$CERTS/bench.key" -out "$CERTS/bench.crt" 2>"$BENCH_TMP/openssl.log" ||
    die "openssl could not make the certificate: $(cat "$BENCH_TMP/openssl.log")"
cat "$CERTS/bench.crt" "$CERTS/bench.key" >"$BENCH_TMP/haproxy-bench.pem"
chmod 644 "$CERTS"/* "$BENCH_TMP/haproxy-bench.pem"   # nginx workers may run as nobody
cp "$CERTS/bench.crt" "$RESULTS/bench.crt"

# ---------------------------------------------------------------- configs ---

# TLS 1.2 and 1.3 everywhere (nginx 1.22's default list lacks TLSv1.3), tickets on.
# nginx and HAProxy also offer h2 by ALPN (the h1 clients offer http/1.1 or nothing).
write_tls_nginx_conf() {  # dir port upstream_port workers
    write_nginx_proxy_conf "$1" "$2" "$3" "$4" " ssl http2" "        ssl_certificate $CERTS/bench.crt;
        ssl_certificate_key $CERTS/bench.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;"
}

write_tls_haproxy_conf() {  # dir port upstream_port threads
    write_haproxy_conf "$1" "$2" "$3" "$4" " ssl crt $BENCH_TMP/haproxy-bench.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2"
}

write_tls_switchyard_conf() {  # dir port upstream_port workers
    local d=$1 port=$2 up=$3 workers=$4
    mkdir -p "$d"
    cat >"$d/switchyard.yaml" <<EOF
workers: $workers
listeners:
  - name: public
    address: 127.0.0.1:$port
    tls: {certificates: $CERTS}
admin:
  address: "off"
logging:
  access: off
  error: stderr
routes:
  - name: bench
    path_prefix: /
    upstreams: ["127.0.0.1:$up"]
EOF
}

# ---------------------------------------------------------------- processes ---

# Start one system; ready once a TLS GET through it returns the body's 200.
# Sets SYS_PORT, SYS_PID, SYS_DIR, PROBE (the probe's line); on failure SYS_ERR.
start_tls_system() {  # system workers tag [timeout_s]
    local sys=$1 w=$2 tag=$3 timeout=${4:-10} deadline
    SYS_DIR="$BENCH_TMP/$sys-w$w-$tag"
    SYS_PID="" SYS_PORT=$(free_port) PROBE=""
    mkdir -p "$SYS_DIR"
    case $sys in
        nginx)
            write_tls_nginx_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w"
            bench_spawn "$SYS_DIR/logs/stdout.log" "${PROXY_WRAP[@]}" nginx -p "$SYS_DIR" -c "$SYS_DIR/nginx.conf" -e "$SYS_DIR/logs/error.log" ;;
        haproxy)
            write_tls_haproxy_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w"
            bench_spawn "$SYS_DIR/haproxy.log" "${PROXY_WRAP[@]}" haproxy -db -f "$SYS_DIR/haproxy.cfg" ;;
        switchyard | switchyard-base)
            local bin=$SWITCHYARD_BIN
            [[ $sys == switchyard-base ]] && bin=$SWITCHYARD_BASE_BIN
            [[ -x $bin ]] || { SYS_ERR="binary ${bin:-(SWITCHYARD_BASE_BIN unset)} not found (build it with: swift build -c release --static-swift-stdlib)"; return 1; }
            write_tls_switchyard_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w"
            bench_spawn "$SYS_DIR/switchyard.log" "${PROXY_WRAP[@]}" "$bin" serve --config "$SYS_DIR/switchyard.yaml" ;;
        *) die "unknown system $sys" ;;
    esac
    SYS_PID=$SPAWNED_PID
    if ! wait_listen "$SYS_PORT" "$SYS_PID" "$timeout"; then
        SYS_ERR="$sys did not listen within ${timeout}s; log tail: $(tail -c 600 "$SYS_DIR"/*.log "$SYS_DIR"/logs/*.log 2>/dev/null | tr '\n' ' ')"
        stop_pid "$SYS_PID"; SYS_PID=""
        return 1
    fi
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        PROBE=$("$TLSHS" probe "$SYS_PORT" -V "$HS_TLS" 2>&1) && return 0
        kill -0 "$SYS_PID" 2>/dev/null || break
        sleep 0.2
    done
    SYS_ERR="no TLS GET through $sys: ${PROBE:-process exited}; log tail: $(tail -c 400 "$SYS_DIR"/*.log "$SYS_DIR"/logs/*.log 2>/dev/null | tr '\n' ' ')"
    stop_pid "$SYS_PID"; SYS_PID=""
    return 1
}

# "total idle" jiffies of one CPU line of /proc/stat (cpu = "" for the machine).
cpu_jiffies() {  # cpu
    awk -v name="cpu$1" '$1 == name { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6, $9; exit }' /proc/stat
}
busy_pct() {  # "t0 i0 s0" "t1 i1 s1" -> busy% steal%
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1];
        printf "%.1f %.1f", (t > 0 ? 100 * (t - (y[2] - x[2])) / t : 0), (t > 0 ? 100 * (y[3] - x[3]) / t : 0) }'
}

# The CPUs every thread of a process tree may run on, as "list" or "list1 / list2" when they differ.
tree_affinity() {  # pid
    local pid
    for pid in $(tree_pids "$1"); do
        awk '/^Cpus_allowed_list:/ { print $2 }' /proc/"$pid"/task/*/status 2>/dev/null
    done | sort -u | paste -sd/ - | sed 's|/| / |g'
}

kv() {  # key "k=v k=v ...": the value of key, or NA
    local k=$1 line=$2 v
    v=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$k=//p" | head -1)
    echo "${v:-NA}"
}

# ---------------------------------------------------------------- tests ---

cat >"$BENCH_TMP/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f mean_us=%.1f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

RUNS_TSV="$RESULTS/runs.tsv"
COLS=(rep seq system workers test conns window_s requests rate p50_us p99_us p999_us mean_us errors resumed_pct
    offered_pct tickets_per_conn proxy_cpu_s client_cpu_s upstream_cpu_s client_core_busy_pct proxy_core_busy_pct machine_busy_pct steal_pct
    loadavg1 proto cipher group)
(IFS=$'\t'; echo "${COLS[*]}") >"$RUNS_TSV"
SEQ=0

# Appends one row from the associative array R (missing keys: NA).
declare -A R
emit_row() {
    local row="" c
    for c in "${COLS[@]}"; do row+="${R[$c]:-NA}"$'\t'; done
    echo "${row%$'\t'}" >>"$RUNS_TSV"
    awk -F'\t' '{printf "    %-10s W=%s %-9s %9.0f /s  p50 %7.0fus  p99 %7.0fus  proxy cpu %5ss  resumed %s%%  errors %s\n",
        $3, $4, $5, $9, $10, $11, $18, $15, $14}' <<<"$(tail -1 "$RUNS_TSV")" >&2
}

# CPU of the proxy tree, the upstream and the two cores around a command run
# from bash (wrk, h2load); fills R.
measure_around() {  # rawfile cmd...
    local raw=$1; shift
    local p0 p1 u0 u1 m0 m1 l0 l1 q0 q1
    p0=$(tree_ticks "$SYS_PID"); u0=$(tree_ticks "$UPSTREAM_PID")
    m0=$(cpu_jiffies ""); l0=$(cpu_jiffies "$LOAD_CPU"); q0=$(cpu_jiffies "$PROXY_CPU")
    run_bg "$raw" "${LOAD_WRAP[@]}" "$@"
    p1=$(tree_ticks "$SYS_PID"); u1=$(tree_ticks "$UPSTREAM_PID")
    m1=$(cpu_jiffies ""); l1=$(cpu_jiffies "$LOAD_CPU"); q1=$(cpu_jiffies "$PROXY_CPU")
    R[proxy_cpu_s]=$(awk -v t=$((p1 - p0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    R[upstream_cpu_s]=$(awk -v t=$((u1 - u0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    read -r R[machine_busy_pct] R[steal_pct] <<<"$(busy_pct "$m0" "$m1")"
    if [[ -n $LOAD_CPU ]]; then
        R[client_core_busy_pct]=$(busy_pct "$l0" "$l1" | cut -d' ' -f1)
        R[proxy_core_busy_pct]=$(busy_pct "$q0" "$q1" | cut -d' ' -f1)
    fi
}

new_row() {  # rep sys w test conns
    SEQ=$((SEQ + 1))
    R=([rep]=$1 [seq]=$SEQ [system]=$2 [workers]=$3 [test]=$4 [conns]=$5)
}

test_keepalive() {  # rep sys w
    local rep=$1 sys=$2 w=$3 raw="$RESULTS/raw/r$1-$2-w$3-keepalive.txt" res
    local requests duration_us p50_us p99_us p999_us mean_us err_connect err_read err_write err_status err_timeout
    run_bg /dev/null "${LOAD_WRAP[@]}" wrk -t1 -c"$CONNS" -d"$WARMUP" --timeout 5s "https://127.0.0.1:$SYS_PORT/"
    new_row "$rep" "$sys" "$w" keepalive "$CONNS"
    measure_around "$raw" wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s --latency -s "$BENCH_TMP/report.lua" "https://127.0.0.1:$SYS_PORT/"
    res=$(grep '^RESULT ' "$raw")
    [[ -n $res ]] || { log "WARNING: no wrk result for $sys W=$w (see $raw)"; return 1; }
    eval "$(tr ' ' '\n' <<<"${res#RESULT }" | grep -E '^[a-z0-9_]+=[0-9.]+$')"
    R[window_s]=$(awk -v d="$duration_us" 'BEGIN { printf "%.3f", d / 1e6 }')
    R[requests]=$requests
    R[rate]=$(awk -v n="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f", (d > 0 ? n / (d / 1e6) : 0) }')
    R[p50_us]=$p50_us R[p99_us]=$p99_us R[p999_us]=$p999_us R[mean_us]=$mean_us
    R[errors]=$((err_connect + err_read + err_write + err_status + err_timeout))
    R[loadavg1]=$(cut -d' ' -f1 /proc/loadavg)
    emit_row
}

test_handshakes() {  # rep sys w mode
    local rep=$1 sys=$2 w=$3 mode=$4 raw="$RESULTS/raw/r$1-$2-w$3-$4.txt" res pids upids f
    pids=$(tree_pids "$SYS_PID" | paste -sd, -)
    upids=$(tree_pids "$UPSTREAM_PID" | paste -sd, -)
    new_row "$rep" "$sys" "$w" "$mode" "$HS_CONNS"
    run_bg "$raw" "${LOAD_WRAP[@]}" "$TLSHS" run "$SYS_PORT" -m "$mode" -c "$HS_CONNS" -d "$HS_DURATION" -w "$HS_WARMUP" \
        -V "$HS_TLS" -t "$pids" -u "$upids"
    res=$(grep '^RESULT ' "$raw")
    [[ -n $res ]] || { log "WARNING: no tlshs result for $sys W=$w $mode: $(tail -2 "$raw" | tr '\n' ' ')"; return 1; }
    grep '^ERROR ' "$raw" | head -1 | sed "s/^/    $sys W=$w $mode: /" >&2
    R[requests]=$(kv handshakes "$res") R[rate]=$(kv hs_per_s "$res")
    for f in window_s p50_us p99_us p999_us mean_us errors resumed_pct offered_pct tickets_per_conn proxy_cpu_s client_cpu_s \
        upstream_cpu_s machine_busy_pct steal_pct proto cipher group; do
        R[$f]=$(kv "$f" "$res")
    done
    if [[ -n $LOAD_CPU ]]; then
        R[client_core_busy_pct]=$(kv "cpu${LOAD_CPU}_busy_pct" "$res")
        R[proxy_core_busy_pct]=$(kv "cpu${PROXY_CPU}_busy_pct" "$res")
    fi
    R[loadavg1]=$(cut -d' ' -f1 /proc/loadavg)
    emit_row
}

# h2load prints "finished in 3.00s, 12345.67 req/s, ...", "requests: N total, N started,
# N done, N succeeded, N failed, N errored, N timeout" and "time for request: min max mean ...".
test_h2() {  # rep sys w
    local rep=$1 sys=$2 w=$3 raw="$RESULTS/raw/r$1-$2-w$3-h2.txt" ok failed errored secs mean
    new_row "$rep" "$sys" "$w" h2 "$H2_CONNS"
    measure_around "$raw" h2load -c"$H2_CONNS" -m"$H2_STREAMS" -D "$H2_DURATION" "https://127.0.0.1:$SYS_PORT/"
    if ! grep -q 'Application protocol: h2' "$raw"; then
        log "    $sys W=$w h2: no h2 negotiated ($(grep -m1 -iE 'protocol|error' "$raw" | tr -s ' '))"
        return 1
    fi
    read -r ok failed errored <<<"$(awk '/^requests:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^succeeded/) s = $i; if ($(i+1) ~ /^failed/) f = $i; if ($(i+1) ~ /^errored/) e = $i } print s, f, e }' "$raw")"
    secs=$(awk '/^finished in/ { v = $3; sub(/s,$/, "", v); if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } print v }' "$raw")
    mean=$(awk '/^time for request:/ { v = $6; if (v ~ /ms$/) { sub(/ms$/, "", v); v *= 1000 } else if (v ~ /us$/) sub(/us$/, "", v); else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1e6 } print v }' "$raw")
    R[window_s]=${secs:-NA} R[requests]=${ok:-0} R[mean_us]=${mean:-NA}
    R[rate]=$(awk -v n="${ok:-0}" -v s="${secs:-0}" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')
    R[errors]=$((${failed:-0} + ${errored:-0}))
    R[proto]=h2
    R[loadavg1]=$(cut -d' ' -f1 /proc/loadavg)
    emit_row
}

declare -A H2_OK
run_config() {  # rep "sys:w"
    local rep=$1 sys=${2%%:*} w=${2##*:} t
    SYS_ERR=""
    if ! start_tls_system "$sys" "$w" "r$rep" 10; then
        log "  $sys W=$w: failed to start, run skipped: $SYS_ERR"
        return
    fi
    log "  $sys W=$w (pid $SYS_PID, port $SYS_PORT)"
    for t in $TESTS; do
        case $t in
            keepalive) test_keepalive "$rep" "$sys" "$w" ;;
            full | resume | reuse) test_handshakes "$rep" "$sys" "$w" "$t" ;;
            h2) [[ ${H2_OK[$sys]:-0} == 1 ]] && test_h2 "$rep" "$sys" "$w" ;;
        esac
        kill -0 "$SYS_PID" 2>/dev/null || { log "  $sys exited; rest of the run skipped"; break; }
    done
    stop_pid "$SYS_PID"
    SYS_PID=""
}

# ---------------------------------------------------------------- main ---

LOADAVG_START=$(cat /proc/loadavg)
{
    bench_meta
    echo "cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "openssl=$(openssl version | awk '{print $2}')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "h2load=$(h2load --version 2>/dev/null | awk '{print $2}')"
    echo "switchyard_built=$([[ -x $SWITCHYARD_ORIG ]] && date -r "$(readlink -f "$SWITCHYARD_ORIG")" '+%F %T' || echo none)"
    echo "pinning=$PINNING"
    echo "load_cpu=$LOAD_CPU"
    echo "proxy_cpu=$PROXY_CPU"
    echo "workers=$WORKERS"
    echo "repeat=$REPEAT"
    echo "tests=$TESTS"
    echo "conns=$CONNS"
    echo "duration=$DURATION"
    echo "warmup=$WARMUP"
    echo "hs_conns=$HS_CONNS"
    echo "hs_duration=$HS_DURATION"
    echo "hs_warmup=$HS_WARMUP"
    echo "hs_tls=$HS_TLS"
    echo "h2_conns=$H2_CONNS"
    echo "h2_streams=$H2_STREAMS"
    echo "h2_duration=$H2_DURATION"
    echo "upstream_workers=$UPSTREAM_WORKERS"
    echo "certificate=$(openssl x509 -in "$CERTS/bench.crt" -noout -text | awk '/Public Key Algorithm|NIST CURVE|Signature Algorithm/ { sub(/^ +/, ""); printf "%s; ", $0; if (++n == 3) exit }')"
} >"$RESULTS/meta.txt"
log "loadavg at start: $LOADAVG_START"

start_upstream "$UPSTREAM_WORKERS"
if [[ -n $LOAD_CPU ]]; then
    for p in $(tree_pids "$UPSTREAM_PID"); do taskset -a -p -c "$LOAD_CPU" "$p" >/dev/null; done
fi
echo "upstream_cpus=$(tree_affinity "$UPSTREAM_PID")" >>"$RESULTS/meta.txt"
echo "client_cpus=$("${LOAD_WRAP[@]}" awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)" >>"$RESULTS/meta.txt"

# Probe every system once: what it negotiates (recorded), whether it answers h2,
# and skip a system (Switchyard: missing binary) that does not answer at all.
PROBES_TSV="$RESULTS/probes.tsv"
printf 'system\tok\tproto\tcipher\tgroup\talpn\ttickets\tresumed\th2\tcpus\n' >"$PROBES_TSV"
RUN_SYSTEMS=()
for sys in $SYSTEMS; do
    case $sys in nginx | haproxy | switchyard | switchyard-base) ;; *) die "unknown system '$sys'" ;; esac
    SYS_ERR=""
    if ! start_tls_system "$sys" 1 probe 10; then
        log "SKIP $sys: $SYS_ERR"
        echo "${sys}_skipped=${SYS_ERR%%; log tail*}" >>"$RESULTS/meta.txt"
        continue
    fi
    RUN_SYSTEMS+=("$sys")
    h2=-
    if [[ " $TESTS " == *" h2 "* ]]; then
        h2=0
        h2load -n 1 -c 1 "https://127.0.0.1:$SYS_PORT/" >"$RESULTS/raw/probe-$sys-h2.txt" 2>&1
        grep -q 'Application protocol: h2' "$RESULTS/raw/probe-$sys-h2.txt" && grep -q ' 1 succeeded' "$RESULTS/raw/probe-$sys-h2.txt" && h2=1
    fi
    H2_OK[$sys]=$h2
    printf '%s\t1\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sys" "$(kv proto "$PROBE")" "$(kv cipher "$PROBE")" "$(kv group "$PROBE")" \
        "$(kv alpn "$PROBE")" "$(kv tickets "$PROBE")" "$(kv resumed "$PROBE")" "$h2" "$(tree_affinity "$SYS_PID")" >>"$PROBES_TSV"
    log "$sys: $PROBE h2=$h2"
    stop_pid "$SYS_PID"; SYS_PID=""
done
((${#RUN_SYSTEMS[@]} > 0)) || die "no system to measure"

CONFIGS=()
for sys in "${RUN_SYSTEMS[@]}"; do for w in $WORKERS; do CONFIGS+=("$sys:$w"); done; done
log "configurations: ${CONFIGS[*]}; tests: $TESTS; $REPEAT repetitions"
bench_rounds run_config "${CONFIGS[@]}"
bench_report tls_report.py tls
