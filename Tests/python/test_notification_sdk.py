"""notification's outbound webhooks against the official Standard Webhooks SDK (run by scripts/webhook-sdk-tests).

A receiver (http.server in a thread on 127.0.0.1, a free port, one per test) stands in for a
subscriber: it checks every delivery it gets with `standardwebhooks.Webhook(secret).verify(body,
headers)` (the official package, pinned in scripts/lib/webhook-sdk-requirements.txt) for each secret
the test gave it, and records the webhook-id, which secrets verified, the headers and the body.

Events get into the service the way the other services put them there: a row in
`messaging.outbox`, written with the statement `Outbox.append` uses (Shared/Messaging/Outbox.swift:
the next sequence of the producer and aggregate from `messaging.aggregate_sequences`, the stream of
the producer, the envelope as jsonb with that sequence set into it). The service's outbox relay
publishes the row to its Redis stream, and its fan-out consumer (group `notification`) turns each
deliverable event into one delivery per subscribed endpoint. Rows are written with psql.

Each test creates its endpoints through the admin API (deleted again at its end, so later tests'
events do not go to receivers that are gone) and gives each event its own booking, so no delivery
waits for another (the order rule is per endpoint, producer and aggregate).

Environment (set by scripts/webhook-sdk-tests):
  NOTIFICATION_URL           http://127.0.0.1:PORT of `notification serve`
  NOTIFICATION_ADMIN_TOKEN   its ADMIN_TOKEN
  NOTIFICATION_DATABASE_URL  its DATABASE_URL (the outbox the test writes to)
  NOTIFICATION_PSQL          the psql executable (default: psql on PATH)
"""

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE_URL = os.environ["NOTIFICATION_URL"]
ADMIN_TOKEN = os.environ["NOTIFICATION_ADMIN_TOKEN"]
DATABASE_URL = os.environ["NOTIFICATION_DATABASE_URL"]
PSQL = os.environ.get("NOTIFICATION_PSQL") or shutil.which("psql") or "psql"

# Deliveries start within about a second; this is the bound of every wait for one.
DELIVERY_TIMEOUT = 15.0
# How long a test that expects nothing more keeps watching after its sentinel arrived.
QUIET_PERIOD = 1.5

STREAMS = {"booking": "stream:booking", "payments-webhook": "stream:payments", "payout": "stream:payout"}

session = requests.Session()


# ---------------------------------------------------------------------------------------------
# Time


def rfc3339(moment: datetime) -> str:
    """UTC with milliseconds and Z, as the services write times (Shared/Model/Time/RFC3339.swift)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_for(predicate, timeout: float = DELIVERY_TIMEOUT, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The subscriber


@dataclass
class Received:
    path: str
    webhook_id: str | None
    verified: frozenset  # names of the secrets the official SDK verified this delivery with
    refusals: dict  # secret name -> the SDK's error message
    headers: dict  # lower-case names
    body: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split(" ")


class Receiver:
    """A subscriber on 127.0.0.1 that answers 200 to every POST and verifies it with every secret it knows."""

    def __init__(self):
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        self._received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                headers = {name.lower(): value for name, value in self.headers.items()}
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                else:
                    body = self.rfile.read(int(headers.get("content-length", "0")))
                receiver._record(self.path, headers, body)
                answer = b'{"received":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _read_chunked(self) -> bytes:
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()

            def log_message(self, format, *args):  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, name: str) -> str:
        """A URL of this receiver no other endpoint uses (its path tells the endpoints apart)."""
        return f"{self.base_url}/hooks/{name}-{uuid.uuid4().hex[:12]}"

    def add_secret(self, name: str, secret: str):
        with self._lock:
            self._secrets[name] = secret

    def _record(self, path: str, headers: dict, body: bytes):
        with self._lock:
            secrets = dict(self._secrets)
        verified, refusals = set(), {}
        for name, secret in secrets.items():
            try:
                Webhook(secret).verify(body, headers)
                verified.add(name)
            except WebhookVerificationError as error:
                refusals[name] = str(error)
        with self._lock:
            self._received.append(Received(path, headers.get("webhook-id"), frozenset(verified), refusals, headers, body))

    def received(self, *, path: str | None = None, webhook_id: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received
                    if (path is None or r.path == path) and (webhook_id is None or r.webhook_id == webhook_id)]

    def wait_for(self, path: str, webhook_id: str, timeout: float = DELIVERY_TIMEOUT) -> Received:
        found = wait_for(lambda: self.received(path=path, webhook_id=webhook_id), timeout)
        assert found, (f"no delivery of event {webhook_id} reached {path} within {timeout}s; "
                       f"the receiver got {[(r.path, r.webhook_id) for r in self.received()]}")
        return found[0]


@pytest.fixture
def receiver():
    subscriber = Receiver()
    yield subscriber
    subscriber.close()


# ---------------------------------------------------------------------------------------------
# Admin API


def admin(method: str, path: str, body=None, **params) -> requests.Response:
    return session.request(method, BASE_URL + path, json=body, params=params or None,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


@pytest.fixture
def endpoints():
    """Creates endpoints (`endpoints(url, **fields)` -> the 201 body) and deletes them at the end of the test."""
    created = []

    def create(url: str, **fields) -> dict:
        response = admin("POST", "/v1/endpoints", {"url": url, **fields})
        assert response.status_code == 201, response.text
        endpoint = response.json()
        created.append(endpoint["endpoint_id"])
        # Only events that occur at or after the endpoint's creation reach it: let the clock pass it.
        created_at = parse_rfc3339(endpoint["created_at"])
        while datetime.now(timezone.utc) <= created_at + timedelta(milliseconds=2):
            time.sleep(0.002)
        return endpoint

    yield create
    for endpoint_id in created:
        response = admin("DELETE", f"/v1/endpoints/{endpoint_id}")
        assert response.status_code in (204, 404), response.text


def deliveries(endpoint_id: str, **params) -> list[dict]:
    response = admin("GET", f"/v1/endpoints/{endpoint_id}/deliveries", limit=500, **params)
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def wait_until_succeeded(endpoint_id: str, event_ids: list[str]) -> dict[str, dict]:
    """The endpoint's deliveries of `event_ids` once every one of them is `succeeded`."""
    def done():
        by_event = {d["event_id"]: d for d in deliveries(endpoint_id)}
        if all(by_event.get(event_id, {}).get("status") == "succeeded" for event_id in event_ids):
            return by_event
        return None

    found = wait_for(done, interval=0.2)
    assert found, f"deliveries of {event_ids} not all succeeded within {DELIVERY_TIMEOUT}s: {deliveries(endpoint_id)}"
    return found


# ---------------------------------------------------------------------------------------------
# Events into the outbox, as Outbox.append writes them

# Outbox.statement(appending:stream:) with the envelope's values bound as psql variables.
APPEND_SQL = """
WITH next AS (
    INSERT INTO messaging.aggregate_sequences AS s (producer, aggregate_id, last_sequence) VALUES (:'producer', :'aggregate_id', 1)
    ON CONFLICT (producer, aggregate_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO messaging.outbox (event_id, stream, producer, aggregate_id, sequence, event_type, envelope)
SELECT :'event_id'::uuid, :'stream', :'producer', :'aggregate_id', next.last_sequence, :'event_type',
       jsonb_set(:'envelope'::jsonb, '{sequence}', to_jsonb(next.last_sequence))
FROM next
RETURNING sequence;
"""


def event_data(event_type: str, booking_id: str) -> dict:
    """A `data` object of the shape DESIGN.md gives each type (Shared/Model/Events)."""
    now = rfc3339(datetime.now(timezone.utc))
    provider_ref = f"pi_sdk_{uuid.uuid4().hex[:24]}"
    money = {"amount": 4500, "currency": "EUR"}
    payout = {"payout_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()), "host_id": "host-sdk", **money,
              "items": [{"booking_id": booking_id, "amount": 4500}]}
    return {
        "booking.requested": {"booking_id": booking_id, "event_id": str(uuid.uuid4()), "host_id": "host-sdk",
                              "customer_id": "customer-sdk", "seat_ids": ["A-1", "A-2"], **money, "payment_due_at": now},
        "booking.confirmed": {"booking_id": booking_id, "event_id": str(uuid.uuid4()), "host_id": "host-sdk",
                              "customer_id": "customer-sdk", "seat_ids": ["A-1", "A-2"], **money,
                              "provider_ref": provider_ref, "confirmed_at": now, "event_ends_at": "2099-06-01T21:00:00.000Z"},
        "booking.cancelled": {"booking_id": booking_id, "reason": "customer", "refund_due": 4500, "currency": "EUR"},
        "booking.expired": {"booking_id": booking_id},
        "payment.requested": {"booking_id": booking_id, **money, "customer_id": "customer-sdk",
                              "idempotency_key": f"payment-{booking_id}"},
        "payment.intent_created": {"booking_id": booking_id, "provider": "stripe", "provider_ref": provider_ref,
                                   "client_secret": f"{provider_ref}_secret_{uuid.uuid4().hex[:16]}"},
        "payment.succeeded": {"payment_event_id": f"evt_sdk_{uuid.uuid4().hex}", "provider": "stripe",
                              "provider_ref": provider_ref, "booking_id": booking_id, **money,
                              "provider_created_at": now, "received_at": now},
        "refund.succeeded": {"refund_id": str(uuid.uuid4()), "booking_id": booking_id, "provider_ref": provider_ref, **money},
        "payout.paid": {**payout, "provider_ref": f"tr_sdk_{uuid.uuid4().hex[:24]}"},
    }[event_type]


def append_event(event_type: str, producer: str = "booking", *, booking_id: str | None = None) -> dict:
    """Inserts one event into messaging.outbox (committed at once) and returns its envelope as stored."""
    booking_id = booking_id or str(uuid.uuid4())
    envelope = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": rfc3339(datetime.now(timezone.utc)),
        "aggregate_id": booking_id,
        "sequence": 0,  # assigned by the statement, as Outbox.append does
        "correlation_id": f"sdk-{uuid.uuid4().hex[:12]}",
        "causation_id": str(uuid.uuid4()),
        "producer": producer,
        "data": event_data(event_type, booking_id),
    }
    variables = {"event_id": envelope["id"], "stream": STREAMS[producer], "producer": producer,
                 "aggregate_id": booking_id, "event_type": event_type, "envelope": json.dumps(envelope)}
    command = [PSQL, DATABASE_URL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    result = subprocess.run(command, input=APPEND_SQL, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"psql failed ({result.returncode}): {result.stderr}"
    envelope["sequence"] = int(result.stdout.strip())
    return envelope


# ---------------------------------------------------------------------------------------------
# Checks of one delivery


def assert_delivery_of(received: Received, envelope: dict, secret_names: set[str]):
    """A delivery of `envelope` that the official SDK verifies with exactly the secrets `secret_names`."""
    assert received.webhook_id == envelope["id"]
    assert received.headers.get("content-type", "").split(";")[0].strip() == "application/json", received.headers
    assert "content-length" in received.headers and "transfer-encoding" not in received.headers, received.headers
    assert json.loads(received.body) == envelope
    timestamp = int(received.headers["webhook-timestamp"])
    assert abs(timestamp - received.received_at) <= 60
    assert received.verified == frozenset(secret_names), (
        f"verified with {sorted(received.verified)}, expected {sorted(secret_names)}; refusals {received.refusals}; "
        f"webhook-signature {received.headers.get('webhook-signature')!r}")
    assert all(part.startswith("v1,") for part in received.signatures), received.signatures


def assert_secret_shape(secret: str):
    assert secret.startswith("whsec_"), secret
    assert len(base64.b64decode(secret[len("whsec_"):], validate=True)) == 32


# ---------------------------------------------------------------------------------------------
# a) deliveries are signed so the official SDK verifies them


def test_deliveries_verify_with_the_endpoint_secret_and_are_recorded_as_succeeded(receiver, endpoints):
    url = receiver.url("a")
    endpoint = endpoints(url, description="webhook-sdk-tests a")
    assert endpoint["url"] == url
    assert endpoint["status"] == "enabled"
    assert_secret_shape(endpoint["secret"])
    receiver.add_secret("secret", endpoint["secret"])
    receiver.add_secret("foreign", "whsec_" + base64.b64encode(os.urandom(32)).decode())

    envelopes = [append_event(event_type) for event_type in ("booking.confirmed", "booking.cancelled", "booking.expired")]

    path = url[len(receiver.base_url):]
    for envelope in envelopes:
        assert envelope["sequence"] == 1
        received = receiver.wait_for(path, envelope["id"])
        assert_delivery_of(received, envelope, {"secret"})
        assert len(received.signatures) == 1
        assert "No matching signature" in received.refusals["foreign"]

    by_event = wait_until_succeeded(endpoint["endpoint_id"], [e["id"] for e in envelopes])
    for envelope in envelopes:
        delivery = by_event[envelope["id"]]
        assert delivery["endpoint_id"] == endpoint["endpoint_id"]
        assert delivery["event_type"] == envelope["type"]
        assert delivery["aggregate_id"] == envelope["aggregate_id"]
        assert delivery["sequence"] == 1
        assert delivery["attempt_count"] == 1
        assert delivery["last_status_code"] == 200
        assert delivery["last_error"] is None
        assert delivery["origin"] == "event"
        assert delivery["out_of_order"] is False
        assert delivery["next_attempt_at"] is None
        assert delivery["completed_at"] is not None
        # One request per event: nothing was sent twice.
        assert len(receiver.received(path=path, webhook_id=envelope["id"])) == 1

        response = admin("GET", f"/v1/deliveries/{delivery['delivery_id']}")
        assert response.status_code == 200, response.text
        attempts = response.json()["attempts"]
        assert len(attempts) == 1
        assert attempts[0]["status_code"] == 200
        assert attempts[0]["error"] is None
    assert len(deliveries(endpoint["endpoint_id"])) == 3
    assert [d["event_id"] for d in deliveries(endpoint["endpoint_id"], status="succeeded", event_type="booking.cancelled")] \
        == [envelopes[1]["id"]]


def test_events_of_the_payments_and_payout_streams_are_delivered_to_subscribed_endpoints_only(receiver, endpoints):
    everything_url, refunds_url = receiver.url("all"), receiver.url("refunds")
    everything = endpoints(everything_url)
    refunds = endpoints(refunds_url, event_types=["refund.*", "payout.paid"])
    assert sorted(refunds["event_types"]) == ["payout.paid", "refund.*"]
    receiver.add_secret("everything", everything["secret"])
    receiver.add_secret("refunds", refunds["secret"])

    refund = append_event("refund.succeeded", "payments-webhook")
    payout = append_event("payout.paid", "payout")
    confirmed = append_event("booking.confirmed", "booking")

    everything_path, refunds_path = everything_url[len(receiver.base_url):], refunds_url[len(receiver.base_url):]
    for envelope in (refund, payout, confirmed):
        assert_delivery_of(receiver.wait_for(everything_path, envelope["id"]), envelope, {"everything"})
    for envelope in (refund, payout):
        assert_delivery_of(receiver.wait_for(refunds_path, envelope["id"]), envelope, {"refunds"})
    # booking.confirmed went out to the other endpoint in the same fan-out: none is coming here.
    time.sleep(QUIET_PERIOD)
    assert receiver.received(path=refunds_path, webhook_id=confirmed["id"]) == []
    assert {d["event_id"] for d in deliveries(refunds["endpoint_id"])} == {refund["id"], payout["id"]}
    wait_until_succeeded(everything["endpoint_id"], [refund["id"], payout["id"], confirmed["id"]])


# ---------------------------------------------------------------------------------------------
# b) secret rotation


def test_rotation_signs_with_old_and_new_secret_during_the_grace_and_with_the_newest_only_after(receiver, endpoints):
    url = receiver.url("rotation")
    path = url[len(receiver.base_url):]
    endpoint = endpoints(url)
    endpoint_id = endpoint["endpoint_id"]
    receiver.add_secret("original", endpoint["secret"])

    before = datetime.now(timezone.utc)
    response = admin("POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", {"grace_seconds": 30})
    assert response.status_code == 200, response.text
    first = response.json()
    assert_secret_shape(first["secret"])
    assert first["secret"] != endpoint["secret"]
    expires = parse_rfc3339(first["previous_secret_expires_at"])
    assert before + timedelta(seconds=29) <= expires <= datetime.now(timezone.utc) + timedelta(seconds=31), first
    receiver.add_secret("rotated", first["secret"])

    during_grace = append_event("booking.confirmed")
    received = receiver.wait_for(path, during_grace["id"])
    assert_delivery_of(received, during_grace, {"original", "rotated"})
    assert len(received.signatures) == 2, received.signatures
    assert datetime.now(timezone.utc) < expires, "the grace ended before the check: the delivery came too late to tell"

    response = admin("POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", {"grace_seconds": 0})
    assert response.status_code == 200, response.text
    second = response.json()
    assert_secret_shape(second["secret"])
    assert second["secret"] not in (endpoint["secret"], first["secret"])
    assert parse_rfc3339(second["previous_secret_expires_at"]) <= datetime.now(timezone.utc) + timedelta(seconds=1), second
    receiver.add_secret("newest", second["secret"])

    after_grace = append_event("booking.cancelled")
    received = receiver.wait_for(path, after_grace["id"])
    assert_delivery_of(received, after_grace, {"newest"})
    assert len(received.signatures) == 1, received.signatures
    assert set(received.refusals) == {"original", "rotated"}

    wait_until_succeeded(endpoint_id, [during_grace["id"], after_grace["id"]])


# ---------------------------------------------------------------------------------------------
# c) events that carry payment details are never delivered


def test_non_deliverable_types_are_never_delivered(receiver, endpoints):
    url = receiver.url("non-deliverable")
    path = url[len(receiver.base_url):]
    endpoint = endpoints(url, event_types=["*"])
    receiver.add_secret("secret", endpoint["secret"])

    # One booking's way, as its producers write it: the booking service (stream:booking) requests the
    # booking and its payment; payments-webhook (stream:payments) creates the intent and sees it
    # succeed. None of these is deliverable. Then a deliverable event of the same booking on each
    # stream (it must not wait for the undelivered ones before it), whose arrival shows the fan-out
    # has handled everything before it on that stream.
    booking_id = str(uuid.uuid4())
    hidden = [
        append_event("booking.requested", "booking", booking_id=booking_id),
        append_event("payment.requested", "booking", booking_id=booking_id),
        append_event("payment.intent_created", "payments-webhook", booking_id=booking_id),
        append_event("payment.succeeded", "payments-webhook", booking_id=booking_id),
    ]
    sentinels = [
        append_event("booking.confirmed", "booking", booking_id=booking_id),
        append_event("refund.succeeded", "payments-webhook", booking_id=booking_id),
    ]
    assert [e["sequence"] for e in hidden + sentinels] == [1, 2, 1, 2, 3, 3]

    for envelope in sentinels:
        assert_delivery_of(receiver.wait_for(path, envelope["id"]), envelope, {"secret"})
    time.sleep(QUIET_PERIOD)
    hidden_ids = {e["id"] for e in hidden}
    leaked = [(r.webhook_id, json.loads(r.body).get("type")) for r in receiver.received() if r.webhook_id in hidden_ids]
    assert leaked == [], f"non-deliverable events were delivered: {leaked}"
    assert {d["event_id"] for d in deliveries(endpoint["endpoint_id"])} == {e["id"] for e in sentinels}
    for envelope in sentinels:
        delivery = wait_until_succeeded(endpoint["endpoint_id"], [envelope["id"]])[envelope["id"]]
        assert delivery["sequence"] == 3
        assert delivery["out_of_order"] is False


# ---------------------------------------------------------------------------------------------
# d) the admin API needs the token


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/endpoints", None),
        ("POST", "/v1/endpoints", {"url": "http://127.0.0.1:9/unauthorized"}),
        ("GET", f"/v1/endpoints/{uuid.uuid4()}", None),
        ("POST", f"/v1/endpoints/{uuid.uuid4()}/rotate-secret", {"grace_seconds": 0}),
        ("GET", f"/v1/endpoints/{uuid.uuid4()}/deliveries", None),
        ("GET", f"/v1/deliveries/{uuid.uuid4()}", None),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN],
                         ids=["no-header", "wrong-token", "basic-scheme", "no-scheme"])
def test_admin_routes_without_the_token_are_401(method, path, body, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    response = session.request(method, BASE_URL + path, json=body, headers=headers, timeout=30)

    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str)
    if method == "POST" and path == "/v1/endpoints":
        listed = admin("GET", "/v1/endpoints", limit=500).json()["endpoints"]
        assert all(e["url"] != body["url"] for e in listed)


def test_health_routes_need_no_token():
    for path in ("/healthz", "/readyz"):
        response = session.get(BASE_URL + path, timeout=30)
        assert response.status_code == 200, (path, response.text)
