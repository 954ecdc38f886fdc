-- The product's schemas: one per service plus `messaging` for the outbox, inbox and dead letters.
-- A service writes only its own schema; later migrations, each owned by one service, fill them.
CREATE SCHEMA IF NOT EXISTS booking;
CREATE SCHEMA IF NOT EXISTS payments;
CREATE SCHEMA IF NOT EXISTS notification;
CREATE SCHEMA IF NOT EXISTS payout;
CREATE SCHEMA IF NOT EXISTS messaging;
