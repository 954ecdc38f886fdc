"""pgbench's rate and the latencies of its per-transaction logs."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import measure
from .bench import Argument, Bench, BenchError, check, run, run_timed
from .pairs import Rate

_TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)


def tps(output: str) -> float:
    """The tps of pgbench's OUTPUT (PG 14+: "without initial connection time"; older: "excluding
    connections establishing")."""
    found = _TPS.search(output)
    if found is None:
        raise BenchError("pgbench's output has no tps line")
    return float(found.group(1))


def transactions(output: str) -> int:
    found = _PROCESSED.search(output)
    return int(found.group(1)) if found else 0


def latency(prefix: Path) -> tuple[float, float] | None:
    """p50 and p99 in ms of the transactions in the per-transaction logs PREFIX.* (pgbench -l
    --log-prefix=PREFIX; each line: client transaction latency_us script epoch us), which it then
    removes; None when they hold none."""
    values: list[int] = []
    for log in sorted(prefix.parent.glob(prefix.name + ".*")):
        with log.open(encoding="ascii") as handle:
            values.extend(int(line.split()[2]) for line in handle if line.strip())
        log.unlink()
    if not values:
        return None
    values.sort()
    count = len(values)
    p50 = values[int(count * 0.50)]
    p99 = values[min(int(count * 0.99), count - 1)]
    return p50 / 1000, p99 / 1000


@dataclasses.dataclass
class Reference:
    """A measured pgbench reference run: its rate with p50/p99, where the cores went, and the
    transactions of the warm-up and of the measurement."""

    rate: Rate
    cores: str
    warmup_transactions: int
    transactions: int


def measured_reference(
    bench: Bench,
    what: str,
    arguments: list[Argument],
    warmup_seconds: int,
    prefix: Path,
    before_measurement: Callable[[], None],
    service_pid: int | None,
    warmup_arguments: Sequence[Argument] = (),
    run_arguments: Sequence[Argument] = (),
) -> Reference:
    """pgbench ARGUMENTS for a warm-up of WARMUP_SECONDS (not measured: the first seconds on fresh
    tables run slower), BEFORE_MEASUREMENT, then for BENCH_SECONDS measured: the cores (SERVICE_PID's
    too, paused by the caller), the WAL per transaction, and each transaction's latency (logs PREFIX.*).
    Prints its output (less the version line), the p50/p99 and the cores on stderr."""
    command: list[Argument] = [bench.tool("pgbench"), *arguments]
    warm = check(run([*command, *warmup_arguments, "-T", str(warmup_seconds)], merge_stderr=True), f"pgbench ({what} warm-up)")
    before_measurement()
    for stale in prefix.parent.glob(prefix.name + ".*"):
        stale.unlink()
    measurement = measure.Measurement(bench, service_pid, wal=True)
    measured = [*command, *run_arguments, "-T", str(bench.seconds), "-l", f"--log-prefix={prefix}"]
    finished = check(run_timed(measured, merge_stderr=True), f"pgbench ({what})")
    count = transactions(finished.output)
    cores = measurement.end(f"reference_{what}s", finished.tool_seconds, count)
    sys.stderr.write("".join(line + "\n" for line in finished.output.splitlines() if not line.startswith("pgbench (")))
    quantiles = latency(prefix)
    shown = "n/a n/a" if quantiles is None else f"{quantiles[0]:.3f} {quantiles[1]:.3f}"
    print(f"pgbench {what} transaction p50/p99: {shown} ms", file=sys.stderr)
    print(cores, file=sys.stderr)
    p50, p99 = quantiles if quantiles is not None else (None, None)
    return Reference(Rate(tps(finished.output), p50, p99), cores, transactions(warm.output), count)
