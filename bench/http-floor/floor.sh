#!/usr/bin/env bash
# The HTTP floor: opencourse's /health, cached course and cached catalog page against the same
# bytes served by SwiftNIO alone and by Hummingbird alone (floor.py says how).
#
#   bench/http-floor/floor.sh                      # release builds, then 3 rounds of 10 s
#   bench/http-floor/floor.sh --rounds 1 --seconds 5
#
# Needs curl; wrk is installed when missing. Arguments go to floor.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
swift build -c release --package-path ../.. --product opencourse
swift build -c release
exec python3 floor.py --opencourse ../../.build/release/opencourse --floor-bin .build/release "$@"
