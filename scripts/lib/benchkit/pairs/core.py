"""The foundation's pairs: the Postgres pool, the Redis client and the outbox-to-stream messaging,
each driven by `platform-bench` against the reference tool on the same server."""

from __future__ import annotations

import os
import re
import sys

from .. import pgbench
from ..bench import Argument, Bench, BenchError, check, run
from . import Pair, Rate, echo, parse_ours


class PlatformBenchPair(Pair):
    """Our side is `platform-bench <command> ARGUMENTS`; its output passes through."""

    def arguments(self, bench: Bench) -> list[str]:
        raise NotImplementedError

    def ours(self, bench: Bench) -> Rate:
        assert bench.platform_bench is not None
        finished = check(run([bench.platform_bench, *self.arguments(bench)]), f"platform-bench {self.name}")
        echo(finished.output)
        return parse_ours(finished.output, self.metric)


def _pgbench_script(bench: Bench, name: str, sql: str, clients: int) -> Rate:
    """pgbench running SQL (a one-statement script) with CLIENTS clients for BENCH_SECONDS."""
    script = bench.dir / name
    script.write_text(sql + "\n", encoding="utf-8")
    command: list[Argument] = [bench.tool("pgbench"), "-n", "-f", script, "-c", str(clients), "-j", "2", "-T", str(bench.seconds)]
    command += ["-h", "127.0.0.1", "-p", str(bench.pg_port), "-U", "postgres", "postgres"]
    finished = check(run(command, merge_stderr=True), "pgbench")
    sys.stderr.write(finished.output)
    return Rate(pgbench.tps(finished.output))


def _redis_benchmark(bench: Bench, *arguments: str) -> str:
    """redis-benchmark -q ARGUMENTS against the bench's Redis: its `... requests per second` line."""
    command = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(bench.redis_port), "-q", *arguments]
    finished = check(run(command, merge_stderr=True), "redis-benchmark")
    lines = [line for line in finished.output.replace("\r", "\n").splitlines() if "requests per second" in line]
    if not lines:
        sys.stderr.write(finished.output)
        raise BenchError("redis-benchmark printed no rate")
    return lines[-1]


class PostgresPair(PlatformBenchPair):
    name = "postgres"
    repeats = 3
    metric = "postgres_select1_per_second"
    goal = "0.50"
    ratio_goal = 0.6
    reference = "pgbench, SELECT 1"

    def arguments(self, bench: Bench) -> list[str]:
        shared = os.environ.get("BENCH_POSTGRES_SHARED_CONNECTIONS", "2")
        return [
            *("postgres", "--database-url", bench.database_url, "--connections", "4", "--callers", "8"),
            *("--seconds", str(bench.seconds), "--shared-connections", shared),
        ]

    def theirs(self, bench: Bench) -> Rate:
        return _pgbench_script(bench, "select1.sql", "SELECT 1;", clients=8)


class RedisPair(PlatformBenchPair):
    name = "redis"
    repeats = 3
    metric = "redis_set_per_second"
    goal = "0.40"
    ratio_goal = 0.7
    reference = "redis-benchmark, SET"

    def arguments(self, bench: Bench) -> list[str]:
        shared = os.environ.get("BENCH_REDIS_SHARED_CONNECTIONS", "2")
        return [
            *("redis", "--redis-url", bench.redis_url, "--connections", "8", "--callers", "8"),
            *("--seconds", str(bench.seconds), "--shared-connections", shared),
        ]

    def theirs(self, bench: Bench) -> Rate:
        # "SET: 123456.79 requests per second, p50=0.031 msec"
        line = _redis_benchmark(bench, "-t", "set", "-c", "8", "-n", "400000")
        print(line, file=sys.stderr)
        found = re.match(r"\s*SET: ([0-9.]+) requests per second", line)
        if found is None:
            raise BenchError(f"could not read redis-benchmark's SET rate: {line}")
        return Rate(float(found.group(1)))


class MessagingPair(PlatformBenchPair):
    name = "messaging"
    repeats = 3
    metric = "messaging_events_per_second"
    goal = "0.00"
    reference = "pgbench, 1-row INSERT transaction (redis-benchmark XADD on stderr); goal 5000/s absolute"

    def arguments(self, bench: Bench) -> list[str]:
        return [
            *("messaging", "--database-url", bench.database_url, "--redis-url", bench.redis_url),
            *("--writers", "8", "--concurrency", "8", "--seconds", str(bench.seconds)),
        ]

    def theirs(self, bench: Bench) -> Rate:
        bench.psql("postgres", "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
        rate = _pgbench_script(
            bench,
            "insert.sql",
            """INSERT INTO bench_insert (payload) VALUES ('{"type": "booking.expired", "data": {"booking_id": "x"}}');""",
            clients=8,
        )
        xadd = _redis_benchmark(bench, "-c", "8", "-n", "200000", "XADD", "bench:stream", "*", "envelope", "0123456789abcdef")
        print(f"redis-benchmark XADD: {xadd}", file=sys.stderr)
        return rate
