/* duration.h - durations as settings and schedules write them: "250ms", "5s", "30m", "2h", "7d". */
#ifndef PAYMENTS_DURATION_H
#define PAYMENTS_DURATION_H

/*
 * Parses a duration: a whole number with an optional unit ms, s, m, h or d
 * (no unit means seconds) into *ms. Returns PAY_OK, or PAY_ECONFIG for
 * anything else or a value that does not fit in a long long of ms.
 */
int duration_parse(const char *s, long long *ms) __attribute__((warn_unused_result));

#endif
