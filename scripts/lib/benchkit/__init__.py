"""benchkit: the benchmark harness of scripts/bench in one typed program (issue 19, item 6).

What `scripts/bench` does - start the bench's own Postgres and Redis, run each pair (our
code, then the reference tool on the same servers), count where the cores and the WAL went, check
the run, print the table and write the results JSON - written as Python modules a reader can follow:

    bench.py      the run's context: its folder, servers, executables, and running commands
                  (timed, paused, resumed)
    servers.py    the bench's Postgres and Redis, through scripts/lib/servers.sh (the one
                  implementation scripts/test and scripts/run use too)
    measure.py    where the cores went during a measurement, and Postgres' WAL per transaction
    metrics.py    a service's /metrics: samples and pool waits
    pgbench.py    pgbench's rate and its per-transaction latencies
    report.py     goals, the table, the summary lines and the results JSON
    pairs/        one module per service: its pairs (ours, theirs, open loop) and its group's setup,
                  checks and teardown
    __main__.py   the command line

`scripts/bench` runs it (`scripts/bench --help`: what a run does). Standard library only (Python 3.11,
Debian 12's); checked with `mypy --strict` and `ruff` (scripts/validate), tested by `scripts/bench
--self-test` (tests/, in scripts/test).
"""
