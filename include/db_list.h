/* db_list.h - keyset-paginated lists of charges, refunds, events and webhook endpoints, and single events. */
#ifndef PAYMENTS_DB_LIST_H
#define PAYMENTS_DB_LIST_H

#include <stdbool.h>

#include "db.h"

/* One list request; NULL / -1 means "not given". */
struct db_list_query {
	const char *kind;            /* "charges", "refunds", "events" or "webhook_endpoints" */
	int limit;
	const char *starting_after;
	const char *ending_before;
	long long created_gte;       /* Unix seconds, -1 when absent */
	long long created_lt;
	const char *filter_col;      /* "charge_id" or "type", or NULL */
	const char *filter_val;
};

/*
 * Fetches one page for user_id: *data is a JSON array (caller frees) and
 * *has_more says whether rows lie beyond it. Returns PAY_OK,
 * PAY_EPARAM_INVALID with *bad_param naming the cursor that is not the
 * user's, or a db error.
 */
int db_list_page(struct db_conn *c, const char *user_id, const struct db_list_query *q,
		 char **data, bool *has_more, const char **bad_param) __attribute__((warn_unused_result));

/* The event object JSON of id if it is user_id's; caller frees *json. */
int db_event_get(struct db_conn *c, const char *user_id, const char *id, char **json)
	__attribute__((warn_unused_result));

#endif
