/* migfile.h - migration files on disk: names, ordering and checksums (pure). */
#ifndef PAYMENTS_MIGFILE_H
#define PAYMENTS_MIGFILE_H

#include <stdbool.h>
#include <stddef.h>

#define MIGFILE_NAME_MAX 200
#define MIGFILE_CHECKSUM_HEX 65   /* SHA-256 as hex + NUL */

struct migfile {
	int version;
	char name[MIGFILE_NAME_MAX];        /* the part after NNNN_, without .sql */
	char filename[MIGFILE_NAME_MAX + 16];
	char checksum[MIGFILE_CHECKSUM_HEX];
	char *sql;                          /* owned, normalised (no BOM, LF line ends) */
	bool no_transaction;                /* file has the "-- payments:no-transaction" marker */
};

struct migfile_set {
	struct migfile *files;   /* sorted by version */
	size_t n;
};

/*
 * Parses "NNNN_name.sql" (4 to 9 digits, name of [a-z0-9_]). Returns PAY_OK with
 * *version and name (MIGFILE_NAME_MAX bytes) filled, or PAY_EPARAM_INVALID.
 */
int migfile_parse_name(const char *filename, int *version, char *name);

/*
 * Normalises migration text in place: drops a UTF-8 BOM and turns CRLF into
 * LF, so the checksum does not depend on the editor. text must have room for
 * len + 1 bytes (a NUL is written at the end). Returns the new length.
 */
size_t migfile_normalise(char *text, size_t len);

/* Hex SHA-256 of len bytes into hex (MIGFILE_CHECKSUM_HEX bytes). */
void migfile_checksum(const char *text, size_t len, char *hex);

/* True when a line starts with the "-- payments:no-transaction" marker (a comment may follow it). */
bool migfile_is_no_transaction(const char *text);

/*
 * Counts the SQL statements in text: semicolons outside quotes, quoted
 * identifiers, dollar-quoted bodies and comments, plus a final statement
 * without one. Comment-only text has 0 statements.
 */
int migfile_count_statements(const char *text);

/*
 * Loads every migration in dir, sorted by version. Files that do not match
 * the name pattern are ignored; two files with one version are an error.
 * Returns PAY_OK, PAY_EIO or PAY_ECONFIG (after printing why). Free with
 * migfile_set_fini.
 */
int migfile_load_dir(const char *dir, struct migfile_set *set) __attribute__((warn_unused_result));
void migfile_set_fini(struct migfile_set *set);

#endif
