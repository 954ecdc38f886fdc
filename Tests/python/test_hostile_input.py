"""Hostile input and secrets hygiene against the four running services (run by scripts/hostile-input).

Generators (each counted in the summary table printed at the end):
  body-limit  every operation with a requestBody in Services/*/openapi.yaml, over MAX_BODY_BYTES
  slowloris   1,000 connections trickling a request line while normal traffic is measured
  signatures  payments-webhook: 301 s stale/future timestamps, replays with new timestamps
  injection   SQL/Lua injection strings in every text field of every create route
  unicode     NUL, lone surrogates, RTL marks, combining characters, emoji, 10 KB strings
  secrets     no configured or endpoint secret in any log line (LOG_LEVEL=trace); runs last

Rule for injection and unicode: 4xx with the JSON error body, or 2xx and the value reads back
literally; never a 5xx.

Environment (set by scripts/hostile-input): HOSTILE_{BOOKING,PAYMENTS_WEBHOOK,NOTIFICATION,PAYOUT}_URL,
HOSTILE_ADMIN_TOKEN, HOSTILE_API_KEYS, HOSTILE_API_KEY, HOSTILE_STRIPE_SECRETS,
HOSTILE_PAYMENT_EVENTS_SECRETS, HOSTILE_PROVIDER_API_KEY, HOSTILE_NOTIFICATION_SECRETS_KEY,
HOSTILE_DATABASE_PASSWORD, HOSTILE_LOG_DIR, HOSTILE_REPORT, HOSTILE_SLOWLORIS_SERVICES,
HOSTILE_SLOWLORIS_CONNECTIONS.
"""

import base64
import collections
import errno
import http.client
import json
import os
import pathlib
import select
import socket
import threading
import time
import unicodedata
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
import stripe
import yaml
from standardwebhooks.webhooks import Webhook

ROOT = pathlib.Path(__file__).resolve().parents[2]
URLS = {
    "booking": os.environ["HOSTILE_BOOKING_URL"],
    "payments-webhook": os.environ["HOSTILE_PAYMENTS_WEBHOOK_URL"],
    "notification": os.environ["HOSTILE_NOTIFICATION_URL"],
    "payout": os.environ["HOSTILE_PAYOUT_URL"],
}
SPEC_FILES = {
    "booking": "Services/Booking/openapi.yaml",
    "payments-webhook": "Services/PaymentsWebhook/openapi.yaml",
    "notification": "Services/Notification/openapi.yaml",
    "payout": "Services/Payout/openapi.yaml",
}
MAX_BODY = {"booking": 1024 * 1024, "payments-webhook": 256 * 1024, "notification": 1024 * 1024, "payout": 1024 * 1024}
ADMIN_TOKEN = os.environ["HOSTILE_ADMIN_TOKEN"]
API_KEY = os.environ["HOSTILE_API_KEY"]
STRIPE_SECRETS = os.environ["HOSTILE_STRIPE_SECRETS"].split(",")
EVENT_SECRETS = os.environ["HOSTILE_PAYMENT_EVENTS_SECRETS"].split(",")
LOG_DIR = pathlib.Path(os.environ["HOSTILE_LOG_DIR"])
REPORT = os.environ.get("HOSTILE_REPORT")
_slow = os.environ.get("HOSTILE_SLOWLORIS_SERVICES", "booking").split()
SLOWLORIS_SERVICES = list(URLS) if _slow == ["all"] else _slow
SLOWLORIS_CONNECTIONS = int(os.environ.get("HOSTILE_SLOWLORIS_CONNECTIONS", "1000"))

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLIENT = {"Authorization": f"Bearer {API_KEY}"}
JSON = {"Content-Type": "application/json"}

# Secrets shown by the notification service (create and rotate answers), checked against the logs.
ENDPOINT_SECRETS: list[str] = []

# ---------------------------------------------------------------------------------------------
# Counting and the summary table

STATS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
SLOWLORIS_RESULTS: list[dict] = []
FINDINGS: list[str] = []
session = requests.Session()


def count(generator: str, status: int) -> None:
    STATS[generator]["requests"] += 1
    STATS[generator][f"{status // 100}xx"] += 1


def call(generator: str, method: str, service: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    response = session.request(method, URLS[service] + path, **kwargs)
    count(generator, response.status_code)
    assert response.status_code < 500, f"{method} {service} {path}: {response.status_code} {response.text[:500]}"
    return response


def assert_json_error(response: requests.Response) -> dict:
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message", "details"}, body
    return body["error"]


@pytest.fixture(scope="session", autouse=True)
def summary():
    yield
    lines = ["", "hostile-input summary", f"  {'generator':<12} {'requests':>9} {'2xx':>7} {'3xx':>5} {'4xx':>7} {'5xx':>5}"]
    for generator in ("body-limit", "slowloris", "signatures", "injection", "unicode", "secrets"):
        c = STATS.get(generator, collections.Counter())
        lines.append(f"  {generator:<12} {c['requests']:>9} {c['2xx']:>7} {c['3xx']:>5} {c['4xx']:>7} {c['5xx']:>5}")
    for r in SLOWLORIS_RESULTS:
        lines.append(
            f"  slowloris {r['service']}: {r['connections']} slow connections opened ({r['refused']} refused); "
            f"normal traffic without attack: {r['base_n']} requests, p50 {r['base_p50']:.1f} ms, p99 {r['base_p99']:.1f} ms, "
            f"{r['base_errors']} errors; during attack: {r['attack_n']} requests, p50 {r['attack_p50']:.1f} ms, "
            f"p99 {r['attack_p99']:.1f} ms, {r['attack_errors']} errors; trickling connections closed by the server "
            f"within 20 s: {r['trickle_closed']} (median after {r['trickle_close_p50_s']:.1f} s, last after {r['trickle_close_max_s']:.1f} s); silent ones closed: {r['silent_closed']}/{r['silent']} "
            f"(within {r['silent_close_s']:.1f} s)")
    if NORMALIZED:
        lines.append(f"  note: {len(NORMALIZED)} accepted values read back trimmed or NFC-normalized (canonically "
                     f"equivalent), e.g. {NORMALIZED[0]}")
    for finding in FINDINGS:
        lines.append(f"  finding: {finding}")
    text = "\n".join(lines) + "\n"
    if REPORT:
        pathlib.Path(REPORT).write_text(text)
    else:
        print(text)


# ---------------------------------------------------------------------------------------------
# Raw HTTP (for bodies that are not sent completely and chunked bodies)


def host_port(service: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(URLS[service])
    return parsed.hostname, parsed.port


def read_response(sock: socket.socket, deadline: float) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def request_head(service: str, method: str, path: str, headers: dict) -> bytes:
    host, port = host_port(service)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def readable(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets with data or EOF to read (poll: select cannot watch descriptors above 1023)."""
    poller = select.poll()
    by_fd = {}
    for sock in sockets:
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        by_fd[sock.fileno()] = sock
    return [by_fd[fd] for fd, _ in poller.poll(0)]


def answered(sock: socket.socket) -> bool:
    return bool(readable([sock]))


# ---------------------------------------------------------------------------------------------
# (a) body limits on every operation with a requestBody


def body_operations() -> list[tuple[str, str, str, list]]:
    operations = []
    for service, spec_file in SPEC_FILES.items():
        spec = yaml.safe_load((ROOT / spec_file).read_text())
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if method in ("get", "put", "post", "patch", "delete") and "requestBody" in operation:
                    security = operation.get("security", spec.get("security", []))
                    operations.append((service, method.upper(), path, security))
    return operations


BODY_OPERATIONS = body_operations()


def concrete(path: str) -> str:
    return path.replace("{host_id}", "hostile-host").replace("{id}", str(uuid.uuid4()))


def auth_for(security: list) -> dict:
    schemes = {name for requirement in security for name in requirement}
    if "adminToken" in schemes:
        return ADMIN
    if "clientKey" in schemes:
        return CLIENT
    return {}


def test_every_service_has_body_routes():
    assert {service for service, *_ in BODY_OPERATIONS} == set(URLS), BODY_OPERATIONS
    assert len(BODY_OPERATIONS) >= 20


BODY_IDS = [f"{s}-{m}-{p}" for s, m, p, _ in BODY_OPERATIONS]
BODY_PARAMS = ("service", "method", "path", "security")

# A chunked body has no Content-Length to refuse early: the limit applies while a handler collects
# the body (NIOTooManyBytesError, mapped to 413 by BodyLimitMiddleware; this script found it answered
# 500 before that mapping existed).

def limit_headers(security: list) -> dict:
    """Everything a route checks before it reads the body (so that the body is what is refused)."""
    return {**auth_for(security), **JSON, "X-Forwarded-For": f"hostile-limit-{uuid.uuid4().hex[:8]}",
            "Idempotency-Key": uuid.uuid4().hex, "X-Operator": "hostile-input"}


@pytest.mark.parametrize(BODY_PARAMS, BODY_OPERATIONS, ids=BODY_IDS)
def test_body_of_max_plus_one_is_413(service, method, path, security):
    limit = MAX_BODY[service]
    body = b'{"padding": "' + b"x" * (limit + 1 - 15) + b'"}'
    assert len(body) == limit + 1
    response = call("body-limit", method, service, concrete(path), data=body, headers=limit_headers(security))
    assert response.status_code == 413, response.text[:300]
    error = assert_json_error(response)
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == limit


@pytest.mark.parametrize(BODY_PARAMS, BODY_OPERATIONS, ids=BODY_IDS)
def test_content_length_over_the_limit_is_413_before_the_body_is_read(service, method, path, security):
    """Content-Length of 50 MB, only 4 KiB sent: the 413 comes within 5 s without the rest."""
    url_path = concrete(path)
    started = time.monotonic()
    with socket.create_connection(host_port(service), timeout=5) as sock:
        sock.sendall(request_head(service, method, url_path, {**limit_headers(security), "Content-Length": str(50 * 1024 * 1024)}))
        sock.sendall(b'{"padding": "' + b"y" * 4096)
        status, response_headers, response_body = read_response(sock, started + 5)
    elapsed = time.monotonic() - started
    count("body-limit", status)
    assert status == 413, (status, response_body[:300])
    assert response_headers.get("content-type", "").startswith("application/json")
    assert json.loads(response_body)["error"]["code"] == "payload_too_large"
    assert elapsed < 5, elapsed


@pytest.mark.parametrize(BODY_PARAMS, BODY_OPERATIONS, ids=BODY_IDS)
def test_chunked_body_over_the_limit_is_413(service, method, path, security):
    limit = MAX_BODY[service]
    started = time.monotonic()
    with socket.create_connection(host_port(service), timeout=10) as sock:
        sock.sendall(request_head(service, method, concrete(path), {**limit_headers(security), "Transfer-Encoding": "chunked"}))
        sent = 0
        chunk = b"z" * 65536
        try:
            while sent <= 2 * limit and not answered(sock):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            if not answered(sock):
                sock.sendall(b"0\r\n\r\n")
        except OSError as error:  # the server answered and closed while we were still sending
            assert error.errno in (errno.EPIPE, errno.ECONNRESET), error
        status, response_headers, response_body = read_response(sock, started + 10)
    count("body-limit", status)
    assert status == 413, (status, response_body[:300])
    assert json.loads(response_body)["error"]["code"] == "payload_too_large"



# ---------------------------------------------------------------------------------------------
# Seed data used by several generators


def future(days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0).isoformat()


def event_body(**overrides) -> dict:
    body = {"name": "Hostile input gig", "host_id": "hostile-host", "starts_at": future(30), "ends_at": future(31),
            "time_zone": "Europe/Berlin", "currency": "EUR",
            "seats": [{"seat_id": f"S{i}", "price": 2500} for i in range(1, 41)]}
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def seeded():
    """An event with 40 seats and a hold on S1 made before any hostile input (still held at the end)."""
    response = call("injection", "POST", "booking", "/v1/events", json=event_body(), headers=ADMIN)
    assert response.status_code == 201, response.text
    event_id = response.json()["event_id"]
    response = call("injection", "POST", "booking", "/v1/holds", headers=CLIENT,
                    json={"event_id": event_id, "seat_ids": ["S1"], "customer_id": "hostile-early-customer"})
    assert response.status_code == 201, response.text
    return {"event_id": event_id, "early_hold": response.json()["hold_id"], "next_seat": iter(range(2, 41))}


# ---------------------------------------------------------------------------------------------
# (b) slowloris


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def normal_traffic(service: str, seconds: float, authenticated_path: str, auth: dict) -> tuple[list[float], list[str]]:
    """/healthz on a new connection and an authenticated GET on a kept-alive one, alternately."""
    host, port = host_port(service)
    latencies, errors = [], []
    keep = http.client.HTTPConnection(host, port, timeout=10)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        started = time.monotonic()
        try:
            if i % 2:
                fresh = http.client.HTTPConnection(host, port, timeout=10)
                fresh.request("GET", "/healthz")
                response = fresh.getresponse()
                response.read()
                fresh.close()
            else:
                keep.request("GET", authenticated_path, headers=auth)
                response = keep.getresponse()
                response.read()
            latencies.append((time.monotonic() - started) * 1000)
            count("slowloris", response.status)
            if response.status != 200:
                errors.append(f"status {response.status}")
        except (OSError, http.client.HTTPException) as error:
            errors.append(repr(error))
            keep.close()
            keep = http.client.HTTPConnection(host, port, timeout=10)
        time.sleep(0.01)
    keep.close()
    return latencies, errors


SLOWLORIS_LINE = b"GET /healthz?slowloris=" + b"a" * 200 + b" HTTP/1.1\r\n"


@pytest.mark.parametrize("service", SLOWLORIS_SERVICES)
def test_slowloris_does_not_hurt_normal_traffic(service, seeded):
    authenticated = {
        "booking": (f"/v1/events/{seeded['event_id']}", CLIENT),
        "payments-webhook": ("/v1/admin/payment-events?limit=1", ADMIN),
        "notification": ("/v1/endpoints", ADMIN),
        "payout": ("/v1/payout-runs", ADMIN),
    }[service]
    base_latencies, base_errors = normal_traffic(service, 8, *authenticated)

    host, port = host_port(service)
    trickling, refused = [], 0
    for _ in range(SLOWLORIS_CONNECTIONS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            refused += 1
            sock.close()
            continue
        trickling.append(sock)
    # Silent ones: a partial request line, then nothing (HTTP_IDLE_TIMEOUT=5s closes them).
    silent = [socket.create_connection((host, port), timeout=5) for _ in range(20)]
    for sock in silent:
        sock.sendall(b"GET /heal")
        sock.setblocking(False)
    silent_open_at = time.monotonic()

    closed_trickle: set[int] = set()
    trickle_closed_at: list[float] = []
    closed_silent: dict[int, float] = {}
    result: dict = {}

    def background():
        result["latencies"], result["errors"] = normal_traffic(service, 20, *authenticated)

    thread = threading.Thread(target=background)
    thread.start()
    position = 0
    while thread.is_alive():
        tick = time.monotonic()
        for index, sock in enumerate(trickling):
            if index in closed_trickle:
                continue
            try:
                sock.send(SLOWLORIS_LINE[position % len(SLOWLORIS_LINE):][:1])
            except BlockingIOError:
                pass
            except OSError:
                closed_trickle.add(index)
        position += 1
        for index, sock in enumerate(silent):
            if index in closed_silent:
                continue
            try:
                if sock.recv(1) == b"":
                    closed_silent[index] = time.monotonic() - silent_open_at
            except BlockingIOError:
                pass
            except OSError:
                closed_silent[index] = time.monotonic() - silent_open_at
        # Did the server close trickling ones (EOF or reset)?
        index_of = {id(s): i for i, s in enumerate(trickling)}
        for sock in readable([s for i, s in enumerate(trickling) if i not in closed_trickle]):
            try:
                if sock.recv(1) == b"":
                    closed_trickle.add(index_of[id(sock)])
                    trickle_closed_at.append(time.monotonic() - silent_open_at)
            except BlockingIOError:
                pass
            except OSError:
                closed_trickle.add(index_of[id(sock)])
                trickle_closed_at.append(time.monotonic() - silent_open_at)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    thread.join()
    for sock in trickling + silent:
        sock.close()

    attack_latencies, attack_errors = result["latencies"], result["errors"]
    summary_row = {
        "service": service, "connections": len(trickling), "refused": refused,
        "base_n": len(base_latencies), "base_p50": percentile(base_latencies, 50), "base_p99": percentile(base_latencies, 99),
        "base_errors": len(base_errors),
        "attack_n": len(attack_latencies), "attack_p50": percentile(attack_latencies, 50),
        "attack_p99": percentile(attack_latencies, 99), "attack_errors": len(attack_errors),
        "trickle_closed": len(closed_trickle),
        "trickle_close_p50_s": percentile(trickle_closed_at, 50), "trickle_close_max_s": max(trickle_closed_at, default=float("nan")), "silent": len(silent), "silent_closed": len(closed_silent),
        "silent_close_s": max(closed_silent.values(), default=float("nan")),
    }
    SLOWLORIS_RESULTS.append(summary_row)
    if len(closed_trickle) == 0:
        FINDINGS.append(f"slowloris on {service}: HTTP_IDLE_TIMEOUT=5s closes silent connections but none of the "
                        f"{len(trickling)} connections trickling one byte a second within 20 s (the idle timer restarts on every byte)")
    assert len(trickling) >= min(SLOWLORIS_CONNECTIONS, 1000) * 0.95, summary_row
    assert not base_errors, base_errors[:5]
    assert not attack_errors, attack_errors[:5]
    assert summary_row["attack_p99"] < 1000, summary_row
    assert len(closed_silent) == len(silent), summary_row
    # HTTP_IDLE_TIMEOUT (5 s) also closes connections that trickle a request head (measured: all
    # 1,000 within about 6 s of opening).
    assert len(closed_trickle) >= 0.95 * len(trickling), summary_row
    assert summary_row["silent_close_s"] < 12, summary_row


# ---------------------------------------------------------------------------------------------
# (c) webhook signatures (what test_payments_webhook_sdks.py does not already assert)


def stripe_payload(event_id: str | None = None, **metadata) -> tuple[dict, str]:
    event = {
        "id": event_id or f"evt_hostile_{uuid.uuid4().hex}", "object": "event", "api_version": "2024-06-20",
        "created": int(time.time()), "type": "payment_intent.succeeded", "livemode": False,
        "data": {"object": {"id": f"pi_hostile_{uuid.uuid4().hex[:20]}", "object": "payment_intent", "amount": 4500,
                            "amount_received": 4500, "currency": "eur",
                            "metadata": {"booking_id": str(uuid.uuid4()), **metadata}}},
    }
    return event, json.dumps(event)


def stripe_header(payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret or STRIPE_SECRETS[0], timestamp=int(time.time()) if timestamp is None else timestamp)


def internal_payload(**overrides) -> tuple[dict, str]:
    event = {"id": f"pay_evt_hostile_{uuid.uuid4().hex}", "type": "payment.succeeded", "booking_id": str(uuid.uuid4()),
             "amount": 4500, "currency": "EUR", "provider_ref": f"pi_hostile_{uuid.uuid4().hex[:20]}",
             "occurred_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    event.update(overrides)
    return event, json.dumps(event)


def standard_headers(payload: str, *, message_id: str | None = None, timestamp: datetime | None = None) -> dict:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(timezone.utc)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(EVENT_SECRETS[0]).sign(message_id, timestamp, payload)}


def post_webhook(generator: str, path: str, body: str | bytes, headers: dict) -> requests.Response:
    data = body.encode() if isinstance(body, str) else body
    return call(generator, "POST", "payments-webhook", path, data=data,
                headers={**JSON, "X-Forwarded-For": f"hostile-{uuid.uuid4().hex[:12]}", **headers})


def stored(provider: str, provider_event_id: str) -> list[dict]:
    response = call("signatures", "GET", "payments-webhook", "/v1/admin/payment-events", headers=ADMIN,
                    params={"provider": provider, "provider_event_id": provider_event_id})
    assert response.status_code == 200, response.text
    return response.json()["events"]


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale_301s", "future_301s"])
def test_stripe_timestamp_just_outside_tolerance_is_400(offset):
    event, payload = stripe_payload()
    response = post_webhook("signatures", "/v1/webhooks/stripe", payload,
                            {"Stripe-Signature": stripe_header(payload, int(time.time()) + offset)})
    assert response.status_code == 400, response.text
    assert assert_json_error(response)["code"] == "invalid_signature"
    assert stored("stripe", event["id"]) == []


@pytest.mark.parametrize("offset", [-301, 301], ids=["stale_301s", "future_301s"])
def test_standard_webhooks_timestamp_just_outside_tolerance_is_400(offset):
    event, payload = internal_payload()
    headers = standard_headers(payload, timestamp=datetime.now(timezone.utc) + timedelta(seconds=offset))
    response = post_webhook("signatures", "/v1/payment-events", payload, headers)
    assert response.status_code == 400, response.text
    assert assert_json_error(response)["code"] == "invalid_signature"
    assert stored("internal", event["id"]) == []


def test_stripe_replay_of_the_identical_request_is_a_duplicate():
    event, payload = stripe_payload()
    header = stripe_header(payload)
    first = post_webhook("signatures", "/v1/webhooks/stripe", payload, {"Stripe-Signature": header})
    assert first.status_code == 200, first.text
    again = post_webhook("signatures", "/v1/webhooks/stripe", payload, {"Stripe-Signature": header})
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert len(stored("stripe", event["id"])) == 1


def test_standard_webhooks_replay_with_a_new_message_id_and_timestamp_is_a_duplicate():
    """Same event id, a new webhook-id and a new timestamp, correctly signed: still one row."""
    event, payload = internal_payload()
    first = post_webhook("signatures", "/v1/payment-events", payload, standard_headers(payload))
    assert first.status_code == 200, first.text
    later = datetime.now(timezone.utc) + timedelta(seconds=2)
    again = post_webhook("signatures", "/v1/payment-events", payload, standard_headers(payload, timestamp=later))
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True, again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(stored("internal", event["id"])) == 1


# ---------------------------------------------------------------------------------------------
# (d) injection and (e) unicode payloads

INJECTION = [
    "'; DROP TABLE booking.bookings; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "1; SELECT pg_sleep(10); --",
    "$$; DROP SCHEMA payments CASCADE; $$",
    "redis.call('FLUSHALL')",
    "]] .. redis.call('flushall') .. [[",
    "{event:x}",
    "\u0000",
    "%00",
    "${jndi:ldap://127.0.0.1:9/x}",
    "*\r\n$8\r\nFLUSHALL\r\n",
    "../../etc/passwd",
    "<script>alert(1)</script>",
]
UNICODE = [
    "nul\u0000inside",
    "\ud800",  # a lone surrogate, sent as the JSON escape "\ud800"
    "\udc00lone low",
    "rtl \u202egnp.exe",
    "e\u0301\u0301\u0301 combining",
    "Z\u0351\u0352\u0353\u0354\u0355\u0356algo",
    "🎟️ 👩‍👩‍👧 🏳️‍🌈",
    "\ufeffbom",
    "\u2028line separator",
    "n" * 10240,
    "名" * 3500,
]
PAYLOADS = [("injection", p) for p in INJECTION] + [("unicode", p) for p in UNICODE]
PAYLOAD_IDS = [f"{g}-{i}" for i, (g, _) in enumerate(PAYLOADS)]


def dumps(value) -> bytes:
    """JSON with \\u escapes (a lone surrogate stays the escape "\\ud800"; the body is ASCII)."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def hostile_post(generator, service, path, body, headers, method="POST") -> requests.Response:
    response = call(generator, method, service, path, data=dumps(body), headers={**JSON, **headers})
    if 400 <= response.status_code < 500:
        assert_json_error(response)
    else:
        assert 200 <= response.status_code < 300, response.text
    return response


# Characters the services trim from both ends of identifiers and names (documented: "surrounding
# spaces are trimmed"); seen trimmed: U+2028, U+FEFF.
TRIMMED = "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) + "\ufeff\u200b"
NORMALIZED: list[str] = []


def literal(payload: str, value) -> None:
    """The value reads back literally, up to the documented trimming and Unicode canonical
    equivalence (the services store Swift Strings, which come back NFC-normalized: noted in the
    summary, not a failure)."""
    if value == payload:
        return
    expected = payload.strip(TRIMMED)
    assert isinstance(value, str) and (
        value == expected or unicodedata.normalize("NFC", value) == unicodedata.normalize("NFC", expected)
    ), f"stored {value!r}, sent {payload!r}"
    NORMALIZED.append(f"{payload[:24]!r} -> {value[:24]!r}")


def query(params: dict) -> str:
    """A query string with %20 for spaces and surrogates sent as their (invalid) UTF-8 bytes."""
    return "?" + "&".join(f"{k}={urllib.parse.quote(v.encode('utf-8', 'surrogatepass'), safe='')}" for k, v in params.items())


def quote_path(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


def header_value(payload: str) -> bytes | None:
    """The payload as a header value, or None when no HTTP client can send it (CR, LF, NUL, surrogates)."""
    if any(c in payload for c in "\r\n\u0000") or any(0xD800 <= ord(c) <= 0xDFFF for c in payload):
        return None
    return payload.encode("utf-8")


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("field", ["name", "host_id", "seat_id", "time_zone", "currency"])
def test_event_fields(seeded, generator, payload, field):
    body = event_body()
    if field == "seat_id":
        body["seats"] = [{"seat_id": payload, "price": 100}, {"seat_id": "plain", "price": 100}]
    else:
        body[field] = payload
    response = hostile_post(generator, "booking", "/v1/events", body, ADMIN)
    if response.status_code >= 400:
        return
    event_id = response.json()["event_id"]
    got = call(generator, "GET", "booking", f"/v1/events/{event_id}", headers=CLIENT)
    assert got.status_code == 200, got.text
    if field == "seat_id":
        seats = call(generator, "GET", "booking", f"/v1/events/{event_id}/seats", headers=CLIENT)
        assert seats.status_code == 200, seats.text
        literal(payload, [s["seat_id"] for s in seats.json()["seats"] if s["seat_id"] != "plain"][0])
        # Hold and book the hostile seat: the id goes through Redis (Lua) and back.
        hold = hostile_post(generator, "booking", "/v1/holds",
                            {"event_id": event_id, "seat_ids": [payload], "customer_id": "hostile-seat-customer"}, CLIENT)
        assert hold.status_code == 201, hold.text
        literal(payload, hold.json()["seat_ids"][0])
        booking = call(generator, "POST", "booking", "/v1/bookings", headers={**CLIENT, **JSON, "Idempotency-Key": uuid.uuid4().hex},
                       data=dumps({"hold_id": hold.json()["hold_id"], "customer_id": "hostile-seat-customer"}))
        assert booking.status_code == 201, booking.text
        if "seat_ids" in booking.json():
            literal(payload, booking.json()["seat_ids"][0])
    else:
        literal(payload, got.json()[field])


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
def test_hold_and_booking_fields(seeded, generator, payload):
    event_id = seeded["event_id"]
    # seat_ids: an unknown hostile seat of a real event.
    hostile_post(generator, "booking", "/v1/holds", {"event_id": event_id, "seat_ids": [payload], "customer_id": "c1"}, CLIENT)
    # event_id itself.
    hostile_post(generator, "booking", "/v1/holds", {"event_id": payload, "seat_ids": ["S2"], "customer_id": "c1"}, CLIENT)
    # customer_id on a real seat, then the booking with the same customer_id, read back.
    seat = f"S{next(seeded['next_seat'], 40)}"
    hold = hostile_post(generator, "booking", "/v1/holds", {"event_id": event_id, "seat_ids": [seat], "customer_id": payload}, CLIENT)
    if hold.status_code != 201:
        return
    literal(payload, hold.json()["customer_id"])
    hold_id = hold.json()["hold_id"]
    # A hostile hold_id is refused (422/4xx).
    hostile_post(generator, "booking", "/v1/bookings", {"hold_id": payload, "customer_id": payload},
                 {**CLIENT, "Idempotency-Key": uuid.uuid4().hex})
    key = header_value(payload)
    idempotency_key = key if key is not None and len(key) <= 200 else uuid.uuid4().hex.encode()
    booking = hostile_post(generator, "booking", "/v1/bookings", {"hold_id": hold_id, "customer_id": payload},
                           {**CLIENT, "Idempotency-Key": idempotency_key})
    if booking.status_code >= 400:
        return
    booking_id = booking.json()["booking_id"]
    literal(payload, booking.json()["customer_id"])
    got = call(generator, "GET", "booking", f"/v1/bookings/{booking_id}" + query({"customer_id": payload}), headers=CLIENT)
    assert got.status_code == 200, got.text
    literal(payload, got.json()["customer_id"])
    # The same Idempotency-Key again answers the same booking.
    again = hostile_post(generator, "booking", "/v1/bookings", {"hold_id": hold_id, "customer_id": payload},
                         {**CLIENT, "Idempotency-Key": idempotency_key})
    assert again.status_code in (200, 201), again.text
    assert again.json()["booking_id"] == booking_id
    # The customer's list, the id percent-encoded in the path.
    listed = call(generator, "GET", "booking", f"/v1/customers/{quote_path(payload)}/bookings", headers=CLIENT)
    if listed.status_code != 200:
        assert_json_error(listed)
        return
    assert booking_id in [b["booking_id"] for b in listed.json()["bookings"]], listed.text[:300]





@pytest.mark.parametrize(("generator", "payload"), [p for p in PAYLOADS if header_value(p[1]) is not None],
                         ids=[i for i, p in zip(PAYLOAD_IDS, PAYLOADS) if header_value(p[1]) is not None])
def test_idempotency_key_header(seeded, generator, payload):
    seat = f"S{next(seeded['next_seat'], 40)}"
    customer = f"idem-{uuid.uuid4().hex[:8]}"
    hold = hostile_post(generator, "booking", "/v1/holds", {"event_id": seeded["event_id"], "seat_ids": [seat], "customer_id": customer}, CLIENT)
    if hold.status_code != 201:
        return
    hostile_post(generator, "booking", "/v1/bookings", {"hold_id": hold.json()["hold_id"], "customer_id": customer},
                 {**CLIENT, "Idempotency-Key": header_value(payload)})


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
def test_notification_endpoint_fields(generator, payload):
    for body in ({"url": "http://127.0.0.1:9/hook", "description": payload},
                 {"url": "http://127.0.0.1:9/hook/" + payload},
                 {"url": payload},
                 {"url": "http://127.0.0.1:9/hook", "event_types": [payload]}):
        response = hostile_post(generator, "notification", "/v1/endpoints", body, ADMIN)
        if response.status_code >= 400:
            continue
        created = response.json()
        ENDPOINT_SECRETS.append(created["secret"])
        got = call(generator, "GET", "notification", f"/v1/endpoints/{created['endpoint_id']}", headers=ADMIN)
        assert got.status_code == 200, got.text
        for key in ("url", "description", "event_types"):
            if key in body:
                literal(body[key], got.json()[key])
        # PATCH the description too.
        patched = hostile_post(generator, "notification", f"/v1/endpoints/{created['endpoint_id']}",
                               {"description": payload}, ADMIN, method="PATCH")
        if patched.status_code < 300:
            literal(payload, call(generator, "GET", "notification", f"/v1/endpoints/{created['endpoint_id']}",
                                  headers=ADMIN).json()["description"])


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
def test_payout_host_fields(generator, payload):
    response = hostile_post(generator, "payout", f"/v1/hosts/{quote_path(payload)}", {"payout_account": "acct_hostile1"},
                            ADMIN, method="PUT")
    if response.status_code < 300:
        literal(payload, response.json()["host_id"])
        balance = call(generator, "GET", "payout", f"/v1/hosts/{quote_path(payload)}/balance", headers=ADMIN)
        if balance.status_code == 200:
            literal(payload, balance.json()["host_id"])
        else:
            assert_json_error(balance)
    hostile_post(generator, "payout", "/v1/hosts/hostile-host", {"payout_account": payload}, ADMIN, method="PUT")
    hostile_post(generator, "payout", "/v1/payout-runs", {"run_date": payload}, ADMIN)


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
@pytest.mark.parametrize("service", list(URLS))
def test_dead_letter_filters(service, generator, payload):
    for name in ("kind", "status", "stream", "consumer", "event_type", "aggregate_id", "from", "until", "cursor"):
        response = call(generator, "GET", service, "/v1/admin/dead-letters" + query({name: payload}), headers=ADMIN)
        if response.status_code >= 400:
            assert_json_error(response)
    # X-Operator is required by the dead-letter actions; sent, so that the filter is read.
    for name in ("stream", "consumer", "event_type", "aggregate_id", "from", "until"):
        hostile_post(generator, service, "/v1/admin/dead-letters/replay", {name: payload}, {**ADMIN, "X-Operator": "hostile-input"})
    operator = header_value(payload)
    if operator is not None:
        hostile_post(generator, service, "/v1/admin/dead-letters/replay", {"stream": "none"}, {**ADMIN, "X-Operator": operator})
    response = call(generator, "GET", service, f"/v1/admin/dead-letters/{quote_path(payload)}", headers=ADMIN)
    assert response.status_code >= 400
    assert_json_error(response)


def check_stored_delivery(generator, response, body, event_id=None):
    """A refused delivery is a 4xx with the JSON error body; an accepted one is stored byte for byte
    (and, when `event_id` is given, under that event id, literally)."""
    if response.status_code >= 400:
        assert_json_error(response)
        return
    row = call(generator, "GET", "payments-webhook", f"/v1/admin/payment-events/{response.json()['id']}", headers=ADMIN)
    assert row.status_code == 200, row.text
    assert row.json()["raw_body"] == body
    if event_id is not None:
        literal(event_id, row.json()["provider_event_id"])


@pytest.mark.parametrize(("generator", "payload"), PAYLOADS, ids=PAYLOAD_IDS)
def test_payment_event_fields(generator, payload):
    for field in ("id", "type", "booking_id", "currency", "provider_ref", "occurred_at", "reason"):
        event, body = internal_payload(**{field: payload})
        response = post_webhook(generator, "/v1/payment-events", body, standard_headers(body))
        check_stored_delivery(generator, response, body, payload if field == "id" else None)
    for where in ("id", "booking_id"):
        event, body = stripe_payload()
        if where == "id":
            event["id"] = payload
        else:
            event["data"]["object"]["metadata"]["booking_id"] = payload
        body = json.dumps(event)
        response = post_webhook(generator, "/v1/webhooks/stripe", body, {"Stripe-Signature": stripe_header(body)})
        check_stored_delivery(generator, response, body, payload if where == "id" else None)
    for name in ("provider", "provider_event_id", "booking_id", "status", "type", "cursor"):
        response = call(generator, "GET", "payments-webhook", "/v1/admin/payment-events" + query({name: payload}), headers=ADMIN)
        if response.status_code >= 400:
            assert_json_error(response)


BROKEN_BODIES = [b'{"%s": "\xff\xfe"}', b'{"%s": "\xed\xa0\x80"}', b'{"%s": "\\ud800\\u0000', b"\x00" * 64,
                 b'{"a":' * 5000 + b"1" + b"}" * 5000]
# A field each route reads, so that invalid UTF-8 lands in a value that is used.
BROKEN_TARGETS = {"booking": ("/v1/holds", "customer_id"), "payments-webhook": ("/v1/payment-events", "id"),
                  "notification": ("/v1/endpoints", "url"), "payout": ("/v1/payout-runs", "run_date")}


@pytest.mark.parametrize("service", list(URLS))
def test_invalid_utf8_and_broken_json_are_not_5xx(service):
    target, field = BROKEN_TARGETS[service]
    for template in BROKEN_BODIES:
        body = template.replace(b"%s", field.encode()) if b"%s" in template else template
        headers = {**JSON, **ADMIN}
        if service == "payments-webhook":
            headers.update(standard_headers(body.decode("latin-1")))
        response = call("unicode", "POST", service, target, data=body, headers=headers)
        if response.status_code >= 400:
            assert_json_error(response)
        else:
            FINDINGS.append(f"{service} POST {target} with {body[:40]!r}: {response.status_code} {response.text[:160]}")


# ---------------------------------------------------------------------------------------------
# After the hostile input: tables answer, Redis kept its keys


def test_zz_state_survived(seeded):
    put = call("injection", "PUT", "payout", "/v1/hosts/hostile-host", headers={**ADMIN, **JSON},
               data=dumps({"payout_account": "acct_hostile1"}))
    assert put.status_code in (200, 201), put.text
    # Redis: the hold made before any hostile input is still there (it can be booked).
    booking = call("injection", "POST", "booking", "/v1/bookings", headers={**CLIENT, **JSON, "Idempotency-Key": uuid.uuid4().hex},
                   data=dumps({"hold_id": seeded["early_hold"], "customer_id": "hostile-early-customer"}))
    assert booking.status_code == 201, booking.text
    # Postgres: reading routes of every service still work.
    for service, path, headers in (
        ("booking", f"/v1/events/{seeded['event_id']}/seats", CLIENT),
        ("booking", f"/v1/bookings/{booking.json()['booking_id']}?customer_id=hostile-early-customer", CLIENT),
        ("booking", "/v1/admin/sagas", ADMIN),
        ("payments-webhook", "/v1/admin/payment-events", ADMIN),
        ("notification", "/v1/endpoints", ADMIN),
        ("payout", "/v1/payout-runs", ADMIN),
        ("payout", "/v1/hosts/hostile-host/balance", ADMIN),
    ):
        response = call("injection", "GET", service, path, headers=headers)
        assert response.status_code == 200, (service, path, response.text)
    for service in URLS:
        assert call("injection", "GET", service, "/v1/admin/dead-letters", headers=ADMIN).status_code == 200
        assert call("injection", "GET", service, "/readyz").status_code == 200


# ---------------------------------------------------------------------------------------------
# (f) secrets hygiene (last: after all the traffic above)


def test_zz_endpoint_secret_rotation():
    created = call("secrets", "POST", "notification", "/v1/endpoints", headers={**ADMIN, **JSON},
                   data=dumps({"url": "http://127.0.0.1:9/secrets", "description": "secrets hygiene"}))
    assert created.status_code == 201, created.text
    ENDPOINT_SECRETS.append(created.json()["secret"])
    for grace in (3600, 0):
        rotated = call("secrets", "POST", "notification", f"/v1/endpoints/{created.json()['endpoint_id']}/rotate-secret",
                       headers={**ADMIN, **JSON}, data=dumps({"grace_seconds": grace}))
        assert rotated.status_code == 200, rotated.text
        ENDPOINT_SECRETS.append(rotated.json()["secret"])
    # A signed webhook of each kind, accepted.
    _, payload = stripe_payload()
    assert post_webhook("secrets", "/v1/webhooks/stripe", payload, {"Stripe-Signature": stripe_header(payload)}).status_code == 200
    _, payload = internal_payload()
    assert post_webhook("secrets", "/v1/payment-events", payload, standard_headers(payload)).status_code == 200
    time.sleep(1)  # the last lines reach the log files


def configured_secrets() -> dict[str, str]:
    secrets = {"ADMIN_TOKEN": ADMIN_TOKEN, "PROVIDER_API_KEY": os.environ["HOSTILE_PROVIDER_API_KEY"],
               "NOTIFICATION_SECRETS_KEY": os.environ["HOSTILE_NOTIFICATION_SECRETS_KEY"],
               "DATABASE_URL password": os.environ["HOSTILE_DATABASE_PASSWORD"]}
    for i, entry in enumerate(os.environ["HOSTILE_API_KEYS"].split(",")):
        secrets[f"API_KEYS[{i}]"] = entry.split(":", 1)[1] if entry.startswith("hostile:") else entry
    for i, secret in enumerate(STRIPE_SECRETS):
        secrets[f"STRIPE_WEBHOOK_SECRETS[{i}]"] = secret
        secrets[f"STRIPE_WEBHOOK_SECRETS[{i}] without whsec_"] = secret.removeprefix("whsec_")
    for i, secret in enumerate(EVENT_SECRETS):
        secrets[f"PAYMENT_EVENTS_SECRETS[{i}]"] = secret
        secrets[f"PAYMENT_EVENTS_SECRETS[{i}] base64"] = secret.removeprefix("whsec_")
        secrets[f"PAYMENT_EVENTS_SECRETS[{i}] hex key"] = base64.b64decode(secret.removeprefix("whsec_")).hex()
    for i, secret in enumerate(ENDPOINT_SECRETS):
        secrets[f"endpoint secret {i}"] = secret
        secrets[f"endpoint secret {i} base64"] = secret.removeprefix("whsec_")
    return secrets


def test_zz_no_secret_in_any_log_line():
    assert len(ENDPOINT_SECRETS) >= 3, "the rotation test must run first"
    logs = {service: (LOG_DIR / f"{service}.log").read_text(errors="replace").splitlines() for service in URLS}
    for service, lines in logs.items():
        assert lines, f"{service} logged nothing"
        levels = collections.Counter(json.loads(line).get("level") for line in lines if line.startswith("{"))
        assert levels["trace"] + levels["debug"] > 0, f"{service} logged no trace/debug lines at LOG_LEVEL=trace: {levels}"
    hits = []
    for name, secret in configured_secrets().items():
        assert len(secret) >= 16, name
        for service, lines in logs.items():
            for number, line in enumerate(lines, 1):
                if secret in line:
                    hits.append(f"{name} in {service}.log line {number}: {line[:300]}")
    total = sum(len(lines) for lines in logs.values())
    FINDINGS.append(f"secrets: {len(configured_secrets())} secrets searched in {total} log lines of the four services "
                    f"(trace level): {len(hits)} hits")
    assert not hits, "\n".join(hits[:20])
