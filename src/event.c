/* event.c - the event types the service emits (pure). */
#include "event.h"

#include <stddef.h>
#include <string.h>

const char *const event_types[] = {
	"charge.succeeded", "charge.failed", "charge.refunded", "refund.created", "charge.captured",
	"charge.expired", "charge.pending", "charge.review_required", "charge.updated", "refund.updated",
	NULL,
};

bool event_type_known(const char *type, bool allow_wildcard)
{
	size_t i;

	if (type == NULL)
		return false;
	if (allow_wildcard && strcmp(type, "*") == 0)
		return true;
	for (i = 0; event_types[i] != NULL; i++) {
		if (strcmp(event_types[i], type) == 0)
			return true;
	}
	return false;
}
