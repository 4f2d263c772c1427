/* migfile.h - migration files on disk: names, ordering and checksums (pure). */
#ifndef PAYMENTS_MIGFILE_H
#define PAYMENTS_MIGFILE_H

#include <stdbool.h>
#include <stddef.h>

#define MIGFILE_NAME_MAX 200
#define MIGFILE_CHECKSUM_HEX 65   /* SHA-256 as hex + NUL */

/*
 * One migration file: versioned ("NNNN_name.sql", run once, in version
 * order) or repeatable ("R__name.sql": version 0, run after every versioned
 * one whenever its checksum differs from the one last applied).
 */
struct migfile {
	int version;                        /* 0 for a repeatable */
	bool repeatable;
	char name[MIGFILE_NAME_MAX];        /* the part after NNNN_ or R__, without .sql */
	char filename[MIGFILE_NAME_MAX + 16];
	char checksum[MIGFILE_CHECKSUM_HEX];
	char *sql;                          /* owned, normalised (no BOM, LF line ends) */
	bool no_transaction;                /* file has the "-- payments:no-transaction" marker */
};

struct migfile_set {
	struct migfile *files;   /* versioned by version, then repeatables by name */
	size_t n;
};

/*
 * Parses "NNNN_name.sql" (4 to 9 digits, name of [a-z0-9_]). Returns PAY_OK with
 * *version and name (MIGFILE_NAME_MAX bytes) filled, or PAY_EPARAM_INVALID.
 */
int migfile_parse_name(const char *filename, int *version, char *name);

/*
 * Parses "R__name.sql" (name of [a-z0-9_], as in versioned names). Returns
 * PAY_OK with name (MIGFILE_NAME_MAX bytes) filled, or PAY_EPARAM_INVALID.
 */
int migfile_parse_repeatable_name(const char *filename, char *name);

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
 * Reads the file at path into a new NUL-terminated buffer (*out, freed by
 * the caller with free()) of *len bytes. Returns PAY_OK or PAY_EIO.
 */
int migfile_read(const char *path, char **out, size_t *len) __attribute__((warn_unused_result));

/*
 * Loads every migration in dir: the versioned ones sorted by version, then
 * the repeatable ones sorted by name. Files that match neither name pattern
 * are ignored; two files with one version, and a repeatable marked
 * no-transaction, are errors. Returns PAY_OK, PAY_EIO or PAY_ECONFIG (after
 * printing why). Free with migfile_set_fini.
 */
int migfile_load_dir(const char *dir, struct migfile_set *set) __attribute__((warn_unused_result));
void migfile_set_fini(struct migfile_set *set);

#endif
