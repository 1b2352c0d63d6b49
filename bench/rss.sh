#!/usr/bin/env bash
# bench/rss.sh - memory of an idle gateway and of one holding many idle
# keep-alive client connections.
#
# For each system (fresh start, W workers, in front of the shared nginx
# upstream): RSS after start and one request ("idle"), then RSS while
# bench/idle_conns.py holds CONNS connections that each served one request
# and then stay open and idle ("loaded"). Memory is summed over the system's
# process tree: VmRSS (counts shared pages once per process) and Pss.
#
#   bench/rss.sh
#
# Environment: CONNS [5000]  WORKERS [1]  SYSTEMS ["switchyard nginx haproxy"]
#              SETTLE [2] (seconds to wait before reading memory)
# stdout: a markdown table. Raw: bench/results/rss-*/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS=${CONNS:-5000}
WORKERS=${WORKERS:-1}
SYSTEMS=${SYSTEMS:-switchyard nginx haproxy}
SETTLE=${SETTLE:-2}

need nginx haproxy python3 curl ss ps
# Client and server ends of every connection, plus upstream pools; HAProxy
# (maxconn 8000) also insists on ~16k descriptors. Raise to the hard limit.
want=$((CONNS + 1000))
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=65536
((hard >= want)) || die "ulimit -Hn is $hard, need $want for $CONNS connections"
ulimit -n "$hard" || die "cannot raise ulimit -n to $hard"

bench_init rss
RESULTS="$BENCH_DIR/results/rss-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
snapshot_switchyard
start_upstream 1

ROWS=()
for sys in $SYSTEMS; do
    SYS_ERR=""
    if ! start_system "$sys" "$WORKERS" 10; then
        log "SKIP $sys: $SYS_ERR"
        ROWS+=("| $sys | $WORKERS | skipped: ${SYS_ERR%%; log tail*} | | | | | | |")
        continue
    fi
    sleep "$SETTLE"
    read -r rss0 pss0 nproc <<<"$(tree_mem_kb "$SYS_PID")"
    log "$sys: idle RSS ${rss0} kB, PSS ${pss0} kB ($nproc processes)"

    ready="$BENCH_TMP/$sys.ready"
    bench_spawn "$BENCH_TMP/$sys.idle_conns.log" python3 "$BENCH_DIR/idle_conns.py" "$SYS_PORT" "$CONNS" "$ready" 300
    client=$SPAWNED_PID
    if ! wait_file "$ready" "$client" 1200; then
        log "$sys: client did not finish: $(tail -5 "$BENCH_TMP/$sys.idle_conns.log")"
        ROWS+=("| $sys | $WORKERS | client failed | | | | | | |")
        stop_pid "$client"; stop_system
        continue
    fi
    sleep "$SETTLE"
    held=$(ss -Htn state established "( sport = :$SYS_PORT )" | wc -l)
    read -r rss1 pss1 nproc <<<"$(tree_mem_kb "$SYS_PID")"
    alive=yes; kill -0 "$SYS_PID" 2>/dev/null || alive=no
    log "$sys: $(cat "$ready"), $held established at the proxy; RSS ${rss1} kB, PSS ${pss1} kB; alive=$alive"
    per=$(awk -v a="$rss1" -v b="$rss0" -v n="$CONNS" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
    perp=$(awk -v a="$pss1" -v b="$pss0" -v n="$CONNS" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
    ROWS+=("| $sys | $WORKERS | $((rss0 / 1024)).$(((rss0 % 1024) * 10 / 1024)) | $((rss1 / 1024)).$(((rss1 % 1024) * 10 / 1024)) | $per | $((pss0 / 1024)).$(((pss0 % 1024) * 10 / 1024)) | $((pss1 / 1024)).$(((pss1 % 1024) * 10 / 1024)) | $perp | $(cut -d' ' -f1 "$ready" | cut -d= -f2) ok, $held held |")
    echo -e "$sys\t$WORKERS\t$rss0\t$rss1\t$pss0\t$pss1\t$nproc\t$held\t$(cat "$ready")" >>"$RESULTS/rss.tsv"
    stop_pid "$client"
    stop_system
done

{
    echo "## Memory: idle and with $CONNS idle keep-alive connections (bench/rss.sh)"
    echo
    echo "$(date -Is) · W=$WORKERS · loadavg \`$(cat /proc/loadavg)\`"
    echo
    echo "| system | W | RSS idle MiB | RSS loaded MiB | RSS bytes/conn | PSS idle MiB | PSS loaded MiB | PSS bytes/conn | connections |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Sums over the process tree (nginx: master + workers). bytes/conn = (loaded − idle) ÷ $CONNS."
} | tee "$RESULTS/summary.md"
