#!/usr/bin/env bash
# Database fault test: one running opencourse instance under a steady stream of reads and writes
# loses its PostgreSQL (pg_ctl stop -m fast, then, in a second outage, -m immediate as a crash
# would), which stays down for a few seconds and then comes back on the same data and port.
#
# Passes (exit 0) only when
#   - while PostgreSQL is down, every request that needs it answers 503 application/problem+json
#     with exactly type/title/status/detail and nothing internal (no SQL, driver error, path...),
#     /health stays 200 and /ready answers 503,
#   - no request at any time goes unanswered, takes longer than DB_TIMEOUT_SECONDS + 1 s, or gets
#     a 500 (any 5xx but 503); the instance logs no "unexpected error",
#   - once PostgreSQL is back, the same process (same pid and start time; nothing restarts it)
#     answers /ready 200, reads 200 and writes 201 by itself within 30 s, and every request
#     after that succeeds,
#   - no acknowledged write was lost: every course answered 201 is readable, every acknowledged
#     enrollment is listed (all pages), and both are in the database (psql). A write answered
#     503 (or cut by the outage) may or may not have committed, so the database check is
#     acknowledged <= stored <= acknowledged + unanswered, with no row left unexplained; an
#     unanswered write that committed anyway is printed as a note, not a failure.
#
# The detailed rules are in scripts/db_fault_driver.py. Needs root or sudo for apt-get when
# PostgreSQL is missing (Debian packages). Runs in about 40 s.
# Usage: scripts/db-fault-test.sh   (OPENCOURSE_BIN overrides .build/debug/opencourse;
#        DB_FAULT_MODES=fast,immediate and DB_FAULT_DOWN_SECONDS=5 are the defaults;
#        DB_FAULT_REPORT=FILE keeps the JSON report, with a timeline of each outage's requests)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
HELPER=(python3 "$REPO/scripts/scale_out_driver.py")   # ports, wait-http
DRIVER=(python3 "$REPO/scripts/db_fault_driver.py")    # the scenario

DB_TIMEOUT=2         # DB_TIMEOUT_SECONDS of the instance
MODES=${DB_FAULT_MODES:-fast,immediate}   # pg_ctl stop modes, one outage each
DOWN_SECONDS=${DB_FAULT_DOWN_SECONDS:-5}  # how long each outage lasts

LOG_TAG=db-fault
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

require_pg_bin
BIN=${OPENCOURSE_BIN:-.build/debug/opencourse}
if [ ! -x "$BIN" ]; then
    log "$BIN not found: build it first (swift build)"
    exit 1
fi

# --- state and cleanup -----------------------------------------------------------------------

WORK=$(mktemp -d /tmp/opencourse-db-fault.XXXXXX)
PG_DIR=$(mktemp -d /tmp/opencourse-pg.XXXXXX)  # apart from WORK: the postgres user owns it
APP_PID=""
PG_STARTED=""
AS_PG=()

show_logs() { show_log_tails "$WORK"/app.log "$PG_DIR"/server.log; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ "$status" -eq 0 ] || show_logs
    # Everything below was started by this script; stop it by pid.
    if [ -n "$APP_PID" ]; then
        kill -TERM "$APP_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$APP_PID" 2>/dev/null || true
    fi
    [ -z "$PG_STARTED" ] || pg_stop_quietly immediate
    if [ -n "${DB_FAULT_REPORT:-}" ] && [ -s "$WORK/report.json" ]; then
        cp "$WORK/report.json" "$DB_FAULT_REPORT" || true
    fi
    rm -rf "$WORK" "$PG_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot the binary: a rebuild during the run must not swap the build under test.
snapshot_app "$BIN" "$WORK/bin"

mapfile -t PORTS < <("${HELPER[@]}" ports 2)
PG_PORT=${PORTS[0]} APP_PORT=${PORTS[1]}

# --- PostgreSQL (as in scripts/test.sh) ------------------------------------------------------

PG_STARTED=1
pg_prepare "$PG_DIR" "$PG_PORT"
pg_start
log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT"

# --- the instance ----------------------------------------------------------------------------

DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
# One client address makes the whole load: the per-client rate limit would rightly answer 429.
# No drain: this test never stops the instance while it matters.
export DATABASE_URL JWT_SECRET BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 \
    DB_TIMEOUT_SECONDS=$DB_TIMEOUT SHUTDOWN_DRAIN_SECONDS=0
"$APP" serve --port "$APP_PORT" >"$WORK/app.log" 2>&1 &
APP_PID=$!
"${HELPER[@]}" wait-http "http://127.0.0.1:$APP_PORT/ready" --timeout 60 \
    || { log "the instance did not answer /ready 200"; exit 1; }
log "instance on port $APP_PORT (pid $APP_PID), DB_TIMEOUT_SECONDS=$DB_TIMEOUT"

# --- the scenario ----------------------------------------------------------------------------

SCENARIO_RC=0
"${DRIVER[@]}" scenario --url "http://127.0.0.1:$APP_PORT" --pid "$APP_PID" --db-timeout "$DB_TIMEOUT" \
    --pg-bin "$PG_BIN" --pg-data "$PG_DIR/data" --pg-log "$PG_DIR/server.log" --pg-opts "$PG_OPTS" \
    --pg-port "$PG_PORT" --as-pg "${AS_PG[*]}" --modes "$MODES" \
    --down-seconds "$DOWN_SECONDS" --report "$WORK/report.json" \
    || SCENARIO_RC=$?

# --- verdict ---------------------------------------------------------------------------------

CHECK_FAILURES=()
[ "$SCENARIO_RC" -eq 0 ] || CHECK_FAILURES+=("the scenario failed (exit status $SCENARIO_RC)")
kill -0 "$APP_PID" 2>/dev/null || CHECK_FAILURES+=("the instance (pid $APP_PID) is no longer running")
# A 500 is logged as "unexpected error"; each 503 for an unreachable database as "database unavailable".
UNEXPECTED=$(grep -c 'unexpected error' "$WORK/app.log" || true)
UNAVAILABLE=$(grep -c 'database unavailable' "$WORK/app.log" || true)
[ "$UNEXPECTED" -eq 0 ] || CHECK_FAILURES+=("the instance logged $UNEXPECTED 'unexpected error' lines")
log "instance log: $UNAVAILABLE 'database unavailable' lines, $UNEXPECTED 'unexpected error' lines, $(wc -l <"$WORK/app.log") lines in all"
[ ! -s "$WORK/app.log" ] || "${DRIVER[@]}" log-kinds "$WORK/app.log" | sed 's/^/    /' >&2

SUMMARY="no report"
[ ! -s "$WORK/report.json" ] || SUMMARY=$("${DRIVER[@]}" summary "$WORK/report.json")

VERDICT=PASS
for check in "${CHECK_FAILURES[@]}"; do log "FAILED CHECK: $check"; done
if [ "${#CHECK_FAILURES[@]}" -ne 0 ]; then VERDICT=FAIL; show_logs; fi
echo "db-fault: $VERDICT: $SUMMARY"
[ "$VERDICT" = PASS ] && exit 0 || exit 1
