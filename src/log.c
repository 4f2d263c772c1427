/* log.c - JSON-lines logging to stderr, one line per event. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = { "debug", "info", "warn", "error" };

int log_set_level(const char *name)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (name != NULL && strcmp(name, log_names[i]) == 0) {
			log_min = (enum log_level)i;
			return PAY_OK;
		}
	}
	return PAY_ECONFIG;
}

int log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_write(enum log_level level, const char *msg, json_t *fields)
{
	json_t *line = NULL;
	char ts[40];
	char *text = NULL;
	struct timespec now;
	struct tm tm;
	size_t len;

	if (!log_enabled(level))
		goto out;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	len = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + len, sizeof(ts) - len, ".%03ldZ", now.tv_nsec / 1000000);

	line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", log_names[level], "msg", msg);
	if (line == NULL)
		goto out;
	if (fields != NULL)
		json_object_update(line, fields);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	len = strlen(text);
	text[len] = '\n';   /* json_dumps leaves room: overwrite the NUL, write in one call */
	if (write(STDERR_FILENO, text, len + 1) < 0) {
		/* Nothing sensible to do when stderr is gone. */
	}
out:
	free(text);
	json_decref(line);
	json_decref(fields);
}

void log_printf(enum log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_write(level, buf, NULL);
}
