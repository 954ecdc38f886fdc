# shellcheck shell=bash
# shellcheck disable=SC2317  # the pair functions are called by name from scripts/bench
# shellcheck disable=SC2034  # VERIFY_NOTIFICATION and NOTIFICATION_* are read by scripts/bench
#
# The notification service's pair of `scripts/bench` (sourced by it, never executed):
#
#   notification  ours: `notification serve` (release) delivering to NOTIFICATION_ENDPOINTS (10)
#                 endpoints on a local receiver (`platform-bench receiver`: 204 at once, latency
#                 recorded per delivery). `platform-bench notification` (Services/Bench/
#                 NotificationBench.swift) creates the endpoints through the admin API and appends
#                 booking.confirmed envelopes (~600 bytes) to the service's messaging.outbox, as a
#                 producer does; the relay publishes them to stream:booking, the fan-out makes one
#                 delivery per endpoint, the dispatcher POSTs them (signed). Latency = received at
#                 the receiver - occurred_at (= the append). Three runs, each on endpoints of its own
#                 (the previous run's are paused):
#                   steady   NOTIFICATION_RATE events/s (300 x 10 endpoints = 3,000 deliveries/s
#                            offered) for BENCH_SECONDS: the table's p50/p99 are this run's;
#                   ceiling  closed loop, NOTIFICATION_WINDOW (200) deliveries outstanding: the most
#                            the service delivers with a bounded backlog; the table's OURS/s is this
#                            rate (the goal's ">= 3,000/s" and "ratio" are about what the service can
#                            do, its "p99 < 100" about the latency at 3,000/s offered);
#                   slow     as steady, plus an 11th endpoint at /slow that answers after 10 s: the
#                            healthy endpoints' p99 is shown beside the steady run's and must stay
#                            under NOTIFICATION_P99_GOAL (100 ms) for the goal to be met.
#                 theirs: wrk, NOTIFICATION_CONNECTIONS (endpoints x NOTIFICATION_ENDPOINT_CONCURRENCY
#                 = 40, the connections the service's dispatcher can have open to the receiver) on
#                 2 threads, POSTing a delivery body the service sent, with a delivery's headers, to
#                 the same receiver (deliveries.lua): the receiver's (and loopback HTTP's) ceiling.
#
# notification_setup (main shell, before the pair) builds nothing: scripts/bench built notification
# and platform-bench. It creates and migrates the database `notification`, starts the receiver and
# `notification serve` on free ports (Redis database NOTIFICATION_REDIS_DB, apart from the other
# pairs' streams; NOTIFICATION_ALLOW_PRIVATE_NETWORKS=true for the loopback receiver).
# notification_verify (after the pair) checks the same run: every healthy delivery of every run (and
# of its warm-up) arrived, none twice (the receiver's webhook-id per path), no delivery failed or
# needed a second attempt, none is left pending to a healthy endpoint, succeeded healthy deliveries
# == outbox rows x endpoints, everything published, no redelivery after a lease ran out (/metrics).
# notification_teardown stops both.
#
# Each run is preceded by VACUUM ANALYZE + CHECKPOINT, then NOTIFICATION_WARMUP seconds of closed
# loop to endpoints of its own (/warm/<i>, paused afterwards; not measured, checked like the rest).
# The other pairs' services are paused (SIGSTOP) during the measurements, and the notification
# service during wrk's. Each run prints where the cores went (load_generator = platform-bench + the
# receiver), WAL bytes and fsyncs per delivery, and the service's pool waits.
#
# Tunables (environment): NOTIFICATION_BIN (a notification executable instead of the built one),
# NOTIFICATION_ENDPOINTS (10), NOTIFICATION_RATE (300 events/s), NOTIFICATION_WINDOW (200),
# NOTIFICATION_ENDPOINT_CONCURRENCY (4), NOTIFICATION_CONNECTIONS (endpoints x concurrency),
# NOTIFICATION_THREADS (2, wrk -t), NOTIFICATION_DB_POOL (DATABASE_POOL_SIZE, 8),
# NOTIFICATION_CONSUMER_POOL (DATABASE_CONSUMER_POOL_SIZE, 8), NOTIFICATION_WARMUP (2 s),
# NOTIFICATION_DRAIN (300 s: the longest a run waits for its last deliveries; it gives up sooner
# after 60 s without a new one), NOTIFICATION_P99_GOAL (100 ms), NOTIFICATION_RUNS ("steady ceiling
# slow": which of ours' runs to make; the table needs steady and ceiling).

NOTIFICATION_LUA="$ROOT/scripts/bench-notification"
NOTIFICATION_ENDPOINTS="${NOTIFICATION_ENDPOINTS:-10}"
NOTIFICATION_RATE="${NOTIFICATION_RATE:-300}"
NOTIFICATION_WINDOW="${NOTIFICATION_WINDOW:-200}"
NOTIFICATION_ENDPOINT_CONCURRENCY="${NOTIFICATION_ENDPOINT_CONCURRENCY:-4}"
NOTIFICATION_CONNECTIONS="${NOTIFICATION_CONNECTIONS:-$((NOTIFICATION_ENDPOINTS * NOTIFICATION_ENDPOINT_CONCURRENCY))}"
NOTIFICATION_THREADS="${NOTIFICATION_THREADS:-2}"
NOTIFICATION_DB_POOL="${NOTIFICATION_DB_POOL:-8}"
NOTIFICATION_CONSUMER_POOL="${NOTIFICATION_CONSUMER_POOL:-8}"
NOTIFICATION_WARMUP="${NOTIFICATION_WARMUP:-2}"
NOTIFICATION_DRAIN="${NOTIFICATION_DRAIN:-300}"
NOTIFICATION_P99_GOAL="${NOTIFICATION_P99_GOAL:-100}"
NOTIFICATION_RUNS="${NOTIFICATION_RUNS:-steady ceiling slow}"
NOTIFICATION_ADMIN_TOKEN="bench-notification-admin-token"
NOTIFICATION_SECRETS_KEY="YmVuY2gtbm90aWZpY2F0aW9uLXNlY3JldHMta2V5ISE=" # base64("bench-notification-secrets-key!!"): 32 bytes
NOTIFICATION_REDIS_DB=3
NOTIFICATION_DIR=""
NOTIFICATION_PID=""
NOTIFICATION_URL=""
NOTIFICATION_RECEIVER_PID=""
NOTIFICATION_RECEIVER_URL=""
NOTIFICATION_SLOW=""
NOTIFICATION_SLOW_MET=""

# --- setup --------------------------------------------------------------------------------------

notification_setup() {
    NOTIFICATION_DIR="$BENCH_DIR/notification"
    mkdir -p "$NOTIFICATION_DIR"
    : >"$NOTIFICATION_DIR/counts"
    bench_copy_service "${NOTIFICATION_BIN:-$NOTIFICATION_BUILT_BIN}" "$NOTIFICATION_DIR/notification"
    local ports deadline
    mapfile -t ports < <(free_ports 2)
    NOTIFICATION_URL="http://127.0.0.1:${ports[0]}"
    NOTIFICATION_RECEIVER_URL="http://127.0.0.1:${ports[1]}"
    bench_create_databases "$NOTIFICATION_DIR/notification" notification

    say "platform-bench receiver on $NOTIFICATION_RECEIVER_URL (204 at once; /slow after 10 s)"
    "$BENCH_BIN" receiver --host 127.0.0.1 --port "${ports[1]}" >"$NOTIFICATION_DIR/receiver.log" 2>&1 &
    NOTIFICATION_RECEIVER_PID=$!
    say "notification serve on $NOTIFICATION_URL (NOTIFICATION_ENDPOINT_CONCURRENCY=$NOTIFICATION_ENDPOINT_CONCURRENCY DATABASE_POOL_SIZE=$NOTIFICATION_DB_POOL DATABASE_CONSUMER_POOL_SIZE=$NOTIFICATION_CONSUMER_POOL, LOG_LEVEL=warning)"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/notification" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$NOTIFICATION_REDIS_DB" \
        ADMIN_TOKEN="$NOTIFICATION_ADMIN_TOKEN" NOTIFICATION_SECRETS_KEY="$NOTIFICATION_SECRETS_KEY" NOTIFICATION_ALLOW_PRIVATE_NETWORKS=true \
        NOTIFICATION_ENDPOINT_CONCURRENCY="$NOTIFICATION_ENDPOINT_CONCURRENCY" LOG_LEVEL=warning \
        DATABASE_POOL_SIZE="$NOTIFICATION_DB_POOL" DATABASE_CONSUMER_POOL_SIZE="$NOTIFICATION_CONSUMER_POOL" \
        "$NOTIFICATION_DIR/notification" serve --host 127.0.0.1 --port "${ports[0]}" >"$NOTIFICATION_DIR/service.log" 2>&1 &
    NOTIFICATION_PID=$!
    deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null --max-time 2 "$NOTIFICATION_RECEIVER_URL/stats/count" 2>/dev/null; do
        if ! pid_alive "$NOTIFICATION_RECEIVER_PID" || ((SECONDS >= deadline)); then
            show_log_tail "$NOTIFICATION_DIR/receiver.log" 30
            err "platform-bench receiver did not answer on $NOTIFICATION_RECEIVER_URL"
            return 1
        fi
        sleep 0.1
    done
    bench_wait_ready notification "$NOTIFICATION_URL" "$NOTIFICATION_PID" "$NOTIFICATION_DIR/service.log"
}

notification_teardown() {
    bench_stop_service "$NOTIFICATION_PID"
    bench_stop_service "$NOTIFICATION_RECEIVER_PID"
    NOTIFICATION_PID=""
    NOTIFICATION_RECEIVER_PID=""
}

# The other pairs' services (those that ran before and are still up).
_notif_others() { printf '%s\n' "${BOOKING_PID:-}" "${PAYMENTS_PID:-}" "${SAGA_BOOKING_PID:-}" "${SAGA_PAYMENTS_PID:-}"; }

# Quiet Postgres before a measurement: vacuum what the previous runs wrote (so autovacuum does not
# start in the middle of the next one) and checkpoint (so no checkpoint's full-page writes do).
_notif_settle() {
    bench_vacuum notification
    bench_psql postgres -c 'CHECKPOINT' >&2
}

# _notif_received NAME: the healthy deliveries the run NAME's receiver counted.
_notif_received() { sed -n "s/^notification_$1_counts .* received=\([0-9]*\) .*/\1/p" "$NOTIFICATION_DIR/$1.out" | tail -n1; }

# _notif_run NAME ARGS...: one `platform-bench notification` run labelled notification_NAME; its
# output to NAME.out, where the cores went to NAME.cpu, the pool waits to NAME.pools.
_notif_run() {
    local name="$1" before after tool receiver0 receiver1 deliveries analyzer
    shift
    _notif_settle
    before="$(bench_metrics "$NOTIFICATION_URL")"
    receiver0="$(_bench_ticks_of "$NOTIFICATION_RECEIVER_PID")"
    # Halfway through the run's warm-up, fresh statistics (see bench_analyze).
    bench_analyze_after "$(awk -v w="$NOTIFICATION_WARMUP" 'BEGIN { print w / 2 }')" notification &
    analyzer=$!
    bench_measure_begin "$NOTIFICATION_PID" wal
    bench_timed "$NOTIFICATION_DIR" "$BENCH_BIN" notification --service-url "$NOTIFICATION_URL" --admin-token "$NOTIFICATION_ADMIN_TOKEN" \
        --database-url "postgres://postgres@127.0.0.1:$PG_PORT/notification" --receiver-url "$NOTIFICATION_RECEIVER_URL" \
        --endpoints "$NOTIFICATION_ENDPOINTS" --rate "$NOTIFICATION_RATE" --seconds "$SECS" --warmup "$NOTIFICATION_WARMUP" \
        --drain-timeout "$NOTIFICATION_DRAIN" --label "notification_$name" --tag "$name$RANDOM" "$@" >"$NOTIFICATION_DIR/$name.out" || {
        cat "$NOTIFICATION_DIR/$name.out"
        err "platform-bench notification ($name) failed"
        return 1
    }
    wait "$analyzer" || return 1
    receiver1="$(_bench_ticks_of "$NOTIFICATION_RECEIVER_PID")"
    tool="$(awk -v t="$(cat "$NOTIFICATION_DIR/tool.seconds")" -v a="$receiver0" -v b="$receiver1" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f\n", t + (b - a) / hz }')"
    deliveries="$(_notif_received "$name")"
    bench_measure_end "notification_$name" "$tool" "$NOTIFICATION_PID" "${deliveries:-0}" >"$NOTIFICATION_DIR/$name.cpu"
    printf 'notification_%s_receiver_cpu_seconds=%s (included in load_generator)\n' "$name" \
        "$(awk -v a="$receiver0" -v b="$receiver1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')" >>"$NOTIFICATION_DIR/$name.cpu"
    after="$(bench_metrics "$NOTIFICATION_URL")"
    echo "notification_${name}_pools $(bench_pool_waits "$before" "$after" postgres postgres-consumers postgres-relay)" >"$NOTIFICATION_DIR/$name.pools"
    printf '%s %s\n' "$name" "$(grep "^notification_${name}_counts " "$NOTIFICATION_DIR/$name.out" | cut -d' ' -f2-)" >>"$NOTIFICATION_DIR/counts"
    sed -n "s/^notification_${name}_warmup deliveries=\([0-9]*\) received=\([0-9]*\) all_arrived=\([a-z]*\).*/$name-warmup expected=\1 received=\2 duplicates=n\/a all_arrived=\3/p" \
        "$NOTIFICATION_DIR/$name.out" >>"$NOTIFICATION_DIR/counts"
    cat "$NOTIFICATION_DIR/$name.out" "$NOTIFICATION_DIR/$name.cpu" "$NOTIFICATION_DIR/$name.pools"
}

# --- the pair -----------------------------------------------------------------------------------

ours_notification() {
    local run p50 p99 rate
    # shellcheck disable=SC2046  # one pid per line
    bench_pause_until_exit $(_notif_others)
    for run in $NOTIFICATION_RUNS; do
        case "$run" in
            steady) _notif_run steady || return 1 ;;
            ceiling) _notif_run ceiling --ceiling --window "$NOTIFICATION_WINDOW" || return 1 ;;
            slow) _notif_run slow --slow-endpoint || return 1 ;;
            *)
                err "NOTIFICATION_RUNS: unknown run '$run' (steady, ceiling, slow)"
                return 1
                ;;
        esac
    done
    # The table's line: the ceiling's rate, the steady run's latency.
    rate="$(sed -n 's/^notification_ceiling_deliveries_per_second=\([0-9.]*\).*/\1/p' "$NOTIFICATION_DIR/ceiling.out" 2>/dev/null || true)"
    read -r p50 p99 < <(sed -n 's/^notification_steady_deliveries_p50=\([0-9.]*\) ms p99=\([0-9.]*\) ms.*/\1 \2/p' \
        "$NOTIFICATION_DIR/steady.out" 2>/dev/null | grep . || echo "n/a n/a")
    [[ -z "$rate" ]] || echo "notification_deliveries_per_second=$rate"
    echo "notification_deliveries_p50=$p50 ms p99=$p99 ms (rate: the closed-loop ceiling; p50/p99: the steady run at" \
        "$((NOTIFICATION_RATE * NOTIFICATION_ENDPOINTS))/s offered, appended -> received)"
}

theirs_notification() {
    local body="$NOTIFICATION_DIR/body.json" out
    # shellcheck disable=SC2046  # one pid per line
    bench_pause_until_exit "$NOTIFICATION_PID" $(_notif_others)
    # A body the service sent (any of the bench's events: they are all alike).
    bench_psql notification -c "SELECT convert_from(body, 'UTF8') FROM notification.events LIMIT 1" | tr -d '\n' >"$body"
    if [[ ! -s "$body" ]]; then
        echo '{"aggregate_id":"x","data":{},"id":"00000000-0000-4000-8000-000000000000","occurred_at":"2026-01-01T00:00:00.000Z","type":"booking.confirmed"}' >"$body"
    fi
    echo "(wrk: ${NOTIFICATION_CONNECTIONS} connections, ${NOTIFICATION_THREADS} threads, body $(wc -c <"$body") bytes)" >&2
    local args=(-t "$NOTIFICATION_THREADS" -c "$NOTIFICATION_CONNECTIONS" --timeout 10s --latency -s "$NOTIFICATION_LUA/deliveries.lua"
        "$NOTIFICATION_RECEIVER_URL")
    bench_warmup "$NOTIFICATION_DIR/wrk-warmup.out" wrk "${args[@]}" -d "${NOTIFICATION_WARMUP}s" -- body="$body" || return 1
    bench_measure_begin "$NOTIFICATION_RECEIVER_PID"
    bench_timed "$NOTIFICATION_DIR" wrk "${args[@]}" -d "${SECS}s" -- body="$body" >"$NOTIFICATION_DIR/wrk.out" 2>&1 || {
        cat "$NOTIFICATION_DIR/wrk.out" >&2
        return 1
    }
    # The receiver is what wrk measures: its cores are the "service" of this line.
    bench_measure_end reference_notification "$(cat "$NOTIFICATION_DIR/tool.seconds")" "$NOTIFICATION_RECEIVER_PID" \
        >"$NOTIFICATION_DIR/reference.cpu"
    sed -i 's/^reference_notification_cpu_cores service=/reference_notification_cpu_cores receiver=/' "$NOTIFICATION_DIR/reference.cpu"
    cat "$NOTIFICATION_DIR/wrk.out" "$NOTIFICATION_DIR/reference.cpu" >&2
    out="$(cat "$NOTIFICATION_DIR/wrk.out")"
    printf 'wrk %s %s\n' "$(sed -n 's/.*_counts non_2xx=\([0-9]*\) socket_errors=\([0-9]*\).*/\1 \2/p' <<<"$out")" "$(wc -c <"$body")" \
        >>"$NOTIFICATION_DIR/counts"
    printf '%s %s\n' "$(sed -n 's/^notification_wrk_per_second=\([0-9.]*\).*/\1/p' <<<"$out")" \
        "$(sed -n 's/^notification_wrk_p50=\([0-9.]*\) ms p99=\([0-9.]*\) ms.*/\1 \2/p' <<<"$out")"
}

# --- checks -------------------------------------------------------------------------------------

# notification_verify: prints the checks; sets VERIFY_NOTIFICATION to ok or what failed, and
# NOTIFICATION_SLOW (the slow run's comparison) and NOTIFICATION_SLOW_MET (yes, NO or n/a).
notification_verify() {
    local name expected received duplicates arrived failed=() rows metrics redelivered outbox healthy_ok steady_p99 slow_p99
    local rest wrk_bad wrk_errors kind what n
    VERIFY_NOTIFICATION=ok
    say "checking the notification runs (the receiver's counts, SQL on database notification, /metrics)"
    while read -r name rest; do
        [[ "$name" != wrk ]] || continue
        expected="$(sed -n 's/.* expected=\([0-9]*\).*/\1/p' <<<" $rest")"
        received="$(sed -n 's/.* received=\([0-9]*\).*/\1/p' <<<" $rest")"
        duplicates="$(sed -n 's/.* duplicates=\([^ ]*\).*/\1/p' <<<" $rest")"
        arrived="$(sed -n 's/.*all_arrived=\([a-z]*\).*/\1/p' <<<"$rest")"
        printf '  %-14s healthy deliveries expected %s, received %s, duplicates %s (healthy and slow), all arrived: %s\n' \
            "$name" "${expected:-?}" "${received:-?}" "${duplicates:-?}" "${arrived:-?}"
        [[ "${arrived:-}" == yes && "${expected:-x}" == "${received:-y}" ]] || failed+=("$name: $received of $expected healthy deliveries arrived")
        [[ "${duplicates:-x}" == 0 || "${duplicates:-}" == n/a ]] || failed+=("$name: ${duplicates:-?} duplicates")
    done <"$NOTIFICATION_DIR/counts"
    read -r _ wrk_bad wrk_errors _ < <(grep '^wrk ' "$NOTIFICATION_DIR/counts" | tail -n1 || echo "wrk n/a n/a")
    printf '  %-14s non-2xx %s, socket errors %s\n' wrk "${wrk_bad:-n/a}" "${wrk_errors:-n/a}"
    [[ "${wrk_bad:-0}" == 0 && "${wrk_errors:-0}" == 0 ]] || [[ "${wrk_bad:-}" == n/a ]] || failed+=("wrk: $wrk_bad non-2xx, $wrk_errors socket errors")

    rows="$(bench_psql notification -F '|' <<SQL
SELECT 'check', 'deliveries failed', count(*) FROM notification.deliveries WHERE status = 'failed';
SELECT 'check', 'deliveries to healthy endpoints still pending', count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id
  WHERE d.status = 'pending' AND e.url NOT LIKE '%/slow%';
SELECT 'check', 'deliveries that took more than one attempt (healthy endpoints)', count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id
  WHERE d.attempt_count <> 1 AND d.status = 'succeeded' AND e.url NOT LIKE '%/slow%';
SELECT 'check', 'attempts without a 2xx answer', count(*) FROM notification.attempts WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299;
SELECT 'check', 'outbox rows not published', count(*) FROM messaging.outbox WHERE published_at IS NULL;
SELECT 'check', 'outbox rows x $NOTIFICATION_ENDPOINTS - succeeded deliveries to healthy endpoints',
  (SELECT count(*) FROM messaging.outbox) * $NOTIFICATION_ENDPOINTS - (SELECT count(*)
  FROM notification.deliveries d JOIN notification.endpoints e ON e.id = d.endpoint_id
  WHERE d.status = 'succeeded' AND e.url NOT LIKE '%/slow%');
SELECT 'check', 'endpoints not paused by their run', count(*) FROM notification.endpoints WHERE status <> 'paused';
SELECT 'info', 'events received (notification.events)', count(*) FROM notification.events;
SELECT 'info', 'deliveries succeeded / pending (the slow endpoints'' backlog, paused)',
  count(*) FILTER (WHERE status = 'succeeded') || ' / ' || count(*) FILTER (WHERE status = 'pending') FROM notification.deliveries;
SQL
    )" || {
        VERIFY_NOTIFICATION="the SQL checks did not run"
        return 0
    }
    while IFS='|' read -r kind what n; do
        printf '  %-5s %-80s %s\n' "$kind" "$what" "$n"
        if [[ "$kind" == check && "$n" != 0 ]]; then failed+=("$what: $n"); fi
    done <<<"$rows"
    metrics="$(bench_metrics "$NOTIFICATION_URL")"
    redelivered="$(bench_metric "$metrics" notification_redeliveries_after_lease_total)"
    outbox="$(bench_metric "$metrics" 'notification_deliveries_total{outcome="retrying"}')"
    printf '  %-5s %-80s %s\n' check "redeliveries after a lease ran out (/metrics)" "${redelivered%.*}" \
        check "attempts to be retried (/metrics)" "${outbox%.*}"
    [[ "${redelivered%.*}" == 0 ]] || failed+=("redeliveries after a lease: $redelivered")
    [[ "${outbox%.*}" == 0 ]] || failed+=("retried attempts: $outbox")
    if ((${#failed[@]} > 0)); then
        VERIFY_NOTIFICATION="FAILED: $(IFS=';'; echo "${failed[*]}")"
    fi
    echo "notification check: $VERIFY_NOTIFICATION"

    # The slow endpoint's run against the steady one.
    steady_p99="$(sed -n 's/^notification_steady_deliveries_p50=[0-9.n/a]* ms p99=\([0-9.]*\) ms.*/\1/p' "$NOTIFICATION_DIR/steady.out" 2>/dev/null || true)"
    slow_p99="$(sed -n 's/^notification_slow_deliveries_p50=[0-9.n/a]* ms p99=\([0-9.]*\) ms.*/\1/p' "$NOTIFICATION_DIR/slow.out" 2>/dev/null || true)"
    if [[ -n "$slow_p99" ]]; then
        healthy_ok="$(awk -v s="$slow_p99" -v g="$NOTIFICATION_P99_GOAL" 'BEGIN { print (s + 0 < g + 0) ? "yes" : "NO" }')"
        NOTIFICATION_SLOW="healthy endpoints' p99 ${steady_p99:-n/a} ms without the slow endpoint, $slow_p99 ms with it (goal: under $NOTIFICATION_P99_GOAL ms): $healthy_ok"
        NOTIFICATION_SLOW_MET="$healthy_ok"
    else
        NOTIFICATION_SLOW="no slow-endpoint run"
        NOTIFICATION_SLOW_MET=n/a
    fi
    echo "notification slow endpoint: $NOTIFICATION_SLOW"
}
