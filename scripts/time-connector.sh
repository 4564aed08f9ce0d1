#!/usr/bin/env bash
# Throughput of `spoke connector` (release build): SAVES user saves (default 2000) over one
# keep-alive connection, in memory and with --state (every save written and fsynced before its
# answer), then the judging time when the server stops.
set -euo pipefail
cd "$(dirname "$0")/.."
saves=${SAVES:-2000}
cargo build --release --quiet
bin=${BIN:-target/release/spoke}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  local label=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" connector --port "$port" --until "$saves-calls" --report "json:$work/report.json" "$@" \
    >"$work/out.txt" &
  local server=$!
  sleep 0.5
  python3 - "$port" "$saves" "$label" <<'PY'
import http.client, sys, time
port, saves, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
provider = ("<providerInfo><identifier>SPOKE-PROVIDER</identifier><clientID>CLIENT-1</clientID>"
            "<clubID>CLUB-1</clubID><recordID>P-{n}</recordID></providerInfo>")
start = time.perf_counter()
latencies = []
for n in range(saves):
    kind = "MEMBER" if n % 2 else "PROSPECT"
    body = ("<user>" + provider.format(n=n // 2) + "<userInfo><firstname>Ana</firstname>"
            f"<lastname>Silva {n // 2}</lastname><email>ana{n // 2}@example.com</email>"
            f"<userType>{kind}</userType><userStatus>ACTIVE</userStatus></userInfo></user>")
    t = time.perf_counter()
    conn.request("POST", "/connector/api/2011-11/user", body, {"Content-Type": "application/xml"})
    response = conn.getresponse()
    response.read()
    latencies.append(time.perf_counter() - t)
    assert response.status == 200, response.status
elapsed = time.perf_counter() - start
latencies.sort()
print(f"{label:<28} {saves / elapsed:8.0f} saves/s  p50 {latencies[len(latencies) // 2] * 1e3:6.2f} ms"
      f"  p99 {latencies[int(len(latencies) * 0.99)] * 1e3:6.2f} ms  ({saves} saves)")
PY
  local start end
  start=$(date +%s%N)
  wait "$server" || true
  end=$(date +%s%N)
  printf '%-28s judged and reported in %d ms after the last call\n' "" $(( (end - start) / 1000000 ))
}
run "in memory"
run "with --state (fsync)" --state "$work/intouch.json"
ls -l "$work/intouch.json" | awk '{ printf "%-28s state file %d bytes\n", "", $5 }'
