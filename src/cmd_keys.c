/* cmd_keys.c - 'payments keys create --user NAME' and 'payments keys revoke KEY'. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "apikey.h"
#include "cfg.h"
#include "db.h"
#include "db_apikey.h"
#include "err.h"

static void keys_usage(FILE *f)
{
	fprintf(f, "usage: payments keys create --user NAME   print a new secret key, once\n"
		   "       payments keys revoke KEY|KEY_ID     revoke a key at once\n\n");
	cfg_usage(f, CFG_KEYS);
}

static int keys_create(struct db_conn *conn, const char *user)
{
	char key[APIKEY_LEN + 1], id[APIKEY_ID_CHARS + 1];
	unsigned char hash[APIKEY_HASH_BYTES];
	int rc;

	apikey_generate(key);
	rc = apikey_parse(key, id);
	if (rc == PAY_OK) {
		apikey_hash(key, hash);
		rc = db_apikey_insert(conn, id, user, hash);
	}
	if (rc == PAY_OK)
		printf("%s\n", key);
	sodium_memzero(key, sizeof(key));
	return rc;
}

static int keys_revoke(struct db_conn *conn, const char *arg)
{
	char id[APIKEY_ID_CHARS + 1];

	if (apikey_parse(arg, id) != PAY_OK) {
		if (strlen(arg) != APIKEY_ID_CHARS)
			return PAY_ECONFIG;
		memcpy(id, arg, sizeof(id));
	}
	return db_apikey_revoke(conn, id);
}

int cmd_keys(int argc, char **argv)
{
	struct db_conn *conn = NULL;
	const char *user = NULL;
	struct cfg cfg;
	int i, nargs, rc, code = 1;

	if (cfg_wants_help(argc, argv)) {
		keys_usage(stdout);
		return 0;
	}
	if (cfg_load(&cfg, CFG_KEYS, argc, argv, &nargs) != PAY_OK)
		return 2;
	for (i = 1; i < nargs; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < nargs)
			user = argv[++i];
		else if (strncmp(argv[i], "--user=", 7) == 0)
			user = argv[i] + 7;
	}
	if (nargs < 1 || (strcmp(argv[0], "create") == 0 && !apikey_user_valid(user)) ||
	    (strcmp(argv[0], "revoke") == 0 && nargs != 2) ||
	    (strcmp(argv[0], "create") != 0 && strcmp(argv[0], "revoke") != 0)) {
		keys_usage(stderr);
		fprintf(stderr, "\nA user name is 1 to 64 of A-Z a-z 0-9 _ . -\n");
		code = 2;
		goto out;
	}
	if (db_conn_open(cfg.database_url, cfg.db_connect_timeout_ms, &conn) != PAY_OK) {
		fprintf(stderr, "payments keys: cannot connect to the database\n");
		goto out;
	}
	if (strcmp(argv[0], "create") == 0) {
		rc = keys_create(conn, user);
	} else {
		rc = keys_revoke(conn, argv[1]);
		if (rc == PAY_OK)
			fprintf(stderr, "revoked\n");
		else if (rc == PAY_ENOT_FOUND || rc == PAY_ECONFIG)
			fprintf(stderr, "payments keys: no such active key\n");
	}
	code = rc == PAY_OK ? 0 : 1;
out:
	db_conn_close(conn);
	cfg_fini(&cfg);
	return code;
}
