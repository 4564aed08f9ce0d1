#!/usr/bin/env bash
# Benchmarks, measured in one run on this machine (release build, everything on 127.0.0.1):
#  1. GET a staff page and POST a prospect: the mock partner (`spoke partner`) against a bare
#     axum server answering the same bytes (the floor) and a wiremock MockServer configured
#     with the same answers; requests/s and p99 by wrk, median of RUNS runs;
#  2. `spoke simulate` deliveries/s against the mock partner, against wrk's raw POST rate;
#  3. a whole `spoke certify` process against the built-in partner;
#  4. the staff and source sync of a partner with 100,000 staff and 10,000 sources.
# Needs wrk (installed from Debian's packages when missing). RUNS=3 and SECONDS_PER_RUN=5 by
# default.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-5}
if ! command -v wrk >/dev/null; then
  (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
cargo build --release --quiet --bin spoke --example floor --example wiremock_partner
bin=target/release/spoke
export SPOKE_REFERENCE_TOKEN=bench-token-0000000001
auth="Authorization: Bearer $SPOKE_REFERENCE_TOKEN"
staff_path="/api/v1/clients/C-1001/clubs/CLUB-7/staff?page=1&per_page=25"
prospects_path="/api/v1/clients/C-1001/clubs/CLUB-7/prospects"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

mock_port=$(free_port); "$bin" partner --port "$mock_port" >/dev/null & pids+=($!)
floor_port=$(free_port); target/release/examples/floor "$floor_port" & pids+=($!)
wiremock_port=$(free_port); target/release/examples/wiremock_partner "$wiremock_port" & pids+=($!)
sleep 1

post_lua=$(mktemp)
cat >"$post_lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"first_name":"Zoë","last_name":"Ñúñez","club_id":"CLUB-7","email":"zoe@example.org","owner_id":"S-0002","source_id":"LS-01","status":"active","type":"prospect"}'
LUA

# Prints "requests_per_second p99_ms" for one wrk run.
measure() {
  local url=$1; shift
  wrk -t1 -c32 -d"${secs}s" --latency -H "$auth" "$@" "$url" | awk '
    /Requests\/sec/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 }
               else if (v ~ /ms$/) { sub(/ms/, "", v) }
               else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }
               p99 = v }
    END { printf "%s %s\n", rps, p99 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A rps p99
for target in mock floor wiremock; do
  case $target in
    mock) port=$mock_port ;; floor) port=$floor_port ;; wiremock) port=$wiremock_port ;;
  esac
  for kind in get post; do
    samples=$(for _ in $(seq "$runs"); do
      if [ "$kind" = get ]; then measure "http://127.0.0.1:$port$staff_path"
      else measure "http://127.0.0.1:$port$prospects_path" -s "$post_lua"; fi
    done)
    rps[$target-$kind]=$(echo "$samples" | awk '{ print $1 }' | median)
    p99[$target-$kind]=$(echo "$samples" | awk '{ print $2 }' | median)
  done
done

printf '\n%-28s %14s %10s %14s\n' "endpoint" "requests/s" "p99 ms" "vs floor"
for kind in get post; do
  for target in floor mock wiremock; do
    ratio=$(awk -v a="${rps[$target-$kind]}" -v b="${rps[floor-$kind]}" 'BEGIN { printf "%.0f%%", 100 * a / b }')
    printf '%-28s %14s %10s %14s\n' "$kind $target" "${rps[$target-$kind]}" "${p99[$target-$kind]}" "$ratio"
  done
done

# 2. simulate against the mock, against wrk's raw POST rate on the same endpoint.
sim_rates=$(for _ in $(seq "$runs"); do
  "$bin" simulate --profile fixtures/profiles/reference.toml --base-url "http://127.0.0.1:$mock_port" \
    --leads 20000 --concurrency 32 --seed "$RANDOM" 2>/dev/null | awk '/per second/ { print $(NF-2) }'
done)
sim=$(echo "$sim_rates" | median)
printf '\nsimulate: %s deliveries/s (median of %s); wrk raw POST on the same mock: %s requests/s; ratio %s\n' \
  "$sim" "$runs" "${rps[mock-post]}" \
  "$(awk -v a="$sim" -v b="${rps[mock-post]}" 'BEGIN { printf "%.0f%%", 100 * a / b }')"

# 3. a whole certify process against the built-in partner.
certify_ms=$(for _ in $(seq 10); do
  start=$(date +%s%N); "$bin" certify --seed 1 >/dev/null; end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
done | median)
printf 'certify (whole process, built-in partner): median %s ms of 10\n' "$certify_ms"

# 4. sync of 100,000 staff and 10,000 sources: the client's CPU time, partner in its own process.
sync_port=$(free_port)
"$bin" partner --port "$sync_port" --synthetic 100000,10000 >/dev/null & pids+=($!)
sleep 1.5
for _ in $(seq "$runs"); do
  /usr/bin/time -f '%U %S %e %M' "$bin" simulate --profile fixtures/profiles/reference.toml \
    --base-url "http://127.0.0.1:$sync_port" --leads 0 2>&1 >/dev/null | tail -1
done | awk '{ cpu = $1 + $2; printf "sync of 100000 staff + 10000 sources: client CPU %.2f s (user %.2f, sys %.2f), wall %.2f s, max RSS %d MiB\n", cpu, $1, $2, $3, $4 / 1024 }'
