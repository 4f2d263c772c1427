/* relay_nats.c - the relay's NATS JetStream publisher: a thread of its own beside the webhooks. */
#include "relay_nats.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cfg.h"
#include "db.h"
#include "db_relay.h"
#include "err.h"
#include "log.h"
#include "relay_nats_pub.h"
#include "timing.h"

#define RELAY_STATUS_EVERY_MS (10 * 1000)

/*
 * The NATS publisher: a thread with its own database connection, so that
 * NATS being slow or down never delays a webhook, and webhooks failing
 * never hold back the stream. It claims events with a lease, publishes
 * them, and marks those JetStream acknowledged.
 */
struct relay_nats {
	const struct cfg *cfg;
	atomic_int stop;
	bool running;
	pthread_t thread;
	struct relay_nats_pub *pub;
	struct db_conn *conn;
	int failures;              /* consecutive failed rounds, for the retry delay */
	long long next_status_ms;
};

bool relay_nats_enabled(const struct cfg *cfg)
{
	return cfg->nats_url != NULL && cfg->nats_url[0] != '\0';
}

/* Refuses NATS settings that cannot work, before anything starts. Returns PAY_OK or PAY_ECONFIG. */
int relay_nats_check(const struct cfg *cfg)
{
	long long bound = relay_nats_pub_republish_bound_ms(cfg->relay_lease_ms);

	if (!relay_nats_pub_valid_stream(cfg->nats_stream)) {
		log_printf(LOG_ERROR, "PAYMENTS_NATS_STREAM '%s' is not a stream name (1-%d characters, "
			   "no spaces, '.', '*', '>', '/' or '\\')", cfg->nats_stream, RELAY_NATS_PUB_STREAM_MAX);
		return PAY_ECONFIG;
	}
	if (!relay_nats_pub_valid_prefix(cfg->nats_subject_prefix)) {
		log_printf(LOG_ERROR, "PAYMENTS_NATS_SUBJECT_PREFIX '%s' is not a subject prefix "
			   "(dot-separated tokens, no spaces, '*' or '>')", cfg->nats_subject_prefix);
		return PAY_ECONFIG;
	}
	/*
	 * A republish after a crash comes at most `bound` after the first
	 * publish; inside the window the server drops it by its Nats-Msg-Id.
	 */
	if (cfg->nats_duplicate_window_ms <= bound) {
		log_printf(LOG_ERROR, "PAYMENTS_NATS_DUPLICATE_WINDOW (%lld ms) must exceed the relay's "
			   "worst-case republish delay: PAYMENTS_RELAY_LEASE plus the NATS retry cap "
			   "(%lld ms)", cfg->nats_duplicate_window_ms, bound);
		return PAY_ECONFIG;
	}
	return PAY_OK;
}

static void relay_nats_drop_conn(struct relay_nats *rn)
{
	db_conn_close(rn->conn);
	rn->conn = NULL;
}

static void relay_nats_drop_pub(struct relay_nats *rn)
{
	relay_nats_pub_destroy(rn->pub);
	rn->pub = NULL;
}

/* Logs the NATS backlog every RELAY_STATUS_EVERY_MS, like the webhook backlog. */
static void relay_nats_status(struct relay_nats *rn)
{
	long long now = timing_now_ms(), unpublished = 0;
	double oldest = 0;

	if (now < rn->next_status_ms)
		return;
	rn->next_status_ms = now + RELAY_STATUS_EVERY_MS;
	if (db_relay_nats_status(rn->conn, &unpublished, &oldest) == PAY_OK)
		log_write(LOG_INFO, "relay NATS backlog",
			  json_pack("{s:I, s:f}", "unpublished_events", (json_int_t)unpublished,
				    "oldest_unpublished_s", oldest));
}

/*
 * Makes sure the database connection and the NATS connection (with the
 * stream checked) are up. Returns PAY_OK, or an error with err filled in.
 */
static int relay_nats_connect(struct relay_nats *rn, char *err, size_t errlen)
{
	const struct cfg *cfg = rn->cfg;
	int rc;

	if (rn->conn == NULL &&
	    db_conn_open(cfg->database_url, cfg->db_connect_timeout_ms, &rn->conn) != PAY_OK) {
		snprintf(err, errlen, "cannot connect to the database");
		return PAY_EUNAVAILABLE;
	}
	/* The connection does not reconnect by itself: a broken one is replaced, stream check included. */
	if (rn->pub != NULL && !relay_nats_pub_connected(rn->pub))
		relay_nats_drop_pub(rn);
	if (rn->pub == NULL) {
		rc = relay_nats_pub_create(cfg->nats_url, cfg->nats_stream, cfg->nats_subject_prefix,
				    cfg->nats_duplicate_window_ms, &rn->pub, err, errlen);
		if (rc != PAY_OK)
			return rc;
		log_write(LOG_INFO, "relay connected to NATS",
			  json_pack("{s:s, s:s}", "stream", cfg->nats_stream,
				    "subjects", cfg->nats_subject_prefix));
	}
	return PAY_OK;
}

/*
 * One round: claim a batch (at most one event per charge), publish it
 * without a round trip per event, mark what JetStream acknowledged and
 * release the rest. A crash between publishing and marking leaves the
 * lease to expire; the republish carries the same Nats-Msg-Id and the
 * server drops it. Returns the number of events claimed (0: idle) or a
 * negative error with err filled in.
 */
static int relay_nats_round(struct relay_nats *rn, char *err, size_t errlen)
{
	const struct cfg *cfg = rn->cfg;
	struct db_nats_job *jobs = NULL;
	struct relay_nats_pub_msg *msgs = NULL;
	long long *published = NULL, *failed = NULL;
	int i, n = 0, npub = 0, nfail = 0, dups = 0, prc, rc;

	rc = relay_nats_connect(rn, err, errlen);
	if (rc != PAY_OK)
		return rc;
	rc = db_relay_nats_claim(rn->conn, cfg->relay_batch, cfg->relay_lease_ms, &jobs, &n);
	if (rc != PAY_OK) {
		snprintf(err, errlen, "cannot claim events: %s", db_conn_error(rn->conn));
		relay_nats_drop_conn(rn);
		goto out;
	}
	if (n == 0)
		goto out;
	msgs = calloc((size_t)n, sizeof(*msgs));
	published = calloc((size_t)n, sizeof(*published));
	failed = calloc((size_t)n, sizeof(*failed));
	if (msgs == NULL || published == NULL || failed == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = PAY_ENOMEM;   /* the leases expire and the events are claimed again */
		goto out;
	}
	for (i = 0; i < n; i++)
		msgs[i] = (struct relay_nats_pub_msg){ jobs[i].event_id, jobs[i].type, jobs[i].body,
						jobs[i].body_len, false, false };
	prc = relay_nats_pub_publish(rn->pub, msgs, n);
	for (i = 0; i < n; i++) {
		if (msgs[i].acked)
			published[npub++] = jobs[i].seq;
		else
			failed[nfail++] = jobs[i].seq;
		dups += msgs[i].duplicate;
	}
	rc = db_relay_nats_record(rn->conn, published, npub, failed, nfail);
	if (rc != PAY_OK) {
		snprintf(err, errlen, "cannot record published events: %s", db_conn_error(rn->conn));
		relay_nats_drop_conn(rn);
		goto out;
	}
	if (log_enabled(LOG_DEBUG) || dups > 0)
		log_write(dups > 0 ? LOG_INFO : LOG_DEBUG, "published events to NATS",
			  json_pack("{s:i, s:i, s:i}", "acknowledged", npub, "duplicates", dups,
				    "failed", nfail));
	if (prc != PAY_OK) {
		snprintf(err, errlen, "%d of %d events not published: %s", nfail, n,
			 relay_nats_pub_error(rn->pub));
		relay_nats_drop_pub(rn);
		rc = prc;
	}
out:
	free(msgs);
	free(published);
	free(failed);
	db_relay_nats_jobs_free(jobs, n);
	return rc == PAY_OK ? n : rc;
}

/* The NATS thread: rounds until stopped, retrying failures with a capped, jittered backoff. */
static void *relay_nats_main(void *arg)
{
	struct relay_nats *rn = arg;
	char err[RELAY_NATS_PUB_ERROR_MAX + 64];
	long long delay;
	int done;

	while (!atomic_load(&rn->stop)) {
		err[0] = '\0';
		done = relay_nats_round(rn, err, sizeof(err));
		if (done < 0) {
			rn->failures++;
			delay = relay_nats_pub_retry_delay_ms(rn->failures, randombytes_random());
			log_write(done == PAY_ECONFIG ? LOG_ERROR : LOG_WARN,
				  "NATS publishing failed; webhooks are not affected, events wait in the outbox",
				  json_pack("{s:s, s:i, s:I}", "error", err, "failures", rn->failures,
					    "retry_in_ms", (json_int_t)delay));
			timing_sleep(delay, &rn->stop);
			continue;
		}
		if (rn->failures > 0) {
			log_write(LOG_INFO, "NATS publishing resumed",
				  json_pack("{s:i}", "after_failures", rn->failures));
			rn->failures = 0;
		}
		relay_nats_status(rn);
		if (done == 0)
			timing_sleep(rn->cfg->relay_poll_ms, &rn->stop);
	}
	relay_nats_drop_pub(rn);
	relay_nats_drop_conn(rn);
	return NULL;
}

struct relay_nats *relay_nats_start(const struct cfg *cfg)
{
	struct relay_nats *rn = calloc(1, sizeof(*rn));
	sigset_t block, old;
	int rc;

	if (rn == NULL)
		return NULL;
	rn->cfg = cfg;
	atomic_store(&rn->stop, 0);
	/* SIGTERM and SIGINT stay with the main loop; libnats' threads inherit the mask too. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = pthread_create(&rn->thread, NULL, relay_nats_main, rn);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_printf(LOG_ERROR, "cannot start the NATS publisher thread: %s", strerror(rc));
		free(rn);
		return NULL;
	}
	rn->running = true;
	return rn;
}

void relay_nats_stop(struct relay_nats *rn)
{
	if (rn == NULL)
		return;
	atomic_store(&rn->stop, 1);
	pthread_join(rn->thread, NULL);
	relay_nats_pub_shutdown();
	free(rn);
}

