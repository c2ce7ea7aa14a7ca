#!/usr/bin/env bash
# DNS benchmark for Signpost: loads a 10,000-record zone (bench.test.) into a fresh PostgreSQL
# database, runs `signpost dns` pinned to one core and dnsperf pinned to the other, and reports
# QPS and the server's CPU time per answered query.
#
# Usage: bench/dns.sh            (from anywhere; see bench/README.md)
#
# Environment knobs [defaults]:
#   DURATION [15]       seconds per measured dnsperf run     RUNS [3]   measured runs (median shown)
#   WARMUP [3]          seconds of unmeasured dnsperf traffic before the first run (0 = none)
#   CLIENTS [8]         dnsperf -c                           OUTSTANDING [200]  dnsperf -q
#   PORT [5330]         UDP/TCP port on 127.0.0.1 (traffic only ever goes to 127.0.0.1)
#   SERVER_CPU [0]      core the server is pinned to         LOAD_CPU [1]  core dnsperf is pinned to
#   RECORDS [10000]     records in the generated zone        OUT_DIR [bench/out]  zone, queries, logs
#   SKIP_BUILD=1        do not run `cargo build --release`   SIGNPOST [target/release/signpost]
#   UDP_WORKERS [1]     passed as --udp-workers (empty: flag omitted, server default)
#   SERVER_RUST_LOG [warn]  RUST_LOG for the server (per-query logging would be measured too)
#   PGHOST [127.0.0.1] PGPORT [5432] PGUSER [postgres]   where the per-run database is created
#   KEEP_DB=1           keep the database signpost_bench_<pid> instead of dropping it
#   START_TIMEOUT [60]  seconds to wait for the server to answer the SOA query
#   IDLE_CHECK [2] IDLE_MAX [3]  seconds of no traffic, before and after the runs, to check that the
#                       server's core is otherwise idle; warns when it is busier than IDLE_MAX %
#   OTHER_MAX [5]       runs where other processes used more than this % of the server's core
#                       are left out of the medians (all runs are used, with a WARNING, if every
#                       run was disturbed)
#   IMPORT_TIMEOUT [600] BUILD_TIMEOUT [3600]  bounds for `zone import` and `cargo build`
#   EXTRA_SQL           SQL file run against the bench database after the import (policy records)
#   QUERIES_FILE        dnsperf query file to use instead of the generated one
#   SERVER_ARGS         extra arguments for `signpost dns` (e.g. --no-usage-counting, --geoip-db F)
#   SERVER_CMD          instead of Signpost, run this shell command (under bash, pinned to
#                       SERVER_CPU) as the server; it gets ZONEFILE, ORIGIN (bench.test.), PORT,
#                       WORK_DIR and BENCH_DIR in its environment and must `exec` the server last.
#                       No build, no database. Examples:
#                         SERVER_CMD='exec "$BENCH_DIR/servers/nsd.sh"'
#                         SERVER_CMD='exec /tmp/dnsbench-reflector/release/reflector 127.0.0.1:$PORT'
#
# Core busy time uses the formula of ../shared/bench/peers/run.sh: user+nice+system+irq+softirq
# jiffies of the server's core in /proc/stat (idle, iowait and steal excluded), so the numbers
# compare with the peer table there.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-15}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-3}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-200}
PORT=${PORT:-5330}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
RECORDS=${RECORDS:-10000}
OUT_DIR=${OUT_DIR:-$HERE/out}
SIGNPOST=${SIGNPOST:-$ROOT/target/release/signpost}
UDP_WORKERS=${UDP_WORKERS-1}
SERVER_RUST_LOG=${SERVER_RUST_LOG:-warn}
START_TIMEOUT=${START_TIMEOUT:-60}
IMPORT_TIMEOUT=${IMPORT_TIMEOUT:-600}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-3600}
SERVER_CMD=${SERVER_CMD:-}
IDLE_CHECK=${IDLE_CHECK:-2}
IDLE_MAX=${IDLE_MAX:-3}
OTHER_MAX=${OTHER_MAX:-5}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
ORIGIN=bench.test.
ADDR=127.0.0.1

die() { echo "dns.sh: $*" >&2; exit 1; }
log() { echo "== $*"; }

for v in DURATION RUNS WARMUP CLIENTS OUTSTANDING PORT SERVER_CPU LOAD_CPU RECORDS START_TIMEOUT \
         IMPORT_TIMEOUT BUILD_TIMEOUT IDLE_CHECK IDLE_MAX OTHER_MAX; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
if [ "$RUNS" -lt 1 ] || [ "$DURATION" -lt 1 ]; then die "RUNS and DURATION must be at least 1"; fi
[ -z "$UDP_WORKERS" ] || [[ $UDP_WORKERS =~ ^[0-9]+$ ]] || die "UDP_WORKERS must be a number or empty"
[ "$SERVER_CPU" != "$LOAD_CPU" ] || die "SERVER_CPU and LOAD_CPU must differ"

for b in dnsperf dig taskset python3 awk; do
  command -v "$b" >/dev/null || die "missing $b (apt-get install dnsperf bind9-dnsutils util-linux python3)"
done
[ -n "$SERVER_CMD" ] || command -v psql >/dev/null || die "missing psql (apt-get install postgresql-client)"
taskset -c "$SERVER_CPU" true 2>/dev/null || die "cannot pin to cpu$SERVER_CPU"
taskset -c "$LOAD_CPU" true 2>/dev/null || die "cannot pin to cpu$LOAD_CPU"
grep -q "^cpu$SERVER_CPU " /proc/stat || die "no cpu$SERVER_CPU line in /proc/stat"
if command -v ss >/dev/null && ss -Hlun "sport = :$PORT" 2>/dev/null | grep -q .; then
  die "port $PORT is already in use on this machine (set PORT)"
fi
HZ=$(getconf CLK_TCK)

# ---------- cleanup: stop the server we started (by PID), drop the database we made ----------
SERVER_PID=""
DB_NAME=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "dns.sh: server $SERVER_PID ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
drop_db() {
  [ -n "$DB_NAME" ] || return 0
  if [ "${KEEP_DB:-0}" = 1 ]; then
    echo "dns.sh: kept database $DB_NAME" >&2
  else
    timeout 60 psql -X -q -v ON_ERROR_STOP=1 -d postgres \
      -c "drop database if exists $DB_NAME with (force)" >/dev/null 2>&1 ||
      echo "dns.sh: could not drop database $DB_NAME" >&2
  fi
  DB_NAME=""
}
LOAD_PID=""
stop_load() {
  [ -n "$LOAD_PID" ] || return 0
  kill -TERM "$LOAD_PID" 2>/dev/null || true
  wait "$LOAD_PID" 2>/dev/null || true
  LOAD_PID=""
}
cleanup() { stop_load; stop_server; drop_db; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
rm -f "$OUT_DIR"/run*.log "$OUT_DIR"/warmup.log "$OUT_DIR"/server.log "$OUT_DIR"/import.log \
  "$OUT_DIR"/sample.txt "$OUT_DIR"/summary.txt

# ---------- build ----------
if [ -z "$SERVER_CMD" ]; then
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "cargo build --release"
    (cd "$ROOT" && timeout --foreground "$BUILD_TIMEOUT" cargo build --release) || die "build failed"
  fi
  [ -x "$SIGNPOST" ] || die "no executable at $SIGNPOST (build first, or set SIGNPOST)"
  timeout 30 "$SIGNPOST" dns --help >/dev/null 2>&1 || die "'$SIGNPOST dns --help' fails"
fi

# ---------- zone and queries ----------
python3 "$HERE/gen-zone.py" "$OUT_DIR" --records "$RECORDS"
ZONEFILE=$OUT_DIR/bench.test.zone
QUERIES=${QUERIES_FILE:-$OUT_DIR/queries.txt}
[ -r "$QUERIES" ] || die "no query file $QUERIES"

# ---------- database and import (Signpost only) ----------
if [ -z "$SERVER_CMD" ]; then
  if ! timeout 10 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1; then
    if [ "$PGHOST" = 127.0.0.1 ] && command -v pg_ctlcluster >/dev/null; then
      log "starting the local PostgreSQL cluster"
      # shellcheck disable=SC2012 # version directory names are plain numbers
      timeout 60 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start ||
        die "could not start PostgreSQL"
      for _ in $(seq 1 50); do timeout 5 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    timeout 10 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1 ||
      die "PostgreSQL at $PGHOST:$PGPORT (user $PGUSER) does not answer"
  fi
  DB_NAME=signpost_bench_$$
  timeout 60 psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "create database $DB_NAME" >/dev/null ||
    die "could not create database $DB_NAME"
  DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB_NAME"
  log "importing $ZONEFILE into $DB_NAME"
  t0=$(date +%s.%N)
  RUST_LOG=$SERVER_RUST_LOG timeout --foreground "$IMPORT_TIMEOUT" "$SIGNPOST" zone import "$ZONEFILE" \
    --database-url "$DB_URL" >"$OUT_DIR/import.log" 2>&1 ||
    { tail -n 20 "$OUT_DIR/import.log" >&2; die "zone import failed (log: $OUT_DIR/import.log)"; }
  t1=$(date +%s.%N)
  IMPORT_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
  echo "   imported $RECORDS records in ${IMPORT_S} s"
  if [ -n "${EXTRA_SQL:-}" ]; then
    log "applying $EXTRA_SQL"
    timeout 60 psql -X -q -v ON_ERROR_STOP=1 -d "$DB_NAME" -f "$EXTRA_SQL" >/dev/null || die "EXTRA_SQL failed"
  fi
fi

# ---------- start the server, pinned ----------
if [ -n "$SERVER_CMD" ]; then
  SERVER_DESC="SERVER_CMD: $SERVER_CMD"
  log "starting $SERVER_DESC on $ADDR:$PORT, pinned to cpu$SERVER_CPU"
  ZONEFILE=$ZONEFILE ORIGIN=$ORIGIN PORT=$PORT WORK_DIR=$OUT_DIR BENCH_DIR=$HERE \
    taskset -c "$SERVER_CPU" bash -c "$SERVER_CMD" >"$OUT_DIR/server.log" 2>&1 &
else
  args=(dns --dns-addr "$ADDR:$PORT" --database-url "$DB_URL")
  [ -z "$UDP_WORKERS" ] || args+=(--udp-workers "$UDP_WORKERS")
  # shellcheck disable=SC2206 # SERVER_ARGS is a list of words on purpose
  [ -z "${SERVER_ARGS:-}" ] || args+=($SERVER_ARGS)
  SERVER_DESC="signpost ${args[*]}"
  log "starting $SERVER_DESC, pinned to cpu$SERVER_CPU"
  RUST_LOG=$SERVER_RUST_LOG taskset -c "$SERVER_CPU" "$SIGNPOST" "${args[@]}" >"$OUT_DIR/server.log" 2>&1 &
fi
SERVER_PID=$!

deadline=$((SECONDS + START_TIMEOUT))
answers_soa() {  # true when the server sends an answer record for "$ORIGIN SOA"
  dig @"$ADDR" -p "$PORT" "$ORIGIN" SOA +noall +answer +time=1 +tries=1 2>/dev/null | grep -q '^[^;[:space:]]'
}
until answers_soa; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    tail -n 20 "$OUT_DIR/server.log" >&2
    SERVER_PID=""
    die "the server exited before answering (log: $OUT_DIR/server.log)"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 20 "$OUT_DIR/server.log" >&2
    die "no answer to '$ORIGIN SOA' on $ADDR:$PORT within ${START_TIMEOUT}s"
  fi
  sleep 0.2
done
echo "   answering (pid $SERVER_PID)"

# A few answers on record, so a fast-but-wrong server is visible.
for q in "$ORIGIN SOA" "host1.$ORIGIN A" "host0.$ORIGIN AAAA" "www.$ORIGIN A" "mx1.$ORIGIN MX" \
         "host1.$ORIGIN TXT" "x1.wild.$ORIGIN A" "nx1.$ORIGIN A"; do
  # shellcheck disable=SC2086 # "name type" is split on purpose
  dig @"$ADDR" -p "$PORT" $q +time=1 +tries=1 +norecurse 2>&1 | sed -n '/->>HEADER<<-/p;/ANSWER SECTION/,/^$/p'
done >"$OUT_DIR/sample.txt" || true
awk '/->>HEADER<<-/ {printf "%s ", $6} END {print ""}' "$OUT_DIR/sample.txt" |
  sed 's/,//g' | { read -r codes || true; echo "   sample rcodes (SOA A AAAA CNAME MX TXT wildcard nx): ${codes:-none}"; }

# ---------- measurement helpers ----------
# "busy steal total task" jiffies of one core; busy = user+nice+system+irq+softirq (as
# peers/run.sh); task = user+nice+system, the part that belongs to processes (not irq/softirq)
cpu_ticks() { awk -v c="cpu$1" '$1==c {b=$2+$3+$4+$7+$8; t=b+$5+$6+$9; print b, $9, t, $2+$3+$4}' /proc/stat; }
# utime+stime jiffies of a process and its live descendants (NSD serves from a child process)
proc_ticks() {
  local pids=("$1") all i=0 total=0 p t
  all=$(ps -e -o pid=,ppid= 2>/dev/null || true)
  while [ "$i" -lt "${#pids[@]}" ]; do
    while read -r p; do [ -n "$p" ] && pids+=("$p"); done < <(awk -v pp="${pids[$i]}" '$2==pp {print $1}' <<<"$all")
    i=$((i + 1))
  done
  for p in "${pids[@]}"; do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || true)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
run_dnsperf() {  # LOGFILE extra-dnsperf-args...
  # In the background + wait, so that INT/TERM interrupt the wait and cleanup stops dnsperf too.
  local logfile=$1 rc=0; shift
  timeout $((DURATION + WARMUP + 60)) taskset -c "$LOAD_CPU" dnsperf -s "$ADDR" -p "$PORT" -d "$QUERIES" \
    -c "$CLIENTS" -q "$OUTSTANDING" -t 2 "$@" >"$logfile" 2>&1 &
  LOAD_PID=$!
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=""
  return "$rc"
}
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# The core numbers assume the server's core does nothing else. Measure it with no traffic, before
# and after the runs: other work there (a build, another benchmark) inflates "core us/query".
idle_busy() {  # busy % of SERVER_CPU over IDLE_CHECK seconds with no traffic
  local b1 s1 t1 k1 b2 s2 t2 k2
  read -r b1 s1 t1 k1 < <(cpu_ticks "$SERVER_CPU")
  sleep "$IDLE_CHECK"
  read -r b2 s2 t2 k2 < <(cpu_ticks "$SERVER_CPU")
  awk -v b="$((b2 - b1))" -v t="$((t2 - t1))" 'BEGIN {printf "%.0f", (t > 0 ? 100*b/t : 0)}'
}
IDLE_BEFORE=$(idle_busy)
echo "   cpu$SERVER_CPU busy with no traffic: ${IDLE_BEFORE}%"

if [ "$WARMUP" -gt 0 ]; then
  log "warm-up ${WARMUP}s"
  run_dnsperf "$OUT_DIR/warmup.log" -l "$WARMUP" || true
fi

log "$RUNS x ${DURATION}s: dnsperf -c $CLIENTS -q $OUTSTANDING -t 2 on cpu$LOAD_CPU, server on cpu$SERVER_CPU"
qps_l=(); ans_l=(); core_l=(); proc_l=(); busy_l=(); steal_l=(); lat_l=(); other_max=0; all_l=(); clean_l=()
for r in $(seq 1 "$RUNS"); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died (log: $OUT_DIR/server.log)"
  rl=$OUT_DIR/run$r.log
  read -r b1 s1 t1 k1 < <(cpu_ticks "$SERVER_CPU"); p1=$(proc_ticks "$SERVER_PID")
  run_dnsperf "$rl" -l "$DURATION" || die "dnsperf failed (log: $rl)"
  read -r b2 s2 t2 k2 < <(cpu_ticks "$SERVER_CPU"); p2=$(proc_ticks "$SERVER_PID")
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during run $r (log: $OUT_DIR/server.log)"
  qps=$(awk '/Queries per second:/ {print $4}' "$rl")
  ans=$(awk '/Queries completed:/ {print $3}' "$rl")
  sent=$(awk '/Queries sent:/ {print $3}' "$rl")
  lost=$(awk '/Queries lost:/ {print $3}' "$rl")
  lat=$(awk '/Average Latency \(s\):/ {printf "%.0f", $4 * 1e6}' "$rl")
  if [ -z "$qps" ] || [ "${ans:-0}" -eq 0 ]; then die "no answered queries in run $r (log: $rl)"; fi
  # other = process time on the server's core not spent by the server (builds, other jobs):
  # an estimate (per-core and per-process accounting are sampled differently), for the warning
  read -r core procq busy steal other < <(awk -v b="$((b2 - b1))" -v s="$((s2 - s1))" -v t="$((t2 - t1))" \
    -v k="$((k2 - k1))" -v p="$((p2 - p1))" -v n="$ans" -v hz="$HZ" 'BEGIN {
      o = (t > 0 ? 100*(k-p)/t : 0); if (o < 0) o = 0
      printf "%.2f %.2f %.0f %.0f %.0f\n", b*1e6/hz/n, p*1e6/hz/n, (t>0 ? 100*b/t : 0), (t>0 ? 100*s/t : 0), o }')
  printf '   run %d: %9.0f qps  answered %9d/%-9d lost %-6s avg %4s us  cpu%d busy %3s%% (steal %s%%, other tasks %s%%)  core %5.2f us/q  process %5.2f us/q\n' \
    "$r" "$qps" "$ans" "$sent" "$lost" "$lat" "$SERVER_CPU" "$busy" "$steal" "$other" "$core" "$procq"
  echo "run=$r qps=$qps answered=$ans sent=$sent lost=$lost avg_us=$lat busy_pct=$busy steal_pct=$steal other_tasks_pct=$other core_us_per_q=$core proc_us_per_q=$procq" >>"$OUT_DIR/summary.txt"
  [ "$other" -le "$other_max" ] || other_max=$other
  all_l+=("$qps $ans $core $procq $busy $steal $lat")
  if [ "$other" -le "$OTHER_MAX" ]; then clean_l+=("$qps $ans $core $procq $busy $steal $lat"); fi
done
# Medians over the undisturbed runs (other tasks <= OTHER_MAX % of the core) when there are any.
if [ "${#clean_l[@]}" -gt 0 ]; then rows=("${clean_l[@]}"); else rows=("${all_l[@]}"); fi
USED="${#rows[@]} of $RUNS runs"
[ "${#clean_l[@]}" -eq "$RUNS" ] || USED="$USED (runs with other tasks > ${OTHER_MAX}% of cpu$SERVER_CPU left out unless all had them)"
for row in "${rows[@]}"; do
  read -r qps ans core procq busy steal lat <<<"$row"
  qps_l+=("$qps"); ans_l+=("$ans"); core_l+=("$core"); proc_l+=("$procq"); busy_l+=("$busy")
  steal_l+=("$steal"); lat_l+=("$lat")
done

# ---------- answer sanity: the rcode mix must match what the query file asks for ----------
rc_line=$(awk -F': *' '/Response codes:/ {print $2}' "$OUT_DIR/run$RUNS.log")
echo "   response codes (run $RUNS): $rc_line"
warn=$(awk -v line="$rc_line" '
  FNR==NR { want[$1]=$2; tot+=$2; next }
  END {
    n=split(line, f, /[ ,()%]+/); got_tot=0
    for (i=1; i<n; i++) if (f[i] ~ /^[A-Z]+$/ && f[i+1] ~ /^[0-9]+$/) { got[f[i]]=f[i+1]; got_tot+=f[i+1] }
    if (got_tot == 0) { print "no response codes in dnsperf output"; exit }
    for (c in got) if (!(c in want)) printf "unexpected %s answers (%d); ", c, got[c]
    for (c in want) { d=100*(got[c]/got_tot - want[c]/tot); if (d > 2 || d < -2)
      printf "%s share %.1f%% vs %.1f%% expected; ", c, 100*got[c]/got_tot, 100*want[c]/tot }
  }' "$OUT_DIR/expected.txt" /dev/null)
# (a custom query file has its own mix: no check)
[ -n "${QUERIES_FILE:-}" ] || [ -z "$warn" ] || echo "   WARNING: answers do not match the zone: $warn(see $OUT_DIR/sample.txt)"

IDLE_AFTER=$(idle_busy)
echo "   cpu$SERVER_CPU busy with no traffic after the runs: ${IDLE_AFTER}%"
if [ "${#clean_l[@]}" -eq 0 ]; then
  echo "   WARNING: in every run other tasks used cpu$SERVER_CPU (up to ${other_max}%): the core us/query" \
    "numbers are too high; rerun on a quiet machine"
elif [ "$IDLE_BEFORE" -gt "$IDLE_MAX" ] || [ "$IDLE_AFTER" -gt "$IDLE_MAX" ] || [ "$other_max" -gt "$OTHER_MAX" ]; then
  echo "   note: cpu$SERVER_CPU was not always the server's alone (busy without traffic ${IDLE_BEFORE}% before," \
    "${IDLE_AFTER}% after; other tasks up to ${other_max}% in a run); medians use $USED"
fi
stop_server

qps_m=$(med "${qps_l[@]}"); ans_m=$(med "${ans_l[@]}"); core_m=$(med "${core_l[@]}")
proc_m=$(med "${proc_l[@]}"); busy_m=$(med "${busy_l[@]}"); steal_m=$(med "${steal_l[@]}"); lat_m=$(med "${lat_l[@]}")
rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo
  echo "server: $SERVER_DESC (commit $rev)"
  echo "zone: $RECORDS records; dnsperf -c $CLIENTS -q $OUTSTANDING -t 2 -l $DURATION; medians of $USED; $(date -u +%Y-%m-%dT%H:%MZ)"
  printf '| %-10s | %-11s | %-12s | %-11s | %-19s | %-22s |\n' "QPS" "answered" "avg lat us" "cpu$SERVER_CPU busy %" \
    "core us/query" "server process us/query"
  echo "|-----------:|------------:|-------------:|------------:|--------------------:|-----------------------:|"
  printf '| %10.0f | %11.0f | %12s | %11s | %19.2f | %22.2f |\n' "$qps_m" "$ans_m" "$lat_m" "$busy_m" "$core_m" "$proc_m"
  echo "(core us/query = busy jiffies of cpu$SERVER_CPU / answered queries; steal median ${steal_m}%;" \
    "cpu$SERVER_CPU busy without traffic ${IDLE_BEFORE}% before, ${IDLE_AFTER}% after; logs in $OUT_DIR)"
} | tee -a "$OUT_DIR/summary.txt"
