#!/usr/bin/env bash
# Soak test: one opencourse instance on a throwaway PostgreSQL under many concurrent clients for
# a while (2 minutes by default), each drawing a random weighted mix of every operation of the
# API: registration, sign-in, profile reads and changes (name, email, password), catalog pages
# (q, createdBy, cursors), courses created, updated (PUT and PATCH) and deleted by their owners,
# foreign courses touched (403), enrollments made, repeated (200) and undone, rosters, invalid
# requests, and deliberate contention on one course (students enrolling at once, one of them
# twice; students enrolling while the owner deletes the course).
#
# Passes (exit 0) only when
#   - no answer is a 5xx and no request goes unanswered, at any time,
#   - every answer has the status the operation should get under the state the clients know,
#     races included (a 404 for a course another client was deleting is allowed; the rules are
#     in scripts/soak_driver.py),
#   - reads show acknowledged writes (no stale course after its change was acknowledged), pages
#     never repeat or skip a course,
#   - afterwards, in the database (psql): no duplicate (user_id, course_id), no orphan
#     enrollment, and users, courses and enrollments are exactly the acknowledged ones (course
#     deletes cascading), with the last acknowledged names, emails, titles and descriptions,
#   - the instance logs no "unexpected error" and is the same process at the end,
#   - its memory does not keep growing: RSS sampled every second, the first 25% ignored, the
#     robust peak (90th percentile) of the last third at most 16 MiB above the middle third's.
#
# Not part of scripts/test.sh. Needs root or sudo for apt-get when PostgreSQL is missing.
# Usage: scripts/soak-test.sh [--seconds N (120)] [--clients N (32)] [--binary PATH
#        (.build/debug/opencourse)] [--report FILE (the JSON report, kept)]
# Prints one summary line ("soak: PASS ..." or "soak: FAIL ...") on standard output; progress,
# failure details and log tails go to standard error.
set -euo pipefail
CALLER=$(pwd)  # relative --binary and --report paths are the caller's
cd "$(dirname "$0")/.."
REPO=$(pwd)
HELPER=(python3 "$REPO/scripts/scale_out_driver.py")   # ports, wait-http
FAULT=(python3 "$REPO/scripts/db_fault_driver.py")     # log-kinds
DRIVER=(python3 "$REPO/scripts/soak_driver.py")        # the load and the checks

SECONDS_TO_RUN=120
CLIENTS=32
BIN=.build/debug/opencourse
REPORT=""
usage() { sed -n '/^# Usage:/,/^# failure/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_TO_RUN=${2:?}; shift 2 ;;
        --clients) CLIENTS=${2:?}; shift 2 ;;
        --binary) BIN=${2:?}; [[ $BIN = /* ]] || BIN="$CALLER/$BIN"; shift 2 ;;
        --report) REPORT=${2:?}; [[ $REPORT = /* ]] || REPORT="$CALLER/$REPORT"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "soak-test.sh: unknown option $1" >&2; usage ;;
    esac
done
[[ $SECONDS_TO_RUN =~ ^[0-9]+$ && $SECONDS_TO_RUN -ge 10 ]] || { echo "--seconds must be an integer >= 10" >&2; exit 2; }
[[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -ge 1 ]] || { echo "--clients must be a positive integer" >&2; exit 2; }

LOG_TAG=soak
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

require_pg_bin
if [ ! -x "$BIN" ]; then
    if [ "$BIN" != .build/debug/opencourse ]; then
        log "$BIN not found"
        exit 1
    fi
    log "$BIN not found; running swift build --product opencourse"
    swift build --product opencourse
fi

# --- state and cleanup -----------------------------------------------------------------------

WORK=$(mktemp -d /tmp/opencourse-soak.XXXXXX)
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
    if [ -n "$REPORT" ] && [ -s "$WORK/report.json" ]; then
        cp "$WORK/report.json" "$REPORT" || true
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
# BCRYPT_COST=4 is the least the configuration accepts: registrations, sign-ins and password
# changes are a third of the mix. All clients share one address, so the per-address limits
# (token bucket, registrations, failed sign-ins: the mix signs in with wrong passwords on
# purpose) are lifted; tokens must outlive the run. The catalog cache holds 1,000 entries, not
# 10,000: it fills during the warm-up and then evicts all the time (eviction is soaked too), so
# its filling cannot pass for a leak in the memory check.
export DATABASE_URL JWT_SECRET BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 \
    REGISTER_MAX_PER_WINDOW=1000000 LOGIN_MAX_FAILURES=1000000 CATALOG_CACHE_ENTRIES=1000 \
    JWT_TTL_SECONDS=$((SECONDS_TO_RUN + 3600)) SHUTDOWN_DRAIN_SECONDS=0
"$APP" serve --port "$APP_PORT" >"$WORK/app.log" 2>&1 &
APP_PID=$!
"${HELPER[@]}" wait-http "http://127.0.0.1:$APP_PORT/ready" --timeout 60 \
    || { log "the instance did not answer /ready 200"; exit 1; }
log "instance on port $APP_PORT (pid $APP_PID); $CLIENTS clients for ${SECONDS_TO_RUN}s"

# --- the load and the checks -----------------------------------------------------------------

DRIVER_RC=0
"${DRIVER[@]}" run --url "http://127.0.0.1:$APP_PORT" --pid "$APP_PID" --seconds "$SECONDS_TO_RUN" \
    --clients "$CLIENTS" --pg-bin "$PG_BIN" --pg-port "$PG_PORT" --report "$WORK/report.json" \
    || DRIVER_RC=$?

# --- verdict ---------------------------------------------------------------------------------

CHECK_FAILURES=()
[ "$DRIVER_RC" -eq 0 ] || CHECK_FAILURES+=("the load or its checks failed (exit status $DRIVER_RC)")
kill -0 "$APP_PID" 2>/dev/null || CHECK_FAILURES+=("the instance (pid $APP_PID) is no longer running")
# A 500 is logged as "unexpected error" (with its cause).
UNEXPECTED=$(grep -c 'unexpected error' "$WORK/app.log" || true)
[ "$UNEXPECTED" -eq 0 ] || CHECK_FAILURES+=("the instance logged $UNEXPECTED 'unexpected error' lines")
if [ -s "$WORK/app.log" ]; then
    log "instance log: $(wc -l <"$WORK/app.log") lines (LOG_LEVEL=warning), most frequent:"
    "${FAULT[@]}" log-kinds "$WORK/app.log" | sed 's/^/    /' >&2
fi

SUMMARY="no report"
[ ! -s "$WORK/report.json" ] || SUMMARY=$("${DRIVER[@]}" summary "$WORK/report.json")

VERDICT=PASS
for check in "${CHECK_FAILURES[@]}"; do log "FAILED CHECK: $check"; done
if [ "${#CHECK_FAILURES[@]}" -ne 0 ]; then VERDICT=FAIL; show_logs; fi
echo "soak: $VERDICT $SUMMARY"
[ "$VERDICT" = PASS ] && exit 0 || exit 1
