# Makefile - build, test and run the payments service.
#
#   make            build bin/payments
#   make run        install missing packages, build, start PostgreSQL (unless
#                   DATABASE_URL is set), migrate and serve on 127.0.0.1:8080
#   make test       install missing packages (clang too), build, and run every
#                   suite: unit, fuzz-short, pgTAP, OpenAPI, integration, chaos, compose
#   make unit       the cmocka tests only (the C compiler and cmocka, nothing else)
#   make SANITIZE=address,undefined test    the same under ASan and UBSan

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wundef -Wno-format-nonliteral
CPPFLAGS += -D_GNU_SOURCE -Iinclude -I/usr/include/postgresql
LDLIBS   := -lcivetweb -lpq -ljansson -lsodium -lcurl -lnats -lm -lpthread
ifeq ($(CI),true)
WARN     += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
BUILD    := build/san
else
BUILD    := build/release
endif

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/unit/%.c=%)
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/%)

# Each unit test and the src/ objects it links: its module and what that
# module calls, nothing else (so a test of a pure module needs no database code).
UNIT_OBJS_test_apikey          := apikey err ids
UNIT_OBJS_test_backoff         := backoff duration err
UNIT_OBJS_test_backoff_regress := backoff duration err
UNIT_OBJS_test_bounded         := bounded
UNIT_OBJS_test_body            := body form charge err
UNIT_OBJS_test_capturereq      := capturereq body form canon charge ids err
UNIT_OBJS_test_body_regress    := body form chargereq refundreq canon charge http_reply http_deadline metrics ids err
UNIT_OBJS_test_canon           := canon err
UNIT_OBJS_test_cfg             := cfg duration err
UNIT_OBJS_test_charge          := charge err
UNIT_OBJS_test_chargereq       := chargereq body form canon charge err
UNIT_OBJS_test_clientaddr      := clientaddr
UNIT_OBJS_test_connlimit       := connlimit
UNIT_OBJS_test_err             := err
UNIT_OBJS_test_event           := event
UNIT_OBJS_test_form            := form body chargereq refundreq canon charge ids err
UNIT_OBJS_test_http_deadline   := http_deadline
UNIT_OBJS_test_idem            := idem err
UNIT_OBJS_test_ids             := ids
UNIT_OBJS_test_keycache        := keycache apikey err ids
UNIT_OBJS_test_replaycache     := replaycache
UNIT_OBJS_test_migfile         := migfile err
UNIT_OBJS_test_migplan         := migplan migtap migfile err
UNIT_OBJS_test_relay_nats_pub  := relay_nats_pub log err
UNIT_OBJS_test_ratelimit       := ratelimit
UNIT_OBJS_test_refundreq       := refundreq body form canon charge ids err
UNIT_OBJS_test_timing          := timing
UNIT_OBJS_test_updatereq       := updatereq body form canon charge ids err
UNIT_OBJS_test_urlcheck        := urlcheck err
UNIT_OBJS_test_webhookreq      := webhookreq body form urlcheck event charge err
UNIT_OBJS_test_whsign          := whsign err
UNIT_OBJS_test_whsign_regress  := whsign err

# -MMD -MP: each compile writes a .d file of the headers it read, so touching
# a header rebuilds only what includes it.
DEPFLAGS := -MMD -MP
DEPFILES := $(OBJS:.o=.d) $(UNIT_BINS:=.d)

# The package check runs only for the two goals a new user types on a fresh
# machine, make run and make test; there every compile waits for it (also
# under -j). A plain make, make unit or an object build never runs it.
DEPS_FIRST := $(if $(filter run test,$(MAKECMDGOALS)),deps)

.PHONY: all bin/payments run test unit sqltest itest composecheck deps clean compile_commands.json

all: bin/payments

# Plain and sanitized builds keep separate objects; bin/payments is the last one built.
# The RPATH lets civetweb's dlopen("libssl.so") find the TLS shim in lib/payments/
# (see compat/ssl_compat.c); --disable-new-dtags makes it an RPATH, which dlopen
# from a library honours, rather than a RUNPATH, which it would not.
$(BUILD)/payments: $(OBJS)
	$(CC) $(LDFLAGS) -Wl,--disable-new-dtags,-rpath,'$$ORIGIN/../lib/payments' -o $@ $^ $(LDLIBS)

bin/payments: $(BUILD)/payments lib/payments/libssl.so
	@mkdir -p bin
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@; }

lib/payments/libssl.so: compat/ssl_compat.c | $(DEPS_FIRST)
	@mkdir -p lib/payments
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Wl,-soname,libpayments-sslcompat.so -o $@ $< -lssl

# The OpenAPI document is assembled into the binary (.incbin in api_openapi.c).
$(BUILD)/api_openapi.o: openapi.yaml

# Objects also depend on the Makefile, which holds their flags.
$(BUILD)/%.o: src/%.c Makefile | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c Makefile | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(UNIT_BINS): %: %.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# A new tests/unit/test_x.c needs its UNIT_OBJS_test_x line above.
$(foreach t,$(UNIT_TESTS),$(if $(UNIT_OBJS_$(t)),,$(error Makefile: no UNIT_OBJS_$(t) for tests/unit/$(t).c)))
$(foreach t,$(UNIT_TESTS),$(eval $(BUILD)/tests/$(t): $(UNIT_OBJS_$(t):%=$(BUILD)/%.o)))

-include $(wildcard $(DEPFILES))

# SKIP_DEPS=1 skips the package check (e.g. where packages come from elsewhere).
deps:
	@[ -n "$(SKIP_DEPS)" ] || scripts/deps.sh

run: deps all
	@scripts/run.sh

# The short fuzz run (fuzz-build, mk/fuzz.mk) is one of make test's suites.
test: deps all $(UNIT_BINS) fuzz-build
	@PAYMENTS_TEST_FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS) scripts/test.sh $(UNIT_BINS)

unit: $(UNIT_BINS)
	@failed=0; for t in $(UNIT_BINS); do $$t || failed=1; done; exit $$failed

sqltest: all
	@scripts/test.sh --only sql

itest: all
	@scripts/test.sh --only integration

composecheck:
	@scripts/test.sh --only compose

compile_commands.json:
	@{ echo '['; first=1; for f in $(SRCS) $(UNIT_SRCS); do \
	  [ $$first = 1 ] || echo ','; first=0; \
	  printf '{"directory":"%s","file":"%s","command":"%s %s %s -c %s"}' \
	    "$(CURDIR)" "$$f" "$(CC)" "$(CPPFLAGS)" "$(WARN)" "$$f"; done; echo ']'; } > $@

clean:
	rm -rf build bin lib compile_commands.json

# Longer-running targets (fuzz, bench, chaos, ...) live in mk/*.mk, one file per concern.
-include mk/*.mk
