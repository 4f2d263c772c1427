/* timing.c - the monotonic clock in milliseconds, deadlines for timed waits, and sleeps a stop flag cuts short. */
#include "timing.h"

#include <stddef.h>

long long timing_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void timing_deadline(struct timespec *at, long long ms)
{
	clock_gettime(CLOCK_REALTIME, at);
	at->tv_sec += (time_t)(ms / 1000);
	at->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at->tv_nsec >= 1000000000L) {
		at->tv_sec++;
		at->tv_nsec -= 1000000000L;
	}
}

void timing_sleep(long long ms, const atomic_int *stop)
{
	long long end = timing_now_ms() + ms, left;
	struct timespec t;

	while ((stop == NULL || !atomic_load(stop)) && (left = end - timing_now_ms()) > 0) {
		left = left > TIMING_SLEEP_SLICE_MS ? TIMING_SLEEP_SLICE_MS : left;
		t = (struct timespec){ 0, (long)left * 1000000L };
		nanosleep(&t, NULL);
	}
}
