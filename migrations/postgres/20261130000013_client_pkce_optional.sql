-- A confidential client that may leave out PKCE (RFC 7636) although the server requires it
-- (`tokens.require_pkce`, on by default): relying parties that cannot send it yet.
ALTER TABLE clients ADD COLUMN pkce_optional BOOLEAN NOT NULL DEFAULT FALSE;
