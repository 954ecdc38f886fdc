# shellcheck shell=bash
# shellcheck disable=SC2317  # the pair functions are called by name from scripts/bench
# shellcheck disable=SC2034  # VERIFY_SAGA and SAGA_* are read by scripts/bench
#
# The booking saga's pair of `scripts/bench` (sourced by it, never executed):
#
#   saga   ours: `platform-bench saga` (Services/Bench/SagaBench.swift, AsyncHTTPClient), SAGA_CONCURRENCY
#          workers each looping: POST /v1/holds (1 or 2 seats; each worker's seats are its own) ->
#          POST /v1/bookings with an Idempotency-Key -> POST /v1/webhooks/stripe on payments-webhook, a
#          correctly signed payment_intent.succeeded of the booking's amount and currency. The driver
#          does not wait for the confirmation: payments-webhook's outbox -> the relay -> stream:payments
#          -> the saga coordinator in `booking serve` (group booking-saga) confirms asynchronously.
#          After the run the script waits (SAGA_CONFIRM_WAIT s at most) until every accepted webhook's
#          booking is confirmed and the outbox is published, then measures in SQL
#          (scripts/bench-saga/measure.sql): completed sagas/s = bookings whose confirmed_at lies in
#          the measured window / its seconds; p50/p99 = provider_events.received_at ->
#          bookings.confirmed_at over every saga whose webhook arrived in the window.
#          theirs: pgbench (scripts/bench-saga/saga.sql): the same three transactions (booking, webhook,
#          confirmation) statement for statement, back to back, SAGA_PGBENCH_CLIENTS clients, without
#          the services (no hold, HTTP, relay or stream); its number is pgbench's sagas/s, its p50/p99
#          the same SQL measurement over its rows.
#
# saga_setup (main shell, before the pairs) builds nothing: scripts/bench built the executables. It
# creates and migrates two databases (`saga`: both services share it, as under scripts/run, so one
# of their two outbox relays leads and publishes every row; `saga_ref` for pgbench) and starts
# `booking serve` and `payments-webhook serve` on free ports against it and Redis database 2 (apart
# from the other pairs' services: a second booking-saga group on the same stream would take our
# payment events). payments-webhook runs with PROVIDER_WORKER=false: the bench posts the provider's
# webhooks itself and needs no payment intents, so nothing consumes payment.requested. PAYMENT_WINDOW
# is 2 h, HOLD_TTL 30 min: nothing expires during a run. saga_verify (after the pairs) runs the
# invariant checks (`booking check --strict`, the checker of Services/Booking/Check, plus the consumer
# group's lag and the coordinator's handler failures); saga_teardown stops both services.
#
# The other pairs' services (if any ran before) are paused (SIGSTOP) during the saga measurements,
# and ours during the reference's. Each measurement prints where the cores went, by process and by
# thread group of each service, the CPU of Postgres backends by application, and WAL fsyncs.
#
# Tunables (environment): SAGA_BENCH_SECONDS (default BENCH_SECONDS if set, else 60: the goal is
# sustained for 60 s), SAGA_WARMUP (3 s, not measured), SAGA_CONCURRENCY (64), SAGA_BOOKING_DB_POOL (16),
# SAGA_BOOKING_REDIS_POOL (32), SAGA_PAYMENTS_DB_POOL (8), SAGA_PAYMENTS_REDIS_POOL (8),
# SAGA_PGBENCH_CLIENTS (8), SAGA_MAX_RATE (2000: sagas/s the driver's seat supply is sized for),
# SAGA_CONFIRM_WAIT (60 s), and BOOKING_BIN / PAYMENTS_BIN as for the other service pairs.

SAGA_SQL="$ROOT/scripts/bench-saga"
SAGA_SECS="${SAGA_BENCH_SECONDS:-${BENCH_SECONDS:-60}}"
SAGA_WARMUP="${SAGA_WARMUP:-3}"
SAGA_CONCURRENCY="${SAGA_CONCURRENCY:-64}"
SAGA_BOOKING_DB_POOL="${SAGA_BOOKING_DB_POOL:-16}"
SAGA_BOOKING_REDIS_POOL="${SAGA_BOOKING_REDIS_POOL:-32}"
SAGA_PAYMENTS_DB_POOL="${SAGA_PAYMENTS_DB_POOL:-8}"
SAGA_PAYMENTS_REDIS_POOL="${SAGA_PAYMENTS_REDIS_POOL:-8}"
SAGA_PGBENCH_CLIENTS="${SAGA_PGBENCH_CLIENTS:-8}"
SAGA_MAX_RATE="${SAGA_MAX_RATE:-2000}"
SAGA_CONFIRM_WAIT="${SAGA_CONFIRM_WAIT:-60}"
SAGA_SEATS=10000
SAGA_API_KEY="bench-saga-client-key"
SAGA_ADMIN_TOKEN="bench-saga-admin-token"
SAGA_STRIPE_SECRET="whsec_bench_saga_stripe_signing_secret"
SAGA_EVENTS_SECRET="whsec_YmVuY2gtc2FnYS1wYXltZW50LWV2ZW50cw==" # base64("bench-saga-payment-events")
SAGA_REDIS_DB=2
SAGA_DIR=""
SAGA_BOOKING_PID=""
SAGA_PAYMENTS_PID=""
SAGA_BOOKING_URL=""
SAGA_PAYMENTS_URL=""
SAGA_TAG=""
SAGA_REF_EVENTS=0

# --- setup --------------------------------------------------------------------------------------

saga_setup() {
    SAGA_DIR="$BENCH_DIR/saga"
    mkdir -p "$SAGA_DIR"
    if ! [[ "$SAGA_SECS" =~ ^[1-9][0-9]*$ ]]; then
        err "SAGA_BENCH_SECONDS must be a positive whole number of seconds, not '$SAGA_SECS'"
        return 1
    fi
    bench_copy_service "${BOOKING_BIN:-$BOOKING_BUILT_BIN}" "$SAGA_DIR/booking"
    bench_copy_service "${PAYMENTS_BIN:-$PAYMENTS_BUILT_BIN}" "$SAGA_DIR/payments-webhook"
    local ports database="postgres://postgres@127.0.0.1:$PG_PORT/saga" redis="redis://127.0.0.1:$REDIS_PORT/$SAGA_REDIS_DB"
    mapfile -t ports < <(free_ports 2)
    SAGA_BOOKING_URL="http://127.0.0.1:${ports[0]}"
    SAGA_PAYMENTS_URL="http://127.0.0.1:${ports[1]}"
    bench_create_databases "$SAGA_DIR/booking" saga saga_ref

    say "booking serve on $SAGA_BOOKING_URL (saga coordinator, DATABASE_POOL_SIZE=$SAGA_BOOKING_DB_POOL REDIS_POOL_SIZE=$SAGA_BOOKING_REDIS_POOL, PAYMENT_WINDOW=2h, HOLD_TTL=30m, LOG_LEVEL=warning)"
    DATABASE_URL="$database" REDIS_URL="$redis" ADMIN_TOKEN="$SAGA_ADMIN_TOKEN" API_KEYS="$SAGA_API_KEY" LOG_LEVEL=warning \
        HOLD_TTL=30m PAYMENT_WINDOW=2h DATABASE_POOL_SIZE="$SAGA_BOOKING_DB_POOL" REDIS_POOL_SIZE="$SAGA_BOOKING_REDIS_POOL" \
        MAX_HELD_SEATS_PER_CUSTOMER=10000 HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE=1000000 \
        "$SAGA_DIR/booking" serve --host 127.0.0.1 --port "${ports[0]}" >"$SAGA_DIR/booking.log" 2>&1 &
    SAGA_BOOKING_PID=$!
    # No provider worker: the bench plays the provider (it posts the signed webhooks), so nothing
    # needs payment intents, and PROVIDER_BASE_URL points nowhere.
    say "payments-webhook serve on $SAGA_PAYMENTS_URL (PROVIDER_WORKER=false: the bench sends the provider's webhooks itself; DATABASE_POOL_SIZE=$SAGA_PAYMENTS_DB_POOL REDIS_POOL_SIZE=$SAGA_PAYMENTS_REDIS_POOL)"
    DATABASE_URL="$database" REDIS_URL="$redis" ADMIN_TOKEN="$SAGA_ADMIN_TOKEN" \
        STRIPE_WEBHOOK_SECRETS="$SAGA_STRIPE_SECRET" PAYMENT_EVENTS_SECRETS="$SAGA_EVENTS_SECRET" \
        PROVIDER_API_KEY=sk_test_bench PROVIDER_BASE_URL=http://127.0.0.1:9 PROVIDER_WORKER=false LOG_LEVEL=warning \
        DATABASE_POOL_SIZE="$SAGA_PAYMENTS_DB_POOL" REDIS_POOL_SIZE="$SAGA_PAYMENTS_REDIS_POOL" \
        "$SAGA_DIR/payments-webhook" serve --host 127.0.0.1 --port "${ports[1]}" >"$SAGA_DIR/payments.log" 2>&1 &
    SAGA_PAYMENTS_PID=$!
    bench_wait_ready booking "$SAGA_BOOKING_URL" "$SAGA_BOOKING_PID" "$SAGA_DIR/booking.log"
    bench_wait_ready payments-webhook "$SAGA_PAYMENTS_URL" "$SAGA_PAYMENTS_PID" "$SAGA_DIR/payments.log"

    # The reference database: events 00000000-0000-4000-8000-<12 digits> with the same seats and
    # prices, enough for 2,500 sagas/s over the warm-up and the run (5,000 sagas per event).
    SAGA_REF_EVENTS=$((((SAGA_SECS + SAGA_WARMUP) * 2500 + 4999) / 5000))
    say "saga_ref: $SAGA_REF_EVENTS events x $SAGA_SEATS seats in SQL"
    bench_seed_reference_events saga_ref "$SAGA_REF_EVENTS" "$SAGA_SEATS" "saga reference" host-saga-bench
    bench_psql saga_ref >&2 <<SQL
CREATE SEQUENCE saga_ref_blocks MINVALUE 0 START 0;
VACUUM ANALYZE;
SQL
}

saga_teardown() {
    bench_stop_service "$SAGA_BOOKING_PID"
    bench_stop_service "$SAGA_PAYMENTS_PID"
    SAGA_BOOKING_PID=""
    SAGA_PAYMENTS_PID=""
}

# Quiet Postgres before a measurement: vacuum what was written (so autovacuum does not start in the
# middle of the next one) and checkpoint (so no checkpoint's full-page writes do).
_saga_settle() {
    bench_vacuum saga saga_ref
    bench_psql postgres -c 'CHECKPOINT' >&2
}

# --- where the time goes ------------------------------------------------------------------------

# _saga_stat_lines LABEL FILE...: "LABEL FILE <its first line>" for each FILE still readable (read by
# bash: no process per file, and a process or thread that just ended is skipped, not an error).
_saga_stat_lines() {
    local label="$1" f line
    shift
    for f in "$@"; do
        { read -r line <"$f"; } 2>/dev/null || continue
        printf '%s %s %s\n' "$label" "$f" "$line"
    done
}

# _saga_cpu_sample: booking payments redis postgres busy irq epoch: clock ticks of the services, Redis
# and Postgres (the postmaster with its exited children, and its live children), and busy and irq of
# the whole machine, read at one moment.
_saga_cpu_sample() {
    local postmaster redis
    postmaster="$(sed -n 1p "$BENCH_DIR/postgres/postmaster.pid" 2>/dev/null || echo 0)"
    redis="$(cat "$BENCH_DIR/redis/redis.pid" 2>/dev/null || echo 0)"
    {
        _saga_stat_lines machine /proc/stat
        _saga_stat_lines booking "/proc/$SAGA_BOOKING_PID/stat"
        _saga_stat_lines payments "/proc/$SAGA_PAYMENTS_PID/stat"
        _saga_stat_lines redis "/proc/$redis/stat"
        _saga_stat_lines postmaster "/proc/$postmaster/stat"
        # shellcheck disable=SC2046  # one file name per child
        _saga_stat_lines postgres $(ps -o pid= --ppid "$postmaster" 2>/dev/null | awk '{ print "/proc/" $1 "/stat" }')
    } | awk -v now="$(date +%s.%N)" '
        $1 == "machine" { busy = $4 + $5 + $6 + $9 + $10 + $11; irq = $9 + $10; next }
        {
            split(substr($0, index($0, ") ") + 2), f, " "); t = f[12] + f[13]
            if ($1 == "booking") tb = t; else if ($1 == "payments") tp = t; else if ($1 == "redis") tr = t
            else if ($1 == "postmaster") tg += t + f[14] + f[15]; else tg += t
        }
        END { printf "%d %d %d %d %d %d %s\n", tb, tp, tr, tg, busy, irq, now }'
}

# _saga_stat_ticks LABEL FILE...: "LABEL name FILE ticks" per /proc stat FILE, the name being the
# thread's with its numbers taken out (NIO-ELT-0-#1 -> NIO-ELT-N-#N), so each pool's threads add up.
_saga_stat_ticks() {
    _saga_stat_lines "$@" | awk '{
        first = index($0, "("); last = 0
        for (i = length($0); i > 0; i--) if (substr($0, i, 2) == ") ") { last = i; break }
        name = substr($0, first + 1, last - first - 1); gsub(/[0-9]+/, "N", name); gsub(/ /, "_", name)
        split(substr($0, last + 2), f, " ")
        print $1, name, $2, f[12] + f[13]
    }'
}

# _saga_threads: the services' threads.
_saga_threads() {
    _saga_stat_ticks booking /proc/"$SAGA_BOOKING_PID"/task/*/stat
    _saga_stat_ticks payments /proc/"$SAGA_PAYMENTS_PID"/task/*/stat
}

# _saga_backends: "application pid ticks" per Postgres backend of database saga.
_saga_backends() {
    local pid app files=() apps=()
    while IFS='|' read -r pid app; do
        files+=("/proc/$pid/stat")
        apps+=("$pid=${app:-none}")
    done < <(bench_psql postgres -F '|' -c "SELECT pid, application_name FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = 'saga'")
    _saga_stat_ticks backend "${files[@]}" | awk -v m="${apps[*]}" '
        BEGIN { n = split(m, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); app[p[1]] = p[2] } }
        { split($3, path, "/"); print app[path[3]], path[3], $4 }'
}

# _saga_accepted DB: accepted webhooks so far (the sagas a stretch of time carried).
_saga_accepted() { bench_psql "$1" -c "SELECT count(*) FROM payments.provider_events WHERE status = 'accepted'"; }

# _saga_snapshot N DB: snapshot N (0: start, 1: end) of the cores, threads, backends, sagas and WAL.
_saga_snapshot() {
    printf '%s\n' "$(_saga_cpu_sample)" >"$SAGA_DIR/cpu.$1"
    _saga_threads >"$SAGA_DIR/threads.$1"
    _saga_backends >"$SAGA_DIR/backends.$1"
    _saga_accepted "$2" >"$SAGA_DIR/sagas.$1"
    _bench_wal_sample >"$SAGA_DIR/wal.$1"
}

# _saga_report LABEL TOOL_SECONDS: where the cores went between the snapshots 0 and 1 (TOOL_SECONDS:
# the load generator's CPU seconds meanwhile), by process, by thread group of each service, and
# Postgres backends by application, and the WAL per saga; to LABEL.cpu in SAGA_DIR and stdout.
_saga_report() {
    local label="$1" tool="$2" hz secs sagas
    hz="$(getconf CLK_TCK)"
    secs="$(awk 'FNR == NR { a = $7; next } { print $7 - a }' "$SAGA_DIR/cpu.0" "$SAGA_DIR/cpu.1")"
    sagas=$(($(cat "$SAGA_DIR/sagas.1") - $(cat "$SAGA_DIR/sagas.0")))
    {
        awk -v l="$label" -v hz="$hz" -v n="$(nproc)" -v tool="$tool" 'FNR == NR { split($0, x, " "); next } {
                split($0, y, " ")
                bk = y[1] - x[1]; pw = y[2] - x[2]; r = y[3] - x[3]; p = y[4] - x[4]; d = tool * hz
                busy = y[5] - x[5]; q = y[6] - x[6]; w = (y[7] - x[7]) * hz; if (w <= 0) w = 1
                other = busy - q - bk - pw - d - r - p; if (other < 0) other = 0
                printf "%s_cpu_cores booking=%.2f payments=%.2f postgres=%.2f redis=%.2f load_generator=%.2f irq=%.2f other=%.2f idle=%.2f (of %d, over %.1f s)\n",
                    l, bk / w, pw / w, p / w, r / w, d / w, q / w, other / w, n - busy / w, n, y[7] - x[7]
            }' "$SAGA_DIR/cpu.0" "$SAGA_DIR/cpu.1"
        awk -v l="$label" -v hz="$hz" -v secs="$secs" '
            FNR == NR { t0[$1 " " $2 " " $3] = $4; next }
            { k = $1 " " $2 " " $3; g[$1 " " $2] += $4 - ((k in t0) ? t0[k] : 0); n[$1 " " $2]++ }
            END {
                for (k in g) if (g[k] / hz / secs >= 0.005) { split(k, p, " "); line[p[1]] = line[p[1]] sprintf(" %s(%d)=%.2f", p[2], n[k], g[k] / hz / secs) }
                for (s in line) printf "%s_threads_%s%s (cores, by thread name)\n", l, s, line[s]
            }' "$SAGA_DIR/threads.0" "$SAGA_DIR/threads.1" | sort
        awk -v l="$label" -v hz="$hz" -v secs="$secs" '
            FNR == NR { t0[$1 " " $2] = $3; next }
            ($1 " " $2) in t0 { g[$1] += $3 - t0[$1 " " $2]; n[$1]++ }
            END { printf "%s_postgres_backends", l; for (a in g) printf " %s(%d)=%.2f", a, n[a], g[a] / hz / secs; printf " (cores, by application_name)\n" }' \
            "$SAGA_DIR/backends.0" "$SAGA_DIR/backends.1"
        awk -v l="$label" -v t="$sagas" 'FNR == NR { split($0, x, " "); next } {
                split($0, y, " "); if (t <= 0) t = 1
                syncs = y[2] - x[2]
                printf "%s_wal sagas=%d bytes_per_saga=%.0f fsyncs=%d sagas_per_fsync=%.2f (all databases; sagas: webhooks stored meanwhile)\n",
                    l, t, (y[1] - x[1]) / t, syncs, (syncs > 0 ? t / syncs : 0)
            }' "$SAGA_DIR/wal.0" "$SAGA_DIR/wal.1"
    } | tee "$SAGA_DIR/$label.cpu"
}

# --- waiting and measuring ----------------------------------------------------------------------

# _saga_backlog: "unconfirmed unpublished": accepted webhooks whose booking is not confirmed yet, and
# outbox rows not yet published.
_saga_backlog() {
    bench_psql saga -F ' ' -c "SELECT
        (SELECT count(*) FROM payments.provider_events p JOIN booking.bookings b USING (booking_id)
         WHERE p.status = 'accepted' AND b.status <> 'confirmed'),
        (SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL)"
}

# _saga_wait_confirmed SECONDS: waits until the backlog is empty; prints how long it took.
_saga_wait_confirmed() {
    local limit="$1" t0 unconfirmed unpublished
    t0="$(date +%s.%N)"
    while :; do
        read -r unconfirmed unpublished < <(_saga_backlog)
        if ((unconfirmed == 0 && unpublished == 0)); then
            awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1fs\n", t1 - t0 }'
            return 0
        fi
        if awk -v t0="$t0" -v t1="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(t1 - t0 > l) }'; then
            echo "timeout after ${limit}s ($unconfirmed accepted webhooks not confirmed, $unpublished outbox rows not published)"
            return 1
        fi
        sleep 0.2
    done
}

# _saga_group: the booking-saga group's "lag pending" on stream:payments (XINFO GROUPS).
_saga_group() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$SAGA_REDIS_DB" XINFO GROUPS stream:payments 2>/dev/null | tr -d '\r' |
        awk '$0 == "name" { getline; g = $0 } $0 == "pending" { getline; p[g] = $0 } $0 == "lag" { getline; l[g] = $0 }
            END { print (("booking-saga" in l) ? l["booking-saga"] : "?"), (("booking-saga" in p) ? p["booking-saga"] : "?") }'
}

# _saga_measure DB T0 SECS PATTERN: "rate p50 p99" of measure.sql, its lines on stderr.
_saga_measure() {
    local out rate p50 p99
    out="$(bench_psql "$1" -v t0="$2" -v secs="$3" -v customers="$4" -F $'\n' -f "$SAGA_SQL/measure.sql")" || return 1
    printf '%s\n' "$out" >&2
    rate="$(sed -n 's/^completed_per_second=\([0-9.]*\).*/\1/p' <<<"$out")"
    p50="$(sed -n 's/^p50=\([0-9.]*\) .*/\1/p' <<<"$out")"
    p99="$(sed -n 's/.* p99=\([0-9.]*\) .*/\1/p' <<<"$out")"
    printf '%s %s %s\n' "${rate:-0}" "${p50:-n/a}" "${p99:-n/a}"
}

# --- the pair -----------------------------------------------------------------------------------


ours_saga() {
    local before after driver analyzer status=0 t0 left group waited measured rate p50 p99 started
    bench_pause_until_exit "$BOOKING_PID" "$PAYMENTS_PID"
    SAGA_TAG="r$(date +%s)"
    local run=("$BENCH_BIN" saga --booking-url "$SAGA_BOOKING_URL" --webhook-url "$SAGA_PAYMENTS_URL" --admin-token "$SAGA_ADMIN_TOKEN"
        --api-key "$SAGA_API_KEY" --stripe-secret "$SAGA_STRIPE_SECRET" --seats-per-event "$SAGA_SEATS" --max-rate "$SAGA_MAX_RATE"
        --events-file "$SAGA_DIR/events.txt" --tag "$SAGA_TAG" --seconds "$SAGA_SECS" --warmup "$SAGA_WARMUP")
    # Events first (their creation is not what is measured), then a quiet database.
    "${run[@]}" --prepare || return 1
    _saga_settle
    before="$(bench_metrics "$SAGA_BOOKING_URL")"
    started="$(date +%s.%N)"
    "${run[@]}" --concurrency "$SAGA_CONCURRENCY" >"$SAGA_DIR/driver.out" &
    driver=$!
    # Halfway through the warm-up, fresh statistics (see bench_analyze).
    bench_analyze_after "$(awk -v w="$SAGA_WARMUP" 'BEGIN { print w / 2 }')" saga &
    analyzer=$!
    # The cores are counted over the measured window only (the driver's warm-up comes first).
    sleep "$(awk -v s="$started" -v w="$SAGA_WARMUP" -v t="$(date +%s.%N)" 'BEGIN { d = s + w - t; print (d > 0 ? d : 0) }')"
    wait "$analyzer" || {
        kill "$driver" 2>/dev/null
        return 1
    }
    _saga_snapshot 0 saga
    sleep "$(awk -v s="$started" -v w="$((SAGA_WARMUP + SAGA_SECS))" -v t="$(date +%s.%N)" 'BEGIN { d = s + w - t; print (d > 0 ? d : 0) }')"
    _saga_snapshot 1 saga
    read -r left < <(_saga_backlog | awk '{ print $1 " accepted webhooks not yet confirmed, " $2 " outbox rows not yet published" }')
    group="$(_saga_group)"
    wait "$driver" || status=$?
    if ((status != 0)); then
        cat "$SAGA_DIR/driver.out"
        err "platform-bench saga failed (status $status)"
        return 1
    fi
    _saga_report saga "$(sed -n 's/^saga_client_cpu seconds=\([0-9.]*\).*/\1/p' "$SAGA_DIR/driver.out")" >/dev/null
    after="$(bench_metrics "$SAGA_BOOKING_URL")"
    cat "$SAGA_DIR/driver.out"
    cat "$SAGA_DIR/saga.cpu"
    echo "saga_backlog_at_end: $left; booking-saga group lag/pending: ${group/ //}"
    echo "saga_booking_pools $(bench_pool_waits "$before" "$after" postgres redis)"
    waited="$(_saga_wait_confirmed "$SAGA_CONFIRM_WAIT")" || true
    echo "saga_drained_after_end=$waited"
    t0="$(sed -n 's/^saga_client_window start=\([0-9.]*\) .*/\1/p' "$SAGA_DIR/driver.out")"
    measured="$(_saga_measure saga "$t0" "$SAGA_SECS" "saga-$SAGA_TAG-w%" 2>"$SAGA_DIR/measure.out")" || {
        cat "$SAGA_DIR/measure.out"
        return 1
    }
    read -r rate p50 p99 <<<"$measured"
    sed 's/^/saga_sql /' "$SAGA_DIR/measure.out"
    echo "saga_completed_per_second=$rate"
    echo "saga_completed_p50=$p50 ms p99=$p99 ms (webhook received -> booking confirmed, SQL percentile_cont; rate = confirmed_at in the ${SAGA_SECS}s window / ${SAGA_SECS})"
    echo "saga_relay_leader: $(bench_psql saga -c "SELECT coalesce(string_agg(a.application_name, ','), 'none') FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND a.datname = 'saga'")"
}

theirs_saga() {
    local prefix="$SAGA_DIR/pgbench-log" t0 measured rate p50 p99 tps
    bench_pause_until_exit "$SAGA_BOOKING_PID" "$SAGA_PAYMENTS_PID" "$BOOKING_PID" "$PAYMENTS_PID"
    _saga_settle
    local args=(-n -M prepared -f "$SAGA_SQL/saga.sql" -D events="$SAGA_REF_EVENTS" -c "$SAGA_PGBENCH_CLIENTS" -j 2
        -h 127.0.0.1 -p "$PG_PORT" -U postgres saga_ref)
    # A warm-up like ours (the first seconds on fresh tables run slower), not measured.
    bench_warmup "$SAGA_DIR/pgbench-warmup.out" "$PG_BIN_DIR/pgbench" "${args[@]}" -T "$SAGA_WARMUP" || return 1
    bench_analyze saga_ref
    rm -f "$prefix".*
    _saga_snapshot 0 saga_ref
    t0="$(date +%s.%N)"
    bench_timed "$SAGA_DIR" "$PG_BIN_DIR/pgbench" "${args[@]}" -T "$SAGA_SECS" -l --log-prefix="$prefix" >"$SAGA_DIR/pgbench.out" 2>&1 || {
        cat "$SAGA_DIR/pgbench.out" >&2
        return 1
    }
    _saga_snapshot 1 saga_ref
    _saga_report reference_saga "$(cat "$SAGA_DIR/tool.seconds")" >/dev/null
    grep -v '^pgbench (' "$SAGA_DIR/pgbench.out" >&2
    echo "pgbench saga script (three transactions) p50/p99: $(bench_pgbench_latency "$prefix") ms" >&2
    grep -v '_threads_' "$SAGA_DIR/reference_saga.cpu" >&2
    tps="$(bench_pgbench_tps "$(cat "$SAGA_DIR/pgbench.out")")"
    # The same SQL measurement as ours over the reference's rows (its window: the pgbench run).
    measured="$(_saga_measure saga_ref "$t0" "$SAGA_SECS" '%' 2>"$SAGA_DIR/measure-ref.out")" || {
        cat "$SAGA_DIR/measure-ref.out" >&2
        return 1
    }
    read -r rate p50 p99 <<<"$measured"
    sed 's/^/reference_saga_sql /' "$SAGA_DIR/measure-ref.out" >&2
    echo "(theirs: pgbench's sagas/s; p50/p99 webhook row -> confirmation, measured like ours)" >&2
    printf '%s %s %s\n' "$tps" "$p50" "$p99"
}

# --- open loop ----------------------------------------------------------------------------------

# Before each open-loop run: the previous run's sagas confirmed, then a quiet database.
_saga_open_settle() {
    _saga_wait_confirmed "$SAGA_CONFIRM_WAIT" >/dev/null || true
    _saga_settle
}

# open_saga CAPACITY: whole sagas at a fixed arrival rate (`platform-bench open-loop --scenario saga`,
# its own events; the client's latency is hold sent -> webhook answered, from each saga's due time)
# at BENCH_OPEN_FRACTIONS of the confirmation rate measured above, SAGA_OPEN_SECONDS (20) each. Then,
# per run, the confirmation in SQL (measure.sql over the run's window: webhook received -> booking
# confirmed p50/p99/p99.9), into the summary (bench_saga_open_<percent>_confirm_*) and the JSON lines
# (scenario saga-confirmation).
open_saga() {
    local out t0 fraction pct lines
    bench_pause_until_exit "$BOOKING_PID" "$PAYMENTS_PID"
    BENCH_OPEN_SECONDS="${SAGA_OPEN_SECONDS:-20}" bench_open_loop saga "$1" _saga_open_settle -- --scenario saga \
        --booking-url "$SAGA_BOOKING_URL" --webhook-url "$SAGA_PAYMENTS_URL" --admin-token "$SAGA_ADMIN_TOKEN" \
        --api-key "$SAGA_API_KEY" --stripe-secret "$SAGA_STRIPE_SECRET" --seats-per-event "$SAGA_SEATS" || return 1
    _saga_wait_confirmed "$SAGA_CONFIRM_WAIT" >/dev/null || true
    for fraction in ${BENCH_OPEN_FRACTIONS:-0.5 0.8}; do
        out="$BENCH_DIR/open-saga-$fraction.out"
        pct="$(awk -v f="$fraction" 'BEGIN { printf "%.0f", f * 100 }')"
        t0="$(sed -n 's/^open_loop_window start=\([0-9.]*\) .*/\1/p' "$out")"
        lines="$(bench_psql saga -v t0="$t0" -v secs="${SAGA_OPEN_SECONDS:-20}" -v customers='open-%' -F $'\n' -f "$SAGA_SQL/measure.sql")" || return 1
        echo "open loop at ${pct}%, confirmation in SQL: $(paste -sd' ' <<<"$lines")"
        awk -v p="bench_saga_open_${pct}_confirm" -v label="$fraction" -v rate="$(sed -n 's/^open_loop scenario=saga .* rate=\([0-9]*\).*/\1/p' "$out")" '
            { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
            END {
                printf "%s_per_second=%s\n%s_p50_ms=%s\n%s_p99_ms=%s\n%s_p999_ms=%s\n%s_unconfirmed=%s\n", p, v["completed_per_second"],
                    p, v["p50"], p, v["p99"], p, v["p99.9"], p, v["unconfirmed"] >> summary
                printf "{\"scenario\": \"saga-confirmation\", \"label\": \"%s\", \"rate\": %s, \"throughput\": %s, \"unconfirmed\": %s, \"latency_ms\": {\"p50\": %s, \"p90\": %s, \"p99\": %s, \"p99.9\": %s, \"max\": %s}}\n",
                    label, j(rate), j(v["completed_per_second"]), j(v["unconfirmed"]), j(v["p50"]), j(v["p90"]), j(v["p99"]), j(v["p99.9"]), j(v["max"]) >> jsonl
            }
            function j(x) { return x == "" ? "null" : x }' summary="$BENCH_DIR/summary" jsonl="$BENCH_DIR/open-loop.jsonl" <<<"$lines"
    done
}

# --- checks -------------------------------------------------------------------------------------

# saga_verify: prints the invariant checks; sets VERIFY_SAGA to ok or what failed.
saga_verify() {
    local waited rows kind name n failed=() metrics failures processed group counts client_failures exhausted
    VERIFY_SAGA=ok
    say "checking the saga run (SQL invariants on database saga, the consumer group, the driver's counts)"
    waited="$(_saga_wait_confirmed "$SAGA_CONFIRM_WAIT")" || true
    # `booking check --strict` (Services/Booking/Check): the product's invariant checker, strict because the
    # database holds this run only and nothing is in flight any more (no settle time, no outbox bound, no
    # pending entry in Redis database $SAGA_REDIS_DB); its table becomes `kind|meaning|count` rows.
    local table status=0
    table="$("$SAGA_DIR/booking" check --strict --settle 0s --outbox-bound 0s --pending-bound 0s \
        --database-url "postgres://postgres@127.0.0.1:$PG_PORT/saga" --redis-url "redis://127.0.0.1:$REDIS_PORT/$SAGA_REDIS_DB" \
        2>"$SAGA_DIR/check.err")" || status=$?
    if ((status > 1)); then
        cat "$SAGA_DIR/check.err" >&2
        VERIFY_SAGA="the invariant checks did not run (booking check exited $status)"
        return 0
    fi
    rows="$(awk 'NR > 1 && NF >= 4 && ($3 == "OK" || $3 == "VIOLATION" || $3 == "INFO") {
            meaning = $0; sub(/^[^ ]+ +[0-9]+ +[A-Z]+ +/, "", meaning)
            printf "%s|%s|%s\n", ($3 == "INFO" ? "info" : "check"), meaning, $2
        }' <<<"$table")"
    [[ -n "$rows" ]] || {
        VERIFY_SAGA="booking check printed no checks"
        return 0
    }
    while IFS='|' read -r kind name n; do
        printf '  %-5s %-92s %s\n' "$kind" "$name" "$n"
        if [[ "$kind" == check && "$n" != 0 ]]; then failed+=("$name: $n"); fi
    done <<<"$rows"
    metrics="$(bench_metrics "$SAGA_BOOKING_URL")"
    failures="$(bench_metric "$metrics" 'consumer_handler_failures_total{group="booking-saga"}')"
    processed="$(bench_metric "$metrics" 'consumer_events_processed_total{group="booking-saga"}')"
    group="$(_saga_group)"
    printf '  %-5s %-92s %s\n' check "saga coordinator handler failures (booking /metrics)" "${failures%.*}" \
        check "booking-saga entries pending (XINFO GROUPS stream:payments: lag pending)" "$group" \
        info "events the saga coordinator processed (booking /metrics)" "${processed%.*}"
    [[ "${failures%.*}" == 0 ]] || failed+=("handler failures: $failures")
    [[ "$group" == "0 0" ]] || failed+=("booking-saga lag/pending: $group")
    counts="$(grep -h '^saga_client_counts ' "$SAGA_DIR/driver.out" 2>/dev/null || true)"
    client_failures="$(sed -n 's/.* failures=\([0-9]*\).*/\1/p' <<<"$counts")"
    exhausted="$(sed -n 's/.* exhausted=\([0-9]*\).*/\1/p' <<<"$counts")"
    printf '  %-5s %-92s %s\n' check "requests the driver saw fail (non-2xx, errors)" "${client_failures:-?}" \
        check "workers that ran out of seats (raise SAGA_MAX_RATE)" "${exhausted:-?}"
    [[ "${client_failures:-x}" == 0 ]] || failed+=("driver failures: ${client_failures:-no count}")
    local open_failures=0 out
    for out in "$BENCH_DIR"/open-saga-*.out; do
        [[ -e "$out" ]] || continue
        open_failures=$((open_failures + $(bench_open_failures "$out")))
    done
    printf '  %-5s %-92s %s\n' check "requests the open-loop runs saw fail" "$open_failures"
    ((open_failures == 0)) || failed+=("open-loop failures: $open_failures")
    [[ "${exhausted:-x}" == 0 ]] || failed+=("ran out of seats: ${exhausted:-no count}")
    echo "  (backlog drained after ${waited})"
    if ((${#failed[@]} > 0)); then
        VERIFY_SAGA="FAILED: $(IFS=';'; echo "${failed[*]}")"
    fi
    echo "saga check: $VERIFY_SAGA"
}
