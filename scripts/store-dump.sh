#!/usr/bin/env bash
# The mock partner's store dump after SAVES saves (default 1,000,000), release build, everything
# on 127.0.0.1: `spoke simulate` delivers the leads to `spoke partner` in its own process; then
# the whole dump (GET /__spoke/store), one page of 1,000 prospects and a walk through every page
# (10,000 a page) are timed (`BIN` names another build to measure). The server's memory comes
# from /proc/PID/status: resident (VmRSS) before and after the saves, which gives the memory per
# stored record; the peak while dumping (VmHWM, reset through /proc/PID/clear_refs just before
# the dump); resident after the dump.
set -euo pipefail
cd "$(dirname "$0")/.."
saves=${SAVES:-1000000}
if [[ -z ${BIN:-} ]]; then cargo build --release --quiet --bin spoke; fi
bin=${BIN:-target/release/spoke}
export SPOKE_REFERENCE_TOKEN=store-dump-token-0000001
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
work=$(mktemp -d)
"$bin" partner --port "$port" >/dev/null &
partner=$!
trap 'kill $partner 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "$base/__spoke/health" >/dev/null && break; sleep 0.1; done
status() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$partner/status"; }
mib() { awk -v kib="$1" 'BEGIN {printf "%.0f MiB", kib / 1024}'; }

rss_start=$(status VmRSS)
started=$(date +%s.%N)
"$bin" simulate --profile fixtures/profiles/reference.toml --base-url "$base" --leads "$saves" \
  --concurrency 8 --seed 1 >"$work/simulate.txt" 2>&1 || { cat "$work/simulate.txt"; exit 1; }
saved_s=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
rss_saved=$(status VmRSS)
held=$(grep -o 'delivered [0-9]* of [0-9]*' "$work/simulate.txt")

echo 5 >"/proc/$partner/clear_refs"
dump=$(curl -sf -o "$work/dump.json" -w '%{time_total} %{size_download}' "$base/__spoke/store")
peak_dump=$(status VmHWM)
rss_after=$(status VmRSS)
records=$(grep -o '"id":"P-' "$work/dump.json" | wc -l)
# Whole: it opens with the staff and closes after the members.
[[ $(head -c 10 "$work/dump.json") == '{"staff":[' && $(tail -c 13 "$work/dump.json") == *'"members":[]}' ]] ||
  { echo "the dump is cut short"; exit 1; }
middle=$(printf 'P-%06d' $((saves / 2)))
page=$(curl -sf -o "$work/page.json" -w '%{time_total}' \
  "$base/__spoke/store?kind=prospects&after=$middle&limit=1000")
walk=$(python3 - "$port" <<'PY'
import http.client, json, sys, time
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
path, pages, records, start = "/__spoke/store?kind=prospects&limit=10000", 0, 0, time.perf_counter()
while path:
    conn.request("GET", path)
    page = json.loads(conn.getresponse().read())
    pages, records, path = pages + 1, records + page["count"], page["next"]
print(f"{records} records in {pages} pages, {time.perf_counter() - start:.2f} s")
PY
)

per_record=$(awk -v a="$rss_start" -v b="$rss_saved" -v n="$records" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}')
read -r dump_s dump_bytes <<<"$dump"
echo "store dump after $saves saves ($(date -u +%H:%M) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '| %-42s | %s |\n' "measure" "result"
printf '| %-42s | %s |\n' "saves (spoke simulate, 8 workers)" "$held in $saved_s s"
printf '| %-42s | %s |\n' "server resident before / after the saves" "$(mib "$rss_start") / $(mib "$rss_saved")"
printf '| %-42s | %s |\n' "memory per stored prospect" "$per_record bytes"
printf '| %-42s | %s |\n' "whole dump (GET /__spoke/store)" "$(awk -v s="$dump_s" 'BEGIN {printf "%.2f", s}') s, $(awk -v b="$dump_bytes" 'BEGIN {printf "%.0f MB", b / 1e6}'), $records prospects"
printf '| %-42s | %s |\n' "server peak while dumping / after" "$(mib "$peak_dump") / $(mib "$rss_after")"
printf '| %-42s | %s |\n' "one page (1,000 prospects after $middle)" "$(awk -v s="$page" 'BEGIN {printf "%.1f ms", s * 1000}')"
printf '| %-42s | %s |\n' "every page (10,000 a page)" "$walk"
