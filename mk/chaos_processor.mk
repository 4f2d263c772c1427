# chaos_processor.mk - processor mode under faults (tests/chaos/processor_chaos.py): charges carried
# through the fault proxy to a second instance of this service by workers killed at every phase.
#
#   make chaos-processor                          1,000 charges, a random seed
#   make chaos-processor CHAOS_PROCESSOR_CHARGES=5000 CHAOS_SEED=N
#
# It needs PostgreSQL: PAYMENTS_TEST_ADMIN_URL, or the embedded cluster (scripts/pg.sh), which it starts.

CHAOS_PROCESSOR_CHARGES ?= 1000

.PHONY: chaos-processor

chaos-processor: all
	@if [ -z "$$PAYMENTS_TEST_ADMIN_URL" ]; then scripts/pg.sh start >/dev/null && \
	  export PAYMENTS_TEST_ADMIN_URL=postgresql://postgres@127.0.0.1:$${PAYMENTS_PG_PORT:-54329}/postgres; fi; \
	  python3 tests/chaos/processor_chaos.py --charges $(CHAOS_PROCESSOR_CHARGES) \
	  $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
