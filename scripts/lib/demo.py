#!/usr/bin/env python3
"""The walk-through `scripts/run` shows: one booking from hold to payout, every step verified.

Run by `scripts/run` once the services answer (Python's standard library only; no user needs it at
run time). It reads the same settings the services got (ports, ADMIN_TOKEN, API_KEYS,
PROVIDER_API_KEY) from the environment and talks to the services over HTTP like any client:

  a demo host at payout, a local webhook receiver subscribed at notification, an event with two
  seats that starts in DEMO_SALES_SECONDS (10) and ends 3 s later; then, one line per step as it
  happens: seats held, booking created, payment intent created at the simulator, paid, the signed
  webhook accepted, booking confirmed, the notification delivered and its signature verified, a
  second booking cancelled and then paid late (refunded, review dead letter), the event ended, the
  payout run with its report line and the transfer.

Every run uses a host and event of its own, so it can run again on the same data. A date has one
payout run: when today's run was done before this demo's booking, the demo shows the booking's
amount waiting in the host's balance for the next run and says so.

Exit status: 0 when every step was verified, 1 when one failed (the line says what was expected and
what was seen), 2 on a usage error. With --stay, the receiver keeps printing deliveries after the
steps until SIGINT or SIGTERM. The demo's endpoint is deleted when the demo ends.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

ENDPOINT_DESCRIPTION = "scripts/run demo receiver"


class StepFailed(Exception):
    pass


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value else default


def utc(instant):
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- HTTP -------------------------------------------------------------------------------------


class Client:
    def __init__(self, name, base_url, token):
        self.name = name
        self.base_url = base_url
        self.token = token

    def call(self, method, path, body=None, headers=None, expect=(200, 201, 202, 204), raw=False):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise StepFailed(f"{self.name}: {method} {path} failed: {error}") from error
        if status not in expect:
            excerpt = payload[:300].decode("utf-8", "replace")
            raise StepFailed(f"{self.name}: {method} {path} answered {status}, expected {expect}: {excerpt}")
        if raw:
            return status, payload.decode("utf-8", "replace")
        if not payload:
            return status, None
        try:
            return status, json.loads(payload)
        except ValueError as error:
            raise StepFailed(f"{self.name}: {method} {path} answered {status} with a body that is not JSON") from error

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)[1]

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body if body is not None else {}, **kwargs)[1]


def eventually(what, probe, timeout=30.0, interval=0.2):
    """Calls probe() until it returns something truthy; fails naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- the receiver -----------------------------------------------------------------------------


class Receiver:
    """A local Standard Webhooks receiver: verifies each delivery's signature, keeps what it got."""

    def __init__(self, out):
        self.secrets = []
        self.deliveries = []  # (event type, envelope, verified)
        self.rejected = []
        self.lock = threading.Condition()
        self.out = out
        self.echo = False
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                verdict = receiver.verify(self.headers, body)
                self.send_response(204 if verdict is None else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.record(body, verdict)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers, body):
        """None when the delivery is authentic and fresh, else why not."""
        message_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signatures = (headers.get("webhook-signature") or "").split()
        if not message_id or not stamp or not signatures:
            return "missing webhook-id, webhook-timestamp or webhook-signature"
        try:
            if abs(time.time() - int(stamp)) > 300:
                return f"timestamp {stamp} is more than 5 minutes away"
        except ValueError:
            return f"timestamp {stamp!r} is not a number"
        signed = f"{message_id}.{stamp}.".encode() + body
        for secret in list(self.secrets):
            key = base64.b64decode(secret.removeprefix("whsec_"))
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for signature in signatures:
                version, _, value = signature.partition(",")
                if version == "v1" and hmac.compare_digest(value, expected):
                    return None
        return "no signature matches the endpoint's secret"

    def record(self, body, verdict):
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = {}
        kind = envelope.get("type", "?")
        with self.lock:
            if verdict is None:
                self.deliveries.append((kind, envelope))
            else:
                self.rejected.append((kind, verdict))
            self.lock.notify_all()
        if self.echo:
            state = "signature verified" if verdict is None else f"REJECTED: {verdict}"
            self.out(f"receiver: {kind} {envelope.get('id', '')} ({state})")

    def wait_for(self, what, match, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                if self.rejected:
                    kind, why = self.rejected[0]
                    raise StepFailed(f"the receiver rejected a {kind} delivery: {why}")
                for kind, envelope in self.deliveries:
                    if match(kind, envelope):
                        return envelope
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(kind for kind, _ in self.deliveries) or "nothing"
                    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what} (received: {seen})")
                self.lock.wait(left)


def about(envelope, key, value):
    data = envelope.get("data") or {}
    return data.get(key) == value or envelope.get("aggregate_id") == value


# --- the walk-through -------------------------------------------------------------------------


class Demo:
    def __init__(self, args):
        self.started = time.monotonic()
        self.step_number = 0
        self.steps = 13
        self.summary_file = args.summary_file
        api_key = env("API_KEYS", "dev-api-key").split(",")[0].strip()
        if ":" in api_key:
            api_key = api_key.split(":", 1)[1]
        admin = env("ADMIN_TOKEN", "dev-admin-token")
        self.booking = Client("booking", f"http://127.0.0.1:{env('BOOKING_PORT', '8080')}", api_key)
        self.booking_admin = Client("booking", self.booking.base_url, admin)
        self.payments = Client("payments-webhook", f"http://127.0.0.1:{env('PAYMENTS_WEBHOOK_PORT', '8081')}", admin)
        self.notification = Client("notification", f"http://127.0.0.1:{env('NOTIFICATION_PORT', '8082')}", admin)
        self.payout = Client("payout", f"http://127.0.0.1:{env('PAYOUT_PORT', '8083')}", admin)
        simulator_url = f"http://127.0.0.1:{env('PROVIDER_SIMULATOR_PORT', '8090')}"
        self.simulator = Client("provider-simulator", simulator_url, env("PROVIDER_API_KEY", "sk_test_local_simulator"))
        self.simulator_control = Client("provider-simulator", simulator_url, None)
        self.sales_seconds = int(env("DEMO_SALES_SECONDS", "10"))
        self.receiver = Receiver(self.out)
        self.endpoint_id = None
        self.ids = {}

    def out(self, line):
        print(line, flush=True)

    def step(self, title, detail):
        self.step_number += 1
        elapsed = time.monotonic() - self.started
        self.out(f"  ✓ {self.step_number:>2}/{self.steps} {title}: {detail}  [{elapsed:5.1f} s]")

    # - set-up -

    def setup(self):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + os.urandom(2).hex()
        self.host_id = f"demo_host_{stamp}"
        self.account = f"acct_demo{stamp}"
        self.customer = f"demo_customer_{stamp}"
        self.late_customer = f"demo_late_customer_{stamp}"
        # Endpoints of earlier demos that did not end cleanly (killed) would fail forever: delete them.
        listing = self.notification.get("/v1/endpoints?limit=100")
        for endpoint in listing.get("endpoints", []):
            if endpoint.get("description") == ENDPOINT_DESCRIPTION:
                self.notification.call("DELETE", f"/v1/endpoints/{endpoint['endpoint_id']}", expect=(204, 404))

        host = self.payout.call("PUT", f"/v1/hosts/{self.host_id}", {"payout_account": self.account, "fee_bps": 1000})[1]
        if host.get("payout_account") != self.account:
            raise StepFailed(f"payout: the host came back as {host}")
        endpoint = self.notification.post(
            "/v1/endpoints", {"url": self.receiver.url, "description": ENDPOINT_DESCRIPTION}, expect=(201,)
        )
        self.endpoint_id = endpoint["endpoint_id"]
        self.receiver.secrets.append(endpoint["secret"])
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.starts_at = now + timedelta(seconds=self.sales_seconds)
        self.ends_at = self.starts_at + timedelta(seconds=3)
        event = self.booking_admin.post(
            "/v1/events",
            {
                "name": "Demo concert",
                "host_id": self.host_id,
                "starts_at": utc(self.starts_at),
                "ends_at": utc(self.ends_at),
                "time_zone": "UTC",
                "currency": "EUR",
                "seats": [{"seat_id": "A1", "price": 4500}, {"seat_id": "A2", "price": 3000}],
            },
            expect=(201,),
        )
        self.event_id = event["event_id"]
        self.ids.update(event_id=self.event_id, host_id=self.host_id, endpoint_id=self.endpoint_id)
        self.out(
            f"  demo event {self.event_id} (host {self.host_id}, account {self.account}): seats A1 4500 and A2 3000 EUR,"
            f" on sale until {utc(self.starts_at)}, ends {utc(self.ends_at)}"
        )
        self.out(f"  demo webhook endpoint {self.endpoint_id} -> {self.receiver.url} (every event type)")

    def seat_states(self):
        seats = self.booking.get(f"/v1/events/{self.event_id}/seats")["seats"]
        return {seat["seat_id"]: seat["state"] for seat in seats}

    def hold_and_book(self, seat, customer, key):
        hold = self.booking.post(
            "/v1/holds", {"event_id": self.event_id, "seat_ids": [seat], "customer_id": customer}, expect=(201,)
        )
        booking = self.booking.post(
            "/v1/bookings",
            {"hold_id": hold["hold_id"], "customer_id": customer},
            headers={"Idempotency-Key": key},
            expect=(201,),
        )
        return hold, booking

    def booking_view(self, booking_id, customer):
        query = urllib.parse.urlencode({"customer_id": customer})
        return self.booking.get(f"/v1/bookings/{booking_id}?{query}")

    def intent_of(self, booking_id, customer):
        def probe():
            payment = self.booking_view(booking_id, customer).get("payment") or {}
            return payment.get("provider_ref")

        intent = eventually(f"booking {booking_id}'s payment intent", probe)
        found = self.simulator.get(f"/v1/payment_intents/{intent}")
        return intent, found

    # - the flow -

    def run(self):
        self.setup()

        # 1. seats held (both seats: A2 is the late payment's, below; holds close when the event starts)
        hold, booking = self.hold_and_book("A1", self.customer, f"demo-{self.event_id}-A1")
        states = self.seat_states()
        if states.get("A1") != "held":
            raise StepFailed(f"seat A1 should be held, the seat map says {states}")
        self.step("seats held", f"hold {hold['hold_id'][:12]}... on A1 for {self.customer}, expires {hold['expires_at']}")

        # 2. booking created
        if booking.get("status") != "pending_payment" or booking.get("amount") != 4500:
            raise StepFailed(f"expected a pending_payment booking of 4500, got {booking}")
        self.booking_id = booking["booking_id"]
        self.ids["booking_id"] = self.booking_id
        self.ids["customer_id"] = self.customer
        _, late = self.hold_and_book("A2", self.late_customer, f"demo-{self.event_id}-A2")
        self.late_booking_id = late["booking_id"]
        self.step(
            "booking created",
            f"{self.booking_id} pending_payment, 4500 EUR, due {booking['payment_due_at']}"
            f" (and {self.late_booking_id} on A2 for the late payment below)",
        )

        # 3. payment intent created at the simulator
        intent, found = self.intent_of(self.booking_id, self.customer)
        if found.get("amount") != 4500 or str(found.get("currency", "")).lower() != "eur":
            raise StepFailed(f"the simulator's intent {intent} is {found}")
        self.step("payment intent created at the simulator", f"{intent}, 4500 eur, status {found.get('status')}")

        # 4. paid
        self.simulator_control.post(f"/simulator/payment_intents/{intent}/succeed")
        paid = self.simulator.get(f"/v1/payment_intents/{intent}")
        if paid.get("status") != "succeeded":
            raise StepFailed(f"the intent should have succeeded, the simulator says {paid.get('status')}")
        self.step("paid", f"the customer paid {intent} at the simulator, which sends a signed Stripe webhook")

        # 5. signed webhook accepted
        def accepted():
            query = urllib.parse.urlencode({"booking_id": self.booking_id})
            events = self.payments.get(f"/v1/admin/payment-events?{query}")
            rows = events.get("events") or events.get("payment_events") or []
            return next((row for row in rows if row.get("status") == "accepted"), None)

        event = eventually("payments-webhook to accept the signed webhook", accepted)
        self.step(
            "signed webhook accepted",
            f"{event.get('provider_event_id') or event.get('event_id') or event.get('id')} "
            f"({event.get('provider_event_type') or event.get('type')}) verified and stored once",
        )

        # 6. booking confirmed
        view = eventually(
            "the booking to be confirmed",
            lambda: (lambda v: v if v.get("status") == "confirmed" else None)(self.booking_view(self.booking_id, self.customer)),
        )
        states = self.seat_states()
        if states.get("A1") != "sold":
            raise StepFailed(f"seat A1 should be sold, the seat map says {states}")
        self.step("booking confirmed", f"{self.booking_id} confirmed (saga {view.get('saga_state')}), seat A1 sold")

        # 7. notification delivered and verified
        self.receiver.wait_for(
            f"booking.confirmed of {self.booking_id}",
            lambda kind, envelope: kind == "booking.confirmed" and about(envelope, "booking_id", self.booking_id),
        )
        self.step("notification delivered", "booking.confirmed reached the demo receiver, its webhook-signature verified")

        # 8. a late payment: the customer cancels A2's booking, then pays it anyway
        self.late_payment()

        # 9. the event ended
        wait = (self.ends_at - datetime.now(timezone.utc)).total_seconds() + 0.5
        if wait > 0:
            self.out(f"     waiting {wait:.0f} s for the event to end at {utc(self.ends_at)}")
            time.sleep(wait)
        gross, fee = 4500, 450
        net = gross - fee

        def balance():
            rows = self.payout.get(f"/v1/hosts/{self.host_id}/balance")["balances"]
            row = next((row for row in rows if row["currency"] == "EUR"), None)
            return row if row and row["payable"] + row["pending"] == net else None

        row = eventually(f"the host's balance to reach {net} EUR (4500 minus the 10% fee)", balance)
        self.step(
            "event ended",
            f"host {self.host_id}'s balance: {row['payable']} EUR payable, {row['pending']} pending"
            f" (revenue 4500, fee 450; PAYOUT_SETTLEMENT_DELAY={env('PAYOUT_SETTLEMENT_DELAY', '48h')})",
        )

        # 10-11. the payout run and its report
        self.payout_run(net, gross, fee, row)

    def late_payment(self):
        query = urllib.parse.urlencode({"customer_id": self.late_customer})
        intent, _ = self.intent_of(self.late_booking_id, self.late_customer)
        cancelled = self.booking.post(f"/v1/bookings/{self.late_booking_id}/cancel", {"customer_id": self.late_customer})
        if cancelled.get("status") != "cancelled":
            raise StepFailed(f"cancelling the unpaid booking {self.late_booking_id} answered {cancelled}")
        self.simulator_control.post(f"/simulator/payment_intents/{intent}/succeed")

        def refunded():
            refunds = self.simulator.get(f"/v1/refunds?payment_intent={intent}")["data"]
            done = [refund for refund in refunds if refund.get("status") == "succeeded"]
            return done if done else None

        refunds = eventually(f"the simulator to refund {intent}", refunded)
        if len(refunds) != 1 or refunds[0].get("amount") != 3000:
            raise StepFailed(f"expected one refund of 3000 for {intent}, the simulator holds {refunds}")
        self.step(
            "late payment refunded",
            f"{self.late_booking_id} was cancelled unpaid, then {intent} was paid: refund {refunds[0]['id']} of 3000 EUR",
        )

        def review():
            query = urllib.parse.urlencode({"kind": "review", "aggregate_id": self.late_booking_id})
            letters = self.booking_admin.get(f"/v1/admin/dead-letters?{query}")
            rows = letters.get("dead_letters") or []
            return rows[0] if rows else None

        letter = eventually(f"a review dead letter for {self.late_booking_id}", review)
        self.receiver.wait_for(
            "the dead_letter.recorded notification",
            lambda kind, envelope: kind == "dead_letter.recorded" and self.late_booking_id in json.dumps(envelope),
        )
        view = self.booking.get(f"/v1/bookings/{self.late_booking_id}?{query}")
        self.step(
            "late payment dead-lettered",
            f"review dead letter {letter.get('id')} ({(letter.get('error') or '')[:70]}),"
            f" booking still {view.get('status')}; dead_letter.recorded notified",
        )

    def payout_run(self, net, gross, fee, balance_row):
        status, run = self.payout.call("POST", "/v1/payout-runs", {}, expect=(200, 202))
        run_id = run["run_id"]
        self.ids["run_id"] = run_id
        run = eventually(
            f"payout run {run_id} to finish",
            lambda: (lambda r: r if r.get("status") in ("completed", "failed") else None)(
                self.payout.get(f"/v1/payout-runs/{run_id}")
            ),
            timeout=120,
        )
        if run["status"] != "completed" or not run.get("reconciliation", {}).get("ok"):
            raise StepFailed(f"payout run {run_id} ended {run['status']}: {run.get('reconciliation')}")
        _, report = self.payout.call("GET", f"/v1/payout-runs/{run_id}/report.csv", raw=True)
        lines = report.strip().splitlines()
        header = lines[0].split(",")
        mine = [dict(zip(header, line.split(","))) for line in lines[1:] if line.startswith(self.host_id + ",")]
        hosts = f"{len(lines) - 1} host line{'s' if len(lines) != 2 else ''}"
        unsettled = balance_row["pending"] == net
        if (status == 200 or unsettled) and not mine:
            # Today's run was made before this booking's event ended, or the booking is not settled yet
            # (PAYOUT_SETTLEMENT_DELAY): it waits in the host's balance for a later run.
            if unsettled:
                why = f"its revenue is pending until PAYOUT_SETTLEMENT_DELAY ({env('PAYOUT_SETTLEMENT_DELAY', '48h')}) has passed"
            else:
                why = f"today's run was already done (cut-off {run['cutoff']}) before this booking's event ended"
            self.step("payout run", f"run {run['run_date']} ({run_id}) {run['status']}, reconciliation ok; {why}")
            self.step("payout report", f"{hosts} in the run's report, none for {self.host_id}, as expected")
            after = self.payout.get(f"/v1/hosts/{self.host_id}/balance")["balances"]
            row = next((row for row in after if row["currency"] == "EUR"), {})
            if row.get("payable", 0) + row.get("pending", 0) != net:
                raise StepFailed(f"the host's balance should still hold {net} EUR, it shows {after}")
            tomorrow = (datetime.fromisoformat(run["run_date"]) + timedelta(days=1)).date().isoformat()
            self.step(
                "left for the next run",
                f"the host's balance still holds {row['payable']} EUR payable and {row['pending']} pending;"
                f" the run of {tomorrow} (or a later one) pays it",
            )
            return
        if len(mine) != 1:
            raise StepFailed(f"run {run_id}'s report should have one line for {self.host_id}, it has {len(mine)}")
        line = mine[0]
        expected = {"bookings": "1", "gross": str(gross), "fees": str(fee), "refunds": "0", "net": str(net), "status": "payout"}
        wrong = {key: (line.get(key), value) for key, value in expected.items() if line.get(key) != value}
        if wrong:
            raise StepFailed(f"report line for {self.host_id}: (seen, expected) {wrong}")
        self.step("payout run", f"run {run['run_date']} ({run_id}) {run['status']}, reconciliation ok, {hosts}")
        self.step("payout report", ",".join(header[:10]) + " = " + ",".join(line.get(key, "") for key in header[:10]))
        payout_id = line["payout_id"]
        self.ids["payout_id"] = payout_id
        payout = eventually(
            f"payout {payout_id} to be paid",
            lambda: (lambda p: p if p.get("status") in ("paid", "failed") else None)(self.payout.get(f"/v1/payouts/{payout_id}")),
        )
        if payout["status"] != "paid":
            raise StepFailed(f"payout {payout_id} failed: {payout.get('error')}")
        transfers = self.simulator.get(f"/v1/transfers?destination={self.account}")["data"]
        if len(transfers) != 1 or transfers[0].get("amount") != net:
            raise StepFailed(f"expected one transfer of {net} to {self.account}, the simulator holds {transfers}")
        self.receiver.wait_for(
            f"payout.paid of {payout_id}",
            lambda kind, envelope: kind == "payout.paid" and about(envelope, "payout_id", payout_id),
        )
        self.step("host paid", f"transfer {payout['provider_ref']} of {net} EUR to {self.account}; payout.paid notified")

    def write_summary(self):
        if not self.summary_file:
            return
        with open(self.summary_file, "w", encoding="utf-8") as summary:
            for key, value in self.ids.items():
                summary.write(f"DEMO_{key.upper()}={value}\n")

    def delete_endpoint(self):
        if self.endpoint_id:
            try:
                self.notification.call("DELETE", f"/v1/endpoints/{self.endpoint_id}", expect=(204, 404))
            except StepFailed as error:
                print(f"demo: could not delete endpoint {self.endpoint_id}: {error}", file=sys.stderr)
            self.endpoint_id = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stay", action="store_true", help="keep printing the receiver's deliveries after the steps")
    parser.add_argument("--summary-file", help="write the demo's ids (DEMO_BOOKING_ID=...) here")
    args = parser.parse_args()

    stop = threading.Event()

    def on_signal(number, _frame):
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    demo = Demo(args)
    status = 0
    try:
        demo.out("demo: one booking from hold to payout, every step checked")
        demo.run()
        demo.write_summary()
        demo.out(f"demo: all {demo.steps} steps verified in {time.monotonic() - demo.started:.1f} s")
        if args.stay:
            demo.receiver.echo = True
            while not stop.wait(3600):
                pass
    except StepFailed as error:
        demo.out(f"  ✗ {demo.step_number + 1:>2}/{demo.steps} failed: {error}")
        status = 1
    except KeyboardInterrupt:
        status = 0 if stop.is_set() or args.stay else 130
    finally:
        demo.delete_endpoint()
    return status


if __name__ == "__main__":
    sys.exit(main())
