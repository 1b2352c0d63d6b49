#!/usr/bin/env bash
# bench/callgrind.sh - user-space instructions per proxied request.
#
# Each system runs (1 worker) under `valgrind --tool=callgrind` in front of the
# shared nginx upstream, twice: once serving WARM requests, once serving N,
# both sent one at a time on a single keep-alive connection by bench/nreq.c.
# Startup, the first upstream connect and shutdown cost the same in both
# runs, so
#
#     Ir per request = (Ir(N) - Ir(WARM)) / (N - WARM)
#
# Ir counts instructions executed in user space only (the kernel's share of
# every read/write/epoll call is not in it). Deterministic up to a few
# instructions per request, unlike wall-clock benchmarks on a noisy machine.
#
#   bench/callgrind.sh
#
# Environment: N [20000]  WARM [1000]  SYSTEMS ["switchyard nginx haproxy relay"]
#              READY_TIMEOUT [120] (seconds, startup under valgrind is slow)
# stdout: a markdown table. Raw callgrind files: bench/results/callgrind-*/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-20000}
WARM=${WARM:-1000}
SYSTEMS=${SYSTEMS:-switchyard nginx haproxy relay}
READY_TIMEOUT=${READY_TIMEOUT:-120}
((N > WARM && WARM > 0)) || die "need N > WARM > 0"

need valgrind callgrind_annotate objcopy nginx haproxy cc curl ss ps python3
bench_init callgrind
RESULTS="$BENCH_DIR/results/callgrind-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
RELAY_BIN="$BENCH_DIR/results/relay"
NREQ_BIN="$BENCH_DIR/results/nreq"
compile_c "$BENCH_DIR/relay.c" "$RELAY_BIN"
compile_c "$BENCH_DIR/nreq.c" "$NREQ_BIN"

start_upstream 1

# Valgrind 3.19 gives up on some DWARF 5 debug info that Swift/clang emit
# ("debuginfo reader: ... Possibly corrupted debuginfo file"). Run a copy
# without debug sections: function names (symtab) survive, line info does not.
if [[ " $SYSTEMS " == *" switchyard "* && -x $SWITCHYARD_BIN ]]; then
    stripped="$BENCH_DIR/results/switchyard.nodebug"
    objcopy --strip-debug "$SWITCHYARD_BIN" "$stripped" || die "objcopy --strip-debug failed"
    log "switchyard: using a copy of $SWITCHYARD_BIN without debug info (built $(date -r "$SWITCHYARD_BIN" '+%F %T'))"
    # The binary's RUNPATH has $ORIGIN: keep its own directory reachable.
    export LD_LIBRARY_PATH="$(dirname "$(readlink -f "$SWITCHYARD_BIN")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    SWITCHYARD_BIN=$stripped
fi
NGINX_MASTER=off     # one process, so one callgrind file
SYS_READY=listen     # no probe request: the counts must be the same every run

# Run `sys` under callgrind serving `count` requests; sets IR to the total.
# (Not run in $(...): the spawned process must stay in this shell's cleanup list.)
callgrind_run() {  # sys count
    local sys=$1 count=$2 out="$RESULTS/$1.$2.callgrind" i
    SYS_WRAP=(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no)
    SYS_ERR=""
    if ! start_system "$sys" 1 "$READY_TIMEOUT"; then
        log "  $sys: $SYS_ERR"
        return 1
    fi
    if ! "$NREQ_BIN" "$SYS_PORT" "$count" / "$UPSTREAM_BODY" >"$RESULTS/$sys.$count.nreq.txt" 2>&1; then
        log "  $sys: client failed: $(cat "$RESULTS/$sys.$count.nreq.txt")"
        stop_system
        return 1
    fi
    log "  $sys: $(cat "$RESULTS/$sys.$count.nreq.txt")"
    # Graceful stop so that callgrind writes its totals. stop_pid waits 5 s
    # before KILL; valgrind needs longer, so wait here first.
    kill -TERM "$SYS_PID" 2>/dev/null
    for ((i = 0; i < 600; i++)); do kill -0 "$SYS_PID" 2>/dev/null || break; sleep 0.1; done
    stop_system
    [[ -s $out ]] || { log "  $sys: no callgrind output"; return 1; }
    IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
    [[ -n $IR ]]
}

ROWS=()
for sys in $SYSTEMS; do
    if [[ $sys == switchyard && ! -x $SWITCHYARD_BIN ]]; then
        log "SKIP switchyard: binary $SWITCHYARD_BIN not found (build it with: swift build -c release)"
        ROWS+=("| switchyard | skipped: binary not built | | | |")
        continue
    fi
    log "$sys: $WARM requests under callgrind"
    callgrind_run "$sys" "$WARM" || { ROWS+=("| $sys | failed (see log) | | | |"); continue; }
    irw=$IR
    log "$sys: $N requests under callgrind"
    callgrind_run "$sys" "$N" || { ROWS+=("| $sys | failed (see log) | | | |"); continue; }
    irn=$IR
    per=$(awk -v a="$irn" -v b="$irw" -v n="$N" -v w="$WARM" 'BEGIN {printf "%.0f", (a - b) / (n - w)}')
    log "$sys: Ir($N)=$irn Ir($WARM)=$irw -> $per instructions/request"
    ROWS+=("| $sys | $per | $irn | $irw | $(((irw - WARM * per) / 1000000)) |")
    echo -e "$sys\t$per\t$irn\t$irw" >>"$RESULTS/ir.tsv"
    # Per-request profile (long run minus short run, by function).
    python3 "$BENCH_DIR/callgrind_diff.py" "$RESULTS/$sys.$N.callgrind" "$N" "$RESULTS/$sys.$WARM.callgrind" "$WARM" 40 \
        >"$RESULTS/$sys.top.txt" 2>&1
    if command -v swift-demangle >/dev/null 2>&1; then
        swift-demangle --simplified <"$RESULTS/$sys.top.txt" >"$RESULTS/$sys.top.tmp" 2>/dev/null &&
            mv "$RESULTS/$sys.top.tmp" "$RESULTS/$sys.top.txt"
    fi
done

{
    echo "## Instructions per proxied request (bench/callgrind.sh)"
    echo
    echo "$(date -Is) · valgrind $(valgrind --version | sed 's/valgrind-//') · 1 worker · $N vs $WARM sequential keep-alive requests on one connection · loadavg \`$(cat /proc/loadavg)\`"
    echo
    echo "| system | Ir/request | Ir($N) | Ir($WARM) | startup+shutdown MIr (approx.) |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Ir = user-space instructions executed (kernel work in syscalls is not counted). Per-request profile by function: $RESULTS/<system>.top.txt"
} | tee "$RESULTS/summary.md"
