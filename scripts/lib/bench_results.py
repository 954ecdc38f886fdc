"""scripts/bench's results (standard library only).

    bench_results.py table JSONL [--summary FILE]
        The open-loop runs (one JSON object a line, as `platform-bench open-loop --json` and the saga
        pair's confirmation measurement write them) as a table, with the latency goals at 80% of
        capacity; --summary appends bench_<scenario>_open_goal=yes|NO lines to FILE.

    bench_results.py json SUMMARY JSONL --seconds N --commit REV
        One JSON document on stdout: the machine, the commit, every summary line (bench_<key>=<value>),
        the closed-loop pairs, and every open-loop run. scripts/bench-chart draws from it.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

# Open-loop latency goals: (scenario, fraction of capacity, percentile key, limit in ms, what).
GOALS = [
    ("webhooks", 0.8, "p99", 25.0, "webhook answered"),
    ("bookings", 0.8, "p99", 50.0, "hold + booking answered"),
    ("saga-confirmation", 0.8, "p99", 100.0, "webhook received -> booking confirmed"),
]

# A scenario's "-reference" runs: the reference tool (pgbench --rate) at the same arrival rates.
ORDER = ["webhooks", "webhooks-reference", "bookings", "bookings-reference", "saga", "saga-confirmation"]


def read_runs(path):
    runs = []
    if not os.path.exists(path):
        return runs
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError as error:
                sys.exit(f"{path}:{number}: not JSON ({error})")
    return runs


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(args):
    runs = read_runs(args.jsonl)
    runs.sort(key=lambda r: (ORDER.index(r["scenario"]) if r["scenario"] in ORDER else 99, float(r.get("label") or 0)))
    header = f"{'SCENARIO':<18} {'LOAD':>5} {'RATE/s':>7} {'DONE/s':>7} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'FAILED':>6}  GOAL"
    print(header)
    goals_met = {}
    for run in runs:
        latency = run.get("latency_ms", {})
        label = run.get("label") or ""
        try:
            load = f"{float(label) * 100:.0f}%"
        except ValueError:
            load = label or "-"
        failed = (run.get("failures") or 0) + (run.get("failures_in_warmup") or 0) + (run.get("unconfirmed") or 0)
        goal_text = ""
        for scenario, fraction, key, limit, what in GOALS:
            if scenario == run["scenario"] and label and abs(float(label) - fraction) < 1e-9:
                value = latency.get(key)
                met = value is not None and value < limit and failed == 0
                goals_met[scenario] = goals_met.get(scenario, True) and met
                goal_text = f"{key} < {limit:.0f} ms ({what}): {'yes' if met else 'NO'}"
        print(
            f"{run['scenario']:<18} {load:>5} {fmt(run.get('rate'), 0):>7} {fmt(run.get('throughput'), 0):>7} "
            f"{fmt(latency.get('p50')):>8} {fmt(latency.get('p99')):>8} {fmt(latency.get('p99.9')):>8} {fmt(latency.get('max')):>8} "
            f"{failed:>6}  {goal_text}"
        )
    print(
        "(latency in ms: client runs from each request's due time; saga-confirmation in SQL from the webhook's receipt;"
        " -reference: pgbench --rate running the pair's reference transaction at the same rate, from each transaction's scheduled start)"
    )
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as handle:
            for scenario, met in goals_met.items():
                handle.write(f"bench_{scenario.replace('-', '_')}_open_goal={'yes' if met else 'NO'}\n")


def number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def command_output(*command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine():
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": memory,
        "kernel": platform.release(),
        "os": command_output("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"),
        "swift": command_output("swift", "--version"),
        "postgres": command_output("pg_config", "--version"),
        "redis": command_output("redis-server", "--version"),
    }


def results(args):
    summary = {}
    with open(args.summary, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("bench_") and "=" in line:
                key, value = line.split("=", 1)
                summary[key[len("bench_"):]] = number(value)
    pairs = {}
    for key, value in summary.items():
        if key.endswith("_ours") and "_open_" not in key:
            name = key[: -len("_ours")]
            pairs[name] = {
                field: summary.get(f"{name}_{field}")
                for field in ("ours", "theirs", "ratio", "ours_p50_ms", "ours_p99_ms", "theirs_p50_ms", "theirs_p99_ms", "check", "ratio_goal", "ratio_goal_met", "ratio_of_medians",
                              "alone_ratio", "alone_within_10pct", "alone_spread", "alone_beyond_spread",
                              "alone_change_of_medians", "alone_within_10pct_of_medians", "alone_rounds_p")
                if f"{name}_{field}" in summary
            }
    document = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": args.commit,
        "seconds": args.seconds,
        "machine": machine(),
        "pairs": pairs,
        "open_loop": read_runs(args.jsonl),
        "summary": summary,
    }
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("table")
    t.add_argument("jsonl")
    t.add_argument("--summary")
    t.set_defaults(run=table)
    j = commands.add_parser("json")
    j.add_argument("summary")
    j.add_argument("jsonl")
    j.add_argument("--seconds", type=int, required=True)
    j.add_argument("--commit", required=True)
    j.set_defaults(run=results)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
