"""payments-webhook against the official webhook SDKs (run by scripts/webhook-sdk-tests).

Deliveries are signed by the official Stripe SDK (`stripe`) and the Standard Webhooks SDK
(`standardwebhooks`), each pinned in scripts/lib/webhook-sdk-requirements.txt, and sent to a running
`payments-webhook serve`. Every case checks the HTTP answer AND what was stored, through the admin
API (`GET /v1/admin/payment-events?provider=...&provider_event_id=...`). Where the SDK has an
opinion, the case also checks that the SDK itself accepts (or refuses) what is sent, so the service
and the SDKs are seen to agree.

The service trusts X-Forwarded-For from loopback (TRUSTED_PROXIES=127.0.0.1/32,::1/128), and every test sends from its own X-Forwarded-For
source, so the refusals of one test never spend another's budget of failed verifications.

Environment (set by scripts/webhook-sdk-tests):
  PAYMENTS_WEBHOOK_URL          http://127.0.0.1:PORT of the service
  PAYMENTS_WEBHOOK_ADMIN_TOKEN  its ADMIN_TOKEN
  SDK_STRIPE_SECRETS            its STRIPE_WEBHOOK_SECRETS (comma-separated: the new secret, then the old one)
  SDK_STRIPE_ROTATED_OUT_SECRET a secret it no longer has
  SDK_PAYMENT_EVENTS_SECRETS    its PAYMENT_EVENTS_SECRETS (comma-separated whsec_<base64>)
  SDK_PAYMENT_EVENTS_FOREIGN_SECRET  a whsec_<base64> secret it does not have
"""

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
import stripe
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE_URL = os.environ["PAYMENTS_WEBHOOK_URL"]
ADMIN_TOKEN = os.environ["PAYMENTS_WEBHOOK_ADMIN_TOKEN"]
STRIPE_SECRETS = os.environ["SDK_STRIPE_SECRETS"].split(",")
STRIPE_NEW_SECRET, STRIPE_OLD_SECRET = STRIPE_SECRETS[0], STRIPE_SECRETS[1]
STRIPE_ROTATED_OUT_SECRET = os.environ["SDK_STRIPE_ROTATED_OUT_SECRET"]
EVENT_SECRETS = os.environ["SDK_PAYMENT_EVENTS_SECRETS"].split(",")
EVENT_FOREIGN_SECRET = os.environ["SDK_PAYMENT_EVENTS_FOREIGN_SECRET"]

STRIPE_PATH = "/v1/webhooks/stripe"
EVENTS_PATH = "/v1/payment-events"
MAX_BODY_BYTES = 256 * 1024
TEN_MINUTES = 600

session = requests.Session()


# ---------------------------------------------------------------------------------------------
# Helpers


def stripe_signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header the official SDK makes for `payload`.

    stripe 16.1.0 (pinned) has the public test helper `stripe.WebhookSignature.generate_signature_header`
    named by the issue, which is what is used. The fallbacks are for other versions only: newer
    releases call it `stripe.Webhook.generate_test_header_string`, and the SDK's own HMAC
    (`WebhookSignature._compute_signature`) exists in every version.
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    generate = getattr(stripe.WebhookSignature, "generate_signature_header", None)
    if generate is not None:
        return generate(payload, secret, timestamp=timestamp)
    generate = getattr(stripe.Webhook, "generate_test_header_string", None)
    if generate is not None:  # pragma: no cover - not in the pinned version
        return generate(payload=payload, secret=secret, timestamp=timestamp)
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)  # pragma: no cover
    return f"t={timestamp},v1={signature}"  # pragma: no cover


def stripe_sdk_accepts(payload: str, header: str, secret: str) -> bool:
    """Whether `stripe.Webhook.construct_event` (the SDK's receiving side) accepts the delivery."""
    try:
        stripe.Webhook.construct_event(payload, header, secret)
        return True
    except stripe.SignatureVerificationError:
        return False


def stripe_event(event_type: str = "payment_intent.succeeded", *, event_id: str | None = None) -> tuple[dict, str]:
    """A Stripe event like the provider sends (pretty-printed, as Stripe does), and its JSON text."""
    booking_id = str(uuid.uuid4())
    intent = f"pi_sdk_{uuid.uuid4().hex[:24]}"
    if event_type == "charge.refunded":
        obj = {
            "id": f"ch_sdk_{uuid.uuid4().hex[:24]}", "object": "charge", "amount": 4500, "amount_refunded": 4500,
            "currency": "eur", "payment_intent": intent, "refunded": True, "metadata": {"booking_id": booking_id},
            "refunds": {"object": "list", "data": [{"id": f"re_sdk_{uuid.uuid4().hex[:16]}", "object": "refund", "amount": 4500,
                                                    "metadata": {"refund_id": str(uuid.uuid4())}}]},
        }
    elif event_type.startswith("payment_intent."):
        obj = {
            "id": intent, "object": "payment_intent", "amount": 4500,
            "amount_received": 4500 if event_type == "payment_intent.succeeded" else 0, "currency": "eur",
            "metadata": {"booking_id": booking_id},
            "last_payment_error": None if event_type == "payment_intent.succeeded" else {"code": "card_declined", "message": "Your card was declined."},
        }
    else:
        obj = {"id": f"cus_sdk_{uuid.uuid4().hex[:14]}", "object": "customer", "email": "sdk@example.com"}
    event = {
        "id": event_id or f"evt_sdk_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return event, json.dumps(event, indent=2)


def payment_event(event_type: str = "payment.succeeded", *, event_id: str | None = None) -> tuple[dict, str]:
    """An internal payment event (DESIGN.md, POST /v1/payment-events) and its JSON text."""
    event = {
        "id": event_id or f"pay_evt_sdk_{uuid.uuid4().hex}",
        "type": event_type,
        "booking_id": str(uuid.uuid4()),
        "amount": {"payment.succeeded": 4500, "payment.failed": 1999, "refund.succeeded": 4500, "refund.failed": 250}[event_type],
        "currency": {"payment.succeeded": "EUR", "payment.failed": "USD", "refund.succeeded": "JPY", "refund.failed": "KWD"}[event_type],
        "provider_ref": f"pi_sdk_{uuid.uuid4().hex[:24]}",
        "occurred_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }
    if event_type == "payment.failed":
        event["reason"] = "card_declined"
    if event_type.startswith("refund."):
        event["refund_id"] = str(uuid.uuid4())
    if event_type == "refund.failed":
        event["error"] = "charge_already_refunded"
    return event, json.dumps(event)


def standard_headers(payload: str, secret: str, *, message_id: str | None = None, timestamp: datetime | None = None) -> dict:
    """The three Standard Webhooks headers the official SDK makes for `payload`."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(message_id, timestamp, payload)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def standard_sdk_accepts(payload: str, headers: dict, secret: str) -> bool:
    try:
        Webhook(secret).verify(payload, headers)
        return True
    except WebhookVerificationError:
        return False


def post(path: str, body: bytes | str, headers: dict, source: str) -> requests.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return session.post(BASE_URL + path, data=data,
                        headers={"Content-Type": "application/json", "X-Forwarded-For": source, **headers}, timeout=30)


def admin_get(path: str, **params) -> requests.Response:
    return session.get(BASE_URL + path, params=params, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


def stored(provider: str, provider_event_id: str) -> list[dict]:
    """The stored rows of one event, through the admin API."""
    response = admin_get("/v1/admin/payment-events", provider=provider, provider_event_id=provider_event_id)
    assert response.status_code == 200, response.text
    return response.json()["events"]


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def source(request) -> str:
    """An X-Forwarded-For source of this test alone."""
    return f"sdk-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------
# Stripe: signatures made by the official SDK


@pytest.mark.parametrize(
    ("event_type", "status", "domain_event_type", "amount"),
    [
        ("payment_intent.succeeded", "accepted", "payment.succeeded", 4500),
        ("payment_intent.payment_failed", "accepted", "payment.failed", 4500),
        ("charge.refunded", "accepted", "refund.succeeded", 4500),
        ("customer.created", "ignored", None, None),
    ],
)
def test_stripe_sdk_signature_is_accepted_and_stored_once(source, event_type, status, domain_event_type, amount):
    event, payload = stripe_event(event_type)
    header = stripe_signature_header(payload, STRIPE_NEW_SECRET)
    assert stripe_sdk_accepts(payload, header, STRIPE_NEW_SECRET)

    response = post(STRIPE_PATH, payload, {"Stripe-Signature": header}, source)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    receipt = response.json()
    assert receipt["received"] is True
    assert receipt["provider_event_id"] == event["id"]
    assert receipt["status"] == status
    assert receipt["duplicate"] is False
    rows = stored("stripe", event["id"])
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == receipt["id"]
    assert row["type"] == event_type
    assert row["status"] == status
    assert row["domain_event_type"] == domain_event_type
    assert row["amount"] == amount
    assert row["raw_body"] == payload
    assert row["raw_body_encoding"] == "utf-8"
    assert row["delivery_id"] is None
    if domain_event_type is not None:
        assert row["currency"] == "EUR"
        assert row["booking_id"] == event["data"]["object"]["metadata"]["booking_id"]
    assert admin_get(f"/v1/admin/payment-events/{receipt['id']}").json() == row


def _tamper(payload: str) -> str:
    """The same body with one byte changed (a digit of the amount)."""
    index = payload.index('"amount": 4500') + len('"amount": ')
    return payload[:index] + "5" + payload[index + 1:]


REFUSALS = {
    # name: (payload, now) -> (the body sent, its Stripe-Signature header)
    "tampered_body": lambda payload, now: (_tamper(payload), stripe_signature_header(payload, STRIPE_NEW_SECRET, now)),
    "timestamp_10_minutes_old": lambda payload, now: (payload, stripe_signature_header(payload, STRIPE_NEW_SECRET, now - TEN_MINUTES)),
    "timestamp_10_minutes_ahead": lambda payload, now: (payload, stripe_signature_header(payload, STRIPE_NEW_SECRET, now + TEN_MINUTES)),
    "rotated_out_secret": lambda payload, now: (payload, stripe_signature_header(payload, STRIPE_ROTATED_OUT_SECRET, now)),
    "only_v0": lambda payload, now: (payload, stripe_signature_header(payload, STRIPE_NEW_SECRET, now).replace(",v1=", ",v0=")),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_stripe_refusals_are_400_and_store_nothing(source, case):
    event, payload = stripe_event()
    now = int(time.time())
    body, header = REFUSALS[case](payload, now)
    # The SDK refuses these too, except a timestamp in the future: stripe-python checks only the
    # past (the service, per DESIGN.md, refuses both directions).
    assert stripe_sdk_accepts(body, header, STRIPE_NEW_SECRET) is (case == "timestamp_10_minutes_ahead")

    response = post(STRIPE_PATH, body, {"Stripe-Signature": header}, source)

    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_signature"
    assert response.json()["error"]["details"] is None
    assert stored("stripe", event["id"]) == []


def test_stripe_header_with_two_v1_where_only_the_second_is_valid_is_accepted(source):
    event, payload = stripe_event()
    now = int(time.time())
    valid = stripe_signature_header(payload, STRIPE_NEW_SECRET, now).split(",v1=")[1]
    wrong = stripe_signature_header(payload, STRIPE_ROTATED_OUT_SECRET, now).split(",v1=")[1]
    header = f"t={now},v1={wrong},v1={valid}"
    assert stripe_sdk_accepts(payload, header, STRIPE_NEW_SECRET)

    response = post(STRIPE_PATH, payload, {"Stripe-Signature": header}, source)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    assert len(stored("stripe", event["id"])) == 1


def test_stripe_signature_with_the_second_configured_secret_is_accepted(source):
    event, payload = stripe_event()
    header = stripe_signature_header(payload, STRIPE_OLD_SECRET)
    assert stripe_sdk_accepts(payload, header, STRIPE_OLD_SECRET)

    response = post(STRIPE_PATH, payload, {"Stripe-Signature": header}, source)

    assert response.status_code == 200, response.text
    assert len(stored("stripe", event["id"])) == 1


def test_stripe_duplicate_delivery_is_200_duplicate_and_still_one_row(source):
    event, payload = stripe_event()
    first = post(STRIPE_PATH, payload, {"Stripe-Signature": stripe_signature_header(payload, STRIPE_NEW_SECRET)}, source)
    assert first.status_code == 200, first.text
    # Stripe retries with a fresh timestamp (and so a fresh signature) over the same body.
    again = post(STRIPE_PATH, payload, {"Stripe-Signature": stripe_signature_header(payload, STRIPE_NEW_SECRET, int(time.time()) + 1)}, source)

    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert len(stored("stripe", event["id"])) == 1


# ---------------------------------------------------------------------------------------------
# Standard Webhooks: signatures made by the official SDK


@pytest.mark.parametrize("event_type", ["payment.succeeded", "payment.failed", "refund.succeeded", "refund.failed"])
def test_standard_webhooks_sdk_signature_is_accepted_for_each_type(source, event_type):
    event, payload = payment_event(event_type)
    headers = standard_headers(payload, EVENT_SECRETS[0])
    assert standard_sdk_accepts(payload, headers, EVENT_SECRETS[0])

    response = post(EVENTS_PATH, payload, headers, source)

    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt == {"received": True, "id": receipt["id"], "provider_event_id": event["id"], "status": "accepted", "duplicate": False}
    rows = stored("internal", event["id"])
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == receipt["id"]
    assert row["type"] == event_type
    assert row["domain_event_type"] == event_type
    assert row["amount"] == event["amount"]
    assert row["currency"] == event["currency"]
    assert row["booking_id"] == event["booking_id"]
    assert row["provider_ref"] == event["provider_ref"]
    assert row["delivery_id"] == headers["webhook-id"]
    assert row["raw_body"] == payload


def test_standard_webhooks_signature_with_the_second_configured_secret_is_accepted(source):
    event, payload = payment_event()
    headers = standard_headers(payload, EVENT_SECRETS[1])

    response = post(EVENTS_PATH, payload, headers, source)

    assert response.status_code == 200, response.text
    assert len(stored("internal", event["id"])) == 1


STANDARD_REFUSALS = {
    "forged_with_another_secret": lambda payload: (payload, standard_headers(payload, EVENT_FOREIGN_SECRET)),
    "tampered_body": lambda payload: (payload.replace('"amount": 4500', '"amount": 4501'), standard_headers(payload, EVENT_SECRETS[0])),
    "timestamp_10_minutes_old": lambda payload: (
        payload, standard_headers(payload, EVENT_SECRETS[0], timestamp=datetime.now(timezone.utc) - timedelta(seconds=TEN_MINUTES))),
}


@pytest.mark.parametrize("case", sorted(STANDARD_REFUSALS))
def test_standard_webhooks_refusals_are_400_and_store_nothing(source, case):
    event, payload = payment_event()
    body, headers = STANDARD_REFUSALS[case](payload)
    assert body != payload or case != "tampered_body"
    assert not standard_sdk_accepts(body, headers, EVENT_SECRETS[0])

    response = post(EVENTS_PATH, body, headers, source)

    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_signature"
    assert stored("internal", event["id"]) == []


def test_standard_webhooks_duplicate_delivery_is_200_duplicate_and_still_one_row(source):
    event, payload = payment_event()
    headers = standard_headers(payload, EVENT_SECRETS[0])
    first = post(EVENTS_PATH, payload, headers, source)
    assert first.status_code == 200, first.text
    # A retry: same message id, new timestamp and signature.
    again = post(EVENTS_PATH, payload, standard_headers(payload, EVENT_SECRETS[0], message_id=headers["webhook-id"]), source)

    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert len(stored("internal", event["id"])) == 1


# ---------------------------------------------------------------------------------------------
# Malformed bodies, size limit, rate limit


def _malformed_rows(provider: str, stored_id: str) -> list[dict]:
    response = admin_get("/v1/admin/payment-events", provider=provider, status="malformed", limit=500)
    assert response.status_code == 200, response.text
    return [row for row in response.json()["events"] if row["id"] == stored_id]


@pytest.mark.parametrize("route", ["stripe", "internal"])
def test_malformed_json_with_a_valid_signature_is_400_and_kept_once(source, route):
    payload = '{"id": "evt_sdk_malformed_%s", "type": "payment_intent.succeeded", "data": {' % uuid.uuid4().hex
    if route == "stripe":
        def deliver():
            header = stripe_signature_header(payload, STRIPE_NEW_SECRET)
            # The SDK verifies the signature; only reading the JSON fails.
            assert stripe.WebhookSignature.verify_header(payload, header, STRIPE_NEW_SECRET, tolerance=300)
            return post(STRIPE_PATH, payload, {"Stripe-Signature": header}, source)
    else:
        def deliver():
            headers = standard_headers(payload, EVENT_SECRETS[0])
            Webhook(EVENT_SECRETS[0]).verify(payload, headers, json_parse=False)
            return post(EVENTS_PATH, payload, headers, source)

    first = deliver()
    assert first.status_code == 400, first.text
    assert error_code(first) == "malformed_payload"
    stored_id = first.json()["error"]["details"]["stored_id"]
    row = admin_get(f"/v1/admin/payment-events/{stored_id}").json()
    assert row["status"] == "malformed"
    assert row["provider"] == route
    assert row["provider_event_id"] is None
    assert row["raw_body"] == payload
    assert row["error"]

    again = deliver()
    assert again.status_code == 400, again.text
    assert again.json()["error"]["details"]["stored_id"] == stored_id
    assert len(_malformed_rows(route, stored_id)) == 1


def test_body_over_256_kib_is_413_and_stores_nothing(source):
    event, _ = stripe_event()
    event["data"]["object"]["metadata"]["padding"] = "x" * (MAX_BODY_BYTES + 1024)
    payload = json.dumps(event)
    assert len(payload.encode()) > MAX_BODY_BYTES

    response = post(STRIPE_PATH, payload, {"Stripe-Signature": stripe_signature_header(payload, STRIPE_NEW_SECRET)}, source)

    assert response.status_code == 413, response.text
    assert error_code(response) == "payload_too_large"
    assert response.json()["error"]["details"]["limit_bytes"] == MAX_BODY_BYTES
    assert stored("stripe", event["id"]) == []


def test_body_of_exactly_256_kib_is_accepted(source):
    event, _ = stripe_event()
    event["data"]["object"]["metadata"]["padding"] = ""
    filler = MAX_BODY_BYTES - len(json.dumps(event).encode())
    event["data"]["object"]["metadata"]["padding"] = "x" * filler
    payload = json.dumps(event)
    assert len(payload.encode()) == MAX_BODY_BYTES

    response = post(STRIPE_PATH, payload, {"Stripe-Signature": stripe_signature_header(payload, STRIPE_NEW_SECRET)}, source)

    assert response.status_code == 200, response.text
    assert len(stored("stripe", event["id"])) == 1


def test_a_source_that_keeps_failing_verification_is_rate_limited_and_others_are_not(source):
    """UNVERIFIED_BURST (20) failed verifications per source, refilled at 2 per second."""
    event, payload = stripe_event()
    forged = stripe_signature_header(payload, STRIPE_ROTATED_OUT_SECRET)
    statuses, retry_after = [], []
    for _ in range(25):
        response = post(STRIPE_PATH, payload, {"Stripe-Signature": forged}, source)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert error_code(response) == "rate_limited"
            retry_after.append(response.headers.get("Retry-After"))

    assert statuses[:20] == [400] * 20, statuses
    assert statuses[-3:] == [429] * 3, statuses
    assert all(value is not None and value.isdigit() and int(value) >= 1 for value in retry_after), retry_after
    assert stored("stripe", event["id"]) == []

    # A correctly signed event from another source is still taken.
    other_event, other_payload = stripe_event()
    response = post(STRIPE_PATH, other_payload, {"Stripe-Signature": stripe_signature_header(other_payload, STRIPE_NEW_SECRET)},
                    source + "-other")
    assert response.status_code == 200, response.text
    assert len(stored("stripe", other_event["id"])) == 1
