#!/usr/bin/env bash
# Profiles Strata's one-process ingest path: starts the release `strata` on
# 127.0.0.1, warms it up with SERIES series, then records a CPU profile
# (perf, DWARF call graphs) of the strata process during a max-rate write
# phase and folds it into a flamegraph and a per-function summary.
#
#   loadtest/bench/profile-ingest.sh            # results in .tmp/profile-ingest/<time>
#   STRATA_BIN=/path/to/other/strata loadtest/bench/profile-ingest.sh   # profile another build
#
# Needs perf (Debian linux-perf) and inferno (cargo install inferno); both
# are installed when missing. Knobs: SERIES (100000), WARMUP_ROUNDS (40),
# DURATION (30s write phase), PERF_SECONDS (20), PORT (19500), OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SERIES=${SERIES:-100000}
WARMUP_ROUNDS=${WARMUP_ROUNDS:-40}
DURATION=${DURATION:-30s}
PERF_SECONDS=${PERF_SECONDS:-20}
PORT=${PORT:-19500}
OUT=${OUT:-.tmp/profile-ingest/$(date -u +%Y%m%dT%H%M%SZ)}
STRATA_BIN=${STRATA_BIN:-$ROOT/target/release/strata}
LOADGEN=$ROOT/target/release/strata-loadgen
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

command -v perf >/dev/null || $SUDO apt-get install -y -qq linux-perf >/dev/null
command -v inferno-collapse-perf >/dev/null || cargo install --locked inferno
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p strata -p strata-loadtest
fi
mkdir -p "$OUT"

"$STRATA_BIN" --server.http-listen-address=127.0.0.1 --server.grpc-listen-address=127.0.0.1 \
  --server.http-listen-port="$PORT" --server.grpc-listen-port=$((PORT + 1)) \
  --data-dir="$OUT/data" --distributor.limits.ingestion-rate=0 --ingester.max-series=0 \
  --ingester.limits.max-series-per-tenant=0 --ingester.limits.max-series-per-metric=0 \
  >"$OUT/strata.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

T0=$((($(date +%s) - 86400) * 1000))
common=(--url "http://127.0.0.1:$PORT/api/v1/push" --series "$SERIES" --batch-size 2000
  --max-rate --start-time "$T0" --concurrency 8 --json --progress 0)
"$LOADGEN" write "${common[@]}" --rounds "$WARMUP_ROUNDS" --duration 120s >"$OUT/warmup.json"
next=$(jq .next_round "$OUT/warmup.json")

perf record -F 299 -g --call-graph dwarf,32768 -p "$PID" -o "$OUT/perf.data" \
  -- sleep "$PERF_SECONDS" >"$OUT/perf.log" 2>&1 &
PERF=$!
"$LOADGEN" write "${common[@]}" --start-round "$next" --duration "$DURATION" >"$OUT/ingest.json"
wait $PERF || true

perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/stacks.folded"
inferno-flamegraph <"$OUT/stacks.folded" >"$OUT/flamegraph.svg"
# Self time attributed to the innermost Strata frame of each sample (time
# in libc, std or the allocator counts for the Strata function calling it).
awk '{
  n = $NF; total += n; key = "(outside strata code)"
  k = split(substr($0, 1, length($0) - length(n) - 1), f, ";")
  for (i = k; i >= 1; i--) if (f[i] ~ /strata_/) { key = substr(f[i], 1, 110); break }
  sum[key] += n
} END { for (k in sum) printf "%6.2f%% %s\n", 100 * sum[k] / total, k }' \
  "$OUT/stacks.folded" | sort -rn | head -n 30 >"$OUT/summary.txt"

jq -c '{accepted_samples_per_s, errors, p50_ms: .latency.p50_ms, p99_ms: .latency.p99_ms}' "$OUT/ingest.json"
cat "$OUT/summary.txt"
echo "flamegraph: $OUT/flamegraph.svg"
