/* migfile.c - migration files on disk: names, ordering and checksums (pure). */
#include "migfile.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"

int migfile_parse_name(const char *filename, int *version, char *name)
{
	size_t len = strlen(filename), i = 0, digits;
	long v = 0;

	if (len < 10 || strcmp(filename + len - 4, ".sql") != 0)
		return PAY_EPARAM_INVALID;
	while (filename[i] >= '0' && filename[i] <= '9' && i < 9)
		v = v * 10 + (filename[i++] - '0');
	digits = i;
	if (digits < 4 || filename[i] != '_' || v <= 0)
		return PAY_EPARAM_INVALID;
	i++;
	if (len - 4 - i == 0 || len - 4 - i >= MIGFILE_NAME_MAX)
		return PAY_EPARAM_INVALID;
	for (; i < len - 4; i++) {
		char c = filename[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return PAY_EPARAM_INVALID;
	}
	*version = (int)v;
	memcpy(name, filename + digits + 1, len - 4 - digits - 1);
	name[len - 4 - digits - 1] = '\0';
	return PAY_OK;
}

int migfile_parse_repeatable_name(const char *filename, char *name)
{
	size_t len = strlen(filename), i;

	if (len < 8 || strncmp(filename, "R__", 3) != 0 || strcmp(filename + len - 4, ".sql") != 0 ||
	    len - 7 >= MIGFILE_NAME_MAX)
		return PAY_EPARAM_INVALID;
	for (i = 3; i < len - 4; i++) {
		char c = filename[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return PAY_EPARAM_INVALID;
	}
	memcpy(name, filename + 3, len - 7);
	name[len - 7] = '\0';
	return PAY_OK;
}

size_t migfile_normalise(char *text, size_t len)
{
	size_t i, o = 0, start = 0;

	if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
	    (unsigned char)text[2] == 0xBF)
		start = 3;
	for (i = start; i < len; i++) {
		if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n')
			continue;
		text[o++] = text[i];
	}
	text[o] = '\0';
	return o;
}

void migfile_checksum(const char *text, size_t len, char *hex)
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(digest, (const unsigned char *)text, len);
	sodium_bin2hex(hex, MIGFILE_CHECKSUM_HEX, digest, sizeof(digest));
}

bool migfile_is_no_transaction(const char *text)
{
	static const char marker[] = "-- payments:no-transaction";
	const char *p = text;

	while ((p = strstr(p, marker)) != NULL) {
		bool line_start = p == text || p[-1] == '\n';
		char after = p[sizeof(marker) - 1];

		if (line_start && (after == '\n' || after == '\0' || after == ' '))
			return true;
		p += sizeof(marker) - 1;
	}
	return false;
}

/* Length of the dollar-quote tag ("$$" or "$tag$") starting at p, or 0 when p starts none. */
static size_t migfile_dollar_tag(const char *p)
{
	size_t i = 1;

	if (p[0] != '$')
		return 0;
	while ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || p[i] == '_' ||
	       (i > 1 && p[i] >= '0' && p[i] <= '9'))
		i++;
	return p[i] == '$' ? i + 1 : 0;
}

/* Skips a block comment starting at p; PostgreSQL's block comments nest. */
static const char *migfile_skip_block_comment(const char *p)
{
	int depth = 0;

	do {
		if (p[0] == '/' && p[1] == '*') {
			depth++;
			p += 2;
		} else if (p[0] == '*' && p[1] == '/') {
			depth--;
			p += 2;
		} else {
			p++;
		}
	} while (depth > 0 && *p != '\0');
	return p;
}

/* True when the quote at p opens an escape string (E'...'), where backslash escapes. */
static bool migfile_escape_string(const char *text, const char *p)
{
	char before;

	if (p == text || (p[-1] != 'E' && p[-1] != 'e'))
		return false;
	before = p - 1 == text ? ' ' : p[-2];
	return !((before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z') ||
		 (before >= '0' && before <= '9') || before == '_' || before == '$');
}

int migfile_count_statements(const char *text)
{
	const char *p = text, *end;
	int n = 0;
	bool pending = false;   /* non-blank, non-comment text since the last ';' */
	size_t tag;

	while (*p != '\0') {
		if (p[0] == '-' && p[1] == '-') {
			end = strchr(p, '\n');
			p = end ? end : p + strlen(p);
		} else if (p[0] == '/' && p[1] == '*') {
			p = migfile_skip_block_comment(p);
		} else if (*p == '\'' || *p == '"') {
			bool escapes = *p == '\'' && migfile_escape_string(text, p);
			char q = *p++;

			pending = true;
			/* A doubled quote is an escaped quote: the loop just goes on past it. */
			while (*p != '\0' && *p != q) {
				if (escapes && *p == '\\' && p[1] != '\0')
					p++;
				p++;
			}
			if (*p != '\0')
				p++;
		} else if ((tag = migfile_dollar_tag(p)) > 0) {
			pending = true;
			end = p + tag;
			while (*end != '\0' && strncmp(end, p, tag) != 0)
				end++;
			p = *end != '\0' ? end + tag : end;
		} else {
			if (*p == ';') {
				if (pending)
					n++;
				pending = false;
			} else if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
				pending = true;
			}
			p++;
		}
	}
	return n + (pending ? 1 : 0);
}

/* Versioned files by version, then repeatables by name. */
static int migfile_cmp(const void *a, const void *b)
{
	const struct migfile *x = a, *y = b;

	if (x->repeatable != y->repeatable)
		return x->repeatable ? 1 : -1;
	if (x->repeatable)
		return strcmp(x->name, y->name);
	return (x->version > y->version) - (x->version < y->version);
}

int migfile_read(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;
	int rc = PAY_EIO;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)size + 1);
	if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto out;
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	buf = NULL;
	rc = PAY_OK;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

int migfile_load_dir(const char *dir, struct migfile_set *set)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct migfile m, *grown;
	char path[4096];
	size_t cap = 0, i, len;
	int rc = PAY_OK;

	memset(set, 0, sizeof(*set));
	if (d == NULL) {
		fprintf(stderr, "payments migrate: cannot open migrations directory '%s'\n", dir);
		return PAY_EIO;
	}
	while (rc == PAY_OK && (e = readdir(d)) != NULL) {
		memset(&m, 0, sizeof(m));
		if (strlen(e->d_name) < sizeof(m.filename) &&
		    migfile_parse_repeatable_name(e->d_name, m.name) == PAY_OK) {
			m.repeatable = true;
		} else if (strlen(e->d_name) >= sizeof(m.filename) ||
			   migfile_parse_name(e->d_name, &m.version, m.name) != PAY_OK) {
			size_t l = strlen(e->d_name);

			/* A .sql file nobody will run is a mistake worth saying out loud. */
			if (l > 4 && strcmp(e->d_name + l - 4, ".sql") == 0)
				fprintf(stderr, "payments migrate: ignoring %s/%s: a migration is named"
					" NNNN_name.sql (4 to 9 digits, name of a-z 0-9 _) or R__name.sql"
					" (repeatable)\n", dir, e->d_name);
			continue;
		}
		snprintf(m.filename, sizeof(m.filename), "%s", e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		rc = migfile_read(path, &m.sql, &len);
		if (rc != PAY_OK) {
			fprintf(stderr, "payments migrate: cannot read %s\n", path);
			break;
		}
		len = migfile_normalise(m.sql, len);
		migfile_checksum(m.sql, len, m.checksum);
		m.no_transaction = migfile_is_no_transaction(m.sql);
		if (m.repeatable && m.no_transaction) {
			/* It would run again after every change: half-done work must roll back. */
			fprintf(stderr, "payments migrate: %s is repeatable and marked"
				" payments:no-transaction; repeatable migrations always run in a"
				" transaction (put the statement in a versioned migration)\n", path);
			free(m.sql);
			rc = PAY_ECONFIG;
			break;
		}
		if (set->n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(set->files, cap * sizeof(*grown));
			if (grown == NULL) {
				free(m.sql);
				rc = PAY_ENOMEM;
				break;
			}
			set->files = grown;
		}
		set->files[set->n++] = m;
	}
	closedir(d);
	if (rc == PAY_OK && set->n > 0)
		qsort(set->files, set->n, sizeof(*set->files), migfile_cmp);
	for (i = 1; rc == PAY_OK && i < set->n; i++) {
		if (!set->files[i].repeatable && set->files[i].version == set->files[i - 1].version) {
			fprintf(stderr, "payments migrate: two files with version %d: %s and %s\n",
				set->files[i].version, set->files[i - 1].filename,
				set->files[i].filename);
			rc = PAY_ECONFIG;
		}
	}
	if (rc != PAY_OK)
		migfile_set_fini(set);
	return rc;
}

void migfile_set_fini(struct migfile_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->files[i].sql);
	free(set->files);
	memset(set, 0, sizeof(*set));
}
