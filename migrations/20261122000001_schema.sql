-- Signpost's one schema: every table the DNS server, the control API, the
-- health checker and the usage counters share. Names are stored lower-case,
-- fully qualified, with the trailing dot.

-- Public ids look like Route 53's: a letter for the kind, then 20 characters.
CREATE FUNCTION signpost_new_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT prefix || upper(substr(replace(gen_random_uuid()::text, '-', ''), 1, 20))
$$;

CREATE TABLE accounts (
    id          text PRIMARY KEY DEFAULT signpost_new_id('A'),
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are random secrets shown once; only their SHA-256 is kept.
CREATE TABLE api_keys (
    id          text PRIMARY KEY DEFAULT signpost_new_id('K'),
    account_id  text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        text,
    key_hash    bytea NOT NULL UNIQUE,
    read_only   boolean NOT NULL DEFAULT false,
    -- NULL: every zone of the account; otherwise only these zones.
    zone_ids    text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE hosted_zones (
    id          text PRIMARY KEY DEFAULT signpost_new_id('Z'),
    account_id  text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- One DNS server set cannot serve two owners of one name.
    name        text NOT NULL UNIQUE,
    comment     text,
    -- Rises with every change to the zone; the SOA's serial is this value.
    serial      bigint NOT NULL DEFAULT 1,
    caller_reference text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hosted_zones_account ON hosted_zones (account_id, id);

CREATE TABLE health_checks (
    id                  text PRIMARY KEY DEFAULT signpost_new_id('H'),
    account_id          text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    type                text NOT NULL CHECK (type IN ('HTTP', 'HTTPS', 'TCP', 'CALCULATED')),
    ip                  inet,
    host                text,
    port                integer CHECK (port BETWEEN 1 AND 65535),
    path                text,
    search_string       text,
    request_interval    integer NOT NULL DEFAULT 30 CHECK (request_interval BETWEEN 1 AND 300),
    failure_threshold   integer NOT NULL DEFAULT 3 CHECK (failure_threshold BETWEEN 1 AND 10),
    inverted            boolean NOT NULL DEFAULT false,
    disabled            boolean NOT NULL DEFAULT false,
    child_health_checks text[] NOT NULL DEFAULT '{}',
    health_threshold    integer,
    -- Operator's maintenance override: NULL, 'HEALTHY' or 'UNHEALTHY'.
    override_state      text CHECK (override_state IN ('HEALTHY', 'UNHEALTHY')),
    caller_reference    text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_checks_account ON health_checks (account_id, id);

-- Health checker processes; one that stops heartbeating stops counting.
CREATE TABLE health_checkers (
    id            text PRIMARY KEY,
    region        text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);

-- The latest state each checker holds for each check (after its threshold).
CREATE TABLE health_observations (
    check_id        text NOT NULL REFERENCES health_checks(id) ON DELETE CASCADE,
    checker_id      text NOT NULL REFERENCES health_checkers(id) ON DELETE CASCADE,
    healthy         boolean NOT NULL,
    last_checked_at timestamptz NOT NULL,
    latency_ms      real,
    last_error      text,
    PRIMARY KEY (check_id, checker_id)
);

-- History of state flips, with the reason (timeout, refused, status 503, ...).
CREATE TABLE health_state_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_id    text NOT NULL REFERENCES health_checks(id) ON DELETE CASCADE,
    checker_id  text NOT NULL,
    healthy     boolean NOT NULL,
    reason      text,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_state_changes_check ON health_state_changes (check_id, id);

CREATE TABLE cidr_collections (
    id          text PRIMARY KEY DEFAULT signpost_new_id('C'),
    account_id  text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE cidr_locations (
    collection_id text NOT NULL REFERENCES cidr_collections(id) ON DELETE CASCADE,
    name          text NOT NULL,
    cidrs         cidr[] NOT NULL,
    PRIMARY KEY (collection_id, name)
);

-- Cloud regions and their coordinates (latency and geoproximity routing).
-- account_id NULL: the built-in table; an account may add or override.
CREATE TABLE regions (
    account_id  text REFERENCES accounts(id) ON DELETE CASCADE,
    code        text NOT NULL,
    latitude    double precision NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision NOT NULL CHECK (longitude BETWEEN -180 AND 180)
);
CREATE UNIQUE INDEX regions_key ON regions (coalesce(account_id, ''), code);

-- A measured latency table per account: client network -> region -> ms.
CREATE TABLE latency_entries (
    account_id  text NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    cidr        cidr NOT NULL,
    region      text NOT NULL,
    latency_ms  real NOT NULL CHECK (latency_ms >= 0),
    PRIMARY KEY (account_id, cidr, region)
);

-- Record sets. Name and type with different set identifiers form a policy
-- group; at most one routing policy per group (checked by the API).
CREATE TABLE record_sets (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id                 text NOT NULL REFERENCES hosted_zones(id) ON DELETE CASCADE,
    name                    text NOT NULL,
    type                    text NOT NULL,
    set_identifier          text,
    -- NULL for alias record sets, which take the target's TTL.
    ttl                     integer CHECK (ttl BETWEEN 0 AND 2147483647),
    records                 text[] NOT NULL DEFAULT '{}',
    weight                  integer CHECK (weight BETWEEN 0 AND 255),
    region                  text,
    geo_continent           text,
    geo_country             text,
    geo_subdivision         text,
    geoproximity_region     text,
    geoproximity_latitude   double precision,
    geoproximity_longitude  double precision,
    geoproximity_bias       integer CHECK (geoproximity_bias BETWEEN -99 AND 99),
    failover                text CHECK (failover IN ('PRIMARY', 'SECONDARY')),
    multivalue_answer       boolean NOT NULL DEFAULT false,
    health_check_id         text REFERENCES health_checks(id),
    cidr_collection_id      text REFERENCES cidr_collections(id),
    cidr_location           text,
    alias_target_name       text,
    alias_evaluate_target_health boolean,
    -- What the group answers when every member is unhealthy:
    -- NULL/'ANSWER_ALL' (Route 53), 'NODATA' or 'SERVFAIL'.
    all_unhealthy           text CHECK (all_unhealthy IN ('ANSWER_ALL', 'NODATA', 'SERVFAIL')),
    CHECK ((alias_target_name IS NULL) = (ttl IS NOT NULL))
);
CREATE UNIQUE INDEX record_sets_key
    ON record_sets (zone_id, name, type, coalesce(set_identifier, ''));

-- The change log: one row per committed batch, in commit order. DNS servers
-- apply it in `seq` order; NOTIFY signpost_changes carries the seq.
CREATE TABLE changes (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            text NOT NULL UNIQUE DEFAULT signpost_new_id('C'),
    account_id    text,
    -- The zone whose content changed (NULL for changes that are not a zone's).
    zone_id       text,
    -- 'ZONE' (record sets or the zone itself), 'ZONE_DELETED', 'HEALTH', 'ROUTING'.
    kind          text NOT NULL,
    comment       text,
    submitted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_zone ON changes (zone_id, seq);

-- One row per DNS server process: what it has applied, and that it lives.
CREATE TABLE dns_servers (
    id                text PRIMARY KEY,
    hostname          text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    last_change_seq   bigint NOT NULL DEFAULT 0
);

-- Query counts per zone, month (first day, UTC) and category.
CREATE TABLE usage_counters (
    zone_id   text NOT NULL,
    month     date NOT NULL,
    category  text NOT NULL CHECK (category IN ('standard', 'latency', 'geolocation', 'geoproximity', 'ipBased')),
    queries   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (zone_id, month, category)
);

-- Flushes already applied, so that a retried flush counts once.
CREATE TABLE usage_flushes (
    server_id   text NOT NULL,
    seq         bigint NOT NULL,
    flushed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, seq)
);
