# bench.mk - make bench: throughput, latency, memory and relay figures beside PostgreSQL's own
# limit (issue 7). A benchmark, not a test: nothing in make test depends on it or on timing.
#
#   make bench                  about 5 minutes; prints a table, writes bench/results/<time>.json
#   make bench BENCH_RUNS=3     medians of 3 runs of each measurement (the issue's targets)
#   make bench-tools            only build the load generator and the webhook receiver
#
# Settings are environment variables read by bench/run.sh (BENCH_SECONDS, BENCH_SOAK_SECONDS,
# PAYMENTS_DB_POOL_SIZE, ...); see its header.

BENCH_TOOLS := build/bench/openloop build/bench/receiver

.PHONY: bench bench-tools bench-deps

bench: all bench-deps $(BENCH_TOOLS)
	@bench/run.sh

bench-tools: $(BENCH_TOOLS)

# wrk comes from Debian; pgbench with postgresql-15, which deps.sh installs already.
bench-deps:
	@scripts/deps.sh wrk

build/bench/%: bench/%.c mk/bench.mk
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -D_GNU_SOURCE -o $@ $<
