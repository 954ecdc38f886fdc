"""Schemathesis hooks of scripts/fuzz-api for payments-webhook (loaded through SCHEMATHESIS_HOOKS).

A generated webhook request almost never carries a valid signature, so on its own the fuzzer would
only ever reach the 400 `invalid_signature` branch. This hook signs three in four generated
requests to `POST /v1/webhooks/stripe` and `POST /v1/payment-events` correctly, over the exact bytes
it then sends (it serializes the generated body itself and passes it as the request's data), so
generated bodies reach parsing and storage. The signed header forms vary like real senders': one
`v1`; a wrong `v1` before the right one; a `v0` beside; the second (rotated-in) secret.

Sources for the limit on failed verifications (the service trusts X-Forwarded-For from loopback: TRUSTED_PROXIES=127.0.0.1/32,::1/128):
signed requests come from one X-Forwarded-For source that never fails verification, so it is never
limited; of the unsigned rest, half come from one fixed source, which soon exhausts its budget and
gets 429 with Retry-After, and half keep whatever X-Forwarded-For was generated (a fresh source
each time, or the peer address when absent).

Environment: FUZZ_STRIPE_SECRETS and FUZZ_PAYMENT_EVENTS_SECRETS (comma-separated, as the service
has them), FUZZ_HOOK_SEED (an integer; the choices are repeatable), FUZZ_HOOK_STATS (a file that
receives, at exit, one JSON object counting signed and unsigned requests by response status).
"""

import atexit
import base64
import collections
import hashlib
import hmac
import json
import os
import random
import re
import time

import schemathesis

STRIPE_SECRETS = os.environ["FUZZ_STRIPE_SECRETS"].split(",")
PAYMENT_EVENTS_KEYS = [
    base64.b64decode(secret.removeprefix("whsec_")) for secret in os.environ["FUZZ_PAYMENT_EVENTS_SECRETS"].split(",")
]
SIGNED_SOURCE = "fuzz-signed"
LIMITED_SOURCE = "fuzz-unsigned"
WEBHOOK_ROUTES = {"/v1/webhooks/stripe": "stripe", "/v1/payment-events": "internal"}
PRINTABLE_ID = re.compile(r"^[\x21-\x7e]{1,100}$")

_random = random.Random(int(os.environ.get("FUZZ_HOOK_SEED", "0")))
_message_numbers = iter(range(1, 1 << 62))
# Signed cases until their response arrives (kept alive, so that their id() stays theirs).
_signed_cases = {}
_stats = collections.Counter()


def _write_stats():
    path = os.environ.get("FUZZ_HOOK_STATS")
    if path:
        with open(path, "w", encoding="utf-8") as stats:
            json.dump(dict(sorted(_stats.items())), stats)


atexit.register(_write_stats)


def _body_bytes(case):
    """The bytes to send for the generated body, or None when it cannot be sent as JSON."""
    body = case.body
    if type(body).__name__ == "NotSet":
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    try:
        # What requests' `json=` would send (schemathesis' curl reproduction shows the same text).
        return json.dumps(body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return None


def _stripe_header(payload, timestamp):
    secret = STRIPE_SECRETS[-1] if _random.random() < 0.25 else STRIPE_SECRETS[0]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    form = _random.random()
    if form < 0.15:
        return f"t={timestamp},v1={'0' * 64},v1={mac}"
    if form < 0.3:
        return f"t={timestamp},v1={mac},v0={'f' * 64}"
    return f"t={timestamp},v1={mac}"


def _standard_headers(case, payload, timestamp):
    generated = (case.headers or {}).get("webhook-id")
    message_id = generated if isinstance(generated, str) and PRINTABLE_ID.match(generated) else f"msg_fuzz_{next(_message_numbers)}"
    key = PAYMENT_EVENTS_KEYS[-1] if _random.random() < 0.25 else PAYMENT_EVENTS_KEYS[0]
    mac = base64.b64encode(hmac.new(key, f"{message_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()).decode()
    signature = f"v1,{mac}"
    if _random.random() < 0.2:
        signature = f"v1,{base64.b64encode(b'x' * 32).decode()} {signature}"
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


@schemathesis.hook
def before_call(context, case, kwargs):
    route = WEBHOOK_ROUTES.get(case.operation.path)
    if route is None or case.method.upper() != "POST":
        return
    headers = dict(case.headers or {})
    payload = _body_bytes(case) if _random.random() < 0.75 else None
    if payload is None:
        if _random.random() < 0.5:
            headers["X-Forwarded-For"] = LIMITED_SOURCE
        case.headers = headers
        return
    timestamp = int(time.time())
    if route == "stripe":
        headers["Stripe-Signature"] = _stripe_header(payload, timestamp)
    else:
        headers.update(_standard_headers(case, payload, timestamp))
    headers["X-Forwarded-For"] = SIGNED_SOURCE
    case.headers = headers
    kwargs["data"] = payload
    _signed_cases[id(case)] = case


@schemathesis.hook
def after_call(context, case, response):
    route = WEBHOOK_ROUTES.get(case.operation.path)
    if route is None or case.method.upper() != "POST":
        return
    signed = _signed_cases.pop(id(case), None) is case
    code = ""
    if response.status_code >= 400:
        try:
            code = " " + response.json()["error"]["code"]
        except Exception:  # noqa: BLE001 - a body that is not the error schema is the checks' business
            code = " ?"
    _stats[f"{route} {'signed' if signed else 'unsigned'} {response.status_code}{code}"] += 1
