/* fuzz_duration.c - libFuzzer target for durations in settings (duration_parse). */
#include <limits.h>

#include "duration.h"
#include "err.h"
#include "fuzz_common.h"

/* ^[0-9]+(ms|s|m|h|d)?$ with no unit meaning seconds; the value in ms when it fits, else -1. */
static long long fuzz_reference(const char *s)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 },
	};
	__int128 v = 0;
	size_t i = 0, u;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (s[i] - '0');
		if (v > LLONG_MAX)
			return -1;
	}
	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(s + i, units[u].unit) == 0)
			return v * units[u].ms > LLONG_MAX ? -1 : (long long)(v * units[u].ms);
	}
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	long long ms = -42, want = fuzz_reference(s);
	int rc = duration_parse(s, &ms);

	FUZZ_CHECK(rc == PAY_OK || rc == PAY_ECONFIG);
	FUZZ_CHECK((rc == PAY_OK) == (want >= 0));
	FUZZ_CHECK(rc != PAY_OK || ms == want);
	FUZZ_CHECK(rc == PAY_OK || ms == -42);   /* a refusal leaves the output alone */
	FUZZ_CHECK(duration_parse(NULL, &ms) == PAY_ECONFIG);
	free(s);
	return 0;
}
