#!/usr/bin/env bash
# Health-checker benchmark: one `signpost checker` process holding CHECKS checks (HTTP and TCP,
# INTERVAL seconds apart) against local endpoints for DURATION seconds. Reports the checker's CPU
# and memory, and, measured on the endpoints' side from the arrival of each probe, how far the
# interval between successive probes of each check drifted (target: none more than 10%).
#
# Usage: bench/checker.sh                 (from anywhere)
#
# Environment knobs [defaults]:
#   CHECKS [5000]  TCP_CHECKS [500] of them TCP, the rest HTTP   INTERVAL [10] seconds
#   DURATION [75]  seconds the checker runs      HTTP_ADDRESSES [8] HTTP servers on 127.0.1.1..N
#   MAX_PROBES [256] passed as --max-concurrent-probes           OUT_DIR [bench/out]
#   SKIP_BUILD=1   do not run `cargo build --release`            SIGNPOST [target/release/signpost]
#   PGHOST [127.0.0.1] PGPORT [5432] PGUSER [postgres]  where the per-run database is created
#   KEEP_DB=1      keep the database signpost_bench_checker_<pid>
# Traffic only goes to loopback addresses (127.0.1.x, 127.0.2.1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CHECKS=${CHECKS:-5000}
TCP_CHECKS=${TCP_CHECKS:-500}
INTERVAL=${INTERVAL:-10}
DURATION=${DURATION:-75}
HTTP_ADDRESSES=${HTTP_ADDRESSES:-8}
MAX_PROBES=${MAX_PROBES:-256}
OUT_DIR=${OUT_DIR:-$HERE/out}
SIGNPOST=${SIGNPOST:-$ROOT/target/release/signpost}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

die() { echo "checker.sh: $*" >&2; exit 1; }
log() { echo "== $*"; }
for v in CHECKS TCP_CHECKS INTERVAL DURATION HTTP_ADDRESSES MAX_PROBES; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$TCP_CHECKS" -le "$CHECKS" ] || die "TCP_CHECKS must not exceed CHECKS"
for b in python3 psql; do command -v "$b" >/dev/null || die "needs $b"; done

if [ -z "${SKIP_BUILD:-}" ]; then
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release --quiet)
fi
[ -x "$SIGNPOST" ] || die "no $SIGNPOST (build it, or set SIGNPOST)"
if ! pg_isready -q 2>/dev/null && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi

mkdir -p "$OUT_DIR"
DB=signpost_bench_checker_$$
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
PORTS=$OUT_DIR/checker-ports.json
TIMES=$OUT_DIR/checker-times.json
CHECKER_LOG=$OUT_DIR/checker.log
endpoints_pid= checker_pid=
cleanup() {
  [ -n "$checker_pid" ] && kill "$checker_pid" 2>/dev/null || true
  [ -n "$endpoints_pid" ] && kill "$endpoints_pid" 2>/dev/null || true
  [ -n "${KEEP_DB:-}" ] || psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "database $DB"
psql -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
"$SIGNPOST" migrate --database-url "$URL" >/dev/null

log "endpoints: $((CHECKS - TCP_CHECKS)) HTTP checks on $HTTP_ADDRESSES addresses, $TCP_CHECKS TCP listeners"
rm -f "$TIMES"
coproc ENDPOINTS { exec python3 "$HERE/checker-endpoints.py" "$PORTS" "$TIMES" "$HTTP_ADDRESSES" "$TCP_CHECKS"; }
endpoints_pid=$ENDPOINTS_PID
read -r -t 60 ready <&"${ENDPOINTS[0]}" || die "endpoints did not start"
[ "$ready" = ready ] || die "endpoints said: $ready"

log "$CHECKS checks, every $INTERVAL s"
python3 - "$PORTS" "$CHECKS" "$TCP_CHECKS" "$INTERVAL" > "$OUT_DIR/checker-seed.sql" <<'PY'
import json, sys
ports = json.load(open(sys.argv[1]))
checks, tcp, interval = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("INSERT INTO accounts (id, name) VALUES ('Abench', 'bench');")
rows = []
for i in range(checks - tcp):
    ip, port = ports["http"][i % len(ports["http"])]
    rows.append("('Abench', 'HTTP', '%s', %d, '/c/%d', %d, 3)" % (ip, port, i, interval))
for ip, port in ports["tcp"][:tcp]:
    rows.append("('Abench', 'TCP', '%s', %d, NULL, %d, 3)" % (ip, port, interval))
print("INSERT INTO health_checks (account_id, type, ip, port, path, request_interval, failure_threshold) VALUES")
print(",\n".join(rows) + ";")
PY
psql -q -d "$DB" -f "$OUT_DIR/checker-seed.sql" >/dev/null

log "signpost checker for $DURATION s"
RUST_LOG=warn "$SIGNPOST" checker --region bench --allow-private-targets \
  --max-concurrent-probes "$MAX_PROBES" --database-url "$URL" >/dev/null 2>"$CHECKER_LOG" &
checker_pid=$!
ticks=$(getconf CLK_TCK)
start=$(date +%s.%N)
sleep "$DURATION"
kill -0 "$checker_pid" 2>/dev/null || die "the checker died: $(tail -5 "$CHECKER_LOG")"
read -r utime stime < <(awk '{print $14, $15}' "/proc/$checker_pid/stat")
end=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$checker_pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$checker_pid/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$checker_pid/status")
observed=$(psql -At -d "$DB" -c "SELECT count(*) FROM health_observations WHERE settled AND healthy")
flips=$(psql -At -d "$DB" -c "SELECT count(*) FROM health_state_changes")
kill -TERM "$checker_pid"; wait "$checker_pid" || true; checker_pid=
kill -TERM "$endpoints_pid"; wait "$endpoints_pid" || true; endpoints_pid=

wall=$(echo "$end - $start" | bc -l)
cpu=$(echo "($utime + $stime) / $ticks" | bc -l)
log "results"
printf 'checker CPU: %.1f s over %.0f s wall = %.1f%% of one core\n' "$cpu" "$wall" "$(echo "100 * $cpu / $wall" | bc -l)"
printf 'checker memory: RSS %d MiB at the end, peak %d MiB; %d threads\n' $((rss / 1024)) $((hwm / 1024)) "$threads"
echo "checks settled healthy: $observed of $CHECKS; state changes: $flips"
python3 "$HERE/checker-report.py" "$TIMES" "$INTERVAL" "$CHECKS"
