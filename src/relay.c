/* relay.c - the outbox relay: publishes committed events as signed webhooks and to NATS JetStream. */
#include "relay.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "backoff.h"
#include "cfg.h"
#include "db.h"
#include "db_relay.h"
#include "err.h"
#include "log.h"
#include "natspub.h"
#include "sender.h"
#include "whsign.h"

#define RELAY_PURGE_EVERY_MS (60 * 1000)
#define RELAY_STATUS_EVERY_MS (10 * 1000)
#define RELAY_PURGE_BATCH 1000
#define RELAY_NATS_SLEEP_SLICE_MS 100

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
	struct natspub *pub;
	struct db_conn *conn;
	int failures;              /* consecutive failed rounds, for the retry delay */
	long long next_status_ms;
};

struct relay {
	const struct cfg *cfg;
	volatile sig_atomic_t *stop;
	struct backoff backoff;
	struct sender *sender;
	struct db_conn *conn;
	long long next_purge_ms;
	long long next_status_ms;
	bool nats_on;
	struct relay_nats nats;
};

static long long relay_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sleeps ms unless a stop signal arrives first (nanosleep returns early on EINTR). */
static void relay_sleep(struct relay *r, long long ms)
{
	struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	if (!*r->stop)
		nanosleep(&t, NULL);
}

/* Drops a broken connection; the next round reconnects. */
static void relay_drop_conn(struct relay *r)
{
	db_conn_close(r->conn);
	r->conn = NULL;
}

/* Makes sure r->conn is open, retrying with capped backoff. Returns PAY_OK or PAY_EUNAVAILABLE when stopping. */
static int relay_connect(struct relay *r)
{
	long long delay = 100;

	while (r->conn == NULL && !*r->stop) {
		if (db_conn_open(r->cfg->database_url, r->cfg->db_connect_timeout_ms, &r->conn) == PAY_OK) {
			log_printf(LOG_INFO, "relay connected to the database");
			break;
		}
		relay_sleep(r, delay);
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
	return r->conn != NULL ? PAY_OK : PAY_EUNAVAILABLE;
}

static void relay_log_attempt(const struct db_delivery_job *j, const struct sender_result *res,
			      const struct db_delivery_outcome *o)
{
	log_write(o->ok ? LOG_INFO : LOG_WARN, "webhook delivery attempt",
		  json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:i, s:s?, s:o?, s:b}",
			    "event", j->event_id, "endpoint", j->endpoint_id,
			    "delivery", j->delivery_id, "attempt", j->attempts + 1,
			    "status", res->status_code, "ok", o->ok, "duration_ms", res->duration_ms,
			    "error", o->error,
			    "next_attempt_in_ms", (o->ok || o->dead) ? NULL : json_integer(o->delay_ms),
			    "dead", o->dead));
}

/*
 * Signs and sends one batch of leased deliveries, then records every
 * outcome in one round trip. A crash anywhere here leaves the leases to
 * expire, so the deliveries are sent again: at least once.
 */
static int relay_deliver(struct relay *r, struct db_delivery_job *jobs, int n)
{
	struct sender_msg *msgs = calloc((size_t)n, sizeof(*msgs));
	struct sender_result *res = calloc((size_t)n, sizeof(*res));
	struct db_delivery_outcome *out = calloc((size_t)n, sizeof(*out));
	char (*sigs)[WHSIGN_SIGNATURE_MAX] = calloc((size_t)n, WHSIGN_SIGNATURE_MAX);
	long long now = (long long)time(NULL);
	int i, rc = PAY_ENOMEM;

	if (msgs == NULL || res == NULL || out == NULL || sigs == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (whsign_sign(jobs[i].secret, jobs[i].event_id, now, jobs[i].body, jobs[i].body_len,
				sigs[i]) != PAY_OK)
			sigs[i][0] = '\0';
		msgs[i] = (struct sender_msg){ jobs[i].url, jobs[i].body, jobs[i].body_len,
					       jobs[i].event_id, now, sigs[i] };
	}
	rc = sender_send(r->sender, msgs, res, n);
	if (rc != PAY_OK)
		goto out;
	for (i = 0; i < n; i++) {
		int attempts = jobs[i].attempts + 1;

		out[i].delivery_id = jobs[i].delivery_id;
		out[i].ok = res[i].ok;
		out[i].status_code = res[i].status_code;
		out[i].error = res[i].ok ? NULL : res[i].error;
		out[i].duration_ms = res[i].duration_ms;
		out[i].dead = !res[i].ok && backoff_exhausted(&r->backoff, attempts);
		out[i].delay_ms = res[i].ok ? 0 :
			backoff_next_delay(&r->backoff, attempts, res[i].retry_after_ms,
					   randombytes_random());
		relay_log_attempt(&jobs[i], &res[i], &out[i]);
	}
	rc = db_relay_record(r->conn, out, n);
out:
	free(msgs);
	free(res);
	free(out);
	free(sigs);
	return rc;
}

static void relay_housekeeping(struct relay *r)
{
	struct db_relay_status st;
	long long now = relay_now_ms(), n = 0;

	if (now >= r->next_purge_ms) {
		r->next_purge_ms = now + RELAY_PURGE_EVERY_MS;
		do {
			/* With NATS, an event is kept until the stream holds it too. */
			if ((r->nats_on ? db_event_purge_nats : db_event_purge)(r->conn, r->cfg->event_retention_ms,
										 RELAY_PURGE_BATCH, &n) != PAY_OK)
				break;
			if (n > 0)
				log_write(LOG_INFO, "purged old events", json_pack("{s:I}", "deleted", (json_int_t)n));
		} while (n == RELAY_PURGE_BATCH && !*r->stop);
	}
	if (now >= r->next_status_ms) {
		r->next_status_ms = now + RELAY_STATUS_EVERY_MS;
		if (db_relay_status(r->conn, &st) == PAY_OK)
			log_write(LOG_INFO, "relay backlog",
				  json_pack("{s:I, s:f, s:I, s:f, s:I}",
					    "unpublished_events", (json_int_t)st.unpublished,
					    "oldest_unpublished_s", st.oldest_unpublished_s,
					    "pending_deliveries", (json_int_t)st.pending_deliveries,
					    "oldest_due_s", st.oldest_due_s,
					    "dead_deliveries", (json_int_t)st.dead_deliveries));
	}
}

/* One round: fan out, claim, deliver. Returns the work done (0: idle) or a negative error. */
static int relay_round(struct relay *r)
{
	struct db_delivery_job *jobs = NULL;
	int fanned = 0, claimed = 0, rc;

	rc = db_relay_fanout(r->conn, r->cfg->relay_batch, &fanned);
	if (rc == PAY_OK)
		rc = db_relay_claim(r->conn, r->cfg->relay_batch, r->cfg->relay_lease_ms, &jobs, &claimed);
	if (rc == PAY_OK && claimed > 0)
		rc = relay_deliver(r, jobs, claimed);
	if (rc == PAY_OK)
		relay_housekeeping(r);
	db_relay_jobs_free(jobs, claimed);
	return rc == PAY_OK ? fanned + claimed : rc;
}

/* --- NATS JetStream publishing --- */

static bool relay_nats_enabled(const struct cfg *cfg)
{
	return cfg->nats_url != NULL && cfg->nats_url[0] != '\0';
}

/* Refuses NATS settings that cannot work, before anything starts. Returns PAY_OK or PAY_ECONFIG. */
static int relay_nats_check(const struct cfg *cfg)
{
	long long bound = natspub_republish_bound_ms(cfg->relay_lease_ms);

	if (!natspub_valid_stream(cfg->nats_stream)) {
		log_printf(LOG_ERROR, "PAYMENTS_NATS_STREAM '%s' is not a stream name (1-%d characters, "
			   "no spaces, '.', '*', '>', '/' or '\\')", cfg->nats_stream, NATSPUB_STREAM_MAX);
		return PAY_ECONFIG;
	}
	if (!natspub_valid_prefix(cfg->nats_subject_prefix)) {
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

/* Sleeps ms in short slices, so that a stop is noticed soon. */
static void relay_nats_sleep(struct relay_nats *rn, long long ms)
{
	long long slept = 0, step;
	struct timespec t;

	while (slept < ms && !atomic_load(&rn->stop)) {
		step = ms - slept < RELAY_NATS_SLEEP_SLICE_MS ? ms - slept : RELAY_NATS_SLEEP_SLICE_MS;
		t.tv_sec = 0;
		t.tv_nsec = (long)step * 1000000L;
		nanosleep(&t, NULL);
		slept += step;
	}
}

static void relay_nats_drop_conn(struct relay_nats *rn)
{
	db_conn_close(rn->conn);
	rn->conn = NULL;
}

static void relay_nats_drop_pub(struct relay_nats *rn)
{
	natspub_destroy(rn->pub);
	rn->pub = NULL;
}

/* Logs the NATS backlog every RELAY_STATUS_EVERY_MS, like the webhook backlog. */
static void relay_nats_status(struct relay_nats *rn)
{
	long long now = relay_now_ms(), unpublished = 0;
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
	if (rn->pub != NULL && !natspub_connected(rn->pub))
		relay_nats_drop_pub(rn);
	if (rn->pub == NULL) {
		rc = natspub_create(cfg->nats_url, cfg->nats_stream, cfg->nats_subject_prefix,
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
	struct natspub_msg *msgs = NULL;
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
		msgs[i] = (struct natspub_msg){ jobs[i].event_id, jobs[i].type, jobs[i].body,
						jobs[i].body_len, false, false };
	prc = natspub_publish(rn->pub, msgs, n);
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
			 natspub_error(rn->pub));
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
	char err[NATSPUB_ERROR_MAX + 64];
	long long delay;
	int done;

	while (!atomic_load(&rn->stop)) {
		err[0] = '\0';
		done = relay_nats_round(rn, err, sizeof(err));
		if (done < 0) {
			rn->failures++;
			delay = natspub_retry_delay_ms(rn->failures, randombytes_random());
			log_write(done == PAY_ECONFIG ? LOG_ERROR : LOG_WARN,
				  "NATS publishing failed; webhooks are not affected, events wait in the outbox",
				  json_pack("{s:s, s:i, s:I}", "error", err, "failures", rn->failures,
					    "retry_in_ms", (json_int_t)delay));
			relay_nats_sleep(rn, delay);
			continue;
		}
		if (rn->failures > 0) {
			log_write(LOG_INFO, "NATS publishing resumed",
				  json_pack("{s:i}", "after_failures", rn->failures));
			rn->failures = 0;
		}
		relay_nats_status(rn);
		if (done == 0)
			relay_nats_sleep(rn, rn->cfg->relay_poll_ms);
	}
	relay_nats_drop_pub(rn);
	relay_nats_drop_conn(rn);
	return NULL;
}

/* Starts the NATS thread. Returns PAY_OK or PAY_EINTERNAL. */
static int relay_nats_start(struct relay_nats *rn, const struct cfg *cfg)
{
	sigset_t block, old;
	int rc;

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
		return PAY_EINTERNAL;
	}
	rn->running = true;
	return PAY_OK;
}

/* Stops the NATS thread after its current round, and releases libnats. */
static void relay_nats_stop(struct relay_nats *rn)
{
	if (!rn->running)
		return;
	atomic_store(&rn->stop, 1);
	pthread_join(rn->thread, NULL);
	rn->running = false;
	natspub_shutdown();
}

int relay_run(const struct cfg *cfg, volatile sig_atomic_t *stop)
{
	struct relay r;
	int done, code = 1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.stop = stop;
	atomic_init(&r.nats.stop, 0);
	r.nats_on = relay_nats_enabled(cfg);
	if (backoff_parse(&r.backoff, cfg->webhook_schedule, cfg->webhook_max_attempts,
			  cfg->webhook_retry_after_max_ms) != PAY_OK) {
		log_printf(LOG_ERROR, "invalid PAYMENTS_WEBHOOK_SCHEDULE '%s'", cfg->webhook_schedule);
		goto out;
	}
	if (cfg->relay_lease_ms <= cfg->webhook_timeout_ms + cfg->webhook_connect_timeout_ms) {
		log_printf(LOG_ERROR, "PAYMENTS_RELAY_LEASE must exceed the webhook timeouts");
		goto out;
	}
	if (r.nats_on && relay_nats_check(cfg) != PAY_OK)
		goto out;
	r.sender = sender_create(cfg->webhook_connect_timeout_ms, cfg->webhook_timeout_ms,
				 cfg->webhook_allow_private != 0);
	if (r.sender == NULL)
		goto out;
	if (r.nats_on && relay_nats_start(&r.nats, cfg) != PAY_OK)
		goto out;
	log_write(LOG_INFO, "relay started",
		  json_pack("{s:i, s:I, s:s, s:s?}", "batch", cfg->relay_batch,
			    "poll_ms", (json_int_t)cfg->relay_poll_ms, "schedule", cfg->webhook_schedule,
			    "nats_stream", r.nats_on ? cfg->nats_stream : NULL));
	while (!*stop) {
		if (relay_connect(&r) != PAY_OK)
			break;
		done = relay_round(&r);
		if (done == PAY_EUNAVAILABLE || done < 0) {
			/* Errors other than a lost connection also reset it: a clean slate is cheap. */
			relay_drop_conn(&r);
			relay_sleep(&r, cfg->relay_poll_ms * 4);
		} else if (done == 0) {
			relay_sleep(&r, cfg->relay_poll_ms);
		}
	}
	log_printf(LOG_INFO, "relay stopped");
	code = 0;
out:
	relay_nats_stop(&r.nats);
	relay_drop_conn(&r);
	sender_destroy(r.sender);
	return code;
}
