#!/usr/bin/env bash
# Runs the whole test suite against SQLite and a throwaway PostgreSQL server that this script
# starts (initdb + pg_ctl in a temporary folder, on a free port) and always stops afterwards.
# Installs Debian's postgresql package when the server binaries are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

find_pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
    done
    return 1
}

PG_BIN=$(find_pg_bin || true)
if [ -z "$PG_BIN" ]; then
    echo "test.sh: PostgreSQL server binaries not found; installing Debian's postgresql" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(find_pg_bin)
fi

PG_DIR=$(mktemp -d /tmp/opencourse-pg.XXXXXX)
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb refuses to run as root: run the server as the postgres user then.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_DIR"
    AS_PG=(runuser -u postgres --)
else
    AS_PG=()
fi

stop_pg() {
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_pg EXIT INT TERM

"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
echo "test.sh: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT" >&2

export OPENCOURSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export OPENCOURSE_TEST_PG_BIN="$PG_BIN"
export OPENCOURSE_TEST_PG_DATA="$PG_DIR/data"

swift build --build-tests
swift test --skip-build "$@"

# The two whole-system tests run the built binary against their own PostgreSQL servers: a rolling
# restart of two instances behind HAProxy, and PostgreSQL stopped and restarted under an instance.
# They are skipped only when a filter was given (a developer running part of the suite).
if [ "$#" -eq 0 ]; then
    scripts/scale-out-test.sh
    scripts/db-fault-test.sh
fi
