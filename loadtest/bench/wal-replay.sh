#!/usr/bin/env bash
# Write-ahead log replay speed: pushes SERIES series × ROUNDS samples into the
# one-process `strata` at maximum rate, SIGKILLs it (nothing flushed, nothing
# checkpointed), starts it again on the same data directory and reads the
# replay's own log line (series, samples, seconds). Prints the figures.
#
#   loadtest/bench/wal-replay.sh                 # 100k series, 120 rounds
#   SERIES=1000000 ROUNDS=12 loadtest/bench/wal-replay.sh
#
# Knobs: SERIES (100000), ROUNDS (120), PORT (19400), SKIP_BUILD=1,
# STRATA_BIN (target/release/strata).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SERIES=${SERIES:-100000}
ROUNDS=${ROUNDS:-120}
PORT=${PORT:-19400}
STRATA_BIN=${STRATA_BIN:-$ROOT/target/release/strata}
LOADGEN=$ROOT/target/release/strata-loadgen
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p strata -p strata-loadgen >&2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/wal-replay.XXXXXX")
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
start() {
  "$STRATA_BIN" --server.http-listen-address=127.0.0.1 --server.grpc-listen-address=127.0.0.1 \
    --server.http-listen-port="$PORT" --server.grpc-listen-port=$((PORT + 1)) \
    --data-dir="$work/data" --distributor.limits.ingestion-rate=0 --ingester.max-series=0 \
    --ingester.limits.max-series-per-tenant=0 --ingester.limits.max-series-per-metric=0 \
    >>"$work/strata.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "strata did not become ready; log: $work/strata.log" >&2
  exit 1
}
start
T0=$(( ($(date +%s) - 3 * 3600) * 1000 ))
"$LOADGEN" write --url "http://127.0.0.1:$PORT/api/v1/push" --series "$SERIES" \
  --interval 15s --batch-size 2000 --max-rate --start-time "$T0" --rounds "$ROUNDS" \
  --concurrency 8 --duration 600s --max-requests 100000000 --progress 0 --json \
  >"$work/write.json"
wal_bytes=$(du -sb "$work/data/wal" | cut -f1)
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
start
line=$(grep "write-ahead log replayed" "$work/strata.log" | tail -1)
seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
series=$(sed -n 's/.* series=\([0-9]*\).*/\1/p' <<<"$line")
samples=$(sed -n 's/.* samples=\([0-9]*\).*/\1/p' <<<"$line")
echo "write: $(cat "$work/write.json")"
echo "log on disk before the kill: $wal_bytes bytes ($(awk -v b="$wal_bytes" -v s="$samples" 'BEGIN{printf "%.1f", b/s}') bytes per sample)"
echo "replayed $series series and $samples samples in $seconds s: $(awk -v s="$samples" -v t="$seconds" 'BEGIN{printf "%.2fM samples/s", s/t/1e6}'), $(awk -v s="$series" -v t="$seconds" 'BEGIN{printf "%.0fk series/s", s/t/1e3}')"
