#!/usr/bin/env bash
# A sharded `spoke simulate` run against one partner process, merged, beside a single run of
# the same leads at the same total concurrency: SHARDS shards (default 4) of LEADS prospects
# (default 20000) with CONCURRENCY workers in all (default 16), the shards started at once.
# Prints both summaries and whether the merged audit equals the single run's.
# Release build; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin=target/release/spoke
shards=${SHARDS:-4}
leads=${LEADS:-20000}
concurrency=${CONCURRENCY:-16}
per_shard=$(( concurrency / shards > 0 ? concurrency / shards : 1 ))
export SPOKE_REFERENCE_TOKEN=shards-check-token-0001
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" partner --port "$port" >/dev/null &
partner=$!
trap 'kill $partner 2>/dev/null || true; rm -rf "$dir"' EXIT
sleep 0.5
url="http://127.0.0.1:$port"
run() {
  "$bin" simulate --profile fixtures/profiles/reference.toml --base-url "$url" \
    --leads "$leads" --seed 11 "$@"
}

pids=()
for index in $(seq 0 $((shards - 1))); do
  run --concurrency "$per_shard" --shard "$index/$shards" \
    --report "json:$dir/shard-$index.json" >"$dir/shard-$index.out" 2>&1 &
  pids+=($!)
done
# Exit 4 is "not verified": a partner in its own process is audited by reading back, which
# cannot count duplicates; the comparison below is what this script checks.
for pid in "${pids[@]}"; do wait "$pid" || [ $? -eq 4 ]; done
echo "== $shards shards of $per_shard workers, merged"
"$bin" simulate merge "$dir"/shard-*.json --report "json:$dir/merged.json" || [ $? -eq 4 ]

curl -s -X POST "$url/__spoke/reset" >/dev/null
echo "== one run of $concurrency workers"
run --concurrency "$concurrency" --report "json:$dir/single.json" 2>/dev/null || [ $? -eq 4 ]

python3 - "$dir/merged.json" "$dir/single.json" <<'PY'
import json, sys
merged, single = (json.load(open(path)) for path in sys.argv[1:])
counts = lambda r: {k: r["audit"][k] for k in ("checked", "lost", "duplicated", "wrong")}
same = counts(merged) == counts(single) and merged["delivered"] == single["delivered"]
print(f"merged audit {counts(merged)}, single {counts(single)}: {'equal' if same else 'DIFFERENT'}")
sys.exit(0 if same else 1)
PY
