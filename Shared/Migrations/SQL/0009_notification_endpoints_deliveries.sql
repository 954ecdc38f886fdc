-- Outbound webhook delivery (DESIGN.md, Notification): subscriber endpoints and their secrets, the
-- deliverable events the service received, one delivery per (event, endpoint) and every attempt.

-- A subscriber's URL. `event_types` empty = every deliverable type; entries are exact types or
-- prefixes written `booking.*`. Only events that occur at or after `created_at` reach it (replay
-- reaches back further).
CREATE TABLE notification.endpoints (
    id uuid PRIMARY KEY,
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description text CHECK (length(description) <= 1024),
    event_types text[] NOT NULL DEFAULT '{}',
    rate_limit_per_s integer CHECK (rate_limit_per_s BETWEEN 1 AND 10000),
    status text NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
    disabled_reason text,
    -- The first failure since the last success; cleared by a success or a resume.
    failing_since timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX endpoints_newest_first ON notification.endpoints (created_at DESC, id DESC);

-- Signing secrets, encrypted (AES-GCM with NOTIFICATION_SECRETS_KEY; the endpoint id is the
-- authenticated data). Every secret whose `expires_at` is unset or in the future signs; a rotation
-- gives the previous ones an `expires_at` (the grace).
CREATE TABLE notification.endpoint_secrets (
    endpoint_id uuid NOT NULL REFERENCES notification.endpoints (id) ON DELETE CASCADE,
    position integer NOT NULL CHECK (position >= 1),
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (endpoint_id, position)
);

-- Every deliverable event the fan-out received, byte for byte as it will be sent; the source of
-- replays.
CREATE TABLE notification.events (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    producer text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX events_by_time ON notification.events (occurred_at, event_id);

-- One event to one endpoint. `pending` deliveries are due at `next_attempt_at`; a worker that
-- claims one leases it until `lease_until` (a crashed worker's claims come back when it passes).
CREATE TABLE notification.deliveries (
    id uuid PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES notification.endpoints (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES notification.events (event_id),
    event_type text NOT NULL,
    producer text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint NOT NULL,
    origin text NOT NULL CHECK (origin IN ('event', 'replay')),
    status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    next_attempt_at timestamptz,
    lease_until timestamptz,
    out_of_order boolean NOT NULL DEFAULT false,
    last_status_code integer,
    last_error text,
    dead_letter_id uuid,
    created_at timestamptz NOT NULL,
    completed_at timestamptz,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
-- Mostly finished rows with a changing pending few: analyze often, so the planner knows how many
-- are pending (a stale estimate made claims scan instead of probe).
ALTER TABLE notification.deliveries SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.05);
-- The workers' claim: each endpoint's due pending deliveries in due order, and its leased ones
-- (in flight: few, whatever the backlog).
CREATE INDEX deliveries_due ON notification.deliveries (endpoint_id, next_attempt_at, sequence) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON notification.deliveries (endpoint_id, lease_until)
    WHERE status = 'pending' AND lease_until IS NOT NULL;
-- Ordering: earlier pending deliveries of the same aggregate to the same endpoint.
CREATE INDEX deliveries_pending_by_aggregate ON notification.deliveries (endpoint_id, producer, aggregate_id, sequence)
    WHERE status = 'pending';
-- An endpoint's deliveries, newest first (its list, replay's "already queued" check).
CREATE INDEX deliveries_by_endpoint ON notification.deliveries (endpoint_id, created_at DESC, id DESC);
CREATE INDEX deliveries_by_event ON notification.deliveries (event_id, endpoint_id);
-- Failed deliveries whose dead letter an operator may replay.
CREATE INDEX deliveries_dead_lettered ON notification.deliveries (dead_letter_id) WHERE status = 'failed';

-- Every attempt, with what the endpoint answered (a bounded excerpt).
CREATE TABLE notification.attempts (
    id bigserial PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES notification.deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL CHECK (latency_ms >= 0),
    error text,
    response_excerpt text
);
CREATE INDEX attempts_by_delivery ON notification.attempts (delivery_id, id);
