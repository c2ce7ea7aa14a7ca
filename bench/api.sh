#!/usr/bin/env bash
# Control-API benchmark: change-batch throughput (batches/s, latency
# percentiles) and the time from a committed change to its DNS answer.
#
#   bench/api.sh                              # build, then measure
#   SKIP_BUILD=1 BATCHES=500 bench/api.sh     # quicker
#
# Settings: BATCHES (per throughput run, default 2000), CONCURRENCY (clients,
# default 4), CHANGES (commit-to-answer samples, default 200), PGHOST/PGPORT/
# PGUSER (default 127.0.0.1:5432, postgres). Each run makes its own database
# (signpost_bench_api_<pid>) and drops it at the end. Traffic stays on
# 127.0.0.1. Needs python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")/.."

batches=${BATCHES:-2000}
concurrency=${CONCURRENCY:-4}
changes=${CHANGES:-200}
pg="postgres://${PGUSER:-postgres}@${PGHOST:-127.0.0.1}:${PGPORT:-5432}"
db="signpost_bench_api_$$"
out=bench/out
mkdir -p "$out"

if ! pg_isready -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$version" main start || true; done
  fi
fi
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin signpost
bin=target/release/signpost

pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

export DATABASE_URL="$pg/$db"
export RUST_LOG=warn
# No example zones, no rate limit: the API and the database are what is measured.
"$bin" serve --dns-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 --zones-dir /nonexistent \
  --api-rate-limit 0 >"$out/api-server.out" 2>"$out/api-server.log" &
pid=$!
api="" dns=""
for _ in $(seq 1 300); do
  api=$(sed -n 's/^api listening on //p' "$out/api-server.out")
  dns=$(sed -n 's/^dns listening on //p' "$out/api-server.out")
  [ -n "$api" ] && [ -n "$dns" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/api-server.log"; exit 1; }
  sleep 0.1
done
[ -n "$api" ] || { echo "signpost did not start" >&2; exit 1; }
key=$("$bin" accounts create bench | python3 -c 'import json, sys; print(json.load(sys.stdin)["apiKey"])')

echo "signpost $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, api $api, dns $dns"
python3 - "$api" "$dns" "$key" "$batches" "$concurrency" "$changes" <<'PY'
import http.client, json, random, socket, struct, sys, threading, time

api, dns, key = sys.argv[1], sys.argv[2], sys.argv[3]
batches, concurrency, changes = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
api_host, api_port = api.rsplit(":", 1)
dns_addr = (dns.rsplit(":", 1)[0], int(dns.rsplit(":", 1)[1]))
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

def connect():
    return http.client.HTTPConnection(api_host, int(api_port), timeout=30)

def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None

def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]

def batch(name, ip):
    return {"changes": [{"action": "CREATE", "rrset": {"name": name, "type": "A", "ttl": 60, "records": [ip]}}]}

def upsert(name, ip):
    return {"changes": [{"action": "UPSERT", "rrset": {"name": name, "type": "A", "ttl": 60, "records": [ip]}}]}

def throughput(label, zone_for_worker, make=batch, fixed_name=False):
    per = batches // concurrency
    lat = [[] for _ in range(concurrency)]
    def worker(w):
        conn = connect()
        zone, apex = zone_for_worker(w)
        for i in range(per):
            t = time.perf_counter()
            name = f"w{w}.{apex}" if fixed_name else f"w{w}-{i}.{apex}"
            call(conn, "POST", f"/v1/zones/{zone}/changes", make(name, f"10.{w}.{i // 250}.{i % 250 + 1}"))
            lat[w].append(time.perf_counter() - t)
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - start
    all_lat = [x for l in lat for x in l]
    print(f"| {label} | {concurrency} | {len(all_lat)} | {len(all_lat) / wall:,.0f} | "
          f"{pct(all_lat, 50) * 1000:.1f} | {pct(all_lat, 99) * 1000:.1f} | {max(all_lat) * 1000:.1f} |")

conn = connect()
shared = call(conn, "POST", "/v1/zones", {"name": "shared.bench-api.test."})
own = [call(conn, "POST", "/v1/zones", {"name": f"w{w}.bench-api.test."}) for w in range(concurrency)]
print()
fixed = [call(conn, "POST", "/v1/zones", {"name": f"u{w}.bench-api.test."}) for w in range(concurrency)]
print("| batches of one change | clients | batches | batches/s | p50 ms | p99 ms | max ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
throughput("CREATE, one zone for all clients (grows to BATCHES sets)", lambda w: (shared["id"], shared["name"]))
throughput("CREATE, a zone per client (each grows to BATCHES/clients)", lambda w: (own[w]["id"], own[w]["name"]))
throughput("UPSERT of one name, a zone per client (stays 3 sets)", lambda w: (fixed[w]["id"], fixed[w]["name"]),
           make=upsert, fixed_name=True)

def query(name):
    qid = random.randrange(65536)
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return qid, struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack(">HH", 1, 1)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(0.2)
def answered(name):
    qid, packet = query(name)
    sock.sendto(packet, dns_addr)
    while True:
        try:
            data, _ = sock.recvfrom(4096)
        except socket.timeout:
            return False
        rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
        if rid == qid:
            return (flags & 0xF) == 0 and ancount > 0

zone = call(conn, "POST", "/v1/zones", {"name": "lag.bench-api.test."})
answered("probe.lag.bench-api.test.")
lags, polls = [], []
for i in range(changes):
    name = f"c{i}.lag.bench-api.test."
    call(conn, "POST", f"/v1/zones/{zone['id']}/changes", batch(name, f"192.0.2.{i % 250 + 1}"))
    committed = time.perf_counter()  # the API answers after COMMIT
    n = 0
    while not answered(name):
        n += 1
        if time.perf_counter() - committed > 5:
            raise SystemExit(f"{name} not answered within 5 s")
        time.sleep(0.0005)
    lags.append(time.perf_counter() - committed)
    polls.append(n)
print()
print("| commit → DNS answer | changes | p50 ms | p99 ms | max ms | answered on the first query |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
first = sum(1 for n in polls if n == 0)
print(f"| sequential CREATEs, UDP polling every 0.5 ms | {len(lags)} | {pct(lags, 50) * 1000:.2f} | "
      f"{pct(lags, 99) * 1000:.2f} | {max(lags) * 1000:.2f} | {first} of {len(lags)} |")
PY
