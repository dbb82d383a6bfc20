-- Registered OAuth 2.0 / OpenID Connect clients. Lists are JSON arrays of strings (RFC 7591 values).
-- Secrets are stored only as SHA-256 (DESIGN.md §4); during a rotation the previous one stays valid
-- until previous_secret_expires_at (epoch seconds).
CREATE TABLE clients (
    id                          TEXT PRIMARY KEY NOT NULL,
    name                        TEXT NOT NULL,
    auth_method                 TEXT NOT NULL,
    redirect_uris               TEXT NOT NULL,
    post_logout_redirect_uris   TEXT NOT NULL,
    grant_types                 TEXT NOT NULL,
    scopes                      TEXT NOT NULL,
    first_party                 INTEGER NOT NULL,
    secret_hash                 BLOB,
    previous_secret_hash        BLOB,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
) STRICT;
