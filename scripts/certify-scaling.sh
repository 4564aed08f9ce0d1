#!/usr/bin/env bash
# How `spoke certify` scales with the partner's staff list: wall time and peak memory (max RSS
# of the certify process) against the mock partner serving 1,000, 10,000 and 100,000 staff
# (`STAFF="..."` to change) and 100 lead sources, the partner in its own process
# (`spoke partner --synthetic`). The profile is the reference one with 100 staff a page, so
# 100,000 staff are 1,000 pages, within the 2,000-page cap. Each size is run RUNS times
# (default 3) with personal data masked (the default) and with --show-personal-data; the
# table gives the median wall time, the largest max RSS and the run's exit code and totals.
# Release build; BIN=path measures another spoke binary; a run past TIMEOUT seconds (default
# 600) is stopped and shown as such.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
sizes=${STAFF:-"1000 10000 100000"}
timeout_s=${TIMEOUT:-600}
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release --quiet
  bin=target/release/spoke
fi
work=$(mktemp -d)
partner=
cleanup() {
  if [ -n "$partner" ]; then kill "$partner" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

profile=$work/scale.toml
sed 's/page-size = 25, first-page = 1, stop = "total"/page-size = 100, first-page = 1, stop = "total"/' \
  fixtures/profiles/reference.toml >"$profile"
grep -q 'page-size = 100, first-page = 1, stop = "total"' "$profile" || {
  echo "could not set the staff page size in $profile" >&2
  exit 1
}
export SPOKE_REFERENCE_TOKEN=scaling-check-token-0001
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "spoke certify scaling: $("$bin" --version), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-6s %-8s %10s %10s %10s %9s  %-5s %s\n' \
  staff pages personal median_s min_s max_s rss_MiB exit totals
for staff in $sizes; do
  "$bin" partner --profile "$profile" --synthetic "$staff,100" --port "$port" >/dev/null &
  partner=$!
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  for mode in masked shown; do
    flags=()
    if [ "$mode" = shown ]; then flags=(--show-personal-data); fi
    walls=()
    rss=0
    code=0
    totals=
    for run in $(seq "$runs"); do
      set +e
      /usr/bin/time -f '%e %M' -o "$work/time" timeout "$timeout_s" \
        "$bin" certify --profile "$profile" --base-url "http://127.0.0.1:$port" \
        --seed "$run" "${flags[@]}" >"$work/out" 2>/dev/null
      code=$?
      set -e
      # The last line: a failing command's status comes first.
      read -r wall kib < <(tail -n 1 "$work/time")
      walls+=("$wall")
      if [ "$kib" -gt "$rss" ]; then rss=$kib; fi
      totals=$(grep '^totals:' "$work/out" | sed 's/^totals: //; s/, 0 inconclusive//' || true)
      if [ "$code" = 124 ]; then totals="stopped after ${timeout_s} s"; break; fi
    done
    printf '%s\n' "${walls[@]}" | sort -n | awk -v staff="$staff" -v pages=$((staff / 100)) \
      -v mode="$mode" -v rss="$rss" -v code="$code" -v totals="$totals" '
      { v[NR] = $1 }
      END { printf "%-8s %-6s %-8s %10.2f %10.2f %10.2f %9d  %-5s %s\n",
            staff, pages, mode, v[int((NR + 1) / 2)], v[1], v[NR], rss / 1024, code, totals }'
  done
  kill "$partner" 2>/dev/null || true
  wait "$partner" 2>/dev/null || true
  partner=
done
