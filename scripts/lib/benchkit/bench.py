"""The run's context (folder, servers, executables) and how the harness runs commands."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .service import Service

Argument = str | os.PathLike[str]
"""A command-line argument: text or a path."""


def say(message: str) -> None:
    """A progress line on stderr, as scripts/lib/servers.sh's `say` prints it."""
    print(f"==> {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def setting(name: str, default: int) -> int:
    """A whole-number tunable from the environment (e.g. BOOKING_CONNECTIONS), DEFAULT when unset."""
    value = os.environ.get(name) or str(default)
    if not value.isdigit():
        raise BenchError(f"{name} must be a whole number, not '{value}'")
    return int(value)


class BenchError(Exception):
    """A step that could not run (a tool failed, an answer could not be read): the run fails."""


Measured = TypeVar("Measured")


def median_of(items: Sequence[Measured], key: Callable[[Measured], float], what: str, unit: str) -> Measured:
    """The item of ITEMS (one or more repeated measurements) with the median KEY (the upper one of an
    even count: a measurement that ran, never an average of two); with more than one, a progress line
    names WHAT's median and every value, in UNIT."""
    if not items:
        raise BenchError(f"{what}: nothing was measured")
    chosen = sorted(items, key=key)[len(items) // 2]
    if len(items) > 1:
        say(f"{what}: median {key(chosen):g}{unit} of {', '.join(f'{key(item):g}' for item in items)}")
    return chosen


def spread_of(values: Sequence[float]) -> float:
    """How far apart repeated measurements are: the largest of VALUES over the smallest, minus one (0
    for fewer than two values, or when the smallest is not positive)."""
    return max(values) / min(values) - 1 if len(values) > 1 and min(values) > 0 else 0.0


def round_ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """Each round's OURS[i] / THEIRS[i], the round's two sides measured back to back (ours, theirs,
    ours, ...); empty for fewer than two rounds, rounds that do not pair up, or a reference that
    measured nothing. Their median is the pair's ratio (`Outcome.paired`): on a machine whose speed
    drifts by 10-30% within minutes the two sides of a round meet the same stretch of it, where the
    ratio of the two sides' medians can divide a median from a fast round by one from a slow round."""
    if len(ours) < 2 or len(ours) != len(theirs) or min(theirs) <= 0:
        return []
    return [mine / reference for mine, reference in zip(ours, theirs, strict=True)]


def rank_sum_p(first: Sequence[float], second: Sequence[float]) -> float | None:
    """The exact two-sided p of the Mann-Whitney rank-sum test of FIRST against SECOND (ties count a
    half): how often a split of the pooled values into two groups of these sizes, every split equally
    likely, puts the groups at least as far apart as they are. None when a side has fewer than two
    values. Small samples cannot reach small p: three against three is never below 0.10, five
    against five can reach 0.008."""
    if len(first) < 2 or len(second) < 2:
        return None
    pooled = [*first, *second]

    def u_of(chosen: Sequence[int]) -> float:
        inside = set(chosen)
        outside = [pooled[index] for index in range(len(pooled)) if index not in inside]
        return sum(1.0 if pooled[index] > other else 0.5 if pooled[index] == other else 0.0 for index in chosen for other in outside)

    middle = len(first) * len(second) / 2
    observed = abs(u_of(range(len(first))) - middle)
    splits = [abs(u_of(chosen) - middle) for chosen in itertools.combinations(range(len(pooled)), len(first))]
    return sum(1 for distance in splits if distance >= observed - 1e-9) / len(splits)


@dataclasses.dataclass
class Finished:
    """A command that ran: its output (stdout, and stderr when merged), exit status and CPU time."""

    output: str
    status: int
    tool_seconds: float
    """User plus system seconds of the command and its children (the load generator's own CPU);
    0 when not measured (`run`)."""
    peak_rss_kb: int = 0
    """The largest resident set of the command (or of a child it waited for), in KiB; 0 when not measured."""

    @property
    def ok(self) -> bool:
        return self.status == 0


def run(
    command: Sequence[Argument],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    merge_stderr: bool = False,
) -> Finished:
    """Runs COMMAND to its end; stderr passes through unless merged into the output."""
    process = subprocess.Popen(
        [os.fspath(part) for part in command],
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else None,
        env={**os.environ, **env} if env else None,
        text=True,
    )
    output, _ = process.communicate(input_text)
    return Finished(output, process.returncode, 0.0)


def run_timed(
    command: Sequence[Argument],
    *,
    env: Mapping[str, str] | None = None,
    merge_stderr: bool = False,
) -> Finished:
    """Runs COMMAND like `run`, and measures its user+system seconds and peak RSS with wait4 (the
    process and the children it waited for)."""
    process = subprocess.Popen(
        [os.fspath(part) for part in command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else None,
        env={**os.environ, **env} if env else None,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    _, wait_status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return Finished(output, process.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def check(finished: Finished, what: str) -> Finished:
    """FINISHED when its status is 0; otherwise shows its output on stderr and raises."""
    if not finished.ok:
        sys.stderr.write(finished.output)
        raise BenchError(f"{what} failed (exit status {finished.status})")
    return finished


PAUSE_SETTLE = 0.1
"""Seconds a stopped service's sessions get to finish what it had sent (`Bench.pause`): a session still
inside a transaction after this is held by the stopped process."""
PAUSE_TRIES = 20


@dataclasses.dataclass
class Bench:
    """Everything a pair needs: the settings, the bench's servers and where to put files."""

    root: Path
    seconds: int
    """BENCH_SECONDS: the length of one measurement."""
    dir: Path
    """The run's scratch folder (the servers' data, the pairs' files); removed at the end."""
    pg_bin: Path
    pg_port: int
    redis_port: int
    platform_bench: Path | None
    """platform-bench (release), when a selected pair needs it."""
    executables: dict[str, Path] = dataclasses.field(default_factory=dict)
    """The services' executables the selected pairs run (name -> path), e.g. booking."""
    paused: list[int] = dataclasses.field(default_factory=list)
    services: list[Service] = dataclasses.field(default_factory=list)
    """Every service the groups started (a pair may pause the others' while it measures)."""

    @property
    def database_url(self) -> str:
        return self.database_url_of("postgres")

    def database_url_of(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    @property
    def summary(self) -> Path:
        """The summary lines (bench_<key>=<value>) the results JSON is made from."""
        return self.dir / "summary"

    def add_summary(self, **values: object) -> None:
        with self.summary.open("a", encoding="utf-8") as handle:
            for key, value in values.items():
                handle.write(f"bench_{key}={value}\n")

    def tool(self, name: str) -> Path:
        return self.pg_bin / name

    def psql(self, database: str, sql: str, *, separator: str | None = None) -> str:
        """Runs SQL (one or more statements, from stdin) on DATABASE; returns psql's unaligned output.
        Used only with text the harness wrote itself: no value from outside reaches it."""
        command: list[Argument] = [self.tool("psql"), "-qAtX", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        command += ["-p", str(self.pg_port), "-U", "postgres"]
        if separator is not None:
            command += ["-F", separator]
        command.append(database)
        finished = run(command, input_text=sql)
        return check(finished, f"psql on {database}").output.strip()

    def log_slow_plans(self, milliseconds: int) -> None:
        """auto_explain in every session started from now on: the plan of each statement slower than
        MILLISECONDS goes to the cluster's log (BENCH_LOG_PLANS_MS), to find a plan that reads a whole
        table in one run and not in another."""
        self.psql(
            "postgres",
            "LOAD 'auto_explain';\n"
            "ALTER SYSTEM SET session_preload_libraries = 'auto_explain';\n"
            f"ALTER SYSTEM SET auto_explain.log_min_duration = '{milliseconds}ms';\n"
            "SELECT pg_reload_conf();",
        )

    def psql_file(self, database: str, script: Path, variables: Mapping[str, str], separator: str = "\n") -> str:
        """Runs the SQL file SCRIPT on DATABASE with psql variables (-v NAME=VALUE, the harness's own
        values); returns the unaligned output, fields separated by SEPARATOR."""
        command: list[Argument] = [self.tool("psql"), "-qAtX", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        command += ["-p", str(self.pg_port), "-U", "postgres", "-F", separator, database]
        for name, value in variables.items():
            command += ["-v", f"{name}={value}"]
        command += ["-f", script]
        return check(run(command, merge_stderr=True), f"psql -f {script.name} on {database}").output.strip()

    def vacuum(self, *databases: str) -> None:
        """VACUUM ANALYZE what the previous runs wrote, so that autovacuum does not start in the middle
        of the next measurement."""
        for database in databases:
            self.psql(database, "VACUUM ANALYZE")
            self.vacuum_statistics(database)

    def vacuum_statistics(self, database: str) -> None:
        """ANALYZE replaces a table's rows in `pg_statistic`, and autovacuum comes for the dead versions
        within a minute (a worker visits each database in turn): the harness's own ANALYZE would start
        a vacuum in the measurement after it. So each ANALYZE is followed by this, in a session of its
        own: a session reports its counts of dead rows when it ends, and the ANALYZE's, reported after
        a VACUUM in the same session, would undo the VACUUM's reset."""
        self.psql(database, "VACUUM pg_catalog.pg_statistic")

    def quiet(self) -> None:
        """Quiet Postgres before a measurement: VACUUM ANALYZE every database, then CHECKPOINT. Every
        group's databases, not only the measured pair's: the pairs share one cluster, and autovacuum
        starts on a table once enough of it changed since its last vacuum, whichever pair changed it.
        Vacuuming only its own databases, the webhooks pair ran with autovacuum going through the
        bookings pair's reference tables in its measured seconds. A pair's own writes during its
        measurement still start autovacuum as in production. The checkpoint: no checkpoint's
        full-page writes in the measurement either.

        `template1` too: a new cluster's catalogs there were never analyzed, and autovacuum's first
        visit analyzed and vacuumed them in a bookings open loop's measured seconds (2026-12-07
        22:44:11 UTC; the answers due in the 100 ms from then were 56 of the 84 above the run's p99).
        And `pg_statistic` after each ANALYZE (`vacuum_statistics`): in the same run autovacuum
        vacuumed it in `booking_ref`, `booking` and `postgres`, 15 s apart, after the quiet's ANALYZE."""
        listed = self.psql("postgres", "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
        self.vacuum(*listed.split())
        self.checkpoint()

    def analyze(self, *databases: str) -> None:
        """ANALYZE between a warm-up and its measurement. The warm-up starts on nearly empty tables, and
        the sessions plan their statements then, Postgres' foreign-key checks included; the plan chosen
        for a table of a page or two (a sequential scan) stays cached in the session until the table's
        statistics change, and is still used when the table has grown to thousands of rows. In
        production autovacuum analyzes a table within a minute of its first 50 changed rows, which a
        measurement of seconds never reaches. Measured on the bookings pair (2 cores): without it every
        booking's foreign-key checks scanned booking.bookings and booking.sagas whole, Postgres spent
        2.2 ms of CPU per booking and the pair made 514-567 bookings/s; with it, 1.0 ms and 900/s."""
        for database in databases:
            self.psql(database, "ANALYZE")
            self.vacuum_statistics(database)

    def checkpoint(self) -> None:
        self.psql("postgres", "CHECKPOINT")

    def redis_cli(self, *arguments: str, database: int | None = None) -> str:
        command = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port)]
        if database is not None:
            command += ["-n", str(database)]
        return check(run(command + list(arguments)), "redis-cli").output.strip()

    def pause(self, *pids: int | None) -> None:
        """Stops the running ones of PIDS (SIGSTOP) until `resume_paused`: the reference tools measure
        without our services taking cores (idle, they still poll and run timers).

        Never inside a transaction. A process stopped between two statements of one keeps it open for
        as long as it is paused, and a transaction's XID is in every snapshot that any session of the
        cluster takes, in every database: while a busy database's sessions hold such snapshots, no
        vacuum or page pruning removes, and no index scan learns to skip, what was deleted or updated
        there after that transaction began. The notification pair, with the earlier groups'
        services paused, spent 2.8 times the Postgres CPU per delivery it spent alone for the same
        commits and WAL; its claim's index read 2,068 entries per scan. So after the stop, while a
        client backend has sat in a transaction for PAUSE_SETTLE seconds, the processes run again
        for a moment and stop again, up to PAUSE_TRIES times; then they are left running, with a
        warning (running is what a deployment has; a frozen transaction is not)."""
        stopping = [pid for pid in pids if pid is not None and pid not in self.paused and process_alive(pid)]
        if not stopping:
            return
        held = ""
        for attempt in range(PAUSE_TRIES):
            for pid in stopping:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(PAUSE_SETTLE)
            held = self.transactions_held(PAUSE_SETTLE)
            if not held:
                self.paused.extend(stopping)
                return
            say(f"pause: a session sat in a transaction ({held}); the services run a moment and stop again")
            for pid in stopping:
                os.kill(pid, signal.SIGCONT)
            time.sleep(PAUSE_SETTLE * (attempt + 1) / 2)
        warn(f"{len(stopping)} services left running: stopped {PAUSE_TRIES} times, a session still held a transaction ({held})")

    def transactions_held(self, seconds: float) -> str:
        """The client sessions (but this one) that have sat for SECONDS inside a transaction, or in a
        statement waiting for their client to read its result: "application (state)", comma-separated;
        empty when none."""
        return self.psql(
            "postgres",
            "SELECT coalesce(string_agg(application_name || ' (' || state || ')', ', '), '') FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " AND (state LIKE 'idle in transaction%' OR (state = 'active' AND wait_event = 'ClientWrite'))"
            f" AND state_change < now() - interval '{int(seconds * 1000)} milliseconds'",
        )

    def resume_paused(self) -> None:
        for pid in self.paused:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused.clear()


def process_alive(pid: int) -> bool:
    """True when PID runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def show_log_tail(path: Path, lines: int = 40) -> None:
    """The end of a log on stderr, with a header (for failures)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if not text:
        return
    tail = "\n".join(text.splitlines()[-lines:])
    print(f"----- last {lines} lines of {path} -----\n{tail}\n----- end of {path} -----", file=sys.stderr)
