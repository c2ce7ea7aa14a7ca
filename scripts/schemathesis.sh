#!/usr/bin/env bash
# Property-based tests of the control API from its own OpenAPI document:
# starts `signpost serve` on port 0 with a fresh database, makes an account
# key, and runs schemathesis (PyPI) against /v1/openapi.json. Fails on any
# 5xx answer and on any answer that breaks the document's schema.
#
#   scripts/schemathesis.sh                  # a few minutes
#   MAX_EXAMPLES=200 scripts/schemathesis.sh # longer
#
# Settings: DATABASE_SERVER (default postgres://postgres@127.0.0.1:5432),
# MAX_EXAMPLES (per operation and phase, default 30), MAX_TIME (seconds; when
# set, fuzzing repeats until it is spent), SIGNPOST_BIN (default:
# target/debug/signpost, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

server_url=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
max_examples=${MAX_EXAMPLES:-30}
max_time=${MAX_TIME:-}
bin=${SIGNPOST_BIN:-target/debug/signpost}
db="signpost_schemathesis_$$"
work=$(mktemp -d)

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "installing schemathesis from PyPI"
  python3 -m pip install --quiet 'schemathesis>=4.32,<5'
fi
[ -x "$bin" ] || cargo build --quiet --bin signpost

pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if command -v psql >/dev/null 2>&1; then
    psql "$server_url/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

export DATABASE_URL="$server_url/$db"
export RUST_LOG=warn
# The rate limit is lifted: schemathesis sends far more than 10 requests/s
# (the limit itself is covered by tests/api.rs).
"$bin" serve --dns-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 --zones-dir zones \
  --api-rate-limit 0 >"$work/out" 2>"$work/log" &
pid=$!
addr=""
for _ in $(seq 1 300); do
  addr=$(sed -n 's/^api listening on //p' "$work/out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "signpost serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/log"; echo "signpost serve did not start" >&2; exit 1; }

key=$("$bin" accounts create schemathesis | python3 -c 'import json, sys; print(json.load(sys.stdin)["apiKey"])')
# A zone with a record set: the record-set, change-batch and zone-file
# operations are sent to it (random zone ids would only ever meet 404).
zone=$(curl -fsS -X POST "http://$addr/v1/zones" -H "Authorization: Bearer $key" \
  -d '{"name": "fuzz.test.", "comment": "schemathesis"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
curl -fsS -o /dev/null -X POST "http://$addr/v1/zones/$zone/changes" -H "Authorization: Bearer $key" \
  -d '{"changes": [{"action": "CREATE", "rrset": {"name": "www.fuzz.test.", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}}]}'
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/v1/zones/\\{id\\}/(rrsets|changes|zonefile)\$"
parameters = { "path.id" = "$zone" }
TOML

echo "schemathesis $(schemathesis --version | awk '{print $NF}') against http://$addr (max $max_examples examples per operation)"
time_limit=()
[ -n "$max_time" ] && time_limit=(--max-time "$max_time")
status=0
timeout 900 schemathesis --config-file "$work/schemathesis.toml" run "http://$addr/v1/openapi.json" \
  -H "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "$max_examples" \
  "${time_limit[@]}" \
  --workers 2 \
  --request-timeout 20 \
  --no-color || status=$?

if grep -q "panicked" "$work/log"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$work/log" >&2
  status=1
fi
exit "$status"
