-- The booking service (DESIGN.md, Booking): sellable events and their seats, bookings and their
-- seats, the saga's row and step log, and idempotency keys. Availability is derived (seats minus
-- active booking seats); there is no seat counter to drift.

CREATE TABLE booking.events (
    event_id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    host_id text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    -- The IANA zone the event takes place in; instants are stored in UTC.
    time_zone text NOT NULL,
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL,
    CHECK (ends_at > starts_at)
);

-- Seats never change once the event exists, so services may cache them.
CREATE TABLE booking.seats (
    event_id uuid NOT NULL REFERENCES booking.events (event_id),
    seat_id text NOT NULL,
    price bigint NOT NULL CHECK (price >= 0),
    -- The host's listing order, for the seat map.
    position integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (event_id, seat_id)
);

CREATE TABLE booking.bookings (
    booking_id uuid PRIMARY KEY,
    event_id uuid NOT NULL REFERENCES booking.events (event_id),
    customer_id text NOT NULL,
    -- One booking per hold: the same hold converted twice (e.g. with two idempotency keys) is refused.
    hold_id uuid NOT NULL UNIQUE,
    status text NOT NULL CHECK (status IN ('pending_payment', 'confirmed', 'refund_pending', 'refunded', 'cancelled', 'expired')),
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_due_at timestamptz NOT NULL,
    payment_provider_ref text,
    payment_client_secret text,
    created_at timestamptz NOT NULL,
    confirmed_at timestamptz,
    cancelled_at timestamptz,
    expired_at timestamptz,
    refund_requested_at timestamptz,
    refunded_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX bookings_by_customer ON booking.bookings (customer_id, created_at DESC, booking_id DESC);

-- A booking's seats with the price each had when booked. `released_at` is set when the booking
-- stops holding the seat (cancelled, expired, refunded).
CREATE TABLE booking.booking_seats (
    booking_id uuid NOT NULL REFERENCES booking.bookings (booking_id),
    event_id uuid NOT NULL,
    seat_id text NOT NULL,
    price bigint NOT NULL CHECK (price >= 0),
    released_at timestamptz,
    PRIMARY KEY (booking_id, seat_id),
    FOREIGN KEY (event_id, seat_id) REFERENCES booking.seats (event_id, seat_id)
);
-- Invariant 1: a seat is in at most one active booking. This index is the final guard against
-- double booking, whatever Redis says.
CREATE UNIQUE INDEX booking_seats_active_once ON booking.booking_seats (event_id, seat_id) WHERE released_at IS NULL;

-- The saga of each booking (DESIGN.md, The booking saga): state, optimistic version, deadline.
CREATE TABLE booking.sagas (
    booking_id uuid PRIMARY KEY REFERENCES booking.bookings (booking_id),
    state text NOT NULL CHECK (state IN (
        'awaiting_payment', 'confirmed', 'cancel_requested', 'refund_pending', 'refunded', 'cancelled', 'expired', 'compensation_failed'
    )),
    version bigint NOT NULL CHECK (version >= 1),
    deadline timestamptz,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX sagas_deadline ON booking.sagas (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX sagas_by_state ON booking.sagas (state);

-- Each forward step and each compensation of a saga, with its time and outcome.
CREATE TABLE booking.saga_steps (
    step_id bigserial PRIMARY KEY,
    booking_id uuid NOT NULL REFERENCES booking.sagas (booking_id),
    step text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('forward', 'compensation')),
    outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    from_state text,
    to_state text,
    detail text,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX saga_steps_by_booking ON booking.saga_steps (booking_id, step_id);

-- Invariant 5: an idempotency key maps to one request. `client` identifies the API key's owner
-- (a digest, never the key), `scope` the operation. 2xx and 4xx outcomes are stored and replayed;
-- a request that failed with 5xx leaves no row.
CREATE TABLE booking.idempotency_keys (
    client text NOT NULL,
    scope text NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    response_status integer NOT NULL CHECK (response_status BETWEEN 200 AND 499),
    response_body bytea NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client, scope, key)
);
CREATE INDEX idempotency_keys_expiry ON booking.idempotency_keys (expires_at);
