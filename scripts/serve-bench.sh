#!/usr/bin/env bash
# Benchmarks `spoke serve` (release build, SQLite, on 127.0.0.1 only):
#   1. runs per minute one instance completes against the built-in mock partner
#      (RUNS runs queued at once, default 60, WORKERS workers, default 8);
#   2. page latency under VIEWERS concurrent viewers (default 50), each loading a finished
#      run's page (the verdict table, coverage grid and evidence) and its partner's history
#      page PAGES times (default 20): p50 / p90 / p99 / max and pages per second.
# BIN=path/to/spoke uses that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-60}
workers=${WORKERS:-8}
viewers=${VIEWERS:-50}
pages=${PAGES:-20}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/spoke
fi
dir=$(mktemp -d)
token=bench-admin-token-0123456789
SPOKE_ADMIN_TOKEN=$token "$BIN" serve --db "$dir/bench.db" --port 0 --workers "$workers" >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  url=$(sed -n 's/^spoke serve listening on //p' "$dir/serve.log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$dir/serve.log"; exit 1; }
api() { curl -sf -H "Authorization: Bearer $token" "$@"; }
now_ms() { date +%s%3N; }

start=$(now_ms)
for seed in $(seq "$runs"); do
  api -X POST -H 'content-type: application/json' \
    -d "{\"partner\":\"reference\",\"seed\":$seed}" "$url/api/v1/runs" >/dev/null
done
while :; do
  ended=$(api "$url/api/v1/runs?limit=200" | grep -o '"state":"\(finished\|failed\|interrupted\)"' | wc -l)
  [ "$ended" -ge "$runs" ] && break
  sleep 0.1
done
end=$(now_ms)
finished=$(api "$url/api/v1/runs?limit=200" | grep -o '"state":"finished"' | wc -l)
awk -v n="$runs" -v f="$finished" -v ms=$((end - start)) -v w="$workers" 'BEGIN {
  printf "runs: %d queued, %d finished in %.1f s with %d workers: %.0f runs per minute\n", n, f, ms / 1000, w, f / (ms / 60000) }'

run_id=$(api "$url/api/v1/runs?limit=1" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
viewer() {
  for _ in $(seq "$pages"); do
    for path in "/runs/$run_id" "/partners/reference"; do
      curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$url$path"
    done
  done
}
start=$(now_ms)
for i in $(seq "$viewers"); do viewer >"$dir/times.$i" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
end=$(now_ms)
cat "$dir"/times.* | sort -n | awk -v v="$viewers" -v ms=$((end - start)) '
  { t[NR] = $1 * 1000 }
  END { printf "pages: %d viewers, %d pages in %.1f s (%.0f pages/s): p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
        v, NR, ms / 1000, NR / (ms / 1000), t[int(NR * 0.5)], t[int(NR * 0.9)], t[int(NR * 0.99)], t[NR] }'
