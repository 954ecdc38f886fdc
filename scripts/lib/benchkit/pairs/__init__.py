"""The benchmark pairs: each our code against a reference tool doing the same database work.

A pair names its metric, its goal and its reference, and runs both sides; the pairs of one service
share a `Group` (the service started once, its databases, the checks of the whole run).

A goal is a ratio (ours/theirs at least that), or absolute: ">=N/s" with optional ",p99<M"
(milliseconds, ours) and optional ",ratio>=R" (ours/theirs at least R as well).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Generic, TypeVar

from .. import measure
from ..bench import Argument, Bench, BenchError, free_port, say, warn
from ..service import Service


@dataclasses.dataclass
class Rate:
    """One side's result: operations per second, with p50/p99 in ms where known."""

    per_second: float
    p50: float | None = None
    p99: float | None = None


MOST_MEASUREMENTS = 5
WIDE_SPREAD = 0.10
"""Three measurements of one side further apart than this (largest over smallest, minus one) are
wide: their median can still be 10% off, so a pair that may (`Pair.at_most`) measures twice more."""


class Pair:
    name: str = ""
    metric: str = ""
    """Our side's `<metric>=<number>` output line (with `<metric less _per_second>_p50=... p99=...`)."""
    goal: str = ""
    ratio_goal: float | None = None
    """Issue 19's goal for the pair: ours/theirs at least this in one full run (judged beside GOAL,
    which holds the pair's earlier, mostly absolute goals); None when the pair has none."""
    reference: str = ""
    repeats: int = 1
    """How many times one run measures ours and theirs, alternately (ours, theirs, ours, ...): the
    table shows each side's median measurement. Above 1 for the pairs whose single measurements move
    between runs by more than the 10% the interference goal allows; BENCH_REPEATS_<NAME> overrides it.
    A pair of 3 by default measures twice more when one side's three are further apart than
    WIDE_SPREAD (`at_most`)."""

    def __init__(self) -> None:
        self.check: str | None = None
        """The same run's checks for this pair: "ok" or what failed; None when it has none."""
        self.goal_also_needs: str | None = None
        """A further condition of the goal that failed (e.g. the slow-endpoint run), else None."""

    @property
    def group(self) -> Group | None:
        """The group whose service(s) the pair runs; None for a pair on its own."""
        return None

    def measurements(self) -> int:
        """`repeats`, or BENCH_REPEATS_<NAME> (1, 3 or 5: an odd count has a median) when set."""
        variable = f"BENCH_REPEATS_{self.name.upper()}"
        value = os.environ.get(variable)
        if value is None:
            return self.repeats
        if value not in ("1", "3", "5"):
            raise BenchError(f"{variable} must be 1, 3 or 5, not '{value}'")
        return int(value)

    def at_most(self) -> int:
        """The most measurements a run takes of each side: MOST_MEASUREMENTS for a pair of three by
        default (and no BENCH_REPEATS_<NAME>), which takes the two more when its three turn out wide;
        else `measurements()`."""
        if self.repeats == 3 and f"BENCH_REPEATS_{self.name.upper()}" not in os.environ:
            return MOST_MEASUREMENTS
        return self.measurements()

    def describe(self, bench: Bench) -> str:
        return f"platform-bench {self.name}, {bench.seconds}s"

    def ours(self, bench: Bench) -> Rate:
        raise NotImplementedError

    def theirs(self, bench: Bench) -> Rate:
        raise NotImplementedError

    def has_open_loop(self) -> bool:
        return False

    def open_loop(self, bench: Bench, capacity: float) -> None:
        """The same service at fixed arrival rates, fractions of CAPACITY (the rate just measured)."""


class Group:
    """What the pairs of one service share: set up before the pairs, checked and torn down after."""

    pairs: list[Pair]

    executables: tuple[str, ...] = ()
    """The service executables it runs (release products; NAME_BIN in the environment overrides)."""
    packages: tuple[str, ...] = ()
    needs_platform_bench = False

    def setup(self, bench: Bench) -> None:
        pass

    def verify(self, bench: Bench) -> None:
        """Checks the run; sets each pair's `check`."""

    def report(self, bench: Bench) -> bool:
        """Prints the group's checks and measurements after the table; False when a check failed."""
        return True

    def teardown(self, bench: Bench) -> None:
        pass

    def logs(self) -> list[tuple[str, int]]:
        """The logs to show when the run failed: (path, lines)."""
        return []

    def heading(self) -> str:
        """What the table's heading adds for this group (e.g. a measurement length of its own)."""
        return ""


class ServiceGroup(Group):
    """A group around one service: started once in BENCH_DIR/<folder> before the pairs, stopped after;
    the measurements it keeps are shown after the table."""

    def __init__(self) -> None:
        self.service: Service | None = None
        """The group's (first) service."""
        self.started: list[Service] = []
        """Every service the group started, stopped at the end."""
        self.folder = Path()
        self.measurements: dict[str, str] = {}
        """Where the cores went in each measurement, the pools' waits, ... (name -> lines)."""

    @property
    def pid(self) -> int | None:
        return self.service.pid if self.service is not None else None

    def add_service(self, service: Service) -> Service:
        self.started.append(service)
        return service

    def start_service(
        self,
        bench: Bench,
        name: str,
        folder: str,
        databases: tuple[str, ...],
        environment: Mapping[str, str],
        settings: str,
        log: str = "service.log",
    ) -> Service:
        """Copies NAME into BENCH_DIR/FOLDER, creates and migrates DATABASES, and starts `NAME serve` on a
        free port with ENVIRONMENT (SETTINGS: how the progress line describes it), its output in LOG."""
        self.folder = bench.dir / folder
        service = self.service = self.add_service(Service(bench, name, self.folder, log))
        service.create_databases(*databases)
        port = free_port()
        say(f"{name} serve on http://127.0.0.1:{port} ({settings})")
        service.start(port, environment)
        return service

    def teardown(self, bench: Bench) -> None:
        for service in self.started:
            service.stop()

    def logs(self) -> list[tuple[str, int]]:
        return [(os.fspath(service.log), 20) for service in self.started]

    def show_measurements(self, *names: str) -> None:
        """Prints the measurements NAMES that exist, then warns of every one during which other
        processes used more than 0.15 cores."""
        shown = "\n".join(self.measurements[name] for name in names if name in self.measurements)
        if shown:
            print(shown)
        for warning in measure.unreliable(shown):
            warn(warning)


G = TypeVar("G", bound=Group)


class GroupPair(Pair, Generic[G]):
    """A pair whose sides run against its group's service(s): `owner` is that group, typed."""

    def __init__(self, owner: G) -> None:
        super().__init__()
        self.owner = owner

    @property
    def group(self) -> G:
        return self.owner


def pgbench_target(bench: Bench, database: str) -> list[Argument]:
    """pgbench's connection arguments for DATABASE on the bench's Postgres."""
    return ["-h", "127.0.0.1", "-p", str(bench.pg_port), "-U", "postgres", database]


def echo(text: str) -> None:
    """A pair's own output, passed through as the run goes."""
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def parse_ours(output: str, metric: str) -> Rate:
    """The last `<metric>=<number>` line of OUTPUT and its `_p50=<ms> ms p99=<ms> ms` line, if any."""
    values = re.findall(rf"^{re.escape(metric)}=([0-9.eE+-]+)", output, re.MULTILINE)
    if not values:
        raise BenchError(f"our output has no {metric}=<number> line")
    stem = metric.removesuffix("_per_second")
    latencies = re.findall(rf"^{re.escape(stem)}_p50=([0-9.]+) ms p99=([0-9.]+) ms", output, re.MULTILINE)
    p50, p99 = (float(latencies[-1][0]), float(latencies[-1][1])) if latencies else (None, None)
    return Rate(float(values[-1]), p50, p99)
