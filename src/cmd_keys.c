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
	fprintf(f, "usage: payments keys create --user NAME   print a new secret key, once (its id on stderr)\n"
		   "       payments keys revoke KEY_ID         revoke a key: sk_test_ and its 12-character id\n"
		   "       payments keys revoke -              revoke the key read from stdin (never pass\n"
		   "                                           a whole key as an argument: ps and shell\n"
		   "                                           history keep it)\n\n");
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
	if (rc == PAY_OK) {
		printf("%s\n", key);
		fflush(stdout);
		fprintf(stderr, "key id: %s%s (revoke with: payments keys revoke %s%s)\n", APIKEY_PREFIX, id,
			APIKEY_PREFIX, id);
	}
	sodium_memzero(key, sizeof(key));
	return rc;
}

/*
 * Reads the key to revoke from stdin (one line) into its id. Returns PAY_OK
 * or PAY_ECONFIG. The line is wiped.
 */
static int keys_read_stdin(char *id)
{
	char line[APIKEY_LEN + 8];
	size_t len;
	int rc = PAY_ECONFIG;

	if (fgets(line, sizeof(line), stdin) == NULL)
		goto out;
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (apikey_parse(line, id) == PAY_OK)
		rc = PAY_OK;
out:
	sodium_memzero(line, sizeof(line));
	return rc;
}

/*
 * Revokes the key named by arg: its public id (sk_test_ and 12 characters,
 * or the 12 alone), or "-" for the whole key on stdin. A whole key as an
 * argument is refused (PAY_EPARAM_INVALID) and revokes nothing: it would
 * already sit in ps output and shell history.
 */
static int keys_revoke(struct db_conn *conn, const char *arg)
{
	char id[APIKEY_ID_CHARS + 1];
	int rc;

	if (strcmp(arg, "-") == 0)
		rc = keys_read_stdin(id);
	else if (apikey_parse(arg, id) == PAY_OK)
		rc = PAY_EPARAM_INVALID;
	else
		rc = apikey_parse_public(arg, id) == PAY_OK ? PAY_OK : PAY_ECONFIG;
	if (rc == PAY_OK)
		rc = db_apikey_revoke(conn, id);
	return rc;
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
		else if (rc == PAY_EPARAM_INVALID)
			fprintf(stderr, "payments keys: not revoked: pass the key's id (sk_test_ and its first"
				" 12 characters), or '-' and the key on stdin; a whole key on the command"
				" line stays in ps and shell history, so treat this one as exposed\n");
	}
	code = rc == PAY_OK ? 0 : rc == PAY_EPARAM_INVALID ? 2 : 1;
out:
	db_conn_close(conn);
	cfg_fini(&cfg);
	return code;
}
