# Makefile - build, test and run the payments service.
#
#   make            build bin/payments
#   make run        install missing packages, build, start PostgreSQL (unless
#                   DATABASE_URL is set), migrate and serve on 127.0.0.1:8080
#   make test       unit, pgTAP and integration tests
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
LIB_OBJS := $(filter-out $(BUILD)/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

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

lib/payments/libssl.so: compat/ssl_compat.c
	@mkdir -p lib/payments
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Wl,-soname,libpayments-sslcompat.so -o $@ $< -lssl

$(OBJS): | deps

# The OpenAPI document is assembled into the binary (.incbin in api_openapi.c).
$(BUILD)/api_openapi.o: openapi.yaml

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

# SKIP_DEPS=1 skips the package check (the Dockerfile installs its own).
deps:
	@[ -n "$(SKIP_DEPS)" ] || scripts/deps.sh

run: deps all
	@scripts/run.sh

test: deps all $(UNIT_BINS)
	@scripts/test.sh $(UNIT_BINS)

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
