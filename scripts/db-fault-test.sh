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
#   - the catalog change listener warns once or twice per outage, not every second it retries,
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
DRIVER=(python3 "$REPO/scripts/db_fault_driver.py")    # the scenario

DB_TIMEOUT=2         # DB_TIMEOUT_SECONDS of the instance
MODES=${DB_FAULT_MODES:-fast,immediate}   # pg_ctl stop modes, one outage each
DOWN_SECONDS=${DB_FAULT_DOWN_SECONDS:-5}  # how long each outage lasts

LOG_TAG=db-fault
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

require_pg_bin
require_app_binary

# --- PostgreSQL and the instance --------------------------------------------------------------

# Keeps the JSON report when DB_FAULT_REPORT names a file (run by the clean-up trap).
keep_report() { [ -z "${DB_FAULT_REPORT:-}" ] || [ ! -s "$WORK/report.json" ] || cp "$WORK/report.json" "$DB_FAULT_REPORT"; }
single_instance_begin db-fault "$BIN"
# One client address makes the whole load: the per-client rate limit would rightly answer 429.
# No drain: this test never stops the instance while it matters.
export BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 DB_TIMEOUT_SECONDS=$DB_TIMEOUT SHUTDOWN_DRAIN_SECONDS=0
single_instance_serve
log "instance on port $APP_PORT (pid $APP_PID), DB_TIMEOUT_SECONDS=$DB_TIMEOUT"

# --- the scenario ----------------------------------------------------------------------------

SCENARIO_RC=0
"${DRIVER[@]}" scenario --url "http://127.0.0.1:$APP_PORT" --pid "$APP_PID" --db-timeout "$DB_TIMEOUT" \
    --pg-bin "$PG_BIN" --pg-data "$PG_DIR/data" --pg-log "$PG_DIR/server.log" --pg-opts "$PG_OPTS" \
    --pg-port "$PG_PORT" --as-pg "${AS_PG[*]}" --modes "$MODES" \
    --down-seconds "$DOWN_SECONDS" --report "$WORK/report.json" \
    || SCENARIO_RC=$?

# --- verdict ---------------------------------------------------------------------------------

[ "$SCENARIO_RC" -eq 0 ] || CHECK_FAILURES+=("the scenario failed (exit status $SCENARIO_RC)")
# Each 503 for an unreachable database is logged as "database unavailable".
log "instance log: $(grep -c 'database unavailable' "$WORK/app.log" || true) 'database unavailable' lines, $(wc -l <"$WORK/app.log") lines in all"
[ ! -s "$WORK/app.log" ] || "${DRIVER[@]}" log-kinds "$WORK/app.log" | sed 's/^/    /' >&2
# The catalog change listener warns once when an outage begins (not every second it retries),
# and again in the next outage: one warning per outage, two if it reconnected during a shutdown.
OUTAGES=$(tr ',' '\n' <<<"$MODES" | grep -c .)
LISTENER_WARNINGS=$(grep -c 'catalog change listener lost its connection' "$WORK/app.log" || true)
log "catalog change listener: $LISTENER_WARNINGS warnings in $OUTAGES outages"
[ "$LISTENER_WARNINGS" -ge "$OUTAGES" ] && [ "$LISTENER_WARNINGS" -le $((2 * OUTAGES)) ] \
    || CHECK_FAILURES+=("the catalog change listener warned $LISTENER_WARNINGS times in $OUTAGES outages (expected one or two each)")

SUMMARY="no report"
[ ! -s "$WORK/report.json" ] || SUMMARY=$("${DRIVER[@]}" summary "$WORK/report.json")
single_instance_verdict db-fault "$SUMMARY"
