"""The payments-webhook service's pair: signed Stripe webhooks stored once, against pgbench.

    webhooks   ours: wrk (scripts/bench-payments/webhooks.lua), 64 connections on 2 threads,
               POST /v1/webhooks/stripe, each request a distinct, correctly signed 1 KiB
               `payment_intent.succeeded` event (gen-webhooks.py, signed right before the run); the
               service verifies it and, in one transaction, stores it in payments.provider_events and
               appends payment.succeeded to the outbox (its relay publishes to Redis after commit).
               theirs: pgbench (webhook.sql), the same transaction statement for statement and round
               trip for round trip, 64 clients, 2 threads. After the open-loop runs, the same pgbench
               at their arrival rates (`pgbench --rate`, the rows `webhooks-reference`).

The setup creates and migrates two databases (`payments` for the service, `payments_ref` for pgbench)
and starts `payments-webhook serve` (Redis database 1, PROVIDER_WORKER=false, warning logs). The checks
after the pair: no answer but 200, no duplicate, stored rows == the service's accepted count (== the
clients' 2xx, less at most the requests in flight when a wrk run ended), outbox rows == accepted rows,
and, once the relay caught up, published rows == outbox rows == entries added to stream:payments.

Each measurement is preceded by a warm-up of PAYMENTS_WARMUP seconds (ours and pgbench alike) and by
VACUUM ANALYZE + CHECKPOINT, so neither side pays for the other's writes; the service is stopped
(SIGSTOP) while pgbench runs.

Tunables (environment): PAYMENTS_BIN (a payments-webhook executable instead of the built one),
PAYMENTS_CONNECTIONS (64), PAYMENTS_THREADS (2, wrk -t), PAYMENTS_DB_POOL (DATABASE_POOL_SIZE, 8),
PAYMENTS_REDIS_POOL (REDIS_POOL_SIZE, 8), PAYMENTS_PGBENCH_CLIENTS (64), PAYMENTS_WARMUP (2 s),
PAYMENTS_BODY_BYTES (1024), PAYMENTS_MAX_RATE (20000: deliveries generated per second of run; a faster
run runs out, which fails the check rather than repeating an event).
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from pathlib import Path

from .. import measure, metrics, openloop, pgbench
from ..bench import Argument, Bench, BenchError, Finished, check, run, run_timed, say, setting
from . import GroupPair, Pair, Rate, ServiceGroup, echo, parse_ours, pgbench_target

STRIPE_SECRET = "whsec_bench_payments_stripe_signing_secret"
EVENTS_SECRET = "whsec_YmVuY2gtcGF5bWVudC1ldmVudHMtc2VjcmV0"  # base64("bench-payment-events-secret")
ADMIN_TOKEN = "bench-admin-token"
# A Redis database of its own: on the booking pair's database 0 the booking service's saga coordinator
# read every delivery's payment.succeeded from stream:payments and took the cores the measurement is
# about (a full run measured 1,388 webhooks/s against 2,612-2,961 alone).
REDIS_DATABASE = 1
COUNTS = ("accepted", "duplicates", "non_2xx", "exhausted", "socket_errors")


def payments_environment(
    database_url: str, redis_url: str, admin_token: str, secrets: tuple[str, str], db_pool: int, redis_pool: int
) -> dict[str, str]:
    """`payments-webhook serve`'s settings under benchmark: SECRETS are the Stripe signing secret and the
    payment-events secret; no provider worker (the bench plays the provider and posts the signed
    webhooks itself, so nothing needs payment intents, and PROVIDER_BASE_URL points nowhere)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ADMIN_TOKEN": admin_token,
        "STRIPE_WEBHOOK_SECRETS": secrets[0],
        "PAYMENT_EVENTS_SECRETS": secrets[1],
        "PROVIDER_API_KEY": "sk_test_bench",
        "PROVIDER_BASE_URL": "http://127.0.0.1:9",
        "PROVIDER_WORKER": "false",
        "LOG_LEVEL": "warning",
        "DATABASE_POOL_SIZE": str(db_pool),
        "REDIS_POOL_SIZE": str(redis_pool),
    }


class PaymentsService(ServiceGroup):
    executables = ("payments-webhook",)
    packages = ("wrk", "python3")

    def __init__(self) -> None:
        self.connections = setting("PAYMENTS_CONNECTIONS", 64)
        self.threads = setting("PAYMENTS_THREADS", 2)
        self.db_pool = setting("PAYMENTS_DB_POOL", 8)
        self.redis_pool = setting("PAYMENTS_REDIS_POOL", 8)
        self.pgbench_clients = setting("PAYMENTS_PGBENCH_CLIENTS", 64)
        self.warmup = setting("PAYMENTS_WARMUP", 2)
        self.body_bytes = setting("PAYMENTS_BODY_BYTES", 1024)
        self.max_rate = setting("PAYMENTS_MAX_RATE", 20_000)
        self.scripts = Path(__file__).resolve().parents[3] / "bench-payments"
        self.webhooks = WebhooksPair(self)
        self.pairs: list[Pair] = [self.webhooks]
        super().__init__()
        self.runs: list[dict[str, int]] = []
        """The clients' counts of every run (wrk and open loop): accepted, duplicates, non_2xx, ..."""
        self.reference_transactions = 0
        self.reference_runs = 0
        """pgbench runs so far on payments_ref: each needs a `-D run=` of its own (`next_run`)."""
        self.published: str = "n/a"

    def next_run(self) -> tuple[str, str]:
        """pgbench's `-D run=<n>` for the next run on payments_ref (1, 2, ...: the ids are made from it)."""
        self.reference_runs += 1
        return ("-D", f"run={self.reference_runs}")

    def setup(self, bench: Bench) -> None:
        self.start_service(
            bench,
            "payments-webhook",
            "payments",
            ("payments", "payments_ref"),
            payments_environment(
                bench.database_url_of("payments"),
                f"{bench.redis_url}/{REDIS_DATABASE}",
                ADMIN_TOKEN,
                (STRIPE_SECRET, EVENTS_SECRET),
                self.db_pool,
                self.redis_pool,
            ),
            f"Redis database {REDIS_DATABASE}, DATABASE_POOL_SIZE={self.db_pool} REDIS_POOL_SIZE={self.redis_pool},"
            " PROVIDER_WORKER=false, LOG_LEVEL=warning",
        )
        # The body template of the pgbench reference (same length as the deliveries once filled in).
        template = self._generate("--pgbench-template", "--bytes", str(self.body_bytes))
        (self.folder / "body-template.json").write_text(template.output, encoding="utf-8")

    def _generate(self, *arguments: str) -> Finished:
        return check(run([sys.executable, os.fspath(self.scripts / "gen-webhooks.py"), *arguments]), "gen-webhooks.py")

    def settle(self, bench: Bench) -> None:
        """Before a measurement: every database vacuumed, then a checkpoint (`Bench.quiet`)."""
        bench.quiet()

    def unpublished(self, bench: Bench) -> int:
        return int(bench.psql("payments", "SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL"))

    def wait_for_relay(self, bench: Bench, limit: float) -> str:
        """Waits until the relay published every outbox row: how long that took ("1.2"), or
        "timeout (N left)" after LIMIT seconds."""
        start = time.monotonic()
        while True:
            left = self.unpublished(bench)
            if left == 0:
                return f"{time.monotonic() - start:.1f}"
            if time.monotonic() - start > limit:
                return f"timeout ({left} left)"
            time.sleep(0.2)

    def deliveries(self, seconds: int, tag: str) -> Path:
        """Signed deliveries for a run of SECONDS (signed now: the service accepts timestamps up to 300 s
        old), split over the wrk threads: PREFIX.0, PREFIX.1, ...; returns PREFIX."""
        prefix = self.folder / f"deliveries-{tag}"
        generated = self._generate(
            *("--secret", STRIPE_SECRET, "--count", str(seconds * self.max_rate), "--threads", str(self.threads)),
            *("--tag", f"{tag}{random.randrange(32768)}", "--bytes", str(self.body_bytes), "--out", os.fspath(prefix)),
        )
        sys.stderr.write(generated.output)
        return prefix

    def wrk(self, seconds: int, deliveries: Path) -> Finished:
        assert self.service is not None
        command: list[Argument] = ["wrk", "-t", str(self.threads), "-c", str(self.connections), "-d", f"{seconds}s"]
        command += ["--timeout", "10s", "--latency", "-s", self.scripts / "webhooks.lua", self.service.url, "--"]
        command.append(f"deliveries={deliveries}")
        return run_timed(command, merge_stderr=True)

    def record(self, output: str) -> None:
        found = re.search(
            r"^payments_webhooks_accepted=(\d+) duplicates=(\d+) non_2xx=(\d+) exhausted=(\d+) socket_errors=(\d+)", output, re.MULTILINE
        )
        if found:
            self.runs.append(dict(zip(COUNTS, map(int, found.groups()), strict=True)))

    def total(self, count: str) -> int:
        return sum(run.get(count, 0) for run in self.runs)

    def verify(self, bench: Bench) -> None:
        """The service's own count of accepted deliveries (its /metrics) must equal the rows stored
        exactly; the clients' count of fresh 2xx may be lower by at most the requests in flight when a
        wrk run ended (wrk closes its connections without reading those answers): one per connection
        per run."""
        assert self.service is not None
        seen, duplicates, non_2xx = self.total("accepted"), self.total("duplicates"), self.total("non_2xx")
        exhausted, socket_errors = self.total("exhausted"), self.total("socket_errors")
        in_flight = len(self.runs) * self.connections
        say("checking the webhook runs (Postgres rows, outbox, relay, Redis stream)")
        drained = self.wait_for_relay(bench, 120)
        text = metrics.fetch(self.service.url)

        def served(outcome: str) -> int:
            return int(metrics.sample(text, f'webhook_deliveries_total{{source="stripe",outcome="{outcome}"}}'))

        accepted, served_duplicates, bad = served("accepted"), served("duplicate"), served("bad_signature")
        rows = int(bench.psql("payments", "SELECT count(*) FROM payments.provider_events WHERE status = 'accepted'"))
        outbox = int(bench.psql("payments", "SELECT count(*) FROM messaging.outbox WHERE producer = 'payments-webhook'"))
        published = int(
            bench.psql("payments", "SELECT count(*) FROM messaging.outbox WHERE producer = 'payments-webhook' AND published_at IS NOT NULL")
        )
        # Entries ever added, not XLEN: the relay trims what every consumer group acknowledged, so the
        # length can be anything lower.
        info = bench.redis_cli("XINFO", "STREAM", "stream:payments", database=REDIS_DATABASE).replace("\r", "").splitlines()
        added = info[info.index("entries-added") + 1] if "entries-added" in info[:-1] else "?"
        average_body = "SELECT coalesce(round(avg(octet_length(raw_body))), 0) FROM payments.provider_events"
        body_ours, body_reference = bench.psql("payments", average_body), bench.psql("payments_ref", average_body)
        reference_rows = bench.psql("payments_ref", "SELECT count(*) || ' ' || (SELECT count(*) FROM messaging.outbox) FROM payments.provider_events")
        print(
            f"webhooks: clients saw {seen} fresh 2xx, {duplicates} duplicate 2xx, {non_2xx} non-2xx, {socket_errors} socket errors,"
            f" {exhausted} sent after running out of deliveries; service counted {accepted} accepted, {served_duplicates} duplicates,"
            f" {bad} bad signatures; rows stored: {rows} (raw body {body_ours} bytes on average); outbox rows: {outbox};"
            f" published: {published} (relay caught up after {drained}s); entries added to stream:payments: {added}"
        )
        transactions = self.reference_transactions
        print(
            f"reference: pgbench committed {transactions} transactions; rows: provider_events, outbox ="
            f" {reference_rows.replace(' ', ', ', 1)} (raw body {body_reference} bytes on average)"
        )
        self.published = str(published)
        if not text:
            verdict = "UNREADABLE: the service did not answer GET /metrics, so its counts cannot be compared"
        elif non_2xx > 0 or socket_errors > 0:
            verdict = f"FAILED REQUESTS: {non_2xx} non-2xx answers, {socket_errors} socket errors"
        elif duplicates > 0 or served_duplicates > 0:
            verdict = f"DUPLICATES: {duplicates} duplicate answers seen, {served_duplicates} counted by the service (the rate is inflated)"
        elif exhausted > 0:
            verdict = f"RAN OUT of deliveries ({exhausted} requests after the last one): raise PAYMENTS_MAX_RATE"
        elif rows != accepted:
            verdict = f"MISMATCH: {rows} rows stored but the service accepted {accepted}"
        elif accepted < seen or accepted - seen > in_flight:
            verdict = f"MISMATCH: the service accepted {accepted} but the clients saw {seen} 2xx (at most {in_flight} in flight)"
        elif outbox != rows:
            verdict = f"MISMATCH: {outbox} outbox rows for {rows} accepted rows"
        elif published != outbox:
            verdict = f"RELAY BEHIND: {published} of {outbox} outbox rows published ({drained})"
        elif added != str(published):
            verdict = f"MISMATCH: {added} entries added to stream:payments for {published} published rows"
        elif reference_rows != f"{transactions} {transactions}":
            verdict = f"REFERENCE MISMATCH: pgbench committed {transactions} transactions but stored {reference_rows} rows"
        else:
            verdict = "ok"
        self.webhooks.check = verdict
        print(f"webhooks check: {verdict} (rows {rows} == accepted {accepted}; clients' 2xx {seen}, at most {in_flight} in flight)")

    def report(self, bench: Bench) -> bool:
        print(f"payments checks (same run, nproc={os.cpu_count()}): webhooks: {self.webhooks.check}; published to Redis: {self.published}")
        self.show_measurements("webhooks.cpu", "webhooks.pools", "webhooks.relay", "reference-webhooks.cpu")
        return self.webhooks.check == "ok"


class WebhooksPair(GroupPair[PaymentsService]):
    name = "webhooks"
    repeats = 3
    metric = "payments_webhooks_per_second"
    goal = ">=4000/s,p99<25,ratio>=0.40"
    ratio_goal = 0.6
    reference = "pgbench, the webhook transaction: provider_events + outbox inserts (ours: signed 1 KiB Stripe webhooks over HTTP)"

    def describe(self, bench: Bench) -> str:
        return f"payments-webhook over HTTP, wrk, {bench.seconds}s"

    def ours(self, bench: Bench) -> Rate:
        group = self.owner
        assert group.service is not None
        group.settle(bench)
        warm_deliveries = group.deliveries(group.warmup, "w")
        warm = check(group.wrk(group.warmup, warm_deliveries), "wrk (webhooks warm-up)")
        group.record(warm.output)
        _remove(warm_deliveries)
        accepted_line = re.search(r"^payments_webhooks_accepted=.*$", warm.output, re.MULTILINE)
        print(f"(warm-up {group.warmup}s: {accepted_line.group(0) if accepted_line else 'no counts'})")
        group.wait_for_relay(bench, 60)
        group.settle(bench)
        deliveries = group.deliveries(bench.seconds, "r")
        before = metrics.fetch(group.service.url)
        measurement = measure.Measurement(bench, group.service.pid, wal=True)
        finished = group.wrk(bench.seconds, deliveries)
        if not finished.ok:
            echo(finished.output)
            raise BenchError("wrk (webhooks) failed")
        left = group.unpublished(bench)
        accepted = re.search(r"^payments_webhooks_accepted=(\d+)", finished.output, re.MULTILINE)
        cores = measurement.end("payments_webhooks", finished.tool_seconds, int(accepted.group(1)) if accepted else 0)
        after = metrics.fetch(group.service.url)
        _remove(deliveries)
        pools = f"payments_webhooks_pools {metrics.pool_waits(before, after, 'postgres')}"
        echo("\n".join([finished.output.rstrip("\n"), cores, pools]))
        group.measurements["webhooks.cpu"] = cores
        group.measurements["webhooks.pools"] = pools
        group.record(finished.output)
        # The relay publishes while the service answers; what it had not published when wrk stopped, and
        # how long it took to catch up (before the reference runs, which it would otherwise compete with).
        relay = f"payments_webhooks_relay unpublished_at_end={left} caught_up_after={group.wait_for_relay(bench, 120)}s"
        print(relay)
        group.measurements["webhooks.relay"] = relay
        return parse_ours(finished.output, self.metric)

    def theirs(self, bench: Bench) -> Rate:
        group = self.owner
        bench.pause(group.service.pid if group.service else None)
        group.settle(bench)
        reference = pgbench.measured_reference(
            bench,
            "webhook",
            self._pgbench_arguments(bench),
            group.warmup,
            group.folder / "pgbench",
            lambda: group.settle(bench),
            group.service.pid if group.service else None,
            warmup_arguments=group.next_run(),
            run_arguments=group.next_run(),
        )
        group.reference_transactions += reference.warmup_transactions + reference.transactions
        group.measurements["reference-webhooks.cpu"] = reference.cores
        return reference.rate

    def _pgbench_arguments(self, bench: Bench) -> list[Argument]:
        """pgbench running the storing transaction (webhook.sql) on payments_ref; each run needs its own
        `-D run=<digits>` (the ids are made from it)."""
        group = self.owner
        template = (group.folder / "body-template.json").read_text(encoding="utf-8").rstrip("\n")
        arguments: list[Argument] = ["-n", "-M", "prepared", "-f", group.scripts / "webhook.sql", "-D", "n=0", "-D", f"body={template}"]
        return arguments + ["-c", str(group.pgbench_clients), "-j", "2", *pgbench_target(bench, "payments_ref")]

    def has_open_loop(self) -> bool:
        return True

    def open_loop(self, bench: Bench, capacity: float) -> None:
        """The same service at a fixed arrival rate (`platform-bench open-loop --scenario webhooks`:
        distinct signed 1 KiB deliveries, latency from each one's due time); what it was answered goes
        into the counts the checks compare."""
        group = self.owner
        assert group.service is not None
        group.wait_for_relay(bench, 120)
        arguments = ["--scenario", "webhooks", "--webhook-url", group.service.url, "--stripe-secret", STRIPE_SECRET]
        arguments += ["--body-bytes", str(group.body_bytes)]
        for output_path in openloop.run_open_loop(bench, "webhooks", capacity, lambda: group.settle(bench), arguments, service_pid=group.service.pid):
            output = output_path.read_text(encoding="utf-8")
            group.runs.append({"accepted": openloop.served(output, "webhooks"), "non_2xx": openloop.failures(output)})
        group.reference_transactions += pgbench.open_loop_reference(
            bench,
            "webhooks",
            self._pgbench_arguments(bench),
            capacity,
            group.folder / "pgbench-open",
            group.service.pid,
            lambda: group.settle(bench),
            run_arguments=lambda _: group.next_run(),
        )


def _remove(prefix: Path) -> None:
    for part in prefix.parent.glob(prefix.name + ".*"):
        part.unlink()
