//! Usage counters: idempotent flushes of per-server query deltas.
