/* log.h - JSON-lines logging to stderr, one line per event, written off the request path. */
#ifndef PAYMENTS_LOG_H
#define PAYMENTS_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written from "debug", "info", "warn" or "error". Returns PAY_OK or PAY_ECONFIG. */
int log_set_level(const char *name);

/* True when a line of this level would be written (to skip building it). */
int log_enabled(enum log_level level);

/*
 * Starts the writer thread: from then on log lines are queued and written in
 * the background, so a slow stderr never blocks a request (lines beyond the
 * queue's room are dropped and counted). Returns PAY_OK or PAY_EINTERNAL.
 */
int log_start(void);

/* Writes what is queued and stops the writer; later lines are written directly. */
void log_stop(void);

/*
 * Writes {"ts":..,"level":..,"msg":msg, ...fields} as one line. fields may be
 * NULL; the reference is stolen. Never pass secrets (keys, tokens, webhook
 * secrets) in fields.
 */
void log_write(enum log_level level, const char *msg, json_t *fields);

/* printf-style message with no fields. */
void log_printf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
