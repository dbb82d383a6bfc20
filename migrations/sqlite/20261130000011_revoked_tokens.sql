-- Revoked access tokens (RFC 7009), by `jti`, kept until the token would have expired: a revocation
-- answered 200 holds whatever happens to the cache. Pruned by each node's sweeper after `expires_at`.
CREATE TABLE revoked_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
