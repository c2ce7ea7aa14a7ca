//! signpost-health: the health checker (probes, schedule, hysteresis, verdicts). Filled by the health-checker issue.
