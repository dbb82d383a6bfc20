-- The channel a client serves people through (web = the online service hall, app, kiosk, window,
-- system); sessions record it.
ALTER TABLE clients ADD COLUMN channel TEXT NOT NULL DEFAULT 'web';

-- Single sign-on sessions, durably. The live session (idle timer, cookie) stays in the ephemeral
-- store; this row is what administrators list and end from the CLI, what password changes and expiry
-- end, and what back-channel logout fans out from: the clients that received tokens in it. sid is
-- the public session id, itself a hash of the cookie secret (DESIGN.md §2). Ended rows are kept for
-- session.keep_ended_secs, then pruned (the audit log keeps the long record).
CREATE TABLE sessions (
    sid           TEXT PRIMARY KEY NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    channel       TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    clients       TEXT NOT NULL,
    ip            TEXT,
    user_agent    TEXT,
    level         BIGINT NOT NULL,
    amr           TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT
);
CREATE INDEX sessions_account ON sessions (account_id, created_at);
CREATE INDEX sessions_open ON sessions (last_seen_at) WHERE ended_at IS NULL;
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
