-- client_secret_jwt (OIDC Core §9, RFC 7523) signs with the secret itself, so for clients registered
-- with that method only, the secret is also kept sealed (AES-256-GCM under a key derived from the
-- master key, AAD = the client id); every other client keeps only the SHA-256 (DESIGN.md §2).
ALTER TABLE clients ADD COLUMN secret_sealed BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_sealed BLOB;
