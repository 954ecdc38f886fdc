"""A service's Prometheus text (GET /metrics): samples and the pools' waits."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from .bench import warn


def fetch(url: str) -> str:
    """URL/metrics; empty (with a warning) when the service does not answer three tries of 10 s -
    a service just resumed after minutes paused (SIGSTOP) may be busy for a while - so a check can
    tell "unreadable" from 0."""
    for attempt in range(3):
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
                text: str = response.read().decode("utf-8")
                return text
        except (urllib.error.URLError, OSError):
            if attempt < 2:
                time.sleep(1)
    warn(f"could not read {url}/metrics (3 tries of 10 s)")
    return ""


def sample(text: str, name: str) -> float:
    """The value of the first sample whose name is NAME's and whose labels contain NAME's labels
    (`metric` or `metric{a="x",b="y"}`: the exporter may order labels differently); 0 when none."""
    base, _, labels = name.partition("{")
    wanted = [label for label in labels.rstrip("}").split(",") if label]
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key.partition("{")[0] == base and all(label in key for label in wanted):
            return float(value.split()[0])
    return 0.0


def pool_waits(before: str, after: str, *pools: str) -> str:
    """Per pool, the leases that had to queue for a connection and their mean wait between two
    snapshots (the services record only leases that waited)."""
    parts = []
    for pool in pools:
        count = f'pool_wait_duration_seconds_count{{pool="{pool}"}}'
        total = f'pool_wait_duration_seconds_sum{{pool="{pool}"}}'
        waited = int(sample(after, count) - sample(before, count))
        seconds = sample(after, total) - sample(before, total)
        parts.append(f"{pool}: {waited} leases waited, {(seconds / waited * 1000 if waited > 0 else 0):.2f} ms on average")
    return "; ".join(parts)
