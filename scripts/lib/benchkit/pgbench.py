"""pgbench's rate and the latencies of its per-transaction logs."""

from __future__ import annotations

import re
from pathlib import Path

from .bench import BenchError

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
