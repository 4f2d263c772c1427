#!/bin/sh
# run_short.sh - the failover suite make test runs: both rounds of tests/ha/test_failover.py (kill -9, then a controlled failover), shorter, on scripts/ha.sh's topology.
# Starts the topology (PAYMENTS_HA_PORT, 54370 and the next two ports) and stops it at the end; its data stays in .ha/.
cd "$(dirname "$0")/../.." || exit 2
if ! url=$(scripts/ha.sh start | tail -1); then
	echo "ha: scripts/ha.sh start failed (see .ha/*.log)"
	exit 1
fi
PAYMENTS_TEST_ADMIN_URL=$(scripts/ha.sh url postgres) PAYMENTS_TEST_EMBEDDED=0 \
	python3 tests/ha/test_failover.py --short \
	FailoverTest.test_round_1_kill_primary FailoverTest.test_round_2_controlled_failover
rc=$?
scripts/ha.sh stop >/dev/null 2>&1 || echo "ha: scripts/ha.sh stop failed"
exit $rc
