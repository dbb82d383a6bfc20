-- People, their identity documents and passwords; organisations and the roles people hold in them.
-- ID numbers, phone numbers and legacy user ids are never stored in plain text: *_sealed columns hold
-- AES-256-GCM ciphertext (version-prefixed, see src/crypto/pii.rs) and *_index columns a keyed
-- HMAC-SHA256 blind index used for look-ups. pii_version says which key sealed the row, so
-- `yihao keys rotate-pii` finds what to re-seal. Names are stored but never indexed.
CREATE TABLE accounts (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    phone_index   BLOB UNIQUE,
    phone_sealed  BLOB,
    email         TEXT,
    level         INTEGER NOT NULL,
    proof_method  TEXT NOT NULL,
    proof_source  TEXT NOT NULL,
    proof_at      INTEGER NOT NULL,
    status        TEXT NOT NULL,
    pii_version   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX accounts_pii_version ON accounts (pii_version);

CREATE TABLE account_documents (
    number_index   BLOB PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    country        TEXT NOT NULL,
    number_sealed  BLOB NOT NULL,
    alias_index    BLOB UNIQUE,
    alias_sealed   BLOB,
    pii_version    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX account_documents_account ON account_documents (account_id);
CREATE INDEX account_documents_pii_version ON account_documents (pii_version);

CREATE TABLE credentials (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    changed_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE password_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX password_history_account ON password_history (account_id, id);

CREATE TABLE legacy_ids (
    source       TEXT NOT NULL,
    user_index   BLOB NOT NULL,
    user_sealed  BLOB NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pii_version  INTEGER NOT NULL,
    PRIMARY KEY (source, user_index)
) STRICT;
CREATE INDEX legacy_ids_account ON legacy_ids (account_id);
CREATE INDEX legacy_ids_pii_version ON legacy_ids (pii_version);

CREATE TABLE organisations (
    id           TEXT PRIMARY KEY NOT NULL,
    credit_code  TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE org_members (
    org_id      TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    expires_at  INTEGER,
    granted_by  TEXT,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, account_id, role)
) STRICT;
CREATE INDEX org_members_account ON org_members (account_id);
-- One legal representative per organisation.
CREATE UNIQUE INDEX org_members_one_legal_representative ON org_members (org_id)
    WHERE role = 'legal_representative';
