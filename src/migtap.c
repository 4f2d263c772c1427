/* migtap.c - tallying the TAP output of a pgTAP file for 'migrate verify' (pure). */
#include "migtap.h"

#include <stdlib.h>
#include <string.h>

void migtap_line(struct migtap *t, const char *text, bool error)
{
	if (error) {
		t->errors++;
		if (t->out != NULL)
			fprintf(t->out, "  error: %s%s", text,
				text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
	} else if (strncmp(text, "not ok", 6) == 0) {
		t->failed++;
		if (t->out != NULL)
			fprintf(t->out, "  %s\n", text);
	} else if (strncmp(text, "ok", 2) == 0) {
		t->passed++;
	} else if (strncmp(text, "1..", 3) == 0) {
		t->planned = atoi(text + 3);
	}
}

int migtap_failures(const struct migtap *t)
{
	int n = t->failed + t->errors;

	if (t->planned > 0 && t->passed + t->failed != t->planned)
		n++;
	return n;
}
