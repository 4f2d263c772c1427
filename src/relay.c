/* relay.c - the outbox relay: publishes committed events as signed webhooks (and to NATS, beside). */
#include "relay.h"

#include <pthread.h>
#include <stdio.h>
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
#include "metrics.h"
#include "relay_metrics.h"
#include "relay_nats.h"
#include "sender.h"
#include "timing.h"
#include "whsign.h"

#define RELAY_PURGE_EVERY_MS (60 * 1000)
#define RELAY_STATUS_LOG_EVERY_MS (10 * 1000)
#define RELAY_GAUGES_EVERY_MS 1000
#define RELAY_PURGE_BATCH 1000
#define RELAY_POLL_SLICE_MS 20

/*
 * One webhook pipeline (a worker). Deliveries are a pipeline, not rounds:
 * a worker keeps up to PAYMENTS_RELAY_BATCH attempts in flight, records
 * each as soon as it finishes and claims more while others are still
 * waiting, so one slow or hanging receiver holds back only its own
 * deliveries. The relay runs PAYMENTS_RELAY_WORKERS of them in threads,
 * each with its own database connection and connection pool to receivers:
 * they share the work exactly as separate relay processes do (leases and
 * SKIP LOCKED), so while one waits for the database another sends. Worker 0
 * also purges old events and reads the backlog for the log and metrics.
 *
 * Fairness: a worker counts its attempts in flight per endpoint (load) and
 * claims nothing more for an endpoint that has PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT
 * of them, so a receiver that hangs holds at most that many of the
 * pipeline's PAYMENTS_RELAY_BATCH slots, and relay_claim goes round the
 * endpoints rather than down one tenant's backlog.
 */
struct relay_worker {
	const struct cfg *cfg;
	atomic_int *stop;
	int index;
	pthread_t thread;
	bool running;
	struct backoff backoff;
	struct sender *sender;
	struct db_conn *conn;
	struct sender_done *done;       /* room for relay_batch finished transfers */
	struct db_endpoint_load *load;  /* endpoints with attempts in flight (room for relay_batch) */
	int nload;
	long long next_claim_ms;
	long long next_purge_ms;
	long long next_status_log_ms;
	long long next_gauges_ms;
	bool nats_on;
};

static double relay_wall_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* Drops a broken connection; the next turn reconnects. */
static void relay_drop_conn(struct relay_worker *r)
{
	db_conn_close(r->conn);
	r->conn = NULL;
}

/*
 * Makes sure r->conn is open, retrying with backoff capped at 1 s (during a
 * failover, the multi-host URL finds the new primary within a second of its
 * promotion). Returns PAY_OK or PAY_EUNAVAILABLE when stopping.
 */
static int relay_connect(struct relay_worker *r)
{
	long long delay = 100;

	while (r->conn == NULL && !atomic_load(r->stop)) {
		if (db_conn_open(r->cfg->database_url, r->cfg->db_connect_timeout_ms, &r->conn) == PAY_OK) {
			log_write(LOG_INFO, "relay connected to the database",
				  json_pack("{s:i}", "worker", r->index));
			break;
		}
		timing_sleep(delay, r->stop);
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
	return r->conn != NULL ? PAY_OK : PAY_EUNAVAILABLE;
}

/*
 * Adds delta to the attempts in flight of endpoint_id; an endpoint whose
 * count drops to zero leaves the table. There are never more endpoints in
 * it than attempts in flight, so relay_batch entries are enough.
 */
static void relay_load_add(struct relay_worker *r, const char *endpoint_id, int delta)
{
	int i;

	for (i = 0; i < r->nload && strcmp(r->load[i].endpoint_id, endpoint_id) != 0; i++)
		;
	if (i == r->nload) {
		if (delta <= 0 || r->nload == r->cfg->relay_batch)
			return;
		snprintf(r->load[i].endpoint_id, sizeof(r->load[i].endpoint_id), "%s", endpoint_id);
		r->load[i].in_flight = 0;
		r->nload++;
	}
	r->load[i].in_flight += delta;
	if (r->load[i].in_flight <= 0)
		r->load[i] = r->load[--r->nload];
}

/*
 * Whether finished attempts make a claim worth its round trips now: when the
 * worker has nothing in flight, or some endpoint has at most half its share
 * in flight. An endpoint that one finished attempt brings under its share
 * would otherwise be claimed for one delivery at a time: a fan-out, a claim
 * and a record, each a transaction, per handful of deliveries (make bench's
 * relay drain, one endpoint: 31 deliveries per claim). Endpoints with
 * nothing in flight are found by the next claim either way, at most
 * PAYMENTS_RELAY_POLL later.
 */
static bool relay_worth_claiming(const struct relay_worker *r)
{
	int half = r->cfg->relay_endpoint_in_flight / 2;
	int i;

	if (r->nload == 0)
		return true;
	for (i = 0; i < r->nload; i++)
		if (r->load[i].in_flight <= half)
			return true;
	return false;
}

static void relay_log_attempt(const struct relay_worker *r, const struct db_delivery_job *j,
			      const struct sender_result *res, const struct db_delivery_outcome *o)
{
	log_write(o->ok ? LOG_INFO : LOG_WARN, "webhook delivery attempt",
		  json_pack("{s:i, s:s, s:s, s:s, s:i, s:i, s:b, s:i, s:s?, s:s?, s:o?, s:b}",
			    "worker", r->index, "event", j->event_id, "endpoint", j->endpoint_id,
			    "delivery", j->delivery_id, "attempt", j->attempts + 1,
			    "status", res->status_code, "ok", o->ok, "duration_ms", res->elapsed_ms,
			    "error", o->error, "detail", res->detail[0] ? res->detail : NULL,
			    "next_attempt_in_ms", (o->ok || o->dead) ? NULL : json_integer(o->delay_ms),
			    "dead", o->dead));
}

/* What an attempt that was never sent records: a delivery whose signature cannot be made. */
#define RELAY_UNSIGNED_ERROR "not sent: the endpoint's signing secret is unusable"

/* Records n finished attempts (done[i].tag is each job) in one round trip, then frees their jobs. */
static int relay_record_done(struct relay_worker *r, struct sender_done *done, int n)
{
	struct db_delivery_outcome *out = calloc((size_t)(n > 0 ? n : 1), sizeof(*out));
	double now = relay_wall_s();
	int i, rc = PAY_ENOMEM;

	if (out == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		struct db_delivery_job *j = done[i].tag;
		const struct sender_result *res = &done[i].result;
		int attempts = j->attempts + 1;

		out[i].delivery_id = j->delivery_id;
		out[i].lease = j->lease;
		out[i].ok = res->ok;
		out[i].status_code = res->status_code;
		out[i].error = res->ok ? NULL : res->error;
		out[i].duration_ms = res->duration_ms;
		out[i].dead = !res->ok && backoff_exhausted(&r->backoff, attempts);
		out[i].delay_ms = res->ok ? 0 :
			backoff_next_delay(&r->backoff, attempts, res->retry_after_ms, randombytes_random());
		relay_log_attempt(r, j, res, &out[i]);
		relay_load_add(r, j->endpoint_id, -1);
		metrics_delivery(out[i].ok, out[i].dead);
		if (out[i].ok)
			metrics_delivery_lag(now - j->created);
	}
	/* A failure here leaves the leases to expire: those deliveries go out again. */
	rc = r->conn != NULL ? db_relay_record(r->conn, out, n) : PAY_EUNAVAILABLE;
out:
	for (i = 0; i < n; i++) {
		db_relay_job_fini(done[i].tag);
		free(done[i].tag);
	}
	free(out);
	return rc;
}

/*
 * Signs each claimed job (webhook-timestamp is this attempt's) and starts
 * sending it. Each job moves to the heap, owned by its transfer until
 * relay_record_done frees it. A job that cannot be signed is never sent
 * (an unsigned webhook would teach receivers to accept unsigned ones): it
 * is recorded at once as a failed attempt, retried on the schedule like
 * any other, so an operator who repairs the secret sees it go out.
 * Returns PAY_OK or PAY_ENOMEM.
 */
static int relay_start_jobs(struct relay_worker *r, struct db_delivery_job *jobs, int n)
{
	char sig[WHSIGN_SIGNATURE_MAX], stripe_sig[WHSIGN_STRIPE_SIGNATURE_MAX];
	struct db_delivery_job *job;
	struct sender_done *unsent = calloc((size_t)n, sizeof(*unsent));
	struct sender_msg msg;
	long long now = (long long)time(NULL);
	int i, nunsent = 0, rc = PAY_OK;

	for (i = 0; i < n; i++) {
		job = unsent != NULL ? malloc(sizeof(*job)) : NULL;
		if (job == NULL) {
			db_relay_job_fini(&jobs[i]);   /* its lease expires and it is claimed again */
			rc = PAY_ENOMEM;
			continue;
		}
		*job = jobs[i];   /* ownership of the strings passes to the heap copy */
		/*
		 * Signed twice, Standard Webhooks headers and Stripe-Signature as
		 * Stripe's SDKs verify it; a job that cannot be signed is never sent.
		 */
		if (whsign_sign(job->secret, job->event_id, now, job->body, job->body_len, sig) != PAY_OK ||
		    whsign_stripe_sign(job->secret, now, job->body, job->body_len, stripe_sig) != PAY_OK) {
			unsent[nunsent].tag = job;   /* owned by unsent until recorded */
			relay_load_add(r, job->endpoint_id, 1);
			unsent[nunsent].result = (struct sender_result){ .retry_after_ms = -1 };
			snprintf(unsent[nunsent].result.error, sizeof(unsent[nunsent].result.error), "%s",
				 RELAY_UNSIGNED_ERROR);
			nunsent++;
			continue;
		}
		msg = (struct sender_msg){ job->url, job->body, job->body_len, job->event_id, now, sig,
					   stripe_sig };
		if (sender_start(r->sender, &msg, job) != PAY_OK) {
			db_relay_job_fini(job);
			free(job);
			rc = PAY_ENOMEM;
			continue;
		}
		relay_load_add(r, job->endpoint_id, 1);
	}
	free(jobs);   /* the array shell only: every job moved out */
	if (nunsent > 0) {
		int urc = relay_record_done(r, unsent, nunsent);

		rc = rc == PAY_OK ? urc : rc;
	}
	free(unsent);
	return rc;
}

/* Reads the backlog for the log (every 10 s) and the metrics gauges (every second). */
static void relay_status(struct relay_worker *r, long long now)
{
	struct metrics_relay_gauges g;
	struct db_relay_status st;

	if (now < r->next_gauges_ms || db_relay_status(r->conn, &st) != PAY_OK)
		return;
	r->next_gauges_ms = now + RELAY_GAUGES_EVERY_MS;
	g = (struct metrics_relay_gauges){ st.unpublished, st.oldest_unpublished_s,
					   st.pending_deliveries, st.dead_deliveries };
	relay_metrics_set_gauges(&g);
	if (now < r->next_status_log_ms)
		return;
	r->next_status_log_ms = now + RELAY_STATUS_LOG_EVERY_MS;
	log_write(LOG_INFO, "relay backlog",
		  json_pack("{s:I, s:f, s:I, s:f, s:I, s:i}",
			    "unpublished_events", (json_int_t)st.unpublished,
			    "oldest_unpublished_s", st.oldest_unpublished_s,
			    "pending_deliveries", (json_int_t)st.pending_deliveries,
			    "oldest_due_s", st.oldest_due_s,
			    "dead_deliveries", (json_int_t)st.dead_deliveries,
			    "in_flight", sender_in_flight(r->sender)));
}

static void relay_purge(struct relay_worker *r, long long now)
{
	long long n = 0;

	if (now < r->next_purge_ms)
		return;
	r->next_purge_ms = now + RELAY_PURGE_EVERY_MS;
	do {
		/* With NATS, an event is kept until the stream holds it too. */
		if ((r->nats_on ? db_event_purge_nats : db_event_purge)(r->conn, r->cfg->event_retention_ms,
									 RELAY_PURGE_BATCH, &n) != PAY_OK)
			break;
		if (n > 0)
			log_write(LOG_INFO, "purged old events", json_pack("{s:I}", "deleted", (json_int_t)n));
	} while (n == RELAY_PURGE_BATCH && !atomic_load(r->stop));
}

/*
 * One turn of the pipeline: when there is room and it is time, fan out new
 * events and claim due deliveries; then drive the transfers a little and
 * record what finished. Returns the work done (0: idle) or a negative error.
 */
static int relay_turn(struct relay_worker *r)
{
	const struct cfg *cfg = r->cfg;
	struct db_delivery_job *jobs = NULL;
	long long now = timing_now_ms(), wait;
	int room = cfg->relay_batch - sender_in_flight(r->sender);
	int fanned = 0, claimed = 0, finished, rc = PAY_OK;

	if (room > 0 && now >= r->next_claim_ms) {
		rc = db_relay_fanout(r->conn, cfg->relay_batch, &fanned);
		if (rc == PAY_OK)
			rc = db_relay_claim(r->conn, room, cfg->relay_endpoint_in_flight, r->load, r->nload,
					    cfg->relay_lease_ms, &jobs, &claimed);
		if (rc == PAY_OK && claimed > 0)
			rc = relay_start_jobs(r, jobs, claimed);
		else
			db_relay_jobs_free(jobs, claimed);
		/* A full claim or new events mean more work is likely waiting: look again at once. */
		r->next_claim_ms = (claimed == room || fanned > 0) ? now : now + cfg->relay_poll_ms;
	}
	wait = r->next_claim_ms - timing_now_ms();
	wait = wait < 0 ? 0 : wait > RELAY_POLL_SLICE_MS ? RELAY_POLL_SLICE_MS : wait;
	finished = sender_poll(r->sender, wait, r->done, cfg->relay_batch);
	if (finished > 0) {
		int rrc = relay_record_done(r, r->done, finished);

		rc = rc == PAY_OK ? rrc : rc;
		/*
		 * Finished attempts give their endpoints room under
		 * PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT: look again at once, or one busy
		 * endpoint's deliveries would go out a share per poll interval; but
		 * only once some endpoint has half its share free (see
		 * relay_worth_claiming).
		 */
		if (relay_worth_claiming(r))
			r->next_claim_ms = timing_now_ms();
	}
	if (rc == PAY_OK && r->index == 0) {
		relay_purge(r, now);
		relay_status(r, now);
	}
	return rc == PAY_OK ? fanned + claimed + finished : rc;
}

/*
 * On SIGTERM: claim nothing more, let the attempts in flight finish for up
 * to PAYMENTS_SHUTDOWN_TIMEOUT and record them, then give back the leases
 * of any still running, so another relay takes them over at once.
 */
static void relay_drain(struct relay_worker *r)
{
	long long deadline = timing_now_ms() + r->cfg->shutdown_timeout_ms;
	struct db_delivery_job **left = NULL;
	int n, i;

	while (sender_in_flight(r->sender) > 0 && timing_now_ms() < deadline) {
		n = sender_poll(r->sender, RELAY_POLL_SLICE_MS, r->done, r->cfg->relay_batch);
		if (n > 0 && relay_record_done(r, r->done, n) != PAY_OK)
			relay_drop_conn(r);
		if (r->conn == NULL)
			relay_connect(r);
	}
	n = sender_in_flight(r->sender);
	if (n == 0)
		return;
	left = calloc((size_t)n, sizeof(*left));
	if (left != NULL) {
		n = sender_cancel_all(r->sender, (void **)left, n);
		if (r->conn == NULL || db_relay_release(r->conn, (const struct db_delivery_job *const *)left,
							n) != PAY_OK)
			log_printf(LOG_WARN, "could not release %d leases; they expire by themselves", n);
		for (i = 0; i < n; i++) {
			relay_load_add(r, left[i]->endpoint_id, -1);
			db_relay_job_fini(left[i]);
			free(left[i]);
		}
		log_write(LOG_INFO, "released unfinished deliveries", json_pack("{s:i}", "count", n));
	}
	free(left);
}

/* A worker's thread: the pipeline until stop, then its drain. */
static void *relay_worker(void *arg)
{
	struct relay_worker *r = arg;
	int done;

	while (!atomic_load(r->stop)) {
		if (relay_connect(r) != PAY_OK)
			break;
		done = relay_turn(r);
		if (done < 0) {
			/* Any database error resets the connection: a clean slate is cheap. */
			relay_drop_conn(r);
			timing_sleep(r->cfg->relay_poll_ms * 4, r->stop);
		} else if (done == 0 && sender_in_flight(r->sender) == 0) {
			timing_sleep(r->next_claim_ms - timing_now_ms(), r->stop);
		}
	}
	relay_drain(r);
	return NULL;
}

/* Frees one worker's resources (its thread has ended or never started). */
static void relay_fini(struct relay_worker *r)
{
	relay_drop_conn(r);
	sender_destroy(r->sender);
	free(r->done);
	free(r->load);
}

/* Sets up worker i with the parsed schedule. Returns PAY_OK or PAY_ENOMEM. */
static int relay_init(struct relay_worker *r, const struct cfg *cfg, atomic_int *stop, int i,
		      const struct backoff *backoff, bool nats_on)
{
	r->cfg = cfg;
	r->stop = stop;
	r->index = i;
	r->backoff = *backoff;
	r->nats_on = nats_on;
	r->done = calloc((size_t)cfg->relay_batch, sizeof(*r->done));
	r->load = calloc((size_t)cfg->relay_batch, sizeof(*r->load));
	r->sender = sender_create(cfg->webhook_connect_timeout_ms, cfg->webhook_timeout_ms,
				  cfg->relay_batch, cfg->webhook_allow_private != 0, cfg->webhook_proxy);
	return r->done != NULL && r->load != NULL && r->sender != NULL ? PAY_OK : PAY_ENOMEM;
}

int relay_run(const struct cfg *cfg, atomic_int *stop)
{
	struct relay_metrics *metrics = NULL;
	struct relay_nats *nats = NULL;
	struct relay_worker *w = NULL;
	struct backoff backoff;
	bool nats_on = relay_nats_enabled(cfg);
	int i, n = cfg->relay_workers, code = 1;

	if (backoff_parse(&backoff, cfg->webhook_schedule, cfg->webhook_max_attempts,
			  cfg->webhook_retry_after_max_ms) != PAY_OK) {
		log_printf(LOG_ERROR, "invalid PAYMENTS_WEBHOOK_SCHEDULE '%s'", cfg->webhook_schedule);
		goto out;
	}
	if (cfg->relay_lease_ms <= cfg->webhook_timeout_ms + cfg->webhook_connect_timeout_ms) {
		log_printf(LOG_ERROR, "PAYMENTS_RELAY_LEASE must exceed the webhook timeouts");
		goto out;
	}
	w = calloc((size_t)n, sizeof(*w));
	if (w == NULL)
		goto out;
	/* In this thread: curl_global_init (in sender_create) is not thread-safe everywhere. */
	for (i = 0; i < n; i++) {
		if (relay_init(&w[i], cfg, stop, i, &backoff, nats_on) != PAY_OK)
			goto out;
	}
	if (nats_on && relay_nats_check(cfg) != PAY_OK)
		goto out;
	if (cfg->relay_metrics_listen != NULL && cfg->relay_metrics_listen[0] != '\0' &&
	    (metrics = relay_metrics_start(cfg->relay_metrics_listen)) == NULL)
		goto out;
	if (nats_on && (nats = relay_nats_start(cfg)) == NULL)
		goto out;
	log_write(LOG_INFO, "relay started",
		  json_pack("{s:i, s:i, s:I, s:s, s:s?, s:s?}", "workers", n, "batch", cfg->relay_batch,
			    "poll_ms", (json_int_t)cfg->relay_poll_ms, "schedule", cfg->webhook_schedule,
			    "nats_stream", nats_on ? cfg->nats_stream : NULL,
			    "metrics", cfg->relay_metrics_listen));
	for (i = 1; i < n; i++) {
		if (pthread_create(&w[i].thread, NULL, relay_worker, &w[i]) != 0) {
			log_printf(LOG_ERROR, "cannot start relay worker %d; running with %d", i, i);
			break;
		}
		w[i].running = true;
	}
	relay_worker(&w[0]);
	for (i = 1; i < n; i++) {
		if (w[i].running)
			pthread_join(w[i].thread, NULL);
	}
	log_printf(LOG_INFO, "relay stopped");
	code = 0;
out:
	relay_nats_stop(nats);
	relay_metrics_stop(metrics);
	for (i = 0; w != NULL && i < n; i++)
		relay_fini(&w[i]);
	free(w);
	return code;
}
