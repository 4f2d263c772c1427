/*
 * processor.h - processor mode: the connector interface a payment processor
 * is reached through, and the worker ('payments processor') that carries
 * pending charges to it.
 */
#ifndef PAYMENTS_PROCESSOR_H
#define PAYMENTS_PROCESSOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "cfg.h"

/* What one call to the processor established. */
enum processor_outcome {
	PROCESSOR_SUCCEEDED,   /* definitive: the processor charged the card */
	PROCESSOR_FAILED,      /* definitive: declined or refused; never charged */
	PROCESSOR_UNKNOWN,     /* timeout, dropped connection, 5xx, 409, 429...: ask again, same key */
};

/* What looking a charge up by our reference in the processor's list found. */
enum processor_lookup_result {
	PROCESSOR_LOOKUP_FOUND,       /* a charge there with a definitive outcome */
	PROCESSOR_LOOKUP_NOT_FOUND,   /* the whole period read: no charge there names ours */
	PROCESSOR_LOOKUP_FAILED,      /* not read whole, or ours still pending there */
};

/* One charge to make at the processor; strings borrowed from the caller. */
struct processor_charge {
	const char *charge_id;       /* ours: the idempotency key and metadata[payments_charge] */
	long long amount;
	const char *currency;
	const char *source;
	const char *description;     /* may be NULL */
	const char *metadata_json;   /* a JSON object of strings */
	/* Tests only: called once the whole request has been sent (may be NULL). */
	void (*on_sent)(void);
};

/* The answer, copied out of the response (the strings are "" when absent). */
struct processor_result {
	enum processor_outcome outcome;
	long http_status;            /* 0 when no response arrived */
	char ref[128];               /* the processor's id of the charge */
	char failure_code[64];
	char decline_code[64];
	char detail[256];            /* for logs and last_error: why, in a few words */
	double latency_s;
};

/* One charge in the processor's list (reconcile); strings "" when absent. */
struct processor_listed {
	char ref[128];
	char our_id[64];             /* metadata[payments_charge] */
	char status[16];
	long long amount;
	char failure_code[64];
	char decline_code[64];
};

/* One page of the processor's list; items owned (free()). */
struct processor_page {
	struct processor_listed *items;
	int n;
	bool has_more;
};

/*
 * A processor, reached through its own API. create returns a context
 * (NULL on failure) that destroy frees; charge makes (or, with the same
 * charge_id, looks up) one charge and returns PAY_OK with *out filled, or
 * PAY_ENOMEM. Every connector must use charge_id as the idempotency key, so
 * a retry can never charge twice.
 */
struct processor_connector {
	const char *name;
	void *(*create)(const struct cfg *cfg);
	void (*destroy)(void *ctx);
	int (*charge)(void *ctx, const struct processor_charge *in, struct processor_result *out);
	/*
	 * NULL when the processor cannot list its charges (then no lookups).
	 * One page (oldest first is not promised) of the charges created at or
	 * after since (Unix seconds), after the charge starting_after (NULL: the
	 * first page). Returns PAY_OK with *out filled, PAY_EUNAVAILABLE when
	 * the processor did not answer 200 with a list, or PAY_ENOMEM.
	 */
	int (*list)(void *ctx, long long since, const char *starting_after,
		    struct processor_page *out);
};

/* Stripe's API: POST /v1/charges, form-encoded (processor_stripe.c). */
extern const struct processor_connector processor_stripe;

/*
 * Runs the worker until *stop is set: claims due pending charges, calls the
 * connector, records definitive outcomes and defers unknown ones. Returns
 * the process exit code.
 */
int processor_run(const struct cfg *cfg, atomic_int *stop);

/* What a reconciliation found. */
struct processor_figures {
	long long ours;                  /* our processor-mode charges compared */
	long long theirs;                /* the processor's charges listed */
	long long missing_at_processor;  /* succeeded here, no charge there */
	long long missing_here;          /* a charge there for an id we do not have */
	long long duplicates;            /* more than one charge there for one of ours */
	long long amount_mismatches;
	long long status_mismatches;     /* including ours still pending with an outcome there */
	long long fixed;                 /* pending here, recorded from the processor's outcome */
	long long pending_unknown;       /* pending here, nothing there yet (not a difference) */
};

/*
 * 'payments processor reconcile': compares our processor-mode charges
 * created since (Unix seconds) with the processor's list for the period,
 * printing each difference to out; with fix, records the processor's
 * outcome for charges still pending here (one transaction each, with its
 * event). Returns PAY_OK with *fig filled, or an error.
 */
int processor_reconcile(const struct cfg *cfg, long long since, bool fix, FILE *out,
			struct processor_figures *fig);

#endif
