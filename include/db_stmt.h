/* db_stmt.h - internal to the database layer: the table of prepared statements. */
#ifndef PAYMENTS_DB_STMT_H
#define PAYMENTS_DB_STMT_H

#include "db.h"

struct db_stmt_def {
	const char *name;
	const char *sql;
	int nparams;         /* the $n it takes: checked when prepared and on every call */
};

extern const struct db_stmt_def db_stmt_defs[DB_STMT_COUNT];

#endif
