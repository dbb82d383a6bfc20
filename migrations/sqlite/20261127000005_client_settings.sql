-- Per-client token settings: id_token_signed_response_alg (RS256, ES256, EdDSA) and token lifetimes
-- in seconds. NULL means the server's default ([tokens] in the configuration).
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;
ALTER TABLE clients ADD COLUMN access_token_secs INTEGER;
ALTER TABLE clients ADD COLUMN id_token_secs INTEGER;
-- Whether the client may receive the full mobile number (granted by an administrator; masked otherwise).
ALTER TABLE clients ADD COLUMN full_phone INTEGER NOT NULL DEFAULT 0;
-- The access token's algorithm for this client (RS256, ES256, EdDSA); NULL: tokens.access_token_alg.
ALTER TABLE clients ADD COLUMN access_token_signed_response_alg TEXT;
-- Resource indicators (RFC 8707) the client may ask tokens for: a JSON array of URIs.
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
-- private_key_jwt (RFC 7523): the client's public keys, inline (a JWK Set document) or by URL.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- OIDC Back-Channel Logout 1.0 §2.2.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
-- OIDC Front-Channel Logout 1.0 §2.
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;
