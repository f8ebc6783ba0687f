# Shell helpers shared by the system-test scripts (sourced, bash 4+).
#
# The caller sets LOG_TAG (the prefix of its log lines) before sourcing. The PostgreSQL helpers
# work on these globals, set by pg_prepare:
#   PG_BIN   folder of initdb, pg_ctl, postgres, psql (Debian's /usr/lib/postgresql/N/bin)
#   PG_DIR   throwaway folder owned by the server's user: data/, server.log, the Unix socket
#   PG_PORT  TCP port on 127.0.0.1
#   AS_PG    command prefix that runs a program as the server's user (empty unless root)
#   PG_OPTS  the server's options, the same for every start of the throwaway server

LOG_TAG=${LOG_TAG:-script}
log() { echo "[$(date +%H:%M:%S.%3N)] $LOG_TAG: $*" >&2; }
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

APT_UPDATED=""
apt_install() {
    [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

find_pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
    done
    return 1
}

# Sets PG_BIN, installing Debian's postgresql when the server binaries are missing.
require_pg_bin() {
    PG_BIN=$(find_pg_bin || true)
    if [ -z "$PG_BIN" ]; then
        log "PostgreSQL server binaries not found; installing Debian's postgresql"
        apt_install postgresql
        PG_BIN=$(find_pg_bin)
    fi
}

# Sets BIN to $OPENCOURSE_BIN, else the debug build, and stops when it has not been built.
require_app_binary() {
    BIN=${OPENCOURSE_BIN:-.build/debug/opencourse}
    [ -x "$BIN" ] || { log "$BIN not found: build it first (swift build)"; exit 1; }
}

# Copies the opencourse binary $1 and its resource bundle (which holds the migrations) into the
# folder $2 and sets APP to the copy: the binary in .build may be relinked while a test runs, and a
# test must keep running (and restarting) the build it started with.
snapshot_app() {
    local bin=$1 dest=$2 resources
    mkdir -p "$dest"
    cp "$bin" "$dest/opencourse"
    resources="$(dirname "$bin")/opencourse_OpenCourse.resources"
    [ ! -d "$resources" ] || cp -r "$resources" "$dest/"
    APP="$dest/opencourse"
}

# Prepares a throwaway server in the empty folder $1 on port $2 (as in scripts/test.sh): initdb
# refuses to run as root, so the server then runs as the postgres user, which owns the folder.
# fsync=off: the tests stop the server, they never crash the machine, so what PostgreSQL wrote
# to the operating system survives even an immediate (crash-like) stop.
pg_prepare() {
    PG_DIR=$1 PG_PORT=$2 AS_PG=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_DIR"
        AS_PG=(runuser -u postgres --)
    fi
    PG_OPTS="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off"
    # A UTF-8 locale, as production servers have: locale-dependent SQL (LOWER) behaves as there.
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
}

# Starts the server and waits until it accepts connections.
pg_start() {
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o "$PG_OPTS" start >/dev/null
}

# Stops the server with shutdown mode $1 (smart, fast or immediate); quiet, never fails: for
# clean-up traps.
pg_stop_quietly() {
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-immediate}" stop >/dev/null 2>&1 || true
}

pg_version() { "$PG_BIN/postgres" --version | awk '{print $3}'; }

# Prints the last lines of each non-empty file given, once per run (the clean-up trap and a failed
# check may both ask): for a failing test's output.
LOGS_SHOWN=""
show_log_tails() {
    [ -z "$LOGS_SHOWN" ] || return 0
    LOGS_SHOWN=1
    local file
    for file in "$@"; do
        [ -s "$file" ] || continue
        echo "----- last lines of $(basename "$file") -----" >&2
        tail -n 25 "$file" >&2
    done
}

# Stops the process $1, when set: SIGTERM, up to 5 s to exit, then SIGKILL. For clean-up traps.
stop_pid_quietly() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

# --- one instance on its own throwaway PostgreSQL (db-fault, schemathesis and soak tests) -------
#
# single_instance_begin NAME BIN prepares everything but the instance: WORK (a temporary folder),
# the clean-up trap, a snapshot of the binary BIN (APP), two free ports (PG_PORT, APP_PORT),
# PostgreSQL started in PG_DIR, and DATABASE_URL and a fresh JWT_SECRET exported. The caller then
# exports its own settings and calls single_instance_serve, runs its checks, adds what failed to
# CHECK_FAILURES and ends with single_instance_verdict. A caller may redefine keep_report, which
# the trap runs before WORK is removed, to copy out what it was asked to keep.
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK_FAILURES=()
keep_report() { :; }
show_logs() { show_log_tails "$WORK"/app.log "$PG_DIR"/server.log; }

single_instance_begin() {
    local name=$1 bin=$2
    WORK=$(mktemp -d "/tmp/opencourse-$name.XXXXXX")
    PG_DIR=$(mktemp -d /tmp/opencourse-pg.XXXXXX)  # apart from WORK: the postgres user owns it
    APP_PID="" PG_STARTED="" AS_PG=()
    trap single_instance_cleanup EXIT
    trap 'exit 130' INT TERM
    # A snapshot: a rebuild during the run must not swap the build under test.
    snapshot_app "$bin" "$WORK/bin"
    mapfile -t PORTS < <(python3 "$LIB_DIR/scale_out_driver.py" ports 2)
    PG_PORT=${PORTS[0]} APP_PORT=${PORTS[1]}
    PG_STARTED=1
    pg_prepare "$PG_DIR" "$PG_PORT"
    pg_start
    log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export DATABASE_URL JWT_SECRET
}

# Starts `serve` on APP_PORT with the exported settings (log in WORK/app.log), waits for /ready.
single_instance_serve() {
    "$APP" serve --port "$APP_PORT" >"$WORK/app.log" 2>&1 &
    APP_PID=$!
    python3 "$LIB_DIR/scale_out_driver.py" wait-http "http://127.0.0.1:$APP_PORT/ready" --timeout 60 \
        || { log "the instance did not answer /ready 200"; exit 1; }
}

single_instance_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ "$status" -eq 0 ] || show_logs
    stop_pid_quietly "$APP_PID"
    [ -z "$PG_STARTED" ] || pg_stop_quietly immediate
    keep_report || true
    rm -rf "$WORK" "$PG_DIR"
    exit "$status"
}

# Adds the instance's own failures to CHECK_FAILURES (it died, or logged a 500, which it does as
# "unexpected error"), prints each failed check and one line "NAME: PASS|FAIL SUMMARY", and exits
# 0 only when nothing failed.
single_instance_verdict() {
    local name=$1 summary=$2 check unexpected
    kill -0 "$APP_PID" 2>/dev/null || CHECK_FAILURES+=("the instance (pid $APP_PID) is no longer running")
    unexpected=$(grep -c 'unexpected error' "$WORK/app.log" || true)
    [ "$unexpected" -eq 0 ] || CHECK_FAILURES+=("the instance logged $unexpected 'unexpected error' lines (500s)")
    for check in "${CHECK_FAILURES[@]}"; do log "FAILED CHECK: $check"; done
    if [ "${#CHECK_FAILURES[@]}" -ne 0 ]; then
        grep 'unexpected error' "$WORK/app.log" | head -n 5 >&2 || true
        show_logs
        echo "$name: FAIL $summary"
        exit 1
    fi
    echo "$name: PASS $summary"
    exit 0
}
