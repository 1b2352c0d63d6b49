#!/usr/bin/env bash
# bench/edge.sh - SNI passthrough through an edge tunnel on loopback, beside the same bytes
# over direct TCP (the limit) and through HAProxy doing L4 SNI passthrough
# (`tcp-request inspect-delay` + `req.ssl_sni`).
#
# The origin is nginx terminating TLS itself with node1.edge.test's certificate (made here),
# serving a BIG_MB file from memory (/dev/shm when there is one) and a small body. The systems:
#   direct      the client connects to the origin
#   haproxy     HAProxy (mode tcp, nbthread 1) routes by SNI to the origin
#   switchyard  the gateway (1 worker) passes the connection by SNI into the tunnel of one
#               `switchyard edge-agent --tunnels 1` (the same binary), which connects it to
#               the origin: client → gateway → HTTP/2 stream → agent → origin
# Tests, each system in turn (rotated every repetition), medians of REPEAT runs:
#   single     one curl download of the BIG_MB file: MB/s
#   parallel   PAR connections at once (4 curl processes, PAR/4 transfers each) of PAR_MB
#              each: MB/s over the wall time; the proxy's CPU time per MB (gateway + agent;
#              HAProxy)
#   connect    CONNECT_N sequential fresh connections, GET of the small body: median time to
#              the first byte, and what the system adds to direct
#   idle       IDLE_N TLS connections opened through the system, one GET each, then held
#              idle: the proxy's RSS growth per connection (gateway and agent; HAProxy)
# All processes share the machine's cores (2 here); no pinning.
#
#   bench/edge.sh
#
# Environment: REPEAT [3]  BIG_MB [1024]  PAR [64]  PAR_MB [32]  CONNECT_N [50]  IDLE_N [1000]
#   SYSTEMS ["direct haproxy switchyard"]  SWITCHYARD_BIN [$ROOT/.build/release/switchyard]
#
# stdout: the markdown report. stderr: progress. Raw data: bench/results/edge-*/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPEAT=${REPEAT:-3}
BIG_MB=${BIG_MB:-1024}
PAR=${PAR:-64}
PAR_MB=${PAR_MB:-32}
CONNECT_N=${CONNECT_N:-50}
IDLE_N=${IDLE_N:-1000}
SYSTEMS=${SYSTEMS:-direct haproxy switchyard}
NAME=node1.edge.test

need nginx haproxy curl openssl python3 ss
[[ -x $SWITCHYARD_BIN ]] || die "no $SWITCHYARD_BIN (swift build -c release --static-swift-stdlib)"
((PAR % 4 == 0)) || die "PAR must be a multiple of 4"
bench_init edge
bench_results edge
LOADAVG_START=$(cat /proc/loadavg)

# ---------------------------------------------------------------- PKI ---

PKI="$BENCH_TMP/pki"
mkdir -p "$PKI/gw"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 -subj "/CN=edge bench root" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null || die "openssl: root"
issue() {  # stem names...
    local stem=$1; shift
    local san
    san="subjectAltName=$(printf 'DNS:%s,' "$@")"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$PKI/$stem.key" -out "$PKI/$stem.csr" 2>/dev/null || die "openssl: $stem csr"
    printf 'basicConstraints=CA:false\n%s\n' "${san%,}" >"$PKI/$stem.ext"
    openssl x509 -req -in "$PKI/$stem.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 3 -extfile "$PKI/$stem.ext" -out "$PKI/$stem.crt" 2>/dev/null || die "openssl: $stem"
}
issue origin "$NAME"
issue gw gw.test
cp "$PKI/gw.crt" "$PKI/gw.key" "$PKI/gw/"
chmod -R a+rX "$PKI"

# ---------------------------------------------------------------- origin ---

WWW=$(mktemp -d "${SHM:-/dev/shm}/switchyard-edge-www.XXXXXX" 2>/dev/null) || WWW="$BENCH_TMP/www"
mkdir -p "$WWW"
trap 'rm -rf "$WWW"; save_logs' EXIT
head -c $((BIG_MB << 20)) /dev/zero | tr '\0' 'x' >"$WWW/big"
head -c $((PAR_MB << 20)) /dev/zero | tr '\0' 'y' >"$WWW/part"
printf '%s' "$UPSTREAM_BODY" >"$WWW/small"
chmod -R a+rX "$WWW"

ORIGIN_PORT=$(free_port)
od="$BENCH_TMP/origin"
mkdir -p "$od/logs"
cat >"$od/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $od/nginx.pid;
error_log $od/logs/error.log warn;
$(nginx_common "$od")
    server {
        listen 127.0.0.1:$ORIGIN_PORT ssl backlog=4096;
        ssl_certificate $PKI/origin.crt;
        ssl_certificate_key $PKI/origin.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $WWW;
        location = / { default_type text/plain; return 200 "$UPSTREAM_BODY"; }
    }
}
EOF
bench_spawn "$od/logs/stdout.log" nginx -p "$od" -c "$od/nginx.conf" -e "$od/logs/error.log"
ORIGIN_PID=$SPAWNED_PID
wait_listen "$ORIGIN_PORT" "$ORIGIN_PID" 10 || die "origin nginx did not start: $(cat "$od/logs/error.log")"

# ---------------------------------------------------------------- systems ---

SYS_PORT="" SYS_PIDS=()
start_edge_system() {  # system
    local d="$BENCH_TMP/$1"
    mkdir -p "$d"
    SYS_PIDS=()
    case $1 in
    direct) SYS_PORT=$ORIGIN_PORT ;;
    haproxy)
        SYS_PORT=$(free_port)
        cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend sni
    bind 127.0.0.1:$SYS_PORT
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend node1 if { req.ssl_sni -i $NAME }
backend node1
    server origin 127.0.0.1:$ORIGIN_PORT
EOF
        bench_spawn "$d/haproxy.log" haproxy -f "$d/haproxy.cfg"
        SYS_PIDS=("$SPAWNED_PID")
        wait_listen "$SYS_PORT" "$SPAWNED_PID" 10 || die "haproxy did not start: $(cat "$d/haproxy.log")"
        ;;
    switchyard)
        SYS_PORT=$(free_port)
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$d/node1.token"
        cat >"$d/switchyard.yaml" <<EOF
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:$SYS_PORT
    tls: {certificates: $PKI/gw, default_certificate: gw}
    edge_tunnel: true
admin: {address: "off"}
logging: {access: off, error: stderr}
registry: {database: $d/registry.db}
edges:
  - {id: node1, hostnames: [$NAME], token_file: $d/node1.token}
routes: []
EOF
        bench_spawn "$d/gateway.log" "$SWITCHYARD_BIN" serve --config "$d/switchyard.yaml"
        SYS_PIDS=("$SPAWNED_PID")
        wait_listen "$SYS_PORT" "$SPAWNED_PID" 15 || die "gateway did not start: $(cat "$d/gateway.log")"
        bench_spawn "$d/agent.log" "$SWITCHYARD_BIN" edge-agent --cluster "127.0.0.1:$SYS_PORT" --node-id node1 \
            --token-file "$d/node1.token" --forward "127.0.0.1:$ORIGIN_PORT" --tunnels 1 \
            --ca-file "$PKI/ca.crt" --server-name gw.test
        SYS_PIDS+=("$SPAWNED_PID")
        local i
        for ((i = 0; i < 100; i++)); do
            curl -s -o /dev/null -m 2 --cacert "$PKI/ca.crt" --resolve "$NAME:$SYS_PORT:127.0.0.1" "https://$NAME:$SYS_PORT/" && break
            sleep 0.1
        done
        ((i < 100)) || die "no tunnel: $(tail -5 "$d/agent.log") $(tail -5 "$d/gateway.log")"
        ;;
    esac
}

stop_edge_system() {
    local p
    for ((p = ${#SYS_PIDS[@]} - 1; p >= 0; p--)); do stop_pid "${SYS_PIDS[$p]}"; done
    SYS_PIDS=()
}

sys_ticks() { local t=0 p; for p in "${SYS_PIDS[@]}"; do t=$((t + $(tree_ticks "$p"))); done; echo "$t"; }
sys_rss() { local p out=""; for p in "${SYS_PIDS[@]}"; do out+="$(tree_mem_kb "$p" | awk '{print $1}') "; done; echo "${out% }"; }

CURL=(curl -s -q --noproxy '*' --cacert "$PKI/ca.crt")

one_round() {  # rep system
    local rep=$1 sys=$2 raw="$RESULTS/raw/$2-$1"
    start_edge_system "$sys"
    local url="https://$NAME:$SYS_PORT"
    local res=(--resolve "$NAME:$SYS_PORT:127.0.0.1")
    # single
    "${CURL[@]}" "${res[@]}" -o /dev/null "$url/" >/dev/null  # warm
    local speed
    speed=$("${CURL[@]}" "${res[@]}" -o /dev/null -w '%{speed_download}' "$url/big")
    echo "single_bps=$speed" >"$raw"
    # parallel
    local t0 t1 ticks0 ticks1 k urls=()
    for ((k = 0; k < PAR / 4; k++)); do urls+=(-o /dev/null "$url/part"); done
    ticks0=$(sys_ticks)
    t0=$(date +%s.%N)
    local pids=()
    for k in 1 2 3 4; do
        "${CURL[@]}" "${res[@]}" -Z --parallel-max $((PAR / 4)) -w '%{size_download}\n' "${urls[@]}" \
            >"$raw.par$k" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(date +%s.%N)
    ticks1=$(sys_ticks)
    local bytes
    bytes=$(cat "$raw".par? | awk '{s += $1} END {print s + 0}')
    echo "par_bytes=$bytes" >>"$raw"
    echo "par_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" >>"$raw"
    echo "par_ticks=$((ticks1 - ticks0))" >>"$raw"
    # connect
    local ttfb=()
    for ((k = 0; k < CONNECT_N; k++)); do
        ttfb+=("$("${CURL[@]}" "${res[@]}" -o /dev/null -w '%{time_starttransfer}' "$url/")")
    done
    echo "ttfb=$(printf '%s\n' "${ttfb[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')" >>"$raw"
    # idle
    if [[ $sys != direct ]]; then
        local before after ready="$BENCH_TMP/idle-$sys-$rep.ready"
        before=$(sys_rss)
        bench_spawn "$BENCH_TMP/idle-$sys-$rep.log" env TLS_NAME=$NAME TLS_CAFILE="$PKI/ca.crt" \
            python3 "$BENCH_DIR/idle_conns.py" "$SYS_PORT" "$IDLE_N" "$ready" 300
        local idle_pid=$SPAWNED_PID
        wait_file "$ready" "$idle_pid" 1200 || die "idle connections never ready: $(cat "$BENCH_TMP/idle-$sys-$rep.log")"
        sleep 1
        after=$(sys_rss)
        echo "idle_result=$(cat "$ready")" >>"$raw"
        echo "idle_rss_before=$before" >>"$raw"
        echo "idle_rss_after=$after" >>"$raw"
        stop_pid "$idle_pid"
    fi
    stop_edge_system
    log "$sys rep $rep: $(tr '\n' ' ' <"$raw")"
}

{
    bench_meta
    echo "repeat=$REPEAT"
    echo "big_mb=$BIG_MB"
    echo "par=$PAR"
    echo "par_mb=$PAR_MB"
    echo "connect_n=$CONNECT_N"
    echo "idle_n=$IDLE_N"
    echo "systems=$SYSTEMS"
} >"$RESULTS/meta.txt"

# shellcheck disable=SC2086
bench_rounds one_round $SYSTEMS
bench_report edge_report.py edge
