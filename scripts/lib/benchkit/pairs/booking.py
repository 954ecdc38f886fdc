"""The booking service's pairs: holds and bookings, over HTTP against its own Redis script and SQL.

    holds      ours: wrk (scripts/bench-booking/holds.lua), 64 connections, POST /v1/holds with 1-4
               random seats of random events; theirs: redis-benchmark running the service's own hold
               script (SeatHoldStore.placeScript, EVALSHA, same KEYS/ARGV shape), 64 connections,
               1 to 4 seats in equal shares. Three measurements of each side, alternately (the
               median counts), each of ours on events of its own.
    bookings   ours: wrk (bookings.lua), 64 connections, one thread each: a hold, then its conversion
               (POST /v1/bookings); theirs: pgbench (booking.sql), the conversion's transaction
               statement for statement, 8 clients. After the open-loop runs, the same pgbench at
               their arrival rates (`pgbench --rate`, the rows `bookings-reference`).

The setup creates and migrates two databases (`booking` for the service, `booking_ref` for pgbench),
starts `booking serve` (HOLD_TTL=30m, warning logs), creates the events through the API (10,000 seats
each, a year ahead; every run its own events, so seats are never reused across runs; sized for 20,000
holds/s and 4,000 bookings/s, so that no walk wraps into 409s), holds one seat
per event so that each event's unavailable-seat cache exists in Redis, and writes the reference rows in
SQL. The checks (after the pairs) look for double holds (Redis) and double bookings (Postgres) and
compare the counts with the 201s the service served and the clients saw.

Every measurement is preceded by a warm-up of BOOKING_WARMUP seconds (ours and pgbench alike), Postgres
is vacuumed before the bookings measurements (autovacuum starting in the middle of one halved pgbench's
rate in a trial), and the service is stopped (SIGSTOP) while the reference tools run.

Tunables (environment): BOOKING_BIN (a booking executable instead of the built one),
BOOKING_CONNECTIONS (64), BOOKING_DB_POOL (DATABASE_POOL_SIZE of the service, 16), BOOKING_REDIS_POOL
(REDIS_POOL_SIZE, default BOOKING_CONNECTIONS), BOOKING_PGBENCH_CLIENTS (8), BOOKING_WARMUP (2 s).

Pool sizes, from one series of 8 s runs on 2 cores with nothing else running: REDIS_POOL_SIZE 8/16 gave
5,500-6,500 holds/s, 32/64 gave 7,100-7,500 holds/s with p99 13-16 ms (a lease that has to queue costs
the service more CPU than one that finds a free connection); with it at 64, DATABASE_POOL_SIZE
8/16/32/64 gave 700/700/660/600-700 bookings/s, p99 growing from ~110-150 ms (8, 16) to ~180-190 ms
(32, 64): more Postgres backends than cores only add contention.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import random
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from .. import measure, metrics, openloop, pgbench
from ..bench import Argument, Bench, BenchError, Finished, check, run, run_timed, say, setting, warn
from ..service import Service
from . import GroupPair, Pair, Rate, ServiceGroup, echo, parse_ours, pgbench_target

SEATS = 10_000
API_KEY = "bench-client-key"
ADMIN_TOKEN = "bench-admin-token"
REFERENCE_EVENT = "00000000-0000-4000-8000-00000000beef"


HOLDS_PER_SECOND = 20_000
"""The hold rate the events are sized for (ours made 16,000-17,400/s on 2 cores): a walk that wraps
gets 409s, which are cheaper than holds and would flatter the rate."""

BOOKINGS_PER_SECOND = 4_000


@dataclasses.dataclass
class EventPlan:
    """The event ranges (0-based, in events.txt's order) of each run: 2,500 blocks of 4 seats per event,
    sized for up to HOLDS_PER_SECOND holds/s and BOOKINGS_PER_SECOND bookings/s (beyond that a walk
    wraps: 409s, counted). The warm-up and run ranges of each pair hold as many rounds as the pair
    measures ours at most (HOLD_ROUNDS, BOOKING_ROUNDS), each round on events of its own (`hold_round`,
    `booking_round`)."""

    warm_holds: tuple[int, int]
    holds: tuple[int, int]
    warm_bookings: tuple[int, int]
    bookings: tuple[int, int]
    hold_rounds: int = 1
    booking_rounds: int = 1

    @staticmethod
    def sized(seconds: int, warmup: int, hold_rounds: int = 1, booking_rounds: int = 1) -> EventPlan:
        def blocks(per_second: int, length: int) -> int:
            return (length * per_second + 2499) // 2500

        counts = [
            blocks(HOLDS_PER_SECOND, warmup) * hold_rounds,
            blocks(HOLDS_PER_SECOND, seconds) * hold_rounds,
            (blocks(BOOKINGS_PER_SECOND, warmup) + 1) * booking_rounds,
            (blocks(BOOKINGS_PER_SECOND, seconds) + 1) * booking_rounds,
        ]
        starts = [sum(counts[:index]) for index in range(4)]
        warm_holds, holds, warm_bookings, bookings = zip(starts, counts, strict=True)
        return EventPlan(warm_holds, holds, warm_bookings, bookings, hold_rounds, booking_rounds)

    def hold_round(self, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The warm-up's and the run's events of the holds pair's measurement INDEX (0-based)."""
        return _round("holds", (self.warm_holds, self.holds), self.hold_rounds, index)

    def booking_round(self, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The warm-up's and the run's events of the bookings pair's measurement INDEX (0-based)."""
        return _round("bookings", (self.warm_bookings, self.bookings), self.booking_rounds, index)

    @property
    def total(self) -> int:
        return self.bookings[0] + self.bookings[1]


def _round(pair: str, spans: tuple[tuple[int, int], tuple[int, int]], rounds: int, index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Round INDEX's share (first, count) of each of SPANS, which hold ROUNDS equal shares."""
    if not 0 <= index < rounds:
        raise BenchError(f"{pair} measurement {index + 1}: the events are sized for {rounds}")

    def part(span: tuple[int, int]) -> tuple[int, int]:
        each = span[1] // rounds
        return span[0] + index * each, each

    return part(spans[0]), part(spans[1])


def _http(method: str, url: str, token: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise BenchError(f"{method} {url}: {error}") from error


def booking_environment(database_url: str, redis_url: str, admin_token: str, api_key: str, db_pool: int, redis_pool: int) -> dict[str, str]:
    """`booking serve`'s settings under benchmark: holds live 30 minutes (nothing expires during a run),
    warning logs, and the per-customer limits out of the way (the load generators' customers hold far
    more than a person would)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ADMIN_TOKEN": admin_token,
        "API_KEYS": api_key,
        "LOG_LEVEL": "warning",
        "HOLD_TTL": "30m",
        "DATABASE_POOL_SIZE": str(db_pool),
        "REDIS_POOL_SIZE": str(redis_pool),
        "MAX_HELD_SEATS_PER_CUSTOMER": "10000",
        "HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE": "1000000",
    }


def place_script(root: Path) -> str:
    """The service's hold script from its source: the Swift multi-line literal of placeScript with the
    literal's indentation removed (what the service sends to SCRIPT LOAD)."""
    source = (root / "Services" / "Booking" / "Holds" / "SeatHoldStore.swift").read_text(encoding="utf-8")
    lines: list[str] = []
    inside = False
    for line in source.splitlines():
        if not inside:
            inside = "static let placeScript = RedisScript(" in line
            continue
        if re.match(r'^ *"""\)', line):
            break
        if re.fullmatch(r' *"""', line):
            continue
        lines.append(line.removeprefix("        "))
    if not lines:
        raise BenchError("could not read placeScript from Services/Booking/Holds/SeatHoldStore.swift")
    return "\n".join(lines)


class BookingService(ServiceGroup):
    executables = ("booking",)
    packages = ("wrk",)

    def __init__(self) -> None:
        self.connections = setting("BOOKING_CONNECTIONS", 64)
        self.db_pool = setting("BOOKING_DB_POOL", 16)
        self.redis_pool = setting("BOOKING_REDIS_POOL", self.connections)
        self.pgbench_clients = setting("BOOKING_PGBENCH_CLIENTS", 8)
        self.warmup = setting("BOOKING_WARMUP", 2)
        self.lua = Path(__file__).resolve().parents[3] / "bench-booking"
        self.holds = HoldsPair(self)
        self.bookings = BookingsPair(self)
        self.pairs: list[Pair] = [self.holds, self.bookings]
        super().__init__()
        self.events: list[str] = []
        self.plan = EventPlan.sized(10, self.warmup)
        self.hold_rounds_done = 0
        self.booking_rounds_done = 0
        self.wrk_runs = 0
        self.reference_events = 0
        self.counts: dict[str, list[int]] = {"primed": [], "holds": [], "bookings": [], "convert_failed": [], "open_failures": []}
        """What the clients saw: the 201s of every run (holds and bookings), the conversions of the closed
        runs answered other than 201, and the open-loop failures."""

    # --- setup ------------------------------------------------------------------------------------

    def setup(self, bench: Bench) -> None:
        service = self.start_service(
            bench,
            "booking",
            "booking",
            ("booking", "booking_ref"),
            booking_environment(bench.database_url_of("booking"), bench.redis_url, ADMIN_TOKEN, API_KEY, self.db_pool, self.redis_pool),
            f"DATABASE_POOL_SIZE={self.db_pool} REDIS_POOL_SIZE={self.redis_pool}, HOLD_TTL=30m, LOG_LEVEL=warning",
        )
        self.plan = EventPlan.sized(bench.seconds, self.warmup, self.holds.at_most(), self.bookings.at_most())
        self._create_events(service)
        self._prime(service)
        # The reference database: the same schema, events 00000000-0000-4000-8000-<12 digits> with the
        # same seats (foreign keys), and the sequence booking.sql allocates seat blocks from.
        # Enough for 5,000 transactions a second in every closed reference measurement and in its
        # open-loop runs.
        open_seconds, open_warmup = openloop.seconds_and_warmup(bench)
        open_share = sum(float(fraction) for fraction in openloop.fractions())
        transactions = (bench.seconds + self.warmup) * 5000 * self.bookings.at_most() + open_share * (int(open_seconds) + int(open_warmup)) * 5000
        self.reference_events = (round(transactions) + 2499) // 2500
        say(f"booking_ref: {self.reference_events} events x {SEATS} seats in SQL")
        seed_reference_events(bench, "booking_ref", self.reference_events, SEATS, "reference", "host-bench")
        bench.psql("booking_ref", "CREATE SEQUENCE bench_ref_blocks;\nVACUUM ANALYZE;")
        bench.vacuum("booking")
        # The setup wrote a lot of WAL (a million seat rows): checkpoint now rather than during a measurement.
        bench.checkpoint()

    def _create_events(self, service: Service) -> None:
        """Events through the API, each with 10,000 seats s00001..s10000, a year ahead."""
        day = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=365)
        body = json.dumps(
            {
                "name": "bench",
                "host_id": "host-bench",
                "starts_at": f"{day.isoformat()}T19:00:00Z",
                "ends_at": f"{day.isoformat()}T22:00:00Z",
                "time_zone": "Europe/Berlin",
                "currency": "EUR",
                "seats": [{"seat_id": f"s{number:05d}", "price": 2500} for number in range(1, SEATS + 1)],
            },
            separators=(",", ":"),
        ).encode()
        say(f"creating {self.plan.total} events x {SEATS} seats through POST /v1/events")
        self.events = []
        for _ in range(self.plan.total):
            status, reply = _http("POST", f"{service.url}/v1/events", ADMIN_TOKEN, body)
            if status != 201:
                raise BenchError(f"POST /v1/events answered {status}: {reply[:200]!r}")
            self.events.append(str(json.loads(reply)["event_id"]))
        (self.folder / "events.txt").write_text("".join(f"{event}\n" for event in self.events), encoding="ascii")

    def _prime(self, service: Service) -> None:
        """One hold per event (its last seat) before measuring: the first hold of an event finds no
        unavailable-seat cache in Redis and rebuilds it from Postgres, a one-off per event that is not
        what the measurements are about. (A walk that reaches block 2,500 with 4 seats gets a 409.)"""
        for event in self.events:
            body = json.dumps({"event_id": event, "seat_ids": [f"s{SEATS:05d}"], "customer_id": "bench-prime"}).encode()
            status, _ = _http("POST", f"{service.url}/v1/holds", API_KEY, body)
            if status != 201:
                raise BenchError(f"priming POST /v1/holds answered {status} for event {event}")
        self.counts["primed"].append(len(self.events))

    def settle(self, bench: Bench) -> None:
        """Before a measurement: every database vacuumed, then a checkpoint (`Bench.quiet`)."""
        bench.quiet()

    # --- running ----------------------------------------------------------------------------------

    def wrk(self, script: str, threads: int, seconds: int, events: tuple[int, int], tag: str) -> Finished:
        """One wrk run of SCRIPT.lua against the service over EVENTS (first, count), timed. TAG, with the
        run's number in the group, goes into its customers' ids and Idempotency-Keys: every run's are its
        own (a key used again with another hold is a 422, as it should be)."""
        assert self.service is not None
        first, count = events
        self.wrk_runs += 1
        tag = f"{tag}{self.wrk_runs}"
        command: list[Argument] = ["wrk", "-t", str(threads), "-c", str(self.connections), "-d", f"{seconds}s", "--timeout", "10s"]
        command += ["--latency", "-s", os.fspath(self.lua / f"{script}.lua"), self.service.url, "--"]
        command += [f"events={self.folder / 'events.txt'}", f"first={first + 1}", f"count={count}", f"seats={SEATS}"]
        command += [f"threads={threads}", f"key={API_KEY}", f"tag={tag}", f"seed={random.randrange(32768)}"]
        return run_timed(command, merge_stderr=True)

    def measured(self, bench: Bench, name: str, text: str) -> None:
        self.measurements[name] = text

    def measured_wrk(self, bench: Bench, script: str, threads: int, events: tuple[int, int], wal: bool) -> Finished:
        """The measured wrk run of SCRIPT (BENCH_SECONDS) with where the cores went (and with WAL, the
        WAL per booking) and the pools' waits: printed, and kept as SCRIPT.cpu and SCRIPT.pools."""
        assert self.service is not None
        before = metrics.fetch(self.service.url)
        measurement = measure.Measurement(bench, self.service.pid, wal=wal)
        finished = self.wrk(script, threads, bench.seconds, events, "run")
        if not finished.ok:
            echo(finished.output)
            raise BenchError(f"wrk ({script}) failed")
        cores = measurement.end(f"booking_{script}", finished.tool_seconds, _created(finished.output, "bookings") if wal else 0)
        after = metrics.fetch(self.service.url)
        pools = f"booking_{script}_pools {metrics.pool_waits(before, after, 'postgres', 'redis')}"
        # wrk's own latency lines mix holds and conversions (bookings.lua): leave them out, ours are per step.
        shown = finished.output.splitlines()
        if script == "bookings":
            shown = [line for line in shown if not re.match(r"^ *(Latency|[0-9]*%)|.*Latency Distribution", line)]
        echo("\n".join([*shown, cores, pools]))
        self.measured(bench, f"{script}.cpu", cores)
        self.measured(bench, f"{script}.pools", pools)
        return finished

    # --- checks -----------------------------------------------------------------------------------

    def verify(self, bench: Bench) -> None:
        """Counts: the service's own count of 201s (its /metrics) must equal the hold records in Redis
        and the bookings in Postgres exactly. The clients' count of 201s may be lower by at most the
        requests in flight when a wrk run ended (wrk closes its connections without reading those
        answers): one per connection per run."""
        assert self.service is not None
        holds_seen = sum(self.counts["holds"]) + sum(self.counts["primed"])
        bookings_seen = sum(self.counts["bookings"])
        open_failures = sum(self.counts["open_failures"])
        convert_failed = sum(self.counts["convert_failed"])
        in_flight = len(self.counts["holds"]) * self.connections
        in_flight_bookings = len(self.counts["bookings"]) * self.connections
        text = metrics.fetch(self.service.url)
        served_holds = int(metrics.sample(text, 'hb_requests{http_route="/v1/holds",http_request_method="POST",http_response_status_code="201"}'))
        served_bookings = int(
            metrics.sample(text, 'hb_requests{http_route="/v1/bookings",http_request_method="POST",http_response_status_code="201"}')
        )

        say("checking for double holds (Redis: every hold record against its seat keys)")
        reply = run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(bench.redis_port), "--eval", os.fspath(self.lua / "verify-holds.lua")],
            merge_stderr=True,
        ).output
        numbers = reply.replace("\r", "").split()
        converted: int | None = None
        if len(numbers) != 7 or not all(number.isdigit() for number in numbers):
            self.holds.check = f"the Redis check failed: {' '.join(numbers)}"
        else:
            records, listed, mismatched, shared, seat_keys, converted, orphans = map(int, numbers)
            print(
                f"holds: {records} hold records listing {listed} seats, {seat_keys} seat keys; seats in two hold records: {shared};"
                f" seat keys not pointing back at their hold: {mismatched}; seat keys without a hold record: {orphans};"
                f" 201s served (service metrics): {served_holds}, seen by the clients: {holds_seen}"
                f" (at most {in_flight} in flight at the ends of runs)"
            )
            if shared > 0 or mismatched > 0:
                self.holds.check = f"DOUBLE HOLDS: {shared} seats in two hold records, {mismatched} seat keys pointing elsewhere"
            elif not text:
                self.holds.check = "the service did not answer GET /metrics, so its counts cannot be compared"
            elif orphans > 0:
                self.holds.check = f"{orphans} seat keys held by no hold record"
            elif records != served_holds:
                self.holds.check = f"{records} hold records but the service answered {served_holds} holds with 201"
            elif served_holds < holds_seen or served_holds - holds_seen > in_flight:
                self.holds.check = f"the service answered {served_holds} holds with 201 but the clients saw {holds_seen}"
            else:
                self.holds.check = "ok"

        say("checking for double bookings (Postgres: active booking seats per event and seat)")
        doubles = int(
            bench.psql(
                "booking",
                "SELECT count(*) FROM (SELECT event_id, seat_id, count(*) FROM booking.booking_seats"
                " WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1) AS d",
            )
        )
        bookings = int(bench.psql("booking", "SELECT count(*) FROM booking.bookings"))
        seats = int(bench.psql("booking", "SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL"))
        print(
            f"bookings: {bookings} bookings with {seats} active seats; seats in two active bookings: {doubles};"
            f" hold records marked converted in Redis: {'?' if converted is None else converted};"
            f" 201s served: {served_bookings}, seen by the clients: {bookings_seen} (at most {in_flight_bookings} in flight)"
        )
        if doubles > 0:
            self.bookings.check = f"DOUBLE BOOKINGS: {doubles} seats in two active bookings"
        elif not text:
            self.bookings.check = "the service did not answer GET /metrics, so its counts cannot be compared"
        elif bookings != served_bookings:
            self.bookings.check = f"{bookings} bookings in Postgres but the service answered {served_bookings} conversions with 201"
        elif served_bookings < bookings_seen or served_bookings - bookings_seen > in_flight_bookings:
            self.bookings.check = f"the service answered {served_bookings} conversions with 201 but the clients saw {bookings_seen}"
        elif converted != bookings:
            self.bookings.check = (
                f"{bookings} bookings in Postgres but {'?' if converted is None else converted} hold records marked converted in Redis"
            )
        elif convert_failed > 0:
            self.bookings.check = f"{convert_failed} conversions of the closed-loop runs were answered other than 201"
        elif open_failures > 0:
            self.bookings.check = f"the open-loop runs saw {open_failures} failed requests"
        else:
            self.bookings.check = "ok"

    def report(self, bench: Bench) -> bool:
        print(f"booking checks (same run): holds: {self.holds.check}; bookings: {self.bookings.check}")
        # Where the cores went in each measurement, and the service's pool waits.
        self.show_measurements("holds.cpu", "holds.pools", "reference-holds.cpu", "bookings.cpu", "bookings.pools", "reference-bookings.cpu")
        return not any(str(pair.check).startswith("DOUBLE") for pair in self.pairs)


def seed_reference_events(bench: Bench, database: str, count: int, seats: int, name_prefix: str, host: str) -> None:
    """The reference database's events 00000000-0000-4000-8000-<12 digits>, a year ahead, each with SEATS
    seats priced 2500 (the values are the harness's own numbers and names, never outside input)."""
    bench.psql(
        database,
        f"""INSERT INTO booking.events
SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, '{name_prefix} ' || i, '{host}',
       now() + interval '365 days', now() + interval '365 days 3 hours', 'Europe/Berlin', 'EUR', now()
FROM generate_series(0, {int(count)} - 1) AS i;
INSERT INTO booking.seats
SELECT e.event_id, 's' || lpad(g::text, 5, '0'), 2500, g - 1 FROM booking.events e, generate_series(1, {int(seats)}) AS g;""",
    )


def _created(output: str, name: str) -> int:
    found = re.search(rf"^booking_{name}_created=(\d+)", output, re.MULTILINE)
    return int(found.group(1)) if found else 0


class BookingPair(GroupPair[BookingService]):
    """A pair whose our side is wrk against the group's booking service."""

    def describe(self, bench: Bench) -> str:
        return f"booking service over HTTP, wrk, {bench.seconds}s"


class HoldsPair(BookingPair):
    name = "holds"
    metric = "booking_holds_per_second"
    goal = ">=8000/s,p99<20"
    ratio_goal = 0.3
    reference = "redis-benchmark, EVALSHA of the service's hold script, 1-4 seats"
    repeats = 3

    def ours(self, bench: Bench) -> Rate:
        group, threads = self.owner, 2
        assert group.service is not None
        warm_events, run_events = group.plan.hold_round(group.hold_rounds_done)
        group.hold_rounds_done += 1
        warm = check(group.wrk("holds", threads, group.warmup, warm_events, "warm"), "wrk (holds warm-up)")
        group.counts["holds"].append(_created(warm.output, "holds"))
        print(f"(warm-up {group.warmup}s: booking_holds_created={_created(warm.output, 'holds')})")
        finished = group.measured_wrk(bench, "holds", threads, run_events, wal=False)
        group.counts["holds"].append(_created(finished.output, "holds"))
        return parse_ours(finished.output, self.metric)

    def theirs(self, bench: Bench) -> Rate:
        group = self.owner
        script = place_script(bench.root)
        digest = hashlib.sha1(script.encode()).hexdigest()
        # The service loaded its script with SCRIPT LOAD during the run: the same digest proves the
        # reference runs byte for byte the same script.
        if bench.redis_cli("SCRIPT", "EXISTS", digest) == "1":
            print(f"hold script {digest}: the service's own (SCRIPT EXISTS before loading it)", file=sys.stderr)
        else:
            warn(f"hold script {digest} is not the one the service loaded (or ours did not run); measuring it anyway")
        bench.pause(group.service.pid if group.service else None)
        bench.redis_cli("SCRIPT", "LOAD", script)
        # A database of its own (9): the service's keys in 0 stay as the run left them for the checks.
        unavailable = f"booking:{{event:{REFERENCE_EVENT}}}:unavailable"
        bench.redis_cli("SADD", unavailable, "", database=9)
        # The script holds 1-4 seats; redis-benchmark repeats one command, so four runs of equal size,
        # each __rand_int__ a fresh random number (new seat keys: low contention, like ours). Sized to
        # take about BENCH_SECONDS in all at ~40,000 calls/s.
        calls = bench.seconds * 10_000
        measurement = measure.Measurement(bench, group.service.pid if group.service else None)
        tool_seconds, total_seconds, p50, p99 = 0.0, 0.0, 0.0, 0.0
        for seats in range(1, 5):
            keys = [f"booking:{{event:{REFERENCE_EVENT}}}:seat:__rand_int__"] * seats
            seat_json = "[" + ",".join(['"s__rand_int__"'] * seats) + "]"
            command = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(bench.redis_port), "--dbnum", "9"]
            command += ["-c", str(group.connections), "-n", str(calls), "-r", "1000000000", "--csv", "EVALSHA", digest]
            command += [str(2 + seats), unavailable, f"booking:{{event:{REFERENCE_EVENT}}}:hold:__rand_int__", *keys]
            command += ["__rand_int__", "1800000", "bench-customer", "1900000000000", seat_json, *(["__rand_int__"] * seats)]
            finished = run_timed(command, merge_stderr=True)
            if not finished.ok:
                sys.stderr.write(finished.output)
                raise BenchError("redis-benchmark (EVALSHA) failed")
            tool_seconds += finished.tool_seconds
            rows = [line for line in finished.output.replace("\r", "\n").splitlines() if line.startswith('"EVALSHA')]
            if not rows:
                sys.stderr.write(finished.output)
                raise BenchError("redis-benchmark printed no EVALSHA row")
            # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",
            # "max_latency_ms"; the test (the command) has unescaped quotes and commas of its own: count from the end.
            fields = rows[-1].replace('"', "").split(",")
            rps, q50, q99 = float(fields[-7]), float(fields[-4]), float(fields[-2])
            print(
                f"redis-benchmark EVALSHA placeScript, {seats} seat(s), {group.connections} clients: {fields[-7]}/s"
                f" p50={fields[-4]} ms p99={fields[-2]} ms",
                file=sys.stderr,
            )
            total_seconds += calls / rps
            # Percentiles of a mix are not a mix of percentiles: report the worst of the four runs.
            p50, p99 = max(p50, q50), max(p99, q99)
        cores = measurement.end("reference_holds", tool_seconds)
        print(cores, file=sys.stderr)
        group.measured(bench, "reference-holds.cpu", cores)
        bench.redis_cli("FLUSHDB", database=9)
        bench.resume_paused()
        print("(theirs p50/p99: the worst of the four runs)", file=sys.stderr)
        return Rate(round(calls * 4 / total_seconds), p50, p99)


class BookingsPair(BookingPair):
    name = "bookings"
    metric = "booking_bookings_per_second"
    goal = ">=1500/s,p99<50"
    ratio_goal = 0.7
    reference = "pgbench, the booking transaction (ours: hold + convert over HTTP)"
    repeats = 3

    def _count(self, output: str) -> None:
        found = re.search(r"^booking_bookings_created=(\d+) convert_failed=(\d+) holds_created=(\d+)", output, re.MULTILINE)
        if found:
            self.owner.counts["bookings"].append(int(found.group(1)))
            self.owner.counts["convert_failed"].append(int(found.group(2)))
            self.owner.counts["holds"].append(int(found.group(3)))

    def ours(self, bench: Bench) -> Rate:
        group = self.owner
        assert group.service is not None
        threads = group.connections
        warm_events, run_events = group.plan.booking_round(group.booking_rounds_done)
        group.booking_rounds_done += 1
        group.settle(bench)
        warm = check(group.wrk("bookings", threads, group.warmup, warm_events, "warm"), "wrk (bookings warm-up)")
        self._count(warm.output)
        print(f"(warm-up {group.warmup}s: booking_bookings_created={_created(warm.output, 'bookings')})")
        bench.analyze("booking")
        finished = group.measured_wrk(bench, "bookings", threads, run_events, wal=True)
        self._count(finished.output)
        return parse_ours(finished.output, self.metric)

    def theirs(self, bench: Bench) -> Rate:
        group = self.owner
        bench.pause(group.service.pid if group.service else None)
        group.settle(bench)
        reference = pgbench.measured_reference(
            bench,
            "booking",
            self._pgbench_arguments(bench),
            group.warmup,
            group.folder / "pgbench",
            lambda: bench.analyze("booking_ref"),
            group.service.pid if group.service else None,
        )
        group.measured(bench, "reference-bookings.cpu", reference.cores)
        return reference.rate

    def _pgbench_arguments(self, bench: Bench) -> list[Argument]:
        """pgbench running the booking transaction (booking.sql) on booking_ref."""
        group = self.owner
        arguments: list[Argument] = ["-n", "-M", "prepared", "-f", group.lua / "booking.sql", "-D", f"events={group.reference_events}"]
        return arguments + ["-c", str(group.pgbench_clients), "-j", "2", *pgbench_target(bench, "booking_ref")]

    def has_open_loop(self) -> bool:
        return True

    def open_loop(self, bench: Bench, capacity: float) -> None:
        """Hold + conversion pairs at a fixed arrival rate (`platform-bench open-loop --scenario
        bookings`, its own events created through the API and primed; latency from each pair's due
        time); its 201s go into the counts the checks compare, its failures too."""
        group = self.owner
        assert group.service is not None
        arguments = ["--scenario", "bookings", "--booking-url", group.service.url, "--admin-token", ADMIN_TOKEN]
        arguments += ["--api-key", API_KEY, "--seats-per-event", str(SEATS)]
        for output_path in openloop.run_open_loop(bench, "bookings", capacity, lambda: group.settle(bench), arguments, service_pid=group.service.pid):
            output = output_path.read_text(encoding="utf-8")
            primed = re.search(r"primed_events=(\d+)", output)
            group.counts["primed"].append(int(primed.group(1)) if primed else 0)
            group.counts["holds"].append(openloop.served(output, "holds"))
            group.counts["bookings"].append(openloop.served(output, "bookings"))
            group.counts["open_failures"].append(openloop.failures(output))
        pgbench.open_loop_reference(
            bench,
            "bookings",
            self._pgbench_arguments(bench),
            capacity,
            group.folder / "pgbench-open",
            group.service.pid,
            lambda: group.settle(bench),
        )
