-- Token signing keys, shared by every node. private_sealed is the PKCS#8 private key sealed with
-- AES-256-GCM under a key derived from keys.master_key (the associated data is the kid). A key is
-- published from created_at, signs from not_before, stops signing at retired_at, and leaves the
-- JWKS once every token it signed has expired.
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY NOT NULL,
    alg             TEXT NOT NULL,
    private_sealed  BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    not_before      BIGINT NOT NULL,
    retired_at      BIGINT
);
