-- The invariants of a saga run (scripts/bench saga), checked in SQL on the services' database once
-- the run is over, the coordinator has confirmed what it was sent and the relay has published the
-- outbox. One row per check: `check|<name>|<count>` (every count must be 0) or `info|<name>|<count>`.
-- The database holds this run only (created by scripts/bench), so the checks cover every row.
--
-- DESIGN.md, The booking saga: saga state -> booking status
--   awaiting_payment -> pending_payment, confirmed -> confirmed, cancel_requested and refund_pending
--   -> refund_pending, refunded -> refunded, cancelled -> cancelled, expired -> expired,
--   compensation_failed -> unchanged (any status).

WITH confirmed AS (
    SELECT booking_id, amount, currency, payment_provider_ref FROM booking.bookings WHERE status = 'confirmed'
),
confirmed_events AS (
    SELECT aggregate_id, count(*) AS n FROM messaging.outbox
    WHERE producer = 'booking' AND event_type = 'booking.confirmed' GROUP BY aggregate_id
),
payments AS (
    SELECT booking_id, amount, currency, provider_ref FROM payments.provider_events
    WHERE status = 'accepted' AND event_type = 'payment_intent.succeeded'
)
SELECT kind, name, n FROM (
    -- Invariant 1 (the partial unique index guards it; counted anyway).
    SELECT 1 AS position, 'check' AS kind, 'seats in two active bookings' AS name, count(*) AS n FROM (
        SELECT event_id, seat_id FROM booking.booking_seats WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1
    ) AS doubles
    UNION ALL
    SELECT 2, 'check', 'bookings without a saga row', count(*)
    FROM booking.bookings b LEFT JOIN booking.sagas s USING (booking_id) WHERE s.booking_id IS NULL
    UNION ALL
    SELECT 3, 'check', 'saga state not matching the booking status', count(*)
    FROM booking.bookings b JOIN booking.sagas s USING (booking_id)
    WHERE s.state <> 'compensation_failed' AND b.status IS DISTINCT FROM CASE s.state
        WHEN 'awaiting_payment' THEN 'pending_payment' WHEN 'confirmed' THEN 'confirmed'
        WHEN 'cancel_requested' THEN 'refund_pending' WHEN 'refund_pending' THEN 'refund_pending'
        WHEN 'refunded' THEN 'refunded' WHEN 'cancelled' THEN 'cancelled' WHEN 'expired' THEN 'expired' END
    UNION ALL
    SELECT 4, 'check', 'confirmed bookings without exactly one booking.confirmed in the outbox', count(*)
    FROM confirmed c LEFT JOIN confirmed_events e ON e.aggregate_id = c.booking_id::text WHERE coalesce(e.n, 0) <> 1
    UNION ALL
    SELECT 5, 'check', 'booking.confirmed events of bookings not confirmed', count(*)
    FROM confirmed_events e LEFT JOIN confirmed c ON c.booking_id::text = e.aggregate_id WHERE c.booking_id IS NULL
    UNION ALL
    SELECT 6, 'check', 'confirmed bookings without an accepted payment of the same amount, currency and reference', count(*)
    FROM confirmed c
    WHERE NOT EXISTS (
        SELECT 1 FROM payments p
        WHERE p.booking_id = c.booking_id AND p.amount = c.amount AND p.currency = c.currency AND p.provider_ref = c.payment_provider_ref)
    UNION ALL
    SELECT 7, 'check', 'accepted payments whose amount or currency differs from their booking''s', count(*)
    FROM payments p JOIN booking.bookings b USING (booking_id) WHERE p.amount <> b.amount OR p.currency <> b.currency
    UNION ALL
    SELECT 8, 'check', 'bookings whose amount is not the sum of their seats'' prices', count(*)
    FROM booking.bookings b JOIN (SELECT booking_id, sum(price) AS total FROM booking.booking_seats GROUP BY 1) AS s USING (booking_id)
    WHERE s.total <> b.amount
    UNION ALL
    SELECT 9, 'check', 'booking.confirmed events whose amount or currency differs from the booking''s', count(*)
    FROM messaging.outbox o JOIN booking.bookings b ON b.booking_id::text = o.aggregate_id
    WHERE o.producer = 'booking' AND o.event_type = 'booking.confirmed'
        AND ((o.envelope -> 'data' ->> 'amount')::bigint <> b.amount OR o.envelope -> 'data' ->> 'currency' <> b.currency)
    UNION ALL
    SELECT 10, 'check', 'accepted payments whose booking is not confirmed', count(*)
    FROM payments p LEFT JOIN confirmed c USING (booking_id) WHERE c.booking_id IS NULL
    UNION ALL
    SELECT 11, 'check', 'payment.succeeded events the saga coordinator has not processed (inbox)', count(*)
    FROM messaging.outbox o
    WHERE o.event_type = 'payment.succeeded'
        AND NOT EXISTS (SELECT 1 FROM messaging.inbox i WHERE i.consumer = 'booking-saga' AND i.event_id = o.event_id)
    UNION ALL
    SELECT 12, 'check', 'review dead letters', count(*) FROM messaging.dead_letters WHERE kind = 'review'
    UNION ALL
    SELECT 13, 'check', 'failure dead letters', count(*) FROM messaging.dead_letters WHERE kind = 'failure'
    UNION ALL
    SELECT 14, 'check', 'handler attempts left over (failed, not yet succeeded)', count(*) FROM messaging.attempts
    UNION ALL
    SELECT 15, 'check', 'outbox rows not published', count(*) FROM messaging.outbox WHERE published_at IS NULL
    UNION ALL
    SELECT 16, 'check', 'bookings still pending payment', count(*) FROM booking.bookings WHERE status = 'pending_payment'
    UNION ALL
    SELECT 17, 'check', 'malformed or ignored deliveries', count(*) FROM payments.provider_events WHERE status <> 'accepted'
    UNION ALL
    SELECT 18, 'check', 'confirmed bookings without exactly one booking_confirmed saga step', count(*)
    FROM confirmed c
    WHERE (SELECT count(*) FROM booking.saga_steps st WHERE st.booking_id = c.booking_id AND st.step = 'booking_confirmed') <> 1
    UNION ALL
    SELECT 20, 'info', 'bookings', count(*) FROM booking.bookings
    UNION ALL
    SELECT 21, 'info', 'confirmed bookings', count(*) FROM confirmed
    UNION ALL
    SELECT 22, 'info', 'active booking seats', count(*) FROM booking.booking_seats WHERE released_at IS NULL
    UNION ALL
    SELECT 23, 'info', 'accepted payment_intent.succeeded deliveries', count(*) FROM payments
    UNION ALL
    SELECT 24, 'info', 'booking.confirmed events in the outbox', coalesce(sum(n), 0) FROM confirmed_events
    UNION ALL
    SELECT 25, 'info', 'outbox rows (all producers)', count(*) FROM messaging.outbox
) AS checks
ORDER BY position;
