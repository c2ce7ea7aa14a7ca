-- Access key pairs for Route 53's REST API (SigV4). An API key is either a
-- bearer key (its SHA-256 in key_hash) or an AWS access key pair: the access
-- key id in the clear (it is sent with every request) and the secret sealed
-- with the installation's master key (the server needs the secret itself to
-- verify signatures). kek_id names the master key that sealed it, key_version
-- the sealing scheme, so that keys can be rotated.
ALTER TABLE api_keys
    ADD COLUMN kind text NOT NULL DEFAULT 'bearer' CHECK (kind IN ('bearer', 'aws')),
    ADD COLUMN access_key_id text UNIQUE CHECK (access_key_id ~ '^AKIA[A-Z0-9]{16}$'),
    ADD COLUMN secret_nonce bytea,
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN kek_id text,
    ADD COLUMN key_version smallint,
    ALTER COLUMN key_hash DROP NOT NULL;

ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind_fields CHECK (
    CASE kind
        WHEN 'bearer' THEN key_hash IS NOT NULL AND access_key_id IS NULL AND secret_sealed IS NULL
        ELSE key_hash IS NULL AND access_key_id IS NOT NULL AND secret_nonce IS NOT NULL
             AND secret_sealed IS NOT NULL AND kek_id IS NOT NULL AND key_version IS NOT NULL
    END
);
