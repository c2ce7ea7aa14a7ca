#!/usr/bin/env python3
"""Reads the arrival times written by checker-endpoints.py and reports how
well one checker kept each check on its interval.

Usage: checker-report.py TIMES INTERVAL CHECKS
"""
import json
import sys

times = json.load(open(sys.argv[1]))
interval, checks = float(sys.argv[2]), int(sys.argv[3])
intervals, drifts, worst = [], [], []
for key, arrivals in times.items():
    arrivals.sort()
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    intervals.extend(gaps)
    if gaps:
        worst.append(max(abs(g - interval) / interval for g in gaps))
drifts = sorted(abs(g - interval) / interval for g in intervals)


def pct(values, p):
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


over = sum(1 for w in worst if w > 0.10)
print("checks probed: %d of %d" % (len(times), checks))
print("probes: %d, intervals measured: %d" % (sum(len(a) for a in times.values()), len(intervals)))
if intervals:
    print("interval: mean %.3f s, min %.3f s, max %.3f s" % (sum(intervals) / len(intervals), min(intervals), max(intervals)))
    print("drift from %g s: p50 %.2f%%, p99 %.2f%%, max %.2f%%" % (interval, 100 * pct(drifts, 0.5), 100 * pct(drifts, 0.99), 100 * drifts[-1]))
print("checks with any interval more than 10%% off: %d" % over)
sys.exit(0 if len(times) == checks and over == 0 else 1)
