"""The booking saga's pair: hold, book, signed webhook, confirmed by the coordinator, against pgbench.

    saga   ours: `platform-bench saga` (Services/Bench/SagaBench.swift), SAGA_CONCURRENCY workers each
           looping: POST /v1/holds (1 or 2 seats; each worker's seats are its own) -> POST /v1/bookings
           with an Idempotency-Key -> POST /v1/webhooks/stripe on payments-webhook, a correctly signed
           payment_intent.succeeded of the booking's amount and currency. The driver does not wait for
           the confirmation: payments-webhook's outbox -> the relay -> stream:payments -> the saga
           coordinator in `booking serve` confirms asynchronously. After the run the harness waits
           (SAGA_CONFIRM_WAIT s at most) until every accepted webhook's booking is confirmed and the
           outbox is published, then measures in SQL (scripts/bench-saga/measure.sql): completed
           sagas/s = bookings whose confirmed_at lies in the measured window / its seconds; p50/p99 =
           provider_events.received_at -> bookings.confirmed_at over every saga whose webhook arrived in
           the window.
           theirs: pgbench (scripts/bench-saga/saga.sql): the same three transactions (booking, webhook,
           confirmation) statement for statement, back to back, SAGA_PGBENCH_CLIENTS clients, without
           the services (no hold, HTTP, relay or stream); its number is pgbench's sagas/s, its p50/p99
           the same SQL measurement over its rows.

The setup creates and migrates two databases (`saga`: both services share it, as under scripts/run, so
one of their two outbox relays leads and publishes every row; `saga_ref` for pgbench) and starts `booking
serve` and `payments-webhook serve` against it and Redis database 2 (apart from the other pairs'
services: a second booking-saga group on the same stream would take our payment events).
payments-webhook runs with PROVIDER_WORKER=false: the bench posts the provider's webhooks itself.
PAYMENT_WINDOW is 2 h, HOLD_TTL 30 min: nothing expires during a run. The checks run the product's
invariant checker (`booking check --strict`), plus the consumer group's lag and the coordinator's
handler failures.

The other pairs' services are paused (SIGSTOP) during the saga measurements, and ours during the
reference's. Each measurement prints where the cores went, by process and by thread group of each
service, the CPU of Postgres backends by application, and WAL fsyncs.

Tunables (environment): SAGA_BENCH_SECONDS (default BENCH_SECONDS if set, else 60: the goal is sustained
for 60 s), SAGA_WARMUP (3 s, not measured), SAGA_CONCURRENCY (64), SAGA_BOOKING_DB_POOL (16),
SAGA_BOOKING_REDIS_POOL (32), SAGA_PAYMENTS_DB_POOL (8), SAGA_PAYMENTS_REDIS_POOL (8), SAGA_PGBENCH_CLIENTS
(8), SAGA_MAX_RATE (2000: sagas/s the driver's seat supply is sized for), SAGA_CONFIRM_WAIT (60 s),
SAGA_OPEN_SECONDS (20: each open-loop run), and BOOKING_BIN / PAYMENTS_BIN.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from .. import measure, metrics, openloop, pgbench
from ..bench import Argument, Bench, BenchError, check, free_port, run, run_timed, say, setting
from ..service import Service
from . import GroupPair, Pair, Rate, ServiceGroup, pgbench_target
from .booking import booking_environment, seed_reference_events
from .payments import payments_environment

SEATS = 10_000
API_KEY = "bench-saga-client-key"
ADMIN_TOKEN = "bench-saga-admin-token"
STRIPE_SECRET = "whsec_bench_saga_stripe_signing_secret"
EVENTS_SECRET = "whsec_YmVuY2gtc2FnYS1wYXltZW50LWV2ZW50cw=="  # base64("bench-saga-payment-events")
REDIS_DATABASE = 2


def _ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])


def _stat(path: str) -> tuple[str, list[str]] | None:
    """(the thread's or process's name, its fields from state on) of a /proc stat file; None when gone."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    name, _, rest = text[text.index("(") + 1 :].rpartition(") ")
    return name, rest.split()


@dataclasses.dataclass
class Snapshot:
    """The cores (services, Redis, Postgres, machine), the services' threads, the Postgres backends of
    the measured database, the sagas stored so far and the WAL, read at one moment."""

    cpu: dict[str, int]
    at: float
    threads: dict[tuple[str, str, str], int]
    """(service, thread name with its numbers as N, tid) -> ticks."""
    backends: dict[tuple[str, str], int]
    """(application_name, pid) -> ticks."""
    sagas: int
    wal: measure.WalSample

    @staticmethod
    def take(bench: Bench, services: dict[str, Service], database: str) -> Snapshot:
        sample = measure.CpuSample.take(bench, None)
        cpu = {"redis": sample.redis, "postgres": sample.postgres, "busy": sample.busy, "irq": sample.irq, "steal": sample.steal}
        threads: dict[tuple[str, str, str], int] = {}
        for label, service in services.items():
            cpu[label] = measure.ticks_of(service.pid)
            if service.pid is None:
                continue
            for tid in _listdir(f"/proc/{service.pid}/task"):
                found = _stat(f"/proc/{service.pid}/task/{tid}/stat")
                if found is not None:
                    name = re.sub(r"[0-9]+", "N", found[0]).replace(" ", "_")
                    threads[(label, name, tid)] = _ticks(found[1])
        backends: dict[tuple[str, str], int] = {}
        rows = bench.psql(
            "postgres",
            f"SELECT pid, application_name FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = '{database}'",
            separator="|",
        )
        for row in rows.splitlines():
            pid, _, application = row.partition("|")
            found = _stat(f"/proc/{pid}/stat")
            if found is not None:
                backends[(application or "none", pid)] = _ticks(found[1])
        sagas = int(bench.psql(database, "SELECT count(*) FROM payments.provider_events WHERE status = 'accepted'"))
        return Snapshot(cpu, sample.at, threads, backends, sagas, measure.WalSample.take(bench))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def report(label: str, start: Snapshot, end: Snapshot, tool_seconds: float) -> str:
    """Where the cores went between START and END by process, by thread group of each service and by
    Postgres application, and the WAL per saga (TOOL_SECONDS: the load generator's CPU meanwhile)."""
    seconds = end.at - start.at
    window = max(seconds * measure.CLOCK_TICKS, 1.0)
    used = {key: end.cpu[key] - start.cpu[key] for key in end.cpu}
    tool = tool_seconds * measure.CLOCK_TICKS
    other = max(used["busy"] - used["irq"] - used["steal"] - used["booking"] - used["payments"] - tool - used["redis"] - used["postgres"], 0)
    cores = os.cpu_count() or 1
    lines = [
        f"{label}_cpu_cores booking={used['booking'] / window:.2f} payments={used['payments'] / window:.2f}"
        f" postgres={used['postgres'] / window:.2f} redis={used['redis'] / window:.2f} load_generator={tool / window:.2f}"
        f" irq={used['irq'] / window:.2f} other={other / window:.2f} steal={used['steal'] / window:.2f}"
        f" idle={cores - used['busy'] / window:.2f}"
        f" (of {cores}, over {seconds:.1f} s)"
    ]
    hz_seconds = measure.CLOCK_TICKS * max(seconds, 1e-9)
    groups: dict[tuple[str, str], int] = defaultdict(int)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (service, name, tid), ticks in end.threads.items():
        groups[(service, name)] += ticks - start.threads.get((service, name, tid), 0)
        counts[(service, name)] += 1
    by_service: dict[str, str] = defaultdict(str)
    for (service, name), ticks in groups.items():
        if ticks / hz_seconds >= 0.005:
            by_service[service] += f" {name}({counts[(service, name)]})={ticks / hz_seconds:.2f}"
    lines += sorted(f"{label}_threads_{service}{parts} (cores, by thread name)" for service, parts in by_service.items())
    applications: dict[str, int] = defaultdict(int)
    members: dict[str, int] = defaultdict(int)
    for (application, pid), ticks in end.backends.items():
        if (application, pid) in start.backends:
            applications[application] += ticks - start.backends[(application, pid)]
            members[application] += 1
    parts = "".join(f" {app}({members[app]})={ticks / hz_seconds:.2f}" for app, ticks in applications.items())
    lines.append(f"{label}_postgres_backends{parts} (cores, by application_name)")
    sagas = max(end.sagas - start.sagas, 1)
    syncs = end.wal.syncs - start.wal.syncs
    lines.append(
        f"{label}_wal sagas={end.sagas - start.sagas} bytes_per_saga={(end.wal.lsn - start.wal.lsn) / sagas:.0f} fsyncs={syncs}"
        f" sagas_per_fsync={(sagas / syncs if syncs > 0 else 0):.2f} (all databases; sagas: webhooks stored meanwhile)"
    )
    return "\n".join(lines)


@dataclasses.dataclass
class Measured:
    """measure.sql's result: its lines, and the rate with p50/p99 (None where it had no sagas)."""

    lines: list[str]
    values: dict[str, str]

    def number(self, key: str) -> float | None:
        value = self.values.get(key, "")
        return float(value) if value else None

    @property
    def rate(self) -> Rate:
        return Rate(self.number("completed_per_second") or 0.0, self.number("p50"), self.number("p99"))


def _client_count(outputs: list[str], name: str) -> int | None:
    """The sum of NAME=<n> on the saga drivers' `saga_client_counts` lines; None when a driver printed none."""
    total = 0
    for output in outputs:
        found = re.search(rf"^saga_client_counts .* {name}=(\d+)", output, re.MULTILINE)
        if found is None:
            return None
        total += int(found.group(1))
    return total if outputs else None


class SagaServices(ServiceGroup):
    executables = ("booking", "payments-webhook")
    needs_platform_bench = True

    def __init__(self) -> None:
        super().__init__()
        self.seconds = int(os.environ.get("SAGA_BENCH_SECONDS") or os.environ.get("BENCH_SECONDS") or "60")
        self.warmup = setting("SAGA_WARMUP", 3)
        self.concurrency = setting("SAGA_CONCURRENCY", 64)
        self.booking_db_pool = setting("SAGA_BOOKING_DB_POOL", 16)
        self.booking_redis_pool = setting("SAGA_BOOKING_REDIS_POOL", 32)
        self.payments_db_pool = setting("SAGA_PAYMENTS_DB_POOL", 8)
        self.payments_redis_pool = setting("SAGA_PAYMENTS_REDIS_POOL", 8)
        self.pgbench_clients = setting("SAGA_PGBENCH_CLIENTS", 8)
        self.max_rate = setting("SAGA_MAX_RATE", 2000)
        self.confirm_wait = setting("SAGA_CONFIRM_WAIT", 60)
        self.open_seconds = os.environ.get("SAGA_OPEN_SECONDS", "20")
        self.sql = Path(__file__).resolve().parents[3] / "bench-saga"
        self.saga = SagaPair(self)
        self.pairs: list[Pair] = [self.saga]
        self.payments: Service | None = None
        self.reference_events = 0
        self.driver_outputs: list[str] = []
        """Every saga driver's output of the run (one per measurement of ours)."""
        self.open_outputs: list[str] = []

    def heading(self) -> str:
        return f" (saga: {self.seconds}s)"

    @property
    def services(self) -> dict[str, Service]:
        found = {"booking": self.service, "payments": self.payments}
        return {label: service for label, service in found.items() if service is not None}

    def setup(self, bench: Bench) -> None:
        if self.seconds <= 0:
            raise BenchError(f"SAGA_BENCH_SECONDS must be a positive whole number of seconds, not '{self.seconds}'")
        database, redis = bench.database_url_of("saga"), f"{bench.redis_url}/{REDIS_DATABASE}"
        self.start_service(
            bench,
            "booking",
            "saga",
            ("saga", "saga_ref"),
            booking_environment(database, redis, ADMIN_TOKEN, API_KEY, self.booking_db_pool, self.booking_redis_pool) | {"PAYMENT_WINDOW": "2h"},
            f"saga coordinator, DATABASE_POOL_SIZE={self.booking_db_pool} REDIS_POOL_SIZE={self.booking_redis_pool},"
            " PAYMENT_WINDOW=2h, HOLD_TTL=30m, LOG_LEVEL=warning",
            log="booking.log",
        )
        payments = self.payments = self.add_service(Service(bench, "payments-webhook", self.folder, log="payments.log"))
        port = free_port()
        say(
            f"payments-webhook serve on http://127.0.0.1:{port} (PROVIDER_WORKER=false: the bench sends the provider's webhooks itself;"
            f" DATABASE_POOL_SIZE={self.payments_db_pool} REDIS_POOL_SIZE={self.payments_redis_pool})"
        )
        payments.start(
            port,
            payments_environment(database, redis, ADMIN_TOKEN, (STRIPE_SECRET, EVENTS_SECRET), self.payments_db_pool, self.payments_redis_pool),
        )
        # The reference database: events 00000000-0000-4000-8000-<12 digits> with the same seats and
        # prices, enough for 2,500 sagas/s over the warm-up and the run, each time the run measures
        # theirs (5,000 sagas per event).
        self.reference_events = ((self.seconds + self.warmup) * 2500 * self.saga.at_most() + 4999) // 5000
        say(f"saga_ref: {self.reference_events} events x {SEATS} seats in SQL")
        seed_reference_events(bench, "saga_ref", self.reference_events, SEATS, "saga reference", "host-saga-bench")
        bench.psql("saga_ref", "CREATE SEQUENCE saga_ref_blocks MINVALUE 0 START 0;\nVACUUM ANALYZE;")

    def settle(self, bench: Bench) -> None:
        """Before a measurement: every database vacuumed, then a checkpoint (`Bench.quiet`)."""
        bench.quiet()

    def backlog(self, bench: Bench) -> tuple[int, int]:
        """(accepted webhooks whose booking is not confirmed yet, outbox rows not yet published)."""
        row = bench.psql(
            "saga",
            "SELECT (SELECT count(*) FROM payments.provider_events p JOIN booking.bookings b USING (booking_id)"
            " WHERE p.status = 'accepted' AND b.status <> 'confirmed'),"
            " (SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL)",
            separator=" ",
        )
        unconfirmed, unpublished = row.split()
        return int(unconfirmed), int(unpublished)

    def wait_confirmed(self, bench: Bench) -> str:
        """Waits (SAGA_CONFIRM_WAIT s at most) until the backlog is empty: how long it took, or why not."""
        start = time.monotonic()
        while True:
            unconfirmed, unpublished = self.backlog(bench)
            if unconfirmed == 0 and unpublished == 0:
                return f"{time.monotonic() - start:.1f}s"
            if time.monotonic() - start > self.confirm_wait:
                return f"timeout after {self.confirm_wait}s ({unconfirmed} accepted webhooks not confirmed, {unpublished} outbox rows not published)"
            time.sleep(0.2)

    def consumer_group(self, bench: Bench) -> str:
        """The booking-saga group's "lag pending" on stream:payments (XINFO GROUPS)."""
        finished = run(["redis-cli", "-h", "127.0.0.1", "-p", str(bench.redis_port), "-n", str(REDIS_DATABASE), "XINFO", "GROUPS", "stream:payments"])
        lines = finished.output.replace("\r", "").splitlines()
        groups: dict[str, dict[str, str]] = {}
        name = ""
        for index, line in enumerate(lines[:-1]):
            if line == "name":
                name = lines[index + 1]
                groups[name] = {}
            elif line in ("pending", "lag") and name:
                groups[name][line] = lines[index + 1]
        saga = groups.get("booking-saga", {})
        return f"{saga.get('lag', '?')} {saga.get('pending', '?')}"

    def measure(self, bench: Bench, database: str, start: float, seconds: int | str, customers: str) -> Measured:
        """measure.sql over DATABASE's sagas of CUSTOMERS (a LIKE pattern) in the window from START."""
        output = bench.psql_file(database, self.sql / "measure.sql", {"t0": f"{start:.6f}", "secs": str(seconds), "customers": customers})
        lines = output.splitlines()
        values = dict(part.split("=", 1) for line in lines for part in line.split() if "=" in part)
        return Measured(lines, values)

    # --- checks -------------------------------------------------------------------------------

    def verify(self, bench: Bench) -> None:
        assert self.service is not None
        say("checking the saga run (SQL invariants on database saga, the consumer group, the driver's counts)")
        waited = self.wait_confirmed(bench)
        # `booking check --strict` (Services/Booking/Check): the product's invariant checker, strict because the
        # database holds this run only and nothing is in flight any more (no settle time, no outbox bound, no
        # pending entry in Redis database 2); its table becomes (kind, meaning, count) rows.
        command: list[Argument] = [self.service.executable, "check", "--strict", "--settle", "0s", "--outbox-bound", "0s"]
        command += ["--pending-bound", "0s", "--database-url", bench.database_url_of("saga"), "--redis-url", f"{bench.redis_url}/{REDIS_DATABASE}"]
        checked = subprocess.run([os.fspath(part) for part in command], capture_output=True, text=True, check=False)
        if checked.returncode > 1:
            sys.stderr.write(checked.stderr)
            self.saga.check = f"the invariant checks did not run (booking check exited {checked.returncode})"
            return
        rows: list[tuple[str, str, str]] = []
        for line in checked.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 4 and fields[2] in ("OK", "VIOLATION", "INFO"):
                meaning = re.sub(r"^\S+ +[0-9]+ +[A-Z]+ +", "", line)
                rows.append(("info" if fields[2] == "INFO" else "check", meaning, fields[1]))
        if not rows:
            self.saga.check = "booking check printed no checks"
            return
        failed = [f"{meaning}: {count}" for kind, meaning, count in rows if kind == "check" and count != "0"]
        text = metrics.fetch(self.service.url)
        failures = int(metrics.sample(text, 'consumer_handler_failures_total{group="booking-saga"}'))
        processed = int(metrics.sample(text, 'consumer_events_processed_total{group="booking-saga"}'))
        group = self.consumer_group(bench)
        client_failures = _client_count(self.driver_outputs, "failures")
        exhausted = _client_count(self.driver_outputs, "exhausted")
        open_failures = sum(openloop.failures(output) for output in self.open_outputs)
        rows += [
            ("check", "saga coordinator handler failures (booking /metrics)", str(failures)),
            ("check", "booking-saga entries pending (XINFO GROUPS stream:payments: lag pending)", group),
            ("info", "events the saga coordinator processed (booking /metrics)", str(processed)),
            ("check", "requests the driver saw fail (non-2xx, errors)", "?" if client_failures is None else str(client_failures)),
            ("check", "workers that ran out of seats (raise SAGA_MAX_RATE)", "?" if exhausted is None else str(exhausted)),
            ("check", "requests the open-loop runs saw fail", str(open_failures)),
        ]
        for kind, meaning, count in rows:
            print(f"  {kind:<5} {meaning:<92} {count}")
        if failures != 0:
            failed.append(f"handler failures: {failures}")
        if group != "0 0":
            failed.append(f"booking-saga lag/pending: {group}")
        if client_failures != 0:
            failed.append(f"driver failures: {'no count' if client_failures is None else client_failures}")
        if open_failures != 0:
            failed.append(f"open-loop failures: {open_failures}")
        if exhausted != 0:
            failed.append(f"ran out of seats: {'no count' if exhausted is None else exhausted}")
        print(f"  (backlog drained after {waited})")
        self.saga.check = f"FAILED: {';'.join(failed)}" if failed else "ok"
        print(f"saga check: {self.saga.check}")

    def report(self, bench: Bench) -> bool:
        print(f"saga checks (same run, nproc={os.cpu_count()}): {self.saga.check}")
        self.show_measurements("saga.cpu", "reference_saga.cpu")
        return self.saga.check == "ok"


class SagaPair(GroupPair[SagaServices]):
    name = "saga"
    repeats = 3
    metric = "saga_completed_per_second"
    goal = ">=800/s,p99<250"
    ratio_goal = 0.6
    reference = (
        "pgbench, the saga's booking, webhook and confirmation transactions back to back"
        " (ours: hold, book, signed webhook over HTTP; confirmed by the coordinator)"
    )

    def describe(self, bench: Bench) -> str:
        group = self.owner
        return f"{bench.platform_bench} saga against booking + payments-webhook, {group.seconds}s after {group.warmup}s of warm-up"

    def ours(self, bench: Bench) -> Rate:
        group = self.owner
        assert group.service is not None and group.payments is not None and bench.platform_bench is not None
        tag = f"r{int(time.time())}"
        command: list[Argument] = [bench.platform_bench, "saga", "--booking-url", group.service.url, "--webhook-url", group.payments.url]
        command += ["--admin-token", ADMIN_TOKEN, "--api-key", API_KEY, "--stripe-secret", STRIPE_SECRET, "--seats-per-event", str(SEATS)]
        command += ["--max-rate", str(group.max_rate), "--events-file", group.folder / "events.txt", "--tag", tag]
        command += ["--seconds", str(group.seconds), "--warmup", str(group.warmup)]
        # Events first (their creation is not what is measured), then a quiet database.
        check(run([*command, "--prepare"], merge_stderr=True), "platform-bench saga --prepare")
        group.settle(bench)
        before = metrics.fetch(group.service.url)
        started = time.time()
        with (group.folder / "driver.out").open("w", encoding="utf-8") as output:
            driver = subprocess.Popen([os.fspath(part) for part in [*command, "--concurrency", str(group.concurrency)]], stdout=output)
        try:
            # Halfway through the warm-up, fresh statistics (Bench.analyze); the cores are counted over
            # the measured window only (the driver's warm-up comes first).
            time.sleep(group.warmup / 2)
            bench.analyze("saga")
            time.sleep(max(started + group.warmup - time.time(), 0))
            start = Snapshot.take(bench, group.services, "saga")
            time.sleep(max(started + group.warmup + group.seconds - time.time(), 0))
            end = Snapshot.take(bench, group.services, "saga")
            unconfirmed, unpublished = group.backlog(bench)
            consumers = group.consumer_group(bench)
            status = driver.wait()
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
        driver_output = (group.folder / "driver.out").read_text(encoding="utf-8")
        group.driver_outputs.append(driver_output)
        if status != 0:
            print(driver_output)
            raise BenchError(f"platform-bench saga failed (status {status})")
        client_cpu = re.search(r"^saga_client_cpu seconds=([0-9.]+)", driver_output, re.MULTILINE)
        cores = report("saga", start, end, float(client_cpu.group(1)) if client_cpu else 0.0)
        group.measurements["saga.cpu"] = cores
        after = metrics.fetch(group.service.url)
        print(driver_output, end="")
        print(cores)
        print(
            f"saga_backlog_at_end: {unconfirmed} accepted webhooks not yet confirmed, {unpublished} outbox rows not yet published;"
            f" booking-saga group lag/pending: {consumers.replace(' ', '/')}"
        )
        print(f"saga_booking_pools {metrics.pool_waits(before, after, 'postgres', 'redis')}")
        print(f"saga_drained_after_end={group.wait_confirmed(bench)}")
        window = re.search(r"^saga_client_window start=([0-9.]+)", driver_output, re.MULTILINE)
        if window is None:
            raise BenchError("the saga driver printed no measured window")
        measured = group.measure(bench, "saga", float(window.group(1)), group.seconds, f"saga-{tag}-w%")
        for line in measured.lines:
            print(f"saga_sql {line}")
        rate = measured.rate
        print(f"saga_completed_per_second={rate.per_second:g}")
        print(
            f"saga_completed_p50={measured.values.get('p50') or 'n/a'} ms p99={measured.values.get('p99') or 'n/a'} ms"
            f" (webhook received -> booking confirmed, SQL percentile_cont; rate = confirmed_at in the {group.seconds}s window / {group.seconds})"
        )
        leader = bench.psql(
            "saga",
            "SELECT coalesce(string_agg(a.application_name, ','), 'none') FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = 'saga'",
        )
        print(f"saga_relay_leader: {leader}")
        return rate

    def theirs(self, bench: Bench) -> Rate:
        group = self.owner
        bench.pause(*(service.pid for service in group.started))
        group.settle(bench)
        arguments: list[Argument] = ["-n", "-M", "prepared", "-f", group.sql / "saga.sql", "-D", f"events={group.reference_events}"]
        arguments += ["-c", str(group.pgbench_clients), "-j", "2", *pgbench_target(bench, "saga_ref")]
        # A warm-up like ours (the first seconds on fresh tables run slower), not measured.
        check(run([bench.tool("pgbench"), *arguments, "-T", str(group.warmup)], merge_stderr=True), "pgbench (saga warm-up)")
        bench.analyze("saga_ref")
        prefix = group.folder / "pgbench-log"
        for stale in prefix.parent.glob(prefix.name + ".*"):
            stale.unlink()
        start = Snapshot.take(bench, group.services, "saga_ref")
        began = time.time()
        measured_run = [bench.tool("pgbench"), *arguments, "-T", str(group.seconds), "-l", f"--log-prefix={prefix}"]
        finished = check(run_timed(measured_run, merge_stderr=True), "pgbench (saga)")
        end = Snapshot.take(bench, group.services, "saga_ref")
        cores = report("reference_saga", start, end, finished.tool_seconds)
        group.measurements["reference_saga.cpu"] = cores
        sys.stderr.write("".join(line + "\n" for line in finished.output.splitlines() if not line.startswith("pgbench (")))
        latency = pgbench.latency(prefix)
        shown = "n/a n/a" if latency is None else f"{latency[0]:.3f} {latency[1]:.3f}"
        print(f"pgbench saga script (three transactions) p50/p99: {shown} ms", file=sys.stderr)
        print("\n".join(line for line in cores.splitlines() if "_threads_" not in line), file=sys.stderr)
        # The same SQL measurement as ours over the reference's rows (its window: the pgbench run).
        measured = group.measure(bench, "saga_ref", began, group.seconds, "%")
        for line in measured.lines:
            print(f"reference_saga_sql {line}", file=sys.stderr)
        print("(theirs: pgbench's sagas/s; p50/p99 webhook row -> confirmation, measured like ours)", file=sys.stderr)
        rate = measured.rate
        return Rate(pgbench.tps(finished.output), rate.p50, rate.p99)

    def has_open_loop(self) -> bool:
        return True

    def open_loop(self, bench: Bench, capacity: float) -> None:
        """Whole sagas at a fixed arrival rate (`platform-bench open-loop --scenario saga`, its own
        events; the client's latency is hold sent -> webhook answered, from each saga's due time) at
        BENCH_OPEN_FRACTIONS of the confirmation rate measured above, SAGA_OPEN_SECONDS each. Then, per
        run, the confirmation in SQL (measure.sql over the run's window: webhook received -> booking
        confirmed p50/p99/p99.9), into the summary (bench_saga_open_<percent>_confirm_*) and the JSON
        lines (scenario saga-confirmation)."""
        group = self.owner
        assert group.service is not None and group.payments is not None

        def settle() -> None:
            # The previous run's sagas confirmed, then a quiet database.
            group.wait_confirmed(bench)
            group.settle(bench)

        arguments = ["--scenario", "saga", "--booking-url", group.service.url, "--webhook-url", group.payments.url]
        arguments += ["--admin-token", ADMIN_TOKEN, "--api-key", API_KEY, "--stripe-secret", STRIPE_SECRET, "--seats-per-event", str(SEATS)]
        services = tuple(pid for pid in (group.service.pid, group.payments.pid) if pid is not None)
        outputs = openloop.run_open_loop(bench, "saga", capacity, settle, arguments, seconds=group.open_seconds, service_pid=services)
        group.wait_confirmed(bench)
        for fraction, path in zip(openloop.fractions(), outputs, strict=True):
            output = path.read_text(encoding="utf-8")
            group.open_outputs.append(output)
            window = re.search(r"^open_loop_window start=([0-9.]+)", output, re.MULTILINE)
            offered = re.search(r"^open_loop scenario=saga .* rate=(\d+)", output, re.MULTILINE)
            if window is None:
                raise BenchError(f"saga: the open-loop run at {fraction} printed no window")
            measured = group.measure(bench, "saga", float(window.group(1)), group.open_seconds, "open-%")
            percent = round(float(fraction) * 100)
            print(f"open loop at {percent}%, confirmation in SQL: {' '.join(measured.lines)}")
            values = measured.values
            prefix = f"saga_open_{percent}_confirm"
            bench.add_summary(
                **{
                    f"{prefix}_per_second": values.get("completed_per_second", ""),
                    f"{prefix}_p50_ms": values.get("p50", ""),
                    f"{prefix}_p99_ms": values.get("p99", ""),
                    f"{prefix}_p999_ms": values.get("p99.9", ""),
                    f"{prefix}_unconfirmed": values.get("unconfirmed", ""),
                }
            )

            line = {
                "scenario": "saga-confirmation",
                "label": fraction,
                "rate": int(offered.group(1)) if offered else None,
                "throughput": measured.number("completed_per_second"),
                "unconfirmed": measured.number("unconfirmed"),
                "latency_ms": {key: measured.number(key) for key in ("p50", "p90", "p99", "p99.9", "max")},
            }
            with (bench.dir / "open-loop.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
