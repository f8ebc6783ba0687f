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
DOCUMENT="$REPO/Sources/OpenCourse/HTTP/OpenAPI/openapi.json"
REQUIREMENTS="$REPO/scripts/requirements-schemathesis.txt"
CONFIG="$REPO/scripts/schemathesis.toml"
VENV="$REPO/.venv"

LOG_TAG=schemathesis
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

require_pg_bin
require_app_binary

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

# --- PostgreSQL and the instance --------------------------------------------------------------

# Keeps the JUnit and NDJSON reports and the full output when SCHEMATHESIS_REPORT names a folder
# (run by the clean-up trap).
keep_report() {
    [ -n "${SCHEMATHESIS_REPORT:-}" ] && [ -d "$WORK/report" ] || return 0
    mkdir -p "$SCHEMATHESIS_REPORT" && cp -r "$WORK/report/." "$WORK/schemathesis.out" "$SCHEMATHESIS_REPORT/"
}
single_instance_begin schemathesis "$BIN"
BASE="http://127.0.0.1:$APP_PORT"
# The fuzzer is one client address sending thousands of requests, registrations and failed
# sign-ins: the per-client bucket is off and the attempt limits are out of its reach. bcrypt at
# its cheapest cost keeps the many registrations and sign-ins fast. No drain: nothing here
# needs it.
export BCRYPT_COST=4 LOG_LEVEL=warning RATE_LIMIT_RPS=0 \
    REGISTER_MAX_PER_WINDOW=1000000 LOGIN_MAX_FAILURES=1000000 SHUTDOWN_DRAIN_SECONDS=0
single_instance_serve
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

[ "$RUN_RC" -eq 0 ] || CHECK_FAILURES+=("schemathesis reported failures or errors (exit status $RUN_RC)")
single_instance_verdict schemathesis ""
