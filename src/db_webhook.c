/* db_webhook.c - webhook endpoints and deliveries as the API sees them (scoped per user). */
#include "db_webhook.h"

#include <stdio.h>
#include <stdlib.h>

#include "db_stmt.h"
#include "err.h"

int db_webhook_create(struct db_conn *c, const char *id, const char *user_id, const char *url,
		      const char *events_json, const char *secret, int max, char **json)
{
	struct db_params p = { 0 };
	char max_text[16];

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	db_param_text(&p, url);
	db_param_text(&p, events_json);
	db_param_text(&p, secret);
	snprintf(max_text, sizeof(max_text), "%d", max);
	db_param_text(&p, max_text);
	return db_query_text(c, DB_STMT_WEBHOOK_CREATE, &p, json);
}

int db_webhook_get(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_WEBHOOK_GET, &p, json);
}

int db_webhook_delete(struct db_conn *c, const char *user_id, const char *id)
{
	struct db_params p = { 0 };
	char *deleted = NULL;
	int rc;

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	rc = db_query_text(c, DB_STMT_WEBHOOK_DELETE, &p, &deleted);
	free(deleted);
	return rc;
}

int db_delivery_list(struct db_conn *c, const char *user_id, const struct db_delivery_filter *f,
		     char **json)
{
	struct db_params p = { 0 };
	char limit[16];

	snprintf(limit, sizeof(limit), "%d", f->limit);
	db_param_text(&p, user_id);
	db_param_text(&p, f->status);
	db_param_text(&p, f->event_id);
	db_param_text(&p, f->endpoint_id);
	db_param_text(&p, limit);
	return db_query_text(c, DB_STMT_DELIVERY_LIST, &p, json);
}

int db_delivery_replay(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_DELIVERY_REPLAY, &p, json);
}
