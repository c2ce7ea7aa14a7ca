#!/usr/bin/env bash
# The fault suite and the container failover test, with their figures as Markdown tables
# (the RELIABILITY section of bench/RESULTS.md).
#
# Usage: bench/faults.sh [FILTER]      (from anywhere; FILTER selects fault scenarios by name)
#
# Runs `cargo test --test faults -- --include-ignored --nocapture --test-threads=1` (every
# scenario, also the long ones that plain `cargo test` skips) and `cargo test --test containers`,
# keeps their output in bench/out/faults.log, and prints the FAULTS-ROW and CONTAINERS-ROW lines
# as tables, then the scenarios that broke a promise. Exit status: that of the test runs.
#
# Each scenario starts its own PostgreSQL cluster (initdb + pg_ctl, Unix socket only) and
# signpost processes on 127.0.0.1; the container test runs inside `unshare --net --mount --pid`
# (root, util-linux, iproute2 and a freezer cgroup needed). Nothing leaves the machine.
# Bounded: about 3 minutes of scenarios plus 10 s of containers (plus the build).
set -u
cd "$(dirname "$0")/.."
mkdir -p bench/out
log=bench/out/faults.log
filter="${1:-}"

status=0
{
    timeout 600 cargo test --test faults -- --include-ignored --nocapture --test-threads=1 $filter || status=$?
    if [ -z "$filter" ]; then
        timeout 300 cargo test --test containers -- --nocapture || status=$?
    fi
} >"$log" 2>&1 || true

echo "## Fault scenarios ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo
echo "| scenario | canary sent | wrong | lost | SERVFAIL/REFUSED | correct | p99 | max | time to recover | usage counts lost | notes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
# With --nocapture a row may follow libtest's "test NAME ... " on the same line.
grep -ao 'FAULTS-ROW .*' "$log" | sed 's/^FAULTS-ROW //'
if grep -aq 'CONTAINERS-ROW' "$log"; then
    echo
    echo "## Container failover (netns + veth + bridge + freezer cgroup)"
    echo
    echo "| step | time to DNS answer |"
    echo "| --- | ---: |"
    grep -ao 'CONTAINERS-ROW .*' "$log" | sed 's/^CONTAINERS-ROW //'
fi
echo
echo "## Results"
echo
grep -a '^test result:' "$log" | sed 's/^/    /'
failed=$(awk '/^failures:$/ {f = 1; next} /^test result:/ {f = 0} f && /^    [a-z0-9_]+$/ {print}' "$log" | sort -u)
if [ -n "$failed" ]; then
    echo
    echo "Failed:"
    echo "$failed"
fi
broken=$(grep -a -A8 'broken promises:' "$log" | grep -aE 'broken promises:|^- ')
if [ -n "$broken" ]; then
    echo
    echo "## Broken promises"
    echo
    echo "$broken" | sed 's/^/    /'
fi
echo
echo "(full output: $log)"
exit $status
