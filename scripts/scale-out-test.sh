#!/usr/bin/env bash
# Scale-out test: two opencourse instances on one PostgreSQL behind HAProxy, under a steady stream
# of reads and writes, restarted one after the other with SIGTERM as a rolling deploy does.
#
# Passes (exit 0) only when
#   - the client behind HAProxy sees no failed request (connection error, 5xx, unexpected status),
#   - every write the client saw acknowledged is still readable afterwards,
#   - each instance exits 0 on SIGTERM, and HAProxy takes it out of rotation because its /ready
#     answers 503 while it still serves (not because connections are refused): that is what
#     SHUTDOWN_DRAIN_SECONDS is for, and HAProxy's retries would otherwise hide its absence,
#   - each restarted instance is back in rotation (UP in HAProxy) before the next one goes down,
#   - a token issued by one instance is accepted by the other (and the load's tokens, issued
#     before the restarts, keep working through them: a 401 would count as a failed request).
#
# Needs root or sudo for apt-get when HAProxy or PostgreSQL are missing (Debian packages).
# Usage: scripts/scale-out-test.sh   (OPENCOURSE_BIN overrides .build/debug/opencourse)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
DRIVER=(python3 "$REPO/scripts/scale_out_driver.py")

DRAIN_SECONDS=2      # SHUTDOWN_DRAIN_SECONDS of both instances
WORKERS=8            # concurrent keep-alive clients of the load driver

LOG_TAG=scale-out
source "$REPO/scripts/lib.sh"  # log, apt_install, PostgreSQL and binary snapshot helpers

# --- prerequisites ---------------------------------------------------------------------------

if ! command -v haproxy >/dev/null 2>&1; then
    log "installing Debian's haproxy"
    apt_install haproxy
fi
require_pg_bin

BIN=${OPENCOURSE_BIN:-.build/debug/opencourse}
if [ ! -x "$BIN" ]; then
    log "$BIN not found; running swift build"
    swift build
fi

# --- state and cleanup -----------------------------------------------------------------------

WORK=$(mktemp -d /tmp/opencourse-scale-out.XXXXXX)
PG_DIR=$(mktemp -d /tmp/opencourse-pg.XXXXXX)  # apart from WORK: the postgres user owns it
declare -A APP_PID=()
HAPROXY_PID=""
DRIVER_PID=""
PG_STARTED=""
AS_PG=()

show_logs() { show_log_tails "$WORK"/app1.log "$WORK"/app2.log "$WORK"/haproxy.log "$PG_DIR"/server.log; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ "$status" -eq 0 ] || show_logs
    # Everything below was started by this script; stop it by pid.
    [ -z "$DRIVER_PID" ] || kill "$DRIVER_PID" 2>/dev/null || true
    local pid
    for pid in "${APP_PID[@]}" $HAPROXY_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do  # up to 5 s for a graceful exit, then SIGKILL
        local alive=""
        for pid in "${APP_PID[@]}" $HAPROXY_PID $DRIVER_PID; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ -n "$alive" ] || break
        sleep 0.1
    done
    for pid in "${APP_PID[@]}" $HAPROXY_PID $DRIVER_PID; do kill -KILL "$pid" 2>/dev/null || true; done
    [ -z "$PG_STARTED" ] || pg_stop_quietly immediate
    rm -rf "$WORK" "$PG_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Snapshot the binary: a rolling deploy should restart the same build it started.
snapshot_app "$BIN" "$WORK/bin"

mapfile -t PORTS < <("${DRIVER[@]}" ports 4)
PG_PORT=${PORTS[0]} LB_PORT=${PORTS[3]}
declare -A APP_PORT=([1]=${PORTS[1]} [2]=${PORTS[2]})

# --- PostgreSQL (as in scripts/test.sh) ------------------------------------------------------

PG_STARTED=1
pg_prepare "$PG_DIR" "$PG_PORT"
pg_start
log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT"

# --- the two instances -----------------------------------------------------------------------

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
# Both instances must share the key, or tokens would only work on the instance that issued them.
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export JWT_SECRET
export BCRYPT_COST=4 LOG_LEVEL=warning SHUTDOWN_DRAIN_SECONDS=$DRAIN_SECONDS
# The whole load comes from one address (the driver, through HAProxy on loopback), so the
# per-client rate limit (50 requests/s by default) would rightly answer 429: off for this test,
# which is about restarts, not about limits.
export RATE_LIMIT_RPS=0

start_instance() {
    local n=$1
    echo "===== $(date +%H:%M:%S.%3N) starting instance $n on port ${APP_PORT[$n]}" >>"$WORK/app$n.log"
    "$APP" serve --port "${APP_PORT[$n]}" >>"$WORK/app$n.log" 2>&1 &
    APP_PID[$n]=$!
    "${DRIVER[@]}" wait-http "http://127.0.0.1:${APP_PORT[$n]}/health" --timeout 60 \
        || { log "instance $n did not answer /health"; return 1; }
}

# One after the other: the first start applies the migrations (they take an advisory lock, so
# starting both together would also work, but this keeps the start-up simple to read in the logs).
start_instance 1 || exit 1
start_instance 2 || exit 1
log "instances on ports ${APP_PORT[1]} (pid ${APP_PID[1]}) and ${APP_PORT[2]} (pid ${APP_PID[2]})"

# --- HAProxy ---------------------------------------------------------------------------------

cat >"$WORK/haproxy.cfg" <<EOF
global
    log stdout format raw local0 info
    stats socket $WORK/haproxy.sock mode 600 level admin
    maxconn 1000

defaults
    mode http
    log global
    option httplog
    # Log only errors and abnormal terminations (a 5xx, a server aborting a connection...).
    option dontlog-normal
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 1s
    # Standard production settings for rolling deploys: a request that could not reach a server
    # (refused connection, keep-alive connection closed by the server before it answered, no
    # answer in time) is retried, on another server for the last retry. These retries would also
    # hide a service that drops requests at shutdown, which is why the script also checks that each
    # instance left rotation before it exited.
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend api
    bind 127.0.0.1:$LB_PORT
    default_backend app

backend app
    balance roundrobin
    # Active health check every half second; one failure takes a server out, one success back in.
    option httpchk GET /ready
    http-check expect status 200
    server app1 127.0.0.1:${APP_PORT[1]} check inter 500 fall 1 rise 1
    server app2 127.0.0.1:${APP_PORT[2]} check inter 500 fall 1 rise 1
EOF
haproxy -c -q -f "$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!

# HAProxy's view of server app$1: its status and its last check's result, e.g. "UP L7OK",
# "DOWN L7STS" (/ready answered something else than 200), "DOWN L4CON" (connection refused).
state() { "${DRIVER[@]}" server-state "$WORK/haproxy.sock" app "app$1"; }

# Waits until HAProxy reports server app$1 UP; fails the test after $2 seconds.
wait_up() {
    local n=$1 deadline=$((SECONDS + $2)) s
    while :; do
        s=$(state "$n")
        [ "${s%% *}" = UP ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "HAProxy still reports app$n as '$s' after $2 s"
            return 1
        fi
        sleep 0.1
    done
}
# HAProxy assumes servers UP before their first check; a few check rounds make the state real.
sleep 1.5
wait_up 1 10 && wait_up 2 10 || exit 1
log "HAProxy on 127.0.0.1:$LB_PORT (pid $HAPROXY_PID), app1 and app2 UP"

# --- load ------------------------------------------------------------------------------------

"${DRIVER[@]}" load --url "http://127.0.0.1:$LB_PORT" --workers "$WORKERS" \
    --ready-file "$WORK/load.ready" --stop-file "$WORK/load.stop" --report "$WORK/load.json" &
DRIVER_PID=$!
for _ in $(seq 300); do
    [ -e "$WORK/load.ready" ] && break
    kill -0 "$DRIVER_PID" 2>/dev/null || { log "the load driver stopped during its setup"; exit 1; }
    sleep 0.1
done
[ -e "$WORK/load.ready" ] || { log "the load driver did not start"; exit 1; }
sleep 3  # a baseline of undisturbed load before the first restart

# --- rolling restart -------------------------------------------------------------------------

CHECK_FAILURES=()
EXIT_STATUSES=()
now_ms() { date +%s%3N; }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)); }

restart_instance() {
    local n=$1 pid=${APP_PID[$1]} t0 s down_after="" down_state="" exit_after rc=0
    log "SIGTERM to instance $n (pid $pid)"
    t0=$(now_ms)
    kill -TERM "$pid"
    # While the instance drains, watch HAProxy: it must take the server out of rotation because
    # /ready answered 503 (L7STS) while the instance still accepted connections. Had the listener
    # closed first (L4CON, connection refused), HAProxy would have kept sending requests to it
    # until the next check, and only its retries would have hidden that from the client.
    while kill -0 "$pid" 2>/dev/null; do
        if [ -z "$down_after" ]; then
            s=$(state "$n")
            [ "${s%% *}" = UP ] || { down_after=$(seconds_since "$t0"); down_state=$s; }
        fi
        if [ $(( $(now_ms) - t0 )) -gt 30000 ]; then
            log "instance $n still running 30 s after SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            CHECK_FAILURES+=("instance $n did not exit within 30 s of SIGTERM")
            break
        fi
        sleep 0.1
    done
    exit_after=$(seconds_since "$t0")
    wait "$pid" || rc=$?
    EXIT_STATUSES+=("$rc")
    if [ -z "$down_after" ]; then
        log "instance $n: exited with status $rc after $exit_after s while HAProxy still had it UP"
        CHECK_FAILURES+=("instance $n exited before HAProxy took it out of rotation (no drain)")
    else
        log "instance $n: out of rotation after $down_after s ($down_state), exited with status $rc after $exit_after s"
        [ "${down_state#* }" = L7STS ] \
            || CHECK_FAILURES+=("instance $n left rotation by '$down_state', not by /ready answering 503 while still serving (no drain)")
    fi
    [ "$rc" -eq 0 ] || CHECK_FAILURES+=("instance $n exited with status $rc on SIGTERM")

    # The next instance goes down only once this one is back in rotation.
    if start_instance "$n" && wait_up "$n" 20; then
        log "instance $n restarted (pid ${APP_PID[$n]}) and back in rotation after $(seconds_since "$t0") s"
    else
        CHECK_FAILURES+=("instance $n not back in rotation within 20 s of its restart")
        finish
    fi
}

# Stops the load (the driver then verifies every acknowledged write), runs the token check,
# prints the summary and exits.
finish() {
    touch "$WORK/load.stop"
    local driver_rc=0
    wait "$DRIVER_PID" || driver_rc=$?
    DRIVER_PID=""

    log "token check: issued by instance 1, presented to instance 2, and the other way round"
    local token_rc=0
    "${DRIVER[@]}" token-check --issuer "http://127.0.0.1:${APP_PORT[1]}" \
        --verifier "http://127.0.0.1:${APP_PORT[2]}" || token_rc=1
    "${DRIVER[@]}" token-check --issuer "http://127.0.0.1:${APP_PORT[2]}" \
        --verifier "http://127.0.0.1:${APP_PORT[1]}" || token_rc=1
    [ "$token_rc" -eq 0 ] || CHECK_FAILURES+=("a token issued by one instance was refused by the other")

    local requests="?" failures="?" verified="?" acknowledged="?" problems=0
    if [ -s "$WORK/load.json" ]; then
        read -r requests failures verified acknowledged problems < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["requests"], r["failures"], r["verified"], r["acknowledged"], len(r["verifyProblems"]))' "$WORK/load.json")
        if [ "$failures" != 0 ]; then
            log "first failed requests (the driver's clock):"
            python3 -c 'import json, sys; [print("   ", f) for f in json.load(open(sys.argv[1]))["firstFailures"][:20]]' \
                "$WORK/load.json" >&2
        fi
        [ "$problems" -eq 0 ] && [ "$verified" = "$acknowledged" ] \
            || CHECK_FAILURES+=("acknowledged writes lost: $verified of $acknowledged verified")
    else
        CHECK_FAILURES+=("the load driver wrote no report (exit status $driver_rc)")
    fi

    local retried redispatched
    read -r retried redispatched < <("${DRIVER[@]}" retries "$WORK/haproxy.sock" app)
    log "HAProxy retried $retried and redispatched $redispatched requests (hidden from the client)"

    local check verdict=PASS
    for check in "${CHECK_FAILURES[@]}"; do log "FAILED CHECK: $check"; done
    if [ "$failures" != 0 ] || [ "${#CHECK_FAILURES[@]}" -ne 0 ]; then verdict=FAIL; show_logs; fi
    echo "scale-out: $verdict: $requests requests, $failures failed; $verified/$acknowledged acknowledged writes verified; SIGTERM exit statuses: ${EXIT_STATUSES[*]:-none}; ${#CHECK_FAILURES[@]} failed checks"
    [ "$verdict" = PASS ] && exit 0 || exit 1
}

restart_instance 1
restart_instance 2
sleep 2  # the load keeps running on the restarted pair
finish
