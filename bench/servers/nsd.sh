#!/usr/bin/env bash
# SERVER_CMD helper for bench/dns.sh: serves $ZONEFILE (origin $ORIGIN) with NSD on
# 127.0.0.1:$PORT, one serving process, RRL off (like ../shared/bench/peers/conf/nsd.conf),
# so the harness can be checked, and Signpost compared, on the same 10,000-record zone:
#   SERVER_CMD='exec "$BENCH_DIR/servers/nsd.sh"' bench/dns.sh
# Needs the Debian package nsd (4.x). Scratch files go to $WORK_DIR/nsd.
set -euo pipefail
: "${ZONEFILE:?}" "${PORT:?}"
ORIGIN=${ORIGIN:-bench.test.}
dir=${WORK_DIR:-$(dirname "$ZONEFILE")}/nsd
mkdir -p "$dir"
rm -f "$dir"/zone.list "$dir"/xfrd.state "$dir"/nsd.pid
cat >"$dir/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$PORT
    server-count: 1
    do-ip6: no
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    xfrdir: "$dir"
    pidfile: "$dir/nsd.pid"
    logfile: "$dir/nsd.log"
    username: ""
    chroot: ""
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: "${ORIGIN%.}"
    zonefile: "$ZONEFILE"
CONF
exec nsd -d -c "$dir/nsd.conf"
