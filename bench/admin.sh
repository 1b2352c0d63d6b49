#!/usr/bin/env bash
# bench/admin.sh - the bars of issue 5 (admin plane):
#   1. drain of $PLACEMENTS placements (default 100,000) from node A to node B: time of the
#      admin call (bar: <= 2 s) and how soon requests of moved users reach B (bar: <= 100 ms);
#   2. /metrics scraped every 100 ms under full load: req/s with and without the scraper, on
#      the bench/http1.sh workload (bar: <= 2% lost). Runs alternate, REPEAT times, medians.
#
#   bench/admin.sh
#   PLACEMENTS=100000 REPEAT=5 DURATION=6s bench/admin.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PLACEMENTS=${PLACEMENTS:-100000}
REPEAT=${REPEAT:-3}
DURATION=${DURATION:-6s}
CONNS=${CONNS:-50}
need wrk nginx python3 curl
bench_init admin
BIN=${SWITCHYARD_BIN:-$ROOT/.build/release/switchyard}
[[ -x $BIN ]] || die "no $BIN: run make release first"
cp "$BIN" "$BENCH_TMP/switchyard"
BIN="$BENCH_TMP/switchyard"
TOKEN=benchtoken-0123456789abcdef

start_upstream 1
UP_A=$UPSTREAM_PORT
start_upstream 1
UP_B=$UPSTREAM_PORT

write_conf() {  # dir port admin_port
    cat >"$1/switchyard.yaml" <<YAML
workers: 1
listeners: [{name: public, address: "127.0.0.1:$2"}]
admin: {address: "127.0.0.1:$3", token: $TOKEN}
logging: {access: "off", error: stderr}
registry: {database: $1/registry.db}
nodes:
  - {name: A, pool: workspace, address: "127.0.0.1:$UP_A", preview_base_url: "http://127.0.0.1:$UP_A", heartbeats: false}
  - {name: B, pool: workspace, address: "127.0.0.1:$UP_B", preview_base_url: "http://127.0.0.1:$UP_B", heartbeats: false}
routes:
  - {name: workspace, path_prefix: /ws/, key: {path_segment: /ws/}, pool: workspace}
  - {name: bench, path_prefix: /, upstreams: ["127.0.0.1:$UP_A"]}
YAML
}

start_gateway() {  # dir -> GW_PORT ADMIN_PORT GW_PID
    GW_PORT=$(free_port); ADMIN_PORT=$(free_port)
    write_conf "$1" "$GW_PORT" "$ADMIN_PORT"
    bench_spawn "$1/gateway.log" "$BIN" serve --config "$1/switchyard.yaml"
    GW_PID=$SPAWNED_PID
    wait_http "$GW_PORT" "$GW_PID" 30 || die "gateway did not start: $(tail -5 "$1/gateway.log")"
}

echo "## Admin plane (bench/admin.sh)"
echo
echo "$(date -Is) · commit $(git -C "$ROOT" describe --always --dirty) · binary $(sha256sum "$BIN" | cut -c1-12) · loadavg at start \`$(cat /proc/loadavg)\`"
echo

# 1. Drain. The placements are written into the registry database before the gateway starts
#    (it loads them at start), which takes a second instead of 100,000 requests.
D="$BENCH_TMP/drain"; mkdir -p "$D"
start_gateway "$D"; stop_pid "$GW_PID"
python3 - "$D/registry.db" "$PLACEMENTS" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1]); now = int(time.time() * 1000)
db.executemany("INSERT INTO placements (pool, key, node, host_port, last_active, created_at, updated_at) VALUES ('workspace', ?, 'A', 0, 0, ?, ?)",
               ((f"u{i}", now, now) for i in range(int(sys.argv[2]))))
db.commit()
PY
start_gateway "$D"
log "drain: $PLACEMENTS placements on A"
DRAIN=$(python3 "$BENCH_DIR/admin_drain.py" "$GW_PORT" "$ADMIN_PORT" "$TOKEN" "$PLACEMENTS")
stop_pid "$GW_PID"
echo "### Drain of $PLACEMENTS placements, A -> B (1 worker)"
echo
echo '```'
echo "$DRAIN"
echo '```'
echo

# 2. Scrape cost.
S="$BENCH_TMP/scrape"; mkdir -p "$S"
declare -a WITH=() WITHOUT=()
for r in $(seq 1 "$REPEAT"); do
    for mode in without with; do
        start_gateway "$S"
        wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$GW_PORT/" >/dev/null 2>&1
        SCRAPER=""
        if [[ $mode == with ]]; then
            ( while true; do curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/metrics"; sleep 0.1; done ) &
            SCRAPER=$!
        fi
        RPS=$(wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$GW_PORT/" | awk '/Requests\/sec/ {print $2}')
        [[ -n $SCRAPER ]] && { kill "$SCRAPER"; wait "$SCRAPER" 2>/dev/null; }
        stop_pid "$GW_PID"
        log "scrape $mode run $r: $RPS req/s"
        if [[ $mode == with ]]; then WITH+=("$RPS"); else WITHOUT+=("$RPS"); fi
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
MW=$(median "${WITH[@]}"); MWO=$(median "${WITHOUT[@]}")
echo "### /metrics every 100 ms under load (wrk -t1 -c$CONNS -d$DURATION, 1 worker, medians of $REPEAT)"
echo
echo "| | req/s |"
echo "|---|---|"
echo "| without scraper | $MWO |"
echo "| with scraper | $MW |"
echo "| ratio | $(python3 -c "print(f'{$MW/$MWO:.3f}')") |"
echo
echo "runs without: ${WITHOUT[*]} · with: ${WITH[*]} · loadavg at end \`$(cat /proc/loadavg)\`"
