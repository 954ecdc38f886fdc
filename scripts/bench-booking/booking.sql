-- pgbench script: the booking service's conversion (PostgresBookingRepository.create), statement
-- for statement and round trip for round trip, against a migrated database. Run with -M prepared
-- (pipelines need the extended protocol) and -D events=N, where events
-- 00000000-0000-4000-8000-<N, 12 digits> exist with seats s00001..s10000 and the sequence
-- bench_ref_blocks exists (scripts/bench creates both).
--
-- One round trip, as the service makes it (it looks the idempotency key up only inside the
-- transaction, under the key's lock): the advisory lock and the lookup, the bookings, booking_seats,
-- sagas and saga_steps inserts, the two outbox inserts (each with the aggregate_sequences CTE) and
-- the idempotency-key insert, pipelined. The service sends them as one implicit transaction on a
-- shared connection, each write conditioned on the lookup having found nothing (`OutboxCondition`);
-- here it is BEGIN ... COMMIT in the same pipeline, the writes unconditioned (the keys are always
-- new).
-- Extra, not in the service: one statement before them that allocates the seats and builds the
-- values the service computes in Swift (ids, seat arrays, the JSON envelopes and response body).
-- The ids are made as the service makes them: time-ordered (messaging.uuid_v7(), the service's
-- UUID.timeOrdered), the hold's random.

\set k random(1, 4)
SELECT n AS blk,
       b.bid, b.hid, messaging.uuid_v7() AS e1, messaging.uuid_v7() AS e2,
       ev.eid,
       'key_bench_reference' || chr(31) || 'POST /v1/bookings' || chr(31) || 'ref-' || n AS lockkey,
       'ref-' || n AS idem,
       'customer-' || (n % 1000) AS customer,
       s.seats::text AS seats, s.prices::text AS prices, 2500 * :k AS amount,
       json_build_object(
           'id', messaging.uuid_v7(), 'type', 'booking.requested', 'version', 1, 'producer', 'booking', 'sequence', 0,
           'occurred_at', now(), 'aggregate_id', b.bid, 'causation_id', NULL, 'correlation_id', gen_random_uuid(),
           'data', json_build_object('amount', 2500 * :k, 'host_id', 'host-bench', 'currency', 'EUR', 'event_id', ev.eid,
               'seat_ids', s.seats, 'booking_id', b.bid, 'customer_id', 'customer-' || (n % 1000),
               'payment_due_at', now() + interval '15 minutes'))::text AS env1,
       json_build_object(
           'id', messaging.uuid_v7(), 'type', 'payment.requested', 'version', 1, 'producer', 'booking', 'sequence', 0,
           'occurred_at', now(), 'aggregate_id', b.bid, 'causation_id', NULL, 'correlation_id', gen_random_uuid(),
           'data', json_build_object('amount', 2500 * :k, 'currency', 'EUR', 'booking_id', b.bid,
               'customer_id', 'customer-' || (n % 1000), 'idempotency_key', 'booking-' || b.bid || '-payment'))::text AS env2,
       json_build_object(
           'amount', 2500 * :k, 'booking_id', b.bid, 'cancelled_at', NULL, 'confirmed_at', NULL, 'created_at', now(),
           'currency', 'EUR', 'customer_id', 'customer-' || (n % 1000), 'event_id', ev.eid, 'expired_at', NULL,
           'hold_id', 'R1nRbJrERo-qH0f6RWXSnbZJpJzQu0EKpveTh_5l7NU', 'payment', NULL,
           'payment_due_at', now() + interval '15 minutes', 'refund_requested_at', NULL, 'refunded_at', NULL,
           'saga_state', 'awaiting_payment', 'seat_ids', s.seats, 'status', 'pending_payment', 'updated_at', now())::text AS body
FROM nextval('bench_ref_blocks') AS n,
     LATERAL (SELECT messaging.uuid_v7() AS bid, gen_random_uuid() AS hid) AS b,
     LATERAL (SELECT ('00000000-0000-4000-8000-' || lpad((n % :events)::text, 12, '0'))::uuid AS eid) AS ev,
     LATERAL (SELECT array_agg('s' || lpad((4 * (n / :events) + g)::text, 5, '0') ORDER BY g) AS seats,
                     array_agg(2500::int8) AS prices
              FROM generate_series(1, :k) AS g) AS s \gset

\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT pg_advisory_xact_lock(hashtextextended(:lockkey, 0));
SELECT request_hash, response_status, response_body FROM booking.idempotency_keys
WHERE client = 'key_bench_reference' AND scope = 'POST /v1/bookings' AND key = :idem AND expires_at > now();
INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at, created_at, updated_at)
VALUES (:bid, :eid, :customer, :hid, 'pending_payment', :amount, 'EUR', now() + interval '15 minutes', now(), now());
INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price)
SELECT :bid::uuid, :eid::uuid, seat.id, seat.price FROM unnest(:seats::text[], :prices::int8[]) AS seat (id, price);
INSERT INTO booking.sagas (booking_id, state, version, deadline, created_at, updated_at)
VALUES (:bid, 'awaiting_payment', 1, now() + interval '17 minutes', now(), now());
INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, to_state, detail, occurred_at)
VALUES (:bid, 'booking_requested', 'forward', 'succeeded', 'awaiting_payment', 'payment requested', now());

WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES ('booking', :bid, 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :e1::uuid, 'stream' || chr(58) || 'booking', 'booking', :bid::text, next.last_sequence, 'booking.requested', jsonb_set(:env1::jsonb, '{sequence}', to_jsonb(next.last_sequence))
FROM next
RETURNING sequence;

WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES ('booking', :bid, 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :e2::uuid, 'stream' || chr(58) || 'booking', 'booking', :bid::text, next.last_sequence, 'payment.requested', jsonb_set(:env2::jsonb, '{sequence}', to_jsonb(next.last_sequence))
FROM next
RETURNING sequence;

INSERT INTO booking.idempotency_keys (client, scope, key, request_hash, response_status, response_body, created_at, expires_at)
VALUES ('key_bench_reference', 'POST /v1/bookings', :idem, sha256(convert_to(:idem, 'UTF8')), 201, convert_to(:body, 'UTF8'), now(), now() + interval '24 hours')
ON CONFLICT (client, scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;

COMMIT;
\endpipeline
