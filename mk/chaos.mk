# chaos.mk - the fault-injection test (tests/chaos/chaos.py): load, kills, crashes and broken webhooks, then the invariants.
#
#   make chaos                          60 s of load and faults, a random seed
#   make chaos CHAOS_SEED=N             replay the fault schedule of seed N
#   make chaos CHAOS_DURATION=300       a longer run
#   make chaos-short                    the 15 s run that make test uses
#   make chaos-selftest                 only the checks' own tests (no database)
#   make chaos-failover                 the same run on scripts/ha.sh's primary and
#                                       synchronous standby, with kill -9 of the primary
#                                       and controlled failovers among the faults
#                                       (installs pg_auto_failover when missing; CHAOS_SEED
#                                       and CHAOS_DURATION apply)
#
# It needs PostgreSQL: PAYMENTS_TEST_ADMIN_URL, or the embedded cluster
# (scripts/pg.sh), which it starts, crashes and leaves running; chaos-failover
# starts the HA topology (PAYMENTS_HA_PORT) and leaves it running.

CHAOS_DURATION ?= 60
CHAOS_SEED     ?=

.PHONY: chaos chaos-short chaos-selftest chaos-failover

chaos-selftest:
	@python3 tests/chaos/test_checks.py

chaos: all chaos-selftest
	@python3 tests/chaos/chaos.py --duration $(CHAOS_DURATION) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

chaos-short: all
	@tests/chaos/run_short.sh $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

chaos-failover: all chaos-selftest ha-deps
	@python3 tests/chaos/chaos.py --ha --duration $(CHAOS_DURATION) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
