"""Measures idle processes from /proc: CPU (user + system ticks) and context switches of every
thread, over a window; plus Postgres transactions and Redis commands per second. Used by
scripts/idle-cpu; prints a table and exits 1 when a service used LIMIT% of a core or more."""

import argparse
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def switches(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{task}/status"):
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


def postgres_transactions(port):
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "booking", "-Atc",
         "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database"],
        capture_output=True, text=True, check=True)
    return int(out.stdout.strip() or 0)


def redis_commands(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "stats"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--limit", type=float, default=1.0, help="percent of a core a service may use")
    parser.add_argument("--pg-port", type=int)
    parser.add_argument("--redis-port", type=int)
    parser.add_argument("services", nargs="+", help="name=pid")
    args = parser.parse_args()
    services = [(name, int(pid)) for name, pid in (s.split("=", 1) for s in args.services)]
    before = {pid: (cpu_ticks(pid), switches(pid)) for _, pid in services}
    pg0 = postgres_transactions(args.pg_port) if args.pg_port else None
    redis0 = redis_commands(args.redis_port) if args.redis_port else None
    time.sleep(args.seconds)
    over = []
    print(f"idle for {args.seconds:.0f} s on {os.cpu_count()} cores")
    print(f"{'service':<20} {'CPU (% of a core)':>18} {'wakeups/s':>10}")
    for name, pid in services:
        ticks, ctx = cpu_ticks(pid), switches(pid)
        percent = 100 * (ticks - before[pid][0]) / TICK / args.seconds
        print(f"{name:<20} {percent:>18.2f} {(ctx - before[pid][1]) / args.seconds:>10.1f}")
        if percent >= args.limit:
            over.append(name)
    if pg0 is not None:
        print(f"postgres: {(postgres_transactions(args.pg_port) - pg0) / args.seconds:.1f} transactions/s")
    if redis0 is not None:
        print(f"redis: {(redis_commands(args.redis_port) - redis0) / args.seconds:.1f} commands/s")
    if over:
        print(f"over {args.limit}% of a core: {', '.join(over)}", file=sys.stderr)
        return 1
    print(f"every service under {args.limit}% of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
