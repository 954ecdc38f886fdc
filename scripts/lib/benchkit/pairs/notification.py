"""The notification service's pair: outbox -> relay -> fan-out -> dispatcher -> endpoints, against wrk.

    notification  ours: `notification serve` delivering to NOTIFICATION_ENDPOINTS (10) endpoints on a
                  local receiver (`platform-bench receiver`: 204 at once, latency recorded per
                  delivery). `platform-bench notification` (Services/Bench/NotificationBench.swift)
                  creates the endpoints through the admin API and appends booking.confirmed envelopes
                  (~600 bytes) to the service's messaging.outbox, as a producer does; the relay
                  publishes them to stream:booking, the fan-out makes one delivery per endpoint, the
                  dispatcher POSTs them (signed). Latency = received at the receiver - occurred_at (=
                  the append). Three runs, each on endpoints of its own (the previous run's are paused):
                    steady   NOTIFICATION_RATE events/s (300 x 10 endpoints = 3,000 deliveries/s
                             offered) for BENCH_SECONDS: the table's p50/p99 are this run's;
                    ceiling  closed loop, NOTIFICATION_WINDOW (200) deliveries outstanding: the most the
                             service delivers with a bounded backlog; the table's OURS/s is this rate
                             (the goal's ">= 3,000/s" and "ratio" are about what the service can do, its
                             "p99 < 100" about the latency at 3,000/s offered). Made once per round
                             (below): one ceiling run moved by up to 25% between runs (3,333-4,183/s
                             at the same cores);
                    slow     as steady, plus an 11th endpoint at /slow that answers after 10 s: the
                             healthy endpoints' p99 is shown beside the steady run's and must stay under
                             NOTIFICATION_P99_GOAL (100 ms) for the goal to be met.
                  theirs: wrk, NOTIFICATION_CONNECTIONS (endpoints x NOTIFICATION_ENDPOINT_CONCURRENCY
                  = 40, the connections the service's dispatcher can have open to the receiver) on 2
                  threads, POSTing a delivery body the service sent, with a delivery's headers, to the
                  same receiver (scripts/bench-notification/deliveries.lua): the receiver's (and
                  loopback HTTP's) ceiling, failed requests counted over all its runs.
                  Rounds, like the other pairs of three: the first round's ours is the three runs, each
                  later round's the ceiling run alone, each round's theirs one wrk run after a warm-up
                  (three rounds, five when one side's three are more than 10% apart;
                  BENCH_REPEATS_NOTIFICATION fixes the count).

The setup creates and migrates the database `notification`, starts the receiver and `notification
serve` (Redis database 3, NOTIFICATION_ALLOW_PRIVATE_NETWORKS=true for the loopback receiver). The
checks: every healthy delivery of every run (and of its warm-up) arrived, none twice (the receiver's
webhook-id per path), no delivery failed or needed a second attempt, none is left pending to a healthy
endpoint, succeeded healthy deliveries == outbox rows x endpoints, everything published, no redelivery
after a lease ran out (/metrics).

Each run is preceded by VACUUM ANALYZE + CHECKPOINT, then NOTIFICATION_WARMUP seconds of closed loop to
endpoints of its own (paused afterwards; not measured, checked like the rest). The service is paused
during wrk's run. Each run prints where the cores went (load_generator = platform-bench + the receiver),
WAL bytes and fsyncs per delivery, and the service's pool waits.

Tunables (environment): NOTIFICATION_BIN, NOTIFICATION_ENDPOINTS (10), NOTIFICATION_RATE (300 events/s),
NOTIFICATION_WINDOW (200), NOTIFICATION_ENDPOINT_CONCURRENCY (4), NOTIFICATION_CONNECTIONS (endpoints x
concurrency), NOTIFICATION_THREADS (2, wrk -t), NOTIFICATION_DB_POOL (DATABASE_POOL_SIZE, 8),
NOTIFICATION_CONSUMER_POOL (DATABASE_CONSUMER_POOL_SIZE, 8), NOTIFICATION_WARMUP (2 s),
NOTIFICATION_DRAIN (300 s: the longest a run waits for its last deliveries), NOTIFICATION_P99_GOAL
(100 ms), NOTIFICATION_RUNS ("steady ceiling slow": which of ours' runs to make in the first round; the
table needs steady and ceiling).
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
from pathlib import Path

from .. import measure, metrics
from ..bench import Argument, Bench, BenchError, check, free_port, run, run_timed, say, setting
from ..service import Service
from . import GroupPair, Pair, Rate, ServiceGroup, echo

ADMIN_TOKEN = "bench-notification-admin-token"
SECRETS_KEY = "YmVuY2gtbm90aWZpY2F0aW9uLXNlY3JldHMta2V5ISE="  # base64("bench-notification-secrets-key!!"): 32 bytes
REDIS_DATABASE = 3
RUNS = {"steady": [], "ceiling": ["--ceiling"], "slow": ["--slow-endpoint"]}
FALLBACK_BODY = (
    '{"aggregate_id":"x","data":{},"id":"00000000-0000-4000-8000-000000000000","occurred_at":"2026-01-01T00:00:00.000Z","type":"booking.confirmed"}'
)


def _field(text: str, name: str) -> str | None:
    found = re.search(rf"(?:^| ){re.escape(name)}=(\S+)", text)
    return found.group(1) if found else None


class NotificationService(ServiceGroup):
    executables = ("notification",)
    packages = ("wrk",)
    needs_platform_bench = True

    def __init__(self) -> None:
        super().__init__()
        self.endpoints = setting("NOTIFICATION_ENDPOINTS", 10)
        self.rate = setting("NOTIFICATION_RATE", 300)
        self.window = setting("NOTIFICATION_WINDOW", 200)
        self.endpoint_concurrency = setting("NOTIFICATION_ENDPOINT_CONCURRENCY", 4)
        self.connections = setting("NOTIFICATION_CONNECTIONS", self.endpoints * self.endpoint_concurrency)
        self.threads = setting("NOTIFICATION_THREADS", 2)
        self.db_pool = setting("NOTIFICATION_DB_POOL", 8)
        self.consumer_pool = setting("NOTIFICATION_CONSUMER_POOL", 8)
        self.warmup = setting("NOTIFICATION_WARMUP", 2)
        self.drain = setting("NOTIFICATION_DRAIN", 300)
        self.p99_goal = float(os.environ.get("NOTIFICATION_P99_GOAL", "100"))
        self.runs = os.environ.get("NOTIFICATION_RUNS", "steady ceiling slow").split()
        for name in self.runs:
            if name not in RUNS:
                raise BenchError(f"NOTIFICATION_RUNS: unknown run '{name}' (steady, ceiling, slow)")
        if "ceiling" not in self.runs:
            raise BenchError("NOTIFICATION_RUNS: the table's rate is the ceiling run's, so it needs 'ceiling'")
        self.rounds_done = 0
        self.scripts = Path(__file__).resolve().parents[3] / "bench-notification"
        self.notification = NotificationPair(self)
        self.pairs: list[Pair] = [self.notification]
        self.receiver: Service | None = None
        self.outputs: dict[str, str] = {}
        self.counts: list[tuple[str, str]] = []
        """(run, its counts: expected=... received=... duplicates=... all_arrived=...) of every run and warm-up."""
        self.wrk_counts: tuple[str, str] | None = None
        self.slow = "no slow-endpoint run"

    def setup(self, bench: Bench) -> None:
        assert bench.platform_bench is not None
        self.folder = bench.dir / "notification"
        receiver = self.receiver = self.add_service(
            Service(bench, "receiver", self.folder, "receiver.log", bench.platform_bench, "receiver", "/stats/count")
        )
        port = free_port()
        say(f"platform-bench receiver on http://127.0.0.1:{port} (204 at once; /slow after 10 s)")
        receiver.start(port, {})
        self.start_service(
            bench,
            "notification",
            "notification",
            ("notification",),
            {
                "DATABASE_URL": bench.database_url_of("notification"),
                "REDIS_URL": f"{bench.redis_url}/{REDIS_DATABASE}",
                "ADMIN_TOKEN": ADMIN_TOKEN,
                "NOTIFICATION_SECRETS_KEY": SECRETS_KEY,
                "NOTIFICATION_ALLOW_PRIVATE_NETWORKS": "true",
                "NOTIFICATION_ENDPOINT_CONCURRENCY": str(self.endpoint_concurrency),
                "LOG_LEVEL": "warning",
                "DATABASE_POOL_SIZE": str(self.db_pool),
                "DATABASE_CONSUMER_POOL_SIZE": str(self.consumer_pool),
            },
            f"NOTIFICATION_ENDPOINT_CONCURRENCY={self.endpoint_concurrency} DATABASE_POOL_SIZE={self.db_pool}"
            f" DATABASE_CONSUMER_POOL_SIZE={self.consumer_pool}, LOG_LEVEL=warning",
        )

    def settle(self, bench: Bench) -> None:
        """Before a measurement: every database vacuumed, then a checkpoint (`Bench.quiet`)."""
        bench.quiet()

    def run(self, bench: Bench, name: str) -> None:
        """One `platform-bench notification` run labelled notification_NAME: its output, where the cores
        went, the WAL per delivery and the pools' waits, printed and kept."""
        assert self.service is not None and self.receiver is not None and bench.platform_bench is not None
        self.settle(bench)
        before = metrics.fetch(self.service.url)
        receiver_before = measure.ticks_of(self.receiver.pid)
        # Halfway through the run's warm-up, fresh statistics (Bench.analyze).
        failures: list[BenchError] = []

        def analyze() -> None:
            try:
                bench.analyze("notification")
            except BenchError as error:
                failures.append(error)

        analyzer = threading.Timer(self.warmup / 2, analyze)
        analyzer.start()
        measurement = measure.Measurement(bench, self.service.pid, wal=True)
        command: list[Argument] = [bench.platform_bench, "notification", "--service-url", self.service.url, "--admin-token", ADMIN_TOKEN]
        command += ["--database-url", bench.database_url_of("notification"), "--receiver-url", self.receiver.url]
        command += ["--endpoints", str(self.endpoints), "--rate", str(self.rate), "--seconds", str(bench.seconds)]
        command += ["--warmup", str(self.warmup), "--drain-timeout", str(self.drain), "--label", f"notification_{name}"]
        command += ["--tag", f"{name}{random.randrange(32768)}", *RUNS[name]]
        if name == "ceiling":
            command += ["--window", str(self.window)]
        finished = run_timed(command)
        analyzer.join()
        if failures:
            raise BenchError(f"ANALYZE during the {name} run's warm-up failed: {failures[0]}")
        if not finished.ok:
            echo(finished.output)
            raise BenchError(f"platform-bench notification ({name}) failed")
        receiver_seconds = (measure.ticks_of(self.receiver.pid) - receiver_before) / measure.CLOCK_TICKS
        counts = re.search(rf"^notification_{name}_counts (.*)$", finished.output, re.MULTILINE)
        received = _field(counts.group(1), "received") if counts else None
        cores = measurement.end(f"notification_{name}", finished.tool_seconds + receiver_seconds, int(received or 0))
        cores += f"\nnotification_{name}_receiver_cpu_seconds={receiver_seconds:.2f} (included in load_generator)"
        after = metrics.fetch(self.service.url)
        pools = f"notification_{name}_pools {metrics.pool_waits(before, after, 'postgres', 'postgres-consumers', 'postgres-relay')}"
        self.outputs[name] = finished.output
        self.measurements[f"{name}.cpu"] = cores
        self.measurements[f"{name}.pools"] = pools
        self.counts.append((name, counts.group(1) if counts else ""))
        warm = re.search(rf"^notification_{name}_warmup deliveries=(\d+) received=(\d+) all_arrived=([a-z]+)", finished.output, re.MULTILINE)
        if warm:
            expected, got, arrived = warm.groups()
            self.counts.append((f"{name}-warmup", f"expected={expected} received={got} duplicates=n/a all_arrived={arrived}"))
        echo("\n".join([finished.output.rstrip("\n"), cores, pools]))

    def wait_for_in_flight(self, bench: Bench, limit: float = 30) -> str:
        """Waits (LIMIT seconds at most) until no delivery is leased (an attempt in flight); how long it took."""
        start = time.monotonic()
        while True:
            leased = int(bench.psql("notification", "SELECT count(*) FROM notification.deliveries WHERE status = 'pending' AND lease_until > now()"))
            if leased == 0:
                return f"{time.monotonic() - start:.1f} s"
            if time.monotonic() - start > limit:
                return f"{limit:g} s, {leased} still in flight"
            time.sleep(0.2)

    def latency(self, name: str) -> tuple[float | None, float | None]:
        found = re.search(rf"^notification_{name}_deliveries_p50=([0-9.]+) ms p99=([0-9.]+) ms", self.outputs.get(name, ""), re.MULTILINE)
        return (float(found.group(1)), float(found.group(2))) if found else (None, None)

    def verify(self, bench: Bench) -> None:
        assert self.service is not None
        say("checking the notification runs (the receiver's counts, SQL on database notification, /metrics)")
        failed: list[str] = []
        for name, counts in self.counts:
            expected, received = _field(counts, "expected"), _field(counts, "received")
            duplicates, arrived = _field(counts, "duplicates"), _field(counts, "all_arrived")
            print(
                f"  {name:<14} healthy deliveries expected {expected or '?'}, received {received or '?'},"
                f" duplicates {duplicates or '?'} (healthy and slow), all arrived: {arrived or '?'}"
            )
            if arrived != "yes" or expected is None or expected != received:
                failed.append(f"{name}: {received} of {expected} healthy deliveries arrived")
            if duplicates not in ("0", "n/a"):
                failed.append(f"{name}: {duplicates or '?'} duplicates")
        if self.wrk_counts is not None:
            non_2xx, socket_errors = self.wrk_counts
            print(f"  {'wrk':<14} non-2xx {non_2xx}, socket errors {socket_errors}")
            if (non_2xx, socket_errors) != ("0", "0"):
                failed.append(f"wrk: {non_2xx} non-2xx, {socket_errors} socket errors")
        else:
            print(f"  {'wrk':<14} non-2xx n/a, socket errors n/a")
        healthy = "e.url NOT LIKE '%/slow%'"
        endpoints = int(self.endpoints)
        rows = bench.psql(
            "notification",
            f"""SELECT 'check', 'deliveries failed', count(*) FROM notification.deliveries WHERE status = 'failed';
SELECT 'check', 'deliveries to healthy endpoints still pending', count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND {healthy};
SELECT 'check', 'deliveries that took more than one attempt (healthy endpoints)', count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id
  WHERE d.attempt_count <> 1 AND d.status = 'succeeded' AND {healthy};
SELECT 'check', 'attempts without a 2xx answer', count(*) FROM notification.attempts
  WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299;
SELECT 'check', 'outbox rows not published', count(*) FROM messaging.outbox WHERE published_at IS NULL;
SELECT 'check', 'outbox rows x {endpoints} - succeeded deliveries to healthy endpoints',
  (SELECT count(*) FROM messaging.outbox) * {endpoints} - (SELECT count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id WHERE d.status = 'succeeded' AND {healthy});
SELECT 'check', 'endpoints not paused by their run', count(*) FROM notification.endpoints WHERE status <> 'paused';
SELECT 'info', 'events received (notification.events)', count(*) FROM notification.events;
SELECT 'info', 'attempts without a 2xx answer by endpoint path and error',
  coalesce(string_agg(x.path || ' ' || x.answer || ' x' || x.n, '; '), 'none') FROM (
    SELECT regexp_replace(e.url, '^https?://[^/]+', '') AS path,
           left(translate(coalesce(a.status_code::text, a.error, '?'), E'|\n', '  '), 80) AS answer, count(*) AS n
    FROM notification.attempts a JOIN notification.deliveries d ON d.id = a.delivery_id JOIN notification.endpoints e ON e.id = d.endpoint_id
    WHERE a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299 GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5) AS x;
SELECT 'info', 'deliveries succeeded / pending (the slow endpoints'' backlog, paused)',
  count(*) FILTER (WHERE status = 'succeeded') || ' / ' || count(*) FILTER (WHERE status = 'pending') FROM notification.deliveries;
SELECT 'info', 'table: sequential scans/rows they read/index scans/dead rows/autovacuums (all runs)',
  coalesce(string_agg(relname || ' ' || seq_scan || '/' || seq_tup_read || '/' || coalesce(idx_scan, 0) || '/' || n_dead_tup
    || '/' || autovacuum_count, '; ' ORDER BY seq_tup_read DESC), 'none')
  FROM pg_stat_user_tables WHERE schemaname IN ('notification', 'messaging');
SELECT 'info', 'the cluster''s client backends: all / idle in transaction / oldest snapshot (s)',
  count(*) || ' / ' || count(*) FILTER (WHERE state LIKE 'idle in transaction%') || ' / '
    || coalesce(max(extract(epoch FROM now() - xact_start)::int) FILTER (WHERE backend_xmin IS NOT NULL), 0)
  FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid();""",
            separator="|",
        )
        for row in rows.splitlines():
            kind, what, count = row.split("|")
            print(f"  {kind:<5} {what:<80} {count}")
            if kind == "check" and count != "0":
                failed.append(f"{what}: {count}")
        text = metrics.fetch(self.service.url)
        redelivered = int(metrics.sample(text, "notification_redeliveries_after_lease_total"))
        retried = int(metrics.sample(text, 'notification_deliveries_total{outcome="retrying"}'))
        print(f"  {'check':<5} {'redeliveries after a lease ran out (/metrics)':<80} {redelivered}")
        print(f"  {'check':<5} {'attempts to be retried (/metrics)':<80} {retried}")
        if redelivered:
            failed.append(f"redeliveries after a lease: {redelivered}")
        if retried:
            failed.append(f"retried attempts: {retried}")
        self.notification.check = f"FAILED: {';'.join(failed)}" if failed else "ok"
        print(f"notification check: {self.notification.check}")
        # The slow endpoint's run against the steady one.
        _, steady_p99 = self.latency("steady")
        _, slow_p99 = self.latency("slow")
        if slow_p99 is not None:
            met = "yes" if slow_p99 < self.p99_goal else "NO"
            shown = "n/a" if steady_p99 is None else f"{steady_p99:g}"
            self.slow = (
                f"healthy endpoints' p99 {shown} ms without the slow endpoint, {slow_p99:g} ms with it (goal: under {self.p99_goal:g} ms): {met}"
            )
            self.notification.goal_also_needs = None if met == "yes" else "the healthy endpoints' p99 beside a slow endpoint"
        print(f"notification slow endpoint: {self.slow}")

    def report(self, bench: Bench) -> bool:
        print(f"notification checks (same run, nproc={os.cpu_count()}): {self.notification.check}")
        print(f"notification slow endpoint: {self.slow}")
        self.show_measurements("steady.cpu", "steady.pools", "ceiling.cpu", "ceiling.pools", "slow.cpu", "slow.pools", "reference.cpu")
        bench.add_summary(notification_slow_endpoint=self.slow)
        return self.notification.check == "ok"


class NotificationPair(GroupPair[NotificationService]):
    name = "notification"
    metric = "notification_deliveries_per_second"
    goal = ">=3000/s,p99<100,ratio>=0.30"
    repeats = 3
    reference = (
        "wrk POSTing a delivery's body and headers to the same receiver, 40 connections (ours: outbox -> relay -> fan-out -> dispatcher"
        " -> 10 endpoints; rate: closed-loop ceiling, p50/p99: at 3,000/s offered)"
    )

    def describe(self, bench: Bench) -> str:
        group = self.owner
        return (
            f"{bench.platform_bench} notification against notification serve and the receiver: runs {' '.join(group.runs)},"
            f" {bench.seconds}s each after {group.warmup}s of warm-up"
        )

    def ours(self, bench: Bench) -> Rate:
        """The first round: the runs NOTIFICATION_RUNS names; each later round: the ceiling run alone."""
        group = self.owner
        first = group.rounds_done == 0
        group.rounds_done += 1
        for name in group.runs:
            if first or name == "ceiling":
                group.run(bench, name)
        # The table's line: the ceiling's rate, the steady run's latency.
        rate = re.search(r"^notification_ceiling_deliveries_per_second=([0-9.]+)", group.outputs.get("ceiling", ""), re.MULTILINE)
        p50, p99 = group.latency("steady")
        print(
            f"notification_deliveries_p50={'n/a' if p50 is None else f'{p50:g}'} ms p99={'n/a' if p99 is None else f'{p99:g}'} ms"
            f" (rate: the closed-loop ceiling; p50/p99: the steady run at {group.rate * group.endpoints}/s offered, appended -> received)"
        )
        if rate is None:
            raise BenchError("the ceiling run printed no notification_ceiling_deliveries_per_second")
        print(f"notification_deliveries_per_second={rate.group(1)}")
        return Rate(float(rate.group(1)), p50, p99)

    def theirs(self, bench: Bench) -> Rate:
        group = self.owner
        assert group.receiver is not None
        # The slow run leaves attempts to its /slow endpoint in flight (answered after 10 s). Paused
        # mid-attempt for longer than the attempt's timeout is left, the service would find the answer
        # and the expired timeout together when it resumes, and record a timeout that the endpoint did
        # not cause: let them finish first.
        print(f"(in-flight attempts finished after {group.wait_for_in_flight(bench)})", file=sys.stderr)
        bench.pause(group.pid)
        # A body the service sent (any of the bench's events: they are all alike).
        body = bench.psql("notification", "SELECT convert_from(body, 'UTF8') FROM notification.events LIMIT 1").replace("\n", "")
        body_file = group.folder / "body.json"
        body_file.write_text(body or FALLBACK_BODY, encoding="utf-8")
        size = body_file.stat().st_size
        print(f"(wrk: {group.connections} connections, {group.threads} threads, body {size} bytes)", file=sys.stderr)
        command: list[Argument] = ["wrk", "-t", str(group.threads), "-c", str(group.connections), "--timeout", "10s", "--latency"]
        command += ["-s", group.scripts / "deliveries.lua", group.receiver.url]
        check(run([*command, "-d", f"{group.warmup}s", "--", f"body={body_file}"], merge_stderr=True), "wrk (notification warm-up)")
        measurement = measure.Measurement(bench, group.receiver.pid)
        finished = check(run_timed([*command, "-d", f"{bench.seconds}s", "--", f"body={body_file}"], merge_stderr=True), "wrk (notification)")
        # The receiver is what wrk measures: its cores are the "service" of this line.
        cores = measurement.end("reference_notification", finished.tool_seconds).replace(
            "reference_notification_cpu_cores service=", "reference_notification_cpu_cores receiver=", 1
        )
        sys.stderr.write(finished.output + cores + "\n")
        group.measurements["reference.cpu"] = cores
        counts = re.search(r"_counts non_2xx=(\d+) socket_errors=(\d+)", finished.output)
        rate = re.search(r"^notification_wrk_per_second=([0-9.]+)", finished.output, re.MULTILINE)
        latency = re.search(r"^notification_wrk_p50=([0-9.]+) ms p99=([0-9.]+) ms", finished.output, re.MULTILINE)
        if rate is None:
            raise BenchError("wrk printed no notification_wrk_per_second")
        if counts is None:
            raise BenchError("wrk printed no notification_wrk_counts")
        # The checks count the failed requests of every round's run.
        non_2xx, socket_errors = (int(count) for count in group.wrk_counts or ("0", "0"))
        group.wrk_counts = (str(non_2xx + int(counts.group(1))), str(socket_errors + int(counts.group(2))))
        quantiles = (float(latency.group(1)), float(latency.group(2))) if latency else (None, None)
        return Rate(float(rate.group(1)), *quantiles)
