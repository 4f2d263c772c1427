# ha.mk - high availability: the service through the loss of its primary database (tests/ha/).
#
#   make failover   install pg_auto_failover when missing, start scripts/ha.sh's monitor,
#                   primary and synchronous standby (PAYMENTS_HA_PORT, 54370 and the next
#                   two ports), and run two failover rounds under load: kill -9 of the
#                   primary, then a controlled failover (pg_autoctl perform failover);
#                   prints acknowledged, lost, doubled, the RTO and the old primary's
#                   rejoin per round; about 35 s once the topology is up, at most
#                   FAILOVER_TIMEOUT (600 s)
#   make ha-test    the same two rounds, then a kill -9 of the standby and migrate
#                   against a standby (about 50 s)
#   make ha-stop    stop the topology (its data stays in .ha/)
#
# make test runs the two rounds, shorter, as its ha suite (tests/ha/run_short.sh).

FAILOVER_TIMEOUT ?= 600
HA_TEST = PAYMENTS_TEST_ADMIN_URL=$$(scripts/ha.sh url postgres) \
	timeout --kill-after=10 $(FAILOVER_TIMEOUT) python3 tests/ha/test_failover.py

.PHONY: failover ha-test ha-stop ha-deps

ha-deps:
	@[ -n "$(SKIP_DEPS)" ] || scripts/deps.sh postgresql-15-auto-failover

failover: all ha-deps
	@scripts/ha.sh start >/dev/null
	@$(HA_TEST) FailoverTest.test_round_1_kill_primary FailoverTest.test_round_2_controlled_failover

ha-test: all ha-deps
	@scripts/ha.sh start >/dev/null
	@$(HA_TEST)

ha-stop:
	@scripts/ha.sh stop
