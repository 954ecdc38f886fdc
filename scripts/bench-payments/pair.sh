# shellcheck shell=bash
# shellcheck disable=SC2317  # the pair functions are called by name from scripts/bench
# shellcheck disable=SC2034  # VERIFY_WEBHOOKS and PAYMENTS_* are read by scripts/bench
#
# The payments-webhook service's pair of `scripts/bench` (sourced by it, never executed):
#
#   webhooks   ours: wrk (webhooks.lua), 64 connections on 2 threads, POST /v1/webhooks/stripe, each
#              request a distinct, correctly signed 1 KiB `payment_intent.succeeded` event
#              (gen-webhooks.py, signed right before the run); the service verifies it and, in one
#              transaction, stores it in payments.provider_events and appends payment.succeeded to
#              the outbox (its relay publishes to Redis after commit).
#              theirs: pgbench (webhook.sql), the same transaction statement for statement and
#              round trip for round trip, 64 clients, 2 threads.
#
# payments_setup (main shell, before the pair) builds nothing: scripts/bench built payments-webhook.
# It creates and migrates two databases on the bench's Postgres (`payments` for the service,
# `payments_ref` for pgbench) and starts `payments-webhook serve` on a free port (Redis database 1,
# PROVIDER_WORKER=false, warning logs). payments_verify (after the pair) checks the same run: no answer but 200, no
# duplicate, stored rows == the service's accepted count (== the clients' 2xx, less at most the
# requests in flight when a wrk run ended), outbox rows == accepted rows, and, once the relay caught
# up, published rows == outbox rows == entries in stream:payments. payments_teardown stops the service.
#
# Each measurement is preceded by a warm-up of PAYMENTS_WARMUP seconds (ours and pgbench alike), and
# by VACUUM ANALYZE + CHECKPOINT, so neither side pays for the other's writes; the service is stopped
# (SIGSTOP) while pgbench runs. Each measurement prints where the cores went, Postgres' WAL bytes and
# fsyncs per transaction, and, for ours, the service's Postgres pool waits (the functions bench_*
# shared with the booking pairs: scripts/lib/bench.sh).
#
# Tunables (environment): PAYMENTS_BIN (a payments-webhook executable instead of the built one),
# PAYMENTS_CONNECTIONS (64), PAYMENTS_THREADS (2, wrk -t), PAYMENTS_DB_POOL (DATABASE_POOL_SIZE, 8),
# PAYMENTS_REDIS_POOL (REDIS_POOL_SIZE, 8), PAYMENTS_PGBENCH_CLIENTS (64), PAYMENTS_WARMUP (2 s),
# PAYMENTS_BODY_BYTES (1024), PAYMENTS_MAX_RATE (20000: deliveries generated per second of run; a
# faster run runs out, which fails the check rather than repeating an event).

PAYMENTS_LUA="$ROOT/scripts/bench-payments"
PAYMENTS_CONNECTIONS="${PAYMENTS_CONNECTIONS:-64}"
PAYMENTS_THREADS="${PAYMENTS_THREADS:-2}"
PAYMENTS_DB_POOL="${PAYMENTS_DB_POOL:-8}"
PAYMENTS_REDIS_POOL="${PAYMENTS_REDIS_POOL:-8}"
PAYMENTS_PGBENCH_CLIENTS="${PAYMENTS_PGBENCH_CLIENTS:-64}"
PAYMENTS_WARMUP="${PAYMENTS_WARMUP:-2}"
PAYMENTS_BODY_BYTES="${PAYMENTS_BODY_BYTES:-1024}"
PAYMENTS_MAX_RATE="${PAYMENTS_MAX_RATE:-20000}"
PAYMENTS_STRIPE_SECRET="whsec_bench_payments_stripe_signing_secret"
PAYMENTS_EVENTS_SECRET="whsec_YmVuY2gtcGF5bWVudC1ldmVudHMtc2VjcmV0" # base64("bench-payment-events-secret")
PAYMENTS_ADMIN_TOKEN="bench-admin-token"
# A Redis database of its own: on the booking pair's database 0 the booking service's saga
# coordinator read every delivery's payment.succeeded from stream:payments and took the cores the
# measurement is about (a full run measured 1,388 webhooks/s against 2,612-2,961 alone).
PAYMENTS_REDIS_DB=1
PAYMENTS_PID=""
PAYMENTS_DIR=""
PAYMENTS_URL=""

# --- setup --------------------------------------------------------------------------------------

payments_setup() {
    PAYMENTS_DIR="$BENCH_DIR/payments"
    mkdir -p "$PAYMENTS_DIR"
    : >"$PAYMENTS_DIR/counts"
    bench_copy_service "${PAYMENTS_BIN:-$PAYMENTS_BUILT_BIN}" "$PAYMENTS_DIR/payments-webhook"
    local port base="postgres://postgres@127.0.0.1:$PG_PORT"
    port="$(free_port)"
    PAYMENTS_URL="http://127.0.0.1:$port"
    bench_create_databases "$PAYMENTS_DIR/payments-webhook" payments payments_ref

    say "payments-webhook serve on $PAYMENTS_URL (Redis database $PAYMENTS_REDIS_DB, DATABASE_POOL_SIZE=$PAYMENTS_DB_POOL REDIS_POOL_SIZE=$PAYMENTS_REDIS_POOL, PROVIDER_WORKER=false, LOG_LEVEL=warning)"
    DATABASE_URL="$base/payments" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$PAYMENTS_REDIS_DB" ADMIN_TOKEN="$PAYMENTS_ADMIN_TOKEN" \
        STRIPE_WEBHOOK_SECRETS="$PAYMENTS_STRIPE_SECRET" PAYMENT_EVENTS_SECRETS="$PAYMENTS_EVENTS_SECRET" \
        PROVIDER_API_KEY=sk_test_bench PROVIDER_BASE_URL=http://127.0.0.1:9 PROVIDER_WORKER=false LOG_LEVEL=warning \
        DATABASE_POOL_SIZE="$PAYMENTS_DB_POOL" REDIS_POOL_SIZE="$PAYMENTS_REDIS_POOL" \
        "$PAYMENTS_DIR/payments-webhook" serve --host 127.0.0.1 --port "$port" >"$PAYMENTS_DIR/service.log" 2>&1 &
    PAYMENTS_PID=$!
    bench_wait_ready payments-webhook "$PAYMENTS_URL" "$PAYMENTS_PID" "$PAYMENTS_DIR/service.log"
    # The body template of the pgbench reference (same length as the deliveries once filled in).
    python3 "$PAYMENTS_LUA/gen-webhooks.py" --pgbench-template --bytes "$PAYMENTS_BODY_BYTES" >"$PAYMENTS_DIR/body-template.json"
}

payments_teardown() {
    bench_stop_service "$PAYMENTS_PID"
    PAYMENTS_PID=""
}

# Quiet Postgres before a measurement: vacuum what the previous runs wrote (so autovacuum does not
# start in the middle of the next one) and checkpoint (so no checkpoint's full-page writes do).
_pay_settle() {
    bench_vacuum payments payments_ref
    bench_psql postgres -c 'CHECKPOINT' >&2
}

# _pay_unpublished: outbox rows of the service not yet published.
_pay_unpublished() { bench_psql payments -c 'SELECT count(*) FROM messaging.outbox WHERE published_at IS NULL'; }

# _pay_wait_relay SECONDS: waits until the relay published every outbox row; prints how long it took.
_pay_wait_relay() {
    local limit="$1" t0 left
    t0="$(date +%s.%N)"
    while :; do
        left="$(_pay_unpublished)"
        if ((left == 0)); then
            awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", t1 - t0 }'
            return 0
        fi
        if awk -v t0="$t0" -v t1="$(date +%s.%N)" -v l="$limit" 'BEGIN { exit !(t1 - t0 > l) }'; then
            echo "timeout ($left left)"
            return 1
        fi
        sleep 0.2
    done
}

# _pay_wrk SECONDS PREFIX: one wrk run of webhooks.lua against the service.
_pay_wrk() {
    wrk -t "$PAYMENTS_THREADS" -c "$PAYMENTS_CONNECTIONS" -d "${1}s" --timeout 10s --latency \
        -s "$PAYMENTS_LUA/webhooks.lua" "$PAYMENTS_URL" -- deliveries="$2"
}

# _pay_generate SECONDS TAG: signed deliveries for a run of SECONDS; prints the prefix of the files.
_pay_generate() {
    local prefix="$PAYMENTS_DIR/deliveries-$2"
    python3 "$PAYMENTS_LUA/gen-webhooks.py" --secret "$PAYMENTS_STRIPE_SECRET" --count $(($1 * PAYMENTS_MAX_RATE)) \
        --threads "$PAYMENTS_THREADS" --tag "$2$RANDOM" --bytes "$PAYMENTS_BODY_BYTES" --out "$prefix" >&2
    printf '%s\n' "$prefix"
}

_pay_record_counts() { # OUT: appends the run's client counts to counts
    sed -n 's/^payments_webhooks_accepted=\([0-9]*\) duplicates=\([0-9]*\) non_2xx=\([0-9]*\) exhausted=\([0-9]*\) socket_errors=\([0-9]*\).*/accepted \1\nduplicates \2\nnon_2xx \3\nexhausted \4\nsocket_errors \5/p' \
        "$1" >>"$PAYMENTS_DIR/counts"
}

# --- webhooks -----------------------------------------------------------------------------------

ours_webhooks() {
    local warm run before after accepted drained left
    _pay_settle
    warm="$(_pay_generate "$PAYMENTS_WARMUP" w)"
    bench_warmup "$PAYMENTS_DIR/warmup.out" _pay_wrk "$PAYMENTS_WARMUP" "$warm" || return 1
    _pay_record_counts "$PAYMENTS_DIR/warmup.out"
    rm -f "$warm".*
    echo "(warm-up ${PAYMENTS_WARMUP}s: $(grep '^payments_webhooks_accepted=' "$PAYMENTS_DIR/warmup.out"))"
    _pay_wait_relay 60 >/dev/null || true
    _pay_settle
    # Signed now: the service accepts timestamps up to 300 s old.
    run="$(_pay_generate "$SECS" r)"
    before="$(bench_metrics "$PAYMENTS_URL")"
    bench_measure_begin "$PAYMENTS_PID" wal
    bench_timed "$PAYMENTS_DIR" _pay_wrk "$SECS" "$run" >"$PAYMENTS_DIR/webhooks.out" || {
        cat "$PAYMENTS_DIR/webhooks.out"
        return 1
    }
    left="$(_pay_unpublished)"
    accepted="$(sed -n 's/^payments_webhooks_accepted=\([0-9]*\).*/\1/p' "$PAYMENTS_DIR/webhooks.out")"
    bench_measure_end payments_webhooks "$(cat "$PAYMENTS_DIR/tool.seconds")" "$PAYMENTS_PID" "${accepted:-0}" >"$PAYMENTS_DIR/webhooks.cpu"
    after="$(bench_metrics "$PAYMENTS_URL")"
    rm -f "$run".*
    cat "$PAYMENTS_DIR/webhooks.out" "$PAYMENTS_DIR/webhooks.cpu"
    echo "payments_webhooks_pools $(bench_pool_waits "$before" "$after" postgres)" | tee "$PAYMENTS_DIR/webhooks.pools"
    _pay_record_counts "$PAYMENTS_DIR/webhooks.out"
    # The relay publishes while the service answers; what it had not published when wrk stopped, and
    # how long it took to catch up (before the reference runs, which it would otherwise compete with).
    drained="$(_pay_wait_relay 120)" || true
    echo "payments_webhooks_relay unpublished_at_end=$left caught_up_after=${drained}s" | tee "$PAYMENTS_DIR/webhooks.relay"
}

theirs_webhooks() {
    local prefix="$PAYMENTS_DIR/pgbench" txns warm_txns
    bench_pause "$PAYMENTS_PID"
    _pay_settle
    local args=(-n -M prepared -f "$PAYMENTS_LUA/webhook.sql" -D n=0 -D body="$(cat "$PAYMENTS_DIR/body-template.json")"
        -c "$PAYMENTS_PGBENCH_CLIENTS" -j 2 -h 127.0.0.1 -p "$PG_PORT" -U postgres payments_ref)
    # A warm-up like ours (the first seconds on fresh tables run slower), not measured.
    bench_warmup "$PAYMENTS_DIR/pgbench-warmup.out" "$PG_BIN_DIR/pgbench" "${args[@]}" -D run=1 -T "$PAYMENTS_WARMUP" || return 1
    warm_txns="$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$PAYMENTS_DIR/pgbench-warmup.out")"
    _pay_settle
    rm -f "$prefix".*
    bench_measure_begin "$PAYMENTS_PID" wal
    bench_timed "$PAYMENTS_DIR" "$PG_BIN_DIR/pgbench" "${args[@]}" -D run=2 -T "$SECS" -l --log-prefix="$prefix" >"$PAYMENTS_DIR/pgbench.out" 2>&1 || {
        cat "$PAYMENTS_DIR/pgbench.out" >&2
        return 1
    }
    txns="$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$PAYMENTS_DIR/pgbench.out")"
    bench_measure_end reference_webhooks "$(cat "$PAYMENTS_DIR/tool.seconds")" "$PAYMENTS_PID" "${txns:-0}" >"$PAYMENTS_DIR/reference-webhooks.cpu"
    bench_resume "$PAYMENTS_PID"
    printf 'ref_transactions %s\n' "$((${warm_txns:-0} + ${txns:-0}))" >>"$PAYMENTS_DIR/counts"
    bench_pgbench_result webhook "$PAYMENTS_DIR/pgbench.out" "$prefix" "$PAYMENTS_DIR/reference-webhooks.cpu"
}

# --- open loop ----------------------------------------------------------------------------------

# open_webhooks CAPACITY: the same service at a fixed arrival rate (`platform-bench open-loop
# --scenario webhooks`: distinct signed 1 KiB deliveries, latency from each one's due time) at
# BENCH_OPEN_FRACTIONS of the rate wrk measured (scripts/lib/bench.sh bench_open_loop); what it was
# answered goes into the counts payments_verify checks.
open_webhooks() {
    local out
    _pay_wait_relay 120 >/dev/null || true
    bench_open_loop webhooks "$1" _pay_settle -- --scenario webhooks --webhook-url "$PAYMENTS_URL" \
        --stripe-secret "$PAYMENTS_STRIPE_SECRET" --body-bytes "$PAYMENTS_BODY_BYTES" || return 1
    for out in "$BENCH_DIR"/open-webhooks-*.out; do
        printf 'accepted %s\nnon_2xx %s\n' "$(bench_open_served "$out" webhooks)" "$(bench_open_failures "$out")" >>"$PAYMENTS_DIR/counts"
    done
}

# --- checks -------------------------------------------------------------------------------------

# payments_verify: prints the checks; sets VERIFY_WEBHOOKS to ok or the reason. The service's own
# count of accepted deliveries (its /metrics) must equal the rows stored exactly; the clients' count
# of fresh 2xx may be lower by at most the requests in flight when a wrk run ended (wrk closes its
# connections without reading those answers): one per connection per run.
payments_verify() {
    VERIFY_WEBHOOKS=ok
    local seen duplicates non_2xx exhausted socket_errors metrics served served_dup served_bad in_flight
    local rows outbox published xlen drained body_ours body_ref ref_rows ref_txns
    seen="$(awk '$1 == "accepted" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    duplicates="$(awk '$1 == "duplicates" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    non_2xx="$(awk '$1 == "non_2xx" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    exhausted="$(awk '$1 == "exhausted" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    socket_errors="$(awk '$1 == "socket_errors" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    ref_txns="$(awk '$1 == "ref_transactions" { s += $2 } END { print s + 0 }' "$PAYMENTS_DIR/counts")"
    # One "accepted" line per wrk run (the runs happen in a subshell of scripts/bench: count them here).
    in_flight=$(($(awk '$1 == "accepted" { n++ } END { print n + 0 }' "$PAYMENTS_DIR/counts") * PAYMENTS_CONNECTIONS))

    say "checking the webhook runs (Postgres rows, outbox, relay, Redis stream)"
    drained="$(_pay_wait_relay 120)" || true
    metrics="$(bench_metrics "$PAYMENTS_URL")"
    served="$(bench_metric "$metrics" 'webhook_deliveries_total{source="stripe",outcome="accepted"}')"
    served_dup="$(bench_metric "$metrics" 'webhook_deliveries_total{source="stripe",outcome="duplicate"}')"
    served_bad="$(bench_metric "$metrics" 'webhook_deliveries_total{source="stripe",outcome="bad_signature"}')"
    served="${served%.*}"
    served_dup="${served_dup%.*}"
    served_bad="${served_bad%.*}"
    rows="$(bench_psql payments -c "SELECT count(*) FROM payments.provider_events WHERE status = 'accepted'")"
    outbox="$(bench_psql payments -c "SELECT count(*) FROM messaging.outbox WHERE producer = 'payments-webhook'")"
    published="$(bench_psql payments -c "SELECT count(*) FROM messaging.outbox WHERE producer = 'payments-webhook' AND published_at IS NOT NULL")"
    # Entries ever added, not XLEN: the relay trims what every consumer group acknowledged, so the
    # length can be anything lower.
    xlen="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$PAYMENTS_REDIS_DB" XINFO STREAM stream:payments | tr -d '\r' | awk 'previous == "entries-added" { print; exit } { previous = $0 }')"
    body_ours="$(bench_psql payments -c 'SELECT coalesce(round(avg(octet_length(raw_body))), 0) FROM payments.provider_events')"
    body_ref="$(bench_psql payments_ref -c 'SELECT coalesce(round(avg(octet_length(raw_body))), 0) FROM payments.provider_events')"
    ref_rows="$(bench_psql payments_ref -c "SELECT count(*) || ' ' || (SELECT count(*) FROM messaging.outbox) FROM payments.provider_events")"
    echo "webhooks: clients saw $seen fresh 2xx, $duplicates duplicate 2xx, $non_2xx non-2xx, $socket_errors socket errors," \
        "$exhausted sent after running out of deliveries; service counted $served accepted, $served_dup duplicates," \
        "$served_bad bad signatures; rows stored: $rows (raw body $body_ours bytes on average); outbox rows: $outbox;" \
        "published: $published (relay caught up after ${drained}s); entries added to stream:payments: $xlen"
    echo "reference: pgbench committed $ref_txns transactions; rows: provider_events, outbox = ${ref_rows/ /, } (raw body $body_ref bytes on average)"
    PAYMENTS_PUBLISHED="$published"
    if [[ -z "$metrics" ]]; then
        VERIFY_WEBHOOKS="UNREADABLE: the service did not answer GET /metrics, so its counts cannot be compared"
    elif ((non_2xx > 0 || socket_errors > 0)); then
        VERIFY_WEBHOOKS="FAILED REQUESTS: $non_2xx non-2xx answers, $socket_errors socket errors"
    elif ((duplicates > 0 || served_dup > 0)); then
        VERIFY_WEBHOOKS="DUPLICATES: $duplicates duplicate answers seen, $served_dup counted by the service (the rate is inflated)"
    elif ((exhausted > 0)); then
        VERIFY_WEBHOOKS="RAN OUT of deliveries ($exhausted requests after the last one): raise PAYMENTS_MAX_RATE"
    elif ((rows != served)); then
        VERIFY_WEBHOOKS="MISMATCH: $rows rows stored but the service accepted $served"
    elif ((served < seen || served - seen > in_flight)); then
        VERIFY_WEBHOOKS="MISMATCH: the service accepted $served but the clients saw $seen 2xx (at most $in_flight in flight)"
    elif ((outbox != rows)); then
        VERIFY_WEBHOOKS="MISMATCH: $outbox outbox rows for $rows accepted rows"
    elif ((published != outbox)); then
        VERIFY_WEBHOOKS="RELAY BEHIND: $published of $outbox outbox rows published (${drained})"
    elif [[ "$xlen" != "$published" ]]; then
        VERIFY_WEBHOOKS="MISMATCH: $xlen entries added to stream:payments for $published published rows"
    elif [[ "$ref_rows" != "$ref_txns $ref_txns" ]]; then
        VERIFY_WEBHOOKS="REFERENCE MISMATCH: pgbench committed $ref_txns transactions but stored $ref_rows rows"
    fi
    echo "webhooks check: $VERIFY_WEBHOOKS (rows $rows == accepted $served; clients' 2xx $seen, at most $in_flight in flight)"
}
