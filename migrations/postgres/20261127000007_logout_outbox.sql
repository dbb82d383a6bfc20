-- Back-channel logout deliveries (OIDC Back-Channel Logout 1.0), durable so they survive restarts
-- and relying parties that are down. A node claims due rows (claimed_until) so two nodes never send
-- the same one at once; each attempt signs a fresh logout token from sub/sid; failures back off
-- exponentially until a give-up limit; the outcome stays recorded.
CREATE TABLE logout_outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri              TEXT NOT NULL,
    sub              TEXT NOT NULL,
    sid              TEXT,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    claimed_until    BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX logout_outbox_due ON logout_outbox (status, next_attempt_at);
