#!/bin/sh
# run_short.sh - the short chaos run that make test runs as its own suite: the checks' own tests, then 15 s of load and faults.
# Extra arguments go to chaos.py (e.g. --seed N). The last line is "chaos: N passed, M failed".
cd "$(dirname "$0")/../.." || exit 2
if ! out=$(python3 tests/chaos/test_checks.py 2>&1); then
	echo "$out"
	echo "chaos: 0 passed, 1 failed (the checks' own tests, tests/chaos/test_checks.py)"
	exit 1
fi
echo "chaos: the checks' own tests pass"
exec python3 tests/chaos/chaos.py --short "$@"
