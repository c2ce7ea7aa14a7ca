#!/usr/bin/env bash
# Signpost in the same run as the peer servers: wraps ../shared/bench/peers/run.sh with an
# EXTRA_CMD that imports the peers' generated zone (example.test., ~1,000 hosts) into a fresh
# PostgreSQL database and then execs `signpost dns` on run.sh's port for the "extra" target.
#
# Usage: bench/peers.sh [TARGET ...]        (default: reflector nsd knot extra)
#   TARGETs are run.sh's (reflector reflector-fixed nsd knot pdns bind gdnsd ...) plus "extra",
#   which is Signpost. run.sh's knobs pass through (DUR, REPS, CLIENTS, OUTSTANDING, LAT_QPS,
#   SERVER_CPU, LOAD_CPU, START_TRIES, INSTALL=1, ...); its table lands in
#   /tmp/dnsbench-results/table.md.
# Own knobs [defaults]:
#   SKIP_BUILD=1     do not run `cargo build --release`     SIGNPOST [target/release/signpost]
#   UDP_WORKERS [1]  --udp-workers for `signpost dns` (empty: flag omitted)
#   SERVER_RUST_LOG [warn]  RUST_LOG for signpost           START_TRIES [300] (0.2-s polls; covers the import)
#   PGHOST [127.0.0.1] PGPORT [5432] PGUSER [postgres]  KEEP_DB=1 keeps signpost_peers_<pid>
#   RUN_SH [../shared/bench/peers/run.sh]   BUILD_TIMEOUT [3600]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUN_SH=${RUN_SH:-$ROOT/../shared/bench/peers/run.sh}
SIGNPOST=${SIGNPOST:-$ROOT/target/release/signpost}
UDP_WORKERS=${UDP_WORKERS-1}
SERVER_RUST_LOG=${SERVER_RUST_LOG:-warn}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-3600}
export START_TRIES=${START_TRIES:-300}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

die() { echo "peers.sh: $*" >&2; exit 1; }

[ -x "$RUN_SH" ] || die "no peer benchmark at $RUN_SH"
[ $# -gt 0 ] || set -- reflector nsd knot extra
[[ $BUILD_TIMEOUT =~ ^[0-9]+$ ]] || die "BUILD_TIMEOUT must be a number"
[ -z "$UDP_WORKERS" ] || [[ $UDP_WORKERS =~ ^[0-9]+$ ]] || die "UDP_WORKERS must be a number or empty"

DB_NAME=""
# shellcheck disable=SC2317 # called from the EXIT trap
drop_db() {
  [ -n "$DB_NAME" ] || return 0
  if [ "${KEEP_DB:-0}" = 1 ]; then
    echo "peers.sh: kept database $DB_NAME" >&2
  else
    timeout 60 psql -X -q -d postgres -c "drop database if exists $DB_NAME with (force)" >/dev/null 2>&1 ||
      echo "peers.sh: could not drop database $DB_NAME" >&2
  fi
  DB_NAME=""
}
trap drop_db EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ " $* " == *" extra "* ]]; then
  command -v psql >/dev/null || die "missing psql (apt-get install postgresql-client)"
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== cargo build --release"
    (cd "$ROOT" && timeout --foreground "$BUILD_TIMEOUT" cargo build --release) || die "build failed"
  fi
  [ -x "$SIGNPOST" ] || die "no executable at $SIGNPOST (build first, or set SIGNPOST)"
  SIGNPOST=$(cd "$(dirname "$SIGNPOST")" && pwd)/$(basename "$SIGNPOST")   # run.sh may run elsewhere

  if ! timeout 10 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1; then
    if [ "$PGHOST" = 127.0.0.1 ] && command -v pg_ctlcluster >/dev/null; then
      echo "== starting the local PostgreSQL cluster"
      # shellcheck disable=SC2012 # version directory names are plain numbers
      timeout 60 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start ||
        die "could not start PostgreSQL"
      for _ in $(seq 1 50); do timeout 5 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    timeout 10 psql -X -q -d postgres -c 'select 1' >/dev/null 2>&1 ||
      die "PostgreSQL at $PGHOST:$PGPORT (user $PGUSER) does not answer"
  fi
  DB_NAME=signpost_peers_$$
  timeout 60 psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "create database $DB_NAME" >/dev/null ||
    die "could not create database $DB_NAME"
  DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB_NAME"

  # run.sh runs this under `taskset -c $SERVER_CPU bash -c` with ZONEFILE and PORT set. The zone
  # file is run.sh's example.test.zone ($ORIGIN example.test., relative owner names, SOA and NS at
  # the apex); `zone import` takes the zone's name from it. The import's output goes to
  # /tmp/dnsbench-results/extra.server.log; exec makes signpost the PID that run.sh stops.
  workers=""
  [ -z "$UDP_WORKERS" ] || workers=" --udp-workers $(printf %q "$UDP_WORKERS")"
  sp=$(printf %q "$SIGNPOST")
  url=$(printf %q "$DB_URL")
  # shellcheck disable=SC2089,SC2090 # the quotes are for run.sh's `bash -c`, on purpose
  EXTRA_CMD="set -e; export RUST_LOG=$(printf %q "$SERVER_RUST_LOG")
$sp zone import \"\$ZONEFILE\" --database-url $url
exec $sp dns --dns-addr \"127.0.0.1:\$PORT\" --database-url $url$workers"
  # shellcheck disable=SC2090
  export EXTRA_CMD
  echo "== EXTRA_CMD:"
  printf '%s\n' "$EXTRA_CMD" | sed 's/^/   /'
fi

rc=0
"$RUN_SH" "$@" || rc=$?
exit "$rc"
