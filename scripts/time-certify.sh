#!/usr/bin/env bash
# Times whole `spoke certify` processes (release build) against the built-in mock partner, per
# fixture profile: min / median / max wall time over RUNS runs (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
cargo build --release --quiet
bin=target/release/spoke
time_one() {
  local start end
  start=$(date +%s%N)
  "$bin" "$@" >/dev/null
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 ))
}
report() {
  local label=$1; shift
  local samples=()
  for _ in $(seq "$runs"); do samples+=("$(time_one "$@")"); done
  printf '%s\n' "${samples[@]}" | sort -n | awk -v label="$label" -v n="$runs" '
    { v[NR] = $1 }
    END { printf "%-36s min %6.1f ms  median %6.1f ms  max %6.1f ms  (%d runs)\n",
          label, v[1] / 1000, v[int((n + 1) / 2)] / 1000, v[n] / 1000, n }'
}
report "certify (built-in)" certify --seed 1
for profile in fixtures/profiles/*.toml; do
  report "certify --mock $(basename "$profile" .toml)" certify --profile "$profile" --mock --seed 1
done
