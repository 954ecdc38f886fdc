# shellcheck shell=bash
#
# Shared helpers for scripts/test, scripts/run and scripts/bench (sourced, never executed):
#
#   ensure_packages [PKG...]        apt-get install what is missing (default: the project's set)
#   pg_bindir                       the PostgreSQL server binaries folder (initdb, pg_ctl, ...)
#   ensure_pg_user / pg_as_user     the unprivileged user that owns Postgres data when we are root
#   start_postgres DIR PORT [fast|durable]   initdb DIR if new, start, wait for pg_isready
#   stop_postgres DIR               pg_ctl stop -m fast, waits (no-op when not running)
#   postgres_running DIR            true when a postmaster runs on DIR
#   start_redis DIR PORT            non-persistent redis-server daemon, waits for PONG
#   stop_redis DIR|PORT             SHUTDOWN NOSAVE, waits until the process is gone
#   free_ports N / free_port        TCP ports nobody listens on (kernel-assigned when python3 exists)
#   port_in_use PORT                true when something listens on 127.0.0.1:PORT
#   pid_alive PID                   true when PID runs and is not a zombie
#   stop_pid PID [SECONDS]          TERM, wait, then KILL
#   show_log_tail FILE [LINES]      print the end of a log with a header (for failures)
#   claim_scratch_dir DIR           record this shell as DIR's owner (for sweep_stale_scratch_dirs)
#   sweep_stale_scratch_dirs GLOB   stop the servers of, and remove, scratch folders whose owner
#                                   died without cleaning up (e.g. a SIGKILLed CI run)
#
# Every function is safe under `set -euo pipefail`: failures are reported on stderr and returned
# as a non-zero status (never an `exit` from inside the library).
#
# Tunables (environment): PG_SYSTEM_USER (default bookingpg, used only when running as root),
# PG_BIN (server binaries folder), SERVER_START_TIMEOUT (seconds, default 30), SERVERS_QUIET=1
# (no progress lines).

if [[ -n "${_BOOKING_SERVERS_SH_LOADED:-}" ]]; then
    return 0
fi
_BOOKING_SERVERS_SH_LOADED=1

SERVERS_LIB="${BASH_SOURCE[0]}"
if [[ "$SERVERS_LIB" != /* ]]; then
    SERVERS_LIB="$(cd "$(dirname "$SERVERS_LIB")" && pwd)/$(basename "$SERVERS_LIB")"
fi
PG_SYSTEM_USER="${PG_SYSTEM_USER:-bookingpg}"
SERVER_START_TIMEOUT="${SERVER_START_TIMEOUT:-30}"

# The packages every script needs. redis-tools brings redis-cli and redis-benchmark; the
# postgresql package brings the server, psql, pg_isready and pgbench.
DEFAULT_PACKAGES=(postgresql postgresql-contrib libpq-dev redis-server redis-tools libhiredis-dev pkg-config curl)

say() {
    if [[ "${SERVERS_QUIET:-0}" != 1 ]]; then
        printf '==> %s\n' "$*" >&2
    fi
}

warn() {
    printf 'warning: %s\n' "$*" >&2
}

err() {
    printf 'error: %s\n' "$*" >&2
}

# ---------------------------------------------------------------------------------------------
# Packages

_dpkg_installed() {
    local status
    status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)"
    [[ "$status" == installed ]]
}

_have() {
    command -v "$1" >/dev/null 2>&1
}

# True when what package $1 provides is usable here (functional checks first, dpkg last).
_package_present() {
    case "$1" in
        postgresql) pg_bindir >/dev/null 2>&1 ;;
        libpq-dev)
            { _have pkg-config && pkg-config --exists libpq; } ||
                [[ -f /usr/include/postgresql/libpq-fe.h ]]
            ;;
        libhiredis-dev)
            { _have pkg-config && pkg-config --exists hiredis; } ||
                [[ -f /usr/include/hiredis/hiredis.h ]]
            ;;
        redis-server) _have redis-server ;;
        redis-tools) _have redis-cli && _have redis-benchmark ;;
        pkg-config | curl | python3 | wrk | shellcheck) _have "$1" ;;
        *) _dpkg_installed "$1" ;;
    esac
}

# ensure_packages [PKG...]: installs (apt-get) the listed Debian packages that are missing;
# without arguments, DEFAULT_PACKAGES. `apt-get update` runs only when something is missing.
ensure_packages() {
    local pkgs=("$@") missing=() p
    if ((${#pkgs[@]} == 0)); then
        pkgs=("${DEFAULT_PACKAGES[@]}")
    fi
    for p in "${pkgs[@]}"; do
        if ! _package_present "$p"; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    say "installing missing packages: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        if _have sudo && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            err "missing packages (${missing[*]}) and no root rights to install them; run: sudo apt-get install -y ${missing[*]}"
            return 1
        fi
    fi
    if ! _have apt-get; then
        err "missing packages (${missing[*]}) and no apt-get to install them"
        return 1
    fi
    # Keep the packages' own system services (postgresql@15-main, redis-server on 6379) from being
    # started by the install: our scripts run their own servers. Only when no policy exists yet.
    local policy=/usr/sbin/policy-rc.d added_policy=0 status=0
    if [[ ! -e "$policy" ]]; then
        if "${sudo[@]}" sh -c "printf '#!/bin/sh\n# added by scripts/lib/servers.sh during apt-get install\nexit 101\n' > $policy && chmod 755 $policy"; then
            added_policy=1
        fi
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || status=$?
    if ((status == 0)); then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" || status=$?
    fi
    if ((added_policy == 1)); then
        "${sudo[@]}" rm -f "$policy" || true
    fi
    if ((status != 0)); then
        err "apt-get install ${missing[*]} failed (status $status)"
        return 1
    fi
    hash -r
    for p in "${missing[@]}"; do
        if ! _package_present "$p"; then
            err "package $p was installed but is still not usable"
            return 1
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# Ports and processes

# free_ports N: prints N distinct TCP ports on 127.0.0.1 that nobody listens on, one a line.
# With python3 the kernel picks them (all bound at once, so they are distinct); otherwise a
# random scan below the ephemeral range, checked with bash's /dev/tcp.
free_ports() {
    local n="${1:-1}"
    if _have python3; then
        python3 - "$n" <<'PY' && return 0
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
    fi
    local found=() p tries=0 seen
    while ((${#found[@]} < n)); do
        tries=$((tries + 1))
        if ((tries > 2000)); then
            err "could not find $n free TCP ports"
            return 1
        fi
        p=$((20000 + RANDOM % 12000))
        seen=0
        for q in "${found[@]}"; do
            if [[ "$q" == "$p" ]]; then seen=1; fi
        done
        if ((seen == 0)) && ! port_in_use "$p"; then
            found+=("$p")
        fi
    done
    printf '%s\n' "${found[@]}"
}

free_port() {
    free_ports 1
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_alive PID: true when PID runs (a zombie waiting to be reaped by init counts as gone).
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL. Reaps the
# process when it is a child of this shell. Always returns 0.
stop_pid() {
    local pid="$1" limit="${2:-10}" i
    if ! pid_alive "$pid"; then
        wait "$pid" 2>/dev/null || true
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        warn "process $pid did not stop within ${limit}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

# show_log_tail FILE [LINES]
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -s "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2 || true
        printf -- '----- end of %s -----\n' "$file" >&2
    fi
}

# claim_scratch_dir DIR: marks DIR as owned by this shell (its pid in DIR/owner.pid).
claim_scratch_dir() {
    printf '%s\n' "$$" >"$1/owner.pid"
}

# stop_servers_in DIR: stops every Redis and Postgres whose folder is directly inside DIR.
stop_servers_in() {
    local sub
    for sub in "$1"/*/; do
        sub="${sub%/}"
        if [[ -f "$sub/redis.port" ]]; then
            stop_redis "$sub" || true
        fi
        if [[ -f "$sub/PG_VERSION" ]]; then
            stop_postgres "$sub" || true
        fi
    done
}

# sweep_stale_scratch_dirs GLOB: for each folder matching GLOB that has an owner.pid whose
# process is gone, stops its servers and removes it. Folders without owner.pid are left alone
# (they may be being set up right now).
sweep_stale_scratch_dirs() {
    local d owner
    for d in $1; do
        [[ -d "$d" && -f "$d/owner.pid" ]] || continue
        owner="$(cat "$d/owner.pid" 2>/dev/null || true)"
        if [[ -n "$owner" ]] && pid_alive "$owner"; then
            continue
        fi
        say "cleaning up $d (left by a run that did not finish)"
        stop_servers_in "$d"
        rm -rf "$d" || true
    done
}

_abspath() {
    local p="$1"
    if [[ "$p" != /* ]]; then
        p="$PWD/$p"
    fi
    # Normalise without requiring existence (realpath -m is GNU coreutils, present on Debian).
    realpath -m "$p"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# pg_bindir: the folder holding initdb/pg_ctl/postgres/pg_isready/pgbench/psql.
pg_bindir() {
    if [[ -n "${PG_BIN:-}" && -x "${PG_BIN}/initdb" ]]; then
        printf '%s\n' "$PG_BIN"
        return 0
    fi
    local d best="" v bestv=""
    if _have pg_config; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] || continue
        v="$(basename "$(dirname "$d")")"
        if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -n1)" == "$v" ]]; then
            best="$d"
            bestv="$v"
        fi
    done
    if [[ -n "$best" ]]; then
        printf '%s\n' "$best"
        return 0
    fi
    err "no PostgreSQL server binaries found (install the postgresql package)"
    return 1
}

# pg_system_user: who runs initdb/postgres. initdb refuses root, so as root a system user.
pg_system_user() {
    if ((EUID == 0)); then
        printf '%s\n' "$PG_SYSTEM_USER"
    else
        id -un
    fi
}

# ensure_pg_user: as root, creates the system user PG_SYSTEM_USER when missing.
ensure_pg_user() {
    ((EUID == 0)) || return 0
    if id -u "$PG_SYSTEM_USER" >/dev/null 2>&1; then
        return 0
    fi
    say "creating system user $PG_SYSTEM_USER (Postgres refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_SYSTEM_USER" 2>/dev/null ||
        id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 || {
        err "could not create system user $PG_SYSTEM_USER"
        return 1
    }
}

# pg_as_user CMD...: runs CMD as the Postgres user (from /, so an unreadable cwd is harmless).
pg_as_user() {
    if ((EUID == 0)); then
        (cd / && runuser -u "$PG_SYSTEM_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# postgres_running DIR: true when pg_ctl sees a live postmaster on DIR.
postgres_running() {
    local dir bin
    dir="$(_abspath "$1")"
    [[ -f "$dir/postmaster.pid" ]] || return 1
    bin="$(pg_bindir)" || return 1
    pg_as_user "$bin/pg_ctl" status -D "$dir" >/dev/null 2>&1
}

# _postgres_pid_port DIR: the port recorded in postmaster.pid (4th line).
_postgres_pid_port() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null || true
}

# start_postgres DIR PORT [fast|durable]
#   DIR: the data directory (created and initdb'ed when new; must then be empty or absent).
#   fast: fsync, synchronous_commit and full_page_writes off (tests); durable (default): all on.
#   The settings are (re)written to DIR/booking-server.conf, included by postgresql.conf, so a
#   plain `pg_ctl start -D DIR` later starts the same server. Unix socket in DIR, TCP on
#   127.0.0.1:PORT only. Waits until pg_isready answers (SERVER_START_TIMEOUT seconds).
#   Already running on DIR with the same port: nothing to do.
start_postgres() {
    if (($# < 2)); then
        err "usage: start_postgres DIR PORT [fast|durable]"
        return 1
    fi
    local dir port="$2" mode="${3:-durable}" bin user
    dir="$(_abspath "$1")"
    case "$mode" in
        fast | durable) ;;
        *)
            err "start_postgres: mode must be fast or durable, not '$mode'"
            return 1
            ;;
    esac
    bin="$(pg_bindir)" || return 1
    ensure_pg_user || return 1
    user="$(pg_system_user)"

    if postgres_running "$dir"; then
        local running_port
        running_port="$(_postgres_pid_port "$dir")"
        if [[ "$running_port" == "$port" ]]; then
            say "postgres already running on $dir (port $port)"
            return 0
        fi
        err "a postgres already runs on $dir with port $running_port (wanted $port); stop it first: $bin/pg_ctl stop -D $dir"
        return 1
    fi

    mkdir -p "$dir" || return 1
    if [[ ! -f "$dir/PG_VERSION" ]]; then
        if [[ -n "$(ls -A "$dir")" ]]; then
            err "$dir is not empty and is not a Postgres data directory"
            return 1
        fi
        if ((EUID == 0)); then
            chown "$user:" "$dir" || return 1
        fi
        chmod 700 "$dir" || return 1
        if ! pg_as_user test -w "$dir"; then
            err "user $user cannot write $dir: a parent folder is probably not traversable by it (choose a data folder elsewhere)"
            return 1
        fi
        local locale_args=(--no-locale) out
        if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
            locale_args=(--locale=C.UTF-8)
        fi
        say "initdb $dir"
        if ! out="$(pg_as_user "$bin/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 "${locale_args[@]}" 2>&1)"; then
            printf '%s\n' "$out" >&2
            err "initdb failed for $dir"
            return 1
        fi
        printf "\n# Added by scripts/lib/servers.sh: settings of the project's scripts.\ninclude_if_exists = 'booking-server.conf'\n" \
            >>"$dir/postgresql.conf" || return 1
    elif ! grep -q "^include_if_exists = 'booking-server.conf'" "$dir/postgresql.conf" 2>/dev/null; then
        printf "\n# Added by scripts/lib/servers.sh: settings of the project's scripts.\ninclude_if_exists = 'booking-server.conf'\n" \
            >>"$dir/postgresql.conf" || return 1
    fi

    local durability=on socket_dir="$dir"
    if [[ "$mode" == fast ]]; then
        durability=off
    fi
    # A Unix socket path is limited to 107 bytes; with a deep DIR use TCP only.
    if ((${#dir} > 90)); then
        socket_dir=""
    fi
    cat >"$dir/booking-server.conf" <<EOF || return 1
# Written by scripts/lib/servers.sh on every start: edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$socket_dir'
max_connections = 400
shared_buffers = 256MB
fsync = $durability
synchronous_commit = $durability
full_page_writes = $durability
EOF
    if ((EUID == 0)); then
        chown "$user:" "$dir/booking-server.conf" "$dir/postgresql.conf" || return 1
    fi

    say "starting postgres on 127.0.0.1:$port ($mode, data $dir)"
    local out
    if ! out="$(pg_as_user "$bin/pg_ctl" start -D "$dir" -l "$dir/postgres.log" -w -t "$SERVER_START_TIMEOUT" -s 2>&1)"; then
        [[ -z "$out" ]] || printf '%s\n' "$out" >&2
        show_log_tail "$dir/postgres.log" 30
        err "postgres did not start on port $port (data $dir, log $dir/postgres.log)"
        return 1
    fi
    local deadline=$((SECONDS + SERVER_START_TIMEOUT))
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
        if ((SECONDS >= deadline)); then
            show_log_tail "$dir/postgres.log" 30
            err "postgres on port $port did not answer pg_isready within ${SERVER_START_TIMEOUT}s (log $dir/postgres.log)"
            return 1
        fi
        sleep 0.1
    done
}

# stop_postgres DIR: fast shutdown and wait; immediate shutdown, then SIGKILL, if that hangs.
stop_postgres() {
    if (($# < 1)); then
        err "usage: stop_postgres DIR"
        return 1
    fi
    local dir bin pid
    dir="$(_abspath "$1")"
    postgres_running "$dir" || return 0
    bin="$(pg_bindir)" || return 1
    say "stopping postgres ($dir)"
    if pg_as_user "$bin/pg_ctl" stop -D "$dir" -m fast -w -t 30 -s >/dev/null 2>&1; then
        return 0
    fi
    postgres_running "$dir" || return 0
    warn "postgres on $dir did not stop fast; using immediate shutdown"
    if pg_as_user "$bin/pg_ctl" stop -D "$dir" -m immediate -w -t 10 -s >/dev/null 2>&1; then
        return 0
    fi
    pid="$(sed -n 1p "$dir/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && pid_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    if postgres_running "$dir"; then
        err "could not stop postgres on $dir"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------
# Redis

_redis_ping() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

_redis_server_pid() {
    redis-cli -h 127.0.0.1 -p "$1" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p'
}

# start_redis DIR PORT: a redis-server daemon on 127.0.0.1:PORT with no persistence (every start
# is empty), noeviction, pid file, log and port in DIR (redis.pid, redis.log, redis.port).
# Waits until this very server (checked by pid) answers PONG. Already running: nothing to do.
start_redis() {
    if (($# < 2)); then
        err "usage: start_redis DIR PORT"
        return 1
    fi
    local dir port="$2" pid
    dir="$(_abspath "$1")"
    mkdir -p "$dir" || return 1
    pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && pid_alive "$pid" && [[ "$(_redis_server_pid "$port")" == "$pid" ]]; then
        say "redis already running on port $port ($dir)"
        return 0
    fi
    # No persistence: never load an old snapshot either.
    rm -rf "$dir/dump.rdb" "$dir/appendonly.aof" "$dir/appendonlydir" "$dir/redis.pid"
    printf '%s\n' "$port" >"$dir/redis.port"
    say "starting redis on 127.0.0.1:$port ($dir)"
    if ! redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --maxmemory-policy noeviction --dir "$dir" --pidfile "$dir/redis.pid" \
        --logfile "$dir/redis.log" >/dev/null 2>&1; then
        show_log_tail "$dir/redis.log" 30
        err "redis-server did not start on port $port"
        return 1
    fi
    local deadline=$((SECONDS + SERVER_START_TIMEOUT))
    while :; do
        pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && _redis_ping "$port" && [[ "$(_redis_server_pid "$port")" == "$pid" ]]; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$dir/redis.log" 30
            err "redis on port $port did not answer PONG within ${SERVER_START_TIMEOUT}s (log $dir/redis.log)"
            return 1
        fi
        sleep 0.05
    done
}

# stop_redis DIR|PORT: SHUTDOWN NOSAVE, wait until the process is gone (SIGKILL after 10 s).
stop_redis() {
    if (($# < 1)); then
        err "usage: stop_redis DIR|PORT"
        return 1
    fi
    local port pid="" dir="" i
    if [[ "$1" =~ ^[0-9]+$ ]]; then
        port="$1"
        pid="$(_redis_server_pid "$port")"
    else
        dir="$(_abspath "$1")"
        port="$(cat "$dir/redis.port" 2>/dev/null || true)"
        pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
    fi
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
        [[ -n "$dir" ]] && rm -f "$dir/redis.pid"
        return 0
    fi
    say "stopping redis on port ${port:-?}"
    if [[ -n "$port" ]]; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        warn "redis (pid $pid) did not stop within 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    [[ -n "$dir" ]] && rm -f "$dir/redis.pid"
    return 0
}
