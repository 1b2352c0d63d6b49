#!/usr/bin/env bash
# bench/registry.sh - the shared registry (issue 13) on a real PostgreSQL started here:
#   1. placement writes/s, cold start and bytes per placement with PLACEMENTS placements
#      (default 1,000,000), SQLite and PostgreSQL side by side (switchyard bench-placement);
#   2. change propagation across three gateway processes on one database: 100 reassignments
#      through one, each timed until the other two route the user to the new node
#      (p50/p99 of 200 samples; the SharedPostgresTests end-to-end test, on the release binary).
#
#   bench/registry.sh
#   PLACEMENTS=200000 bench/registry.sh
#
# Needs the release binary (make release) and Debian's postgresql (make deps-test). PostgreSQL
# refuses to run as root: under root its commands run as the postgres user. nginx and HAProxy
# have no shared registry to compare with; the comparison here is SQLite vs PostgreSQL.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SWITCHYARD_BIN:-$ROOT/.build/release/switchyard}
[[ -x $BIN ]] || { echo "no $BIN: run make release first" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $PGBIN/initdb ]] || { echo "PostgreSQL not installed: make deps-test" >&2; exit 1; }
PLACEMENTS=${PLACEMENTS:-1000000}

TMP=$(mktemp -d /tmp/switchyard-registry.XXXXXX)
chmod 755 "$TMP"
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) == 0 ]] && chown postgres:postgres "$TMP"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$TMP/data" -U switchyard -A trust -E UTF8 --no-sync --no-instructions >/dev/null
# Durable commits, as in production (the tests turn fsync off; the bench does not).
as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w -t 30 \
    -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U switchyard bench
URL="postgres://switchyard@127.0.0.1:$PORT/bench"

echo "## Registry (bench/registry.sh)"
echo
echo "$(date -Is) · commit $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo none) · loadavg \`$(cat /proc/loadavg)\` · PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
echo
echo '```'
# Each engine: create, persist and look up in one process, then start-up and memory again in a
# fresh one (the first process's RSS holds what it freed).
echo "# SQLite ($PLACEMENTS placements)"
"$BIN" bench-placement --placements "$PLACEMENTS" --database "$TMP/placement.db" --lookups 200000
"$BIN" bench-placement --load-only --database "$TMP/placement.db"
echo "# PostgreSQL ($PLACEMENTS placements)"
"$BIN" bench-placement --placements "$PLACEMENTS" --database "$URL" --lookups 200000
"$BIN" bench-placement --load-only --database "$URL"
echo '```'
echo
echo '```'
cd "$ROOT"
swift build --build-tests >/dev/null
SWITCHYARD_BIN=$BIN swift test --skip-build --filter 'SharedPostgresTests/threeGatewaysAgree' 2>&1 \
    | grep -E '^threeGatewaysAgree:|✘|passed after|failed after' | grep -v '^◇' | head -5
echo '```'
