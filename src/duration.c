/* duration.c - durations as settings and schedules write them: "250ms", "5s", "30m", "2h", "7d". */
#include "duration.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int duration_parse(const char *s, long long *ms)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	char *end = NULL;
	long long v;
	size_t i;

	if (s == NULL || *s < '0' || *s > '9')
		return PAY_ECONFIG;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return PAY_ECONFIG;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			if (v > LLONG_MAX / units[i].ms)
				return PAY_ECONFIG;
			*ms = v * units[i].ms;
			return PAY_OK;
		}
	}
	return PAY_ECONFIG;
}
