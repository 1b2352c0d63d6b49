# bench/lib.sh - helpers shared by the bench scripts (sourced, not run).
#
# Everything here starts processes through `bench_spawn`, which records them so
# that `bench_cleanup` (installed as an EXIT/INT/TERM trap by `bench_init`) can
# stop them, and writes configs and logs under $BENCH_TMP.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
SWITCHYARD_BIN=${SWITCHYARD_BIN:-$ROOT/.build/release/switchyard}
CLK_TCK=$(getconf CLK_TCK)
BENCH_PIDS=()
BENCH_PORTS=()
BENCH_TMP=""
BENCH_KEEP_TMP=${BENCH_KEEP_TMP:-0}
SYS_WRAP=()          # command prefix for the system under test (e.g. valgrind)
SYS_READY=http       # http: wait for a correct 200; listen: wait for the port only
NGINX_MASTER=on      # off: single-process nginx (for valgrind)

# A ~100-byte body served by the upstream; every proxy must return it verbatim.
UPSTREAM_BODY='hello from the switchyard bench upstream; this body is a fixed one hundred bytes long, padded: okay.'

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_init() {   # name
    BENCH_TMP=$(mktemp -d "/tmp/switchyard-$1.XXXXXX")
    chmod 755 "$BENCH_TMP"   # nginx workers may run as nobody
    trap bench_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT TERM
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
    BENCH_PIDS=()
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        if [[ $BENCH_KEEP_TMP == 1 ]]; then log "kept temp dir $BENCH_TMP"; else rm -rf "$BENCH_TMP"; fi
    fi
}

need() {  # command...
    local c
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "'$c' not found (make deps-bench installs the bench tools)"; done
}

# A free loopback TCP port below the ephemeral range, so that outgoing
# connections of the benchmark itself cannot take it between probe and bind.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ " ${BENCH_PORTS[*]} " == *" $p "* ]] && continue
        if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
            BENCH_PORTS+=("$p")
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# Start a command in the background with stdout+stderr to a log file; the pid
# goes to the global SPAWNED_PID (and to the cleanup list).
bench_spawn() {  # logfile cmd...
    local logf=$1; shift
    "$@" >"$logf" 2>&1 </dev/null &
    SPAWNED_PID=$!
    BENCH_PIDS+=("$SPAWNED_PID")
}

# All pids of the process tree rooted at $1 (root first).
tree_pids() {
    ps -e -o pid=,ppid= | awk -v r="$1" '
        { parent[$1] = $2 }
        END {
            if (!(r in parent)) exit
            inside[r] = 1; print r
            changed = 1
            while (changed) {
                changed = 0
                for (p in parent)
                    if (!(p in inside) && (parent[p] in inside)) { inside[p] = 1; print p; changed = 1 }
            }
        }'
}

# Stop a process and its descendants: TERM, up to 5 s, then KILL.
stop_pid() {
    local pid=$1 kids i keep=() p
    for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kids=$(tree_pids "$pid" | tail -n +2)
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on TERM; killing"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    # nginx workers exit with their master; anything left over is killed.
    for i in $kids; do kill -0 "$i" 2>/dev/null && kill -KILL "$i" 2>/dev/null; done
    return 0
}

# CPU clock ticks (utime+stime+cutime+cstime) of a process tree, summed.
tree_ticks() {
    local pid s f total=0
    for pid in $(tree_pids "$1"); do
        s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        total=$((total + f[11] + f[12] + f[13] + f[14]))
    done
    echo "$total"
}

# Sum of VmRSS and of Pss (kB) over a process tree: "rss_kb pss_kb nprocs".
tree_mem_kb() {
    local pid rss pss rt=0 pt=0 n=0
    for pid in $(tree_pids "$1"); do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null)
        rt=$((rt + ${rss:-0})); pt=$((pt + ${pss:-0})); n=$((n + 1))
    done
    echo "$rt $pt $n"
}

# Wait until something listens on 127.0.0.1:port, without sending a request.
wait_listen() {  # port pid timeout_s
    local port=$1 pid=$2 timeout=${3:-10} deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
        sleep 0.2
    done
    return 1
}

# Wait until http://127.0.0.1:port/ answers 200 with the upstream body.
# Fails early if the process dies.
wait_http() {  # port pid timeout_s
    local port=$1 pid=$2 timeout=${3:-10} deadline body
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 2
        body=$(curl -s -m 2 "http://127.0.0.1:$port/" 2>/dev/null) && [[ $body == "$UPSTREAM_BODY" ]] && return 0
        sleep 0.1
    done
    return 1
}

# Run a command to completion, in the background so that a TERM/INT trap of
# this shell runs at once (and the cleanup stops the command too).
run_bg() {  # logfile cmd...
    bench_spawn "$@"
    local pid=$SPAWNED_PID rc
    wait "$pid"; rc=$?
    stop_pid "$pid"
    return $rc
}

compile_c() {  # src out
    local src=$1 out=$2
    if [[ ! -x $out || $src -nt $out ]]; then
        cc -O2 -Wall -Wextra -o "$out" "$src" || die "cannot compile $src"
    fi
}

# ---------------------------------------------------------------- configs ---

# What every nginx config shares: limits, temp paths under $d, keep-alive without a request cap
# (the default keepalive_requests of 1,000 would make nginx alone reconnect during a run).
# Prints through the opening of the http block.
nginx_common() {  # dir [rlimit_nofile] [worker_connections]
    local d=$1
    cat <<EOF
worker_rlimit_nofile ${2:-20000};
events { worker_connections ${3:-10000}; }
http {
    access_log off;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
EOF
}

# nginx serving the fixed body: the shared upstream of every benchmark.
write_upstream_nginx_conf() {  # dir port workers
    local d=$1 port=$2 workers=$3
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
$(nginx_common "$d")
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            default_type text/plain;
            return 200 "$UPSTREAM_BODY";
        }
    }
}
EOF
}

# nginx as a reverse proxy with an upstream keep-alive pool.
# TLS (bench/tls.sh): listen options (" ssl http2") and server lines (certificates, protocols).
write_nginx_proxy_conf() {  # dir port upstream_port workers [listen_options] [server_lines]
    local d=$1 port=$2 up=$3 workers=$4 listen_options=${5:-} server_lines=${6:-}
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
worker_processes $workers;
master_process $NGINX_MASTER;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
$(nginx_common "$d")
    upstream backend {
        server 127.0.0.1:$up;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$port$listen_options reuseport backlog=4096;
$server_lines
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

write_haproxy_conf() {  # dir port upstream_port threads [bind_options]
    local d=$1 port=$2 up=$3 threads=$4 bind_options=${5:-}
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<EOF
global
    nbthread $threads
    maxconn 8000
    pidfile $d/haproxy.pid

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

frontend public
    bind 127.0.0.1:$port$bind_options
    default_backend upstream

backend upstream
    server u1 127.0.0.1:$up
EOF
}

# Modes: static (one route to the upstream), sticky (plus /ws/<id>/ through the registry),
# nosplice (static, with tunnels.splice: false: tunnel bytes through pooled buffers).
write_switchyard_conf() {  # dir port upstream_port workers [static|sticky|nosplice]
    local d=$1 port=$2 up=$3 workers=$4 mode=${5:-static}
    mkdir -p "$d"
    cat >"$d/switchyard.yaml" <<EOF
workers: $workers
listeners:
  - name: public
    address: 127.0.0.1:$port
admin:
  address: "off"
logging:
  access: off
  error: stderr
EOF
    if [[ $mode == sticky ]]; then
        # /ws/<id>/ through the registry (one node: the upstream); "/" stays static for probes.
        cat >>"$d/switchyard.yaml" <<EOF
registry:
  database: $d/registry.db
nodes:
  - {name: bench-node, pool: workspace, address: 127.0.0.1:$up, heartbeats: false}
routes:
  - name: workspace
    path_prefix: /ws/
    key: {path_segment: /ws/}
    pool: workspace
    set_cookie: ws_uid
EOF
    else
        [[ $mode == nosplice ]] && printf 'tunnels:\n  splice: false\n' >>"$d/switchyard.yaml"
        echo "routes:" >>"$d/switchyard.yaml"
    fi
    cat >>"$d/switchyard.yaml" <<EOF
  - name: bench
    path_prefix: /
    upstreams: ["127.0.0.1:$up"]
EOF
}

# Start the shared nginx upstream; sets UPSTREAM_PORT and UPSTREAM_PID.
start_upstream() {  # workers
    local d="$BENCH_TMP/upstream"
    UPSTREAM_PORT=$(free_port)
    write_upstream_nginx_conf "$d" "$UPSTREAM_PORT" "${1:-1}"
    bench_spawn "$d/logs/stdout.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
    UPSTREAM_PID=$SPAWNED_PID
    wait_http "$UPSTREAM_PORT" "$UPSTREAM_PID" 10 || die "upstream nginx did not start: $(cat "$d/logs/error.log" 2>/dev/null)"
    log "upstream nginx on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"
}

# Start one system in front of the upstream. Sets SYS_PORT, SYS_PID, SYS_DIR.
# Systems: direct (no proxy), relay, nginx, haproxy, switchyard.
# Returns non-zero (with a message) if it does not answer correctly in time.
start_system() {  # system workers [ready_timeout_s]
    local sys=$1 w=$2 timeout=${3:-10} rc
    SYS_DIR="$BENCH_TMP/$sys-w$w"
    mkdir -p "$SYS_DIR"
    SYS_PID="" SYS_PORT=""
    case $sys in
        direct)
            SYS_PORT=$UPSTREAM_PORT; SYS_PID=""; return 0 ;;
        relay)
            SYS_PORT=$(free_port)
            bench_spawn "$SYS_DIR/relay.log" "${SYS_WRAP[@]}" "$RELAY_BIN" "$SYS_PORT" "$UPSTREAM_PORT" ;;
        nginx)
            SYS_PORT=$(free_port)
            write_nginx_proxy_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w"
            bench_spawn "$SYS_DIR/logs/stdout.log" "${SYS_WRAP[@]}" nginx -p "$SYS_DIR" -c "$SYS_DIR/nginx.conf" -e "$SYS_DIR/logs/error.log" ;;
        haproxy)
            SYS_PORT=$(free_port)
            write_haproxy_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w"
            bench_spawn "$SYS_DIR/haproxy.log" "${SYS_WRAP[@]}" haproxy -db -f "$SYS_DIR/haproxy.cfg" ;;
        switchyard | sticky | static-ws | switchyard-base)
            local bin=$SWITCHYARD_BIN
            [[ $sys == switchyard-base ]] && bin=$SWITCHYARD_BASE_BIN
            [[ -x $bin ]] || { SYS_ERR="binary ${bin:-(SWITCHYARD_BASE_BIN unset)} not found (build it with: swift build -c release)"; return 1; }
            SYS_PORT=$(free_port)
            write_switchyard_conf "$SYS_DIR" "$SYS_PORT" "$UPSTREAM_PORT" "$w" "$([[ $sys == sticky ]] && echo sticky)"
            bench_spawn "$SYS_DIR/switchyard.log" "${SYS_WRAP[@]}" "$bin" serve --config "$SYS_DIR/switchyard.yaml" ;;
        *) die "unknown system $sys" ;;
    esac
    SYS_PID=$SPAWNED_PID
    if [[ $SYS_READY == listen ]]; then
        wait_listen "$SYS_PORT" "$SYS_PID" "$timeout"; rc=$?
    else
        wait_http "$SYS_PORT" "$SYS_PID" "$timeout"; rc=$?
    fi
    if ((rc != 0)); then
        if ((rc == 2)); then SYS_ERR="$sys exited during startup"; else SYS_ERR="$sys did not get ready ($SYS_READY) within ${timeout}s"; fi
        SYS_ERR+="; log tail: $(tail -c 600 "$SYS_DIR"/*.log "$SYS_DIR"/logs/*.log 2>/dev/null | tr '\n' ' ')"
        stop_pid "$SYS_PID"
        SYS_PID=""
        return 1
    fi
    return 0
}

# Wait until a client writes its ready file; fails if the client exits first or after
# `tenths` tenths of a second.
wait_file() {  # file pid tenths
    local i
    for ((i = 0; i < $3; i++)); do
        [[ -f $1 ]] && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    [[ -f $1 ]]
}

# Run a private copy of the Switchyard binary, so that a rebuild during a
# benchmark cannot mix two builds in one report. Sets SWITCHYARD_SHA.
snapshot_switchyard() {
    SWITCHYARD_SHA=none
    [[ -x $SWITCHYARD_BIN ]] || return 0
    local src dir="$BENCH_TMP/switchyard-bin"
    src=$(readlink -f "$SWITCHYARD_BIN")
    mkdir -p "$dir"
    cp "$src" "$dir/switchyard" || die "cannot copy $src"
    SWITCHYARD_SHA=$(sha256sum "$dir/switchyard" | cut -c1-16)
    # Its RUNPATH has $ORIGIN: keep the original directory reachable.
    export LD_LIBRARY_PATH="$(dirname "$src")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    SWITCHYARD_BIN="$dir/switchyard"
    log "switchyard: using a copy of $src (sha256 $SWITCHYARD_SHA, built $(date -r "$src" '+%F %T'))"
    # `switchyard-base`: a second build (the one before a change), measured in the same run.
    SWITCHYARD_BASE_SHA=none
    if [[ -n ${SWITCHYARD_BASE_BIN:-} && -x $SWITCHYARD_BASE_BIN ]]; then
        cp "$(readlink -f "$SWITCHYARD_BASE_BIN")" "$dir/switchyard-base" || die "cannot copy $SWITCHYARD_BASE_BIN"
        SWITCHYARD_BASE_SHA=$(sha256sum "$dir/switchyard-base" | cut -c1-16)
        log "switchyard-base: using a copy of $SWITCHYARD_BASE_BIN (sha256 $SWITCHYARD_BASE_SHA)"
        SWITCHYARD_BASE_BIN="$dir/switchyard-base"
    fi
}

stop_system() {
    [[ -n $SYS_PID ]] && stop_pid "$SYS_PID"
    SYS_PID=""
}

# ---------------------------------------------------------------- runs ---

# The results directory bench/results/<name>-<stamp> (raw/, logs/), a private copy of the
# binary, and the temp dir's logs copied into it on exit. Sets RESULTS and SWITCHYARD_ORIG.
bench_results() {  # name
    RESULTS="$BENCH_DIR/results/$1-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$RESULTS/raw" "$RESULTS/logs"
    SWITCHYARD_ORIG=$SWITCHYARD_BIN
    snapshot_switchyard
    trap save_logs EXIT
}

save_logs() { [[ -d $BENCH_TMP ]] && cp -r "$BENCH_TMP"/. "$RESULTS/logs/" 2>/dev/null; bench_cleanup; }

# The lines every meta.txt starts with (the report reads key=value in any order); the
# caller adds its own and logs the load average.
bench_meta() {
    echo "date=$(date -Is)"
    echo "loadavg_start=$LOADAVG_START"
    echo "host_cpus=$(nproc)"
    echo "kernel=$(uname -r)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*: //')"
    echo "haproxy=$(haproxy -v | head -1 | awk '{print $3}')"
    echo "switchyard_bin=$SWITCHYARD_ORIG"
    echo "switchyard_sha256=$SWITCHYARD_SHA"
    # The commit of the tree the binary was built in (a clone elsewhere: its commit, not this one's).
    echo "switchyard_commit=$(git -C "$(dirname "$SWITCHYARD_ORIG")" describe --always --dirty 2>/dev/null ||
        git -C "$ROOT" describe --always --dirty 2>/dev/null || echo none)"
}

# A center's config (the issue 14 format): a public and a cluster listener, the shared registry
# file and secret, one pod route to its local pod server.
# With a 9th argument, a static route under that path prefix to the same pod server comes first
# (bench/callgrind_pods.sh compares the two on one center). Uses WORKERS and ADMIN_TOKEN.
write_center_conf() {  # dir node_id public internal admin pod_server_port registry_db secret_file [static_prefix]
    local d=$1 static=""
    [[ -n ${9:-} ]] && static="  - name: static
    path_prefix: $9
    upstreams: [\"127.0.0.1:$6\"]
"
    mkdir -p "$d"
    cat >"$d/switchyard.yaml" <<EOF
workers: $WORKERS
listeners:
  - name: public
    address: 127.0.0.1:$3
  - name: internal
    address: 127.0.0.1:$4
    cluster: true
registry:
  database: $7
cluster:
  node_id: $2
  internal_address: 127.0.0.1:$4
  public_address: http://127.0.0.1:$3
  secret_file: $8
  max_hops: 1
pools:
  center:
    heartbeat_threshold: 30s
routes:
$static  - name: pods
    path_prefix: /
    pods:
      key: path
    upstreams: ["127.0.0.1:$6"]
admin:
  address: 127.0.0.1:$5
  token: $ADMIN_TOKEN
logging:
  access: off
  error: stderr
EOF
}

# The wrk settings of a throughput/latency script (http1.sh, cluster.sh), for meta.txt.
wrk_meta() {
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "workers=$WORKERS"
    echo "repeat=$REPEAT"
    echo "conns=$CONNS"
    echo "threads=$THREADS"
    echo "duration=$DURATION"
    echo "lat_duration=$LAT_DURATION"
    echo "warmup=$WARMUP"
    echo "upstream_workers=$UPSTREAM_WORKERS"
    echo "body_bytes=${#UPSTREAM_BODY}"
}

# REPEAT repetitions of `fn rep item` over the items, round-robin, the order rotated every
# repetition so that no item always runs first or right after the same neighbour.
bench_rounds() {  # fn item...
    local fn=$1 rep i n; shift
    n=$#
    local items=("$@")
    for ((rep = 1; rep <= REPEAT; rep++)); do
        log "repetition $rep/$REPEAT"
        for ((i = 0; i < n; i++)); do
            "$fn" "$rep" "${items[$(((i + rep - 1) % n))]}"
        done
    done
}

# The end of a run: the closing load average, the report (python3 bench/<script> on the
# results) to summary.md, results/<name>-latest.md and stdout.
bench_report() {  # script name
    local loadavg_end
    loadavg_end=$(cat /proc/loadavg)
    echo "loadavg_end=$loadavg_end" >>"$RESULTS/meta.txt"
    log "loadavg at end: $loadavg_end"
    python3 "$BENCH_DIR/$1" "$RESULTS" >"$RESULTS/summary.md" || die "report failed"
    cp "$RESULTS/summary.md" "$BENCH_DIR/results/$2-latest.md"
    log "raw results: $RESULTS"
    cat "$RESULTS/summary.md"
}
