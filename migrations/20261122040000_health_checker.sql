-- The health checker (issue 4).

-- A checker's state for a check counts toward the verdict only once it is
-- settled: after `failure_threshold` consecutive results (Route 53: a check
-- is healthy until there is enough data). Until then the row still shows
-- the checker's latest probe (time, latency, error) in the status.
-- Rows written by other means count at once (default true).
ALTER TABLE health_observations ADD COLUMN settled boolean NOT NULL DEFAULT true;

-- Idempotent creation: one check per caller reference and account.
CREATE UNIQUE INDEX health_checks_caller_reference
    ON health_checks (account_id, caller_reference) WHERE caller_reference IS NOT NULL;

-- Checks that name a child (deleting a child in use is refused).
CREATE INDEX health_checks_children ON health_checks USING gin (child_health_checks);

-- Record sets gated by a check (deleting a check in use is refused).
CREATE INDEX record_sets_health_check ON record_sets (health_check_id) WHERE health_check_id IS NOT NULL;
