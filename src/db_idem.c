/* db_idem.c - retention of idempotency keys: the batched purge. */
#include "db_idem.h"

#include <stdio.h>

#include "err.h"

int db_idem_purge(struct db_conn *c, int batch, long long *deleted)
{
	struct db_params p = { 0 };
	struct db_result *r = NULL;
	char limit[16];
	int rc;

	*deleted = 0;
	snprintf(limit, sizeof(limit), "%d", batch);
	db_param_text(&p, limit);
	rc = db_exec(c, DB_STMT_PURGE_IDEMPOTENCY, &p, false, &r);
	if (rc == PAY_OK)
		*deleted = db_result_affected(r);
	db_result_free(r);
	return rc;
}
