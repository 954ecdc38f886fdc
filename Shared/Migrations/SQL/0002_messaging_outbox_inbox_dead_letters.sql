-- The messaging backbone (DESIGN.md, Messaging): outbox, per-aggregate sequences, inbox,
-- durable attempt counts, dead letters.

-- Events waiting to be (or recently) published to Redis Streams, in commit order of each aggregate.
CREATE TABLE messaging.outbox (
    position bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    stream text NOT NULL,
    producer text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint NOT NULL CHECK (sequence >= 1),
    event_type text NOT NULL,
    envelope jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON messaging.outbox (position) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON messaging.outbox (published_at) WHERE published_at IS NOT NULL;

-- The last sequence number given to each (producer, aggregate); its row lock orders the
-- aggregate's events.
CREATE TABLE messaging.aggregate_sequences (
    producer text NOT NULL,
    aggregate_id text NOT NULL,
    last_sequence bigint NOT NULL CHECK (last_sequence >= 1),
    PRIMARY KEY (producer, aggregate_id)
);

-- Events a consumer has applied; written in the same transaction as the effect.
CREATE TABLE messaging.inbox (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Handler executions that did not succeed (yet), counted durably so a crash loop also ends.
CREATE TABLE messaging.attempts (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 0),
    last_error text,
    first_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- The source of truth for dead letters.
CREATE TABLE messaging.dead_letters (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('failure', 'review')),
    stream text NOT NULL,
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    aggregate_id text NOT NULL,
    envelope jsonb NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 0),
    first_failed_at timestamptz NOT NULL,
    last_failed_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'replayed', 'resolved', 'discarded')),
    resolution_note text,
    operator text,
    status_changed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One open entry per consumer, event and kind: a redelivered failure does not pile up duplicates.
CREATE UNIQUE INDEX dead_letters_open_once ON messaging.dead_letters (consumer, event_id, kind) WHERE status = 'open';
CREATE INDEX dead_letters_listing ON messaging.dead_letters (created_at DESC, id DESC);
CREATE INDEX dead_letters_aggregate ON messaging.dead_letters (aggregate_id);
