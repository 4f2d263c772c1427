/* db_processor.h - processor mode's queries: the pending create, claiming, recording outcomes, status. */
#ifndef PAYMENTS_DB_PROCESSOR_H
#define PAYMENTS_DB_PROCESSOR_H

#include <stdbool.h>

#include "db.h"
#include "db_charge.h"
#include "db_idem.h"

/*
 * Runs create_charge_pending() in one round trip: in's failure_code,
 * decline_code, error_body and capture are not used (the processor decides).
 * Returns as db_charge_create.
 */
int db_processor_create(struct db_conn *c, const struct db_charge_new *in,
			struct db_idem_result *out) __attribute__((warn_unused_result));

/* One claimed charge: every string owned (db_processor_jobs_free). */
struct db_processor_job {
	char *charge_id;
	char *user_id;
	long long amount;
	char *currency;
	char *source;
	char *description;     /* NULL when none */
	char *metadata;        /* JSON object text */
	int attempts;          /* this attempt's number, 1 for the first */
	long long age_ms;      /* since the charge was created */
	bool flagged;          /* already flagged for review */
};

/*
 * Leases up to batch due charges for lease_ms. On PAY_OK *jobs (NULL when
 * none) holds *n jobs the caller frees with db_processor_jobs_free.
 */
int db_processor_claim(struct db_conn *c, int batch, long long lease_ms,
		       struct db_processor_job **jobs, int *n) __attribute__((warn_unused_result));
void db_processor_jobs_free(struct db_processor_job *jobs, int n);

/*
 * Records a definitive outcome (processor_resolve()): status "succeeded" or
 * "failed" (with failure_code and decline_code, either may be NULL), the
 * processor's reference (may be NULL) and the event with event_id, in one
 * transaction. *now_status (caller's buffer of 16) gets the charge's status
 * afterwards ("" if there is no such charge). Returns PAY_OK or a db error.
 */
int db_processor_resolve(struct db_conn *c, const char *charge_id, const char *status,
			 const char *failure_code, const char *decline_code, const char *ref,
			 const char *event_id, char now_status[16]) __attribute__((warn_unused_result));

/*
 * The outcome stayed unknown: retry after delay_ms; flags the charge for
 * review (with a charge.review_required event event_id) when it is older
 * than max_wait_ms and not flagged yet, and then sets *flagged.
 */
int db_processor_defer(struct db_conn *c, const char *charge_id, long long delay_ms,
		       const char *error, long long max_wait_ms, const char *event_id,
		       bool *flagged) __attribute__((warn_unused_result));

/* Pending charges: how many, the oldest one's age, how many are flagged for review. */
struct db_processor_status {
	long long pending;
	double oldest_pending_s;
	long long flagged;
};

int db_processor_status(struct db_conn *c, struct db_processor_status *st)
	__attribute__((warn_unused_result));

/* One of our processor-mode charges, as reconcile compares it. */
struct db_processor_ours {
	char id[64];
	char status[16];
	long long amount;
	char ref[128];
};

/*
 * Our processor-mode charges created at or after since (Unix seconds), and
 * those whose ids ids_json (a JSON array of strings) names. On PAY_OK *rows
 * (NULL when none; free()) holds *n rows.
 */
int db_processor_ours(struct db_conn *c, long long since, const char *ids_json,
		      struct db_processor_ours **rows, int *n) __attribute__((warn_unused_result));

#endif
