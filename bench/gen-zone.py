#!/usr/bin/env python3
"""Generate the benchmark zone (bench.test., 10,000 records) and a dnsperf query file.

Usage: bench/gen-zone.py [OUT_DIR] [--records N] [--queries N] [--seed S]

Writes, into OUT_DIR (default: bench/out next to this script):
  bench.test.zone   RFC 1035 master file, fully qualified owner names, exactly N records
                    (resource records, counting SOA, NS and their A records)
  queries.txt       dnsperf input, one "NAME TYPE" per line
  expected.txt      how many lines of queries.txt should get NOERROR / NXDOMAIN
                    ("RCODE COUNT" per line), for the harness's sanity check

Deterministic: the zone depends only on N, the query file only on N, the query count and the
seed (default 42). Standard library only.
"""
import argparse
import os
import random

ORIGIN = "bench.test."
TTL = 3600

# Shares of the non-A records, as counts derived from the total (at 10,000 records:
# 500 AAAA, 200 TXT, 100 MX names, 200 CNAME aliases; the rest are host A records).
def layout(total):
    n_aaaa = total // 20          # hosts that have an AAAA as well (spread evenly)
    n_txt = total // 50           # hosts that have a TXT as well (spread evenly)
    n_mx = total // 100           # mxN.bench.test. MX 10 hostN.bench.test.
    n_cname = total // 50         # aliasN.bench.test. CNAME hostM.bench.test.
    return n_aaaa, n_txt, n_mx, n_cname


def v4(i):
    # one address per host in 10.0.0.0/8
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def build_zone(total):
    n_aaaa, n_txt, n_mx, n_cname = layout(total)
    rr = []

    def add(name, rtype, rdata):
        rr.append(f"{name} {TTL} IN {rtype} {rdata}")

    o = ORIGIN
    add(o, "SOA", f"ns1.{o} hostmaster.{o} 2024010101 3600 900 604800 300")
    add(o, "NS", f"ns1.{o}")
    add(o, "NS", f"ns2.{o}")
    add(f"ns1.{o}", "A", "192.0.2.53")
    add(f"ns2.{o}", "A", "192.0.2.54")
    add(o, "MX", f"10 mail.{o}")
    add(o, "MX", f"20 mail2.{o}")
    add(o, "TXT", '"v=spf1 mx -all"')
    add(f"mail.{o}", "A", "192.0.2.25")
    add(f"mail2.{o}", "A", "192.0.2.26")
    add(f"www.{o}", "CNAME", f"host0.{o}")
    add(f"*.wild.{o}", "A", "192.0.2.99")
    add(f"*.wild.{o}", "TXT", '"wildcard"')
    fixed = len(rr)

    n_hosts = total - fixed - n_aaaa - n_txt - n_mx - n_cname
    if n_hosts < 100:
        raise SystemExit(f"--records {total} is too small")
    # every host name has an A record; some have AAAA / TXT too
    aaaa_hosts = [i * (n_hosts // n_aaaa) for i in range(n_aaaa)]
    txt_hosts = [i * (n_hosts // n_txt) + 1 for i in range(n_txt)]
    for i in range(n_hosts):
        add(f"host{i}.{o}", "A", v4(i))
    for i in aaaa_hosts:
        add(f"host{i}.{o}", "AAAA", f"2001:db8::{i >> 16:x}:{i & 0xffff:x}")
    for i in txt_hosts:
        add(f"host{i}.{o}", "TXT", f'"host {i}" "bench record"')
    for i in range(n_mx):
        add(f"mx{i}.{o}", "MX", f"10 host{i}.{o}")
    for i in range(n_cname):
        # targets spread over the hosts, always in-zone A records
        add(f"alias{i}.{o}", "CNAME", f"host{(i * 37) % n_hosts}.{o}")
    assert len(rr) == total, (len(rr), total)
    info = dict(n_hosts=n_hosts, aaaa_hosts=aaaa_hosts, txt_hosts=txt_hosts,
                n_mx=n_mx, n_cname=n_cname)
    return rr, info


def build_queries(info, count, seed):
    """The mix: 85% A hits, 3% AAAA, 2% MX, 2% TXT, 2% CNAME (chased to an in-zone A),
    1% wildcard, 5% NXDOMAIN. Returns (lines, {rcode: count})."""
    rnd = random.Random(seed)
    o = ORIGIN.rstrip(".")
    lines = []
    expected = {"NOERROR": 0, "NXDOMAIN": 0}
    for _ in range(count):
        r = rnd.random()
        rc = "NOERROR"
        if r < 0.85:
            lines.append(f"host{rnd.randrange(info['n_hosts'])}.{o} A")
        elif r < 0.88:
            lines.append(f"host{rnd.choice(info['aaaa_hosts'])}.{o} AAAA")
        elif r < 0.90:
            if rnd.random() < 0.1:
                lines.append(f"{o} MX")
            else:
                lines.append(f"mx{rnd.randrange(info['n_mx'])}.{o} MX")
        elif r < 0.92:
            lines.append(f"host{rnd.choice(info['txt_hosts'])}.{o} TXT")
        elif r < 0.94:
            lines.append(f"alias{rnd.randrange(info['n_cname'])}.{o} A")
        elif r < 0.95:
            lines.append(f"x{rnd.randrange(1_000_000)}.wild.{o} A")
        else:
            lines.append(f"nx{rnd.randrange(1_000_000)}.{o} A")
            rc = "NXDOMAIN"
        expected[rc] += 1
    return lines, expected


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=os.path.join(here, "out"))
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    rr, info = build_zone(a.records)
    zone_path = os.path.join(a.out, "bench.test.zone")
    with open(zone_path, "w") as f:
        f.write(f"; generated by bench/gen-zone.py --records {a.records}\n")
        f.write(f"$ORIGIN {ORIGIN}\n$TTL {TTL}\n")
        f.write("\n".join(rr) + "\n")

    lines, expected = build_queries(info, a.queries, a.seed)
    with open(os.path.join(a.out, "queries.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "expected.txt"), "w") as f:
        for rc, n in expected.items():
            f.write(f"{rc} {n}\n")
    print(f"wrote {zone_path} ({len(rr)} records, {info['n_hosts']} hosts) and "
          f"{len(lines)} queries (seed {a.seed})")


if __name__ == "__main__":
    main()
