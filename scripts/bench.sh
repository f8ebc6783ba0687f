#!/usr/bin/env bash
# The benchmark: release build, throwaway PostgreSQL, the server, a seeded catalog, wrk over every
# scenario; prints a table and writes bench-results/bench-DATE.{md,json}. See bench/README.md.
#
#   scripts/bench.sh                                  # build, then 7 scenarios x 3 rounds of 10 s
#   scripts/bench.sh --seconds 5 --rounds 1           # quicker
#   scripts/bench.sh --binary /path/to/opencourse     # no build: measure that binary
#   scripts/bench.sh --help                           # every option (bench/bench.py)
#
# Every argument goes to bench/bench.py. Exit status: 0 clean, 3 when a run had errors, 2 on a
# failure (build, start-up, smoke checks), 130 when interrupted.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "[$(date +%H:%M:%S)] bench: $*" >&2; }

build=1
for arg in "$@"; do
    case "$arg" in
        --binary|--binary=*|-h|--help) build="" ;;
    esac
done

if [ -n "$build" ]; then
    log "swift build -c release --product opencourse"
    # In its own process group (job control on for this one job), so that Ctrl-C, SIGTERM or SIGHUP
    # to this script stops the whole build through the trap, and nothing of it outlives the script.
    set -m
    swift build -c release --product opencourse &
    build_pid=$!
    set +m
    trap 'trap - INT TERM HUP; log "interrupted: stopping the build"; kill -TERM -- "-$build_pid" 2>/dev/null; wait "$build_pid" 2>/dev/null || true; exit 130' INT TERM HUP
    status=0
    wait "$build_pid" || status=$?
    trap - INT TERM HUP
    if [ "$status" -ne 0 ]; then
        log "the release build failed (exit $status)"
        exit 2
    fi
    set -- --binary .build/release/opencourse "$@"
fi

# bench.py starts PostgreSQL, the server and wrk itself and stops all of them on exit, errors,
# Ctrl-C, SIGTERM and SIGHUP; exec hands it the signals directly.
exec python3 bench/bench.py "$@"
