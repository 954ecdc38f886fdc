-- The payments-webhook service's schema (DESIGN.md, PaymentsWebhook): every verified delivery
-- from a payment provider or an internal payment service, stored once, and what its provider
-- worker asked the provider to do.

-- One row per verified delivery. `accepted` rows were mapped to a domain event, written to the
-- outbox in the same transaction (`domain_event_id`); `ignored` rows are types we do not act on;
-- `malformed` rows passed the signature check but could not be read, and are kept (once per
-- body) for an operator. Unverified requests are never stored.
CREATE TABLE payments.provider_events (
    id uuid PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('stripe', 'internal')),
    -- The provider's event id (Stripe `evt_...`, the internal body's `id`); NULL only when malformed.
    provider_event_id text CHECK (provider_event_id <> ''),
    -- Standard Webhooks' `webhook-id` (the message id); NULL for Stripe.
    delivery_id text,
    event_type text,
    status text NOT NULL CHECK (status IN ('accepted', 'ignored', 'malformed')),
    booking_id uuid,
    provider_ref text,
    amount bigint CHECK (amount >= 0),
    currency text CHECK (currency ~ '^[A-Z]{3}$'),
    domain_event_id uuid,
    domain_event_type text,
    error text,
    raw_body bytea NOT NULL,
    body_sha256 bytea NOT NULL CHECK (octet_length(body_sha256) = 32),
    signed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    CHECK ((status = 'malformed') = (provider_event_id IS NULL)),
    CHECK ((status = 'accepted') = (domain_event_id IS NOT NULL)),
    CHECK ((amount IS NULL) = (currency IS NULL)),
    -- Invariant 2: a provider event is processed once.
    CONSTRAINT provider_events_once UNIQUE (provider, provider_event_id)
);
CREATE UNIQUE INDEX provider_events_malformed_once ON payments.provider_events (provider, body_sha256) WHERE status = 'malformed';
CREATE INDEX provider_events_booking ON payments.provider_events (booking_id, received_at) WHERE booking_id IS NOT NULL;
CREATE INDEX provider_events_received ON payments.provider_events (received_at, id);
CREATE INDEX provider_events_provider_ref ON payments.provider_events (provider_ref) WHERE provider_ref IS NOT NULL;

-- The provider's payment intent of each booking; one per booking, so `payment.intent_created`
-- is emitted once however often `payment.requested` is delivered.
CREATE TABLE payments.payment_intents (
    booking_id uuid PRIMARY KEY,
    provider text NOT NULL,
    provider_ref text NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    idempotency_key text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (provider, provider_ref)
);

-- Refunds the provider worker asked for: `accepted` when the provider took the request (its
-- `charge.refunded` webhook later yields `refund.succeeded`), `refused` when it refused for good.
CREATE TABLE payments.refunds (
    refund_id uuid PRIMARY KEY,
    booking_id uuid,
    provider text NOT NULL,
    provider_ref text NOT NULL,
    provider_refund_id text,
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    idempotency_key text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    error text,
    requested_at timestamptz NOT NULL,
    CHECK ((outcome = 'accepted') = (provider_refund_id IS NOT NULL))
);
CREATE INDEX refunds_provider_ref ON payments.refunds (provider_ref);
CREATE INDEX refunds_booking ON payments.refunds (booking_id) WHERE booking_id IS NOT NULL;
