/* log.c - JSON-lines logging to stderr, one line per event, written off the request path. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define LOG_QUEUE_MAX 8192   /* lines waiting for the writer; beyond it lines are dropped and counted */
#define LOG_BATCH 64         /* lines per writev */

static enum log_level log_min = LOG_INFO;
static const char *const log_names[] = { "debug", "info", "warn", "error" };

/*
 * The queue between threads that log and the one writer thread. A caller
 * never waits for stderr: it formats its line, appends it under a short
 * lock and goes on. Before log_start (and after log_stop) lines are written
 * directly, so commands that never start the writer still log.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	pthread_t thread;
	bool running;
	bool stopping;
	char *lines[LOG_QUEUE_MAX];
	size_t lens[LOG_QUEUE_MAX];
	size_t head, count;
	unsigned long long dropped;
} log_q = { .lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER };

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

static void log_write_all(const struct iovec *iov, int n)
{
	/* Nothing sensible to do when stderr is gone. */
	if (writev(STDERR_FILENO, iov, n) < 0)
		return;
}

static void *log_writer(void *arg)
{
	struct iovec iov[LOG_BATCH];
	char *taken[LOG_BATCH];
	char note[96];
	unsigned long long dropped;
	int i, n;

	(void)arg;
	pthread_mutex_lock(&log_q.lock);
	for (;;) {
		while (log_q.count == 0 && log_q.dropped == 0 && !log_q.stopping)
			pthread_cond_wait(&log_q.ready, &log_q.lock);
		if (log_q.count == 0 && log_q.dropped == 0 && log_q.stopping)
			break;
		for (n = 0; n < LOG_BATCH && log_q.count > 0; n++) {
			taken[n] = log_q.lines[log_q.head];
			iov[n].iov_base = taken[n];
			iov[n].iov_len = log_q.lens[log_q.head];
			log_q.head = (log_q.head + 1) % LOG_QUEUE_MAX;
			log_q.count--;
		}
		dropped = log_q.dropped;
		log_q.dropped = 0;
		pthread_mutex_unlock(&log_q.lock);
		if (n > 0)
			log_write_all(iov, n);
		if (dropped > 0) {
			iov[0].iov_base = note;
			iov[0].iov_len = (size_t)snprintf(note, sizeof(note),
				"{\"level\":\"warn\",\"msg\":\"log lines dropped\",\"dropped\":%llu}\n", dropped);
			log_write_all(iov, 1);
		}
		for (i = 0; i < n; i++)
			free(taken[i]);
		pthread_mutex_lock(&log_q.lock);
	}
	pthread_mutex_unlock(&log_q.lock);
	return NULL;
}

int log_start(void)
{
	int rc = PAY_OK;

	pthread_mutex_lock(&log_q.lock);
	log_q.stopping = false;
	if (!log_q.running && pthread_create(&log_q.thread, NULL, log_writer, NULL) != 0)
		rc = PAY_EINTERNAL;
	else
		log_q.running = true;
	pthread_mutex_unlock(&log_q.lock);
	return rc;
}

void log_stop(void)
{
	bool was_running;

	pthread_mutex_lock(&log_q.lock);
	was_running = log_q.running;
	log_q.stopping = true;
	pthread_cond_signal(&log_q.ready);
	pthread_mutex_unlock(&log_q.lock);
	if (was_running)
		pthread_join(log_q.thread, NULL);   /* the writer drains the queue before it ends */
	pthread_mutex_lock(&log_q.lock);
	log_q.running = false;
	pthread_mutex_unlock(&log_q.lock);
}

/* Queues (or, without a writer, writes) one line; takes ownership of text. */
static void log_emit(char *text, size_t len)
{
	struct iovec iov;
	size_t tail;

	pthread_mutex_lock(&log_q.lock);
	if (!log_q.running) {
		pthread_mutex_unlock(&log_q.lock);
		iov.iov_base = text;
		iov.iov_len = len;
		log_write_all(&iov, 1);
		free(text);
		return;
	}
	if (log_q.count == LOG_QUEUE_MAX) {
		log_q.dropped++;
		free(text);
	} else {
		tail = (log_q.head + log_q.count) % LOG_QUEUE_MAX;
		log_q.lines[tail] = text;
		log_q.lens[tail] = len;
		log_q.count++;
	}
	pthread_cond_signal(&log_q.ready);
	pthread_mutex_unlock(&log_q.lock);
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
	text[len] = '\n';   /* json_dumps leaves room: the NUL becomes the line's end */
	log_emit(text, len + 1);
	text = NULL;        /* ownership passed to the queue */
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
