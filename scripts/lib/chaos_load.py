#!/usr/bin/env python3
"""The load generator and the report of `scripts/chaos` (Python's standard library only).

Started by scripts/chaos once the services answer; it reads the services' settings from the
environment (BOOKING_PORT, NOTIFICATION_PORT, PROVIDER_SIMULATOR_PORT, ADMIN_TOKEN, API_KEYS,
DATABASE_URL, CHAOS_PSQL, CHAOS_BOOKING_BIN, REDIS_URL) and works in --state (a folder):

  1. creates events with enough seats for the whole run and a notification endpoint pointing at a
     receiver of its own (which records every booking.confirmed it gets), then writes load.ready;
  2. runs sagas at a steady open-loop rate (--rate per second, one thread each, never waiting for
     earlier sagas): hold 1 seat (a customer of its own) -> POST /v1/bookings with an
     Idempotency-Key (retried with the same key on 5xx or a connection error) -> wait for the payment
     intent on the booking -> POST /simulator/payment_intents/{id}/succeed. Every operation is
     recorded with its start and end (epoch seconds), outcome, HTTP status and the id it returned,
     in ops.jsonl;
  3. when load.stop appears: stops starting sagas, waits for those in flight, then waits (up to
     --quiesce seconds) until every paid booking is confirmed and notified and the outbox is empty;
  4. runs `booking check` on the quiet system, reads the faults scripts/chaos recorded
     (faults.tsv, check-N.json), looks every acknowledged booking up in Postgres and prints the
     report; exit status 0 when nothing acknowledged was lost and no check found a violation, 1
     otherwise.

`chaos_load.py provider-faults --seconds 30 --share 0.5` makes about that share of the simulator's
payment intent creations fail meanwhile (see provider_faults).
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

SEATS_PER_EVENT = 10000


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value else default


def log(message):
    print(f"chaos-load {datetime.now(timezone.utc).strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


class Response:
    def __init__(self, status, body, error=None):
        self.status = status  # HTTP status, or 0 when no answer came
        self.body = body
        self.error = error

    @property
    def ok(self):
        return 200 <= self.status < 300

    def json(self):
        try:
            return json.loads(self.body) if self.body else {}
        except ValueError:
            return {}


def call(method, url, body=None, token=None, headers=None, timeout=10.0):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, response.read())
    except urllib.error.HTTPError as error:
        try:
            payload = error.read()
        except OSError:
            payload = b""
        return Response(error.code, payload)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return Response(0, b"", f"{type(reason).__name__}: {reason}")


# --- the receiver -----------------------------------------------------------------------------


class Receiver:
    """Records the booking ids of the booking.confirmed deliveries notification sends."""

    def __init__(self):
        self.confirmed = {}  # booking id -> first delivery time
        self.deliveries = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the standard library's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    envelope = json.loads(body)
                except ValueError:
                    return
                with receiver.lock:
                    receiver.deliveries += 1
                    if envelope.get("type") == "booking.confirmed":
                        data = envelope.get("data") or {}
                        booking_id = data.get("booking_id") or envelope.get("aggregate_id")
                        receiver.confirmed.setdefault(booking_id, time.time())

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the load ---------------------------------------------------------------------------------


class Load:
    def __init__(self, args):
        self.args = args
        self.state = args.state
        self.run_id = datetime.now(timezone.utc).strftime("%H%M%S") + os.urandom(2).hex()
        api_key = env("API_KEYS", "dev-api-key").split(",")[0].strip()
        self.api_key = api_key.split(":", 1)[1] if ":" in api_key else api_key
        self.admin = env("ADMIN_TOKEN", "dev-admin-token")
        self.booking = f"http://127.0.0.1:{env('BOOKING_PORT', '8080')}"
        self.notification = f"http://127.0.0.1:{env('NOTIFICATION_PORT', '8082')}"
        self.simulator = f"http://127.0.0.1:{env('PROVIDER_SIMULATOR_PORT', '8090')}"
        self.lock = threading.Lock()
        self.ops = []
        self.sagas = {}  # saga number -> dict
        self.ops_file = open(os.path.join(self.state, "ops.jsonl"), "w", encoding="utf-8")
        self.events = []
        self.next_seat = 0
        self.active = 0
        self.skipped = 0
        self.receiver = Receiver()

    # - recording -

    def record(self, saga, op, t0, response, ident=None, extra=None):
        entry = {
            "saga": saga,
            "op": op,
            "t0": round(t0, 4),
            "t1": round(time.time(), 4),
            "ok": response.ok if response is not None else False,
            "status": response.status if response is not None else 0,
        }
        if ident:
            entry["id"] = ident
        if response is not None and not response.ok:
            entry["error"] = response.error or response.body[:160].decode("utf-8", "replace")
        if extra:
            entry.update(extra)
        with self.lock:
            self.ops.append(entry)
            self.ops_file.write(json.dumps(entry) + "\n")
        return entry

    # - set-up -

    def setup(self):
        needed = int(self.args.rate * self.args.seconds * 1.2) + 100
        count = (needed + SEATS_PER_EVENT - 1) // SEATS_PER_EVENT
        starts = datetime.now(timezone.utc) + timedelta(days=30)
        for number in range(count):
            body = {
                "name": f"Chaos {self.run_id} #{number}",
                "host_id": f"chaos_host_{self.run_id}",
                "starts_at": starts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ends_at": (starts + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "time_zone": "UTC",
                "currency": "EUR",
                "seats": [{"seat_id": f"S{seat:05d}", "price": 2500} for seat in range(SEATS_PER_EVENT)],
            }
            response = call("POST", self.booking + "/v1/events", body, self.admin, timeout=60)
            if response.status != 201:
                raise SystemExit(f"chaos-load: creating an event answered {response.status}: {response.body[:300]!r}")
            self.events.append(response.json()["event_id"])
        response = call(
            "POST",
            self.notification + "/v1/endpoints",
            {"url": self.receiver.url, "description": f"scripts/chaos receiver {self.run_id}"},
            self.admin,
        )
        if response.status != 201:
            raise SystemExit(f"chaos-load: creating the notification endpoint answered {response.status}: {response.body[:300]!r}")
        log(f"run {self.run_id}: {count} event(s) of {SEATS_PER_EVENT} seats, receiver {self.receiver.url}")

    def seat(self):
        with self.lock:
            index = self.next_seat
            self.next_seat += 1
        event = self.events[index // SEATS_PER_EVENT]
        return event, f"S{index % SEATS_PER_EVENT:05d}"

    # - one saga -

    def saga(self, number):
        try:
            self._saga(number)
        except Exception as error:  # noqa: BLE001 (a bug here must not stop the run)
            self.record(number, "crash", time.time(), Response(0, b"", repr(error)))
        finally:
            with self.lock:
                self.active -= 1

    def _saga(self, number):
        customer = f"chaos_{self.run_id}_{number}"
        event, seat = self.seat()
        saga = {"customer": customer, "started": time.time()}
        with self.lock:
            self.sagas[number] = saga
        # 1. hold (one attempt: the next saga comes 1/rate s later)
        t0 = time.time()
        response = call(
            "POST", self.booking + "/v1/holds", {"event_id": event, "seat_ids": [seat], "customer_id": customer}, self.api_key
        )
        hold_id = response.json().get("hold_id") if response.status == 201 else None
        self.record(number, "hold", t0, response, hold_id)
        if not hold_id:
            return
        saga["hold"] = hold_id
        saga["held_at"] = time.time()
        # A customer takes a moment between holding and booking (so a Redis flush can take holds).
        time.sleep(self.args.think)
        # 2. booking, retried with the same key while the answer is not final (5xx, no answer)
        key = f"chaos-{self.run_id}-{number}"
        booking_id = None
        deadline = time.time() + 20
        while True:
            t0 = time.time()
            response = call(
                "POST",
                self.booking + "/v1/bookings",
                {"hold_id": hold_id, "customer_id": customer},
                self.api_key,
                headers={"Idempotency-Key": key},
            )
            if response.status in (200, 201):
                booking_id = response.json().get("booking_id")
            entry = self.record(number, "book", t0, response, booking_id)
            if booking_id or (400 <= response.status < 500) or time.time() > deadline:
                break
            time.sleep(1.0)
        if not booking_id:
            saga["book_refused"] = entry.get("error", "")[:120]
            saga["refused_at"] = entry["t1"]
            return
        saga["booking"] = booking_id
        saga["booked_at"] = entry["t1"]
        # 3. the payment intent on the booking
        t0 = time.time()
        deadline = t0 + self.args.intent_wait
        query = urllib.parse.urlencode({"customer_id": customer})
        intent = None
        last = None
        while time.time() < deadline and not self.stopping_hard.is_set():
            last = call("GET", f"{self.booking}/v1/bookings/{booking_id}?{query}", token=self.api_key)
            if last.ok:
                intent = (last.json().get("payment") or {}).get("provider_ref")
                if intent:
                    break
            time.sleep(0.5)
        if intent:
            self.record(number, "intent", t0, Response(200, b""), intent)
        else:
            self.record(number, "intent", t0, last or Response(0, b"", "no intent"), extra={"timeout": True})
            return
        saga["intent"] = intent
        # 4. pay at the simulator (which sends the signed webhook, with its retries, before answering)
        deadline = time.time() + 60
        while True:
            t0 = time.time()
            response = call("POST", f"{self.simulator}/simulator/payment_intents/{intent}/succeed", {}, timeout=150)
            delivered = None
            if response.status == 200:
                delivered = bool(((response.json().get("delivery") or {}).get("delivered")))
            entry = self.record(number, "pay", t0, response, intent, {"delivered": delivered})
            if response.status in (200, 409) or time.time() > deadline:
                break
            time.sleep(1.0)
        if response.status == 200:
            saga["paid"] = entry["t1"]
            saga["delivered"] = delivered
        elif response.status == 409:  # an earlier attempt succeeded (its answer was lost)
            saga["paid"] = entry["t1"]
            saga["delivered"] = None

    # - the run -

    def run(self):
        self.stopping_hard = threading.Event()
        self.setup()
        threading.stack_size(512 * 1024)
        open(os.path.join(self.state, "load.ready"), "w").close()
        stop_file = os.path.join(self.state, "load.stop")
        started = time.time()
        number = 0
        threads = []
        last_report = started
        log(f"open-loop load at {self.args.rate}/s")
        while not os.path.exists(stop_file):
            due = started + number / self.args.rate
            now = time.time()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            number += 1
            with self.lock:
                full = self.active >= self.args.max_in_flight
                if not full:
                    self.active += 1
            if full:
                self.skipped += 1
                continue
            thread = threading.Thread(target=self.saga, args=(number,), daemon=True)
            thread.start()
            threads.append(thread)
            if now - last_report >= 30:
                last_report = now
                threads = [t for t in threads if t.is_alive()]
                log(f"{number} sagas started, {self.active} in flight, {self.skipped} skipped (generator saturated)")
        log(f"load stopped after {number} sagas; waiting for the {self.active} in flight")
        deadline = time.time() + 240
        for thread in threads:
            thread.join(max(0.0, deadline - time.time()))
        if any(t.is_alive() for t in threads):
            self.stopping_hard.set()
            log("some sagas were still in flight after 240 s; they are reported as unfinished")
        self.ops_file.flush()
        self.started_count = number


# --- Postgres ---------------------------------------------------------------------------------


def psql(sql):
    command = [env("CHAOS_PSQL", "psql"), env("DATABASE_URL"), "-XtAq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def stored_bookings(run_id):
    rows = psql(
        "SELECT booking_id, status, COALESCE(extract(epoch FROM confirmed_at)::text, ''), customer_id "
        f"FROM booking.bookings WHERE customer_id LIKE 'chaos\\_{run_id}\\_%'"
    )
    return {row[0]: {"status": row[1], "confirmed_at": float(row[2]) if row[2] else None, "customer": row[3]} for row in rows}


def run_check(args_extra):
    command = [env("CHAOS_BOOKING_BIN"), "check", "--json", *args_extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    try:
        document = json.loads(result.stdout)
    except ValueError:
        document = None
    return result.returncode, document, result.stderr.strip()


def check_summary(code, document):
    if code == 2 or document is None:
        return "could not run"
    bad = [f"{c['name']}={c['count']}" for c in document["checks"] if c["status"] == "VIOLATION"]
    return "OK" if code == 0 and not bad else "VIOLATION " + ",".join(bad)


# --- the report -------------------------------------------------------------------------------


def read_faults(state):
    faults = []
    path = os.path.join(state, "faults.tsv")
    if not os.path.exists(path):
        return faults
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 6:
                continue
            index, name, start, end, recovered, check_code = parts[:6]
            note = parts[6] if len(parts) > 6 else ""
            document = None
            check_path = os.path.join(state, f"check-{index}.json")
            if os.path.exists(check_path):
                try:
                    with open(check_path, encoding="utf-8") as check:
                        document = json.load(check)
                except ValueError:
                    document = None
            faults.append(
                {
                    "index": int(index),
                    "name": name,
                    "start": float(start),
                    "end": float(end),
                    "recovered": float(recovered),
                    "check_code": int(check_code),
                    "check": document,
                    "note": note,
                }
            )
    return faults


def report(load, quiesce_result):
    ok = True
    problems = []
    faults = read_faults(load.state)
    ops = load.ops
    sagas = load.sagas
    stored = stored_bookings(load.run_id)
    acked = {s["booking"]: n for n, s in sagas.items() if s.get("booking")}
    lost = [b for b in acked if b not in stored]
    if lost:
        ok = False
        problems.append(f"{len(lost)} acknowledged booking(s) not in Postgres: {', '.join(lost[:10])}")
    paid_delivered = [s["booking"] for s in sagas.values() if s.get("paid") and s.get("delivered") is not False]
    paid_undelivered = [s["booking"] for s in sagas.values() if s.get("paid") and s.get("delivered") is False]
    not_confirmed = [b for b in paid_delivered if stored.get(b, {}).get("status") != "confirmed"]
    if not_confirmed:
        ok = False
        details = ", ".join(f"{b} ({stored.get(b, {}).get('status', 'missing')})" for b in not_confirmed[:10])
        problems.append(f"{len(not_confirmed)} paid booking(s) whose webhook the simulator delivered are not confirmed: {details}")
    unacked_stored = [b for b, row in stored.items() if b not in acked]
    confirmed = [b for b, row in stored.items() if row["status"] == "confirmed"]
    notified_missing = [b for b in confirmed if b not in load.receiver.confirmed]

    def in_window(t, start, end):
        return start <= t < end

    rows = []
    for index, fault in enumerate(faults):
        start, end = fault["start"], fault["end"]
        next_start = faults[index + 1]["start"] if index + 1 < len(faults) else float("inf")
        window_ops = [o for o in ops if o["op"] in ("hold", "book") and in_window(o["t0"], start, end)]
        attempted = len(window_ops)
        acknowledged = sum(1 for o in window_ops if o["ok"])
        failed = attempted - acknowledged
        failed_after = sum(1 for o in ops if o["op"] in ("hold", "book") and not o["ok"] and in_window(o["t0"], end, next_start))
        holds_lost = sum(
            1 for s in sagas.values() if "hold_expired" in s.get("book_refused", "") and in_window(s["refused_at"], start, next_start)
        )
        # bookings acknowledged from the fault's start until the next fault
        period = [b for b, n in acked.items() if in_window(sagas[n]["booked_at"], start, next_start)]
        period_stored = sum(1 for b in period if b in stored)
        # time to serve again: the first hold and the first booking request sent after the window that
        # were answered (2xx, or 4xx such as 409 for a hold Redis lost), the later of the two answers
        first = {}
        for kind in ("hold", "book"):
            answered = [o["t1"] for o in ops if o["op"] == kind and 200 <= o["status"] < 500 and o["t0"] >= end]
            first[kind] = min(answered) if answered else None
        serve_again = None if None in first.values() else max(first.values()) - end
        confirmations = [row["confirmed_at"] for row in stored.values() if row["confirmed_at"] and row["confirmed_at"] >= end]
        confirm_again = (min(confirmations) - end) if confirmations else None
        saga_numbers = {n for n, sg in sagas.items() if sg.get("booked_at") and in_window(sg["booked_at"], start, next_start)}
        waits = sorted(o["t1"] - o["t0"] for o in ops if o["op"] == "intent" and o["ok"] and o["saga"] in saga_numbers)
        intent_wait = f"{waits[len(waits) // 2]:.1f}/{waits[-1]:.1f}" if waits else "-"
        check = check_summary(fault["check_code"], fault["check"])
        if check != "OK":
            ok = False
            problems.append(f"invariant check after '{fault['name']}': {check}")
        if len(period) != period_stored:
            ok = False
        rows.append(
            [
                fault["name"],
                f"{end - start:.1f}",
                f"{attempted}/{acknowledged}/{failed}",
                str(failed_after),
                str(holds_lost),
                f"{len(period)}/{period_stored}",
                check,
                "-" if serve_again is None else f"{serve_again:.1f}",
                "-" if confirm_again is None else f"{confirm_again:.1f}",
                intent_wait,
                fault["note"],
            ]
        )
    final_code, final_doc, final_err = run_check(
        ["--settle", env("CHAOS_FINAL_SETTLE", "10s"), "--outbox-bound", "30s", "--pending-bound", "30s"]
    )
    with open(os.path.join(load.state, "check-final.json"), "w", encoding="utf-8") as handle:
        handle.write(json.dumps(final_doc) if final_doc else "")
    final = check_summary(final_code, final_doc)
    if final != "OK":
        ok = False
        problems.append(f"final invariant check: {final} {final_err[:300]}")

    out = sys.stdout
    header = ["fault", "window s", "ops in window att/ack/fail", "failed after", "holds lost", "bookings acked/stored", "invariant check", "serve again s", "confirm again s",
              "intent wait p50/max s", "note"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(file=out)
    print("  ".join(h.ljust(widths[i]) for i, h in enumerate(header)).rstrip(), file=out)
    print("  ".join("-" * widths[i] for i in range(len(header))), file=out)
    for r in rows:
        print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)).rstrip(), file=out)
    print(file=out)
    print(
        "  window: from the fault until its cause was removed (service restarted, server back, SIGCONT, faults cleared);"
        " ops: holds and booking attempts started in the window;",
        file=out,
    )
    print(
        "  bookings: acknowledged (201/200) from the fault until the next one, and how many of them Postgres holds;"
        " serve again: until a hold and a booking request sent after the window were both answered without a 5xx"
        " (a 409 for a hold Redis lost is an answer);",
        file=out,
    )
    print("  failed after: holds and booking attempts started after the window (until the next fault) that failed;"
          " holds lost: acknowledged holds whose booking was refused as hold_expired (refused from the fault until the next one);", file=out)
    print("  confirm again: first booking confirmed (confirmed_at) after the window; check: booking check --settle "
          f"{env('CHAOS_CHECK_SETTLE', '60s')} with the load running, after the recovery period;", file=out)
    print("  intent wait: from a booking's acknowledgement until its payment intent showed on GET /v1/bookings/{id}, for the"
          " bookings acknowledged from the fault until the next one.", file=out)
    print(file=out)

    holds_ok = sum(1 for o in ops if o["op"] == "hold" and o["ok"])
    holds = sum(1 for o in ops if o["op"] == "hold")
    book_attempts = sum(1 for o in ops if o["op"] == "book")
    hold_lost = sum(1 for s in sagas.values() if "hold_expired" in s.get("book_refused", ""))
    statuses = {}
    for row in stored.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    crashes = [o for o in ops if o["op"] == "crash"]
    print(f"sagas started {load.started_count} (rate {load.args.rate}/s), skipped by a saturated generator {load.skipped}", file=out)
    print(f"holds {holds} attempted, {holds_ok} acknowledged; booking requests {book_attempts}; "
          f"acknowledged holds refused at conversion as expired (lost with Redis' data, allowed) {hold_lost}", file=out)
    print(f"bookings acknowledged {len(acked)}, in Postgres {len(acked) - len(lost)}; stored without an acknowledgement "
          f"(answer lost, retries exhausted) {len(unacked_stored)}", file=out)
    print("bookings by status in Postgres: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())), file=out)
    print(f"paid at the simulator {len(paid_delivered) + len(paid_undelivered)} (webhook delivered {len(paid_delivered)}, "
          f"undelivered after the simulator's attempts {len(paid_undelivered)}); paid and delivered but not confirmed {len(not_confirmed)}", file=out)
    no_intent = sum(1 for s in sagas.values() if s.get("booking") and not s.get("intent"))
    print(f"acknowledged bookings whose payment intent did not appear within {load.args.intent_wait:.0f} s (left pending_payment) {no_intent}",
          file=out)
    print(f"confirmed bookings notified to the receiver {len(confirmed) - len(notified_missing)} of {len(confirmed)}"
          f" ({load.receiver.deliveries} deliveries in all)", file=out)
    if notified_missing:
        print(f"  warning: {len(notified_missing)} confirmed booking(s) not (yet) notified, e.g. {', '.join(notified_missing[:5])}", file=out)
    if paid_undelivered:
        print(f"  warning: {len(paid_undelivered)} payment(s) whose webhook the simulator gave up on (it has no later retries), e.g. "
              f"{', '.join(paid_undelivered[:5])}", file=out)
    unexpected = [o for o in ops if o["status"] >= 500 and o["status"] != 503]
    if unexpected:
        def during(t):
            names = [f["name"] for f in faults if f["start"] <= t]
            return names[-1] if names else "before the first fault"
        print(f"  warning: {len(unexpected)} answer(s) 5xx other than 503 (a dependency down should be 503):", file=out)
        for o in unexpected[:10]:
            stamp = datetime.fromtimestamp(o["t0"], timezone.utc).strftime("%H:%M:%S.%f")[:-3]
            print(f"    {o['op']} {o['status']} at {stamp} UTC (saga {o['saga']}, after '{during(o['t0'])}'): {o.get('error', '')[:120]}",
                  file=out)
    if crashes:
        print(f"  warning: {len(crashes)} saga(s) crashed in the load generator: {crashes[0].get('error')}", file=out)
    print(f"quiescence: {quiesce_result}", file=out)
    if final_doc:
        info = ", ".join(f"{c['name']} {c['count']}" for c in final_doc["checks"] if c["status"] == "INFO" and c["count"])
        print(f"final booking check (load stopped): {final}; info rows: {info}", file=out)
    else:
        print(f"final booking check (load stopped): {final} {final_err[:300]}", file=out)
    print(file=out)
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}", file=out)
    else:
        print("chaos: no acknowledged booking lost, every paid booking confirmed, every invariant check passed", file=out)
    out.flush()
    return 0 if ok else 1


def quiesce(load, timeout):
    """Waits until every paid (delivered) booking is confirmed and notified and the outbox is published."""
    deadline = time.time() + timeout
    paid = [s["booking"] for s in load.sagas.values() if s.get("paid") and s.get("delivered") is not False]
    last = ""
    while True:
        try:
            stored = stored_bookings(load.run_id)
            unpublished = int(psql("SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL")[0][0])
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            stored, unpublished = {}, -1
            last = str(error)
        unconfirmed = [b for b in paid if stored.get(b, {}).get("status") != "confirmed"]
        confirmed = [b for b, row in stored.items() if row["status"] == "confirmed"]
        unnotified = [b for b in confirmed if b not in load.receiver.confirmed]
        if stored and not unconfirmed and not unnotified and unpublished == 0:
            return f"reached in {timeout - (deadline - time.time()):.0f} s"
        last = f"{len(unconfirmed)} paid not confirmed, {len(unnotified)} confirmed not notified, {unpublished} outbox rows unpublished"
        if time.time() >= deadline:
            return f"NOT reached within {timeout:.0f} s: {last}"
        time.sleep(2)


def provider_faults(seconds, share, rate):
    """Makes about `share` of the simulator's payment intent creations fail (500 api_error) for `seconds`.

    The simulator's fault API only counts failures (`count`: the next N creations fail). Every 0.25 s
    this reads the creations made since the start (GET /simulator/requests) and re-arms `count` with
    what keeps the failed share at `share` of the creations made so far plus those expected in the
    next 0.25 s; prints "failed total" of the window at the end.
    """
    simulator = f"http://127.0.0.1:{env('PROVIDER_SIMULATOR_PORT', '8090')}/simulator"

    def creations(first):
        response = call("GET", simulator + "/requests", timeout=10)
        rows = json.loads(response.body) if response.ok else []
        mine = [r for r in rows[first:] if r.get("method") == "POST" and r.get("path") == "/v1/payment_intents"]
        return len(rows), sum(1 for r in mine if r.get("fault")), len(mine)

    first, _, _ = creations(0)
    end = time.time() + seconds
    armed = None
    while time.time() < end:
        _, failed, total = creations(first)
        count = int(share * (total + rate * 0.25) - failed + 0.5)
        if count != armed:
            if count > 0:
                call("POST", simulator + "/faults", {"operation": "payment_intents", "mode": "transient", "count": count})
            else:
                call("DELETE", simulator + "/faults")
            armed = count
        time.sleep(0.25)
    call("DELETE", simulator + "/faults")
    _, failed, total = creations(first)
    print(failed, total)
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "provider-faults":
        parser = argparse.ArgumentParser(description="scripts/chaos: the simulator failing a share of intent creations")
        parser.add_argument("command")
        parser.add_argument("--seconds", type=float, default=30)
        parser.add_argument("--share", type=float, default=0.5)
        parser.add_argument("--rate", type=float, default=10)
        args = parser.parse_args()
        return provider_faults(args.seconds, args.share, args.rate)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, required=True, help="the run's planned length (sizes the events)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a hold and its booking")
    parser.add_argument("--intent-wait", type=float, default=90.0)
    parser.add_argument("--max-in-flight", type=int, default=1500)
    parser.add_argument("--quiesce", type=float, default=120.0)
    args = parser.parse_args()
    load = Load(args)
    load.run()
    log("waiting for quiescence")
    result = quiesce(load, args.quiesce)
    log(f"quiescence {result}; running booking check and the report")
    return report(load, result)


if __name__ == "__main__":
    sys.exit(main())
