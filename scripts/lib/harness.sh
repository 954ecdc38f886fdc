# shellcheck shell=bash
#
# Shared helpers of the scripts that check a running service from outside (scripts/fuzz-api,
# scripts/webhook-sdk-tests); sourced after scripts/lib/servers.sh, never executed:
#
#   ensure_python_venv VENV REQUIREMENTS CHECK
#       a virtualenv at VENV holding exactly the pinned REQUIREMENTS (pip install -r, recorded by
#       the file's checksum in VENV/.requirements.sha256); CHECK is Python code that must run in it
#       (e.g. an import and a version assertion). apt-get installs python3 and python3-venv when
#       missing; a virtualenv whose interpreter is gone (Python upgraded) is rebuilt.
#   create_scratch_database PREFIX
#       creates a database named PREFIX_<pid>_<random> on the server of DATABASE_URL (a superuser
#       URL) and sets SCRATCH_DATABASE_URL to its URL; drop_scratch_databases drops it again.
#   drop_scratch_databases          drops every database create_scratch_database made (FORCE)
#   start_service LOG EXECUTABLE [NAME=VALUE...]
#       `EXECUTABLE serve` on a free port of 127.0.0.1 with the given environment (added to the
#       current one), output in LOG; waits up to 30 s for /readyz. Sets STARTED_PID and
#       STARTED_URL (http://127.0.0.1:PORT). On failure prints the log and returns 1.
#   stop_started_services           SIGTERM (then SIGKILL after 15 s) every service start_service started
#   show_service_errors LOG         the error lines a service logged (else the log's end)
#   random_hex                      32 random hex digits
#
# Like servers.sh, every function reports failures on stderr and returns non-zero (never `exit`).

if [[ -n "${_BOOKING_HARNESS_SH_LOADED:-}" ]]; then
    return 0
fi
_BOOKING_HARNESS_SH_LOADED=1

SCRATCH_DATABASES=()
STARTED_PIDS=()

random_hex() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# ---------------------------------------------------------------------------------------------
# Python tools in their own virtualenv

ensure_python_venv() {
    local venv="$1" requirements="$2" check="$3" digest
    digest="$(sha256sum <"$requirements")"
    if "$venv/bin/python" -c '' >/dev/null 2>&1 &&
        [[ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" == "$digest" ]] &&
        "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
        return 0
    fi
    ensure_packages python3 || return 1
    if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")" || return 1
        # Debian's python3 has no venv (ensurepip) without python3-venv.
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            ensure_packages python3-venv || return 1
            python3 -m venv "$venv" || return 1
        fi
    fi
    say "pip install -r ${requirements#"${ROOT:-}/"} into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" || {
        err "pip install -r $requirements failed"
        return 1
    }
    printf '%s\n' "$digest" >"$venv/.requirements.sha256"
    "$venv/bin/python" -c "$check" || {
        err "the virtualenv $venv does not pass its check after installing $requirements"
        return 1
    }
}

# ---------------------------------------------------------------------------------------------
# Scratch databases next to DATABASE_URL

_harness_psql() {
    printf '%s/psql\n' "$(pg_bindir)"
}

create_scratch_database() {
    local prefix="$1" psql url_base url_query="" database
    psql="$(_harness_psql)" || return 1
    if [[ ! "${DATABASE_URL%%\?*}" =~ ^([A-Za-z][A-Za-z0-9+.-]*://[^/]*) ]]; then
        err "DATABASE_URL is not a postgres://user@host:port/db URL"
        return 1
    fi
    url_base="${BASH_REMATCH[1]}"
    if [[ "$DATABASE_URL" == *\?* ]]; then
        url_query="?${DATABASE_URL#*\?}"
    fi
    database="${prefix}_$$_$RANDOM"
    "$psql" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$database\"" >/dev/null || {
        err "could not create database $database next to DATABASE_URL"
        return 1
    }
    SCRATCH_DATABASES+=("$database")
    # shellcheck disable=SC2034  # read by the caller
    SCRATCH_DATABASE_URL="$url_base/$database$url_query"
}

drop_scratch_databases() {
    local psql database
    ((${#SCRATCH_DATABASES[@]} > 0)) || return 0
    psql="$(_harness_psql)" || return 1
    for database in "${SCRATCH_DATABASES[@]}"; do
        "$psql" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 ||
            warn "could not drop database $database"
    done
    SCRATCH_DATABASES=()
}

# ---------------------------------------------------------------------------------------------
# Services under test

start_service() {
    local log="$1" executable="$2" port deadline
    shift 2
    port="$(free_port)" || return 1
    STARTED_URL="http://127.0.0.1:$port"
    env "$@" HOST=127.0.0.1 PORT="$port" "$executable" serve >"$log" 2>&1 &
    STARTED_PID=$!
    STARTED_PIDS+=("$STARTED_PID")
    deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null --max-time 2 "$STARTED_URL/readyz" 2>/dev/null; do
        if ! pid_alive "$STARTED_PID"; then
            wait "$STARTED_PID" 2>/dev/null || true
            cat "$log" >&2
            err "$(basename "$executable") serve exited before it was ready"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$log" 20
            err "$(basename "$executable") serve was not ready on $STARTED_URL within 30s"
            return 1
        fi
        sleep 0.2
    done
}

stop_started_services() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        stop_pid "$pid" 15
    done
    STARTED_PIDS=()
}

show_service_errors() {
    local log="$1"
    [[ -s "$log" ]] || return 0
    if grep -q '"level":"error"\|"level":"critical"' "$log"; then
        printf 'errors %s logged:\n' "$log" >&2
        grep '"level":"error"\|"level":"critical"' "$log" | tail -n 20 >&2
    else
        show_log_tail "$log" 20
    fi
}
