/* db_relay.h - the relay's queries: fan-out, claiming, recording attempts, replay, status. */
#ifndef PAYMENTS_DB_RELAY_H
#define PAYMENTS_DB_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "ids.h"

/* One leased delivery: where to send which event. Strings are owned (db_relay_jobs_free). */
struct db_delivery_job {
	char delivery_id[IDS_MAX];
	char event_id[IDS_MAX];
	char endpoint_id[IDS_MAX];
	int attempts;          /* attempts made before this one */
	char *url;
	char *secret;
	char *body;            /* the event object */
	size_t body_len;
	char lease[48];        /* the lease's expiry: proves this relay still holds the delivery */
	double created;        /* the event's commit time, Unix seconds (for the lag metric) */
};

/* The outcome of one attempt, as recorded. */
struct db_delivery_outcome {
	const char *delivery_id;
	const char *lease;
	bool ok;
	int status_code;       /* 0 when no HTTP response */
	const char *error;     /* NULL on success */
	int duration_ms;
	long long delay_ms;    /* backoff before the next attempt */
	bool dead;             /* that was the last attempt */
};

struct db_relay_status {
	long long unpublished;
	double oldest_unpublished_s;
	long long pending_deliveries;
	double oldest_due_s;
	long long dead_deliveries;
};

/* Fans out up to batch unpublished events; *n is how many were published. */
int db_relay_fanout(struct db_conn *c, int batch, int *n) __attribute__((warn_unused_result));

/* How many attempts one endpoint has in flight in the calling worker. */
struct db_endpoint_load {
	char endpoint_id[IDS_MAX];
	int in_flight;
};

/*
 * Leases up to batch due deliveries, at most per_endpoint of them in flight
 * per endpoint counting the nload endpoints of load that already have
 * attempts in flight (an endpoint at its share gets none). On PAY_OK *jobs
 * holds *n jobs the caller frees with db_relay_jobs_free.
 */
int db_relay_claim(struct db_conn *c, int batch, int per_endpoint, const struct db_endpoint_load *load,
		   int nload, long long lease_ms, struct db_delivery_job **jobs, int *n)
	__attribute__((warn_unused_result));
void db_relay_jobs_free(struct db_delivery_job *jobs, int n);
/* Frees the strings one job owns (for a job moved out of its array). */
void db_relay_job_fini(struct db_delivery_job *job);

/* Gives back the leases of n jobs that were not attempted (a stopping relay). */
int db_relay_release(struct db_conn *c, const struct db_delivery_job *const *jobs, int n)
	__attribute__((warn_unused_result));

/* Records n outcomes in one round trip. */
int db_relay_record(struct db_conn *c, const struct db_delivery_outcome *o, int n)
	__attribute__((warn_unused_result));

/* Puts every dead delivery (of endpoint_id, when not NULL) back in the queue; *n is how many. */
int db_relay_replay_dead(struct db_conn *c, const char *endpoint_id, long long *n)
	__attribute__((warn_unused_result));

int db_relay_status(struct db_conn *c, struct db_relay_status *st) __attribute__((warn_unused_result));

/* Deletes at most batch published events older than retention_ms (and their deliveries). */
int db_event_purge(struct db_conn *c, long long retention_ms, int batch, long long *n)
	__attribute__((warn_unused_result));

/* One event leased for publishing to NATS. Strings are owned (db_relay_nats_jobs_free). */
struct db_nats_job {
	long long seq;
	char event_id[IDS_MAX];
	char *type;
	char *body;            /* the event object, as webhooks send it */
	size_t body_len;
};

/*
 * Leases up to batch events that may be published to NATS now (in seq
 * order, at most one per charge) for lease_ms. *jobs (n entries) is freed
 * with db_relay_nats_jobs_free.
 */
int db_relay_nats_claim(struct db_conn *c, int batch, long long lease_ms, struct db_nats_job **jobs,
			int *n) __attribute__((warn_unused_result));
void db_relay_nats_jobs_free(struct db_nats_job *jobs, int n);

/*
 * Marks the npub events of published (seqs) as acknowledged by JetStream and
 * releases the leases of the nfail events of failed, in one round trip.
 */
int db_relay_nats_record(struct db_conn *c, const long long *published, int npub,
			 const long long *failed, int nfail) __attribute__((warn_unused_result));

/* Events not yet published to NATS, and the age of the oldest in seconds. */
int db_relay_nats_status(struct db_conn *c, long long *unpublished, double *oldest_s)
	__attribute__((warn_unused_result));

/* db_event_purge for relays that publish to NATS: keeps events not yet in the stream. */
int db_event_purge_nats(struct db_conn *c, long long retention_ms, int batch, long long *n)
	__attribute__((warn_unused_result));

#endif
