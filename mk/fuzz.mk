# mk/fuzz.mk - libFuzzer targets for every parser of untrusted input (tests/fuzz/).
#
#   make fuzz            each target for FUZZ_SECONDS (60) seconds, FUZZ_JOBS at a time;
#                        new corpus entries go to tests/fuzz/out/<target>/corpus (git-ignored)
#   make fuzz-short      each target over its seed corpus plus FUZZ_SHORT_SECONDS (8) seconds;
#                        make test runs the same as its suite fuzz-short (make unit does not:
#                        it needs only the C compiler and cmocka, no clang)
#   make fuzz-<target>   one target for FUZZ_SECONDS, e.g. make fuzz-chargereq
#   make fuzz-build      only build the targets into build/fuzz/
#   make fuzz-coverage   line coverage of src/ by the seeds plus tests/fuzz/out/ (llvm-cov)
#
# Any crash, leak, timeout, out-of-memory or sanitizer report fails the run;
# the input that caused it is saved as tests/fuzz/out/<target>/crash-* (or
# leak-*, timeout-*, oom-*). Reproduce with build/fuzz/fuzz_<target> FILE.
# The targets and their src/ objects are built with clang, whatever CC is,
# into build/fuzz/ only.

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 8
FUZZ_RSS_MB        ?= 2048
FUZZ_JOBS          ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_DIR           := build/fuzz
FUZZ_SAN           := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS        := -g -O1 $(FUZZ_SAN)
FUZZ_COV_FLAGS     := -g -O0 -fprofile-instr-generate -fcoverage-mapping -DFUZZ_COVERAGE

# Each target and the src/ objects it links: the pure parsers, no database and no server.
FUZZ_TARGETS := chargereq refundreq capturereq updatereq webhookreq body form canon headers ids query urlcheck whsign backoff duration migfile clientaddr
FUZZ_SRC_chargereq := chargereq body form canon charge err http_reply http_deadline metrics
FUZZ_SRC_refundreq := refundreq body form canon charge ids err http_reply http_deadline metrics
FUZZ_SRC_capturereq := capturereq body form canon charge ids err http_reply http_deadline metrics
FUZZ_SRC_updatereq := updatereq body form canon charge ids err http_reply http_deadline metrics
FUZZ_SRC_webhookreq := webhookreq body form urlcheck event charge err http_reply http_deadline metrics
FUZZ_SRC_body      := body form charge err http_reply http_deadline metrics
FUZZ_SRC_form      := form body canon chargereq refundreq updatereq charge ids err http_reply http_deadline metrics
FUZZ_SRC_canon     := canon body form charge err
FUZZ_SRC_headers   := idem apikey ids err
FUZZ_SRC_ids       := ids
FUZZ_SRC_query     := http_reply http_deadline metrics ids err
FUZZ_SRC_urlcheck  := urlcheck err
FUZZ_SRC_whsign    := whsign err
FUZZ_SRC_backoff   := backoff duration err
FUZZ_SRC_duration  := duration err
FUZZ_SRC_migfile   := migfile err
FUZZ_SRC_clientaddr := clientaddr

FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_COV_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/cov/fuzz_%)
# Like the main build, every compile writes a .d file of the headers it read (DEPFLAGS).
FUZZ_DEPFILES = $(wildcard $(FUZZ_DIR)/obj/*.d $(FUZZ_DIR)/cov/obj/*.d $(FUZZ_DIR)/*.d $(FUZZ_DIR)/cov/*.d)

.PHONY: fuzz fuzz-short fuzz-build fuzz-deps fuzz-coverage $(FUZZ_TARGETS:%=fuzz-%)

# clang and its fuzzer runtime come from Debian, through the one installer
# (after the main package check, when make test runs both).
fuzz-deps: | $(DEPS_FIRST)
	@scripts/deps.sh clang libclang-rt-14-dev

$(FUZZ_DIR)/obj/%.o: src/%.c mk/fuzz.mk | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/cov/obj/%.o: src/%.c mk/fuzz.mk | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_COV_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# One link rule per target, so each pulls in only its own objects. The
# target's own source is compiled in the link, so its .d is named after the binary.
define FUZZ_RULES
$(FUZZ_DIR)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1):%=$(FUZZ_DIR)/obj/%.o) mk/fuzz.mk
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(WARN) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer -o $$@ \
		$$< $(FUZZ_SRC_$(1):%=$(FUZZ_DIR)/obj/%.o) $(LDLIBS)

$(FUZZ_DIR)/cov/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRC_$(1):%=$(FUZZ_DIR)/cov/obj/%.o) mk/fuzz.mk
	$(FUZZ_CC) $(CPPFLAGS) -Itests/fuzz $(WARN) $(FUZZ_COV_FLAGS) $(DEPFLAGS) -fsanitize=fuzzer -o $$@ \
		$$< $(FUZZ_SRC_$(1):%=$(FUZZ_DIR)/cov/obj/%.o) $(LDLIBS)

fuzz-$(1): $(FUZZ_DIR)/fuzz_$(1)
	@tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) --rss $(FUZZ_RSS_MB) --keep $(1)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@tests/fuzz/run.sh --seconds $(FUZZ_SECONDS) --rss $(FUZZ_RSS_MB) --jobs $(FUZZ_JOBS) --keep

fuzz-short: fuzz-build
	@tests/fuzz/run.sh --seconds $(FUZZ_SHORT_SECONDS) --rss $(FUZZ_RSS_MB) --jobs $(FUZZ_JOBS)

fuzz-coverage: $(FUZZ_COV_BINS)
	@tests/fuzz/coverage.sh $(FUZZ_DIR)/cov $(FUZZ_TARGETS)

-include $(FUZZ_DEPFILES)
