-- Dynamic Client Registration (RFC 7591/7592; docs/integration/registration.md).
-- One-time initial access tokens an administrator issues to a department: stored as their SHA-256,
-- used once, within their lifetime.
CREATE TABLE registration_tokens (
    hash        BLOB PRIMARY KEY NOT NULL,
    department  TEXT,
    issued_by   TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    client_id   TEXT
) STRICT;

-- A client registered through the endpoint waits for an administrator's approval: until then it
-- signs nobody in and gets no token.
ALTER TABLE clients ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
-- RFC 7592 §3: the registration access token that reads, updates and deletes the client (its SHA-256).
ALTER TABLE clients ADD COLUMN registration_token_hash BLOB;

-- A client's self-check lists the last refusals yihao gave it (docs/integration/README.md).
CREATE INDEX audit_log_client ON audit_log (client_id, seq);
