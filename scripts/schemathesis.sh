#!/usr/bin/env bash
# Schemathesis, every check, against the mock partner serving the reference profile, driven by
# the OpenAPI document the mock generates for it (`spoke partner --openapi`). Fails on any
# failure. Usage: scripts/schemathesis.sh [path/to/spoke] (default: the debug binary).
# SPOKE_SCHEMATHESIS_VENV reuses a virtual environment across local reruns; without it one is
# made in a temporary folder and removed. SPOKE_SCHEMATHESIS_EXAMPLES bounds the examples per
# operation (default 30, which keeps the run well under two minutes); SPOKE_SCHEMATHESIS_SEED
# another seed (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
spoke=$(realpath "${1:-target/debug/spoke}")
version=4.32.5
examples=${SPOKE_SCHEMATHESIS_EXAMPLES:-30}
work=$(mktemp -d)
partner_pid=
cleanup() {
  [ -n "$partner_pid" ] && kill "$partner_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
venv=${SPOKE_SCHEMATHESIS_VENV:-$work/venv}
if [ ! -x "$venv/bin/schemathesis" ] || ! "$venv/bin/schemathesis" --version | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
# A token of this run only, never printed: the mock accepts just it.
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
SPOKE_REFERENCE_TOKEN=$token "$spoke" partner --port 0 >"$work/partner.log" 2>&1 &
partner_pid=$!
base=
for _ in $(seq 1 100); do
  base=$(sed -n 's/^spoke partner listening on \(http[^ ]*\).*/\1/p' "$work/partner.log")
  [ -n "$base" ] && break
  kill -0 "$partner_pid" 2>/dev/null || { cat "$work/partner.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "the mock partner did not start" >&2; exit 1; }
# Every check, every phase (examples, coverage, fuzzing, stateful through the document's
# links); one worker and a fixed seed, so a failure reruns the same way.
# From the temporary folder: Schemathesis keeps a cache in the working folder.
cd "$work"
"$venv/bin/schemathesis" run "$base/__spoke/openapi.json" \
  --url "$base" \
  --checks all \
  --max-examples "$examples" \
  --seed "${SPOKE_SCHEMATHESIS_SEED:-1}" \
  --workers 1 \
  --header "Authorization: Bearer $token" \
  --output-sanitize true \
  --report-dir "$work/report"
