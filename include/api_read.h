/* api_read.h - GETs on the read pool (PAYMENTS_READ_DATABASE_URL), with the primary as fallback. */
#ifndef PAYMENTS_API_READ_H
#define PAYMENTS_API_READ_H

#include <stdbool.h>

#include "api.h"
#include "db_list.h"

struct http_app;

/*
 * Runs fetch on the read pool when there is one, and on the primary pool
 * when there is none, or when the read pool answers anything but PAY_OK (a
 * not-found: the standby may lag behind a write the client just made; a
 * connection error: the standby is down). After the read pool was
 * unavailable, reads skip it for a second. Returns what the last pool asked
 * answered; *json (caller frees) is set only on PAY_OK.
 */
int api_read_object(struct http_app *app, api_fetch_fn fetch, const char *user_id, const char *id,
		    char **json) __attribute__((warn_unused_result));

/*
 * db_list_page on the read pool, falling back to the primary when the read
 * pool fails or does not know the cursor's object (it may lag). A page read
 * from the standby may miss the newest objects. Same results as db_list_page.
 */
int api_read_list(struct http_app *app, const char *user_id, const struct db_list_query *q,
		  char **data, bool *has_more, const char **bad_param)
	__attribute__((warn_unused_result));

#endif
