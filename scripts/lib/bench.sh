# shellcheck shell=bash
#
# What the service pairs of `scripts/bench` (scripts/bench-booking/pair.sh,
# scripts/bench-payments/pair.sh) have in common: the service's private copy, databases, readiness,
# pause and stop; where the cores went during a measurement (and Postgres' WAL); the service's
# /metrics; pgbench's results. Sourced by scripts/bench after servers.sh (say, err, show_log_tail,
# pid_alive, stop_pid); reads $BENCH_DIR, $PG_BIN_DIR, $PG_PORT.

bench_psql() { "$PG_BIN_DIR/psql" -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }

# --- the service --------------------------------------------------------------------------------

# bench_copy_service BIN DEST: a private copy of the executable BIN at DEST (a rebuild of
# .build/release/<name> during the run cannot touch it).
bench_copy_service() {
    if [[ ! -x "$1" ]]; then
        err "$1 not found (build it: swift build -c release --product ${2##*/})"
        return 1
    fi
    cp "$1" "$2"
}

# bench_create_databases BIN DB...: creates the databases on the bench's Postgres and runs
# `BIN migrate` on each (its output in migrate.log next to BIN).
bench_create_databases() {
    local bin="$1" name="${1##*/}" log="${1%/*}/migrate.log" db create=() list
    shift
    for db in "$@"; do
        create+=(-c "CREATE DATABASE $db")
    done
    bench_psql postgres "${create[@]}" >&2 || return 1
    list="$*"
    say "$name migrate (databases ${list// / and })"
    for db in "$@"; do
        if ! DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$db" LOG_LEVEL=warning "$bin" migrate >>"$log" 2>&1; then
            show_log_tail "$log" 20
            err "$name migrate failed (database $db)"
            return 1
        fi
    done
}

# bench_wait_ready NAME URL PID LOG: waits (30 s at most) until the service PID answers URL/readyz.
bench_wait_ready() {
    local deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null --max-time 2 "$2/readyz" 2>/dev/null; do
        if ! pid_alive "$3" || ((SECONDS >= deadline)); then
            show_log_tail "$4" 30
            err "$1 serve did not become ready on $2"
            return 1
        fi
        sleep 0.1
    done
}

# The reference tools run with the service stopped (SIGSTOP): idle, it still polls the outbox and
# runs timers, which takes CPU and wake-ups from the cores the reference is measured on.
# bench_pause PID: stops it until bench_resume PID, or until the calling pair's subshell exits.
bench_pause() {
    kill -STOP "$1"
    printf '%s\n' "$1" >>"$BENCH_DIR/paused"
    # shellcheck disable=SC2064  # expand now: the trap runs in the pair's subshell
    trap "kill -CONT $1 2>/dev/null || true" EXIT
}

bench_resume() { kill -CONT "$1"; }

# bench_stop_service PID: stops the service (paused or not); nothing when PID is empty.
bench_stop_service() {
    if [[ -n "$1" ]]; then
        kill -CONT "$1" 2>/dev/null || true
        stop_pid "$1" 15
    fi
}

# bench_vacuum DB...: vacuums what the previous runs wrote, so that autovacuum does not start in the
# middle of the next measurement.
# bench_seed_reference_events DATABASE COUNT SEATS NAME_PREFIX HOST: the reference databases' events
# 00000000-0000-4000-8000-<12 digits>, a year ahead, each with SEATS seats priced 2500.
bench_seed_reference_events() {
    bench_psql "$1" >&2 <<SQL
INSERT INTO booking.events
SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, '$4 ' || i, '$5',
       now() + interval '365 days', now() + interval '365 days 3 hours', 'Europe/Berlin', 'EUR', now()
FROM generate_series(0, $2 - 1) AS i;
INSERT INTO booking.seats
SELECT e.event_id, 's' || lpad(g::text, 5, '0'), 2500, g - 1 FROM booking.events e, generate_series(1, $3) AS g;
SQL
}

bench_vacuum() {
    local db
    for db in "$@"; do
        bench_psql "$db" -c 'VACUUM ANALYZE' >&2
    done
}

# bench_analyze DB...: ANALYZE between a warm-up and its measurement. The warm-up starts on nearly
# empty tables, and the sessions plan their statements then, Postgres' foreign-key checks included;
# the plan chosen for a table of a page or two (a sequential scan) stays cached in the session until
# the table's statistics change, and is still used when the table has grown to thousands of rows.
# In production autovacuum analyzes a table within a minute of its first 50 changed rows, which a
# measurement of seconds never reaches. Measured on the bookings pair (2 cores): without it every
# booking's foreign-key checks scanned booking.bookings and booking.sagas whole (about 1,150
# sequential scans a second), Postgres spent 2.2 ms of CPU per booking and the pair made 514-567
# bookings/s; with it, 1.0 ms and 900/s. The reference gets the same after its warm-up.
bench_analyze() {
    local db
    for db in "$@"; do
        bench_psql "$db" -c 'ANALYZE' >&2
    done
}

# bench_analyze_after SECONDS DB...: bench_analyze after SECONDS, for a warm-up run by a driver
# that goes straight on to its measurement; run it in the background and wait for it before the
# measured window begins.
bench_analyze_after() {
    sleep "$1"
    shift
    bench_analyze "$@"
}

# bench_warmup OUT CMD...: runs CMD (a warm-up, not measured) with its output to OUT; on failure
# shows OUT on stderr.
bench_warmup() {
    local out="$1"
    shift
    "$@" >"$out" 2>&1 || {
        cat "$out" >&2
        return 1
    }
}

# bench_timed DIR CMD...: runs CMD; its user+sys seconds go to DIR/tool.seconds.
bench_timed() {
    local status=0 dir="$1" TIMEFORMAT
    shift
    # The `time` keyword reports on stderr; the command's own stderr goes through unchanged.
    { TIMEFORMAT='%U %S' && time "$@" 2>&3; } 3>&2 2>"$dir/tool.times" || status=$?
    awk '{ printf "%.2f\n", $1 + $2 }' "$dir/tool.times" >"$dir/tool.seconds"
    return "$status"
}

# --- CPU and WAL accounting ---------------------------------------------------------------------
# Where the cores went during a measurement: the service, Redis, Postgres (postmaster, live
# backends, and the backends that exited, through the postmaster's cutime/cstime), the load
# generator (its own user+sys), the kernel's interrupt work (`irq`: mostly loopback networking in
# softirq, which no process is charged for), and everything else on the machine (`other`: e.g. a
# build running at the same time, which makes the numbers unreliable).

_bench_ticks_of() { # PID [with-children]: utime+stime (+cutime+cstime) in clock ticks; 0 when gone
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
        echo 0
        return
    }
    stat="${stat##*) }" # fields from 3 (state) on; utime is field 14, i.e. the 12th here
    awk -v children="${2:-0}" '{ t = $12 + $13; if (children) t += $14 + $15; print t }' <<<"$stat"
}

_bench_postgres_ticks() {
    local postmaster sum child
    postmaster="$(sed -n 1p "$BENCH_DIR/postgres/postmaster.pid" 2>/dev/null || true)"
    [[ -n "$postmaster" ]] || {
        echo 0
        return
    }
    sum="$(_bench_ticks_of "$postmaster" 1)"
    for child in $(ps -o pid= --ppid "$postmaster" 2>/dev/null); do
        sum=$((sum + $(_bench_ticks_of "$child")))
    done
    echo "$sum"
}

_bench_cpu_sample() { # SERVICE_PID: service redis postgres busy irq epoch
    printf '%s %s %s %s %s %s\n' \
        "$(if [[ -n "$1" ]]; then _bench_ticks_of "$1"; else echo 0; fi)" \
        "$(_bench_ticks_of "$(cat "$BENCH_DIR/redis/redis.pid" 2>/dev/null || echo 0)")" \
        "$(_bench_postgres_ticks)" \
        "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)" \
        "$(awk '/^cpu / { print $7 + $8; exit }' /proc/stat)" \
        "$(date +%s.%N)"
}

# WAL position and counters: lsn wal_sync wal_write commits(all databases)
_bench_wal_sample() {
    bench_psql postgres -F ' ' -c "SELECT pg_current_wal_lsn() - '0/0', w.wal_sync, w.wal_write,
        (SELECT sum(xact_commit) FROM pg_stat_database) FROM pg_stat_wal w"
}

# bench_measure_begin SERVICE_PID [wal]: a snapshot of the CPU ticks (SERVICE_PID's: empty for
# none) and, with `wal`, of Postgres' WAL counters.
bench_measure_begin() {
    BENCH_CPU0="$(_bench_cpu_sample "$1")"
    BENCH_WAL0=""
    if [[ "${2:-}" == wal ]]; then
        BENCH_WAL0="$(_bench_wal_sample)"
    fi
}

# bench_measure_end LABEL TOOL_SECONDS SERVICE_PID [TRANSACTIONS]: prints where the cores went since
# bench_measure_begin (LABEL_cpu_cores ...) and, when that took a WAL snapshot, the WAL bytes and
# fsyncs per transaction (LABEL_wal ...).
bench_measure_end() {
    local label="$1" tool="$2" txns="${4:-0}" cpu1 wal1
    cpu1="$(_bench_cpu_sample "$3")"
    awk -v l="$label" -v tool="$tool" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v a="$BENCH_CPU0" -v b="$cpu1" '
        BEGIN {
            split(a, x, " "); split(b, y, " ")
            s = y[1] - x[1]; r = y[2] - x[2]; p = y[3] - x[3]; busy = y[4] - x[4]; q = y[5] - x[5]
            w = (y[6] - x[6]) * hz; if (w <= 0) w = 1
            other = busy - q - s - r - p - tool * hz; if (other < 0) other = 0
            printf "%s_cpu_cores service=%.2f redis=%.2f postgres=%.2f load_generator=%.2f irq=%.2f other=%.2f idle=%.2f (of %d, over %.1f s)\n",
                l, s / w, r / w, p / w, tool * hz / w, q / w, other / w, n - busy / w, n, (y[6] - x[6])
        }'
    [[ -n "$BENCH_WAL0" ]] || return 0
    # Backends publish their WAL counters at most once a second: let them, before reading.
    sleep 1.2
    wal1="$(_bench_wal_sample)"
    awk -v l="$label" -v t="$txns" -v a="$BENCH_WAL0" -v b="$wal1" '
        BEGIN {
            split(a, x, " "); split(b, y, " ")
            if (t <= 0) t = 1
            syncs = y[2] - x[2]; commits = y[4] - x[4]
            printf "%s_wal bytes_per_txn=%.0f fsyncs=%d txns_per_fsync=%.1f writes=%d commits=%d (all databases, incl. the relay)\n",
                l, (y[1] - x[1]) / t, syncs, (syncs > 0 ? t / syncs : 0), y[3] - x[3], commits
        }'
}

# bench_show_measurements DIR FILE...: prints the FILEs of DIR that exist (the measurements' cores,
# pool waits, ...), then warns on stderr of every measurement (DIR/*.cpu) during which other
# processes used more than 0.15 cores.
bench_show_measurements() {
    local dir="$1" f
    shift
    for f in "$@"; do
        if [[ -f "$dir/$f" ]]; then
            cat "$dir/$f"
        fi
    done
    awk '/_cpu_cores / { for (i = 1; i <= NF; i++) if ($i ~ /^other=/) { split($i, kv, "="); if (kv[2] > 0.15)
        printf "warning: other processes used %s cores during %s: that run'"'"'s numbers are unreliable\n", kv[2], $1 } }' \
        "$dir"/*.cpu >&2 2>/dev/null || true
}

# --- the service's metrics ----------------------------------------------------------------------

# bench_metrics URL: the service's /metrics text (empty when it does not answer).
bench_metrics() {
    # A service just resumed after minutes paused (SIGSTOP) may be busy for a while: three tries of
    # 10 s. Prints nothing (and warns) when none answered, so a check can tell "unreadable" from 0.
    local try
    for try in 1 2 3; do
        if curl -fsS --max-time 10 "$1/metrics" 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    warn "could not read $1/metrics (3 tries of 10 s)"
}

bench_metric() { # TEXT NAME: the value of the first sample whose name and labels contain NAME's parts
    # NAME is `metric` or `metric{a="x",b="y"}`; the exporter may order labels differently.
    awk -v want="$2" '
        BEGIN {
            i = index(want, "{"); name = (i ? substr(want, 1, i - 1) : want)
            n = (i ? split(substr(want, i + 1, length(want) - i - 1), labels, ",") : 0)
        }
        /^#/ { next }
        {
            j = index($1, "{"); base = (j ? substr($1, 1, j - 1) : $1)
            if (base != name) next
            for (k = 1; k <= n; k++) if (index($1, labels[k]) == 0) next
            print $2; found = 1; exit
        }
        END { if (!found) print 0 }' <<<"$1"
}

# bench_pool_waits BEFORE AFTER POOL...: per pool, the leases that had to queue for a connection and
# their mean wait, between two /metrics snapshots (the service records only leases that waited).
bench_pool_waits() {
    local before="$1" after="$2" pool line=""
    shift 2
    for pool in "$@"; do
        line+="$(awk -v c0="$(bench_metric "$before" "pool_wait_duration_seconds_count{pool=\"$pool\"}")" \
            -v c1="$(bench_metric "$after" "pool_wait_duration_seconds_count{pool=\"$pool\"}")" \
            -v s0="$(bench_metric "$before" "pool_wait_duration_seconds_sum{pool=\"$pool\"}")" \
            -v s1="$(bench_metric "$after" "pool_wait_duration_seconds_sum{pool=\"$pool\"}")" -v p="$pool" \
            'BEGIN { n = c1 - c0; printf "%s: %d leases waited, %.2f ms on average; ", p, n, (n > 0 ? (s1 - s0) / n * 1000 : 0) }')"
    done
    printf '%s\n' "${line%; }"
}

# --- pgbench ------------------------------------------------------------------------------------

# bench_pgbench_tps TEXT: the tps of pgbench's output TEXT (PG 14+: "tps = N (without initial
# connection time)"; older: "(excluding connections establishing)").
bench_pgbench_tps() {
    awk '/^tps = / && /without initial connection time|excluding connections/ { print $3; exit }' <<<"$1"
}

# bench_pgbench_latency PREFIX: "p50 p99" in ms (or "n/a n/a") of the transactions in pgbench's
# per-transaction logs PREFIX.* (-l --log-prefix=PREFIX), which it then removes.
bench_pgbench_latency() {
    # Per-transaction log: client transaction latency_us script epoch us
    cat "$1".* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a n/a"; exit }
        i50 = int(NR * 0.50) + 1; i99 = int(NR * 0.99) + 1; if (i99 > NR) i99 = NR
        printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }'
    rm -f "$1".*
}

# bench_pgbench_result WHAT OUT PREFIX CPU: a measured pgbench run's result for scripts/bench: on
# stderr its output (the file OUT, less the version line), the p50/p99 of its transactions (logs
# PREFIX.*, then removed) and the cores line (the file CPU); on stdout "tps p50 p99".
bench_pgbench_result() {
    local out lat
    out="$(cat "$2")"
    printf '%s\n' "$out" | grep -v '^pgbench (' >&2
    lat="$(bench_pgbench_latency "$3")"
    echo "pgbench $1 transaction p50/p99: $lat ms" >&2
    cat "$4" >&2
    printf '%s %s\n' "$(bench_pgbench_tps "$out")" "$lat"
}

# bench_pause_until_exit PID...: stops the running ones (SIGSTOP) until the calling pair's subshell
# exits (so a reference tool measures without our services taking cores). The subshell's EXIT trap
# resumes them, and scripts/bench resumes every paused one after each step as well
# (bench_resume_paused): bash runs a subshell's last external command in place of the subshell,
# without its EXIT trap (`$(theirs_payout)`, which ends with awk, left the other services stopped).
bench_pause_until_exit() {
    local pid paused=()
    for pid in "$@"; do
        if [[ -n "$pid" ]] && pid_alive "$pid"; then
            kill -STOP "$pid"
            paused+=("$pid")
            printf '%s\n' "$pid" >>"$BENCH_DIR/paused"
        fi
    done
    # shellcheck disable=SC2064  # expand now: the trap runs in the pair's subshell
    ((${#paused[@]} == 0)) || trap "kill -CONT ${paused[*]} 2>/dev/null || true" EXIT
}

# bench_resume_paused: resumes every service a step paused (main shell, after each step).
bench_resume_paused() {
    local pid
    [[ -s "$BENCH_DIR/paused" ]] || return 0
    while read -r pid; do
        kill -CONT "$pid" 2>/dev/null || true
    done <"$BENCH_DIR/paused"
    : >"$BENCH_DIR/paused"
}

# --- open loop ----------------------------------------------------------------------------------

# bench_open_loop PAIR CAPACITY SETTLE -- ARGS...: `platform-bench open-loop ARGS` at each fraction of
# BENCH_OPEN_FRACTIONS (default "0.5 0.8") of CAPACITY (the pair's saturated rate, per second), each
# run BENCH_OPEN_SECONDS (default BENCH_SECONDS) after BENCH_OPEN_WARMUP (2) seconds at the same rate,
# the command SETTLE (e.g. a vacuum and checkpoint) before each. Every run's output passes through
# and stays in $BENCH_DIR/open-PAIR-<fraction>.out; its JSON line goes to $BENCH_DIR/open-loop.jsonl
# (scripts/bench's results file and charts); the summary gets bench_PAIR_open_<percent>_rate,
# _throughput, _p50_ms, _p99_ms, _p999_ms and _failures. Returns 1 when a run failed to run.
bench_open_loop() {
    local pair="$1" capacity="$2" settle="$3" fraction rate pct out
    shift 4
    for fraction in ${BENCH_OPEN_FRACTIONS:-0.5 0.8}; do
        rate="$(awk -v c="$capacity" -v f="$fraction" 'BEGIN { r = c * f; printf "%.0f", (r < 1 ? 1 : r) }')"
        pct="$(awk -v f="$fraction" 'BEGIN { printf "%.0f", f * 100 }')"
        out="$BENCH_DIR/open-$pair-$fraction.out"
        "$settle"
        say "$pair: open loop at ${pct}% of $(printf '%.0f' "$capacity")/s = $rate/s (${BENCH_OPEN_SECONDS:-$SECS}s after ${BENCH_OPEN_WARMUP:-2}s)"
        "$BENCH_BIN" open-loop "$@" --rate "$rate" --seconds "${BENCH_OPEN_SECONDS:-$SECS}" --warmup "${BENCH_OPEN_WARMUP:-2}" \
            --label "$fraction" --json "$BENCH_DIR/open-loop.jsonl" >"$out" || {
            cat "$out"
            err "$pair: platform-bench open-loop failed at $rate/s"
            return 1
        }
        cat "$out"
        awk -v p="bench_${pair}_open_${pct}" -v rate="$rate" '
            /^open_loop_throughput=/ { split($1, t, "="); thr = t[2]; for (i = 2; i <= NF; i++) if ($i ~ /^failures=/) { split($i, f, "="); fail = f[2] } }
            /^open_loop_latency_ms / { for (i = 2; i <= NF; i++) { split($i, kv, "="); q[kv[1]] = kv[2] } }
            END { printf "%s_rate=%s\n%s_throughput=%s\n%s_p50_ms=%s\n%s_p99_ms=%s\n%s_p999_ms=%s\n%s_failures=%s\n",
                p, rate, p, thr, p, q["p50"], p, q["p99"], p, q["p99.9"], p, fail }' "$out" >>"$BENCH_DIR/summary"
    done
}

# bench_open_served FILE NAME: the count NAME of the open_loop_served line of an open-loop output.
bench_open_served() { sed -n "s/^open_loop_served .*\b$2=\([0-9]*\).*/\1/p" "$1"; }

# bench_open_failures FILE: failed arrivals of an open-loop output, warm-up included.
bench_open_failures() {
    awk '/^open_loop_throughput=/ { for (i = 2; i <= NF; i++) if ($i ~ /^failures=/) { split($i, f, "="); n += f[2] } }
        /^open_loop_served / { for (i = 2; i <= NF; i++) if ($i ~ /^failures_in_warmup=/) { split($i, f, "="); n += f[2] } }
        END { print n + 0 }' "$1"
}
