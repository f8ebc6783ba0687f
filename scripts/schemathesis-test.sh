#!/usr/bin/env bash
# Contract test: schemathesis (property-based, from the OpenAPI document) against one live
# opencourse instance on a throwaway PostgreSQL.
#
#   1. checks Sources/OpenCourse/HTTP/OpenAPI/openapi.json with openapi-spec-validator,
#   2. starts PostgreSQL and one instance (rate limits raised: all the traffic comes from one
#      address), registers an instructor through the API,
#   3. runs `schemathesis run --checks all` on the document the instance serves at
#      /api/v1/openapi.json, every phase (examples, coverage, fuzzing, stateful through the
#      document's links), authenticated as that instructor, with the fixed seed and example
#      count of scripts/schemathesis.toml.
#
# Passes (exit 0) only when the document is valid and schemathesis reports no failure and no
# error; the instance must also log no "unexpected error" (a 500). On failure it prints the log
# tails. The tools come from scripts/requirements-schemathesis.txt, installed into .venv (kept
# between runs, reinstalled when the pins change). Needs root or sudo for apt-get when PostgreSQL
# is missing (Debian packages). Runs in about 90 s (schemathesis itself about 75 s).
# Usage: scripts/schemathesis-test.sh [extra schemathesis run options]
#        (OPENCOURSE_BIN overrides .build/debug/opencourse; SCHEMATHESIS_REPORT=DIR keeps the
#        JUnit and NDJSON reports and the full output of the run)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
HELPER=(python3 "$REPO/scripts/scale_out_driver.py")   # ports, wait-http
DOCUMENT="$REPO/Sources/OpenCourse/HTTP/OpenAPI/openapi.json"
REQUIREMENTS="$REPO/scripts/requirements-schemathesis.txt"
CONFIG="$REPO/scripts/schemathesis.toml"
VENV="$REPO/.venv"

LOG_TAG=schemathesis
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

require_pg_bin
BIN=${OPENCOURSE_BIN:-.build/debug/opencourse}
if [ ! -x "$BIN" ]; then
    log "$BIN not found: build it first (swift build)"
    exit 1
fi

# The virtualenv is reinstalled only when the pins differ from what it was installed from.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    log "python3 has no venv/ensurepip; installing Debian's python3-venv"
    apt_install python3-venv
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
# What the venv was installed from: the pins, the Python and the folder (a moved or copied venv
# has scripts that point elsewhere).
STAMP="$(cat "$REQUIREMENTS"; python3 --version; echo "$VENV")"
if [ "$STAMP" != "$(cat "$VENV/.installed-from" 2>/dev/null)" ]; then
    log "installing $(grep -c '==' "$REQUIREMENTS") pinned packages into $VENV"
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$STAMP" > "$VENV/.installed-from"
fi
log "$("$VENV/bin/schemathesis" --version)"

# --- the document ----------------------------------------------------------------------------

"$VENV/bin/openapi-spec-validator" "$DOCUMENT" >&2 \
    || { log "FAILED CHECK: $DOCUMENT is not a valid OpenAPI document"; exit 1; }

# --- state and cleanup -----------------------------------------------------------------------

WORK=$(mktemp -d /tmp/opencourse-schemathesis.XXXXXX)
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
    if [ -n "${SCHEMATHESIS_REPORT:-}" ] && [ -d "$WORK/report" ]; then
        mkdir -p "$SCHEMATHESIS_REPORT" && cp -r "$WORK/report/." "$WORK/schemathesis.out" "$SCHEMATHESIS_REPORT/" || true
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
BASE="http://127.0.0.1:$APP_PORT"

# --- PostgreSQL (as in scripts/test.sh) ------------------------------------------------------

PG_STARTED=1
pg_prepare "$PG_DIR" "$PG_PORT"
pg_start
log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT"

# --- the instance ----------------------------------------------------------------------------

DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
# The fuzzer is one client address sending thousands of requests, registrations and failed
# sign-ins: the per-client bucket is off and the attempt limits are out of its reach. bcrypt at
# its cheapest cost keeps the many registrations and sign-ins fast. No drain: nothing here
# needs it.
export DATABASE_URL JWT_SECRET BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 \
    REGISTER_MAX_PER_WINDOW=1000000 LOGIN_MAX_FAILURES=1000000 SHUTDOWN_DRAIN_SECONDS=0
"$APP" serve --port "$APP_PORT" >"$WORK/app.log" 2>&1 &
APP_PID=$!
"${HELPER[@]}" wait-http "$BASE/ready" --timeout 60 \
    || { log "the instance did not answer /ready 200"; exit 1; }
log "instance on port $APP_PORT (pid $APP_PID)"

# The document the instance serves must be the one in the repository.
curl -sf "$BASE/api/v1/openapi.json" -o "$WORK/served.json" \
    || { log "FAILED CHECK: GET /api/v1/openapi.json did not answer 200"; exit 1; }
python3 - "$DOCUMENT" "$WORK/served.json" <<'EOF' || { log "FAILED CHECK: the served document differs from $DOCUMENT (a bundled resource: rebuild)"; exit 1; }
import json, sys
sys.exit(0 if json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])) else 1)
EOF

# An instructor, so that the authenticated operations (creating courses above all) can succeed.
TOKEN=$(curl -sf "$BASE/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"schemathesis-instructor@example.com","password":"schemathesis-password","name":"Fuzz Instructor","role":"instructor"}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])') \
    || { log "could not register the instructor"; exit 1; }

# --- the run ---------------------------------------------------------------------------------

log "schemathesis run --checks all against $BASE/api/v1/openapi.json"
START=$(date +%s)
RUN_RC=0
# From WORK: schemathesis and hypothesis keep caches (.schemathesis/, .hypothesis/) in the current
# folder, which must not be the work tree.
(cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$CONFIG" --no-color run "$BASE/api/v1/openapi.json" \
    --checks all -H "Authorization: Bearer $TOKEN" \
    --report junit,ndjson --report-dir "$WORK/report" "$@") >"$WORK/schemathesis.out" 2>&1 \
    || RUN_RC=$?
log "schemathesis took $(( $(date +%s) - START )) s (exit status $RUN_RC)"
# Failures, warnings and the summary: everything from the first banner on (the progress lines
# before it say nothing that a failure needs).
sed -n '/^=\{3,\} [A-Z]* =\{3,\}$/,$p' "$WORK/schemathesis.out"
grep -q '^=\{3,\} SUMMARY' "$WORK/schemathesis.out" || tail -n 40 "$WORK/schemathesis.out"
# Runtime errors are only counted in the summary: name them.
for events in "$WORK"/report/ndjson-*.ndjson; do
    [ -s "$events" ] || continue
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    error = json.loads(line).get("NonFatalError")
    if error:
        value = error["value"]
        phase, label = error.get("phase"), error.get("label")
        kind, message = value.get("type"), value.get("message")
        print(f"schemathesis error in the {phase} phase of {label}: {kind}: {message}")
' "$events" >&2
done

# --- verdict ---------------------------------------------------------------------------------

CHECK_FAILURES=()
[ "$RUN_RC" -eq 0 ] || CHECK_FAILURES+=("schemathesis reported failures or errors (exit status $RUN_RC)")
kill -0 "$APP_PID" 2>/dev/null || CHECK_FAILURES+=("the instance (pid $APP_PID) is no longer running")
UNEXPECTED=$(grep -c 'unexpected error' "$WORK/app.log" || true)
[ "$UNEXPECTED" -eq 0 ] || CHECK_FAILURES+=("the instance logged $UNEXPECTED 'unexpected error' lines (500s)")

VERDICT=PASS
for check in "${CHECK_FAILURES[@]}"; do log "FAILED CHECK: $check"; done
if [ "${#CHECK_FAILURES[@]}" -ne 0 ]; then
    VERDICT=FAIL
    grep 'unexpected error' "$WORK/app.log" | head -n 5 >&2 || true
    show_logs
fi
echo "schemathesis: $VERDICT"
[ "$VERDICT" = PASS ] && exit 0 || exit 1
