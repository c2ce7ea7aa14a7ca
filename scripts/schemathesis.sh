#!/usr/bin/env bash
# Property-based tests of the control API from its own OpenAPI document:
# starts `signpost serve` on port 0 with a fresh database, makes an account
# key, and runs schemathesis (PyPI) against /v1/openapi.json. Fails on any
# 5xx answer and on any answer that breaks the document's schema.
#
#   scripts/schemathesis.sh                  # about a minute
#   MAX_EXAMPLES=500 scripts/schemathesis.sh # longer
#
# Settings: DATABASE_SERVER (default postgres://postgres@127.0.0.1:5432),
# MAX_EXAMPLES (per operation and phase, default 100), MAX_TIME (seconds; when
# set, fuzzing repeats until it is spent), SIGNPOST_BIN (default:
# target/debug/signpost, built if missing), SCHEMATHESIS_ARGS (more options).
set -euo pipefail
cd "$(dirname "$0")/.."

server_url=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}
max_examples=${MAX_EXAMPLES:-100}
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
# No example zones: the account below hosts example.com., the name the
# document's examples use.
"$bin" serve --dns-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 --zones-dir "$work/no-zones" \
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

# POST a JSON body with the key; prints the answer's `id`.
post() {
  python3 - "http://$addr$1" "$key" "$2" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method="POST",
                             headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req))["id"])
PY
}

key=$("$bin" accounts create schemathesis | python3 -c 'import json, sys; print(json.load(sys.stdin)["apiKey"])')
# A zone with a record set: the record-set, change-batch and zone-file
# operations are sent to it (random zone ids would only ever meet 404). Zone
# deletes go to a zone of their own: schemathesis finds ids in listings and
# would delete this one once a fuzzed import has emptied it.
zone=$(post /v1/zones '{"name": "example.com.", "comment": "schemathesis"}')
post "/v1/zones/$zone/changes" '{"changes": [{"action": "CREATE", "rrset": {"name": "www.example.com.",
  "type": "MX", "ttl": 60, "records": ["10 mail.example.com."]}}]}' >/dev/null
doomed=$(post /v1/zones '{"name": "delete-me.example."}')
cat >"$work/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = '^/v1/zones/\{id\}/(rrsets|changes|zonefile|test-dns-answer|usage)\$'
parameters = { "path.id" = "$zone" }

[[operations]]
include-method = "DELETE"
include-path = "/v1/zones/{id}"
parameters = { "path.id" = "$doomed" }
phases.stateful.enabled = false
TOML

echo "schemathesis $(schemathesis --version | awk '{print $NF}') against http://$addr (max $max_examples examples per operation)"
time_limit=()
[ -n "$max_time" ] && time_limit=(--max-time "$max_time")
status=0
# From the scratch directory, so that schemathesis's own cache stays out of the repository.
(cd "$work" && timeout 900 schemathesis --config-file "$work/schemathesis.toml" run "http://$addr/v1/openapi.json" \
  -H "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "$max_examples" \
  "${time_limit[@]}" \
  --workers 2 \
  --request-timeout 20 \
  --no-color ${SCHEMATHESIS_ARGS:-}) || status=$?

echo "answers by route and status (the server's /metrics):"
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
  "http://$addr/metrics" 2>/dev/null | sed -n 's/^signpost_http_requests_total{\(.*\)} \(.*\)$/  \2 \1/p' | sort -k2

if ! kill -0 "$pid" 2>/dev/null; then
  echo "signpost serve is gone; its log:" >&2
  tail -50 "$work/log" >&2
  status=1
fi
if grep -q "panicked" "$work/log"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$work/log" >&2
  status=1
fi
exit "$status"
