#!/usr/bin/env bash
# bench/websocket.sh - WebSocket (HTTP/1.1 Upgrade) proxying on loopback.
#
# One C echo server (bench/wsecho.c) is the upstream; nginx, HAProxy and
# Switchyard, each with W workers, proxy WebSocket connections to it, one at a
# time. A C client (bench/wsload.c) measures, for every system started fresh:
#   idle  memory per idle tunnel: RSS of the proxy's process tree before and
#         while IDLE_CONNS tunnels are open (handshake + one echo each, then
#         idle), (after - before) / tunnels; then one more echo on every tunnel
#         checks that the proxy kept them all
#   echo  ECHO_CONNS connections ping-ponging ECHO_SIZE-byte messages for
#         ECHO_DURATION s: messages/s, round-trip p50/p99, proxy CPU per message
#   bulk  BULK_CONNS connections echoing BULK_SIZE-byte messages for
#         BULK_DURATION s: MiB/s, proxy CPU per MiB moved
# Systems alternate run by run (round-robin, rotated every repetition).
#
#   bench/websocket.sh
#
# Environment (defaults in brackets):
#   REPEAT [3]  SYSTEMS ["nginx haproxy switchyard"]; "switchyard-base": a second build
#   (SWITCHYARD_BASE_BIN) in the same run; add "switchyard-nosplice" for Switchyard
#     with tunnels.splice: false (tunnel bytes through pooled buffers)
#   WORKERS [1]  TESTS ["idle echo bulk"]
#   IDLE_CONNS [8000]  IDLE_CONCURRENCY [200] (handshakes in flight while opening)
#   ECHO_CONNS [50]  ECHO_SIZE [32]  ECHO_DURATION [6]
#   BULK_CONNS [4]  BULK_SIZE [1048576]  BULK_DURATION [6]
#   WARMUP [1] (seconds before each measured window)  SETTLE [2] (seconds before reading memory)
#   PIN [1]: proxy on the last allowed CPU, client and upstream on the others (0: no pinning)
#   HAPROXY_SPLICE [0]: 1 adds "option splice-auto" to HAProxy
#   SWITCHYARD_BIN [$ROOT/.build/release/switchyard]
#
# stdout: the markdown report. stderr: progress. Raw data: bench/results/websocket-*/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEAT=${REPEAT:-3}
SYSTEMS=${SYSTEMS:-nginx haproxy switchyard}
WORKERS=${WORKERS:-1}
TESTS=${TESTS:-idle echo bulk}
IDLE_CONNS=${IDLE_CONNS:-8000}
IDLE_CONCURRENCY=${IDLE_CONCURRENCY:-200}
ECHO_CONNS=${ECHO_CONNS:-50}
ECHO_SIZE=${ECHO_SIZE:-32}
ECHO_DURATION=${ECHO_DURATION:-6}
BULK_CONNS=${BULK_CONNS:-4}
BULK_SIZE=${BULK_SIZE:-1048576}
BULK_DURATION=${BULK_DURATION:-6}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-2}
PIN=${PIN:-1}
HAPROXY_SPLICE=${HAPROXY_SPLICE:-0}

need nginx haproxy cc python3 ss ps taskset
((REPEAT >= 1)) || die "REPEAT must be >= 1"
for t in $TESTS; do [[ $t == idle || $t == echo || $t == bulk ]] || die "unknown test '$t'"; done

# Every idle tunnel holds two descriptors in the proxy (one in the client and
# one in the upstream, separate processes). HAProxy sizes its own limit from
# maxconn; nginx sets worker_rlimit_nofile. Raise ours (inherited) to the hard limit.
want=$((2 * IDLE_CONNS + 500))
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
((hard >= want)) || die "ulimit -Hn is $hard, need $want for $IDLE_CONNS idle tunnels (IDLE_CONNS=... lowers it)"
ulimit -n "$hard" || die "cannot raise ulimit -n to $hard"

bench_init websocket
bench_results websocket

# The helpers include ws.h: rebuild when either file is newer than the binary.
compile_ws() {  # name
    local src="$BENCH_DIR/$1.c" out="$BENCH_DIR/results/$1"
    if [[ ! -x $out || $src -nt $out || $BENCH_DIR/ws.h -nt $out ]]; then
        cc -O2 -Wall -Wextra -o "$out" "$src" || die "cannot compile $src"
    fi
}
compile_ws wsecho
compile_ws wsload
WSECHO="$BENCH_DIR/results/wsecho"
WSLOAD="$BENCH_DIR/results/wsload"

# CPU placement. With 2 CPUs: the proxy alone on one, the client and the
# upstream on the other, so the proxy never waits behind them and every
# system gets the same split.
ALLOWED=$(taskset -pc $$ | sed 's/.*: //')
CPUS=()
for part in ${ALLOWED//,/ }; do
    if [[ $part == *-* ]]; then for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPUS+=("$c"); done; else CPUS+=("$part"); fi
done
PROXY_WRAP=() LOAD_WRAP=() PINNING="none (PIN=0)" LOAD_NCPUS=${#CPUS[@]}
if [[ $PIN == 1 ]]; then
    if ((${#CPUS[@]} >= 2)); then
        PROXY_CPUS=${CPUS[-1]}
        LOAD_CPUS=$(IFS=,; echo "${CPUS[*]:0:${#CPUS[@]}-1}")
        PROXY_WRAP=(taskset -c "$PROXY_CPUS")
        LOAD_WRAP=(taskset -c "$LOAD_CPUS")
        PINNING="proxy on CPU $PROXY_CPUS, client and upstream on CPU $LOAD_CPUS"
        LOAD_NCPUS=$((${#CPUS[@]} - 1))
    else
        PINNING="none (only ${#CPUS[@]} CPU allowed)"
    fi
fi
log "pinning: $PINNING"

# ---------------------------------------------------------------- configs ---

# nginx closes idle connections to make room once fewer than 1/16 of
# worker_connections are free ("worker_connections are not enough, reusing
# connections"), and every tunnel takes two: leave it ample headroom.
NGINX_WORKER_CONNECTIONS=$((5 * IDLE_CONNS / 2 + 1000))
((NGINX_WORKER_CONNECTIONS > hard)) && NGINX_WORKER_CONNECTIONS=$hard

write_ws_nginx_conf() {  # dir port upstream_port workers
    local d=$1 port=$2 up=$3 workers=$4
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
$(nginx_common "$d" "$hard" "$NGINX_WORKER_CONNECTIONS")
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        location / {
            proxy_pass http://127.0.0.1:$up;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
EOF
}

write_ws_haproxy_conf() {  # dir port upstream_port threads
    local d=$1 port=$2 up=$3 threads=$4
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<EOF
global
    nbthread $threads
    maxconn $((IDLE_CONNS + 200))
    pidfile $d/haproxy.pid

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout tunnel 3600s
$([[ $HAPROXY_SPLICE == 1 ]] && echo "    option splice-auto")

frontend public
    bind 127.0.0.1:$port
    default_backend echo

backend echo
    server u1 127.0.0.1:$up
EOF
}

# ---------------------------------------------------------------- processes ---

# A fresh echo upstream for every system run (a new port each time, so
# TIME_WAIT left by the previous run's 8,000 tunnels never meets this one's).
start_echo() {
    UP_PORT=$(free_port)
    bench_spawn "$BENCH_TMP/wsecho-$UP_PORT.log" "${LOAD_WRAP[@]}" "$WSECHO" "$UP_PORT"
    UP_PID=$SPAWNED_PID
    wait_listen "$UP_PORT" "$UP_PID" 10 || die "wsecho did not start: $(cat "$BENCH_TMP/wsecho-$UP_PORT.log")"
}

# Start one proxy in front of $UP_PORT; ready once a WebSocket echo passes
# through it. Sets SYS_PORT, SYS_PID, SYS_DIR; on failure SYS_ERR says why.
start_ws_system() {  # system workers tag [timeout_s]
    local sys=$1 w=$2 tag=$3 timeout=${4:-10} deadline why=""
    SYS_DIR="$BENCH_TMP/$sys-$tag"
    SYS_PID="" SYS_PORT=$(free_port)
    mkdir -p "$SYS_DIR"
    case $sys in
        nginx)
            write_ws_nginx_conf "$SYS_DIR" "$SYS_PORT" "$UP_PORT" "$w"
            bench_spawn "$SYS_DIR/logs/stdout.log" "${PROXY_WRAP[@]}" nginx -p "$SYS_DIR" -c "$SYS_DIR/nginx.conf" -e "$SYS_DIR/logs/error.log" ;;
        haproxy)
            write_ws_haproxy_conf "$SYS_DIR" "$SYS_PORT" "$UP_PORT" "$w"
            bench_spawn "$SYS_DIR/haproxy.log" "${PROXY_WRAP[@]}" haproxy -db -f "$SYS_DIR/haproxy.cfg" ;;
        switchyard | switchyard-nosplice | switchyard-base)
            local bin=$SWITCHYARD_BIN
            [[ $sys == switchyard-base ]] && bin=$SWITCHYARD_BASE_BIN
            [[ -x $bin ]] || { SYS_ERR="binary ${bin:-(SWITCHYARD_BASE_BIN unset)} not found (build it with: swift build -c release)"; return 1; }
            # Tunnels keep their defaults (no idle timeout; splice) but for switchyard-nosplice.
            write_switchyard_conf "$SYS_DIR" "$SYS_PORT" "$UP_PORT" "$w" "$([[ $sys == switchyard-nosplice ]] && echo nosplice)"
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
        why=$("$WSLOAD" probe "$SYS_PORT" 2>&1) && return 0
        kill -0 "$SYS_PID" 2>/dev/null || break
        sleep 0.2
    done
    SYS_ERR="no WebSocket echo through $sys: ${why:-process exited}"
    stop_pid "$SYS_PID"; SYS_PID=""
    return 1
}

stop_ws_system() {
    [[ -n $SYS_PID ]] && stop_pid "$SYS_PID"
    SYS_PID=""
    [[ -n ${UP_PID:-} ]] && stop_pid "$UP_PID"
    UP_PID=""
}

tree_fds() {  # pid: open descriptors summed over the process tree
    local pid n=0
    for pid in $(tree_pids "$1"); do n=$((n + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l))); done
    echo "$n"
}

established() { ss -Htn state established "( sport = :$1 )" | wc -l; }

kv() {  # key "k=v k=v ...": the value of key, or NA
    local k=$1 line=$2 v
    v=$(tr ' ' '\n' <<<"$line" | sed -n "s/^$k=//p" | head -1)
    echo "${v:-NA}"
}

# ---------------------------------------------------------------- tests ---

IDLE_TSV="$RESULTS/idle.tsv"
RUNS_TSV="$RESULTS/runs.tsv"
printf 'rep\tseq\tsystem\tworkers\tconns\trss0_kb\tpss0_kb\trss1_kb\tpss1_kb\tnprocs\tfds0\tfds1\theld\tok\tfailed\topen_s\tverify_held\tverify_echoed\trss_closed_kb\tloadavg1\n' >"$IDLE_TSV"
printf 'rep\tseq\tsystem\tworkers\ttest\tconns\tsize\twindow_s\tmessages\tbytes\tmsgs_per_s\tmib_per_s\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\tmean_us\terrors\tproxy_cpu_s\tupstream_cpu_s\tclient_cpu_s\tmachine_busy_pct\tsteal_pct\tloadavg1\n' >"$RUNS_TSV"
SEQ=0

idle_test() {  # rep sys w
    local rep=$1 sys=$2 w=$3 ready="$BENCH_TMP/idle-$sys-r$rep.ready" clog="$RESULTS/raw/r$rep-$sys-idle.txt"
    local rss0 pss0 rss1 pss1 rss2 pss2 nproc fds0 fds1 held client res i
    SEQ=$((SEQ + 1))
    sleep "$SETTLE"
    read -r rss0 pss0 nproc <<<"$(tree_mem_kb "$SYS_PID")"
    fds0=$(tree_fds "$SYS_PID")
    bench_spawn "$clog" "${LOAD_WRAP[@]}" "$WSLOAD" idle "$SYS_PORT" -c "$IDLE_CONNS" -k "$IDLE_CONCURRENCY" -r "$ready"
    client=$SPAWNED_PID
    if ! wait_file "$ready" "$client" 1500; then
        log "    $sys idle: the client did not finish opening: $(tail -3 "$clog" | tr '\n' ' ')"
        stop_pid "$client"
        return 1
    fi
    sleep "$SETTLE"
    held=$(established "$SYS_PORT")
    read -r rss1 pss1 nproc <<<"$(tree_mem_kb "$SYS_PID")"
    fds1=$(tree_fds "$SYS_PID")
    kill -USR1 "$client" 2>/dev/null
    for ((i = 0; i < 300; i++)); do kill -0 "$client" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$client"
    res=$(grep '^RESULT ' "$clog")
    # Closing: the proxy should let go of every tunnel.
    for ((i = 0; i < 100; i++)); do (($(established "$SYS_PORT") == 0)) && break; sleep 0.1; done
    sleep 0.5
    read -r rss2 pss2 nproc <<<"$(tree_mem_kb "$SYS_PID")"
    printf '%s\t' "$rep" "$SEQ" "$sys" "$w" "$IDLE_CONNS" "$rss0" "$pss0" "$rss1" "$pss1" "$nproc" "$fds0" "$fds1" "$held" \
        "$(kv ok "$res")" "$(kv failed "$res")" "$(kv open_s "$res")" "$(kv held "$res")" "$(kv echoed "$res")" "$rss2" >>"$IDLE_TSV"
    cut -d' ' -f1 /proc/loadavg >>"$IDLE_TSV"
    tail -1 "$IDLE_TSV" | awk -F'\t' '{printf "    %-10s idle  %5d tunnels  RSS %6.1f -> %6.1f MiB  %6.0f B/tunnel  fds %d -> %d  held %d  echoed after idle %s\n",
        $3, $14, $6 / 1024, $8 / 1024, ($14 > 0 ? ($8 - $6) * 1024 / $14 : 0), $11, $12, $13, $18}' >&2
}

load_test() {  # rep sys w test conns size duration
    local rep=$1 sys=$2 w=$3 test=$4 conns=$5 size=$6 dur=$7 raw="$RESULTS/raw/r$rep-$sys-$4.txt" res pids f row
    SEQ=$((SEQ + 1))
    pids=$(tree_pids "$SYS_PID" | paste -sd, -)
    run_bg "$raw" "${LOAD_WRAP[@]}" "$WSLOAD" run "$SYS_PORT" -c "$conns" -s "$size" -d "$dur" -w "$WARMUP" -t "$pids" -u "$UP_PID"
    kill -0 "$SYS_PID" 2>/dev/null || log "WARNING: $sys died during the $test run"
    res=$(grep '^RESULT ' "$raw")
    if [[ -z $res ]]; then
        log "WARNING: no result for $sys $test: $(tail -3 "$raw" | tr '\n' ' ')"
        return 1
    fi
    row="$rep	$SEQ	$sys	$w	$test"
    for f in conns size window_s messages bytes msgs_per_s mib_per_s p50_us p90_us p99_us p999_us max_us mean_us errors \
        proxy_cpu_s upstream_cpu_s client_cpu_s machine_busy_pct steal_pct; do
        row+="	$(kv "$f" "$res")"
    done
    echo "$row	$(cut -d' ' -f1 /proc/loadavg)" >>"$RUNS_TSV"
    grep '^ERROR ' "$raw" | head -1 | sed "s/^/    $sys $test: /" >&2
    tail -1 "$RUNS_TSV" | awk -F'\t' '{printf "    %-10s %-5s %9.0f msg/s  %8.1f MiB/s  p50 %8.0fus  p99 %8.0fus  proxy cpu %.2fs  errors %s\n",
        $3, $5, $11, $12, $13, $15, $20, $19}' >&2
}

run_system() {  # rep sys
    local rep=$1 sys=$2 t
    SYS_ERR=""
    start_echo
    if ! start_ws_system "$sys" "$WORKERS" "r$rep" 10; then
        log "  $sys: failed to start, run skipped: $SYS_ERR"
        stop_ws_system
        return
    fi
    log "  $sys (pid $SYS_PID, port $SYS_PORT, upstream $UP_PORT)"
    for t in $TESTS; do
        case $t in
            idle) idle_test "$rep" "$sys" "$WORKERS" ;;
            echo) load_test "$rep" "$sys" "$WORKERS" echo "$ECHO_CONNS" "$ECHO_SIZE" "$ECHO_DURATION" ;;
            bulk) load_test "$rep" "$sys" "$WORKERS" bulk "$BULK_CONNS" "$BULK_SIZE" "$BULK_DURATION" ;;
        esac
        kill -0 "$SYS_PID" 2>/dev/null || { log "  $sys exited; rest of the run skipped"; break; }
    done
    stop_ws_system
}

# ---------------------------------------------------------------- main ---

LOADAVG_START=$(cat /proc/loadavg)
{
    bench_meta
    echo "pinning=$PINNING"
    echo "pinned=$([[ ${#PROXY_WRAP[@]} -gt 0 ]] && echo 1 || echo 0)"
    echo "load_cpus=$LOAD_NCPUS"
    echo "workers=$WORKERS"
    echo "repeat=$REPEAT"
    echo "tests=$TESTS"
    echo "idle_conns=$IDLE_CONNS"
    echo "echo_conns=$ECHO_CONNS"
    echo "echo_size=$ECHO_SIZE"
    echo "echo_duration=$ECHO_DURATION"
    echo "bulk_conns=$BULK_CONNS"
    echo "bulk_size=$BULK_SIZE"
    echo "bulk_duration=$BULK_DURATION"
    echo "warmup=$WARMUP"
    echo "haproxy_splice=$HAPROXY_SPLICE"
} >"$RESULTS/meta.txt"
log "loadavg at start: $LOADAVG_START"

RUN_SYSTEMS=()
for sys in $SYSTEMS; do
    case $sys in nginx | haproxy | switchyard | switchyard-nosplice | switchyard-base) RUN_SYSTEMS+=("$sys") ;; *) die "unknown system '$sys'" ;; esac
done

# Probe Switchyard once: skip it cleanly if missing or not answering upgrades.
if [[ " $SYSTEMS " == *" switchyard"* ]]; then
    SYS_ERR=""
    start_echo
    if start_ws_system switchyard "$WORKERS" probe 10; then
        log "switchyard answers WebSocket upgrades: included"
    else
        log "SKIP switchyard: $SYS_ERR"
        echo "switchyard_skipped=${SYS_ERR%%; log tail*}" >>"$RESULTS/meta.txt"
        keep=()
        for s in "${RUN_SYSTEMS[@]}"; do [[ $s == switchyard* ]] || keep+=("$s"); done
        RUN_SYSTEMS=("${keep[@]}")
    fi
    stop_ws_system
fi
((${#RUN_SYSTEMS[@]} > 0)) || die "no system to measure"

log "systems: ${RUN_SYSTEMS[*]}; tests: $TESTS; $REPEAT repetitions"
bench_rounds run_system "${RUN_SYSTEMS[@]}"
bench_report ws_report.py websocket
