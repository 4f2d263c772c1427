/* db_webhook.h - webhook endpoints and deliveries as the API sees them (scoped per user). */
#ifndef PAYMENTS_DB_WEBHOOK_H
#define PAYMENTS_DB_WEBHOOK_H

#include "db.h"

/*
 * Each returns PAY_OK with *json a new string the caller frees with free(),
 * PAY_ENOT_FOUND when the object is missing or another user's, or a db error.
 */

/*
 * Inserts an endpoint unless the user already has max of them (then
 * PAY_EWEBHOOK_ENDPOINTS_LIMIT; the database counts under a lock of the user,
 * so concurrent creates cannot pass it); events_json is a JSON array of
 * event types. *json is the object without the secret.
 */
int db_webhook_create(struct db_conn *c, const char *id, const char *user_id, const char *url,
		      const char *events_json, const char *secret, int max, char **json)
	__attribute__((warn_unused_result));
int db_webhook_get(struct db_conn *c, const char *user_id, const char *id, char **json)
	__attribute__((warn_unused_result));
/* Deletes (disables) the endpoint; its pending deliveries die. Returns PAY_OK or PAY_ENOT_FOUND. */
int db_webhook_delete(struct db_conn *c, const char *user_id, const char *id)
	__attribute__((warn_unused_result));

/* Filters for db_delivery_list; NULL means any. */
struct db_delivery_filter {
	const char *status;
	const char *event_id;
	const char *endpoint_id;
	int limit;
};

/* The user's deliveries with their attempts, newest first, as a JSON array. */
int db_delivery_list(struct db_conn *c, const char *user_id, const struct db_delivery_filter *f,
		     char **json) __attribute__((warn_unused_result));
/* Replays one delivery (user_id NULL: any user's). *json is the delivery object. */
int db_delivery_replay(struct db_conn *c, const char *user_id, const char *id, char **json)
	__attribute__((warn_unused_result));

#endif
