-- A signing key withdrawn at once (`yihao keys revoke`): from `revoked_at` it neither signs, nor is
-- published, nor verifies anything.
ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;
