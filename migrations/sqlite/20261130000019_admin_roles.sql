-- Administrator roles (docs/administration.md): separation of duties (三员). One row per account, so
-- no account holds two roles; a department administrator names the department (its unified social
-- credit code) whose clients it manages.
CREATE TABLE admin_roles (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    department  TEXT,
    granted_at  INTEGER NOT NULL,
    granted_by  TEXT NOT NULL
);
CREATE INDEX admin_roles_by_role ON admin_roles (role);

-- The department that owns a client (its unified social credit code); NULL: the platform's own.
ALTER TABLE clients ADD COLUMN department TEXT;
CREATE INDEX clients_by_department ON clients (department);

-- The security administrator searches accounts by name prefix (docs/administration.md): names are
-- stored in plain text (never indexed before); ID and phone numbers stay behind blind indexes.
CREATE INDEX accounts_by_name ON accounts (name, id);

-- Reports: tokens issued per client, sign-ins per client (docs/administration.md).
CREATE INDEX audit_log_event_at ON audit_log (event, at_ms);

-- Reports: sign-ins per day and channel.
CREATE INDEX sessions_created ON sessions (created_at);
