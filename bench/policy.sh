#!/usr/bin/env bash
# Policy and counting overhead, in one session: runs bench/dns.sh (same zone,
# same method: server on cpu0, dnsperf on cpu1, core busy time per answered
# query) for
#   static        a plain A record                         (usage counting on)
#   weighted      a 4-member weighted group                (usage counting on)
#   geolocation   a 4-member geolocation group + a MaxMind DB (usage counting on)
#   static-nocount  the plain A record with --no-usage-counting
# and prints one table. Issue targets: policy answers at most 1 µs/query over
# static; counting under 0.3 µs/query.
#
# Usage: bench/policy.sh            (knobs of dns.sh pass through: DURATION, RUNS, SKIP_BUILD...)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out/policy
mkdir -p "$OUT"
export DURATION=${DURATION:-10} RUNS=${RUNS:-3}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release && cargo build --release --example bench-geo-db)
fi
export SKIP_BUILD=1
"$ROOT/target/release/examples/bench-geo-db" "$OUT/geo.mmdb" >/dev/null

for name in host1 w g; do
  for _ in $(seq 1 1000); do echo "$name.bench.test A"; done >"$OUT/q-$name.txt"
done

cat >"$OUT/weighted.sql" <<'SQL'
INSERT INTO record_sets (zone_id, name, type, set_identifier, ttl, records, weight)
SELECT z.id, 'w.bench.test.', 'A', 'w' || i, 60, ARRAY['192.0.2.' || i], i
FROM hosted_zones z, generate_series(1, 4) AS i WHERE z.name = 'bench.test.';
SQL
cat >"$OUT/geo.sql" <<'SQL'
INSERT INTO record_sets (zone_id, name, type, set_identifier, ttl, records, geo_continent, geo_country)
SELECT z.id, 'g.bench.test.', 'A', v.id, 60, ARRAY[v.addr], v.continent, v.country
FROM hosted_zones z,
     (VALUES ('default', '192.0.2.9', NULL, '*'), ('us', '192.0.2.1', NULL, 'US'),
             ('europe', '192.0.2.2', 'EU', NULL), ('germany', '192.0.2.3', NULL, 'DE')) AS v(id, addr, continent, country)
WHERE z.name = 'bench.test.';
SQL

declare -A rows
run() {  # label, then env assignments for dns.sh
  local label=$1; shift
  echo "### $label"
  env "$@" OUT_DIR="$OUT/$label" "$HERE/dns.sh" | tee "$OUT/$label.log" | grep -E '^ +run|WARNING|note:' || true
  rows[$label]=$(grep -E '^\| +[0-9]' "$OUT/$label.log" | tail -1)
}
run static QUERIES_FILE="$OUT/q-host1.txt"
run weighted QUERIES_FILE="$OUT/q-w.txt" EXTRA_SQL="$OUT/weighted.sql"
run geolocation QUERIES_FILE="$OUT/q-g.txt" EXTRA_SQL="$OUT/geo.sql" SERVER_ARGS="--geoip-db $OUT/geo.mmdb"
run static-nocount QUERIES_FILE="$OUT/q-host1.txt" SERVER_ARGS="--no-usage-counting"

echo
echo "| config | QPS | answered | avg lat us | cpu0 busy % | core us/query | server process us/query |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for label in static weighted geolocation static-nocount; do
  echo "| $label ${rows[$label]:-| (no result) |}"
done
