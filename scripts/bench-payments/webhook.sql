-- pgbench script: the payments-webhook service's storing transaction for one verified Stripe
-- `payment_intent.succeeded` delivery (ProviderEventStore.store with Outbox.append), statement for
-- statement and round trip for round trip, against a migrated database. Run with -M prepared
-- (pipelines need the extended protocol) and
--   -D run=<digits> -D n=0 -D body=<gen-webhooks.py --pgbench-template>
-- Each transaction is a distinct event: the ids are made from run, :client_id and a per-client
-- counter (n, incremented here; pgbench keeps a client's variables from one transaction to the next),
-- with the widths of the service's bench deliveries (evt_/pi_ + 24 characters, a UUID booking id),
-- so the raw body has the same length (1 KiB).
--
-- Round trips, as the service makes them (it sends BEGIN with the first pipeline):
--   1. BEGIN + INSERT INTO payments.provider_events ... ON CONFLICT DO NOTHING RETURNING id, pipelined
--   2. the outbox insert with the aggregate_sequences CTE (Outbox.statement(appending:))
--   3. COMMIT
-- Done here on the server, in Swift in the service: the ids, the body (replace() into the template),
-- its SHA-256, and the envelope JSON (text, cast to jsonb as the service's $6::jsonb is). The row's
-- id is time-ordered, as the service's (messaging.uuid_v7(), UUID.timeOrdered).

\set n :n + 1
\set k :client_id * 1000000000 + :n

\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO payments.provider_events
    (id, provider, provider_event_id, delivery_id, event_type, status, booking_id, provider_ref, amount, currency,
     domain_event_id, domain_event_type, raw_body, body_sha256, signed_at, received_at)
SELECT messaging.uuid_v7(), 'stripe', v.evt, NULL, 'payment_intent.succeeded', 'accepted', v.bid, v.pi, 5000, 'USD',
       v.deid, 'payment.succeeded', v.body, sha256(v.body), now(), now()
FROM (SELECT 'evt_' || lpad(:run::text || 'r' || :k::text, 24, '0') AS evt,
             'pi_' || lpad(:run::text || 'r' || :k::text, 24, '0') AS pi,
             (lpad(:run::text, 8, '0') || '-0000-4000-8000-' || lpad(:k::text, 12, '0'))::uuid AS bid,
             (lpad(:run::text, 8, '0') || '-0000-4000-9000-' || lpad(:k::text, 12, '0'))::uuid AS deid) AS ids,
     LATERAL (SELECT ids.*, convert_to(replace(replace(replace(:body::text, '@EVT@', ids.evt), '@PI@', ids.pi), '@BID@', ids.bid::text), 'UTF8') AS body) AS v
ON CONFLICT (provider, provider_event_id) DO NOTHING
RETURNING id;
\endpipeline

WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence)
    VALUES ('payments-webhook', lpad(:run::text, 8, '0') || '-0000-4000-8000-' || lpad(:k::text, 12, '0'), 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT (lpad(:run::text, 8, '0') || '-0000-4000-9000-' || lpad(:k::text, 12, '0'))::uuid, 'stream' || chr(58) || 'payments',
       'payments-webhook', lpad(:run::text, 8, '0') || '-0000-4000-8000-' || lpad(:k::text, 12, '0'), next.last_sequence,
       'payment.succeeded',
       jsonb_set(format('{"id":"%s","type":"payment.succeeded","version":1,"occurred_at":"%s","aggregate_id":"%s","sequence":0,'
                        '"correlation_id":"%s","causation_id":"stripe:%s","producer":"payments-webhook","data":{"payment_event_id":"%s",'
                        '"provider":"stripe","provider_ref":"%s","booking_id":"%s","amount":5000,"currency":"USD",'
                        '"provider_created_at":"%s","received_at":"%s"}}',
                        e.deid, e.at, e.bid, gen_random_uuid(), e.evt, e.evt, e.pi, e.bid, e.at, e.at)::jsonb,
                 '{sequence}', to_jsonb(next.last_sequence))
FROM next,
     LATERAL (SELECT lpad(:run::text, 8, '0') || '-0000-4000-9000-' || lpad(:k::text, 12, '0') AS deid,
                     lpad(:run::text, 8, '0') || '-0000-4000-8000-' || lpad(:k::text, 12, '0') AS bid,
                     'evt_' || lpad(:run::text || 'r' || :k::text, 24, '0') AS evt,
                     'pi_' || lpad(:run::text || 'r' || :k::text, 24, '0') AS pi,
                     (to_json(now() AT TIME ZONE 'UTC') #>> '{}') || 'Z' AS at) AS e
RETURNING sequence;

COMMIT;
