-- What each person agreed to release to each client (OIDC Core §3.1.2.4), so the consent page is
-- shown again only when a client asks for more. scopes is a JSON array of scope values.
CREATE TABLE consents (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_id)
) STRICT;
