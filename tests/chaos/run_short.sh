#!/bin/sh
# run_short.sh - the short chaos run (15 s of load and faults) that make test runs as its own suite.
# Extra arguments go to chaos.py (e.g. --seed N). The last line is "chaos: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
exec python3 tests/chaos/chaos.py --short "$@"
