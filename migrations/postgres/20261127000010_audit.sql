-- The tamper-evident audit log (DOMAIN.md §5, classified protection level 3). One chain: every
-- record's hash = SHA-256(previous record's hash || canonical encoding of the record), in sequence
-- order. Writers append in batches, each batch in one transaction that first locks audit_head (so
-- several nodes interleave whole batches and never fork the chain). Records are never updated; only
-- retention deletes them, and only behind a signed checkpoint. Times are epoch milliseconds.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY NOT NULL,
    at_ms        BIGINT NOT NULL,
    node         TEXT NOT NULL,
    event        TEXT NOT NULL,
    result       TEXT NOT NULL,
    actor        TEXT,
    target       TEXT,
    client_id    TEXT,
    channel      TEXT,
    ip           TEXT,
    user_agent   TEXT,
    acr          TEXT,
    request_id   TEXT,
    reason       TEXT,
    details      TEXT,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- The chain's head: the last sequence number and hash. One row; locking it serialises batches.
CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Signed checkpoints: (seq, hash) of the head at a time, as a JWS by the server's signing key, so a
-- rewritten chain (all hashes recomputed) or a truncated one is detected.
CREATE TABLE audit_checkpoints (
    seq    BIGINT PRIMARY KEY NOT NULL,
    hash   BYTEA NOT NULL,
    at_ms  BIGINT NOT NULL,
    jws    TEXT NOT NULL
);
