#!/usr/bin/env bash
# bench/callgrind_pods.sh - user-space instructions per request on pod routes (issue 14).
#
# Two centers A and B on one SQLite registry, pod alice owned by A, a static route beside the
# pod route; one of the two runs under callgrind while bench/nreq.c sends N (then WARM)
# sequential keep-alive requests; Ir/request = (Ir(N) - Ir(WARM)) / (N - WARM), as in
# bench/callgrind.sh. Scenarios:
#   static  A, GET /static/x (a static route of the same config)
#   direct  A, GET /alice/x (A owns alice: served by its local upstream)
#   chainB  B, GET /alice/x through B (B forwards to A's cluster listener)
#   chainA  A, GET /alice/x through B (A serves the forwarded request)
#
# Unlike bench/callgrind.sh the figures carry time-driven work: a center's registry follower
# polls the shared SQLite file every 10 ms and its heartbeat thread runs, and callgrind counts
# their instructions too, so repeated runs of one binary differ by up to ~±200 Ir/request.
#
#   SWITCHYARD_BIN=.build/release/switchyard bench/callgrind_pods.sh
# Environment: N [10000]  WARM [1000]  SCEN ["static direct chainB chainA"]
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need valgrind objcopy nginx cc curl
N=${N:-10000}; WARM=${WARM:-1000}
BIN=$SWITCHYARD_BIN
[[ -x $BIN ]] || die "binary $BIN not found (swift build -c release)"
bench_init cgpods
NREQ=$BENCH_TMP/nreq; compile_c "$BENCH_DIR/nreq.c" "$NREQ"
start_upstream 1
stripped=$BENCH_TMP/sy.nodebug; objcopy --strip-debug "$BIN" "$stripped"; BIN=$stripped
ADMIN_TOKEN=bench-admin-token-0123456789
WORKERS=1
echo "cluster-secret-for-callgrind-0123" > $BENCH_TMP/secret
run() { # scenario count -> prints Ir
  local sc=$1 n=$2 d=$BENCH_TMP/$1-$2; mkdir -p $d
  local pa=$(free_port) ia=$(free_port) aa=$(free_port) pb=$(free_port) ib=$(free_port) ab=$(free_port)
  write_center_conf $d/a center-a $pa $ia $aa $UPSTREAM_PORT $d/reg.db $BENCH_TMP/secret /static
  write_center_conf $d/b center-b $pb $ib $ab 9 $d/reg.db $BENCH_TMP/secret /static
  local wa=() wb=()
  case $sc in direct|static) wa=(valgrind --tool=callgrind --callgrind-out-file=$d/cg.out --dump-instr=no);;
    chainB) wb=(valgrind --tool=callgrind --callgrind-out-file=$d/cg.out --dump-instr=no);;
    chainA) wa=(valgrind --tool=callgrind --callgrind-out-file=$d/cg.out --dump-instr=no);; esac
  bench_spawn $d/a.log "${wa[@]}" $BIN serve --config $d/a/switchyard.yaml; local A=$SPAWNED_PID
  wait_listen $aa $A 120 || { echo "A fail"; return 1; }
  bench_spawn $d/b.log "${wb[@]}" $BIN serve --config $d/b/switchyard.yaml; local B=$SPAWNED_PID
  wait_listen $ab $B 120 || { echo "B fail"; return 1; }
  curl -s -XPOST -H "X-Admin-Token: $ADMIN_TOKEN" --data '{"pod_id":"alice","node_id":"center-a"}' http://127.0.0.1:$aa/.cluster/pods >/dev/null
  sleep 2
  local port=$pa path=/alice/x
  case $sc in static) path=/static/x;; chainB|chainA) port=$pb;; esac
  $NREQ $port $n $path "$UPSTREAM_BODY" > $d/nreq.txt 2>&1 || { echo "nreq failed: $(cat $d/nreq.txt)"; }
  local victim=$A; [[ $sc == chainB ]] && victim=$B
  kill -TERM $victim; for i in $(seq 600); do kill -0 $victim 2>/dev/null || break; sleep 0.1; done
  kill -TERM $A $B 2>/dev/null; sleep 0.5
  awk '/^(summary|totals):/ {print $2; exit}' $d/cg.out
}
for sc in ${SCEN:-static direct chainB chainA}; do
  w=$(run $sc $WARM); n=$(run $sc $N)
  echo "$sc Ir/req = $(awk -v a=$n -v b=$w -v n=$N -v w=$WARM 'BEGIN{printf "%.0f",(a-b)/(n-w)}')  ($n $w)"
done
