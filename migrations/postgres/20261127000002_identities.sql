-- People, their identity documents and passwords; organisations and the roles people hold in them.
-- ID numbers, phone numbers and legacy user ids are never stored in plain text: *_sealed columns hold
-- AES-256-GCM ciphertext (version-prefixed, see src/crypto/pii.rs) and *_index columns a keyed
-- HMAC-SHA256 blind index used for look-ups. pii_version says which key sealed the row, so
-- `yihao keys rotate-pii` finds what to re-seal. Names are stored but never indexed.
CREATE TABLE accounts (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    phone_index   BYTEA UNIQUE,
    phone_sealed  BYTEA,
    email         TEXT,
    level         BIGINT NOT NULL,
    proof_method  TEXT NOT NULL,
    proof_source  TEXT NOT NULL,
    proof_at      BIGINT NOT NULL,
    status        TEXT NOT NULL,
    pii_version   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX accounts_pii_version ON accounts (pii_version);

CREATE TABLE account_documents (
    number_index   BYTEA PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    country        TEXT NOT NULL,
    number_sealed  BYTEA NOT NULL,
    alias_index    BYTEA UNIQUE,
    alias_sealed   BYTEA,
    pii_version    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX account_documents_account ON account_documents (account_id);
CREATE INDEX account_documents_pii_version ON account_documents (pii_version);

CREATE TABLE credentials (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);

CREATE TABLE password_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX password_history_account ON password_history (account_id, id);

CREATE TABLE legacy_ids (
    source       TEXT NOT NULL,
    user_index   BYTEA NOT NULL,
    user_sealed  BYTEA NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pii_version  BIGINT NOT NULL,
    PRIMARY KEY (source, user_index)
);
CREATE INDEX legacy_ids_account ON legacy_ids (account_id);
CREATE INDEX legacy_ids_pii_version ON legacy_ids (pii_version);

CREATE TABLE organisations (
    id           TEXT PRIMARY KEY NOT NULL,
    credit_code  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE org_members (
    org_id      TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    expires_at  BIGINT,
    granted_by  TEXT,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, account_id, role)
);
CREATE INDEX org_members_account ON org_members (account_id);
-- One legal representative per organisation.
CREATE UNIQUE INDEX org_members_one_legal_representative ON org_members (org_id)
    WHERE role = 'legal_representative';
