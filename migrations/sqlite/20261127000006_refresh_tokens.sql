-- Refresh tokens (RFC 6749 §6), stored only as SHA-256. Every refresh rotates: the used token is
-- marked, a new one joins the same family; presenting a used token again revokes the whole family
-- (RFC 9700 §4.14.2). expires_at is the idle limit of this token, family_expires_at the absolute one.
CREATE TABLE refresh_tokens (
    token_hash         BLOB PRIMARY KEY NOT NULL,
    family_id          TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    account_id         TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    grant_json         TEXT NOT NULL,
    issued_at          INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    family_expires_at  INTEGER NOT NULL,
    used_at            INTEGER,
    revoked_at         INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
