#!/usr/bin/env bash
# Memory over a simulated day: pushes HOURS hours of synthetic time at fixed
# active series into the one-process `strata`, one simulated hour at a time
# at maximum rate, and after each hour records the process's resident
# memory (VmRSS) and the ingester's series and chunk gauges. It does this
# twice: with the flush loop on (short periods, so a simulated hour's chunks
# are flushed and dropped within seconds of wall time) and with flushing
# off (`--ingester.flush-period=0s`: every chunk stays in memory, the
# behaviour before long-term storage). Prints a markdown table, hour → RSS.
#
#   loadtest/bench/steady-memory.sh                       # 20k series, 24 h, both modes
#   SERIES=50000 HOURS=12 MODES=flush loadtest/bench/steady-memory.sh
#
# Synthetic time starts START_AGO (26h) before the wall clock, so the whole
# simulated day lies in chunk windows (ingester.max-chunk-age, 2 h, aligned)
# that are already over by the wall clock: the flush loop flushes a window's
# chunks once it is over by the wall clock, so data of the current window
# would stay in memory until it ends (see docs/benchmarks.md).
#
# Knobs (environment):
#   SERIES          active series                                   (20000)
#   HOURS           simulated hours                                 (24)
#   INTERVAL_S      seconds between two samples of a series         (15)
#   CONCURRENCY     requests in flight                              (4)
#   MODES           "flush noflush" or one of them                  (flush noflush)
#   FLUSH_FLAGS     ingester flags of the flush mode   (--ingester.flush-period=1s
#                   --ingester.flush-delay=0s --ingester.retain-period=10s)
#   SETTLE_S        seconds to wait after each hour (after the flush cycle in
#                   the flush mode) before reading RSS; the heap trimmer runs
#                   every 5 s                                       (5)
#   CYCLE_TIMEOUT_S deadline for a flush cycle to leave nothing unflushed (60)
#   START_AGO_H     hours between the start of synthetic time and now (26)
#   TIME_BUDGET     seconds for the whole script; a mode stops at the first
#                   hour that would pass it and the table says so  (1200)
#   PORT            HTTP port (gRPC is PORT+1)                      (19300)
#   RESULTS         results directory   (.tmp/steady-memory/<UTC timestamp>)
#   KEEP_DATA=1     keep the data directories; SKIP_BUILD=1 use the built binaries
#   STRATA_BIN      strata binary to measure           (target/release/strata)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

SERIES=${SERIES:-20000}
HOURS=${HOURS:-24}
INTERVAL_S=${INTERVAL_S:-15}
CONCURRENCY=${CONCURRENCY:-4}
MODES=${MODES:-"flush noflush"}
FLUSH_FLAGS=${FLUSH_FLAGS:-"--ingester.flush-period=1s --ingester.flush-delay=0s --ingester.retain-period=10s"}
SETTLE_S=${SETTLE_S:-5}
CYCLE_TIMEOUT_S=${CYCLE_TIMEOUT_S:-60}
START_AGO_H=${START_AGO_H:-26}
TIME_BUDGET=${TIME_BUDGET:-1200}
PORT=${PORT:-19300}
RESULTS=${RESULTS:-.tmp/steady-memory/$(date -u +%Y%m%dT%H%M%SZ)}
KEEP_DATA=${KEEP_DATA:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
STRATA_BIN=${STRATA_BIN:-$ROOT/target/release/strata}
LOADGEN=$ROOT/target/release/strata-loadgen
ROUNDS_PER_HOUR=$((3600 / INTERVAL_S))

START_EPOCH=$(date +%s)
log() { printf '[steady %4ds] %s\n' "$(($(date +%s) - START_EPOCH))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v jq >/dev/null || die "jq is required"
command -v curl >/dev/null || die "curl is required"
if [ "$SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  cargo build --release -p strata -p strata-loadtest
fi
[ -x "$STRATA_BIN" ] || die "missing $STRATA_BIN (cargo build --release -p strata)"
[ -x "$LOADGEN" ] || die "missing $LOADGEN (cargo build --release -p strata-loadtest)"

mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
DATA_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/strata-steady-memory.XXXXXX")
PID=""

stop_strata() {
  [ -n "$PID" ] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  local deadline=$(($(date +%s) + 20))
  while kill -0 "$PID" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
  wait "$PID" 2>/dev/null || true
  PID=""
}
cleanup() {
  stop_strata
  if [ "$KEEP_DATA" = 1 ]; then
    log "data kept in $DATA_ROOT"
  else
    rm -rf "$DATA_ROOT"
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
rss_kib() { awk '/^VmRSS:/ {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
scrape() { curl -fsS --max-time 10 "http://127.0.0.1:$PORT/metrics"; }
# Sum of a metric's samples (all label sets) in a scrape read from stdin.
metric() {
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%.0f\n", s; else print 0 }'
}

# One synthetic clock for both modes: identical data.
T0=$((($(date +%s) - START_AGO_H * 3600) * 1000))
T0=$((T0 - T0 % 60000))

run_mode() { # mode
  local mode=$1 flags=() dir=$RESULTS/$1 data=$DATA_ROOT/$1
  mkdir -p "$dir" "$data"
  case $mode in
    flush) read -r -a flags <<<"$FLUSH_FLAGS" ;;
    noflush) flags=(--ingester.flush-period=0s --ingester.flush-on-shutdown=false) ;;
    *) die "unknown mode $mode (flush or noflush)" ;;
  esac
  port_free "$PORT" && port_free $((PORT + 1)) || die "port $PORT or $((PORT + 1)) in use"
  "$STRATA_BIN" --server.http-listen-address=127.0.0.1 --server.grpc-listen-address=127.0.0.1 \
    --server.http-listen-port="$PORT" --server.grpc-listen-port=$((PORT + 1)) \
    --data-dir="$data" --distributor.limits.ingestion-rate=0 --ingester.max-series=0 \
    --ingester.limits.max-series-per-tenant=0 --ingester.limits.max-series-per-metric=0 \
    "${flags[@]}" >"$dir/strata.log" 2>&1 </dev/null &
  PID=$!
  log "$mode: started strata (pid $PID) with ${flags[*]}"
  local deadline=$(($(date +%s) + 60))
  until curl -fsS --max-time 2 "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$mode: strata not ready (see $dir/strata.log)"
    kill -0 "$PID" 2>/dev/null || die "$mode: strata exited (see $dir/strata.log)"
    sleep 0.3
  done
  jq -n --argjson rss "$(rss_kib "$PID")" '{hour: 0, rss_kib: $rss, memory_series: 0}' >"$dir/hours.jsonl"

  local h last_hour_s=0 started m
  for ((h = 0; h < HOURS; h++)); do
    # The next hour, with room for its wait, must fit in the budget.
    local elapsed=$(($(date +%s) - START_EPOCH))
    if [ $((elapsed + 2 * last_hour_s)) -gt "$TIME_BUDGET" ]; then
      log "$mode: stopping after hour $h: ${elapsed}s elapsed, TIME_BUDGET=${TIME_BUDGET}s"
      echo "$h" >"$dir/stopped-at-hour.txt"
      break
    fi
    started=$(date +%s)
    "$LOADGEN" write --url "http://127.0.0.1:$PORT/api/v1/push" --series "$SERIES" \
      --interval "${INTERVAL_S}s" --batch-size 2000 --max-rate --start-time "$T0" \
      --start-round $((h * ROUNDS_PER_HOUR)) --rounds "$ROUNDS_PER_HOUR" \
      --concurrency "$CONCURRENCY" --duration 600s --max-requests 100000000 \
      --progress 0 --json >"$dir/write-$((h + 1)).json" 2>>"$dir/loadgen.log" ||
      log "$mode: hour $((h + 1)) write failed (see $dir/loadgen.log)"

    local cycle_wait_s=null
    if [ "$mode" = flush ]; then
      # Wait for a flush cycle that started after the last sample arrived
      # (two completed cycles) and left nothing unflushed.
      local c0 t_wait=$(date +%s%N) ok=0
      c0=$(scrape | metric strata_ingester_flush_cycles_total)
      deadline=$(($(date +%s) + CYCLE_TIMEOUT_S))
      while [ "$(date +%s)" -lt "$deadline" ]; do
        m=$(scrape) || { sleep 0.2; continue; }
        if [ "$(metric strata_ingester_flush_cycles_total <<<"$m")" -ge $((c0 + 2)) ] &&
          [ "$(metric strata_ingester_unflushed_bytes <<<"$m")" -eq 0 ]; then
          ok=1
          break
        fi
        sleep 0.2
      done
      cycle_wait_s=$(awk -v a="$t_wait" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
      [ "$ok" = 1 ] || log "$mode: hour $((h + 1)): no flush cycle emptied the queue within ${CYCLE_TIMEOUT_S}s"
    fi
    sleep "$SETTLE_S"
    m=$(scrape) || m=""
    printf '%s\n' "$m" >"$dir/metrics-hour-$((h + 1)).txt"
    jq -n -c \
      --argjson hour $((h + 1)) \
      --argjson rss "$(rss_kib "$PID")" \
      --argjson series "$(metric strata_ingester_memory_series <<<"$m")" \
      --argjson unflushed "$(metric strata_ingester_unflushed_bytes <<<"$m")" \
      --argjson flushed "$(metric strata_ingester_chunks_flushed_total <<<"$m")" \
      --argjson dropped "$(metric strata_ingester_chunks_dropped_total <<<"$m")" \
      --argjson removed "$(metric strata_ingester_series_removed_total <<<"$m")" \
      --argjson cycles "$(metric strata_ingester_flush_cycles_total <<<"$m")" \
      --argjson appended "$(metric strata_ingester_samples_appended_total <<<"$m")" \
      --argjson objects "$(metric strata_store_objects_written_total <<<"$m")" \
      --argjson object_bytes "$(metric strata_store_object_bytes_written_total <<<"$m")" \
      --argjson wu "$(metric strata_store_index_write_units_total <<<"$m")" \
      --argjson index_bytes "$(metric strata_store_index_bytes_written_total <<<"$m")" \
      --argjson cycle_wait "$cycle_wait_s" \
      --slurpfile w "$dir/write-$((h + 1)).json" \
      '{hour: $hour, rss_kib: $rss, memory_series: $series, unflushed_bytes: $unflushed,
        chunks_flushed: $flushed, chunks_dropped: $dropped, series_removed: $removed,
        flush_cycles: $cycles, samples_appended: $appended, objects_written: $objects,
        object_bytes_written: $object_bytes, index_write_units: $wu,
        index_bytes_written: $index_bytes, flush_wait_s: $cycle_wait,
        write_samples_per_s: ($w[0].accepted_samples_per_s // null),
        write_errors: ($w[0].errors // null)}' >>"$dir/hours.jsonl" ||
      log "$mode: hour $((h + 1)): could not record (see $dir/write-$((h + 1)).json)"
    log "$mode: hour $((h + 1)): $(tail -n 1 "$dir/hours.jsonl" | jq -c '{rss_mib: (.rss_kib / 1024 | floor), memory_series, unflushed_bytes, chunks_dropped, write_samples_per_s: (.write_samples_per_s // 0 | floor)}')"
    last_hour_s=$(($(date +%s) - started))
  done
  du -sk "$data" | awk '{print $1}' >"$dir/data-dir-kib.txt" || true
  stop_strata
}

for mode in $MODES; do run_mode "$mode"; done

# ---------------------------------------------------------------- table
hours_of() { [ -f "$RESULTS/$1/hours.jsonl" ] && jq -s -c '.' "$RESULTS/$1/hours.jsonl" || echo '[]'; }
flush_json=$(hours_of flush)
noflush_json=$(hours_of noflush)
{
  echo "| Simulated hour | RSS, flushing (MiB) | Series in memory | Unflushed chunk bytes (MiB) | Chunks dropped after retain (total) | RSS, flushing off (MiB) | Series in memory |"
  echo "|---|---|---|---|---|---|---|"
  jq -n -r --argjson f "$flush_json" --argjson n "$noflush_json" '
    def mib: if . == null then "—" else (. / 1024 | floor | tostring) end;
    def num: if . == null then "—" else tostring end;
    def by_hour($a): reduce $a[] as $r ({}; . + {($r.hour | tostring): $r});
    (by_hour($f)) as $F | (by_hour($n)) as $N |
    ([$f[].hour, $n[].hour] | unique)[] as $h |
    ($F[$h | tostring]) as $a | ($N[$h | tostring]) as $b |
    "| \($h) | \($a.rss_kib | mib) | \($a.memory_series | num) | \(if $a.unflushed_bytes == null then "—" else ($a.unflushed_bytes / 1048576 * 10 | floor / 10 | tostring) end) | \($a.chunks_dropped | num) | \($b.rss_kib | mib) | \($b.memory_series | num) |"'
  echo
  jq -n -r --argjson f "$flush_json" --argjson n "$noflush_json" --argjson series "$SERIES" '
    def rate($a): [$a[] | .write_samples_per_s // empty] | if length == 0 then "—" else ((add / length / 1000 | floor | tostring) + "k") end;
    def errs($a): [$a[] | .write_errors // {} | to_entries[] | .value] | add // 0;
    # Least-squares slope of RSS (MiB per simulated hour) over the second
    # half of the day.
    def slope($a): ($a | map(select(.hour >= (($a | map(.hour) | max) / 2)))) as $p |
      if ($p | length) < 3 then "—" else
        ($p | length) as $n | ($p | map(.hour) | add / $n) as $mx |
        ($p | map(.rss_kib / 1024) | add / $n) as $my |
        ($p | map((.hour - $mx) * (.rss_kib / 1024 - $my)) | add) as $sxy |
        ($p | map((.hour - $mx) * (.hour - $mx)) | add) as $sxx |
        ($sxy / $sxx * 10 | round / 10 | tostring) end;
    def half($a): if ($a | length) < 2 then "—" else "\(($a | map(.hour) | max) / 2 | ceil)–\($a | map(.hour) | max)" end;
    "RSS growth, least-squares slope over hours \(half($f)): \(slope($f)) MiB per simulated hour with flushing, \(slope($n)) without.",
    "Ingest, mean of the hourly max-rate writes: \(rate($f)) samples/s with flushing, \(rate($n)) without; failed requests: \(errs($f)) and \(errs($n)).",
    (if ($f | length) > 1 then
      ($f[-1]) as $l |
      (($l.samples_appended // 0) / 1e6) as $m |
      if $m > 0 then
        "Long-term storage at the end of the flushing run (\($l.samples_appended) samples, \($series) series): \($l.objects_written) objects (\(($l.objects_written / $m * 100 | floor) / 100) PUTs per million samples), \($l.index_write_units) index write units (\(($l.index_write_units / $m * 10 | floor) / 10) per million), \((($l.object_bytes_written + $l.index_bytes_written) / ($l.samples_appended) * 1000 | floor) / 1000) bytes per sample written (chunk objects \(($l.object_bytes_written / $l.samples_appended * 1000 | floor) / 1000) + index \(($l.index_bytes_written / $l.samples_appended * 1000 | floor) / 1000)); \($l.flush_cycles) flush cycles."
      else empty end
    else empty end)'
  for mode in flush noflush; do
    if [ -f "$RESULTS/$mode/stopped-at-hour.txt" ]; then
      echo "The $mode run stopped after hour $(cat "$RESULTS/$mode/stopped-at-hour.txt") (TIME_BUDGET=${TIME_BUDGET}s)."
    fi
  done
} >"$RESULTS/table.md"

jq -n \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --argjson elapsed "$(($(date +%s) - START_EPOCH))" \
  --argjson cores "$(nproc)" \
  --argjson mem_kib "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)" \
  --arg machine "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -sr)" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --argjson series "$SERIES" --argjson hours "$HOURS" --argjson interval_s "$INTERVAL_S" \
  --argjson concurrency "$CONCURRENCY" --arg flush_flags "$FLUSH_FLAGS" \
  --argjson settle_s "$SETTLE_S" --argjson t0 "$T0" \
  '{date: $date, elapsed_s: $elapsed, cores: $cores, mem_kib: $mem_kib, machine: $machine,
    load_at_end: $load, series: $series, hours: $hours, interval_s: $interval_s,
    concurrency: $concurrency, flush_flags: $flush_flags, settle_s: $settle_s,
    synthetic_start_ms: $t0}' >"$RESULTS/meta.json"

cat "$RESULTS/table.md"
log "done in $(($(date +%s) - START_EPOCH)) s; results in $RESULTS"
