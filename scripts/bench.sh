#!/usr/bin/env bash
# Benchmarks, measured in one run on this machine (release build, everything on 127.0.0.1):
#  1. GET a staff page and POST a prospect: the mock partner (`spoke partner`) against a bare
#     axum server answering the same bytes (the floor) and a wiremock MockServer configured
#     with the same answers, as wiremock runs by default (keeping a journal of every request it
#     receives) and with that journal turned off (wiremock-nojournal), each started afresh
#     before each of its runs as the mock's store is emptied before each of its own (even
#     without the journal each mounted mock keeps every request it matched, so its memory
#     grows by kilobytes a request; journaled wiremock keeps them twice and runs the short
#     rounds only: a 30 s run of it was killed for want of memory at 23 GiB); requests/s and p99 by wrk, each server's CPU time per request
#     (from /proc, so other load on the machine hardly moves it), its memory after the run,
#     and wrk's own CPU share (near 100% means the client, not the server, set the rate);
#     each in short rounds (SHORT_SECONDS, default 3) and long rounds (LONG_SECONDS, default
#     30), where whatever a server keeps per request (wiremock's request journal, the mock's
#     store) has grown;
#  2. `spoke simulate` deliveries/s against the mock partner, against wrk's raw rate posting
#     the same requests (simulate's own lead bodies, each a new lead, after the same sync) to
#     the same endpoint, and the client's CPU time per delivery;
#  3. a whole `spoke certify` process against the built-in partner;
#  4. the staff and source sync of a partner with 100,000 staff and 10,000 sources.
# Each round measures the compared servers back to back, and ratios are taken within a round:
# the figures are medians over RUNS rounds (default 3) of those ratios, so load that comes and
# goes between rounds moves them less than it moves raw rates. The summary is written to
# RESULTS (default scripts/bench-results.md) and copied into README.md between its bench
# markers, so the README's table is this script's output. Needs wrk (installed from Debian's
# packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
short_secs=${SHORT_SECONDS:-${SECONDS_PER_RUN:-3}}
long_secs=${LONG_SECONDS:-30}
results=${RESULTS:-scripts/bench-results.md}
if ! command -v wrk >/dev/null; then
  (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
cargo build --release --quiet --bin spoke --example floor --example wiremock_partner \
  --example simulate_bodies
bin=target/release/spoke
export SPOKE_REFERENCE_TOKEN=bench-token-0000000001
auth="Authorization: Bearer $SPOKE_REFERENCE_TOKEN"
staff_path="/api/v1/clients/C-1001/clubs/CLUB-7/staff?page=1&per_page=25"
prospects_path="/api/v1/clients/C-1001/clubs/CLUB-7/prospects"
ticks_per_s=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
temporary=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "${temporary[@]}"
}
trap cleanup EXIT
load_before=$(uptime | sed 's/.*load average: //')
echo "load before: $load_before"

declare -A port pid
port[mock]=$(free_port); "$bin" partner --port "${port[mock]}" >/dev/null & pid[mock]=$!; pids+=($!)
port[floor]=$(free_port); target/release/examples/floor "${port[floor]}" & pid[floor]=$!; pids+=($!)
sleep 1
# A wiremock server started afresh, its journal empty (the default one would otherwise hold
# every request of the whole benchmark: in one 30 s POST run it grew past 20 GiB).
restart_wiremock() {
  local target=$1 old=${pid[$1]:-} flags=()
  [ "$target" = wiremock-nojournal ] && flags=(--no-journal)
  if [ -n "$old" ]; then kill "$old" 2>/dev/null || true; wait "$old" 2>/dev/null || true; fi
  port[$target]=$(free_port)
  target/release/examples/wiremock_partner "${port[$target]}" "${flags[@]}" &
  pid[$target]=$!; pids+=($!)
  until curl -s -o /dev/null "http://127.0.0.1:${port[$target]}/"; do sleep 0.05; done
  # Warmed up as the long-running floor and mock are (threads, allocator, first pages).
  wrk -t1 -c32 -d1s -H "$auth" "http://127.0.0.1:${port[$target]}$staff_path" >/dev/null
}

post_lua=$(mktemp); temporary+=("$post_lua")
cat >"$post_lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"first_name":"Zoë","last_name":"Ñúñez","club_id":"CLUB-7","email":"zoe@example.org","owner_id":"S-0002","source_id":"LS-01","status":"active","type":"prospect"}'
LUA

# Simulate's own lead bodies, each sent as a new lead (its external id made unique).
bodies=$(mktemp); temporary+=("$bodies")
target/release/examples/simulate_bodies 1000 >"$bodies"
leads_lua=$(mktemp); temporary+=("$leads_lua")
cat >"$leads_lua" <<'LUA'
local bodies = {}
local sent = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  sent = sent + 1
  local body = bodies[sent % #bodies + 1]:gsub("@EXTERNAL@", "WRK-" .. sent)
  return wrk.format(nil, nil, nil, body)
end
LUA

# CPU ticks (user + system) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Empties the mock's store, so that POST runs do not grow it without end.
reset_mock() { curl -s -X POST "http://127.0.0.1:${port[mock]}/__spoke/reset" >/dev/null || true; }

# Memory of a process now, in MiB.
rss_mib() { awk '/^VmRSS/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }

# Prints "requests_per_second p99_ms server_cpu_us_per_request server_rss_mib wrk_cpu_share"
# for one wrk run of $3 seconds.
measure() {
  local target=$1 kind=$2 secs=$3 url before after out
  if [ "$kind" = get ]; then url="http://127.0.0.1:${port[$target]}$staff_path"
  else url="http://127.0.0.1:${port[$target]}$prospects_path"; fi
  [ "$target" = mock ] && reset_mock
  local script=()
  [ "$kind" = post ] && script=(-s "$post_lua")
  before=$(cpu_ticks "${pid[$target]}")
  out=$(/usr/bin/time -f 'wrk CPU %U %S' wrk -t1 -c32 -d"${secs}s" --latency -H "$auth" \
    "${script[@]}" "$url" 2>&1)
  after=$(cpu_ticks "${pid[$target]}")
  echo "$out" | awk -v ticks=$((after - before)) -v hz="$ticks_per_s" -v secs="$secs" \
    -v rss="$(rss_mib "${pid[$target]}")" '
    / requests in / { count = $1 }
    /Requests\/sec/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 }
               else if (v ~ /ms$/) { sub(/ms/, "", v) }
               else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }
               p99 = v }
    /^wrk CPU/ { wrk = ($3 + $4) / secs }
    END { printf "%s %s %.1f %s %.2f\n", rps, p99, ticks / hz * 1e6 / count, rss, wrk }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }'; }
pct() { awk -v r="$1" 'BEGIN { printf "%.0f%%", 100 * r }'; }

# The servers of a round of each length: journaled wiremock only in short ones (see above).
servers_of() { if [ "$1" = short ]; then echo floor mock wiremock wiremock-nojournal; else echo floor mock wiremock-nojournal; fi; }
# 1 and 2: rounds of floor / mock / wiremock for GET and POST, short then long, then
# simulate, back to back.
declare -A samples last
for round in $(seq "$runs"); do
  for length in short long; do
    if [ "$length" = short ]; then secs=$short_secs; else secs=$long_secs; fi
    for kind in get post; do
      for target in $(servers_of "$length"); do
        case $target in wiremock*) restart_wiremock "$target" ;; esac
        read -r rps p99 cpu rss wrk_share <<<"$(measure "$target" "$kind" "$secs")"
        key=$length-$target-$kind
        samples[$key-rps]+="$rps "
        samples[$key-p99]+="$p99 "
        samples[$key-cpu]+="$cpu "
        samples[$key-rss]+="$rss "
        samples[$key-wrk]+="$wrk_share "
        last[$target]=$rps
        last[$target-cpu]=$cpu
      done
      samples[$length-mock-$kind-ratio]+="$(ratio "${last[mock]}" "${last[floor]}") "
      for other in $(servers_of "$length"); do
        case $other in floor | mock) continue ;; esac
        samples[$length-$other-$kind-ratio]+="$(ratio "${last[$other]}" "${last[floor]}") "
        samples[$length-mock-over-$other-$kind]+="$(ratio "${last[mock]}" "${last[$other]}") "
      done
      samples[$length-mock-$kind-cpu-ratio]+="$(ratio "${last[mock-cpu]}" "${last[floor-cpu]}") "
      echo "round $round $length $kind requests/s: floor ${last[floor]}, mock ${last[mock]}, wiremock ${last[wiremock]:-not run}, wiremock without journal ${last[wiremock-nojournal]}" >&2
      unset 'last[wiremock]'
    done
  done
  # simulate right after wrk posting the same leads to the same mock, each after the sync.
  reset_mock
  "$bin" simulate --profile fixtures/profiles/reference.toml \
    --base-url "http://127.0.0.1:${port[mock]}" --leads 0 >/dev/null 2>&1
  out=$(/usr/bin/time -f 'wrk CPU %U %S' wrk -t1 -c32 -d"${short_secs}s" -H "$auth" -s "$leads_lua" \
    "http://127.0.0.1:${port[mock]}$prospects_path" -- "$bodies" 2>&1)
  # Refused leads would make the raw rate that of cheap errors: the comparison would be void.
  if grep -q 'Non-2xx' <<<"$out"; then echo "wrk's leads were refused: $out" >&2; exit 1; fi
  raw=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  raw_cpu=$(awk '/ requests in / { count = $1 } /^wrk CPU/ { cpu = $3 + $4 }
    END { printf "%.1f\n", cpu * 1e6 / count }' <<<"$out")
  reset_mock
  # Exit 4: delivered, but duplicates cannot be counted through the profile (a partner
  # elsewhere); the figures are what is wanted here.
  summary=$("$bin" simulate --profile fixtures/profiles/reference.toml \
    --base-url "http://127.0.0.1:${port[mock]}" --leads 30000 --concurrency 32 --seed "$round" 2>/dev/null) \
    || [ $? -eq 4 ]
  sim=$(echo "$summary" | awk '/per second/ { print $(NF-2) }')
  sim_cpu=$(echo "$summary" | awk '/^client CPU/ { print $(NF-3) }')
  samples[sim-rps]+="$sim "
  samples[sim-raw]+="$raw "
  samples[sim-ratio]+="$(ratio "$sim" "$raw") "
  samples[sim-cpu]+="$sim_cpu "
  samples[sim-raw-cpu]+="$raw_cpu "
  echo "round $round of $runs done ($(uptime | sed 's/.*load/load/'))" >&2
done
med() { echo "${samples[$1]}" | tr ' ' '\n' | grep . | median; }
range() { echo "${samples[$1]}" | tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
met() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? v >= t : v <= t; print ok ? "met" : "not met" }'; }

# The summary, as markdown: printed, written to $results and copied into the README.
summary_file=$(mktemp); temporary+=("$summary_file")
{
  printf 'Written by `scripts/bench.sh` at %s UTC: spoke %s (commit %s), %s cores, load before %s.\n' \
    "$(date -u '+%Y-%m-%d %H:%M')" "$("$bin" --version | awk '{ print $2 }')" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nproc)" "$load_before"
  printf 'Medians of %s rounds; short rounds of %s s, long rounds of %s s; ratios taken within each round (range over rounds in brackets).\n\n' \
    "$runs" "$short_secs" "$long_secs"
  printf '| round | endpoint | server | requests/s | p99 ms | vs floor | server CPU per request | vs floor CPU | server memory after | wrk CPU share |\n'
  printf '|---|---|---|---|---|---|---|---|---|---|\n'
  for length in short long; do
    for kind in get post; do
      for target in $(servers_of "$length"); do
        key=$length-$target-$kind
        if [ "$target" = floor ]; then share="100%"; cpu_share="1.00"
        else share="$(pct "$(med "$key-ratio")") [$(range "$key-ratio")]"; cpu_share=""; fi
        [ "$target" = mock ] && cpu_share="$(med "$key-cpu-ratio")×"
        printf '| %s | %s | %s | %s | %s | %s | %s µs | %s | %s MiB | %s |\n' "$length" "$kind" "$target" \
          "$(med "$key-rps")" "$(med "$key-p99")" "$share" "$(med "$key-cpu")" "$cpu_share" \
          "$(med "$key-rss")" "$(med "$key-wrk")"
      done
    done
  done
  printf '\n| target (medians) | figure | |\n|---|---|---|\n'
  for length in short long; do
    for kind in get post; do
      r=$(med "$length-mock-$kind-ratio"); c=$(med "$length-mock-$kind-cpu-ratio")
      q=$(med "$length-mock-over-wiremock-nojournal-$kind")
      printf '| %s %s: mock ≥ 0.90× floor | %.2f× | %s |\n' "$length" "$kind" "$r" "$(met "$r" 0.90 min)"
      if [ "$length" = short ]; then
        w=$(med "$length-mock-over-wiremock-$kind")
        printf '| %s %s: mock ≥ 2× wiremock-rs (journal on, its default) | %.2f× | %s |\n' "$length" "$kind" "$w" "$(met "$w" 2 min)"
      fi
      printf '| %s %s: mock ≥ 2× wiremock-rs (journal off) | %.2f× | %s |\n' "$length" "$kind" "$q" "$(met "$q" 2 min)"
      printf '| %s %s: mock CPU per request ≤ 1.2× floor | %.2f× | %s |\n' "$length" "$kind" "$c" "$(met "$c" 1.2 max)"
    done
  done
  printf '\n`spoke simulate`: %s deliveries/s; wrk posting the same leads to the same mock: %s requests/s; ratio %s. Client CPU per request: simulate %s µs (full delivery logic), wrk %s µs.\n' \
    "$(med sim-rps)" "$(med sim-raw)" "$(pct "$(med sim-ratio)")" "$(med sim-cpu)" "$(med sim-raw-cpu)"
} >"$summary_file"
# 3. a whole certify process against the built-in partner.
certify_ms=$(for _ in $(seq 10); do
  start=$(date +%s%N); "$bin" certify --seed 1 >/dev/null; end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
done | median)
printf 'Whole `spoke certify` process against the built-in partner: median %s ms of 10.\n' \
  "$certify_ms" >>"$summary_file"

# 4. sync of 100,000 staff and 10,000 sources: the client's CPU time, partner in its own process.
sync_port=$(free_port)
"$bin" partner --port "$sync_port" --synthetic 100000,10000 >/dev/null & pids+=($!)
sleep 1.5
for _ in $(seq 3); do
  /usr/bin/time -f '%U %S %e %M' "$bin" simulate --profile fixtures/profiles/reference.toml \
    --base-url "http://127.0.0.1:$sync_port" --leads 0 2>&1 >/dev/null | tail -1
done | awk '{ cpu = $1 + $2; printf "Sync of 100,000 staff + 10,000 sources: client CPU %.2f s (user %.2f, sys %.2f), wall %.2f s, max RSS %d MiB.\n", cpu, $1, $2, $3, $4 / 1024 }' \
  >>"$summary_file"
printf '\nLoad after: %s.\n' "$(uptime | sed 's/.*load average: //')" >>"$summary_file"

cat "$summary_file"
cp "$summary_file" "$results"
# The README's table is this output: replace what stands between its markers.
begin='<!-- bench.sh results: begin -->'
end='<!-- bench.sh results: end -->'
if grep -qF "$begin" README.md && grep -qF "$end" README.md; then
  awk -v begin="$begin" -v end="$end" -v file="$summary_file" '
    $0 == begin { print; while ((getline line < file) > 0) print line; skipping = 1; next }
    $0 == end { skipping = 0 }
    !skipping { print }' README.md >README.md.new && mv README.md.new README.md
  echo "README.md: the benchmark table now holds this run's figures ($results)" >&2
fi
