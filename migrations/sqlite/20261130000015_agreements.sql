-- What a person agreed to, and which version (registration: the terms of service, the privacy notice,
-- and the separate consent to process sensitive personal information, PIPL art. 29). Kept with the
-- account; erased with it.
CREATE TABLE account_agreements (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    version     TEXT NOT NULL,
    agreed_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind, version)
) STRICT;
