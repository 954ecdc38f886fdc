"""Where the cores went during a measurement, and Postgres' WAL per transaction.

The service, Redis, Postgres (the postmaster, its live backends, and the backends that exited, through
the postmaster's cutime/cstime), the load generator (its own user+sys), the kernel's interrupt work
(`irq`: mostly loopback networking in softirq, which no process is charged for), the time the
hypervisor gave the virtual CPUs to someone else (`steal`), and everything else on the machine
(`other`: e.g. a build running at the same time). Either of the last two over 0.15 cores makes a
run's numbers unreliable, and says why. The WAL line counts the checkpoints that started in the
window: a checkpoint's writes and the full-page images after it slow commits for a while.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from .bench import Bench

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNRELIABLE_OTHER_CORES = 0.15
UNRELIABLE_STEAL_CORES = 0.15


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None


def ticks_of(pid: int | None, with_children: bool = False) -> int:
    """utime+stime (and cutime+cstime: the children it reaped) of PID in clock ticks; 0 when gone."""
    fields = _stat_fields(pid) if pid else None
    if fields is None:
        return 0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postgres_ticks(bench: Bench) -> int:
    """The postmaster with the backends it reaped, plus its live children."""
    postmaster = _pid_in(bench.dir / "postgres" / "postmaster.pid")
    if postmaster is None:
        return 0
    total = ticks_of(postmaster, with_children=True)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[1] == str(postmaster):
                total += int(fields[11]) + int(fields[12])
    return total


@dataclasses.dataclass
class CpuSample:
    service: int
    redis: int
    postgres: int
    busy: int
    irq: int
    steal: int
    at: float

    @staticmethod
    def take(bench: Bench, service_pid: int | tuple[int, ...] | None) -> CpuSample:
        cpu = machine_ticks()
        # user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
        busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7]
        return CpuSample(
            service=sum(ticks_of(pid) for pid in service_pid) if isinstance(service_pid, tuple) else ticks_of(service_pid),
            redis=ticks_of(_pid_in(bench.dir / "redis" / "redis.pid")),
            postgres=postgres_ticks(bench),
            busy=busy,
            irq=cpu[5] + cpu[6],
            steal=cpu[7],
            at=time.time(),
        )


@dataclasses.dataclass
class WalSample:
    lsn: int
    syncs: int
    writes: int
    commits: int
    checkpoints: int

    @staticmethod
    def take(bench: Bench) -> WalSample:
        row = bench.psql(
            "postgres",
            "SELECT pg_current_wal_lsn() - '0/0', w.wal_sync, w.wal_write, (SELECT sum(xact_commit) FROM pg_stat_database),"
            " (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter) FROM pg_stat_wal w",
            separator=" ",
        )
        lsn, syncs, writes, commits, checkpoints = row.split()
        return WalSample(int(float(lsn)), int(syncs), int(writes), int(commits), int(checkpoints))


class Measurement:
    """A snapshot of the CPU ticks (and with `wal`, of Postgres' WAL counters) at its start;
    `end` reports the differences."""

    def __init__(self, bench: Bench, service_pid: int | tuple[int, ...] | None, wal: bool = False) -> None:
        """SERVICE_PID: the service's process, or a tuple of them (their CPU together is `service`)."""
        self.bench = bench
        self.service_pid = service_pid
        self.cpu = CpuSample.take(bench, service_pid)
        self.wal = WalSample.take(bench) if wal else None

    def end(self, label: str, tool_seconds: float, transactions: int = 0) -> str:
        """LABEL_cpu_cores ... and, when the start took a WAL snapshot, LABEL_wal ... (one line each)."""
        start, stop = self.cpu, CpuSample.take(self.bench, self.service_pid)
        window = max((stop.at - start.at) * CLOCK_TICKS, 1.0)
        cores = os.cpu_count() or 1
        service, redis = stop.service - start.service, stop.redis - start.redis
        postgres, busy, irq = stop.postgres - start.postgres, stop.busy - start.busy, stop.irq - start.irq
        steal = stop.steal - start.steal
        tool = tool_seconds * CLOCK_TICKS
        other = max(busy - irq - steal - service - redis - postgres - tool, 0)
        lines = [
            f"{label}_cpu_cores service={service / window:.2f} redis={redis / window:.2f} postgres={postgres / window:.2f}"
            f" load_generator={tool / window:.2f} irq={irq / window:.2f} other={other / window:.2f}"
            f" steal={steal / window:.2f} idle={cores - busy / window:.2f} (of {cores}, over {stop.at - start.at:.1f} s)"
        ]
        if transactions > 0:
            lines.append(per_transaction(label, transactions, service=service, redis=redis, postgres=postgres, load_generator=tool, irq=irq))
        if self.wal is not None:
            # Backends publish their WAL counters at most once a second: let them, before reading.
            time.sleep(1.2)
            first, last = self.wal, WalSample.take(self.bench)
            per = max(transactions, 1)
            syncs = last.syncs - first.syncs
            lines.append(
                f"{label}_wal bytes_per_txn={(last.lsn - first.lsn) / per:.0f} fsyncs={syncs}"
                f" txns_per_fsync={(per / syncs if syncs > 0 else 0):.1f} writes={last.writes - first.writes}"
                f" commits={last.commits - first.commits} checkpoints={last.checkpoints - first.checkpoints}"
                " (all databases, incl. the relay)"
            )
        return "\n".join(lines)


def machine_ticks() -> list[int]:
    """The whole machine's CPU since boot, all cores together, in clock ticks (`/proc/stat`'s first
    line: user nice system idle iowait irq softirq steal ...)."""
    with open("/proc/stat", encoding="ascii") as handle:
        return [int(value) for value in handle.readline().split()[1:]]


def steal_ticks() -> int:
    """The hypervisor's steal since boot, all cores together, in clock ticks."""
    return machine_ticks()[7]


def steal_warning(label: str, ticks: int, seconds: float) -> str | None:
    """A warning when the hypervisor took more than 0.15 cores (TICKS of steal over SECONDS) during
    LABEL, else None."""
    cores = ticks / CLOCK_TICKS / max(seconds, 0.001)
    if cores <= UNRELIABLE_STEAL_CORES:
        return None
    return f"the hypervisor took {cores:.2f} cores (steal) over the {seconds:.1f} s of {label}: that measurement is unreliable"


class StealWindow:
    """The hypervisor's steal from its creation to `warning`: every side of every pair is checked,
    not only those whose measurements print a cores line (the `SELECT 1`, `SET` and messaging pairs
    print none). Steal comes in bursts here, up to 0.74 of the two cores for seconds at a time."""

    def __init__(self) -> None:
        self.ticks = steal_ticks()
        self.at = time.time()

    def warning(self, label: str) -> str | None:
        return steal_warning(label, steal_ticks() - self.ticks, time.time() - self.at)


def per_transaction(label: str, transactions: int, **ticks: float) -> str:
    """LABEL_cpu_us_per_txn: the CPU each of TICKS (clock ticks over the window) took per transaction,
    in microseconds, and their total. One unit of work costs more at a moderate load than at
    saturation, where every wake-up, system call and fsync serves several requests: the open loop's
    lines at 50% and 80% set against the closed loop's show by how much, and in which process."""
    micros = {name: value * 1_000_000 / CLOCK_TICKS / transactions for name, value in ticks.items()}
    parts = " ".join(f"{name}={value:.0f}" for name, value in micros.items())
    return f"{label}_cpu_us_per_txn {parts} total={sum(micros.values()):.0f}"


def unreliable(lines: str) -> list[str]:
    """Warnings for every cores line during which other processes, or the hypervisor (steal), took
    more than 0.15 cores."""
    warnings = []
    for line in lines.splitlines():
        if "_cpu_cores " not in line:
            continue
        label = line.split()[0]
        for word in line.split():
            if word.startswith("other=") and float(word[6:]) > UNRELIABLE_OTHER_CORES:
                warnings.append(f"other processes used {word[6:]} cores during {label}: that run's numbers are unreliable")
            if word.startswith("steal=") and float(word[6:]) > UNRELIABLE_STEAL_CORES:
                warnings.append(f"the hypervisor took {word[6:]} cores (steal) during {label}: that run's numbers are unreliable")
    return warnings
