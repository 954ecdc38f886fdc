# shellcheck shell=bash
# shellcheck disable=SC2317  # the pair functions are called by name from scripts/bench
# shellcheck disable=SC2034  # VERIFY_PAYOUT and PAYOUT_* are read by scripts/bench
#
# The payout run's pair of `scripts/bench` (sourced by it, never executed):
#
#   payout  ours: for each size N of PAYOUT_SIZES (100000 and 1000000 bookings; N / PAYOUT_BOOKINGS_PER_HOST
#           hosts, i.e. 1,000 and 10,000): `platform-bench payout-fixture` (Services/Bench/PayoutBench.swift)
#           fills the payout ledger with N settled bookings (a revenue and a fee entry each, a refund and a
#           fee reversal every PAYOUT_REFUND_EVERY-th booking, every entry open), then `payout run --date
#           <yesterday UTC>` (the release binary, PAYOUT_SETTLEMENT_DELAY=0s) is timed: wall seconds and
#           peak RSS (/usr/bin/time -v). The table's OURS/s is bookings per second at the largest N.
#           theirs: the floor. For each N the same fixture is generated again, then one hand-written psql
#           statement is timed: `INSERT INTO bench_floor_lines SELECT host_id, currency, sum(amount) FROM
#           payout.open_entries JOIN payout.entries ... GROUP BY host_id, currency` with the run's own
#           payable filter (the aggregate alone: the table's THEIRS/s), and after it, on the same data, one
#           statement that also writes an items-like row per entry (`WITH items AS (INSERT INTO
#           bench_floor_items ... RETURNING ...) INSERT INTO bench_floor_lines SELECT ... GROUP BY`).
#           Both scratch tables are plain heaps in the public schema of database `payout`.
#
# After each measurement the same data is checked (psql), so a broken run cannot report a fast time:
# the run completed; the sum of its payouts equals the sum of the ledger's entries (all of them are
# payable and every balance is positive); every entry is in exactly one item and none is open; one
# payout and one report line per balance; every payout announced (messaging.outbox). The floors: one
# line per balance, their sum equals the entries' sum, one item per entry.
#
# payout_verify (after the pair) prints the table: bookings, hosts, run seconds, peak RSS, both
# floors and the ratios, where the run's time went (planning, computing, reconciling, publishing,
# from its log lines and payouts.announced_at; the Postgres statements slower than
# PAYOUT_LOG_SLOW_MS with their total time; the cores of Postgres and of `payout run`), and the
# linearity t(largest N) / t(smallest N) against the ideal (the size ratio, 10). The goal (met or
# not, in the main table): at the largest N under PAYOUT_GOAL_SECONDS (30) and PAYOUT_GOAL_RSS_MB
# (300 MB), within PAYOUT_GOAL_RATIO (3) x the aggregate floor, and linear: t(1M)/t(100k) at most
# PAYOUT_LINEARITY_SLACK (1.2) x the size ratio.
#
# Before each measurement Postgres is settled: VACUUM ANALYZE of database payout (the ledger is then
# as autovacuum would leave an old one: hint bits and visibility map set) and CHECKPOINT; the other
# pairs' services are paused. messaging.outbox and messaging.aggregate_sequences of database payout are
# emptied with the fixture (the run appends payout.created there).
#
# Tunables (environment): PAYOUT_BIN (a payout executable instead of the built one), PAYOUT_SIZES
# ("100000 1000000"), PAYOUT_BOOKINGS_PER_HOST (100), PAYOUT_REFUND_EVERY (10), PAYOUT_CURRENCIES
# (EUR; e.g. EUR,JPY gives every host a balance per currency), PAYOUT_BATCH_HOSTS (unset: the
# service's default), PAYOUT_LOG_SLOW_MS (200; log_min_duration_statement of database payout),
# PAYOUT_RESULTS_DIR (a folder outside the repository to keep the pair's logs and results in; the
# bench's own folder is removed at exit), PAYOUT_GOAL_SECONDS, PAYOUT_GOAL_RSS_MB, PAYOUT_GOAL_RATIO,
# PAYOUT_LINEARITY_SLACK.

PAYOUT_SIZES="${PAYOUT_SIZES:-100000 1000000}"
PAYOUT_BOOKINGS_PER_HOST="${PAYOUT_BOOKINGS_PER_HOST:-100}"
PAYOUT_REFUND_EVERY="${PAYOUT_REFUND_EVERY:-10}"
PAYOUT_CURRENCIES="${PAYOUT_CURRENCIES:-EUR}"
PAYOUT_LOG_SLOW_MS="${PAYOUT_LOG_SLOW_MS:-200}"
PAYOUT_GOAL_SECONDS="${PAYOUT_GOAL_SECONDS:-30}"
PAYOUT_GOAL_RSS_MB="${PAYOUT_GOAL_RSS_MB:-300}"
PAYOUT_GOAL_RATIO="${PAYOUT_GOAL_RATIO:-3}"
PAYOUT_LINEARITY_SLACK="${PAYOUT_LINEARITY_SLACK:-1.2}"
PAYOUT_DIR=""
# Set by payout_verify: yes or NO (the goal's parts beyond the main table's rate and ratio).
PAYOUT_GOAL_MET=""
PAYOUT_GOAL_LINE=""

_payout_psql() { bench_psql payout "$@"; }

# --- setup --------------------------------------------------------------------------------------

payout_setup() {
    PAYOUT_DIR="$BENCH_DIR/payout"
    mkdir -p "$PAYOUT_DIR"
    : >"$PAYOUT_DIR/results"
    local size
    for size in $PAYOUT_SIZES; do
        if ! [[ "$size" =~ ^[1-9][0-9]*$ ]] || ((size < PAYOUT_BOOKINGS_PER_HOST)); then
            err "PAYOUT_SIZES: '$size' is not a number of bookings of at least PAYOUT_BOOKINGS_PER_HOST ($PAYOUT_BOOKINGS_PER_HOST)"
            return 1
        fi
    done
    bench_copy_service "${PAYOUT_BIN:-$PAYOUT_BUILT_BIN}" "$PAYOUT_DIR/payout"
    bench_create_databases "$PAYOUT_DIR/payout" payout
    _payout_psql >&2 <<SQL
ALTER DATABASE payout SET log_min_duration_statement = $PAYOUT_LOG_SLOW_MS;
CREATE TABLE bench_floor_lines (host_id text NOT NULL, currency char(3) NOT NULL, amount bigint NOT NULL);
CREATE TABLE bench_floor_items (host_id text NOT NULL, currency char(3) NOT NULL, entry_id bigint NOT NULL, amount bigint NOT NULL);
SQL
}

payout_teardown() {
    if [[ -n "$PAYOUT_DIR" && -d "$PAYOUT_DIR" && -n "${PAYOUT_RESULTS_DIR:-}" ]]; then
        mkdir -p "$PAYOUT_RESULTS_DIR" && cp -r "$PAYOUT_DIR"/. "$PAYOUT_RESULTS_DIR"/ && rm -f "$PAYOUT_RESULTS_DIR/payout" &&
            say "payout bench results kept in $PAYOUT_RESULTS_DIR"
    fi
}

# --- helpers ------------------------------------------------------------------------------------

# The other pairs' services (those that ran before and are still up).
_payout_others() {
    printf '%s\n' "${BOOKING_PID:-}" "${PAYMENTS_PID:-}" "${SAGA_BOOKING_PID:-}" "${SAGA_PAYMENTS_PID:-}" "${NOTIFICATION_PID:-}" \
        "${NOTIFICATION_RECEIVER_PID:-}"
}

_payout_hosts() { echo $(($1 / PAYOUT_BOOKINGS_PER_HOST)); }

# The run's date and cut-off: yesterday in UTC, whose end (today 00:00 UTC) is the cut-off.
_payout_run_date() { date -u -d yesterday +%F; }
_payout_cutoff() { echo "$(date -u +%F) 00:00:00+00"; }

_payout_now() { date +%s.%N; }
_payout_seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# _payout_fixture LABEL N: a fresh ledger of N bookings (and an empty outbox), settled for measuring.
_payout_fixture() {
    local label="$1" n="$2" hosts
    hosts="$(_payout_hosts "$n")"
    say "payout: fixture of $n bookings over $hosts hosts ($PAYOUT_CURRENCIES, a refund every $PAYOUT_REFUND_EVERY)"
    "$BENCH_BIN" payout-fixture --database-url "postgres://postgres@127.0.0.1:$PG_PORT/payout" --bookings "$n" --hosts "$hosts" \
        --refund-every "$PAYOUT_REFUND_EVERY" --currencies "$PAYOUT_CURRENCIES" >"$PAYOUT_DIR/fixture-$label.out" 2>&1 || {
        cat "$PAYOUT_DIR/fixture-$label.out" >&2
        err "platform-bench payout-fixture ($n bookings) failed"
        return 1
    }
    cat "$PAYOUT_DIR/fixture-$label.out" >&2
    _payout_psql -c 'TRUNCATE messaging.outbox, messaging.aggregate_sequences, bench_floor_lines, bench_floor_items' >&2
    # As autovacuum leaves an old ledger (hint bits, visibility map), and no checkpoint in the measurement.
    bench_vacuum payout
    bench_psql postgres -c 'CHECKPOINT' >&2
}

# _payout_log_offset: the size of Postgres' log now (the slow statements of a measurement come after).
_payout_log_offset() { stat -c %s "$BENCH_DIR/postgres/postgres.log" 2>/dev/null || echo 0; }

# _payout_slow_statements FROM OUT: the statements slower than PAYOUT_LOG_SLOW_MS logged since byte
# FROM of Postgres' log, grouped by their first line: count, total and largest seconds.
_payout_slow_statements() {
    tail -c +"$(($1 + 1))" "$BENCH_DIR/postgres/postgres.log" 2>/dev/null | awk '
        / LOG:  duration: [0-9.]+ ms  (execute|statement)/ {
            for (i = 1; i <= NF; i++) if ($i == "duration:") ms = $(i + 1)
            text = $0; sub(/.* ms  (execute [^:]*|statement): /, "", text); text = substr(text, 1, 70)
            n[text]++; total[text] += ms; if (ms > top[text]) top[text] = ms
        }
        END { for (t in n) printf "  %7.2f s  %3d x  max %6.2f s  %s\n", total[t] / 1000, n[t], top[t] / 1000, t }' | sort -rn >"$2"
}

# _payout_ts LOG MESSAGE [FILTER]: the epoch seconds of the first log line of `payout run` with that
# message (and FILTER in it).
_payout_ts() {
    local line ts
    line="$(grep "\"message\":\"$2\"" "$1" | grep -e "${3:-.}" | head -n1)"
    ts="$(sed -n 's/.*"ts":"\([^"]*\)".*/\1/p' <<<"$line")"
    [[ -n "$ts" ]] && date -u -d "$ts" +%s.%N || echo ""
}

# --- ours: payout run ---------------------------------------------------------------------------

# _payout_run N: the fixture, then `payout run` timed; its result line goes to results.
_payout_run() {
    local n="$1" hosts label="run-$1" date started ended wall rss cpu offset check phases
    hosts="$(_payout_hosts "$n")"
    date="$(_payout_run_date)"
    _payout_fixture "$label" "$n" || return 1
    say "payout: payout run --date $date ($n bookings, $hosts hosts)"
    offset="$(_payout_log_offset)"
    bench_measure_begin ""
    started="$(_payout_now)"
    local env=(DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/payout" PAYOUT_SETTLEMENT_DELAY=0s LOG_LEVEL=info)
    [[ -z "${PAYOUT_BATCH_HOSTS:-}" ]] || env+=(PAYOUT_BATCH_HOSTS="$PAYOUT_BATCH_HOSTS")
    if ! /usr/bin/time -v -o "$PAYOUT_DIR/$label.time" env "${env[@]}" "$PAYOUT_DIR/payout" run --date "$date" \
        >"$PAYOUT_DIR/$label.log" 2>&1; then
        ended="$(_payout_now)"
        show_log_tail "$PAYOUT_DIR/$label.log" 30
        err "payout run ($n bookings) failed"
        printf 'run %s %s %s n/a n/a FAILED:_payout_run_exited_non-zero\n' "$n" "$hosts" "$(_payout_seconds "$started" "$ended")" \
            >>"$PAYOUT_DIR/results"
        return 1
    fi
    ended="$(_payout_now)"
    wall="$(_payout_seconds "$started" "$ended")"
    rss="$(awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$PAYOUT_DIR/$label.time")"
    cpu="$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f\n", s }' "$PAYOUT_DIR/$label.time")"
    bench_measure_end "payout_run_$n" "$cpu" "" | sed 's/ load_generator=/ payout_run=/' >"$PAYOUT_DIR/$label.cpu"
    _payout_slow_statements "$offset" "$PAYOUT_DIR/$label.slow"
    check="$(_payout_check_run "$n" "$date")"
    phases="$(_payout_phases "$PAYOUT_DIR/$label.log" "$date")"
    printf 'run %s %s %s %s %s %s %s\n' "$n" "$hosts" "$wall" "$rss" "$cpu" "${check// /_}" "$phases" >>"$PAYOUT_DIR/results"
    echo "payout_run_$n seconds=$wall peak_rss_mb=$rss cpu_seconds=$cpu check=$check phases(plan/compute/reconcile/publish)=$phases"
    cat "$PAYOUT_DIR/$label.cpu"
    [[ "$check" == ok ]]
}

# _payout_phases LOG DATE: "plan/compute/reconcile/publish" seconds of the run, from its log lines
# (created; progress 0 done; progress all done; finished) and the first payouts.announced_at.
_payout_phases() {
    local created first last finished announced
    created="$(_payout_ts "$1" "payout run created")"
    first="$(_payout_ts "$1" "payout run progress" '"hosts_done":"0"')"
    last="$(grep '"message":"payout run progress"' "$1" | awk -F'"hosts_done":"' '{ split($2, a, "\""); d = a[1] }
        { split($0, b, "\"hosts_total\":\""); split(b[2], c, "\""); if (d == c[1]) { print; exit } }' |
        sed -n 's/.*"ts":"\([^"]*\)".*/\1/p')"
    [[ -z "$last" ]] || last="$(date -u -d "$last" +%s.%N)"
    finished="$(_payout_ts "$1" "payout run finished")"
    announced="$(_payout_psql -c "SELECT extract(epoch FROM min(p.announced_at)) FROM payout.payouts p
        JOIN payout.runs r ON r.id = p.run_id WHERE r.run_date = '$2'")"
    awk -v a="$created" -v b="$first" -v c="$last" -v d="$announced" -v e="$finished" 'BEGIN {
        if (a == "" || b == "" || c == "" || d == "" || e == "") { print "n/a"; exit }
        printf "%.1f/%.1f/%.1f/%.1f\n", b - a, c - b, d - c, e - d }'
}

# _payout_check_run N DATE: "ok" or what is wrong with the run of DATE over the fixture of N bookings.
_payout_check_run() {
    local out
    out="$(_payout_psql -F '|' <<SQL
WITH run AS (SELECT id, status FROM payout.runs WHERE run_date = '$2'),
ledger AS (SELECT count(*) AS entries, coalesce(sum(amount), 0) AS total, count(DISTINCT (host_id, currency)) AS balances
           FROM payout.entries)
SELECT
  (SELECT coalesce(max(status), 'missing') FROM run),
  (SELECT coalesce(sum(p.amount), 0) FROM payout.payouts p JOIN run ON run.id = p.run_id),
  (SELECT total FROM ledger),
  (SELECT count(*) FROM payout.payouts p JOIN run ON run.id = p.run_id),
  (SELECT count(*) FROM payout.run_lines l JOIN run ON run.id = l.run_id),
  (SELECT balances FROM ledger),
  (SELECT count(*) FROM payout.payout_items i JOIN payout.payouts p ON p.id = i.payout_id JOIN run ON run.id = p.run_id
    WHERE NOT i.released),
  (SELECT count(DISTINCT i.entry_id) FROM payout.payout_items i JOIN payout.payouts p ON p.id = i.payout_id JOIN run ON run.id = p.run_id),
  (SELECT entries FROM ledger),
  (SELECT count(*) FROM payout.open_entries),
  (SELECT count(*) FROM payout.payouts p JOIN run ON run.id = p.run_id WHERE p.announced_at IS NULL),
  (SELECT count(*) FROM messaging.outbox WHERE event_type = 'payout.created'),
  (SELECT count(*) FROM payout.bookings)
SQL
    )" || {
        echo "the SQL check did not run"
        return 0
    }
    awk -F'|' -v n="$1" '{
        bad = ""
        if ($1 != "completed") bad = bad "; status " $1
        if ($2 != $3) bad = bad "; payouts sum to " $2 ", the entries to " $3
        if ($4 != $6 || $5 != $6) bad = bad "; " $4 " payouts and " $5 " lines for " $6 " balances"
        if ($7 != $9 || $8 != $9) bad = bad "; " $7 " items (" $8 " entries) for " $9 " entries"
        if ($10 != 0) bad = bad "; " $10 " entries still open"
        if ($11 != 0) bad = bad "; " $11 " payouts not announced"
        if ($12 != $4) bad = bad "; " $12 " payout.created in the outbox for " $4 " payouts"
        if ($13 != n) bad = bad "; " $13 " bookings instead of " n
        print (bad == "" ? "ok" : "FAILED:" substr(bad, 2))
    }' <<<"$out"
}

ours_payout() {
    local n last=""
    # shellcheck disable=SC2046  # one pid per line
    bench_pause_until_exit $(_payout_others)
    for n in $PAYOUT_SIZES; do
        _payout_run "$n" || return 1
        last="$n"
    done
    awk -v n="$last" '$1 == "run" && $2 == n { if ($4 > 0) printf "payout_bookings_per_second=%.0f (%d bookings in %.2f s, peak RSS %s MB)\n", n / $4, n, $4, $5 }' \
        "$PAYOUT_DIR/results"
}

# --- theirs: the floor --------------------------------------------------------------------------

_payout_floor_filter() {
    echo "e.occurred_at <= '$1' AND (e.event_ends_at IS NULL OR e.event_ends_at <= '$1')"
}

# _payout_floor N: the fixture again, then the two floor statements timed; result lines to results.
_payout_floor() {
    local n="$1" hosts cutoff where started ended agg items check_agg check_items
    hosts="$(_payout_hosts "$n")"
    cutoff="$(_payout_cutoff)"
    where="$(_payout_floor_filter "$cutoff")"
    _payout_fixture "floor-$n" "$n" || return 1

    say "payout: floor, the aggregate alone ($n bookings)"
    started="$(_payout_now)"
    _payout_psql -c "INSERT INTO bench_floor_lines (host_id, currency, amount)
        SELECT o.host_id, o.currency, sum(e.amount)
        FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id
        WHERE $where
        GROUP BY o.host_id, o.currency" >&2 || return 1
    ended="$(_payout_now)"
    agg="$(_payout_seconds "$started" "$ended")"
    check_agg="$(_payout_check_floor 0)"

    _payout_psql -c 'TRUNCATE bench_floor_lines, bench_floor_items' -c 'CHECKPOINT' >&2
    say "payout: floor, the aggregate and an item per entry ($n bookings)"
    started="$(_payout_now)"
    _payout_psql -c "WITH items AS (
            INSERT INTO bench_floor_items (host_id, currency, entry_id, amount)
            SELECT o.host_id, o.currency, o.entry_id, e.amount
            FROM payout.open_entries o JOIN payout.entries e ON e.id = o.entry_id
            WHERE $where
            RETURNING host_id, currency, amount
        )
        INSERT INTO bench_floor_lines (host_id, currency, amount)
        SELECT host_id, currency, sum(amount) FROM items GROUP BY host_id, currency" >&2 || return 1
    ended="$(_payout_now)"
    items="$(_payout_seconds "$started" "$ended")"
    check_items="$(_payout_check_floor 1)"
    printf 'floor %s %s %s %s %s %s\n' "$n" "$hosts" "$agg" "$items" "${check_agg// /_}" "${check_items// /_}" >>"$PAYOUT_DIR/results"
    printf 'payout floor %s bookings: aggregate %s s (%s), aggregate + items %s s (%s)\n' "$n" "$agg" "$check_agg" "$items" "$check_items" >&2
    [[ "$check_agg" == ok && "$check_items" == ok ]]
}

# _payout_check_floor WITH_ITEMS: "ok" or what the floor statement got wrong.
_payout_check_floor() {
    local out
    out="$(_payout_psql -F '|' -c "SELECT (SELECT count(*) FROM bench_floor_lines), (SELECT coalesce(sum(amount), 0) FROM bench_floor_lines),
        (SELECT count(DISTINCT (host_id, currency)) FROM payout.entries), (SELECT coalesce(sum(amount), 0) FROM payout.entries),
        (SELECT count(*) FROM bench_floor_items), (SELECT count(*) FROM payout.entries)")" || {
        echo "the SQL check did not run"
        return 0
    }
    awk -F'|' -v items="$1" '{
        bad = ""
        if ($1 != $3) bad = bad "; " $1 " lines for " $3 " balances"
        if ($2 != $4) bad = bad "; lines sum to " $2 ", the entries to " $4
        if (items && $5 != $6) bad = bad "; " $5 " items for " $6 " entries"
        print (bad == "" ? "ok" : "FAILED:" substr(bad, 2))
    }' <<<"$out"
}

theirs_payout() {
    local n last=""
    # shellcheck disable=SC2046  # one pid per line
    bench_pause_until_exit $(_payout_others)
    for n in $PAYOUT_SIZES; do
        _payout_floor "$n" || return 1
        last="$n"
    done
    awk -v n="$last" '$1 == "floor" && $2 == n && $4 > 0 { printf "%.0f\n", n / $4 }' "$PAYOUT_DIR/results"
}

# --- checks and the table -----------------------------------------------------------------------

# payout_verify: prints the table; sets VERIFY_PAYOUT (ok or what failed), PAYOUT_GOAL_MET (yes or
# NO: time, RSS, ratio and linearity at the largest size) and PAYOUT_GOAL_LINE.
payout_verify() {
    local results="$PAYOUT_DIR/results" failed=() n
    VERIFY_PAYOUT=ok
    PAYOUT_GOAL_MET=n/a
    say "payout: the runs and floors (checked in SQL after each measurement)"
    mapfile -t failed < <(awk '$1 == "run" && $7 != "ok" { print "run of " $2 " bookings: " $7 }
        $1 == "floor" && ($6 != "ok" || $7 != "ok") { print "floor of " $2 " bookings: " $6 " " $7 }' "$results" | tr '_' ' ')
    for n in $PAYOUT_SIZES; do
        grep -q "^run $n " "$results" || failed+=("no run of $n bookings")
        grep -q "^floor $n " "$results" || failed+=("no floor of $n bookings")
    done
    if ((${#failed[@]} > 0)); then
        VERIFY_PAYOUT="FAILED: $(
            IFS=';'
            echo "${failed[*]}"
        )"
    fi

    echo
    echo "payout run vs the floor (nproc=$(nproc), Postgres durable; same fixture generated again for the floor; $PAYOUT_CURRENCIES," \
        "a refund every $PAYOUT_REFUND_EVERY bookings)"
    awk -v sizes="$PAYOUT_SIZES" -v goal_s="$PAYOUT_GOAL_SECONDS" -v goal_rss="$PAYOUT_GOAL_RSS_MB" -v goal_ratio="$PAYOUT_GOAL_RATIO" \
        -v slack="$PAYOUT_LINEARITY_SLACK" '
        $1 == "run" { run[$2] = $4; rss[$2] = $5; cpu[$2] = $6; rcheck[$2] = $7; phases[$2] = $8; hosts[$2] = $3 }
        $1 == "floor" { agg[$2] = $4; items[$2] = $5; hosts[$2] = $3 }
        END {
            printf "%-9s %6s %8s %8s %8s %11s %6s %14s %6s  %-26s %s\n", "BOOKINGS", "HOSTS", "RUN s", "CPU s", "RSS MB", "FLOOR agg s", "RATIO",
                "FLOOR +items s", "RATIO", "plan/compute/recon/publish", "CHECK"
            k = split(sizes, n, " ")
            for (i = 1; i <= k; i++) {
                s = n[i]
                r1 = (agg[s] > 0 && run[s] != "") ? sprintf("%.1f", run[s] / agg[s]) : "n/a"
                r2 = (items[s] > 0 && run[s] != "") ? sprintf("%.1f", run[s] / items[s]) : "n/a"
                printf "%-9s %6s %8s %8s %8s %11s %6s %14s %6s  %-26s %s\n", s, hosts[s], run[s], cpu[s], rss[s], agg[s], r1, items[s], r2,
                    phases[s], rcheck[s]
            }
            small = n[1]; large = n[k]
            met = "yes"; why = ""
            if (run[large] == "" || run[large] + 0 >= goal_s) { met = "NO"; why = why sprintf(" time %s s >= %s s;", run[large], goal_s) }
            if (rss[large] == "" || rss[large] + 0 >= goal_rss) { met = "NO"; why = why sprintf(" peak RSS %s MB >= %s MB;", rss[large], goal_rss) }
            if (agg[large] + 0 <= 0 || run[large] / agg[large] > goal_ratio) {
                met = "NO"; why = why sprintf(" %s x the floor > %s x;", (agg[large] > 0 ? sprintf("%.1f", run[large] / agg[large]) : "n/a"), goal_ratio)
            }
            if (k > 1 && run[small] > 0) {
                lin = run[large] / run[small]; ideal = large / small
                printf "linearity: t(%s)/t(%s) = %.1f (ideal %.0f, goal at most %.1f); floor: %.1f (aggregate), %.1f (+items)\n", large, small, lin,
                    ideal, ideal * slack, (agg[small] > 0 ? agg[large] / agg[small] : 0), (items[small] > 0 ? items[large] / items[small] : 0)
                if (lin > ideal * slack) { met = "NO"; why = why sprintf(" t(%s)/t(%s) = %.1f > %.1f;", large, small, lin, ideal * slack) }
            }
            printf "goal at %s bookings: under %s s and %s MB, within %sx of the aggregate floor, linear: %s%s\n", large, goal_s, goal_rss,
                goal_ratio, met, (why == "" ? "" : " (" substr(why, 2, length(why) - 2) ")")
            print "GOAL " met
        }' "$results" >"$PAYOUT_DIR/table"
    grep -v '^GOAL ' "$PAYOUT_DIR/table"
    PAYOUT_GOAL_MET="$(sed -n 's/^GOAL //p' "$PAYOUT_DIR/table")"
    PAYOUT_GOAL_LINE="$(grep '^goal at ' "$PAYOUT_DIR/table" || true)"
    for n in $PAYOUT_SIZES; do
        if [[ -s "$PAYOUT_DIR/run-$n.slow" ]]; then
            echo "payout run of $n bookings: Postgres statements slower than $PAYOUT_LOG_SLOW_MS ms (total, count, largest, statement):"
            head -n 12 "$PAYOUT_DIR/run-$n.slow"
        fi
        [[ ! -f "$PAYOUT_DIR/run-$n.cpu" ]] || cat "$PAYOUT_DIR/run-$n.cpu"
    done
    # Warns of the measurements during which other processes took cores (a build, say).
    bench_show_measurements "$PAYOUT_DIR"
    echo "payout check: $VERIFY_PAYOUT"
}
