#!/usr/bin/env python3
"""The event-cancellation benchmark's driver (scripts/bench-cancel runs it; standard library only).

Pays N intents at the provider simulator (their webhooks dropped), writes an event of N seats with a
confirmed booking per seat paid by those intents in set-based SQL, cancels the event through the
booking API, follows it to the last `refunded`, then measures and checks. Exit status 1 when a check
fails.
"""

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ADMIN = "Bearer dev-admin-token"
PROVIDER_KEY = "Bearer sk_test_local_simulator"


def call(method, url, body=None, headers=None, form=None):
    data = None
    headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def psql(args, sql):
    result = subprocess.run(
        [args.psql, args.database, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, text=True)
    return result.stdout.strip()


def pay_intents(args):
    """N intents created and paid at the simulator, their webhooks dropped; returns (booking id, intent)."""
    assert call("POST", f"{args.simulator}/simulator/webhook-drops", {"type": "payment_intent.succeeded", "count": None})[0] == 200

    def one(_):
        booking = str(uuid.uuid4())
        status, intent = call(
            "POST", f"{args.simulator}/v1/payment_intents", headers={"Authorization": PROVIDER_KEY},
            form={"amount": "2500", "currency": "eur", "metadata[booking_id]": booking})
        assert status == 200, intent
        status, paid = call("POST", f"{args.simulator}/simulator/payment_intents/{intent['id']}/succeed", {})
        assert status == 200, paid
        return booking, intent["id"]

    started = time.monotonic()
    pairs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for pair in pool.map(one, range(args.bookings)):
            pairs.append(pair)
            if len(pairs) % 5000 == 0:
                print(f"bench-cancel: {len(pairs)}/{args.bookings} intents paid ({time.monotonic() - started:.0f} s)", flush=True)
    assert call("DELETE", f"{args.simulator}/simulator/webhook-drops")[0] == 200
    return pairs


def seed(args, pairs):
    """The event, its seats and a confirmed booking (with its saga) per intent, in set-based SQL."""
    event = str(uuid.uuid4())
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as file:
        for index, (booking, intent) in enumerate(pairs, start=1):
            file.write(f"{booking},{intent},S{index}\n")
        path = file.name
    try:
        result = subprocess.run(
            [args.psql, args.database, "-Xq", "-v", "ON_ERROR_STOP=1"], text=True, capture_output=True,
            input=f"""
BEGIN;
CREATE TEMP TABLE seed (booking_id uuid, intent text, seat_id text);
\\copy seed FROM '{path}' WITH (FORMAT csv)
INSERT INTO booking.events (event_id, name, host_id, starts_at, ends_at, time_zone, currency, created_at)
VALUES ('{event}', 'Benchmark festival', 'host_bench', now() + interval '30 days', now() + interval '30 days 3 hours', 'UTC', 'EUR', now());
INSERT INTO booking.seats (event_id, seat_id, price, position)
SELECT '{event}', seat_id, 2500, row_number() OVER () - 1 FROM seed;
INSERT INTO booking.bookings (booking_id, event_id, customer_id, hold_id, status, amount, currency, payment_due_at, payment_provider_ref,
    created_at, confirmed_at, updated_at, client_id)
SELECT booking_id, '{event}', 'cus_' || seat_id, gen_random_uuid(), 'confirmed', 2500, 'EUR', now(), intent, now(), now(), now(), 'bench'
FROM seed;
INSERT INTO booking.booking_seats (booking_id, event_id, seat_id, price) SELECT booking_id, '{event}', seat_id, 2500 FROM seed;
INSERT INTO booking.sagas (booking_id, state, version, created_at, updated_at) SELECT booking_id, 'confirmed', 2, now(), now() FROM seed;
INSERT INTO booking.saga_steps (booking_id, step, kind, outcome, from_state, to_state, detail, occurred_at)
SELECT booking_id, 'booking_confirmed', 'forward', 'succeeded', 'awaiting_payment', 'confirmed', 'seeded by bench-cancel', now() FROM seed;
-- The accepted payment each confirmation rests on, as a verified webhook would have stored it, and the
-- two events of the flow (payment.succeeded, booking.confirmed), already published, so the invariant
-- checker finds what the real flow leaves.
ALTER TABLE seed ADD COLUMN payment_event uuid DEFAULT gen_random_uuid();
INSERT INTO payments.provider_events (id, provider, provider_event_id, event_type, status, booking_id, provider_ref, amount, currency,
    domain_event_id, domain_event_type, raw_body, body_sha256, signed_at, received_at)
SELECT gen_random_uuid(), 'stripe', 'evt_seed_' || intent, 'payment_intent.succeeded', 'accepted', booking_id, intent, 2500, 'EUR',
    payment_event, 'payment.succeeded', '\\x7b7d'::bytea, sha256('\\x7b7d'::bytea), now(), now()
FROM seed;
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope, published_at)
SELECT payment_event, 'stream:payments', 'payments-webhook', booking_id::text, 1, 'payment.succeeded', jsonb_build_object('data',
    jsonb_build_object('booking_id', booking_id, 'provider_ref', intent, 'amount', 2500, 'currency', 'EUR')), now() FROM seed
UNION ALL
SELECT gen_random_uuid(), 'stream:booking', 'booking', booking_id::text, 1, 'booking.confirmed', jsonb_build_object('data',
    jsonb_build_object('booking_id', booking_id, 'provider_ref', intent, 'amount', 2500, 'currency', 'EUR')), now() FROM seed;
INSERT INTO messaging.inbox (consumer, event_id) SELECT 'booking-saga', payment_event FROM seed;
INSERT INTO messaging.aggregate_sequences (producer, aggregate_id, last_sequence)
SELECT producer, booking_id::text, 1 FROM seed CROSS JOIN (VALUES ('payments-webhook'), ('booking')) AS p (producer);
COMMIT;
ANALYZE;
""")
        if result.returncode != 0:
            raise SystemExit(f"bench-cancel: writing the bookings failed: {result.stderr.strip()}")
    finally:
        os.unlink(path)
    return event


def main():
    parser = argparse.ArgumentParser()
    for name in ("bookings", "booking", "simulator", "psql", "database", "booking-log", "postgres-log", "check"):
        parser.add_argument(f"--{name}", required=True, type=int if name == "bookings" else str)
    args = parser.parse_args()
    started = time.monotonic()
    pairs = pay_intents(args)
    print(f"bench-cancel: {len(pairs)} intents paid at the simulator in {time.monotonic() - started:.1f} s", flush=True)
    event = seed(args, pairs)
    print(f"bench-cancel: event {event} with {len(pairs)} confirmed bookings written", flush=True)
    postgres_log_before = os.path.getsize(args.postgres_log) if os.path.exists(args.postgres_log) else 0

    cancel_at = time.monotonic()
    status, answer = call(
        "POST", f"{args.booking}/v1/events/{event}/cancel", {"reason": "benchmark"}, headers={"Authorization": ADMIN, "X-Operator": "bench"})
    assert status == 202, (status, answer)
    deadline = cancel_at + float(os.environ.get("BENCH_CANCEL_TIMEOUT", "900"))
    cancellation = {}
    while time.monotonic() < deadline:
        cancellation = call("GET", f"{args.booking}/v1/events/{event}", headers={"Authorization": ADMIN})[1]["cancellation"]
        refunds = cancellation["refunds"]
        print(
            f"bench-cancel: {time.monotonic() - cancel_at:6.1f} s  bookings {cancellation['bookings_done']}/{cancellation['bookings_total']}"
            f"  refunds requested {refunds['requested']} succeeded {refunds['succeeded']} failed {refunds['failed']}", flush=True)
        if refunds["succeeded"] + refunds["failed"] >= len(pairs):
            break
        time.sleep(1)
    wall = time.monotonic() - cancel_at

    row = psql(args, f"""
SELECT extract(epoch FROM cancellation_completed_at - cancelled_at),
       (SELECT extract(epoch FROM max(b.refunded_at) - e.cancelled_at) FROM booking.bookings b WHERE b.event_id = e.event_id),
       (SELECT count(*) FROM booking.bookings b WHERE b.event_id = e.event_id AND b.status = 'refunded'),
       (SELECT extract(epoch FROM max(r.requested_at) - min(r.requested_at)) FROM payments.refunds r),
       (SELECT count(*) FROM payments.refunds r WHERE r.outcome = 'accepted'),
       (SELECT extract(epoch FROM max(r.requested_at) - e.cancelled_at) FROM payments.refunds r)
FROM booking.events e WHERE e.event_id = '{event}'""").split("|")
    work_s, to_last_refunded_s, refunded, worker_span_s, accepted, last_refund_call_s = row
    work_s, to_last_refunded_s, worker_span_s = float(work_s or 0), float(to_last_refunded_s or 0), float(worker_span_s or 0)
    refunded, accepted = int(refunded), int(accepted)
    completion = ""
    with open(args.booking_log, encoding="utf-8", errors="replace") as log:
        for line in log:
            if "event cancellation complete" in line:
                completion = line
    def field(name):
        match = re.search(rf'"?{name}"?[=:]\s*"?(\d+)', completion)
        return int(match.group(1)) if match else None
    slow = []
    with open(args.postgres_log, encoding="utf-8", errors="replace") as log:
        log.seek(postgres_log_before)
        slow = [line.strip() for line in log if "duration:" in line]
    _, listed = call("GET", f"{args.simulator}/v1/refunds", headers={"Authorization": PROVIDER_KEY})
    per_intent = {}
    for refund in listed["data"]:
        per_intent[refund["payment_intent"]] = per_intent.get(refund["payment_intent"], 0) + 1
    intents = {intent for _, intent in pairs}
    check = subprocess.run([args.check, "check"], capture_output=True, text=True)

    rate = accepted / worker_span_s if worker_span_s > 0 else float("nan")
    checks = {
        f"every booking refunded ({refunded}/{len(pairs)})": refunded == len(pairs),
        f"one refund per intent at the simulator ({len(per_intent)} intents, max {max(per_intent.values(), default=0)})":
            set(per_intent) == intents and all(count == 1 for count in per_intent.values()),
        f"booking check (exit {check.returncode})": check.returncode == 0,
    }
    print()
    print(f"cancellation of {len(pairs)} confirmed bookings, {os.cpu_count()} cores")
    print(f"  to the last refunded           {to_last_refunded_s:8.1f} s   ({len(pairs) / to_last_refunded_s if to_last_refunded_s else float('nan'):.0f} refunds/s end to end; followed {wall:.1f} s)")
    print(f"  the booking side's work        {work_s:8.1f} s   ({field('batches')} batches, longest transaction {field('longest_batch_ms')} ms, mean {field('mean_batch_ms')} ms)")
    print(f"  provider worker refund calls   {worker_span_s:8.1f} s   ({accepted} accepted: {rate:.0f} refunds/s; last call {float(last_refund_call_s or 0):.1f} s after the cancellation)")
    print(f"  Postgres statements >= 100 ms  {len(slow):8d}")
    for line in slow[:5]:
        print(f"    {line[:200]}")
    goal = rate > 500 and (field("longest_batch_ms") or 0) <= 100
    print(f"  goal (> 500 refunds/s, no transaction over 100 ms): {'met' if goal else 'missed'}")
    for name, ok in checks.items():
        print(f"  {'OK  ' if ok else 'FAIL'} {name}")
    if check.returncode != 0:
        for line in check.stdout.splitlines():
            if re.match(r"^[a-z_]+ +\d+ +VIOLATION", line):
                print(f"    {line}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
