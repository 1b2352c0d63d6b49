#!/usr/bin/env bash
# bench/placement.sh - the placement bars of issue 3 on the real registry and SQLite store:
# persisted placements per second, cold start (load from SQLite), bytes per placement, and the
# p99 of existing-key lookups, alone and while new keys are placed at 10,000/s.
#
#   bench/placement.sh                    # 1,000,000 placements
#   PLACEMENTS=200000 bench/placement.sh
#
# Needs the release binary (make release). Prints the numbers with loadavg and the commit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SWITCHYARD_BIN:-$ROOT/.build/release/switchyard}
[[ -x $BIN ]] || { echo "no $BIN: run make release first" >&2; exit 1; }
DB=$(mktemp -d)/placement.db
trap 'rm -rf "$(dirname "$DB")"' EXIT
echo "## Placement (bench/placement.sh)"
echo
echo "$(date -Is) · commit $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo none) · loadavg \`$(cat /proc/loadavg)\`"
echo
echo '```'
"$BIN" bench-placement --placements "${PLACEMENTS:-1000000}" --database "$DB"
echo '```'
