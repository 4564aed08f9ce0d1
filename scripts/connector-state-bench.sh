#!/usr/bin/env bash
# Durable saves per second of `spoke connector --state` (release build; SQLite in WAL mode,
# synchronous=FULL, group commit): SENDERS concurrent senders (default 8) saving new prospects,
# each waiting for its answer, measured over WINDOW-save windows (default 10000) starting with
# 0, 50k and 100k records stored (is it flat?); the same in memory for comparison; then a
# kill -9 in the middle of a KILL_SAVES-save run (default 20000) and a check that every
# acknowledged save is in the file and `PRAGMA integrity_check` answers ok.
# BIN=path/to/spoke uses that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
senders=${SENDERS:-8}
window=${WINDOW:-10000}
kill_saves=${KILL_SAVES:-20000}
cargo build --release --quiet --example connector_load
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/spoke
fi
load=target/release/examples/connector_load
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# Starts `spoke connector` with the given options; sets pid and api.
start() {
  "$BIN" connector --port 0 "$@" >"$work/server.log" 2>&1 &
  pid=$!
  api=
  for _ in $(seq 100); do
    api=$(sed -n 's/^spoke connector listening on //p' "$work/server.log")
    [ -n "$api" ] && return 0
    sleep 0.1
  done
  cat "$work/server.log"
  exit 1
}
stop() { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

echo "== durable: --state (SQLite), $senders senders, saves/s per $window-save window"
start --state "$work/bench.db"
"$load" "$api" $((100000 + window)) --senders "$senders" --window "$window" \
  --at 0 --at 50000 --at 100000
stop
ls -l "$work/bench.db" | awk '{ printf "state file %.1f MB with 110k prospects\n", $5 / 1e6 }'

echo "== in memory (no --state), for comparison"
start
"$load" "$api" $((2 * window)) --senders "$senders" --window "$window" --at 0 --at "$window"
stop

echo "== kill -9 after $((kill_saves / 2)) of $kill_saves saves"
start --state "$work/kill.db"
"$load" "$api" "$kill_saves" --senders "$senders" --kill-pid "$pid" \
  --kill-after $((kill_saves / 2)) --acked "$work/acked.txt" --prefix K || true
wait "$pid" 2>/dev/null || true
pid=
"$BIN" connector --dump --state "$work/kill.db" >"$work/dump.json"
python3 - "$work/kill.db" "$work/acked.txt" "$work/dump.json" "$kill_saves" <<'PY'
import json, sqlite3, sys
db, acked_path, dump_path, planned = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
acked = dict(line.split() for line in open(acked_path))
stored = {u["record-id"]: u["uuid"] for u in json.load(open(dump_path))["users"] if u.get("record-id")}
lost = [r for r, uuid in acked.items() if stored.get(r) != uuid]
check = sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0]
kept = sum(1 for r in stored if r.startswith("K-"))
print(f"acknowledged before the kill: {len(acked)} of {planned}; in the file after restart: {kept}"
      f" (the rest were in flight); acknowledged but lost: {len(lost)}; integrity_check: {check}")
sys.exit(1 if lost or check != "ok" else 0)
PY
