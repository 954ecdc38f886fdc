-- pgbench script: the database work of one booking saga as the services do it, without the services:
-- no hold (Redis), no HTTP, no signature, no outbox relay or Redis stream between the webhook and the
-- confirmation. Three transactions back to back, statement for statement and round trip for round
-- trip as the service code makes them:
--
--   1. the booking (booking: PostgresBookingRepository.create), one round trip: the advisory lock on
--        the idempotency key and its lookup, the bookings, booking_seats, sagas, saga_steps and
--        idempotency_keys inserts and the outbox inserts of booking.requested and payment.requested
--        (each with its aggregate_sequences CTE), pipelined. The service sends them as one implicit
--        transaction, each write conditioned on the lookup having found nothing; here BEGIN ...
--        COMMIT in the same pipeline, the writes unconditioned (the keys are always new).
--   2. the webhook (payments-webhook: ProviderEventStore.store)
--        BEGIN + the provider_events insert (which opens the outbox gate) + the gated outbox insert of
--        payment.succeeded, pipelined; COMMIT
--   3. the confirmation (booking's saga coordinator: HandlerContext.commit, SagaCoordinator.confirm)
--        BEGIN + the inbox insert + the booking and saga read, pipelined; the seats and event read; the saga's
--        versioned update; the booking update + the saga step, pipelined; the outbox insert of
--        booking.confirmed; COMMIT
--
-- received_at is clock_timestamp() when the webhook's row is inserted and confirmed_at is the
-- confirmation transaction's now(), so scripts/bench-saga/measure.sql measures the reference's
-- webhook -> confirmed like ours (here: the webhook's transaction and the start of the next).
--
-- Run with -M prepared (pipelines need the extended protocol) and -D events=N, where events
-- 00000000-0000-4000-8000-<N, 12 digits> exist with seats s00001..s10000 at 2500 and the sequence
-- saga_ref_blocks exists (scripts/lib/benchkit/pairs/saga.py creates them). Saga n takes seats 2m+1 (and
-- 2m+2) of event n mod N, m = n / N: up to 5,000 sagas per event.
-- Extra, not in the services: the first statement allocates the seats and builds the values the
-- services compute in Swift (ids, seat arrays, envelopes, the stored response, the webhook body).
-- The ids are made as the services make them: time-ordered (messaging.uuid_v7(), UUID.timeOrdered),
-- the hold's random.
-- A colon never precedes a letter in a literal here (pgbench would read a variable): chr(58).

\set k random(1, 2)
SELECT n, b.bid, b.hid, b.e1, b.e2, b.pe, b.de, b.e3, ev.eid,
       'key_saga_reference' || chr(31) || 'POST /v1/bookings' || chr(31) || 'ref-' || n AS lockkey,
       'ref-' || n AS idem,
       'customer-' || (n % 1000) AS customer,
       'evt_ref' || lpad(n::text, 17, '0') AS evt,
       'pi_ref' || lpad(n::text, 17, '0') AS pi,
       s.seats::text AS seats, s.prices::text AS prices, 2500 * :k AS amount,
       json_build_object(
           'id', b.e1, 'type', 'booking.requested', 'version', 1, 'producer', 'booking', 'sequence', 0,
           'occurred_at', now(), 'aggregate_id', b.bid, 'causation_id', NULL, 'correlation_id', gen_random_uuid(),
           'data', json_build_object('amount', 2500 * :k, 'host_id', 'host-saga-bench', 'currency', 'EUR', 'event_id', ev.eid,
               'seat_ids', s.seats, 'booking_id', b.bid, 'customer_id', 'customer-' || (n % 1000),
               'payment_due_at', now() + interval '2 hours'))::text AS env1,
       json_build_object(
           'id', b.e2, 'type', 'payment.requested', 'version', 1, 'producer', 'booking', 'sequence', 0,
           'occurred_at', now(), 'aggregate_id', b.bid, 'causation_id', NULL, 'correlation_id', gen_random_uuid(),
           'data', json_build_object('amount', 2500 * :k, 'currency', 'EUR', 'booking_id', b.bid,
               'customer_id', 'customer-' || (n % 1000), 'idempotency_key', 'booking-' || b.bid || '-payment'))::text AS env2,
       json_build_object(
           'amount', 2500 * :k, 'booking_id', b.bid, 'cancelled_at', NULL, 'confirmed_at', NULL, 'created_at', now(),
           'currency', 'EUR', 'customer_id', 'customer-' || (n % 1000), 'event_id', ev.eid, 'expired_at', NULL,
           'hold_id', 'R1nRbJrERo-qH0f6RWXSnbZJpJzQu0EKpveTh_5l7NU', 'payment', NULL,
           'payment_due_at', now() + interval '2 hours', 'refund_requested_at', NULL, 'refunded_at', NULL,
           'saga_state', 'awaiting_payment', 'seat_ids', s.seats, 'status', 'pending_payment', 'updated_at', now())::text AS body,
       json_build_object(
           'id', 'evt_ref' || lpad(n::text, 17, '0'), 'object', 'event', 'api_version', '2024-06-20',
           'created', extract(epoch FROM now())::bigint, 'type', 'payment_intent.succeeded', 'livemode', false, 'pending_webhooks', 1,
           'request', json_build_object('id', NULL, 'idempotency_key', 'booking-' || b.bid || '-payment'),
           'data', json_build_object('object', json_build_object(
               'id', 'pi_ref' || lpad(n::text, 17, '0'), 'object', 'payment_intent', 'amount', 2500 * :k, 'amount_received', 2500 * :k,
               'currency', 'eur', 'status', 'succeeded', 'client_secret', 'pi_ref' || lpad(n::text, 17, '0') || '_secret_bench',
               'metadata', json_build_object('booking_id', b.bid), 'created', extract(epoch FROM now())::bigint, 'livemode', false,
               'last_payment_error', NULL, 'latest_charge', 'ch_ref' || lpad(n::text, 17, '0'))))::text AS whbody
FROM nextval('saga_ref_blocks') AS n,
     LATERAL (SELECT messaging.uuid_v7() AS bid, gen_random_uuid() AS hid, messaging.uuid_v7() AS e1, messaging.uuid_v7() AS e2,
                     messaging.uuid_v7() AS pe, messaging.uuid_v7() AS de, messaging.uuid_v7() AS e3) AS b,
     LATERAL (SELECT ('00000000-0000-4000-8000-' || lpad((n % :events)::text, 12, '0'))::uuid AS eid) AS ev,
     LATERAL (SELECT array_agg('s' || lpad((2 * (n / :events) + g)::text, 5, '0') ORDER BY g) AS seats,
                     array_agg(2500::int8) AS prices
              FROM generate_series(1, :k) AS g) AS s \gset

-- 1. The booking.

\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_advisory_xact_lock(hashtextextended(:lockkey, 0));
SELECT request_hash, response_status, response_body FROM booking.idempotency_keys
WHERE client = 'key_saga_reference' AND scope = 'POST /v1/bookings' AND key = :idem AND expires_at > now();
INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at, created_at, updated_at)
VALUES (:bid, :eid, :customer, :hid, 'pending_payment', :amount, 'EUR', now() + interval '2 hours', now(), now());
INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price)
SELECT :bid::uuid, :eid::uuid, seat.id, seat.price FROM unnest(:seats::text[], :prices::int8[]) AS seat (id, price);
INSERT INTO booking.sagas (booking_id, state, version, deadline, created_at, updated_at)
VALUES (:bid, 'awaiting_payment', 1, now() + interval '2 hours 2 minutes', now(), now());
INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, to_state, detail, occurred_at)
VALUES (:bid, 'booking_requested', 'forward', 'succeeded', 'awaiting_payment', 'payment requested', now());
INSERT INTO booking.idempotency_keys (client, scope, key, request_hash, response_status, response_body, created_at, expires_at)
VALUES ('key_saga_reference', 'POST /v1/bookings', :idem, sha256(convert_to(:idem, 'UTF8')), 201, convert_to(:body, 'UTF8'), now(), now() + interval '24 hours')
ON CONFLICT (client, scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;
WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES ('booking', :bid, 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :e1::uuid, 'stream' || chr(58) || 'booking', 'booking', :bid::text, next.last_sequence, 'booking.requested',
       jsonb_set(:env1::jsonb, '{sequence}', to_jsonb(next.last_sequence))
FROM next
RETURNING sequence;
WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES ('booking', :bid, 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :e2::uuid, 'stream' || chr(58) || 'booking', 'booking', :bid::text, next.last_sequence, 'payment.requested',
       jsonb_set(:env2::jsonb, '{sequence}', to_jsonb(next.last_sequence))
FROM next
RETURNING sequence;
COMMIT;
\endpipeline

-- 2. The webhook: the verified delivery stored once, with payment.succeeded in the outbox.

\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO payments.provider_events
    (id, provider, provider_event_id, delivery_id, event_type, status, booking_id, provider_ref, amount, currency,
     domain_event_id, domain_event_type, raw_body, body_sha256, signed_at, received_at)
SELECT :pe::uuid, 'stripe', :evt, NULL, 'payment_intent.succeeded', 'accepted', :bid::uuid, :pi, :amount, 'EUR',
       :de::uuid, 'payment.succeeded', convert_to(:whbody, 'UTF8'), sha256(convert_to(:whbody, 'UTF8')),
       date_trunc('second', clock_timestamp()), clock_timestamp()
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id, set_config('outbox.gate', :pe, true);
WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence)
    SELECT 'payments-webhook', :bid, 1 WHERE current_setting('outbox.gate', true) = :pe
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :de::uuid, 'stream' || chr(58) || 'payments', 'payments-webhook', :bid::text, next.last_sequence, 'payment.succeeded',
       jsonb_set(json_build_object(
           'id', :de::uuid, 'type', 'payment.succeeded', 'version', 1, 'occurred_at', e.at, 'aggregate_id', :bid::uuid, 'sequence', 0,
           'correlation_id', gen_random_uuid(), 'causation_id', 'stripe' || chr(58) || :evt::text, 'producer', 'payments-webhook',
           'data', json_build_object('payment_event_id', :evt::text, 'provider', 'stripe', 'provider_ref', :pi::text, 'booking_id', :bid::uuid,
               'amount', :amount::bigint, 'currency', 'EUR', 'provider_created_at', e.at, 'received_at', e.at))::jsonb,
           '{sequence}', to_jsonb(next.last_sequence))
FROM next, LATERAL (SELECT (to_json(now() AT TIME ZONE 'UTC') #>> '{}') || 'Z' AS at) AS e
RETURNING sequence;
\endpipeline

COMMIT;

-- 3. The confirmation, as the saga coordinator makes it when payment.succeeded arrives.

\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO messaging.inbox (consumer, event_id) VALUES ('booking-saga', :de::uuid);
SELECT s.state, s.version, b.amount, b.currency, b.payment_due_at, b.payment_provider_ref, b.event_id, b.hold_id, b.customer_id,
       b.confirmed_at
FROM booking.bookings b JOIN booking.sagas s USING (booking_id) WHERE b.booking_id = :bid;
\endpipeline

SELECT e.host_id AS host, (to_json(e.ends_at AT TIME ZONE 'UTC') #>> '{}') || 'Z' AS ends,
       array_to_json(array_agg(bs.seat_id ORDER BY bs.seat_id))::text AS confirmed_seats
FROM booking.events e JOIN booking.booking_seats bs ON bs.event_id = e.event_id
WHERE bs.booking_id = :bid AND bs.released_at IS NULL
GROUP BY e.host_id, e.ends_at \gset

UPDATE booking.sagas SET state = 'confirmed', version = version + 1, deadline = NULL, last_error = NULL, updated_at = now()
WHERE booking_id = :bid AND version = 1
RETURNING 1;

\startpipeline
UPDATE booking.bookings SET status = 'confirmed', updated_at = now(),
    confirmed_at = CASE WHEN true THEN now() ELSE confirmed_at END,
    cancelled_at = CASE WHEN false THEN now() ELSE cancelled_at END,
    expired_at = CASE WHEN false THEN now() ELSE expired_at END,
    refund_requested_at = CASE WHEN false THEN now() ELSE refund_requested_at END,
    refunded_at = CASE WHEN false THEN now() ELSE refunded_at END,
    payment_provider_ref = COALESCE(:pi, payment_provider_ref)
WHERE booking_id = :bid;
INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, from_state, to_state, detail, occurred_at)
VALUES (:bid, 'booking_confirmed', 'forward', 'succeeded', 'awaiting_payment', 'confirmed', 'paid ' || :amount::text || ' EUR (stripe ' || :pi::text || ')', now());
\endpipeline

WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES ('booking', :bid, 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :e3::uuid, 'stream' || chr(58) || 'booking', 'booking', :bid::text, next.last_sequence, 'booking.confirmed',
       jsonb_set(json_build_object(
           'id', :e3::uuid, 'type', 'booking.confirmed', 'version', 1, 'occurred_at', e.at, 'aggregate_id', :bid::uuid, 'sequence', 0,
           'correlation_id', gen_random_uuid(), 'causation_id', :de::uuid, 'producer', 'booking',
           'data', json_build_object('booking_id', :bid::uuid, 'event_id', :eid::uuid, 'host_id', :host::text, 'customer_id', :customer::text,
               'seat_ids', :confirmed_seats::json, 'amount', :amount::bigint, 'currency', 'EUR', 'provider_ref', :pi::text,
               'confirmed_at', e.at, 'event_ends_at', :ends::text))::jsonb,
           '{sequence}', to_jsonb(next.last_sequence))
FROM next, LATERAL (SELECT (to_json(now() AT TIME ZONE 'UTC') #>> '{}') || 'Z' AS at) AS e
RETURNING sequence;

COMMIT;
