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

# --- PostgreSQL and the instance --------------------------------------------------------------

# Keeps the JSON report when --report names a file (run by the clean-up trap).
keep_report() { [ -z "$REPORT" ] || [ ! -s "$WORK/report.json" ] || cp "$WORK/report.json" "$REPORT"; }
single_instance_begin soak "$BIN"
# BCRYPT_COST=4 is the least the configuration accepts: registrations, sign-ins and password
# changes are a third of the mix. All clients share one address, so the per-address limits
# (token bucket, registrations, failed sign-ins: the mix signs in with wrong passwords on
# purpose) are lifted; tokens must outlive the run. The catalog cache holds 1,000 entries, not
# 10,000: it fills during the warm-up and then evicts all the time (eviction is soaked too), so
# its filling cannot pass for a leak in the memory check.
export BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 \
    REGISTER_MAX_PER_WINDOW=1000000 LOGIN_MAX_FAILURES=1000000 CATALOG_CACHE_ENTRIES=1000 \
    JWT_TTL_SECONDS=$((SECONDS_TO_RUN + 3600)) SHUTDOWN_DRAIN_SECONDS=0
single_instance_serve
log "instance on port $APP_PORT (pid $APP_PID); $CLIENTS clients for ${SECONDS_TO_RUN}s"

# --- the load and the checks -----------------------------------------------------------------

DRIVER_RC=0
"${DRIVER[@]}" run --url "http://127.0.0.1:$APP_PORT" --pid "$APP_PID" --seconds "$SECONDS_TO_RUN" \
    --clients "$CLIENTS" --pg-bin "$PG_BIN" --pg-port "$PG_PORT" --report "$WORK/report.json" \
    || DRIVER_RC=$?

# --- verdict ---------------------------------------------------------------------------------

[ "$DRIVER_RC" -eq 0 ] || CHECK_FAILURES+=("the load or its checks failed (exit status $DRIVER_RC)")
if [ -s "$WORK/app.log" ]; then
    log "instance log: $(wc -l <"$WORK/app.log") lines (LOG_LEVEL=warning), most frequent:"
    "${FAULT[@]}" log-kinds "$WORK/app.log" | sed 's/^/    /' >&2
fi

SUMMARY="no report"
[ ! -s "$WORK/report.json" ] || SUMMARY=$("${DRIVER[@]}" summary "$WORK/report.json")
single_instance_verdict soak "$SUMMARY"
