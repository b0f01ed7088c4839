#!/usr/bin/env bash
# Side-by-side benchmark: Strata (one process and distributed), Prometheus
# 2.42 and VictoriaMetrics, driven by the same strata-loadgen with the same
# data. Writes JSON results under $RESULTS and the markdown section between
# the bench-compare markers of $DOC. Run through `make bench-compare`.
#
# Everything listens on 127.0.0.1. Every phase is bounded in time, and the
# whole run stays under TIME_BUDGET seconds: a system that would not fit is
# skipped and marked so in the report.
#
# Knobs (environment):
#   SERIES               active series counts, space-separated   (100000 1000000)
#   SYSTEMS              subset/order of: prometheus victoriametrics strata strata-distributed
#   WARMUP_ROUNDS        samples per series written before P2/P4  (240 = 1 h of 15 s data)
#   WARMUP_MAX_SAMPLES   cap on warm-up samples per system; fewer rounds for big SERIES (12000000)
#   WARMUP_MAX           time cap of the warm-up                  (180s)
#   WARMUP_CONCURRENCY   requests in flight during warm-up        (8)
#   INGEST_DURATION      P1 max-rate phase                        (20s)
#   INGEST_CONCURRENCY   P1 requests in flight (shards); a list ("4 16") runs one
#                        P1 step per value, each INGEST_DURATION long, best one counts (8)
#   QUERY_DURATION       P4 query mix, at least                   (15s)
#   MIN_PER_KIND         P4 goes on after QUERY_DURATION until every kind ran
#                        this many times (kinds are taken in turn)  (5)
#   QUERY_MAX_DURATION   ... or until this passes, whichever first (120s)
#   QUERY_CONCURRENCY    P4 and P5 queries in flight              (2)
#   P5_RATE              P5 push rate, samples/s, the same for every system (100000)
#   P5_DURATION          P5: each half (pushes alone, then with heavy queries),
#                        rounded up to whole rounds of all series   (15s)
#   P5_CONCURRENCY       P5 push shards (requests in flight)        (4)
#   P5_KINDS             P5 queries    (http_p99_1h,cpu_by_mode_1h,error_ratio_1h,pod_phases)
#   RUNS                 repetitions of every system from scratch; >1 reports
#                        medians with min–max ranges              (1)
#   BATCH_SIZE           series per remote write request          (2000)
#   GENERATOR_DURATION   generator-alone measurement per series count (10s)
#   TIME_BUDGET          seconds for the whole run, build included (1550)
#   FLUSH_TIMEOUT        bound on Strata's POST /ingester/flush and Prometheus's
#                        snapshot after P1, seconds                (300)
#   RESULTS              results directory      (.tmp/bench-compare/<UTC timestamp>)
#   DOC                  markdown file to update (docs/benchmarks.md; empty: print only)
#   BASE_PORT            first of ~50 consecutive ports used      (19100)
#   SKIP_INSTALL=1 / SKIP_BUILD=1   use what is already there
#   STRATA_EXTRA_FLAGS   extra flags for every Strata process ("--ingester.wal.enabled=false")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

# The knobs set for this run, to record the exact command in the report.
SET_KNOBS=""
for k in SERIES SYSTEMS WARMUP_ROUNDS WARMUP_MAX_SAMPLES WARMUP_MAX WARMUP_CONCURRENCY \
  INGEST_DURATION INGEST_CONCURRENCY QUERY_DURATION MIN_PER_KIND QUERY_MAX_DURATION \
  QUERY_CONCURRENCY P5_RATE P5_DURATION P5_CONCURRENCY P5_KINDS RUNS BATCH_SIZE \
  GENERATOR_DURATION TIME_BUDGET FLUSH_TIMEOUT STRATA_EXTRA_FLAGS; do
  if [ -n "${!k+x}" ]; then SET_KNOBS+=" $k=\"${!k}\""; fi
done
if [ -n "${BENCH_VIA_MAKE:-}" ]; then
  RUN_COMMAND="make ${BENCH_VIA_MAKE}$SET_KNOBS"
else
  RUN_COMMAND="${SET_KNOBS# } loadtest/bench/compare.sh"
  RUN_COMMAND=${RUN_COMMAND# }
fi

SERIES=${SERIES:-"100000 1000000"}
SYSTEMS=${SYSTEMS:-"prometheus victoriametrics strata strata-distributed"}
WARMUP_ROUNDS=${WARMUP_ROUNDS:-240}
WARMUP_MAX_SAMPLES=${WARMUP_MAX_SAMPLES:-12000000}
WARMUP_MAX=${WARMUP_MAX:-180s}
WARMUP_CONCURRENCY=${WARMUP_CONCURRENCY:-8}
INGEST_DURATION=${INGEST_DURATION:-20s}
INGEST_CONCURRENCY=${INGEST_CONCURRENCY:-8}
QUERY_DURATION=${QUERY_DURATION:-15s}
MIN_PER_KIND=${MIN_PER_KIND:-5}
QUERY_MAX_DURATION=${QUERY_MAX_DURATION:-120s}
QUERY_CONCURRENCY=${QUERY_CONCURRENCY:-2}
P5_RATE=${P5_RATE:-100000}
P5_DURATION=${P5_DURATION:-15s}
P5_CONCURRENCY=${P5_CONCURRENCY:-4}
P5_KINDS=${P5_KINDS:-http_p99_1h,cpu_by_mode_1h,error_ratio_1h,pod_phases}
RUNS=${RUNS:-1}
BATCH_SIZE=${BATCH_SIZE:-2000}
GENERATOR_DURATION=${GENERATOR_DURATION:-10s}
TIME_BUDGET=${TIME_BUDGET:-1550}
FLUSH_TIMEOUT=${FLUSH_TIMEOUT:-300}
RESULTS=${RESULTS:-.tmp/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}
DOC=${DOC-docs/benchmarks.md}
BASE_PORT=${BASE_PORT:-19100}
SKIP_INSTALL=${SKIP_INSTALL:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
NPM_PREFIX=$ROOT/.tmp/npm
DYNALITE=$NPM_PREFIX/node_modules/.bin/dynalite
LOADGEN=$ROOT/target/release/strata-loadgen
BIN=$ROOT/target/release

START_EPOCH=$(date +%s)
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive

log() { printf '[bench %4ds] %s\n' "$(($(date +%s) - START_EPOCH))" "$*" >&2; }
die() { log "error: $*"; exit 1; }
secs() { # duration (90s, 2m, 1h) -> seconds
  local d=$1
  case $d in
    *ms) echo 1 ;; *s) echo "${d%s}" ;; *m) echo $((${d%m} * 60)) ;; *h) echo $((${d%h} * 3600)) ;; *) echo "$d" ;;
  esac
}

# ---------------------------------------------------------------- processes
# PIDs this script started, and per system the PIDs whose memory counts.
STARTED_PIDS=()
SYSTEM_PIDS=()
SYSTEM_NAMES=()
EXTRA_PIDS=() # part of the setup, not of the system measured (dynalite)

start_proc() { # name logfile cmd... ; sets LAST_PID
  local name=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 </dev/null &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
  log "started $name (pid $LAST_PID): $*"
}

stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$(($(date +%s) + 15))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
}

cleanup() {
  if [ ${#STARTED_PIDS[@]} -gt 0 ]; then stop_pids "${STARTED_PIDS[@]}"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # url timeout_s [grep pattern]
  local url=$1 timeout=$2 pattern=${3:-}
  local deadline=$(($(date +%s) + timeout))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local body
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then
      if [ -z "$pattern" ] || printf '%s' "$body" | grep -Eq "$pattern"; then return 0; fi
    fi
    sleep 0.5
  done
  return 1
}

rss_kib() { # pid -> VmRSS in KiB (0 if gone)
  awk '/^VmRSS:/ {print $2; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0
}

# Median of three readings one second apart of the summed RSS of SYSTEM_PIDS,
# written as JSON with the per-process split.
measure_memory() { # out.json series
  local out=$1 series=$2 readings=() i pid total
  for i in 1 2 3; do
    total=0
    for pid in "${SYSTEM_PIDS[@]}"; do total=$((total + $(rss_kib "$pid"))); done
    readings+=("$total")
    if [ "$i" -lt 3 ]; then sleep 1; fi
  done
  local median
  median=$(printf '%s\n' "${readings[@]}" | sort -n | sed -n 2p)
  local procs="{}" n=0
  for pid in "${SYSTEM_PIDS[@]}"; do
    procs=$(jq -c --arg k "${SYSTEM_NAMES[$n]}" --argjson v "$(rss_kib "$pid")" '. + {($k): $v}' <<<"$procs")
    n=$((n + 1))
  done
  local extra="{}"
  for pid in "${EXTRA_PIDS[@]}"; do
    extra=$(jq -c --arg k "dynalite" --argjson v "$(rss_kib "$pid")" '. + {($k): $v}' <<<"$extra")
  done
  jq -n --argjson rss "$median" --argjson series "$series" --argjson procs "$procs" \
    --argjson extra "$extra" --argjson readings "[$(IFS=,; echo "${readings[*]}")]" \
    '{rss_kib: $rss, active_series: $series, bytes_per_series: ($rss * 1024 / $series),
      processes_kib: $procs, not_counted_kib: $extra, readings_kib: $readings}' >"$out"
  log "memory: $(jq -c '{rss_kib, bytes_per_series}' "$out")"
}

# ---------------------------------------------------------------- storage
scrape_metrics() { curl -fsS --max-time 20 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; }
# Sum of a metric's samples (all label sets) in a scrape read from stdin.
metric_sum() {
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF; n++ } END { if (n) printf "%.0f\n", s; else print 0 }'
}
du_bytes() { # allocated bytes on disk of the given paths (0 when missing)
  local total=0 p b
  for p in "$@"; do
    [ -e "$p" ] || continue
    b=$(du -s -B1 "$p" 2>/dev/null | awk '{print $1}')
    total=$((total + ${b:-0}))
  done
  echo "$total"
}

# What the system keeps at rest for the samples written so far (warm-up, P5
# and P1), measured after P1 and before the read-back check; writes storage.json.
# Strata: POST /ingester/flush on every ingester (closes and writes every
# chunk, open ones too), then its long-term store counters and the size of
# <data_dir>/chunks and <data_dir>/index. Prometheus: its data directory
# (WAL and head chunks: nothing is compacted into a block this soon), then a
# snapshot (POST /api/v1/admin/tsdb/snapshot writes the head as a block:
# compressed chunks and index). VictoriaMetrics: its data directory after
# /internal/force_flush (data/ and indexdb/ hold everything then).
measure_storage() { # system workdir outdir
  local sys=$1 work=$2 out=$3 samples=0 f
  for f in "$out/warmup.json" "$out/p5.json" "$out"/ingest-c*.json; do
    [ -f "$f" ] || continue
    samples=$((samples + $(jq '.samples_accepted // 0' "$f" 2>/dev/null || echo 0)))
  done
  case $sys in
    strata) measure_strata_storage "$samples" "$out" "strata:$P_STRATA_HTTP:$work/strata" ;;
    strata-distributed)
      measure_strata_storage "$samples" "$out" \
        "ingester-0:$P_ING_HTTP:$work/ingester-0" \
        "ingester-1:$((P_ING_HTTP + 1)):$work/ingester-1" \
        "ingester-2:$((P_ING_HTTP + 2)):$work/ingester-2"
      ;;
    prometheus) measure_prometheus_storage "$samples" "$work/prometheus" "$out" ;;
    victoriametrics) measure_vm_storage "$samples" "$work/victoriametrics" "$out" ;;
  esac
  log "storage: $(jq -c 'del(.ingesters)' "$out/storage.json" 2>/dev/null)"
}

flush_one_ingester() { # name port datadir outdir
  local name=$1 port=$2 dir=$3 out=$4 code started ended
  scrape_metrics "$port" >"$out/metrics-before-flush-$name.txt"
  started=$(date +%s%N)
  code=$(curl -sS -X POST --max-time "$FLUSH_TIMEOUT" -o "$out/flush-$name.json" -w '%{http_code}' \
    "http://127.0.0.1:$port/ingester/flush" 2>>"$out/flush-$name.err") || code=0
  ended=$(date +%s%N)
  scrape_metrics "$port" >"$out/metrics-after-flush-$name.txt"
  local before after
  before=$(cat "$out/metrics-before-flush-$name.txt")
  after=$(cat "$out/metrics-after-flush-$name.txt")
  jq -n -c --arg name "$name" --argjson status "${code:-0}" \
    --argjson seconds "$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')" \
    --argjson objects "$(metric_sum strata_store_objects_written_total <<<"$after")" \
    --argjson object_bytes "$(metric_sum strata_store_object_bytes_written_total <<<"$after")" \
    --argjson wu "$(metric_sum strata_store_index_write_units_total <<<"$after")" \
    --argjson index_bytes "$(metric_sum strata_store_index_bytes_written_total <<<"$after")" \
    --argjson index_items "$(metric_sum strata_store_index_items_written_total <<<"$after")" \
    --argjson chunks "$(metric_sum strata_ingester_chunks_flushed_total <<<"$after")" \
    --argjson chunk_bytes "$(metric_sum strata_ingester_chunk_bytes_flushed_total <<<"$after")" \
    --argjson chunks_before "$(metric_sum strata_ingester_chunks_flushed_total <<<"$before")" \
    --argjson objects_before "$(metric_sum strata_store_objects_written_total <<<"$before")" \
    --argjson cycles_before "$(metric_sum strata_ingester_flush_cycles_total <<<"$before")" \
    --argjson unflushed_after "$(metric_sum strata_ingester_unflushed_bytes <<<"$after")" \
    --argjson du_chunks "$(du_bytes "$dir/chunks")" \
    --argjson du_index "$(du_bytes "$dir/index")" \
    --argjson du_data_dir "$(du_bytes "$dir")" \
    '{name: $name, flush_status: $status, flush_seconds: $seconds, objects_written: $objects,
      object_bytes_written: $object_bytes, index_write_units: $wu,
      index_bytes_written: $index_bytes, index_items_written: $index_items,
      chunks_flushed: $chunks, chunk_bytes_flushed: $chunk_bytes, chunks_flushed_before: $chunks_before,
      objects_written_before: $objects_before, flush_cycles_before: $cycles_before,
      unflushed_bytes_after: $unflushed_after, du_chunks_bytes: $du_chunks,
      du_index_bytes: $du_index, du_data_dir_bytes: $du_data_dir}' >"$out/storage-$name.json"
}

measure_strata_storage() { # samples outdir name:port:datadir...
  local samples=$1 out=$2 spec name port dir f pids=() files=()
  shift 2
  for spec in "$@"; do
    name=${spec%%:*}
    port=${spec#*:}
    port=${port%%:*}
    dir=${spec#*:*:}
    flush_one_ingester "$name" "$port" "$dir" "$out" &
    pids+=("$!")
    files+=("$out/storage-$name.json")
  done
  wait "${pids[@]}" || true
  local present=()
  for f in "${files[@]}"; do [ -s "$f" ] && present+=("$f"); done
  [ ${#present[@]} -gt 0 ] || { log "storage: no ingester answered"; return 1; }
  files=("${present[@]}")
  jq -s --argjson samples "$samples" '
    {kind: "strata", samples: $samples, ingesters: .,
     flush_ok: all(.[]; .flush_status == 200),
     flush_seconds: (map(.flush_seconds) | max),
     objects_written: (map(.objects_written) | add),
     object_bytes_written: (map(.object_bytes_written) | add),
     index_write_units: (map(.index_write_units) | add),
     index_bytes_written: (map(.index_bytes_written) | add),
     index_items_written: (map(.index_items_written) | add),
     chunks_flushed: (map(.chunks_flushed) | add),
     chunk_bytes_flushed: (map(.chunk_bytes_flushed) | add),
     chunks_flushed_before: (map(.chunks_flushed_before) | add),
     flush_cycles_before: (map(.flush_cycles_before) | max),
     du_chunks_bytes: (map(.du_chunks_bytes) | add),
     du_index_bytes: (map(.du_index_bytes) | add),
     du_data_dir_bytes: (map(.du_data_dir_bytes) | add)}' "${files[@]}" >"$out/storage.json"
}

measure_prometheus_storage() { # samples datadir outdir
  local samples=$1 dir=$2 out=$3 wal head blocks total started ended name snap=0
  wal=$(du_bytes "$dir/wal")
  head=$(du_bytes "$dir/chunks_head")
  total=$(du_bytes "$dir")
  blocks=$((total - wal - head))
  started=$(date +%s%N)
  name=$(curl -sS -X POST --max-time "$FLUSH_TIMEOUT" "http://127.0.0.1:$P_PROM/api/v1/admin/tsdb/snapshot" 2>>"$out/snapshot.err" |
    tee "$out/snapshot.json" | jq -r '.data.name // empty' 2>/dev/null) || name=""
  ended=$(date +%s%N)
  if [ -n "$name" ]; then snap=$(du_bytes "$dir/snapshots/$name"); fi
  jq -n --argjson samples "$samples" --argjson total "$total" --argjson wal "$wal" \
    --argjson head "$head" --argjson blocks "$blocks" --argjson snap "$snap" \
    --argjson seconds "$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')" \
    '{kind: "prometheus", samples: $samples, data_dir_bytes: $total, wal_bytes: $wal,
      head_chunks_bytes: $head, other_bytes: $blocks, snapshot_bytes: $snap,
      snapshot_seconds: $seconds}' >"$out/storage.json"
  rm -rf "$dir/snapshots"
}

measure_vm_storage() { # samples datadir outdir
  local samples=$1 dir=$2 out=$3
  curl -fsS --max-time 60 "http://127.0.0.1:$P_VM/internal/force_flush" >/dev/null 2>&1 || true
  sleep 1
  jq -n --argjson samples "$samples" --argjson total "$(du_bytes "$dir")" \
    --argjson data "$(du_bytes "$dir/data")" --argjson idx "$(du_bytes "$dir/indexdb")" \
    '{kind: "victoriametrics", samples: $samples, data_dir_bytes: $total,
      data_bytes: $data, indexdb_bytes: $idx}' >"$out/storage.json"
}

# ---------------------------------------------------------------- systems
# Each start_<system> sets WRITE_URL, QUERY_URL, SYSTEM_PIDS, SYSTEM_NAMES
# and returns non-zero when the system does not come up.
P_STRATA_HTTP=$((BASE_PORT + 0))
P_STRATA_GRPC=$((BASE_PORT + 1))
P_DIST_HTTP=$((BASE_PORT + 10))
P_DIST_GRPC=$((BASE_PORT + 11))
P_ING_HTTP=$((BASE_PORT + 12)) # +0..2
P_ING_GRPC=$((BASE_PORT + 15)) # +0..2
P_QUERIER_HTTP=$((BASE_PORT + 18))
P_QUERIER_GRPC=$((BASE_PORT + 19))
P_DYNALITE=$((BASE_PORT + 20))
P_PROM=$((BASE_PORT + 30))
P_VM=$((BASE_PORT + 40))

STRATA_LIMITS=(
  --distributor.limits.ingestion-rate=0
  --ingester.max-series=0
  --ingester.limits.max-series-per-tenant=0
  --ingester.limits.max-series-per-metric=0
)
# Extra flags for every Strata process, e.g. "--ingester.wal.enabled=false".
if [ -n "${STRATA_EXTRA_FLAGS:-}" ]; then
  read -r -a STRATA_EXTRA <<<"$STRATA_EXTRA_FLAGS"
  STRATA_LIMITS+=("${STRATA_EXTRA[@]}")
fi

start_strata() { # workdir logdir
  local work=$1 logs=$2
  port_free "$P_STRATA_HTTP" && port_free "$P_STRATA_GRPC" || die "ports $P_STRATA_HTTP/$P_STRATA_GRPC in use"
  start_proc strata "$logs/strata.log" "$BIN/strata" \
    --server.http-listen-address=127.0.0.1 --server.grpc-listen-address=127.0.0.1 \
    --server.http-listen-port="$P_STRATA_HTTP" --server.grpc-listen-port="$P_STRATA_GRPC" \
    --data-dir="$work/strata" "${STRATA_LIMITS[@]}"
  SYSTEM_PIDS=("$LAST_PID")
  SYSTEM_NAMES=(strata)
  WRITE_URL=http://127.0.0.1:$P_STRATA_HTTP/api/v1/push
  QUERY_URL=http://127.0.0.1:$P_STRATA_HTTP/prometheus
  wait_http "http://127.0.0.1:$P_STRATA_HTTP/ready" 60
}

start_strata-distributed() {
  local work=$1 logs=$2 i p deadline
  for p in "$P_DIST_HTTP" "$P_DIST_GRPC" "$P_QUERIER_HTTP" "$P_QUERIER_GRPC" "$P_DYNALITE" \
    $((P_ING_HTTP)) $((P_ING_HTTP + 1)) $((P_ING_HTTP + 2)) $((P_ING_GRPC)) $((P_ING_GRPC + 1)) $((P_ING_GRPC + 2)); do
    port_free "$p" || die "port $p in use"
  done
  [ -x "$DYNALITE" ] || die "dynalite missing at $DYNALITE (make test-deps)"
  start_proc dynalite "$logs/dynalite.log" "$DYNALITE" --port "$P_DYNALITE"
  EXTRA_PIDS=("$LAST_PID")
  deadline=$(($(date +%s) + 30))
  until ! port_free "$P_DYNALITE"; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "dynalite did not start"; return 1; }
    sleep 0.3
  done
  local ring=(
    --ring.store=dynamodb "--ring.dynamodb.endpoint=http://127.0.0.1:$P_DYNALITE"
    --ring.dynamodb.table=strata_ring_bench --ring.replication-factor=3
    --ring.poll-interval=1s --lifecycler.heartbeat-period=2s
    --server.http-listen-address=127.0.0.1 --server.grpc-listen-address=127.0.0.1
  )
  SYSTEM_PIDS=()
  SYSTEM_NAMES=()
  for i in 0 1 2; do
    start_proc "ingester-$i" "$logs/ingester-$i.log" "$BIN/strata-ingester" "${ring[@]}" \
      "--lifecycler.id=ingester-$i" \
      --server.http-listen-port=$((P_ING_HTTP + i)) --server.grpc-listen-port=$((P_ING_GRPC + i)) \
      --data-dir="$work/ingester-$i" "${STRATA_LIMITS[@]}"
    SYSTEM_PIDS+=("$LAST_PID")
    SYSTEM_NAMES+=("ingester-$i")
  done
  for i in 0 1 2; do
    wait_http "http://127.0.0.1:$((P_ING_HTTP + i))/ready" 60 || { log "ingester-$i not ready"; return 1; }
  done
  start_proc distributor "$logs/distributor.log" "$BIN/strata-distributor" "${ring[@]}" \
    --server.http-listen-port="$P_DIST_HTTP" --server.grpc-listen-port="$P_DIST_GRPC" \
    --data-dir="$work/distributor" "${STRATA_LIMITS[@]}"
  SYSTEM_PIDS+=("$LAST_PID")
  SYSTEM_NAMES+=(distributor)
  start_proc querier "$logs/querier.log" "$BIN/strata-querier" "${ring[@]}" \
    --server.http-listen-port="$P_QUERIER_HTTP" --server.grpc-listen-port="$P_QUERIER_GRPC" \
    --data-dir="$work/querier"
  SYSTEM_PIDS+=("$LAST_PID")
  SYSTEM_NAMES+=(querier)
  WRITE_URL=http://127.0.0.1:$P_DIST_HTTP/api/v1/push
  QUERY_URL=http://127.0.0.1:$P_QUERIER_HTTP/prometheus
  wait_http "http://127.0.0.1:$P_DIST_HTTP/ready" 60 || { log "distributor not ready"; return 1; }
  # All three ingesters ACTIVE in the distributor's view of the ring.
  deadline=$(($(date +%s) + 60))
  until [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$P_DIST_HTTP/ring" 2>/dev/null | grep -o ACTIVE | wc -l)" -ge 3 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "ring never showed 3 ACTIVE ingesters"; return 1; }
    sleep 0.5
  done
  wait_http "http://127.0.0.1:$P_QUERIER_HTTP/ready" 60 || log "querier not ready (P4 will record its errors)"
}

start_prometheus() {
  local work=$1 logs=$2
  port_free "$P_PROM" || die "port $P_PROM in use"
  printf 'global:\n  scrape_interval: 1m\n' >"$work/prometheus.yml"
  start_proc prometheus "$logs/prometheus.log" prometheus \
    --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
    --web.listen-address="127.0.0.1:$P_PROM" --web.enable-remote-write-receiver --web.enable-admin-api
  SYSTEM_PIDS=("$LAST_PID")
  SYSTEM_NAMES=(prometheus)
  WRITE_URL=http://127.0.0.1:$P_PROM/api/v1/write
  QUERY_URL=http://127.0.0.1:$P_PROM
  wait_http "http://127.0.0.1:$P_PROM/-/ready" 60
}

start_victoriametrics() {
  local work=$1 logs=$2
  port_free "$P_VM" || die "port $P_VM in use"
  start_proc victoria-metrics "$logs/victoriametrics.log" victoria-metrics \
    -httpListenAddr="127.0.0.1:$P_VM" -storageDataPath="$work/victoriametrics" \
    -search.disableCache -search.latencyOffset=0s
  SYSTEM_PIDS=("$LAST_PID")
  SYSTEM_NAMES=(victoria-metrics)
  WRITE_URL=http://127.0.0.1:$P_VM/api/v1/write
  QUERY_URL=http://127.0.0.1:$P_VM
  wait_http "http://127.0.0.1:$P_VM/health" 60
}

stop_system() {
  local all=("${SYSTEM_PIDS[@]}" "${EXTRA_PIDS[@]}")
  if [ ${#all[@]} -gt 0 ]; then stop_pids "${all[@]}"; fi
  SYSTEM_PIDS=()
  EXTRA_PIDS=()
}

# ---------------------------------------------------------------- one system
run_system() { # system series outdir run
  local sys=$1 series=$2 out=$3 run=$4
  local work=$RESULTS/work/$sys-$series-$run
  mkdir -p "$out" "$work"
  log "== $sys, $series series$([ "$RUNS" -gt 1 ] && echo ", run $run of $RUNS")"
  if ! "start_$sys" "$work" "$out"; then
    echo "did not start (see $out/*.log)" >"$out/skipped.txt"
    stop_system
    return 0
  fi
  sleep 2
  measure_memory "$out/memory-idle.json" "$series"
  local rounds=$WARMUP_ROUNDS
  if [ $((rounds * series)) -gt "$WARMUP_MAX_SAMPLES" ]; then
    rounds=$((WARMUP_MAX_SAMPLES / series))
    [ "$rounds" -ge 2 ] || rounds=2
  fi
  local common=(--series "$series" --batch-size "$BATCH_SIZE" --max-rate --start-time "$T0"
    --progress 10s --json --max-requests 100000000)

  log "warm-up: $rounds rounds"
  "$LOADGEN" write --url "$WRITE_URL" "${common[@]}" --rounds "$rounds" \
    --duration "$WARMUP_MAX" --concurrency "$WARMUP_CONCURRENCY" >"$out/warmup.json" 2>>"$out/loadgen.log" ||
    log "warm-up failed (see $out/loadgen.log)"
  log "warm-up: $(jq -c '{accepted_samples_per_s, errors, stopped_by, next_round}' "$out/warmup.json" 2>/dev/null)"
  sleep 5
  measure_memory "$out/memory.json" "$series"

  local end_ms next_round
  end_ms=$(jq '.last_timestamp_ms' "$out/warmup.json" 2>/dev/null || echo 0)
  next_round=$(jq '.next_round' "$out/warmup.json" 2>/dev/null || echo "$rounds")
  log "P4 query mix for $QUERY_DURATION, then until every kind ran $MIN_PER_KIND times (at most $QUERY_MAX_DURATION)"
  # Evaluation times spread over the last 5 minutes of data, or over the
  # newest quarter of it when the warm-up wrote less (1M series: 12 rounds),
  # so queries never land before the data starts.
  local jitter_s=$((next_round * 15 / 4))
  [ "$jitter_s" -le 300 ] || jitter_s=300
  [ "$jitter_s" -ge 1 ] || jitter_s=1
  "$LOADGEN" query --url "$QUERY_URL" --series "$series" --time "$end_ms" --time-jitter "${jitter_s}s" \
    --duration "$QUERY_DURATION" --min-per-kind "$MIN_PER_KIND" --max-duration "$QUERY_MAX_DURATION" \
    --concurrency "$QUERY_CONCURRENCY" --timeout 60s --json \
    >"$out/query.json" 2>>"$out/loadgen.log" || log "query mix failed (see $out/loadgen.log)"
  log "P4: $(jq -c '{ok, queries, p50: .latency.p50_ms, p99: .latency.p99_ms, errors, fewest_per_kind, elapsed_s: (.elapsed_s | floor), stopped_by}' "$out/query.json" 2>/dev/null)"

  # P5: the same fixed-rate pushes alone, then while the heavy queries run
  # (same tenant), continuing the synthetic clock.
  log "P5 pushes at $P5_RATE samples/s for $P5_DURATION alone, then as long with $P5_KINDS"
  "$LOADGEN" mixed --write-url "$WRITE_URL" --query-url "$QUERY_URL" --series "$series" \
    --batch-size "$BATCH_SIZE" --start-time "$T0" --start-round "$next_round" --rate "$P5_RATE" \
    --duration "$P5_DURATION" --push-concurrency "$P5_CONCURRENCY" \
    --query-concurrency "$QUERY_CONCURRENCY" --kinds "$P5_KINDS" --time-jitter "${jitter_s}s" \
    --query-timeout 60s --json >"$out/p5.json" 2>>"$out/loadgen.log" || log "P5 failed (see $out/loadgen.log)"
  if jq -e '.next_round' "$out/p5.json" >/dev/null 2>&1; then
    log "P5: $(jq -c '{alone_p99: .without_queries.latency.p99_ms, with_p99: .with_queries.latency.p99_ms,
      p99_ratio, queries: .queries.queries, ok: .queries.ok, lag_p99: .with_queries.schedule_lag.p99_ms,
      errors: (.without_queries.errors + .with_queries.errors)}' "$out/p5.json")"
    next_round=$(jq '.next_round' "$out/p5.json")
  else
    # Part of it may have been written: carry on well past it.
    rm -f "$out/p5.json"
    next_round=$((next_round + 100 + 2 * $(p5_rounds "$series")))
  fi

  local c best=-1 rate
  for c in $INGEST_CONCURRENCY; do
    log "P1 max-rate ingest for $INGEST_DURATION, concurrency $c"
    "$LOADGEN" write --url "$WRITE_URL" "${common[@]}" --start-round "$next_round" \
      --duration "$INGEST_DURATION" --concurrency "$c" >"$out/ingest-c$c.json" 2>>"$out/loadgen.log" ||
      log "P1 failed (see $out/loadgen.log)"
    log "P1: $(jq -c '{accepted_samples_per_s, errors, stopped_by, p99: .latency.p99_ms}' "$out/ingest-c$c.json" 2>/dev/null)"
    next_round=$(jq '.next_round' "$out/ingest-c$c.json" 2>/dev/null || echo "$next_round")
    rate=$(jq '.accepted_samples_per_s | floor' "$out/ingest-c$c.json" 2>/dev/null || echo -1)
    if [ "$rate" -gt "$best" ]; then
      best=$rate
      cp "$out/ingest-c$c.json" "$out/ingest.json"
    fi
  done
  measure_memory "$out/memory-after-ingest.json" "$series"
  measure_storage "$sys" "$work" "$out" || log "storage measurement failed (see $out)"

  log "read-back check"
  if ! "$LOADGEN" verify --write-url "$WRITE_URL" --query-url "$QUERY_URL" --settle 20s --json \
    >"$out/verify.json" 2>>"$out/loadgen.log"; then
    if ! jq -e . "$out/verify.json" >/dev/null 2>&1; then
      jq -n --arg e "$(tail -n 1 "$out/loadgen.log")" '{ok: false, error: $e}' >"$out/verify.json"
    fi
  fi
  log "verify: $(jq -c '{ok, mismatches, rounding_only, error}' "$out/verify.json" 2>/dev/null)"
  stop_system
  du -sk "$work" 2>/dev/null | awk '{print $1}' >"$out/data-dir-kib.txt" || true
  if [ "$sys" = victoriametrics ] && [ -f "$out/storage.json" ]; then
    # After a clean stop everything VictoriaMetrics holds is on disk; it
    # also writes its caches (cache/, rebuilt on demand) on the way out.
    jq --argjson b "$(du_bytes "$work/victoriametrics")" --argjson c "$(du_bytes "$work/victoriametrics/cache")" \
      '. + {data_dir_bytes_after_stop: $b, cache_bytes_after_stop: $c}' \
      "$out/storage.json" >"$out/storage.json.tmp" && mv "$out/storage.json.tmp" "$out/storage.json"
  fi
  rm -rf "$work"
}

# Whole rounds of all series in one P5 half (as strata-loadgen mixed does).
p5_rounds() { # series
  awk -v d="$(secs "$P5_DURATION")" -v r="$P5_RATE" -v n="$1" \
    'BEGIN { x = d * r / n; k = int(x); if (k < x) k++; if (k < 1) k = 1; print k }'
}
# Expected seconds of P5 at a series count: two halves of whole rounds, the
# pause and lead between them, building the series twice.
p5_seconds() { # series
  awk -v k="$(p5_rounds "$1")" -v r="$P5_RATE" -v n="$1" \
    'BEGIN { printf "%d\n", 2 * k * n / r + 5 + 2 * n / 250000 + 0.999 }'
}

# ---------------------------------------------------------------- main
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
log "results in $RESULTS"

if [ "$SKIP_INSTALL" != 1 ]; then
  missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The package's binary name (dpkg -L victoria-metrics lists /usr/bin/victoria-metrics).
  command -v victoria-metrics >/dev/null || die "victoria-metrics binary not found after install"
fi
command -v jq >/dev/null || die "jq is required"

if [ "$SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  cargo build --release -p strata -p svc-distributor -p svc-ingester -p svc-querier -p strata-loadtest
fi
for b in strata strata-distributor strata-ingester strata-querier strata-loadgen; do
  [ -x "$BIN/$b" ] || die "missing $BIN/$b (cargo build --release)"
done

# Synthetic clock shared by every system so they all get identical data.
T0=$(($(date +%s) * 1000 - 24 * 3600 * 1000))
T0=$((T0 - T0 % 60000))

[ "$RUNS" -ge 1 ] 2>/dev/null || die "RUNS must be a positive integer"
steps=$(wc -w <<<"$INGEST_CONCURRENCY")
declare -A LAST_RUN_SECONDS=() LAST_RUN_SERIES=()
for series in $SERIES; do
  # Worst case of one system at this series count: the phases' caps (P4
  # plus a slow query still in flight at its cap), plus about a minute for
  # the storage measurement (Strata's flush of 1M series) and a minute for
  # start, verify and stop.
  per_system_worst=$(($(secs "$WARMUP_MAX") + $(secs "$QUERY_MAX_DURATION") + 30 + $(p5_seconds "$series") +
    steps * $(secs "$INGEST_DURATION") + 120))
  log "generator alone: $series series, null receiver, $GENERATOR_DURATION"
  "$LOADGEN" write --null-sink --series "$series" --batch-size "$BATCH_SIZE" --max-rate \
    --start-time "$T0" --concurrency "${INGEST_CONCURRENCY%% *}" --duration "$GENERATOR_DURATION" \
    --progress 0 --json >"$RESULTS/generator-$series.json" 2>>"$RESULTS/loadgen.log" || true
  log "generator: $(jq -c '{accepted_samples_per_s, generator_cpu_s_per_million_samples}' "$RESULTS/generator-$series.json" 2>/dev/null)"
  for run in $(seq 1 "$RUNS"); do
    for sys in $SYSTEMS; do
      out=$RESULTS/$series/$sys
      if [ "$RUNS" -gt 1 ]; then out=$out/run-$run; fi
      mkdir -p "$out"
      elapsed=$(($(date +%s) - START_EPOCH))
      # Expected time: what this system took last time, a quarter more
      # for a repeat at the same series count and twice that at a bigger
      # one (the warm-up, P4 and the flush grow), at most the worst case.
      expect=$per_system_worst
      prev=${LAST_RUN_SECONDS[$sys]:-}
      if [ -n "$prev" ]; then
        if [ "${LAST_RUN_SERIES[$sys]}" = "$series" ]; then prev=$((prev * 5 / 4)); else prev=$((prev * 2)); fi
        if [ "$prev" -lt "$expect" ]; then expect=$prev; fi
      fi
      if [ $((elapsed + expect)) -gt "$TIME_BUDGET" ]; then
        log "skipping $sys at $series series (run $run): ${elapsed}s elapsed, about ${expect}s more would pass TIME_BUDGET=${TIME_BUDGET}s"
        echo "time budget" >"$out/skipped.txt"
        continue
      fi
      run_started=$(date +%s)
      run_system "$sys" "$series" "$out" "$run"
      LAST_RUN_SECONDS[$sys]=$(($(date +%s) - run_started))
      LAST_RUN_SERIES[$sys]=$series
    done
  done
done

FINISHED_EPOCH=$(date +%s)
# Strata's WAL is on unless STRATA_EXTRA_FLAGS turns it off.
strata_wal=on
case " ${STRATA_EXTRA_FLAGS:-} " in *" --ingester.wal.enabled=false "*) strata_wal=off ;; esac
load_note="Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
if [ -n "${BENCH_NOTE:-}" ]; then load_note="$load_note $BENCH_NOTE"; fi
series_json=$(printf '%s\n' $SERIES | jq -s -c 'map(tonumber)')
jq -n \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --arg command "$RUN_COMMAND" \
  --argjson elapsed "$((FINISHED_EPOCH - START_EPOCH))" \
  --argjson cores "$(nproc)" \
  --argjson mem "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)" \
  --arg machine "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -sr)" \
  --arg prom "$(prometheus --version 2>&1 | head -n 1 | sed 's/ (.*//')" \
  --arg vm "victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo '?')" \
  --arg load_note "$load_note" \
  --argjson series "$series_json" \
  --argjson batch "$BATCH_SIZE" \
  --arg warmup_rounds "$WARMUP_ROUNDS (fewer if that exceeds $WARMUP_MAX_SAMPLES samples; at most $WARMUP_MAX)" \
  --argjson warmup_conc "$WARMUP_CONCURRENCY" \
  --arg query_duration "$QUERY_DURATION" --argjson query_conc "$QUERY_CONCURRENCY" \
  --argjson min_per_kind "$MIN_PER_KIND" --arg query_max_duration "$QUERY_MAX_DURATION" \
  --argjson p5_rate "$P5_RATE" --arg p5_duration "$P5_DURATION" --argjson p5_conc "$P5_CONCURRENCY" \
  --arg p5_kinds "$P5_KINDS" --argjson runs "$RUNS" --arg strata_wal "$strata_wal" \
  --arg ingest_duration "$INGEST_DURATION" --arg ingest_conc "$INGEST_CONCURRENCY" \
  --arg flags "Strata: ingestion rate and series limits off (${STRATA_LIMITS[*]}); long-term storage and flushing with their defaults (chunk objects in <data-dir>/chunks, the embedded index in <data-dir>/index, flush loop every 1m); distributed mode rings through dynalite (its memory is not counted) and each ingester writes to its own local store under its own --data-dir. Prometheus: --web.enable-remote-write-receiver and --web.enable-admin-api (for the snapshot), defaults otherwise. VictoriaMetrics: -search.disableCache (no result cache, so repeated dashboard queries are evaluated like everywhere else) and -search.latencyOffset=0s, defaults otherwise." \
  --arg notes "${BENCH_NOTES:-}" \
  '{date: $date, command: $command, elapsed_s: $elapsed, cores: $cores, mem_kib: $mem,
    machine: $machine, prometheus_version: $prom, victoriametrics_version: $vm,
    load_note: $load_note, series: $series, batch_size: $batch, warmup_rounds: $warmup_rounds,
    warmup_concurrency: $warmup_conc, query_duration: $query_duration,
    query_concurrency: $query_conc, min_per_kind: $min_per_kind,
    query_max_duration: $query_max_duration, p5_rate: $p5_rate, p5_duration: $p5_duration,
    p5_concurrency: $p5_conc, p5_kinds: $p5_kinds, runs: $runs, strata_wal: $strata_wal,
    ingest_duration: $ingest_duration,
    ingest_concurrency: $ingest_conc, flags_note: $flags, notes: $notes}' >"$RESULTS/meta.json"

RESULTS_REL=${RESULTS#"$ROOT"/}
echo "$RESULTS_REL" >"$RESULTS/path.txt"
if [ -n "$DOC" ]; then
  "$LOADGEN" report --results "$RESULTS" --doc "$DOC"
else
  "$LOADGEN" report --results "$RESULTS"
fi
log "done in $((FINISHED_EPOCH - START_EPOCH)) s; results in $RESULTS"
