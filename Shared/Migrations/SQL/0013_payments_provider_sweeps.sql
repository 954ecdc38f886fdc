-- The missed-webhook sweeper (issue 18 item 4): payments-webhook lists the provider's events
-- (`GET /v1/events?created[gte]=...`) every PROVIDER_SWEEP_INTERVAL and stores, through the webhook's
-- store-once path, any event no webhook delivered. One row per provider: the `created` (unix seconds)
-- of the newest event a sweep has seen, from which the next sweep lists (minus an overlap), and what
-- the last sweep did.
CREATE TABLE payments.provider_sweeps (
    provider text PRIMARY KEY CHECK (provider IN ('stripe')),
    checkpoint_created bigint NOT NULL CHECK (checkpoint_created >= 0),
    last_started_at timestamptz NOT NULL,
    last_finished_at timestamptz NOT NULL,
    last_listed integer NOT NULL CHECK (last_listed >= 0),
    last_recovered integer NOT NULL CHECK (last_recovered >= 0)
);

-- The sweeper also asks the provider directly about payment intents that have had no final event
-- (succeeded or canceled) for PROVIDER_SWEEP_INTENT_AGE; this is when it last asked about each.
ALTER TABLE payments.payment_intents ADD COLUMN status_checked_at timestamptz;
CREATE INDEX payment_intents_created ON payments.payment_intents (created_at);
