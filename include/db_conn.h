/* db_conn.h - the connection and result structs, shared by the db_*.c files only (libpq). */
#ifndef PAYMENTS_DB_CONN_H
#define PAYMENTS_DB_CONN_H

#include <stdbool.h>

#include <libpq-fe.h>

struct db_conn {
	PGconn *pg;
	bool broken;
	unsigned long epoch;         /* the pool's epoch when this connection was made */
	char sqlstate[6];
	char message[512];
	struct db_conn *next_free;
};

struct db_result {
	PGresult *res;
};

#endif
