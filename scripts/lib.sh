# Shell helpers shared by scripts/scale-out-test.sh and scripts/db-fault-test.sh (sourced, bash 4+).
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
