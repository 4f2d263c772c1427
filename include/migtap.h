/* migtap.h - tallying the TAP output of a pgTAP file for 'migrate verify' (pure). */
#ifndef PAYMENTS_MIGTAP_H
#define PAYMENTS_MIGTAP_H

#include <stdbool.h>
#include <stdio.h>

/* The tally of one file's TAP lines. */
struct migtap {
	int planned;     /* from "1..N", 0 when no plan was seen */
	int passed;      /* "ok" lines */
	int failed;      /* "not ok" lines */
	int errors;      /* statements that failed outright */
	FILE *out;       /* where failing lines are echoed (indented), or NULL */
};

/* Counts one output line; error marks a failed statement's message rather than TAP. */
void migtap_line(struct migtap *t, const char *text, bool error);

/* Failures of the file: not-ok tests, failed statements, and one more when the plan was not run whole. */
int migtap_failures(const struct migtap *t);

#endif
