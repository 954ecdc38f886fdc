-- A saga run measured in SQL (scripts/bench saga, ours and the pgbench reference alike), after every
-- accepted webhook's booking was confirmed (or the wait for it gave up). psql variables:
--   t0, secs    the measured window: Unix seconds (fractional) of its start, and its whole length
--   customers   LIKE pattern of the run's customer ids (ours: saga-<tag>-w%, the reference: %)
--
-- A saga of the run: a booking of those customers and its accepted payment_intent.succeeded
-- delivery (payments.provider_events, joined by booking id).
--   completed_per_second  bookings whose confirmed_at lies in the window / secs: what the saga
--                         coordinator confirmed while the load ran (a backlog it had not caught up
--                         with by the end is not counted); the lowest and highest whole second too
--   p50/p90/p99/p99.9/max provider_events.received_at (stamped by payments-webhook when it read the
--                         request, before verifying and committing it) -> bookings.confirmed_at
--                         (stamped by the coordinator at the start of the confirming transaction),
--                         percentile_cont over every saga whose webhook arrived in the window,
--                         including those confirmed after it ended
--   unconfirmed           of those, the ones still not confirmed (must be 0)
WITH run AS (
    SELECT b.booking_id, b.confirmed_at, pe.received_at
    FROM booking.bookings b
    JOIN payments.provider_events pe
        ON pe.booking_id = b.booking_id AND pe.status = 'accepted' AND pe.event_type = 'payment_intent.succeeded'
    WHERE b.customer_id LIKE :'customers'
),
per_second AS (
    SELECT coalesce(c.n, 0) AS n
    FROM generate_series(0, :secs - 1) AS s (s)
    LEFT JOIN (
        SELECT floor(extract(epoch FROM confirmed_at) - :t0)::int AS s, count(*) AS n FROM run WHERE confirmed_at IS NOT NULL GROUP BY 1
    ) AS c USING (s)
),
arrived AS (
    SELECT extract(epoch FROM confirmed_at - received_at) * 1000 AS ms, confirmed_at
    FROM run
    WHERE received_at >= to_timestamp(:t0) AND received_at < to_timestamp(:t0 + :secs)
)
SELECT
    format('completed_per_second=%s confirmed_in_window=%s lowest_second=%s highest_second=%s',
        round((SELECT sum(n) FROM per_second) / :secs, 1), (SELECT sum(n) FROM per_second),
        (SELECT min(n) FROM per_second), (SELECT max(n) FROM per_second)),
    format('p50=%s p90=%s p99=%s p99.9=%s max=%s sagas=%s unconfirmed=%s',
        round(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(percentile_cont(0.90) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(percentile_cont(0.999) WITHIN GROUP (ORDER BY ms)::numeric, 1),
        round(max(ms)::numeric, 1), count(*), count(*) FILTER (WHERE confirmed_at IS NULL))
FROM arrived;
