#!/usr/bin/env bash
# valgrind.sh - integration modules against bin/payments running under valgrind memcheck.
#
# Usage: scripts/valgrind.sh [MODULE...]   (default: the charge, refund, decline,
# validation and auth modules; the concurrency-heavy ones are too slow under valgrind)
# Every serve, migrate and keys process the tests start runs under memcheck; the
# run fails on any invalid read or write, use of uninitialised memory, or
# definitely lost block. Uses PAYMENTS_TEST_ADMIN_URL like the integration
# tests when it is set; otherwise it starts the embedded cluster (scripts/pg.sh).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(test_charges test_refunds test_declines test_validation test_auth)
logs=$(mktemp -d /tmp/payments-valgrind.XXXXXX)
trap 'rm -rf "$logs"' EXIT

if [ -z "${PAYMENTS_TEST_ADMIN_URL:-}" ]; then
	scripts/pg.sh start >/dev/null
	export PAYMENTS_TEST_ADMIN_URL=$(scripts/pg.sh url postgres) PAYMENTS_TEST_EMBEDDED=1
fi
PAYMENTS_TEST_BIN=$repo/tests/valgrind/payments PAYMENTS_VALGRIND_LOGS=$logs PAYMENTS_RATE_LIMIT=0 \
	python3 tests/integration/run.py "${modules[@]}"
tests=$?

bad=0
checked=0
for f in "$logs"/vg.*.log; do
	[ -e "$f" ] || continue
	checked=$((checked + 1))
	if grep -qE "Invalid (read|write|free)|uninitialised|definitely lost: [1-9]|Mismatched free" "$f"; then
		bad=$((bad + 1))
		echo "== valgrind report $(basename "$f"):"
		sed -n '1,80p' "$f"
	fi
done
echo "valgrind: $checked process reports read, $bad with errors"
if [ "$tests" -ne 0 ] || [ "$bad" -ne 0 ]; then
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
