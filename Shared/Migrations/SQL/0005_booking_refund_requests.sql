-- Every refund the booking saga asked the payments service for (DESIGN.md, saga; review fixes):
-- a cancellation's refund of the booking's payment, or the compensation of a payment the booking
-- must not keep. A `refund.succeeded` completes a saga only when it is one of these, for its amount;
-- a refund nobody asked for is a `review` dead letter, and a refund's failure fails the saga only
-- when it is the saga's current request.
CREATE TABLE booking.refund_requests (
    refund_id uuid PRIMARY KEY,
    -- NULL when the refunded payment named no known booking.
    booking_id uuid,
    purpose text NOT NULL CHECK (purpose IN ('cancellation', 'compensation')),
    reason text NOT NULL,
    provider_ref text NOT NULL,
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL,
    idempotency_key text NOT NULL,
    status text NOT NULL CHECK (status IN ('requested', 'succeeded', 'failed')),
    provider_refund_ref text,
    requested_at timestamptz NOT NULL,
    completed_at timestamptz
);
CREATE INDEX refund_requests_by_booking ON booking.refund_requests (booking_id, requested_at);
CREATE INDEX refund_requests_open_by_payment ON booking.refund_requests (provider_ref, amount) WHERE status = 'requested';

-- Refunds requested before this table existed, from the outbox (rows are kept for its retention
-- period), so sagas waiting for them still complete; the newest request of a booking is its current one.
INSERT INTO booking.refund_requests
    (refund_id, booking_id, purpose, reason, provider_ref, amount, currency, idempotency_key, status, requested_at)
SELECT (o.envelope -> 'data' ->> 'refund_id')::uuid,
       (o.envelope -> 'data' ->> 'booking_id')::uuid,
       CASE WHEN o.envelope -> 'data' ->> 'reason' IN ('customer_cancellation', 'admin_cancellation', 'operator_resume')
            THEN 'cancellation' ELSE 'compensation' END,
       o.envelope -> 'data' ->> 'reason',
       o.envelope -> 'data' ->> 'provider_ref',
       (o.envelope -> 'data' ->> 'amount')::bigint,
       o.envelope -> 'data' ->> 'currency',
       o.envelope -> 'data' ->> 'idempotency_key',
       'requested',
       o.created_at
FROM messaging.outbox o
WHERE o.event_type = 'refund.requested' AND o.producer = 'booking'
ON CONFLICT (refund_id) DO NOTHING;
