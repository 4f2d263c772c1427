/* relay.c - the outbox relay: publishes committed events as signed webhooks. */
#include "relay.h"

#include <errno.h>
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
#include "sender.h"
#include "whsign.h"

#define RELAY_PURGE_EVERY_MS (60 * 1000)
#define RELAY_STATUS_EVERY_MS (10 * 1000)
#define RELAY_PURGE_BATCH 1000

struct relay {
	const struct cfg *cfg;
	volatile sig_atomic_t *stop;
	struct backoff backoff;
	struct sender *sender;
	struct db_conn *conn;
	long long next_purge_ms;
	long long next_status_ms;
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
			if (db_event_purge(r->conn, r->cfg->event_retention_ms, RELAY_PURGE_BATCH, &n) != PAY_OK)
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

int relay_run(const struct cfg *cfg, volatile sig_atomic_t *stop)
{
	struct relay r;
	int done, code = 1;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.stop = stop;
	if (backoff_parse(&r.backoff, cfg->webhook_schedule, cfg->webhook_max_attempts,
			  cfg->webhook_retry_after_max_ms) != PAY_OK) {
		log_printf(LOG_ERROR, "invalid PAYMENTS_WEBHOOK_SCHEDULE '%s'", cfg->webhook_schedule);
		goto out;
	}
	if (cfg->relay_lease_ms <= cfg->webhook_timeout_ms + cfg->webhook_connect_timeout_ms) {
		log_printf(LOG_ERROR, "PAYMENTS_RELAY_LEASE must exceed the webhook timeouts");
		goto out;
	}
	r.sender = sender_create(cfg->webhook_connect_timeout_ms, cfg->webhook_timeout_ms,
				 cfg->webhook_allow_private != 0);
	if (r.sender == NULL)
		goto out;
	log_write(LOG_INFO, "relay started",
		  json_pack("{s:i, s:I, s:s}", "batch", cfg->relay_batch,
			    "poll_ms", (json_int_t)cfg->relay_poll_ms, "schedule", cfg->webhook_schedule));
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
	relay_drop_conn(&r);
	sender_destroy(r.sender);
	return code;
}
