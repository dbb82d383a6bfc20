-- Second factors (docs/assurance.md): TOTP secrets and passkeys, sealed like other personal data,
-- with what replay and clone detection need: `counter` is the last accepted TOTP time step, or a
-- passkey's signature counter; a value only ever moves forward.
CREATE TABLE account_factors (
    id               TEXT PRIMARY KEY NOT NULL,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    label            TEXT NOT NULL,
    credential_id    TEXT UNIQUE,
    secret           BYTEA NOT NULL,
    counter          BIGINT NOT NULL,
    backup_eligible  BOOLEAN NOT NULL,
    backup_state     BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    last_used_at     BIGINT
);
CREATE INDEX account_factors_by_account ON account_factors (account_id);

-- One-time recovery codes, stored only as keyed hashes; a used one keeps its row until the set is
-- replaced, so a second use is told apart from a wrong code in the audit log.
CREATE TABLE account_recovery_codes (
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- Accounts that must sign in with two factors whatever the client asks (docs/assurance.md,
-- "The two-factor rule"); the administrator roles (a later migration) will set it too.
CREATE TABLE account_second_factor_policy (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    set_at      BIGINT NOT NULL
);

-- The lowest real-name level a client's users must reach (a tax or social-security service can
-- require 3); NULL: none beyond what each request asks.
ALTER TABLE clients ADD COLUMN min_level BIGINT;
