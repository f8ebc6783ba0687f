#!/usr/bin/env bash
# Runs the whole test suite against SQLite and a throwaway PostgreSQL server that this script
# starts (initdb + pg_ctl in a temporary folder, on a free port) and always stops afterwards.
# Installs Debian's postgresql package when the server binaries are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=test.sh
source scripts/lib.sh

require_pg_bin
PG_WORK=$(mktemp -d /tmp/opencourse-pg.XXXXXX)
# The tests' scratch files (SQLite databases, server logs) go here: removed once `swift test`
# passes, kept when it fails.
TEST_TMP=$(mktemp -d /tmp/opencourse-tests.XXXXXX)
clean_up() {
    pg_stop_quietly immediate
    rm -rf "$PG_WORK"
    rmdir "$TEST_TMP" 2>/dev/null || true
    if [ -d "$TEST_TMP" ]; then log "the tests' scratch files are kept in $TEST_TMP"; fi
}
trap clean_up EXIT
# A signal ends the script (through the EXIT trap) instead of resuming it after the trap.
trap 'exit 130' INT TERM

pg_prepare "$PG_WORK" "$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Every test gets its own database, the tests run in parallel, and every app opens its whole
# pool at once (4 connections in tests, plus the catalog change listener's).
PG_OPTS+=" -c max_connections=600"
pg_start
log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT"

export OPENCOURSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

swift build --build-tests
TMPDIR="$TEST_TMP" swift test --skip-build "$@"
rm -rf "$TEST_TMP"

# The whole-system tests run the built binary against their own PostgreSQL servers: schemathesis
# fuzzing the API from its OpenAPI document, a rolling restart of two instances behind HAProxy,
# and PostgreSQL stopped and restarted under an instance. They are skipped only when arguments
# were given (a developer running part of the suite).
if [ "$#" -eq 0 ]; then
    scripts/schemathesis-test.sh
    scripts/scale-out-test.sh
    scripts/db-fault-test.sh
fi
