#!/usr/bin/env bash
# bench/cpu-ab.sh - Switchyard's own CPU (user + system) per proxied request, one build against
# another, interleaved: A B A B ... so a drift of the shared machine hits both alike, and the
# ratio is taken pair by pair. The before/after check of a restructuring ("the benchmarks where
# they were") where wrk ratios to nginx move by more than the bar between runs.
#
#   bench/cpu-ab.sh BIN_A BIN_B        # e.g. a build of the change, a build of its parent
#
# Each run: W workers (default 1) in front of the shared nginx upstream, a short wrk warm-up,
# then wrk with C keep-alive connections for D seconds; the gateway's CPU ticks over that run
# (from /proc) divided by the requests wrk completed. Environment: W [1]  C [50]  D [5]
# ROUNDS [7].
# stdout: one line per round and the median of the per-round ratios A/B.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# == 2)) || die "usage: bench/cpu-ab.sh BIN_A BIN_B"
W=${W:-1}
C=${C:-50}
D=${D:-5}
ROUNDS=${ROUNDS:-7}
need nginx wrk curl ss python3
bench_init cpu-ab
start_upstream 1
# Private copies: a rebuild during the run cannot change what is measured.
for x in A B; do
    src=$([[ $x == A ]] && echo "$1" || echo "$2")
    [[ -x $src ]] || die "$src: not an executable"
    cp "$src" "$BENCH_TMP/switchyard-$x"
done
export LD_LIBRARY_PATH="$(dirname "$(readlink -f "$1")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# One run of build `x`; prints its CPU µs per request.
run_one() {  # x
    SWITCHYARD_BIN="$BENCH_TMP/switchyard-$1"
    start_system switchyard "$W" || die "$1: $SYS_ERR"
    wrk -t 1 -c "$C" -d 1s "http://127.0.0.1:$SYS_PORT/" >/dev/null 2>&1 || die "$1: warm-up failed"
    local t0 t1 out requests
    t0=$(tree_ticks "$SYS_PID")
    out=$(wrk -t 1 -c "$C" -d "${D}s" "http://127.0.0.1:$SYS_PORT/" 2>&1) || die "$1: wrk failed: $out"
    t1=$(tree_ticks "$SYS_PID")
    stop_system
    grep -q "Non-2xx" <<<"$out" && die "$1: non-2xx answers: $out"
    requests=$(awk '/requests in/ {print $1; exit}' <<<"$out")
    python3 -c "print(f'{($t1 - $t0) * 1e6 / $CLK_TCK / $requests:.3f} {$requests}')"
}

echo "# bench/cpu-ab.sh: A=$1 B=$2, W=$W, C=$C, ${D}s per run, $ROUNDS rounds, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
    read -r a na <<<"$(run_one A)"; read -r b nb <<<"$(run_one B)"
    ratio=$(python3 -c "print(f'{$a / $b:.4f}')")
    ratios+=("$ratio")
    echo "round $r: A $a µs/req ($na req), B $b µs/req ($nb req), A/B $ratio"
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = sorted(float(x) for x in sys.argv[1:])
print(f"median A/B {statistics.median(r):.4f} (min {r[0]:.4f}, max {r[-1]:.4f}, {len(r)} rounds)")
PY
