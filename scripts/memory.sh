#!/usr/bin/env bash
# Peak memory (max RSS) of:
#  1. a certify run against a partner that streams an endless staff list (the client must stop
#     at its body cap), with the partner in its own process;
#  2. the mock partner while a load of malformed, oversized and random requests hits it.
# Release build; everything on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/spoke
export SPOKE_REFERENCE_TOKEN=memory-check-token-0001
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$bin" partner --port "$port" --fault staff-list-huge-body >/dev/null &
partner=$!
trap 'kill $partner 2>/dev/null || true' EXIT
sleep 0.5
/usr/bin/time -f "certify vs an endless body: max RSS %M KiB, %e s wall" \
  "$bin" certify --profile fixtures/profiles/reference.toml --base-url "http://127.0.0.1:$port" \
  --seed 1 >/dev/null || true
kill $partner; wait $partner 2>/dev/null || true

"$bin" partner --port "$port" >/dev/null &
partner=$!
sleep 0.5
python3 - "$port" <<'PY'
import http.client, json, random, sys, threading
port = int(sys.argv[1])
base = "/api/v1/clients/C-1001/clubs/CLUB-7"
paths = [base + "/prospects", base + "/members", base + "/lead-sources", base + "/staff",
         base + "/prospects/P-000001", "/%FF%FE/..", "/" + "x" * 4000]
def body(rng):
    kind = rng.randrange(5)
    if kind == 0: return bytes(rng.randrange(256) for _ in range(rng.randrange(2000)))
    if kind == 1: return b"[" * 5000 + b"]" * 5000
    if kind == 2: return b"{" * (300 * 1024)
    if kind == 3: return json.dumps({"first_name": [1, {"x": None}], "last_name": 3}).encode()
    return json.dumps({"first_name": "Zoë", "last_name": "Ñúñez", "club_id": "CLUB-7"}).encode()
def worker(seed, count):
    rng = random.Random(seed)
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        method = rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE"])
        headers = {"authorization": "Bearer memory-check-token-0001"} if rng.random() < 0.8 else {}
        try:
            conn.request(method, rng.choice(paths), body=body(rng), headers=headers)
            status = conn.getresponse().status
            assert status < 500, status
        finally:
            conn.close()
threads = [threading.Thread(target=worker, args=(i, 1500)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("6000 fuzz requests sent, no 5xx")
PY
echo "mock partner under the fuzz load: max RSS $(grep VmHWM /proc/$partner/status | awk '{print $2}') KiB"
kill -INT $partner; wait $partner 2>/dev/null || true
