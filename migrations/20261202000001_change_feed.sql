-- The change log is read by position: a reader that has applied everything up
-- to seq N asks for `seq > N`. That is only gap-free when seq order is commit
-- order, so appends are serialized: every writer takes one transaction-scoped
-- advisory lock just before it inserts into `changes` and holds it to COMMIT
-- (store/src/feed.rs `append`). A later seq can then only be handed out after
-- the transaction holding the earlier one has committed (or rolled back), so
-- no row below a visible seq can become visible later.
--
-- The statement trigger below takes the same lock for any INSERT into
-- `changes` (a writer outside the store, a psql session), before the identity
-- value is drawn, so the order holds by construction. Key: 'signpost' in ASCII.
CREATE FUNCTION signpost_lock_change_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(8316291910946747252);
    RETURN NULL;
END;
$$;
CREATE TRIGGER changes_serialize_appends BEFORE INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION signpost_lock_change_log();

COMMENT ON TABLE changes IS
    'The change log: one row per committed change, seq in commit order (appends serialized by an advisory lock).';

-- The kinds the readers know (store/src/feed.rs `ChangeKind`).
ALTER TABLE changes ADD CONSTRAINT changes_kind_known
    CHECK (kind IN ('ZONE', 'ZONE_DELETED', 'HEALTH', 'ROUTING'));
-- A zone's changes name the zone; the others do not.
ALTER TABLE changes ADD CONSTRAINT changes_zone_for_zone_kinds
    CHECK ((kind IN ('ZONE', 'ZONE_DELETED')) = (zone_id IS NOT NULL));
-- ROUTING changes name the account whose routing data changed.
ALTER TABLE changes ADD CONSTRAINT changes_routing_account
    CHECK (kind <> 'ROUTING' OR account_id IS NOT NULL);

-- The health check a HEALTH change is about, when it is about one (created,
-- deleted, overridden): checkers reload that check. NULL for verdict flips
-- and checkers that stopped.
ALTER TABLE changes ADD COLUMN health_check_id text;
ALTER TABLE changes ADD CONSTRAINT changes_health_check_for_health
    CHECK (health_check_id IS NULL OR kind = 'HEALTH');
