-- CAS 3.0 (docs/integration/cas.md). A client may be a CAS service: the service URLs it is known by
-- (a JSON array; an entry ending in `*` is a prefix).
ALTER TABLE clients ADD COLUMN cas_services TEXT NOT NULL DEFAULT '[]';

-- Each service ticket issued in a session, kept until the session ends, so that single logout can send
-- that service a LogoutRequest naming the ticket (its SessionIndex). The ticket is sealed under a
-- server key; stored_key is where the ephemeral store keeps it (its SHA-256), forgotten when the
-- session ends so that a ticket of an ended session validates nothing.
CREATE TABLE cas_tickets (
    ticket      TEXT PRIMARY KEY NOT NULL,
    stored_key  TEXT NOT NULL,
    sid         TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX cas_tickets_by_sid ON cas_tickets (sid);

-- The logout outbox carries CAS LogoutRequests as well as back-channel logout tokens.
ALTER TABLE logout_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'backchannel';
ALTER TABLE logout_outbox ADD COLUMN session_index TEXT;
