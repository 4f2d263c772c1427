# ha.mk - high availability: the service through the loss of its primary database (tests/ha/).
#
#   make ha-test    install pg_auto_failover when missing, start scripts/ha.sh's monitor,
#                   primary and synchronous standby (PAYMENTS_HA_PORT, 54370 and the next
#                   two ports), kill -9 the primary under load, then the standby, and
#                   check that nothing acknowledged was lost or doubled; about 40 s
#                   once the topology is up (10-15 s to create it the first time)
#   make ha-stop    stop the topology (its data stays in .ha/)
#
# Not part of make test: it needs a package of its own and three more servers.

.PHONY: ha-test ha-stop ha-deps

ha-deps:
	@[ -n "$(SKIP_DEPS)" ] || scripts/deps.sh postgresql-15-auto-failover

ha-test: all ha-deps
	@scripts/ha.sh start >/dev/null
	@PAYMENTS_TEST_ADMIN_URL=$$(scripts/ha.sh url postgres) python3 tests/ha/test_failover.py

ha-stop:
	@scripts/ha.sh stop
