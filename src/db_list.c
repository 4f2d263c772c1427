/* db_list.c - keyset-paginated lists of charges, refunds, events and webhook endpoints, and single events. */
#include "db_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt.h"
#include "err.h"

int db_list_page(struct db_conn *c, const char *user_id, const struct db_list_query *q,
		 char **data, bool *has_more, const char **bad_param)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	char limit[16], gte[24], lt[24];
	int rc;

	*data = NULL;
	*has_more = false;
	*bad_param = NULL;
	snprintf(limit, sizeof(limit), "%d", q->limit);
	snprintf(gte, sizeof(gte), "%lld", q->created_gte);
	snprintf(lt, sizeof(lt), "%lld", q->created_lt);
	db_param_text(&p, q->kind);
	db_param_text(&p, user_id);
	db_param_text(&p, limit);
	db_param_text(&p, q->starting_after);
	db_param_text(&p, q->ending_before);
	db_param_text(&p, q->created_gte >= 0 ? gte : NULL);
	db_param_text(&p, q->created_lt >= 0 ? lt : NULL);
	db_param_text(&p, q->filter_col);
	db_param_text(&p, q->filter_val);
	rc = db_exec(c, DB_STMT_LIST_PAGE, &p, false, &r);
	if (rc == PAY_EPARAM_INVALID) {
		/* list_page's SQLSTATE names the cursor that is not one of the user's objects. */
		*bad_param = strcmp(db_conn_sqlstate(c), "PR011") == 0 ? "starting_after" :
			     "ending_before";
		goto out;
	}
	if (rc != PAY_OK)
		goto out;
	*data = strdup(db_value(r, 0, 0));
	*has_more = strcmp(db_value(r, 0, 1), "t") == 0;
	rc = *data ? PAY_OK : PAY_ENOMEM;
out:
	db_result_free(r);
	return rc;
}

int db_event_get(struct db_conn *c, const char *user_id, const char *id, char **json)
{
	struct db_params p = { 0 };

	db_param_text(&p, id);
	db_param_text(&p, user_id);
	return db_query_text(c, DB_STMT_EVENT_GET, &p, json);
}
