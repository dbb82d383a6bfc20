-- The key root: the 32 bytes every key protecting data at rest is derived from, wrapped (AES-256-GCM)
-- under the configured master key, so the master key can be rotated by re-wrapping this one row.
CREATE TABLE key_root (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    wrapped BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
