"""scripts/benchkit [--no-build] [PAIR|GROUP...]: our code against the reference tools, same servers.

Starts a durable Postgres (fsync and synchronous_commit on) and a Redis in a temporary folder on free
ports, builds (release) platform-bench and the services the selected pairs need, sets up each
service's group, runs every pair (ours, then the reference with our services paused, then the open-loop
runs), checks the run, and prints the table, the groups' checks and measurements, the open-loop table
and the summary lines; the results JSON goes to BENCH_RESULTS (default
.local/bench/results-<UTC time>.json, copied to .local/bench/latest.json).

Missing a goal is reported, not an error: the exit status is non-zero only when something failed to
run or a check failed. Environment: BENCH_SECONDS (10), BENCH_OPEN_LOOP (1; 0 skips the open-loop
runs), BENCH_OPEN_FRACTIONS ("0.5 0.8"), PLATFORM_BENCH=<path> (implies --no-build), BOOKING_BIN=<path>,
and the pairs' own (see each module in pairs/).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TypeVar

# Run as `python3 scripts/lib/benchkit`: the package's parent (scripts/lib) is the import root.
if __package__ in (None, ""):
    sys.path.insert(0, os.fspath(Path(__file__).resolve().parent.parent))
    __package__ = "benchkit"  # noqa: A001 - makes the relative imports below work

from .bench import Bench, BenchError, err, say, show_log_tail  # noqa: E402
from .pairs import Group, Pair, ServiceGroup  # noqa: E402
from .pairs.booking import BookingService  # noqa: E402
from .pairs.core import MessagingPair, PostgresPair, RedisPair  # noqa: E402
from .pairs.notification import NotificationService  # noqa: E402
from .pairs.payments import PaymentsService  # noqa: E402
from .pairs.payout import PayoutRuns  # noqa: E402
from .pairs.saga import SagaServices  # noqa: E402
from .report import Outcome, open_loop_table, table, write_results  # noqa: E402
from .servers import Servers  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def catalogue() -> tuple[list[Pair], dict[str, list[str]]]:
    """Every pair in the table's order, and the names that stand for several."""
    booking, payments, saga, notification, payout = BookingService(), PaymentsService(), SagaServices(), NotificationService(), PayoutRuns()
    pairs: list[Pair] = [PostgresPair(), RedisPair(), MessagingPair()]
    pairs += [*booking.pairs, *payments.pairs, *saga.pairs, *notification.pairs, *payout.pairs]
    return pairs, {"booking": [pair.name for pair in booking.pairs], "payments": [pair.name for pair in payments.pairs]}


def select(arguments: list[str]) -> tuple[list[Pair], bool]:
    pairs, groups = catalogue()
    build = True
    wanted: list[str] = []
    for argument in arguments:
        if argument == "--no-build":
            build = False
        elif argument in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif argument.startswith("-"):
            err(f"unknown option: {argument}")
            sys.exit(2)
        else:
            wanted += groups.get(argument, [argument])
    known = [pair.name for pair in pairs]
    for name in wanted:
        if name not in known:
            err(f"unknown pair: {name} (known: {' '.join(known + list(groups))})")
            sys.exit(2)
    return [pair for pair in pairs if not wanted or pair.name in wanted], build


def settings() -> tuple[int, bool]:
    seconds = os.environ.get("BENCH_SECONDS", "10")
    if not re.fullmatch(r"[1-9][0-9]*", seconds):
        err(f"BENCH_SECONDS must be a positive whole number of seconds, not '{seconds}'")
        sys.exit(2)
    for fraction in os.environ.get("BENCH_OPEN_FRACTIONS", "0.5 0.8").split():
        if not re.fullmatch(r"0?\.[0-9]+|1(\.[0-9]+)?|[0-9]\.[0-9]+", fraction):
            err(f"BENCH_OPEN_FRACTIONS: '{fraction}' is not a fraction of capacity like 0.8")
            sys.exit(2)
    return int(seconds), os.environ.get("BENCH_OPEN_LOOP", "1") != "0"


def executable(product: str, variable: str, build: bool) -> Path:
    """The release PRODUCT (built first unless --no-build), or the path in VARIABLE."""
    if os.environ.get(variable):
        path = Path(os.environ[variable])
    else:
        if build:
            say(f"swift build -c release --product {product}")
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
        bin_path = subprocess.run(
            ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        path = Path(bin_path) / product
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} not found (build it: swift build -c release --product {product})")
    return path


def groups_of(pairs: list[Pair]) -> list[Group]:
    found: list[Group] = []
    for pair in pairs:
        if pair.group is not None and pair.group not in found:
            found.append(pair.group)
    return found


def attempt(bench: Bench, failure: str, step: Callable[[], T]) -> tuple[T | None, bool]:
    """(STEP's result, True), or (None, False) after reporting FAILURE and why; the services the step
    paused resume either way."""
    try:
        return step(), True
    except BenchError as error:
        err(f"{failure}: {error}")
        return None, False
    finally:
        bench.resume_paused()


def pause_others(bench: Bench, pair: Pair) -> None:
    """Stops (SIGSTOP) every service of the other groups while PAIR measures: idle, they still poll
    their outboxes and run timers, which takes cores and wake-ups from the pair (the pair's own
    services pause themselves while the reference runs)."""
    own = pair.group.started if isinstance(pair.group, ServiceGroup) else []
    bench.pause(*(service.pid for service in bench.services if service not in own))


def run_pair(bench: Bench, pair: Pair, open_loop: bool) -> tuple[Outcome, bool]:
    """Ours, then theirs, then the open-loop runs, the other groups' services paused throughout;
    (the outcome, whether everything ran)."""
    say(f"{pair.name}: ours ({pair.describe(bench)})")
    pause_others(bench, pair)
    ours, _ = attempt(bench, f"{pair.name}: our benchmark failed", lambda: pair.ours(bench))
    say(f"{pair.name}: theirs ({pair.reference})")
    pause_others(bench, pair)
    theirs, _ = attempt(bench, f"{pair.name}: the reference tool failed", lambda: pair.theirs(bench))
    ok = ours is not None and theirs is not None
    if ours is not None and open_loop and pair.has_open_loop():
        setting = os.environ.get(f"BENCH_OPEN_CAPACITY_{pair.name.upper()}")
        capacity = float(setting) if setting else ours.per_second
        pause_others(bench, pair)
        _, ran = attempt(bench, f"{pair.name}: the open-loop runs failed", lambda: pair.open_loop(bench, capacity))
        ok = ok and ran
    return Outcome(pair, ours, theirs), ok


def main(arguments: list[str]) -> int:
    selected, build = select(arguments)
    seconds, open_loop = settings()
    groups = groups_of(selected)
    servers = Servers(ROOT)
    servers.ensure_packages(*sorted({package for group in groups for package in group.packages}))

    needs_platform_bench = any(pair.group is None for pair in selected) or any(
        group.needs_platform_bench or (open_loop and any(pair.has_open_loop() for pair in selected)) for group in groups
    )
    platform_bench = None
    if needs_platform_bench:
        platform_bench = executable("platform-bench", "PLATFORM_BENCH", build and not os.environ.get("PLATFORM_BENCH"))
    services = {
        name: executable(name, f"{name.upper().replace('-', '_')}_BIN", build and not os.environ.get("PLATFORM_BENCH"))
        for group in groups
        for name in group.executables
    }

    scratch_root = os.environ.get("TMPDIR", "/tmp")
    servers.sweep_stale_scratch_dirs(f"{scratch_root}/booking-bench.*")
    folder = Path(tempfile.mkdtemp(prefix="booking-bench.", dir=scratch_root))
    folder.chmod(0o755)
    (folder / "owner.pid").write_text(f"{os.getpid()}\n", encoding="ascii")
    status = 1
    bench: Bench | None = None
    try:
        pg_port, redis_port = servers.free_ports(2)
        bench = Bench(ROOT, seconds, folder, servers.pg_bindir(), pg_port, redis_port, platform_bench, services)
        servers.start_postgres(folder / "postgres", pg_port)
        servers.start_redis(folder / "redis", redis_port)
        bench.summary.touch()
        for group in groups:
            group.setup(bench)

        outcomes: list[Outcome] = []
        failed = False
        for pair in selected:
            outcome, ok = run_pair(bench, pair, open_loop)
            outcomes.append(outcome)
            failed |= not ok or outcome.ours is None or outcome.theirs is None
        for group in groups:
            print()
            group.verify(bench)

        notes = "".join(group.heading() for group in groups)
        heading = f"Benchmarks: {seconds}s each{notes}, nproc={os.cpu_count()}, Postgres fsync+synchronous_commit on, Redis without persistence"
        table(bench, outcomes, heading)
        for group in groups:
            print()
            failed |= not group.report(bench)
        open_loop_table(bench)
        print()
        print(bench.summary.read_text(encoding="utf-8"), end="")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        destination = Path(os.environ.get("BENCH_RESULTS") or ROOT / ".local" / "bench" / f"results-{stamp}.json")
        write_results(bench, destination, seconds)
        if not os.environ.get("BENCH_RESULTS"):
            shutil.copy(destination, ROOT / ".local" / "bench" / "latest.json")
        print(f"results: {destination} (charts: scripts/bench-chart {destination})")
        status = 1 if failed else 0
    except BenchError as error:
        err(str(error))
    finally:
        if bench is not None:
            bench.resume_paused()
        for group in groups:
            try:
                group.teardown(bench) if bench is not None else None
            except BenchError as error:
                err(f"teardown: {error}")
        if status != 0:
            for group in groups:
                for log, lines in group.logs():
                    show_log_tail(Path(log), lines)
            show_log_tail(folder / "postgres" / "postgres.log", 20)
            show_log_tail(folder / "redis" / "redis.log", 10)
        try:
            servers.stop_servers_in(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return status


def _interrupted(signal_number: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signal_number)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
