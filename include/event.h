/* event.h - the event types the service emits (pure). */
#ifndef PAYMENTS_EVENT_H
#define PAYMENTS_EVENT_H

#include <stdbool.h>

/* Every event type, NULL-terminated. */
extern const char *const event_types[];

/* True for a known event type, or "*" when allow_wildcard. */
bool event_type_known(const char *type, bool allow_wildcard);

#endif
