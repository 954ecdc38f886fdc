"""scripts/bench [--no-build] [--alone] [PAIR|GROUP...] | --self-test: our code against the reference tools, same servers.

Starts a durable Postgres (fsync and synchronous_commit on) and a Redis in a temporary folder on free
ports, builds (release) platform-bench and the services the selected pairs need, sets up each service's
group (its databases, its service started once), runs every pair (or only the PAIRs named) and prints a
table: ours, theirs, ratio ours/theirs, p50/p99 of both where known, goal. The pairs, in order:

    postgres      platform-bench's pool running SELECT 1            pgbench, SELECT 1
    redis         platform-bench's client running SET               redis-benchmark, SET
    messaging     outbox -> relay -> stream -> consumer              pgbench, a 1-row INSERT
    holds         booking serve over HTTP (wrk)                      redis-benchmark, the service's hold script
    bookings      hold + conversion over HTTP (wrk)                  pgbench, the booking transaction
    webhooks      payments-webhook, signed Stripe webhooks (wrk)     pgbench, the webhook transaction
    saga          hold, book, webhook; confirmed by the coordinator  pgbench, the saga's three transactions
    notification  outbox -> fan-out -> dispatcher -> 10 endpoints    wrk against the same receiver
    payout        payout run over 100k and 1M settled bookings       psql, the aggregate over the same entries

`booking` names holds + bookings, `payments` webhooks. How each pair runs and what its checks are: the
modules of pairs/ (booking.py, payments.py, saga.py, notification.py, payout.py, core.py).

While a pair measures, the services of the groups whose pairs have run are paused (SIGSTOP); while its
reference tool runs, its own are too. Never inside a transaction (`Bench.pause`): a paused transaction's
XID would hold back every busy database's vacuum horizon. Each measurement prints where the cores went (the service, Redis, Postgres, the load
generator, interrupts, anything else), the CPU microseconds each of them took per transaction
(<label>_cpu_us_per_txn; per arrival in the open loop, warm-up included) and, where Postgres writes, the
WAL bytes and fsyncs per transaction. After its last pair each group checks the same run, before
the next group's pairs (no double hold or booking, every webhook stored once and published, every
paid booking confirmed, every delivery once, payouts that add up; checked at the end of a full run,
the holds had expired after HOLD_TTL's 30 minutes and the booking counts no longer added up):
missing a goal is reported, not an error; the exit status is non-zero only when something failed to
run or a check failed.

Repeated measurements: a pair whose single measurements move between runs by more than the 10% the
interference goal allows measures ours and theirs three times each in one run, alternately (ours,
theirs, ours, ...), and the table shows each side's median; its cores and counters are the median
measurement's. Its ratio is the median of the rounds' ours/theirs: the two sides of a round run back to
back and meet the same stretch of the machine, where the medians of each side can come from a fast
round and a slow one (the medians' ratio is printed beside it, and the table alone shows the change it
would give). Those are postgres, redis, messaging (pgbench's 1-row INSERT: 27,095-38,823/s in one
session), holds and bookings (each measurement on events of its own), webhooks and saga (ours:
890-1,078/s); when one side's three are more than 10% apart (largest over smallest), the pair
measures each side twice more and the median of five counts (a stretch of the machine that moves a tool by 20-40% within a
minute leaves a median of three up to 10% off). BENCH_REPEATS_<PAIR>=1|3|5 fixes a pair's count (no
two more). Notification and payout measure in rounds too, their first round fuller than the rest:
notification's first ours is its steady, ceiling and slow runs, each later one its ceiling run alone
(the table's rate), each theirs one wrk run; payout's first round runs and floors every size, each
later one the largest size alone.

--alone: each pair again in a run of its own (the pairs of one service together, on fresh servers,
open loop off), right after the run of all of them measured it: the run's databases are made quiet and
its services paused, the pair runs alone, and the run goes on. Together and alone so meet the machine
within minutes of each other (a pass alone after the whole run met another stretch of this shared
machine, which moved pairs by 10-30% both ways). Then a table of each pair's ratio together and alone
and whether they are within 10% of each other (issue 19's goal for the pairs' interference); the
summary and the results JSON get bench_<pair>_alone_ratio and bench_<pair>_alone_within_10pct. It
doubles the run's length. BENCH_ALONE_RUNS=N (1-5, default 1) runs each pair alone N times in a row:
ALONE is then their median, and the table adds each pair's alone ratios and their spread (largest over
smallest, minus one), how much the pair moves between runs of its own. A change together beyond 10%
that is also beyond that spread is named after the table as interference beyond the pair's own noise
(bench_<pair>_alone_spread, bench_<pair>_alone_beyond_spread).

Open loop: after the closed-loop runs of webhooks, bookings and saga, `platform-bench open-loop` drives
the same services at fixed arrival rates, fractions of the rate just measured (BENCH_OPEN_FRACTIONS,
default "0.5 0.8"), and reports p50/p99/p99.9 from each request's due time (coordinated omission
corrected, HDR histograms); the saga's runs also measure webhook received -> booking confirmed in SQL.
The webhooks and bookings pairs then run their reference transaction at the same rates, the service
paused (`pgbench --rate`, latency from each transaction's scheduled start: `<pair>-reference`), which
is what the database alone answers at that rate on this machine and disk.
A second table shows them with the latency goals at 80%. BENCH_OPEN_LOOP=0 skips them;
BENCH_OPEN_SECONDS (default BENCH_SECONDS; the saga: SAGA_OPEN_SECONDS, 20) sets their length;
BENCH_OPEN_CAPACITY_<PAIR> (e.g. BENCH_OPEN_CAPACITY_SAGA=340) takes that rate as the capacity instead,
so two builds can be compared at the same arrival rates.

Results: besides the tables and the summary lines (bench_<pair>_ours=, _theirs=, _ratio=, ...), every run
writes a JSON file (the machine, the commit, each pair's numbers and every open-loop run) to
BENCH_RESULTS (default .local/bench/results-<UTC time>.json, copied to .local/bench/latest.json);
scripts/bench-chart draws the latency charts from it.

Environment: BENCH_SECONDS (10) per measurement (the saga: SAGA_BENCH_SECONDS, default BENCH_SECONDS if
set, else 60); PLATFORM_BENCH=<path> runs that executable instead of building one (implies --no-build);
BOOKING_BIN, PAYMENTS_BIN (payments-webhook), NOTIFICATION_BIN, PAYOUT_BIN=<path> likewise for the services;
BENCH_REDIS_SHARED_CONNECTIONS and BENCH_POSTGRES_SHARED_CONNECTIONS (2) for the redis and postgres
pairs' clients; BENCH_LOG_PLANS_MS=N: auto_explain in every session, the plan of each statement slower
than N ms in the cluster's log, kept as .local/bench/postgres-<run folder>.log (a run alone keeps its
own); each group's own tunables are listed in its module.

Adding a pair: a Pair subclass (name, metric, goal, reference; ours() and theirs() return a Rate) in a
module of pairs/, in catalogue() below; pairs that share a service are GroupPairs of one ServiceGroup
(setup, verify, report, teardown; the pair reaches it as `owner`). A goal is a ratio (ours/theirs at least that), or absolute: ">=N/s" with optional
",p99<M" (milliseconds, ours) and optional ",ratio>=R".
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import signal
import statistics
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

from .bench import Bench, BenchError, err, median_of, rank_sum_p, round_ratios, say, show_log_tail, spread_of, warn  # noqa: E402
from .measure import StealWindow  # noqa: E402
from .pairs import WIDE_SPREAD, Group, Pair, Rate, ServiceGroup  # noqa: E402
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
BIN_VARIABLES = {"payments-webhook": "PAYMENTS_BIN"}
"""The variables naming a service's executable instead of the built one, where not NAME_BIN."""


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
        elif argument == "--self-test":
            sys.exit(self_test())
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


def self_test() -> int:
    """The harness's own unit tests (benchkit/tests): how it reads the tools' output and judges goals."""
    import unittest

    package = Path(__file__).resolve().parent
    suite = unittest.defaultTestLoader.discover(os.fspath(package / "tests"), top_level_dir=os.fspath(package.parent))
    return 0 if unittest.TextTestRunner(verbosity=1).run(suite).wasSuccessful() else 1


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


def pause_finished(bench: Bench, pair: Pair, finished: list[Group]) -> None:
    """Stops (SIGSTOP) the services of the groups whose pairs have run while PAIR measures: idle, they
    still poll their outboxes and run timers, which takes cores and wake-ups from the pair. (The
    services of groups still to come are left running, idle as a deployment has them, started beside
    the pair: that is the interference a full run measures. `Alone.between` pauses them too, for the
    minutes a pass alone takes, where they would be exactly what "alone" leaves out. A pair's own
    services pause themselves while its reference tool runs.)"""
    bench.pause(*(service.pid for group in finished if group is not pair.group and isinstance(group, ServiceGroup) for service in group.started))


def quiet_then(bench: Bench, measure: Callable[[Bench], Rate], label: str) -> Rate:
    """MEASURE after `Bench.quiet`: every pair, ours and theirs, starts with no autovacuum or
    checkpoint owed to what the pairs before it wrote (the groups' own settles repeat it between
    their runs). Warns when the hypervisor took more than 0.15 cores while MEASURE (LABEL) ran."""
    bench.quiet()
    window = StealWindow()
    try:
        return measure(bench)
    finally:
        warning = window.warning(label)
        if warning is not None:
            warn(warning)


@dataclasses.dataclass
class Side:
    """One measurement of one side of a pair: its rate (None when it failed) and the group's
    measurements (where the cores went, ...) it wrote."""

    rate: Rate | None
    measurements: dict[str, str]


def measure_side(bench: Bench, pair: Pair, failure: str, side: Callable[[Bench], Rate], label: str) -> Side:
    """SIDE (LABEL) measured after `Bench.quiet`, with the entries of the group's measurements it changed."""
    group = pair.group
    kept = group.measurements if isinstance(group, ServiceGroup) else {}
    before = dict(kept)
    rate, _ = attempt(bench, failure, lambda: quiet_then(bench, side, label))
    return Side(rate, {name: text for name, text in kept.items() if before.get(name) != text})


def median_side(pair: Pair, label: str, sides: list[Side]) -> Rate | None:
    """The median of SIDES by rate (None when one failed); its measurements become the group's again
    (a later measurement overwrote them)."""
    rates = [side.rate for side in sides]
    known = [rate for rate in rates if rate is not None]
    if len(known) < len(rates):
        return None
    chosen = median_of(list(zip(sides, known, strict=True)), lambda side: side[1].per_second, f"{pair.name}: {label}", "/s")[0]
    if isinstance(pair.group, ServiceGroup):
        pair.group.measurements.update(chosen.measurements)
    return chosen.rate


def spread(sides: list[Side]) -> float:
    """How far apart the rates SIDES measured are (`spread_of`)."""
    return spread_of([side.rate.per_second for side in sides if side.rate is not None])


def run_pair(bench: Bench, pair: Pair, open_loop: bool, finished: list[Group]) -> tuple[Outcome, bool]:
    """Ours, then theirs (`Pair.measurements()` times each, alternately, and twice more when a side's
    three are wide and the pair may: `Pair.at_most`; each side's median counts), then the open-loop
    runs, the FINISHED groups' services paused throughout; (the outcome, whether everything ran)."""
    times, most = pair.measurements(), pair.at_most()
    ours_sides: list[Side] = []
    theirs_sides: list[Side] = []
    index = 0
    while index < times:
        of = f" {index + 1} of {times}" if times > 1 else ""
        say(f"{pair.name}: ours{of} ({pair.describe(bench)})")
        pause_finished(bench, pair, finished)
        ours_sides.append(measure_side(bench, pair, f"{pair.name}: our benchmark failed", pair.ours, f"{pair.name}: ours{of}"))
        say(f"{pair.name}: theirs{of} ({pair.reference})")
        pause_finished(bench, pair, finished)
        theirs_sides.append(measure_side(bench, pair, f"{pair.name}: the reference tool failed", pair.theirs, f"{pair.name}: theirs{of}"))
        index += 1
        if ours_sides[-1].rate is None or theirs_sides[-1].rate is None:
            break
        widest = max(spread(ours_sides), spread(theirs_sides))
        if index == times and times < most and widest > WIDE_SPREAD:
            say(f"{pair.name}: a side's {times} measurements are {widest * 100:.0f}% apart: {most - times} more of each")
            times = most
    ours = median_side(pair, "ours", ours_sides)
    theirs = median_side(pair, "theirs", theirs_sides)
    ok = ours is not None and theirs is not None
    rounds = rounds_of(pair, ours_sides, theirs_sides) if ours is not None and theirs is not None else []
    if ours is not None and open_loop and pair.has_open_loop():
        setting = os.environ.get(f"BENCH_OPEN_CAPACITY_{pair.name.upper()}")
        capacity = float(setting) if setting else ours.per_second
        pause_finished(bench, pair, finished)
        _, ran = attempt(bench, f"{pair.name}: the open-loop runs failed", lambda: pair.open_loop(bench, capacity))
        ok = ok and ran
    return Outcome(pair, ours, theirs, rounds), ok


def rounds_of(pair: Pair, ours_sides: list[Side], theirs_sides: list[Side]) -> list[float]:
    """Each round's ours/theirs (`round_ratios`) when both sides ran more than once, with a progress
    line naming them, their median (the pair's ratio) and the medians' ratio beside it."""
    ours = [side.rate.per_second for side in ours_sides if side.rate is not None]
    theirs = [side.rate.per_second for side in theirs_sides if side.rate is not None]
    rounds = round_ratios(ours, theirs)
    if rounds:
        of_medians = sorted(ours)[len(ours) // 2] / sorted(theirs)[len(theirs) // 2]
        shown = ", ".join(f"{ratio:.3f}" for ratio in rounds)
        say(f"{pair.name}: ratio {statistics.median(rounds):.3f}, the median of the rounds' {shown} (the medians' ratio {of_medians:.3f})")
    return rounds


@dataclasses.dataclass
class Executables:
    platform_bench: Path | None
    services: dict[str, Path]


def executables_for(selected: list[Pair], open_loop: bool, build: bool) -> Executables:
    """platform-bench and the services the SELECTED pairs run (built first unless not BUILD)."""
    groups = groups_of(selected)
    build = build and not os.environ.get("PLATFORM_BENCH")
    needs_platform_bench = any(pair.group is None for pair in selected) or any(
        group.needs_platform_bench or (open_loop and any(pair.has_open_loop() for pair in selected)) for group in groups
    )
    platform_bench = executable("platform-bench", "PLATFORM_BENCH", build) if needs_platform_bench else None
    services = {name: executable(name, BIN_VARIABLES.get(name, f"{name.upper()}_BIN"), build) for group in groups for name in group.executables}
    return Executables(platform_bench, services)


@dataclasses.dataclass
class RunResult:
    """What a run leaves behind once its servers are gone: its status, outcomes, summary and open-loop lines."""

    status: int
    outcomes: list[Outcome]
    summary: str
    open_loop: str


def run_once(servers: Servers, selected: list[Pair], seconds: int, open_loop: bool, tools: Executables, alone: Alone | None = None) -> RunResult:
    """One run of the SELECTED pairs on servers of its own: setup, pairs, checks, the table and reports;
    with ALONE, each service's pairs again alone right after the run measured them."""
    groups = groups_of(selected)
    plans_ms = log_plans_ms()
    scratch_root = os.environ.get("TMPDIR", "/tmp")
    servers.sweep_stale_scratch_dirs(f"{scratch_root}/booking-bench.*")
    folder = Path(tempfile.mkdtemp(prefix="booking-bench.", dir=scratch_root))
    folder.chmod(0o755)
    (folder / "owner.pid").write_text(f"{os.getpid()}\n", encoding="ascii")
    result = RunResult(1, [], "", "")
    bench: Bench | None = None
    try:
        pg_port, redis_port = servers.free_ports(2)
        bench = Bench(ROOT, seconds, folder, servers.pg_bindir(), pg_port, redis_port, tools.platform_bench, tools.services)
        servers.start_postgres(folder / "postgres", pg_port)
        servers.start_redis(folder / "redis", redis_port)
        if plans_ms is not None:
            bench.log_slow_plans(plans_ms)
        bench.summary.touch()
        for group in groups:
            group.setup(bench)

        failed = False
        finished: list[Group] = []
        for index, pair in enumerate(selected):
            outcome, ok = run_pair(bench, pair, open_loop, finished)
            last_of_unit = pair.group is None or all(later.group is not pair.group for later in selected[index + 1 :])
            if pair.group is not None and last_of_unit:
                finished.append(pair.group)
                # Its checks now, while what they count still exists: a full run outlasts the booking
                # group's holds (HOLD_TTL is at most 30 minutes) and its bookings' payment window.
                print()
                pair.group.verify(bench)
            result.outcomes.append(outcome)
            failed |= not ok or outcome.ours is None or outcome.theirs is None
            if alone is not None and last_of_unit:
                alone.between(
                    bench, groups, [other.name for other in selected if pair.group is not None and other.group is pair.group] or [pair.name]
                )
        notes = "".join(group.heading() for group in groups)
        heading = f"Benchmarks: {seconds}s each{notes}, nproc={os.cpu_count()}, Postgres fsync+synchronous_commit on, Redis without persistence"
        table(bench, result.outcomes, heading)
        for group in groups:
            print()
            failed |= not group.report(bench)
        open_loop_table(bench)
        result.summary = bench.summary.read_text(encoding="utf-8")
        jsonl = folder / "open-loop.jsonl"
        result.open_loop = jsonl.read_text(encoding="utf-8") if jsonl.exists() else ""
        result.status = 1 if failed else 0
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
        if result.status != 0:
            for group in groups:
                for log, lines in group.logs():
                    show_log_tail(Path(log), lines)
            show_log_tail(folder / "postgres" / "postgres.log", 20)
            show_log_tail(folder / "redis" / "redis.log", 10)
        try:
            servers.stop_servers_in(folder)
        finally:
            if plans_ms is not None:
                keep_postgres_log(folder)
            shutil.rmtree(folder, ignore_errors=True)
    return result


def log_plans_ms() -> int | None:
    """BENCH_LOG_PLANS_MS: log the plan of every statement slower than this many milliseconds (None: unset)."""
    value = os.environ.get("BENCH_LOG_PLANS_MS")
    if not value:
        return None
    if not value.isdigit():
        err(f"BENCH_LOG_PLANS_MS must be a whole number of milliseconds, not '{value}'")
        sys.exit(2)
    return int(value)


def keep_postgres_log(folder: Path) -> None:
    """Copies the run's Postgres log (its slow statements' plans) out of FOLDER before it is removed."""
    log = folder / "postgres" / "postgres.log"
    if log.exists():
        kept = ROOT / ".local" / "bench" / f"postgres-{folder.name}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, kept)
        say(f"the cluster's log, with the plans of statements over {log_plans_ms()} ms: {kept}")


class Alone:
    """The pairs alone, interleaved with the run of all of them: right after the run measured a
    service's pairs (or a pair of its own), `between` runs the same pairs again on fresh servers of
    their own (open loop off), BENCH_ALONE_RUNS times, the run's services paused and its databases
    quiet meanwhile. Together and alone then meet the machine in the same few minutes: on this shared
    machine a stretch of minutes can move a pair by 10-30%, which a pass alone after the whole run
    compared with a different stretch."""

    def __init__(self, servers: Servers, seconds: int, tools: Executables) -> None:
        self.servers = servers
        self.seconds = seconds
        self.tools = tools
        self.passes = alone_runs()
        self.ratios: dict[str, list[float | None]] = {}
        self.of_medians: dict[str, list[float | None]] = {}
        self.rounds: dict[str, list[float]] = {}
        """Each pair's round ratios over every pass alone (`Outcome.rounds`)."""
        self.ok = True

    def between(self, bench: Bench, groups: list[Group], unit: list[str]) -> None:
        """UNIT (pair names) alone, the run's services (GROUPS') paused until it is done."""
        bench.quiet()
        bench.pause(*(service.pid for group in groups if isinstance(group, ServiceGroup) for service in group.started))
        try:
            for repeat in range(self.passes):
                of_passes = f", pass {repeat + 1} of {self.passes}" if self.passes > 1 else ""
                say(f"alone{of_passes}: {' '.join(unit)} on servers of their own (the run's services paused)")
                fresh, _ = catalogue()
                result = run_once(self.servers, [pair for pair in fresh if pair.name in unit], self.seconds, False, self.tools)
                self.ok = self.ok and result.status == 0
                for outcome in result.outcomes:
                    self.ratios.setdefault(outcome.pair.name, []).append(outcome.ratio)
                    self.of_medians.setdefault(outcome.pair.name, []).append(outcome.of_medians)
                    self.rounds.setdefault(outcome.pair.name, []).extend(outcome.rounds)
        finally:
            bench.resume_paused()
            say("alone: done; the run goes on")


ROUNDS_DIFFER = 0.05
"""A pair's rounds together and alone differ when their rank-sum p (`rank_sum_p`) is below this."""


def alone_table(together: RunResult, alone: Alone) -> str:
    """The ratios together and alone, printed; the summary lines they add. Beside each pair measured in
    rounds: the change its medians' ratios show (OF MEDIANS), the estimate the rounds' median
    replaced, and ROUNDS P, the rank-sum p of its rounds together against its rounds alone (how
    likely rounds this far apart are when together and alone are the same)."""
    passes, alone_ratios = alone.passes, alone.ratios
    print()
    print(f"Together and alone: each pair's ratio in the run of all of them and in a run of its own (nproc={os.cpu_count()})")
    row = "{:<13} {:>9} {:>7} {:>8}  {:<10}  {:<11}  {:<8}"
    header = row.format("PAIR", "TOGETHER", "ALONE", "CHANGE", "WITHIN 10%", "OF MEDIANS", "ROUNDS P")
    print(header + ("  ALONE RUNS          SPREAD" if passes > 1 else ""))
    lines = []
    beyond: list[str] = []
    outside: list[str] = []
    for outcome in together.outcomes:
        name, with_others = outcome.pair.name, outcome.ratio
        runs = alone_ratios.get(name, [])
        comparison = compare_alone_runs(with_others, runs)
        if comparison is None:
            print(row.format(name, number_or_na(with_others), "n/a", "n/a", "n/a", "n/a", "n/a"))
            lines.append(f"bench_{name}_alone_ratio=n/a\nbench_{name}_alone_within_10pct=n/a")
            continue
        of_medians = compare_alone_runs(outcome.of_medians, alone.of_medians.get(name, [])) if outcome.paired is not None else None
        besides = "-" if of_medians is None else f"{of_medians.change * 100:+.0f}% {of_medians.within}"
        p = rank_sum_p(outcome.rounds, alone.rounds.get(name, []))
        print(
            row.format(
                name,
                number_or_na(with_others),
                f"{comparison.alone:.2f}",
                f"{comparison.change * 100:+.0f}%",
                comparison.within,
                besides,
                "-" if p is None else f"{p:.3f}",
            )
            + (f"  {', '.join(number_or_na(ratio) for ratio in runs):<18}  {comparison.spread * 100:+.0f}%" if passes > 1 else "")
        )
        lines.append(f"bench_{name}_alone_ratio={comparison.alone:.4f}\nbench_{name}_alone_within_10pct={comparison.within}")
        if of_medians is not None:
            lines.append(
                f"bench_{name}_alone_change_of_medians={of_medians.change:.4f}\nbench_{name}_alone_within_10pct_of_medians={of_medians.within}"
            )
        if p is not None:
            lines.append(f"bench_{name}_alone_rounds_p={p:.4f}")
            if comparison.within == "NO":
                outside.append(f"{name} {comparison.change * 100:+.0f}% ({'rounds differ' if p < ROUNDS_DIFFER else 'rounds overlap'}, p {p:.3f})")
        if passes > 1:
            lines.append(f"bench_{name}_alone_spread={comparison.spread:.4f}\nbench_{name}_alone_beyond_spread={comparison.beyond_spread}")
            if comparison.beyond_spread == "yes":
                beyond.append(f"{name} {comparison.change * 100:+.0f}% (alone runs {comparison.spread * 100:+.0f}% apart)")
    if outside:
        print(f"pairs measured in rounds and further than 10% from alone (rounds differ: rank-sum p < {ROUNDS_DIFFER}): " + ", ".join(outside))
    if passes > 1:
        print(
            "pairs further than 10% from alone and further than their own alone runs are from each other: "
            + (", ".join(beyond) if beyond else "none")
        )
    return "".join(line + "\n" for line in lines)


@dataclasses.dataclass(frozen=True)
class AloneComparison:
    """A pair's ratio together against its runs alone: `alone` is their median, `change` together over
    it minus one, `within` whether that is within 10% (yes or NO), `spread` the alone runs' largest over
    their smallest minus one (0 for one run), and `beyond_spread` whether the change is both beyond 10%
    and beyond that spread (yes or NO): a difference the pair's own run-to-run noise does not explain."""

    alone: float
    change: float
    within: str
    spread: float
    beyond_spread: str


def compare_alone_runs(together: float | None, alone: list[float | None]) -> AloneComparison | None:
    """The comparison of a pair's ratio together with its ratios alone; None when a ratio is missing."""
    if together is None or not alone or any(ratio is None or ratio <= 0 for ratio in alone):
        return None
    known = sorted(ratio for ratio in alone if ratio is not None)
    middle = len(known) // 2
    median = known[middle] if len(known) % 2 else (known[middle - 1] + known[middle]) / 2
    change, within = compare_alone(together, median)
    spread = spread_of(known)
    beyond = within == "NO" and abs(change) > spread + 1e-9
    return AloneComparison(median, change, within, spread, "yes" if beyond else "NO")


def alone_runs() -> int:
    """BENCH_ALONE_RUNS: how many passes over the pairs alone (1-5, default 1)."""
    value = os.environ.get("BENCH_ALONE_RUNS", "1")
    if not re.fullmatch(r"[1-5]", value):
        err(f"BENCH_ALONE_RUNS must be a whole number from 1 to 5, not '{value}'")
        sys.exit(2)
    return int(value)


def compare_alone(together: float, alone: float) -> tuple[float, str]:
    """The change of a ratio measured with the other pairs against the same pair alone, and whether it
    is within 10% of it (issue 19's goal: yes or NO)."""
    change = together / alone - 1
    return change, "yes" if abs(change) <= 0.10 + 1e-9 else "NO"


def number_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(arguments: list[str]) -> int:
    with_alone = "--alone" in arguments
    selected, build = select([argument for argument in arguments if argument != "--alone"])
    seconds, open_loop = settings()
    log_plans_ms()  # a bad BENCH_LOG_PLANS_MS stops the run before it starts
    if with_alone:
        alone_runs()  # a bad BENCH_ALONE_RUNS stops the run before it starts, not after the build
    for pair in selected:
        pair.measurements()  # and a bad BENCH_REPEATS_<PAIR> likewise
    groups = groups_of(selected)
    servers = Servers(ROOT)
    servers.ensure_packages(*sorted({package for group in groups for package in group.packages}))
    tools = executables_for(selected, open_loop, build)
    alone = Alone(servers, seconds, tools) if with_alone else None
    together = run_once(servers, selected, seconds, open_loop, tools, alone)
    if not together.summary:
        return together.status  # it failed before its table: nothing to compare or to keep
    summary = together.summary
    status = together.status
    if alone is not None and together.outcomes:
        summary += alone_table(together, alone)
        status = status or (0 if alone.ok else 1)
    print()
    print(summary, end="")
    with tempfile.TemporaryDirectory() as kept:
        (Path(kept) / "summary").write_text(summary, encoding="utf-8")
        (Path(kept) / "open-loop.jsonl").write_text(together.open_loop, encoding="utf-8")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        destination = Path(os.environ.get("BENCH_RESULTS") or ROOT / ".local" / "bench" / f"results-{stamp}.json")
        write_results(ROOT, Path(kept), destination, seconds)
    if not os.environ.get("BENCH_RESULTS"):
        shutil.copy(destination, ROOT / ".local" / "bench" / "latest.json")
    print(f"results: {destination} (charts: scripts/bench-chart {destination})")
    return status


def _interrupted(signal_number: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signal_number)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)
    # Line by line, also into a file or a pipe: the progress lines (stderr) and the pairs' output
    # (stdout) then stay in the order they happened in a log that holds both.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
    except (BenchError, subprocess.CalledProcessError) as error:
        # Before the run's folder exists (a setting, a build) or while writing the results.
        err(str(error))
        sys.exit(1)
