-- Where a device or counter stands (a kiosk's hall and number), shown when a person approves it
-- through the device authorization grant (RFC 8628 §5.4).
ALTER TABLE clients ADD COLUMN location TEXT;
