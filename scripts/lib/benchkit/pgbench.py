"""pgbench's rate and the latencies of its per-transaction logs."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import measure, openloop
from .bench import Argument, Bench, BenchError, check, run, run_timed, say, warn
from .pairs import Rate

_TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)


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


def latencies(prefix: Path) -> list[int]:
    """The latencies in µs, sorted, of the transactions in the per-transaction logs PREFIX.* (pgbench -l
    --log-prefix=PREFIX; each line: client transaction latency_us script epoch us [lag_us]), which it
    then removes. Under --rate a transaction's latency counts from its scheduled start, so the time it
    waited for a free client is in it (pgbench's own coordinated-omission correction)."""
    values: list[int] = []
    for log in sorted(prefix.parent.glob(prefix.name + ".*")):
        with log.open(encoding="ascii") as handle:
            values.extend(int(line.split()[2]) for line in handle if line.strip())
        log.unlink()
    values.sort()
    return values


def quantile_ms(values: Sequence[int], fraction: float) -> float:
    """The FRACTION quantile (nearest rank at or below) in ms of sorted VALUES in µs."""
    return values[min(int(len(values) * fraction), len(values) - 1)] / 1000


def latency(prefix: Path) -> tuple[float, float] | None:
    """p50 and p99 in ms of the transactions in the logs PREFIX.* (removed); None when they hold none."""
    values = latencies(prefix)
    if not values:
        return None
    return quantile_ms(values, 0.50), quantile_ms(values, 0.99)


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


def open_loop_reference(
    bench: Bench,
    scenario: str,
    arguments: list[Argument],
    capacity: float,
    prefix: Path,
    service_pid: int | None,
    settle: Callable[[], None],
    run_arguments: Callable[[int], Sequence[Argument]] = lambda _: (),
) -> int:
    """pgbench ARGUMENTS at each rate the open loop ran ours at (`openloop.rates(CAPACITY)`; `--rate`:
    Poisson arrivals at a fixed mean rate, latency from each transaction's scheduled start), SERVICE_PID
    paused (until the caller's `resume_paused`): what the database alone answers at the same arrival
    rate on this machine and its disk, the yardstick for our open-loop latency. Each rate runs the open loop's
    warm-up unmeasured, SETTLE, then its seconds measured (`openloop.seconds_and_warmup`);
    RUN_ARGUMENTS(i) are added to the i-th run (0, 1, ...: the warm-up and measurement of each rate in
    turn, e.g. distinct ids). Each measured run is a JSON line in BENCH_DIR/open-loop.jsonl, scenario
    SCENARIO-reference (the table, the results file and the charts), its cores are measured like ours
    (`reference_SCENARIO_open_<percent>_cpu_cores`, `_wal`), and the summary gets
    SCENARIO_open_<percent>_reference_p99_ms and _p999_ms. Returns the transactions pgbench made,
    warm-ups included."""
    seconds, warmup_seconds = openloop.seconds_and_warmup(bench)
    command: list[Argument] = [bench.tool("pgbench"), *arguments]
    made = 0
    bench.pause(service_pid)
    for index, (fraction, rate) in enumerate(openloop.rates(capacity)):
        percent = round(float(fraction) * 100)
        say(f"{scenario}: reference at {percent}%, pgbench --rate {rate} ({seconds}s after {warmup_seconds}s)")
        warm = [*command, *run_arguments(2 * index), "--rate", str(rate), "-T", warmup_seconds]
        made += transactions(check(run(warm, merge_stderr=True), f"pgbench ({scenario} at {rate}/s, warm-up)").output)
        settle()
        for stale in prefix.parent.glob(prefix.name + ".*"):
            stale.unlink()
        measurement = measure.Measurement(bench, service_pid, wal=True)
        measured = [*command, *run_arguments(2 * index + 1), "--rate", str(rate), "-T", seconds, "-l", f"--log-prefix={prefix}"]
        finished = check(run_timed(measured, merge_stderr=True), f"pgbench ({scenario} at {rate}/s)")
        count = transactions(finished.output)
        made += count
        cores = measurement.end(f"reference_{scenario}_open_{percent}", finished.tool_seconds, count)
        values = latencies(prefix)
        if not values:
            raise BenchError(f"pgbench ({scenario} at {rate}/s) logged no transactions")
        quantiles = {name: quantile_ms(values, q) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))}
        quantiles["max"] = values[-1] / 1000
        failed = _FAILED.search(finished.output)
        result = {
            "scenario": f"{scenario}-reference",
            "tool": "pgbench",
            "label": fraction,
            "rate": rate,
            "seconds": int(seconds),
            "throughput": round(tps(finished.output), 1),
            "completed": count,
            "failures": int(failed.group(1)) if failed else 0,
            "latency_ms": {"count": len(values), **quantiles},
        }
        with (bench.dir / "open-loop.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(result, sort_keys=True) + "\n")
        shown = " ".join(f"{name}={value:.2f}" for name, value in quantiles.items())
        print(f"open_loop_reference scenario={scenario} tool=pgbench rate={rate}/s throughput={result['throughput']} failures={result['failures']}")
        print(f"open_loop_reference_latency_ms {shown} (scheduled start -> committed)")
        print(cores)
        for warning in measure.unreliable(cores):
            warn(warning)
        bench.add_summary(
            **{
                f"{scenario}_open_{percent}_reference_p99_ms": f"{quantiles['p99']:.2f}",
                f"{scenario}_open_{percent}_reference_p999_ms": f"{quantiles['p99.9']:.2f}",
            }
        )
    return made
