-- A booking, its saga and a customer's list are visible only to the client application (API key)
-- that created it; the admin token sees everything (DESIGN.md, authentication; review fixes).
-- `client_id` is the client's name from API_KEYS (`name:key`), or `key_` + a digest of a bare key.
ALTER TABLE booking.bookings ADD COLUMN client_id text;

-- Bookings made before: their creating client is known from the idempotency key that created them
-- (kept 24 h); older ones stay NULL, visible to the admin token only.
UPDATE booking.bookings b SET client_id = k.client
FROM booking.idempotency_keys k
WHERE k.scope = 'POST /v1/bookings' AND k.response_status = 201
    AND (convert_from(k.response_body, 'UTF8')::jsonb ->> 'booking_id') = b.booking_id::text;

CREATE INDEX bookings_by_client_customer ON booking.bookings (client_id, customer_id, created_at DESC, booking_id DESC);
