"""`platform-bench open-loop` at fixed arrival rates below a pair's measured capacity."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from . import measure
from .bench import Argument, Bench, BenchError, check, err, run_timed, say, warn
from .pairs import echo


def fractions() -> list[str]:
    return os.environ.get("BENCH_OPEN_FRACTIONS", "0.5 0.8").split()


def rates(capacity: float) -> list[tuple[str, int]]:
    """(fraction, arrivals per second) at each of BENCH_OPEN_FRACTIONS of CAPACITY."""
    return [(fraction, max(round(capacity * float(fraction)), 1)) for fraction in fractions()]


def seconds_and_warmup(bench: Bench) -> tuple[str, str]:
    """BENCH_OPEN_SECONDS (default BENCH_SECONDS) and BENCH_OPEN_WARMUP (2): each open-loop run's."""
    return os.environ.get("BENCH_OPEN_SECONDS", str(bench.seconds)), os.environ.get("BENCH_OPEN_WARMUP", "2")


def run_open_loop(
    bench: Bench,
    pair: str,
    capacity: float,
    settle: Callable[[], None],
    arguments: list[str],
    seconds: str | None = None,
    service_pid: int | tuple[int, ...] | None = None,
) -> list[Path]:
    """`platform-bench open-loop ARGUMENTS` at each of BENCH_OPEN_FRACTIONS (default "0.5 0.8") of
    CAPACITY (per second), each run BENCH_OPEN_SECONDS (default BENCH_SECONDS) after BENCH_OPEN_WARMUP
    (2) seconds at the same rate (SECONDS instead, when given), SETTLE (e.g. a vacuum) before each. Every run's output passes through
    and stays in BENCH_DIR/open-PAIR-<fraction>.out (returned); its JSON line goes to
    BENCH_DIR/open-loop.jsonl (the results file and charts); the summary gets
    bench_PAIR_open_<percent>_rate, _throughput, _p50_ms, _p99_ms, _p999_ms and _failures.

    Each run is measured like a pair (PAIR_open_<percent>_cpu_cores and _wal: SERVICE_PID's CPU, or
    that of a tuple of processes together, as the service's; platform-bench's as the load
    generator's): the cores the hypervisor took (steal) and the checkpoints that started during the
    run tell a tail the machine made from one the service made. The summary gets _steal_cores and
    _checkpoints too."""
    assert bench.platform_bench is not None
    default_seconds, warmup = seconds_and_warmup(bench)
    seconds = seconds or default_seconds
    outputs = []
    for fraction, rate in rates(capacity):
        percent = round(float(fraction) * 100)
        settle()
        say(f"{pair}: open loop at {percent}% of {capacity:.0f}/s = {rate}/s ({seconds}s after {warmup}s)")
        command: list[Argument] = [bench.platform_bench, "open-loop", *arguments, "--rate", str(rate), "--seconds", seconds]
        command += ["--warmup", warmup, "--label", fraction, "--json", bench.dir / "open-loop.jsonl"]
        measurement = measure.Measurement(bench, service_pid, wal=True)
        finished = run_timed(command)
        # The counters span the warm-up too: per arrival served in the warm-up and the window.
        conditions = measurement.end(f"{pair}_open_{percent}", finished.tool_seconds, arrivals_served(finished.output))
        output = bench.dir / f"open-{pair}-{fraction}.out"
        output.write_text(finished.output + conditions + "\n", encoding="utf-8")
        echo(finished.output)
        print(conditions)
        for warning in measure.unreliable(conditions):
            warn(warning)
        if not finished.ok:
            err(f"{pair}: platform-bench open-loop failed at {rate}/s")
            check(finished, "platform-bench open-loop")
        throughput = re.search(r"^open_loop_throughput=(\S+)", finished.output, re.MULTILINE)
        failures = re.search(r"^open_loop_throughput=.*\bfailures=(\d+)", finished.output, re.MULTILINE)
        latency = re.search(r"^open_loop_latency_ms (.*)$", finished.output, re.MULTILINE)
        if throughput is None or latency is None:
            raise BenchError(f"{pair}: could not read the open-loop results at {rate}/s")
        quantiles = dict(part.split("=", 1) for part in latency.group(1).split() if "=" in part)
        prefix = f"{pair}_open_{percent}"
        bench.add_summary(
            **{
                f"{prefix}_rate": rate,
                f"{prefix}_throughput": throughput.group(1),
                f"{prefix}_p50_ms": quantiles.get("p50", ""),
                f"{prefix}_p99_ms": quantiles.get("p99", ""),
                f"{prefix}_p999_ms": quantiles.get("p99.9", ""),
                f"{prefix}_failures": failures.group(1) if failures else "",
                f"{prefix}_steal_cores": _word(conditions, "steal"),
                f"{prefix}_checkpoints": _word(conditions, "checkpoints"),
                f"{prefix}_cpu_us_per_arrival": _word(conditions, "total"),
            }
        )
        outputs.append(output)
    return outputs


def _word(lines: str, name: str) -> str:
    """The value of the first NAME=value in LINES ("" when none)."""
    found = re.search(rf"\b{re.escape(name)}=(\S+)", lines)
    return found.group(1) if found else ""


def served(output: str, name: str) -> int:
    """The count NAME of an open-loop output's open_loop_served line."""
    found = re.search(rf"^open_loop_served .*\b{re.escape(name)}=(\d+)", output, re.MULTILINE)
    return int(found.group(1)) if found else 0


def arrivals_served(output: str) -> int:
    """The arrivals an open-loop run served, warm-up included: each arrival is one hold (bookings and
    saga: the hold comes first) or one webhook (webhooks)."""
    return max(served(output, "holds"), served(output, "webhooks"))


def failures(output: str) -> int:
    """Failed arrivals of an open-loop output, warm-up included."""
    total = sum(int(n) for n in re.findall(r"^open_loop_throughput=.*\bfailures=(\d+)", output, re.MULTILINE))
    total += sum(int(n) for n in re.findall(r"^open_loop_served .*\bfailures_in_warmup=(\d+)", output, re.MULTILINE))
    return total
