# shellcheck shell=bash
# shellcheck disable=SC2317  # the pair functions are called by name from scripts/bench
# shellcheck disable=SC2034  # VERIFY_* and EV_* are read by scripts/bench and the pair functions
#
# The booking service's pairs of `scripts/bench` (sourced by it, never executed):
#
#   holds      ours: wrk (holds.lua), 64 connections, POST /v1/holds with 1-4 random seats of
#              random events; theirs: redis-benchmark running the service's own hold script
#              (SeatHoldStore.placeScript, EVALSHA, same KEYS/ARGV shape), 64 connections, 1 to 4
#              seats in equal shares.
#   bookings   ours: wrk (bookings.lua), 64 connections, one thread each: a hold, then its
#              conversion (POST /v1/bookings); theirs: pgbench (booking.sql), the conversion's
#              transaction statement for statement, 8 clients.
#
# booking_setup (main shell, before the pairs) builds nothing: scripts/bench built `booking`. It
# creates and migrates two databases on the bench's Postgres (`booking` for the service,
# `booking_ref` for pgbench), starts `booking serve` on a free port (HOLD_TTL=30m, warning logs),
# creates the events through the API (10,000 seats each, a year ahead; every run its own events,
# so seats are never reused across runs), holds one seat per event so that each event's
# unavailable-seat cache exists in Redis, and writes the reference rows in SQL. booking_verify
# (after the pairs) checks the same run for double holds (Redis) and double bookings (Postgres)
# and compares the counts with the 201s the service served and the clients saw. booking_teardown
# stops the service (the EXIT trap calls it).
#
# Every measurement is preceded by a warm-up of BOOKING_WARMUP seconds (ours and pgbench alike),
# Postgres is vacuumed before the bookings measurements (autovacuum starting in the middle of one
# halved pgbench's rate in a trial), and the service is stopped (SIGSTOP) while the reference
# tools run. Each measurement prints where the cores went and, for ours, the service's pool waits
# from its /metrics (the functions bench_* shared with the payments pair: scripts/lib/bench.sh).
#
# Tunables (environment): BOOKING_BIN (a booking executable to use instead of the built one),
# BOOKING_CONNECTIONS (64), BOOKING_DB_POOL (DATABASE_POOL_SIZE of the service, 16),
# BOOKING_REDIS_POOL (REDIS_POOL_SIZE, default BOOKING_CONNECTIONS), BOOKING_PGBENCH_CLIENTS (8),
# BOOKING_WARMUP (2 s).
#
# Pool sizes, from one series of 8 s runs on 2 cores with nothing else running: REDIS_POOL_SIZE 8/16 gave
# 5,500-6,500 holds/s, 32/64 gave 7,100-7,500 holds/s with p99 13-16 ms (a lease that has to queue
# costs the service more CPU than one that finds a free connection); with it at 64,
# DATABASE_POOL_SIZE 8/16/32/64 gave 700/700/660/600-700 bookings/s, p99 growing from ~110-150 ms
# (8, 16) to ~180-190 ms (32, 64): more Postgres backends than cores only add contention.

BOOKING_LUA="$ROOT/scripts/bench-booking"
BOOKING_SEATS=10000
BOOKING_API_KEY="bench-client-key"
BOOKING_ADMIN_TOKEN="bench-admin-token"
BOOKING_CONNECTIONS="${BOOKING_CONNECTIONS:-64}"
BOOKING_DB_POOL="${BOOKING_DB_POOL:-16}"
BOOKING_REDIS_POOL="${BOOKING_REDIS_POOL:-$BOOKING_CONNECTIONS}"
BOOKING_PGBENCH_CLIENTS="${BOOKING_PGBENCH_CLIENTS:-8}"
BOOKING_WARMUP="${BOOKING_WARMUP:-2}"
BOOKING_PID=""
BOOKING_DIR=""
BOOKING_REF_EVENTS=0

# --- setup --------------------------------------------------------------------------------------

# The event ranges (1-based lines of events.txt) of each run; 2,500 blocks of 4 seats per event.
# Sized for up to ~12,500 holds/s and ~4,000 bookings/s (beyond that a walk wraps: 409s, counted).
_plan_events() {
    local holds=$(((SECS * 12500 + 2499) / 2500)) bookings=$(((SECS * 4000 + 2499) / 2500 + 1))
    local warm_holds=$(((BOOKING_WARMUP * 12500 + 2499) / 2500)) warm_bookings=$(((BOOKING_WARMUP * 4000 + 2499) / 2500 + 1))
    EV_WARM_HOLDS="1 $warm_holds"
    EV_HOLDS="$((1 + warm_holds)) $holds"
    EV_WARM_BOOKINGS="$((1 + warm_holds + holds)) $warm_bookings"
    EV_BOOKINGS="$((1 + warm_holds + holds + warm_bookings)) $bookings"
    EV_TOTAL=$((warm_holds + holds + warm_bookings + bookings))
}

booking_setup() {
    BOOKING_DIR="$BENCH_DIR/booking"
    mkdir -p "$BOOKING_DIR"
    : >"$BOOKING_DIR/counts"
    bench_copy_service "${BOOKING_BIN:-$BOOKING_BUILT_BIN}" "$BOOKING_DIR/booking"
    local port
    port="$(free_port)"
    BOOKING_URL="http://127.0.0.1:$port"
    local base="postgres://postgres@127.0.0.1:$PG_PORT"
    bench_create_databases "$BOOKING_DIR/booking" booking booking_ref

    say "booking serve on $BOOKING_URL (DATABASE_POOL_SIZE=$BOOKING_DB_POOL REDIS_POOL_SIZE=$BOOKING_REDIS_POOL, HOLD_TTL=30m, LOG_LEVEL=warning)"
    DATABASE_URL="$base/booking" REDIS_URL="$REDIS_URL" ADMIN_TOKEN="$BOOKING_ADMIN_TOKEN" API_KEYS="$BOOKING_API_KEY" \
        LOG_LEVEL=warning HOLD_TTL=30m DATABASE_POOL_SIZE="$BOOKING_DB_POOL" REDIS_POOL_SIZE="$BOOKING_REDIS_POOL" \
        MAX_HELD_SEATS_PER_CUSTOMER=10000 HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE=1000000 \
        "$BOOKING_DIR/booking" serve --host 127.0.0.1 --port "$port" >"$BOOKING_DIR/service.log" 2>&1 &
    BOOKING_PID=$!
    bench_wait_ready booking "$BOOKING_URL" "$BOOKING_PID" "$BOOKING_DIR/service.log"

    # Events through the API, each with 10,000 seats s00001..s10000, a year ahead.
    _plan_events
    local starts ends body="$BOOKING_DIR/event.json" i reply
    starts="$(date -u -d '+365 days' +%Y-%m-%dT19:00:00Z)"
    ends="$(date -u -d '+365 days' +%Y-%m-%dT22:00:00Z)"
    {
        printf '{"name":"bench","host_id":"host-bench","starts_at":"%s","ends_at":"%s","time_zone":"Europe/Berlin","currency":"EUR","seats":[' "$starts" "$ends"
        seq -f '{"seat_id":"s%05g","price":2500}' 1 "$BOOKING_SEATS" | paste -sd,
        printf ']}'
    } >"$body"
    say "creating $EV_TOTAL events x $BOOKING_SEATS seats through POST /v1/events"
    BOOKING_EVENTS="$BOOKING_DIR/events.txt"
    : >"$BOOKING_EVENTS"
    for ((i = 0; i < EV_TOTAL; i++)); do
        reply="$(curl -fsS --max-time 30 -H "Authorization: Bearer $BOOKING_ADMIN_TOKEN" -H 'Content-Type: application/json' \
            --data-binary @"$body" "$BOOKING_URL/v1/events")" || {
            err "POST /v1/events failed"
            return 1
        }
        sed -n 's/.*"event_id":"\([0-9a-fA-F-]*\)".*/\1/p' <<<"$reply" >>"$BOOKING_EVENTS"
    done
    if (($(grep -c . "$BOOKING_EVENTS") != EV_TOTAL)); then
        err "could not read the event ids of POST /v1/events"
        return 1
    fi
    # One hold per event (its last seat) before measuring: the first hold of an event finds no
    # unavailable-seat cache in Redis and rebuilds it from Postgres, a one-off per event that is not
    # what the measurements are about. (A walk that reaches block 2,500 with 4 seats gets a 409.)
    local event status primed=0
    while read -r event; do
        status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $BOOKING_API_KEY" \
            -H 'Content-Type: application/json' --data "{\"event_id\":\"$event\",\"seat_ids\":[\"s$(printf '%05d' "$BOOKING_SEATS")\"],\"customer_id\":\"bench-prime\"}" \
            "$BOOKING_URL/v1/holds")" || status=000
        if [[ "$status" != 201 ]]; then
            err "priming POST /v1/holds answered $status for event $event"
            return 1
        fi
        primed=$((primed + 1))
    done <"$BOOKING_EVENTS"
    echo "primed $primed" >>"$BOOKING_DIR/counts"

    # The reference database: the same schema, events 00000000-0000-4000-8000-<12 digits> with the
    # same seats (foreign keys), and the sequence booking.sql allocates seat blocks from.
    BOOKING_REF_EVENTS=$((((SECS + BOOKING_WARMUP) * 5000 + 2499) / 2500))
    say "booking_ref: $BOOKING_REF_EVENTS events x $BOOKING_SEATS seats in SQL"
    bench_seed_reference_events booking_ref "$BOOKING_REF_EVENTS" "$BOOKING_SEATS" reference host-bench
    bench_psql booking_ref >&2 <<SQL
CREATE SEQUENCE bench_ref_blocks;
VACUUM ANALYZE;
SQL
    bench_vacuum booking
    # The setup wrote a lot of WAL (a million seat rows): checkpoint now rather than during a
    # measurement.
    bench_psql postgres -c 'CHECKPOINT' >&2
}

# Quiet Postgres before a measurement: vacuum what the previous runs wrote, so autovacuum does not
# start in the middle of the next one.
_settle_postgres() { bench_vacuum booking booking_ref; }

booking_teardown() {
    bench_stop_service "$BOOKING_PID"
    BOOKING_PID=""
}

# booking_wrk SCRIPT THREADS CONNECTIONS SECONDS "FIRST COUNT" TAG: one wrk run against the service.
booking_wrk() {
    local first count
    read -r first count <<<"$5"
    wrk -t "$2" -c "$3" -d "${4}s" --timeout 10s --latency -s "$BOOKING_LUA/$1.lua" "$BOOKING_URL" -- \
        events="$BOOKING_EVENTS" first="$first" count="$count" seats="$BOOKING_SEATS" threads="$2" \
        key="$BOOKING_API_KEY" tag="$6" seed="$RANDOM"
}

# --- holds --------------------------------------------------------------------------------------

ours_holds() {
    local threads=2 before after
    bench_warmup "$BOOKING_DIR/holds-warmup.out" booking_wrk holds "$threads" "$BOOKING_CONNECTIONS" "$BOOKING_WARMUP" "$EV_WARM_HOLDS" warm || return 1
    sed -n 's/^booking_holds_created=\([0-9]*\).*/holds \1/p' "$BOOKING_DIR/holds-warmup.out" >>"$BOOKING_DIR/counts"
    echo "(warm-up ${BOOKING_WARMUP}s: $(grep '^booking_holds_created=' "$BOOKING_DIR/holds-warmup.out"))"
    before="$(bench_metrics "$BOOKING_URL")"
    bench_measure_begin "$BOOKING_PID"
    bench_timed "$BOOKING_DIR" booking_wrk holds "$threads" "$BOOKING_CONNECTIONS" "$SECS" "$EV_HOLDS" run >"$BOOKING_DIR/holds.out" || {
        cat "$BOOKING_DIR/holds.out"
        return 1
    }
    bench_measure_end booking_holds "$(cat "$BOOKING_DIR/tool.seconds")" "$BOOKING_PID" >"$BOOKING_DIR/holds.cpu"
    after="$(bench_metrics "$BOOKING_URL")"
    cat "$BOOKING_DIR/holds.out" "$BOOKING_DIR/holds.cpu"
    echo "booking_holds_pools $(bench_pool_waits "$before" "$after" postgres redis)" | tee "$BOOKING_DIR/holds.pools"
    sed -n 's/^booking_holds_created=\([0-9]*\).*/holds \1/p' "$BOOKING_DIR/holds.out" >>"$BOOKING_DIR/counts"
}

# The service's hold script, from its source: the Swift multi-line literal of placeScript with the
# literal's indentation removed (what the service sends to SCRIPT LOAD).
_place_script() {
    awk '
        /static let placeScript = RedisScript\(/ { inside = 1; next }
        inside && /^ *"""\)/ { exit }
        inside && /^ *"""$/ { next }
        inside { print }
    ' "$ROOT/Services/Booking/Holds/SeatHoldStore.swift" | sed 's/^        //'
}

theirs_holds() {
    local script sha known k n event="00000000-0000-4000-8000-00000000beef" out csv total_n=0 total_s=0 p50=0 p99=0 rps q50 q99
    script="$(_place_script)"
    [[ -n "$script" ]] || {
        err "could not read placeScript from Services/Booking/Holds/SeatHoldStore.swift"
        return 1
    }
    sha="$(printf '%s' "$script" | sha1sum | cut -d' ' -f1)"
    # The service loaded its script with SCRIPT LOAD during the run: the same digest proves the
    # reference runs byte for byte the same script.
    known="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SCRIPT EXISTS "$sha" | tr -d '\r')"
    if [[ "$known" == 1 ]]; then
        echo "hold script $sha: the service's own (SCRIPT EXISTS before loading it)" >&2
    else
        warn "hold script $sha is not the one the service loaded (or ours did not run); measuring it anyway"
    fi
    bench_pause "$BOOKING_PID"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" SCRIPT LOAD "$script" >/dev/null
    # A database of its own (9): the service's keys in 0 stay as the run left them for the checks.
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n 9 SADD "booking:{event:$event}:unavailable" '' >/dev/null
    # The script holds 1-4 seats; redis-benchmark repeats one command, so four runs of equal size,
    # each __rand_int__ a fresh random number (new seat keys: low contention, like ours). Sized to
    # take about BENCH_SECONDS in all at ~40,000 calls/s.
    n=$((SECS * 10000))
    bench_measure_begin "$BOOKING_PID"
    local tool_seconds=0
    for k in 1 2 3 4; do
        local keys=() seat_ids=() json=() i
        for ((i = 0; i < k; i++)); do
            keys+=("booking:{event:$event}:seat:__rand_int__")
            seat_ids+=("__rand_int__")
            json+=('"s__rand_int__"')
        done
        bench_timed "$BOOKING_DIR" redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum 9 -c "$BOOKING_CONNECTIONS" -n "$n" -r 1000000000 --csv \
            EVALSHA "$sha" $((2 + k)) "booking:{event:$event}:unavailable" "booking:{event:$event}:hold:__rand_int__" "${keys[@]}" \
            "__rand_int__" 1800000 bench-customer 1900000000000 "[$(IFS=,; echo "${json[*]}")]" "${seat_ids[@]}" \
            >"$BOOKING_DIR/redis-benchmark.out" 2>&1 || {
            cat "$BOOKING_DIR/redis-benchmark.out" >&2
            return 1
        }
        out="$(cat "$BOOKING_DIR/redis-benchmark.out")"
        tool_seconds="$(awk -v a="$tool_seconds" -v b="$(cat "$BOOKING_DIR/tool.seconds")" 'BEGIN { print a + b }')"
        csv="$(grep '^"EVALSHA' <<<"$out" | tail -n1)"
        [[ -n "$csv" ]] || {
            printf '%s\n' "$out" >&2
            return 1
        }
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms";
        # the test (the command) has unescaped quotes and commas of its own: count from the end.
        read -r rps q50 q99 < <(awk -F, '{ gsub(/"/, ""); print $(NF - 6), $(NF - 3), $(NF - 1) }' <<<"$csv")
        printf 'redis-benchmark EVALSHA placeScript, %d seat(s), %d clients: %s/s p50=%s ms p99=%s ms\n' "$k" "$BOOKING_CONNECTIONS" "$rps" "$q50" "$q99" >&2
        total_n=$((total_n + n))
        total_s="$(awk -v s="$total_s" -v n="$n" -v r="$rps" 'BEGIN { print s + n / r }')"
        # Percentiles of a mix are not a mix of percentiles: report the worst of the four runs.
        p50="$(awk -v a="$p50" -v b="$q50" 'BEGIN { print (b > a ? b : a) }')"
        p99="$(awk -v a="$p99" -v b="$q99" 'BEGIN { print (b > a ? b : a) }')"
    done
    bench_measure_end reference_holds "$tool_seconds" "$BOOKING_PID" | tee "$BOOKING_DIR/reference-holds.cpu" >&2
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n 9 FLUSHDB >/dev/null
    bench_resume "$BOOKING_PID"
    echo "(theirs p50/p99: the worst of the four runs)" >&2
    awk -v n="$total_n" -v s="$total_s" -v a="$p50" -v b="$p99" 'BEGIN { printf "%.0f %s %s\n", n / s, a, b }'
}

# --- bookings -----------------------------------------------------------------------------------

ours_bookings() {
    local before after c="$BOOKING_CONNECTIONS"
    _settle_postgres
    bench_warmup "$BOOKING_DIR/bookings-warmup.out" booking_wrk bookings "$c" "$c" "$BOOKING_WARMUP" "$EV_WARM_BOOKINGS" warm || return 1
    _booking_counts "$BOOKING_DIR/bookings-warmup.out"
    echo "(warm-up ${BOOKING_WARMUP}s: $(grep '^booking_bookings_created=' "$BOOKING_DIR/bookings-warmup.out"))"
    bench_analyze booking
    before="$(bench_metrics "$BOOKING_URL")"
    bench_measure_begin "$BOOKING_PID" wal
    bench_timed "$BOOKING_DIR" booking_wrk bookings "$c" "$c" "$SECS" "$EV_BOOKINGS" run >"$BOOKING_DIR/bookings.out" || {
        cat "$BOOKING_DIR/bookings.out"
        return 1
    }
    bench_measure_end booking_bookings "$(cat "$BOOKING_DIR/tool.seconds")" "$BOOKING_PID" \
        "$(sed -n 's/^booking_bookings_created=\([0-9]*\).*/\1/p' "$BOOKING_DIR/bookings.out")" >"$BOOKING_DIR/bookings.cpu"
    after="$(bench_metrics "$BOOKING_URL")"
    # wrk's own latency lines mix holds and conversions: leave them out, ours are per step.
    grep -v -e '^ *Latency' -e '^ *[0-9]*%' -e 'Latency Distribution' "$BOOKING_DIR/bookings.out"
    cat "$BOOKING_DIR/bookings.cpu"
    echo "booking_bookings_pools $(bench_pool_waits "$before" "$after" postgres redis)" | tee "$BOOKING_DIR/bookings.pools"
    _booking_counts "$BOOKING_DIR/bookings.out"
}

_booking_counts() {
    sed -n 's/^booking_bookings_created=\([0-9]*\).* holds_created=\([0-9]*\).*/bookings \1\nholds \2/p' "$1" >>"$BOOKING_DIR/counts"
}

theirs_bookings() {
    local prefix="$BOOKING_DIR/pgbench"
    bench_pause "$BOOKING_PID"
    _settle_postgres
    # A warm-up like ours (the first seconds on fresh tables run slower), not measured.
    bench_warmup "$BOOKING_DIR/pgbench-warmup.out" "$PG_BIN_DIR/pgbench" -n -M prepared -f "$BOOKING_LUA/booking.sql" \
        -D events="$BOOKING_REF_EVENTS" -c "$BOOKING_PGBENCH_CLIENTS" -j 2 -T "$BOOKING_WARMUP" \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres booking_ref || return 1
    bench_analyze booking_ref
    rm -f "$prefix".*
    bench_measure_begin "$BOOKING_PID" wal
    bench_timed "$BOOKING_DIR" "$PG_BIN_DIR/pgbench" -n -M prepared -f "$BOOKING_LUA/booking.sql" -D events="$BOOKING_REF_EVENTS" \
        -c "$BOOKING_PGBENCH_CLIENTS" -j 2 -T "$SECS" -l --log-prefix="$prefix" \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres booking_ref >"$BOOKING_DIR/pgbench.out" 2>&1 || {
        cat "$BOOKING_DIR/pgbench.out" >&2
        return 1
    }
    bench_measure_end reference_bookings "$(cat "$BOOKING_DIR/tool.seconds")" "$BOOKING_PID" \
        "$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$BOOKING_DIR/pgbench.out")" \
        >"$BOOKING_DIR/reference-bookings.cpu"
    bench_resume "$BOOKING_PID"
    bench_pgbench_result booking "$BOOKING_DIR/pgbench.out" "$prefix" "$BOOKING_DIR/reference-bookings.cpu"
}

# --- open loop ----------------------------------------------------------------------------------

# open_bookings CAPACITY: hold + conversion pairs at a fixed arrival rate (`platform-bench open-loop
# --scenario bookings`, its own events created through the API and primed; latency from each pair's
# due time) at BENCH_OPEN_FRACTIONS of the rate wrk measured; its 201s go into the counts
# booking_verify checks, its failures too.
open_bookings() {
    local out
    bench_open_loop bookings "$1" _settle_postgres -- --scenario bookings --booking-url "$BOOKING_URL" \
        --admin-token "$BOOKING_ADMIN_TOKEN" --api-key "$BOOKING_API_KEY" --seats-per-event "$BOOKING_SEATS" || return 1
    for out in "$BENCH_DIR"/open-bookings-*.out; do
        printf 'primed %s\nholds %s\nbookings %s\nopen_failures %s\n' "$(sed -n 's/.* primed_events=\([0-9]*\).*/\1/p' "$out")" \
            "$(bench_open_served "$out" holds)" "$(bench_open_served "$out" bookings)" "$(bench_open_failures "$out")" >>"$BOOKING_DIR/counts"
    done
}

# --- checks -------------------------------------------------------------------------------------

# booking_verify: prints the checks; sets VERIFY_HOLDS and VERIFY_BOOKINGS to ok or a reason.
# Counts: the service's own count of 201s (its /metrics) must equal the hold records in Redis and
# the bookings in Postgres exactly. The clients' count of 201s may be lower by at most the requests
# in flight when a wrk run ended (wrk closes its connections without reading those answers): one
# per connection per run.
booking_verify() {
    local holds_seen bookings_seen open_failures runs reply metrics served_holds served_bookings in_flight in_flight_bookings
    VERIFY_HOLDS=ok
    VERIFY_BOOKINGS=ok
    holds_seen="$(awk '$1 == "holds" || $1 == "primed" { s += $2 } END { print s + 0 }' "$BOOKING_DIR/counts")"
    bookings_seen="$(awk '$1 == "bookings" { s += $2 } END { print s + 0 }' "$BOOKING_DIR/counts")"
    open_failures="$(awk '$1 == "open_failures" { s += $2 } END { print s + 0 }' "$BOOKING_DIR/counts")"
    runs="$(awk '$1 == "holds" { n++ } END { print n + 0 }' "$BOOKING_DIR/counts")"
    in_flight=$((runs * BOOKING_CONNECTIONS))
    in_flight_bookings=$(($(awk '$1 == "bookings" { n++ } END { print n + 0 }' "$BOOKING_DIR/counts") * BOOKING_CONNECTIONS))
    metrics="$(bench_metrics "$BOOKING_URL")"
    served_holds="$(bench_metric "$metrics" 'hb_requests{http_route="/v1/holds",http_request_method="POST",http_response_status_code="201"}')"
    served_bookings="$(bench_metric "$metrics" 'hb_requests{http_route="/v1/bookings",http_request_method="POST",http_response_status_code="201"}')"
    served_holds="${served_holds%.*}"
    served_bookings="${served_bookings%.*}"

    say "checking for double holds (Redis: every hold record against its seat keys)"
    reply="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --eval "$BOOKING_LUA/verify-holds.lua" 2>&1 | tr -d '\r' | paste -sd' ')"
    local records listed mismatched shared seat_keys converted orphans
    read -r records listed mismatched shared seat_keys converted orphans <<<"$reply"
    if ! [[ "${orphans:-}" =~ ^[0-9]+$ ]]; then
        VERIFY_HOLDS="the Redis check failed: $reply"
    else
        echo "holds: $records hold records listing $listed seats, $seat_keys seat keys; seats in two hold records: $shared;" \
            "seat keys not pointing back at their hold: $mismatched; seat keys without a hold record: $orphans;" \
            "201s served (service metrics): $served_holds, seen by the clients: $holds_seen (at most $in_flight in flight at the ends of runs)"
        if ((shared > 0 || mismatched > 0)); then
            VERIFY_HOLDS="DOUBLE HOLDS: $shared seats in two hold records, $mismatched seat keys pointing elsewhere"
        elif [[ -z "$metrics" ]]; then
            VERIFY_HOLDS="the service did not answer GET /metrics, so its counts cannot be compared"
        elif ((orphans > 0)); then
            VERIFY_HOLDS="$orphans seat keys held by no hold record"
        elif ((records != served_holds)); then
            VERIFY_HOLDS="$records hold records but the service answered $served_holds holds with 201"
        elif ((served_holds < holds_seen || served_holds - holds_seen > in_flight)); then
            VERIFY_HOLDS="the service answered $served_holds holds with 201 but the clients saw $holds_seen"
        fi
    fi

    say "checking for double bookings (Postgres: active booking seats per event and seat)"
    local doubles bookings seats
    doubles="$(bench_psql booking -c 'SELECT count(*) FROM (SELECT event_id, seat_id, count(*) FROM booking.booking_seats WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1) AS d')"
    bookings="$(bench_psql booking -c 'SELECT count(*) FROM booking.bookings')"
    seats="$(bench_psql booking -c 'SELECT count(*) FROM booking.booking_seats WHERE released_at IS NULL')"
    echo "bookings: $bookings bookings with $seats active seats; seats in two active bookings: $doubles;" \
        "hold records marked converted in Redis: ${converted:-?}; 201s served: $served_bookings, seen by the clients: $bookings_seen" \
        "(at most $in_flight_bookings in flight)"
    if ((doubles > 0)); then
        VERIFY_BOOKINGS="DOUBLE BOOKINGS: $doubles seats in two active bookings"
    elif [[ -z "$metrics" ]]; then
        VERIFY_BOOKINGS="the service did not answer GET /metrics, so its counts cannot be compared"
    elif ((bookings != served_bookings)); then
        VERIFY_BOOKINGS="$bookings bookings in Postgres but the service answered $served_bookings conversions with 201"
    elif ((served_bookings < bookings_seen || served_bookings - bookings_seen > in_flight_bookings)); then
        VERIFY_BOOKINGS="the service answered $served_bookings conversions with 201 but the clients saw $bookings_seen"
    elif [[ "${converted:-}" != "$bookings" ]]; then
        VERIFY_BOOKINGS="$bookings bookings in Postgres but ${converted:-?} hold records marked converted in Redis"
    elif ((open_failures > 0)); then
        VERIFY_BOOKINGS="the open-loop runs saw $open_failures failed requests"
    fi
}
