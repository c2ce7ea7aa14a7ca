-- Tenancy (issue 9): an index for the zone-overlap rule, CIDR collection ids
-- of their own shape, and the installation's health-check target policy.

-- Zones below a name: `reverse(name)` starts with `reverse('.' || apex)`.
-- A range over this C-collated expression index answers it without a
-- sequential scan (ancestors use the unique index on name).
CREATE INDEX hosted_zones_reverse_name ON hosted_zones ((reverse(name)) COLLATE "C");

-- CIDR collections shared the `C` prefix with changes; new ones get a UUID,
-- like Route 53's CollectionId. Existing `C…` ids keep working.
ALTER TABLE cidr_collections ALTER COLUMN id SET DEFAULT gen_random_uuid()::text;

-- One row: which addresses health checks may target, enforced by the API at
-- creation and by every checker before every connection.
CREATE TABLE health_target_policy (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- NULL: loopback only for processes in local mode (`serve`, or
    -- `--allow-private-targets`); true/false: the same for every process.
    allow_loopback    boolean,
    allow_private     boolean NOT NULL DEFAULT true,
    allow_link_local  boolean NOT NULL DEFAULT false,
    allow_metadata    boolean NOT NULL DEFAULT false,
    -- Exceptions: refused networks win over everything, allowed ones over
    -- the class flags (never over unspecified, multicast, documentation or
    -- reserved space).
    allowed_networks  cidr[] NOT NULL DEFAULT '{}',
    refused_networks  cidr[] NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO health_target_policy DEFAULT VALUES;

-- A change of the target policy is a change-log row of its own kind: every
-- checker follows the log, reloads the policy and judges every check again.
ALTER TABLE changes DROP CONSTRAINT changes_kind_known;
ALTER TABLE changes ADD CONSTRAINT changes_kind_known
    CHECK (kind IN ('ZONE', 'ZONE_DELETED', 'HEALTH', 'ROUTING', 'TARGET_POLICY'));
