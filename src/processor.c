/*
 * processor.c - the processor worker: claims pending charges (leases, SKIP
 * LOCKED), calls the connector with our charge id as the idempotency key,
 * and records definitive outcomes with their event in one transaction;
 * unknown ones are looked up by our reference, then retried with the same
 * key, and flagged for review past PAYMENTS_PROCESSOR_MAX_WAIT, never guessed.
 */
#include "processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "backoff.h"
#include "db.h"
#include "db_processor.h"
#include "err.h"
#include "ids.h"
#include "log.h"
#include "processor_metrics.h"

/* Tests only (PAYMENTS_PROCESSOR_TEST_CRASH): where the worker may _exit, and how often. */
enum processor_phase { PHASE_NONE, PHASE_BEFORE_CALL, PHASE_DURING_CALL, PHASE_BEFORE_COMMIT };

static enum processor_phase processor_crash_phase;
static unsigned processor_crash_percent;

static void processor_crash_parse(const char *spec)
{
	static const char *const names[] = { "", "before_call", "during_call", "before_commit" };
	const char *colon = strchr(spec, ':');
	size_t i;

	processor_crash_phase = PHASE_NONE;
	if (colon == NULL)
		return;
	for (i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == (size_t)(colon - spec) &&
		    strncmp(names[i], spec, (size_t)(colon - spec)) == 0)
			processor_crash_phase = (enum processor_phase)i;
	}
	processor_crash_percent = (unsigned)atoi(colon + 1);
}

static void processor_maybe_crash(enum processor_phase at)
{
	if (processor_crash_phase == at && randombytes_uniform(100) < processor_crash_percent)
		_exit(99);   /* as kill -9 would: no cleanup, no commit */
}

static void processor_crash_during(void)
{
	processor_maybe_crash(PHASE_DURING_CALL);
}

static long long processor_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms, waking early when *stop is set. */
static void processor_sleep(long long ms, atomic_int *stop)
{
	struct timespec ts;

	while (ms > 0 && !atomic_load(stop)) {
		long long step = ms < 50 ? ms : 50;

		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* A lookup reads at most this many pages (of 100) of the processor's list. */
#define PROCESSOR_LOOKUP_PAGES 10
/* ... of the charges created since ours was, less this much clock skew (seconds). */
#define PROCESSOR_LOOKUP_SKEW_S 60

/*
 * Looks our charge up at the processor by our reference (its
 * metadata[payments_charge]) among the charges it created since ours was.
 * PROCESSOR_LOOKUP_FOUND fills *res with the charge's definitive outcome
 * and reference; NOT_FOUND means the whole period was read and no charge
 * names ours; FAILED means the list could not be read whole (no answer, too
 * many pages, no list in this connector, the lease running short: a page
 * is read only while the lease outlasts it and the call after it) or holds
 * ours still pending.
 */
static enum processor_lookup_result processor_lookup(const struct cfg *cfg, void *ctx,
						     const struct db_processor_job *job,
						     long long deadline_ms, struct processor_result *res)
{
	struct processor_page page = { 0 };
	char after[128] = "";
	long long since = (long long)time(NULL) - job->age_ms / 1000 - PROCESSOR_LOOKUP_SKEW_S;
	enum processor_lookup_result found = PROCESSOR_LOOKUP_FAILED;
	bool pending_there = false;
	int pages, i;

	memset(res, 0, sizeof(*res));
	res->outcome = PROCESSOR_UNKNOWN;
	snprintf(res->detail, sizeof(res->detail), "lookup: the list could not be read whole");
	for (pages = 0; processor_stripe.list != NULL && pages < PROCESSOR_LOOKUP_PAGES &&
		    processor_now_ms() + 2 * cfg->processor_timeout_ms < deadline_ms; pages++) {
		if (processor_stripe.list(ctx, since, after[0] != '\0' ? after : NULL, &page) != PAY_OK)
			break;
		for (i = 0; i < page.n && res->outcome == PROCESSOR_UNKNOWN; i++) {
			const struct processor_listed *l = &page.items[i];

			if (strcmp(l->our_id, job->charge_id) != 0)
				continue;
			if (strcmp(l->status, "succeeded") == 0 || strcmp(l->status, "failed") == 0) {
				res->outcome = l->status[0] == 's' ? PROCESSOR_SUCCEEDED : PROCESSOR_FAILED;
				snprintf(res->ref, sizeof(res->ref), "%s", l->ref);
				snprintf(res->failure_code, sizeof(res->failure_code), "%s",
					 l->failure_code[0] ? l->failure_code : "processing_error");
				snprintf(res->decline_code, sizeof(res->decline_code), "%s",
					 l->decline_code);
			} else {
				pending_there = true;
			}
		}
		if (res->outcome != PROCESSOR_UNKNOWN) {
			found = PROCESSOR_LOOKUP_FOUND;
			snprintf(res->detail, sizeof(res->detail), "lookup: found %s",
				 res->outcome == PROCESSOR_SUCCEEDED ? "succeeded" : "failed");
			break;
		}
		if (!page.has_more || page.n == 0) {
			if (!pending_there) {
				found = PROCESSOR_LOOKUP_NOT_FOUND;
				snprintf(res->detail, sizeof(res->detail), "lookup: not found");
			} else {
				snprintf(res->detail, sizeof(res->detail), "lookup: pending there");
			}
			break;
		}
		snprintf(after, sizeof(after), "%s", page.items[page.n - 1].ref);
		free(page.items);
		page.items = NULL;
		page.n = 0;
	}
	free(page.items);
	return found;
}

/*
 * One attempt for one claimed charge. Returns PAY_OK, or a db error (then
 * the caller reconnects; the charge's lease expires and it is tried again,
 * with the same key).
 */
static int processor_attempt(const struct cfg *cfg, const struct backoff *b, void *ctx,
			     struct db_conn *conn, const struct db_processor_job *job,
			     long long deadline_ms)
{
	struct processor_charge in = { job->charge_id, job->amount, job->currency, job->source,
				       job->description, job->metadata, NULL };
	struct processor_result res;
	char event_id[IDS_MAX], now_status[16];
	enum processor_lookup_result found = PROCESSOR_LOOKUP_NOT_FOUND;
	bool flagged = false;
	long long delay;
	int rc;

	/*
	 * A charge claimed before may have reached the processor: it is looked
	 * up by our reference first, and an outcome found there is recorded
	 * without calling again. Otherwise it is sent again with the same key
	 * (the processor answers a key it knows from what it stored)...
	 */
	if (job->attempts > 1) {
		found = processor_lookup(cfg, ctx, job, deadline_ms, &res);
		processor_metrics_lookup(found);
	}
	/*
	 * ... unless the processor may have forgotten the key: then sending it
	 * again could make a second charge, so it is left pending (and flagged,
	 * past the max wait) for 'processor reconcile --fix', which looks it up
	 * in the list.
	 */
	if (found != PROCESSOR_LOOKUP_FOUND && job->attempts > 1 &&
	    job->age_ms > cfg->processor_key_window_ms) {
		ids_generate(event_id, sizeof(event_id), "evt_");
		rc = db_processor_defer(conn, job->charge_id, b->delays_ms[b->steps - 1],
					"past the processor's idempotency window: left to reconcile",
					cfg->processor_max_wait_ms, event_id, &flagged);
		if (rc == PAY_OK && flagged)
			processor_metrics_flagged();
		return rc;
	}
	if (found != PROCESSOR_LOOKUP_FOUND) {
		in.on_sent = processor_crash_phase == PHASE_DURING_CALL ? processor_crash_during : NULL;
		processor_maybe_crash(PHASE_BEFORE_CALL);
		rc = processor_stripe.charge(ctx, &in, &res);
		if (rc != PAY_OK)
			return rc;
		processor_metrics_call(&res);
	}
	processor_maybe_crash(PHASE_BEFORE_COMMIT);
	ids_generate(event_id, sizeof(event_id), "evt_");
	if (res.outcome != PROCESSOR_UNKNOWN) {
		rc = db_processor_resolve(conn, job->charge_id,
					  res.outcome == PROCESSOR_SUCCEEDED ? "succeeded" : "failed",
					  res.outcome == PROCESSOR_FAILED ? res.failure_code : NULL,
					  res.decline_code[0] ? res.decline_code : NULL,
					  res.ref[0] ? res.ref : NULL, event_id, now_status);
		if (rc == PAY_OK)
			log_printf(LOG_INFO, "processor: %s %s (attempt %d, %s, ref %s)", job->charge_id,
				   now_status, job->attempts, res.detail, res.ref);
		return rc;
	}
	delay = backoff_next_delay(b, job->attempts - 1, -1, randombytes_random());
	rc = db_processor_defer(conn, job->charge_id, delay, res.detail, cfg->processor_max_wait_ms,
				event_id, &flagged);
	if (rc == PAY_OK) {
		log_printf(flagged ? LOG_WARN : LOG_INFO,
			   "processor: %s outcome unknown (attempt %d: %s), retry in %lld ms%s",
			   job->charge_id, job->attempts, res.detail, delay,
			   flagged ? "; flagged for review" : "");
		if (flagged)
			processor_metrics_flagged();
	}
	return rc;
}

int processor_run(const struct cfg *cfg, atomic_int *stop)
{
	struct db_processor_job *jobs = NULL;
	struct db_processor_status st;
	struct db_conn *conn = NULL;
	struct backoff b;
	void *ctx = NULL;
	char event_id[IDS_MAX];
	bool flagged;
	long long claimed_at, status_at = 0;
	int i, n = 0, code = 1, rc;

	if (cfg->processor_url[0] == '\0') {
		fprintf(stderr, "payments processor: PAYMENTS_PROCESSOR_URL is not set\n");
		return 2;
	}
	if (backoff_parse(&b, cfg->processor_schedule, 0, 0) != PAY_OK) {
		fprintf(stderr, "payments processor: invalid PAYMENTS_PROCESSOR_SCHEDULE\n");
		return 2;
	}
	processor_crash_parse(cfg->processor_test_crash);
	ctx = processor_stripe.create(cfg);
	if (ctx == NULL)
		goto out;
	if (processor_metrics_start(cfg->processor_metrics_listen) != PAY_OK)
		goto out;
	if (cfg->processor_lease_ms <= cfg->processor_timeout_ms)
		log_printf(LOG_WARN, "processor: PAYMENTS_PROCESSOR_LEASE (%lld ms) is not above"
			   " PAYMENTS_PROCESSOR_TIMEOUT (%lld ms): a slow call's charge may be called"
			   " again by another worker meanwhile (same key: safe, but wasted)",
			   cfg->processor_lease_ms, cfg->processor_timeout_ms);
	log_printf(LOG_INFO, "processor: calling %s (%s)", cfg->processor_url, processor_stripe.name);
	while (!atomic_load(stop)) {
		if (conn == NULL &&
		    db_conn_open(cfg->database_url, cfg->db_connect_timeout_ms, &conn) != PAY_OK) {
			conn = NULL;
			processor_sleep(1000, stop);
			continue;
		}
		/* The gauges, once a second at most. */
		if (processor_now_ms() - status_at >= 1000 && db_processor_status(conn, &st) == PAY_OK) {
			processor_metrics_set_status(&st);
			status_at = processor_now_ms();
		}
		claimed_at = processor_now_ms();
		rc = db_processor_claim(conn, cfg->processor_batch, cfg->processor_lease_ms, &jobs, &n);
		/* A call is started only while its lease outlasts the call's timeout. */
		for (i = 0; rc == PAY_OK && i < n && !atomic_load(stop) &&
			    processor_now_ms() - claimed_at + cfg->processor_timeout_ms <
			    cfg->processor_lease_ms; i++)
			rc = processor_attempt(cfg, &b, ctx, conn, &jobs[i],
					       claimed_at + cfg->processor_lease_ms);
		if (i == 0 && n > 0 && rc == PAY_OK && !atomic_load(stop))   /* lease <= timeout: still progress */
			rc = processor_attempt(cfg, &b, ctx, conn, &jobs[i++],
					       claimed_at + cfg->processor_lease_ms);
		/* Claimed but not tried (stopping, or leases running short): give them back at once. */
		for (; rc == PAY_OK && i < n; i++) {
			ids_generate(event_id, sizeof(event_id), "evt_");
			rc = db_processor_defer(conn, jobs[i].charge_id, 0, "given back unattempted",
						cfg->processor_max_wait_ms, event_id, &flagged);
		}
		db_processor_jobs_free(jobs, n);
		jobs = NULL;
		if (rc != PAY_OK) {
			log_printf(LOG_WARN, "processor: database error (%s); reconnecting",
				   db_conn_error(conn));
			db_conn_close(conn);
			conn = NULL;
			processor_sleep(cfg->processor_poll_ms, stop);
		} else if (n == 0) {
			processor_sleep(cfg->processor_poll_ms, stop);
		}
	}
	code = 0;
out:
	processor_metrics_stop();
	db_conn_close(conn);
	if (ctx != NULL)
		processor_stripe.destroy(ctx);
	return code;
}
