# bench.mk - make bench: throughput, latency, memory and relay figures beside PostgreSQL's own
# limit (bench/limit.pgbench) and a Node.js peer (bench/peer/). A benchmark, not a test:
# nothing in make test depends on it or on timing.
#
#   make bench                  about 6 minutes; prints a table, writes bench/results/<time>.json
#   make bench BENCH_RUNS=3     medians of 3 pairs of each measurement (the issue's targets)
#   make bench BENCH_SECONDS=3 BENCH_SOAK_SECONDS=5 BENCH_GROWTH_ROWS=10000
#                               a quick check that the tooling works (figures mean nothing)
#   make bench-tools            only build the load generator and the webhook receiver
#   make bench-peer             only install the peer's npm packages (npm ci)
#   make bench-walcount         WAL records, bytes, b-tree entries and row locks per new charge
#                               and per limit transaction (bench/walcount.sh; DATABASE_URL)
#
# Settings are environment variables read by bench/run.sh (BENCH_SECONDS, BENCH_CONNECTIONS,
# BENCH_PORT_BASE, PAYMENTS_DB_POOL_SIZE, ...); see its header. BENCH_PEER=0 runs without
# the peer (and without node and npm).

BENCH_TOOLS := build/bench/openloop build/bench/receiver
BENCH_PEER  ?= 1
BENCH_PEER_STAMP := bench/peer/node_modules/.package-lock.json

.PHONY: bench bench-tools bench-deps bench-peer bench-walcount

bench: all bench-deps $(BENCH_TOOLS) $(if $(filter 1,$(BENCH_PEER)),$(BENCH_PEER_STAMP))
	@BENCH_PEER=$(BENCH_PEER) bench/run.sh

bench-tools: $(BENCH_TOOLS)

bench-peer: $(BENCH_PEER_STAMP)

bench-walcount:
	@bench/walcount.sh $(BENCH_WALCOUNT_N)

# wrk comes from Debian; pgbench with postgresql-15, which deps.sh installs already.
bench-deps:
	@scripts/deps.sh wrk

# npm ci installs exactly package-lock.json's versions, and writes the stamp when it is done.
$(BENCH_PEER_STAMP): bench/peer/package.json bench/peer/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
		{ echo "make bench: the peer needs Node.js 20 or later and npm (or BENCH_PEER=0)" >&2; exit 1; }
	cd bench/peer && npm ci --no-audit --no-fund
	@touch $@

build/bench/%: bench/%.c mk/bench.mk
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) -D_GNU_SOURCE -o $@ $<
