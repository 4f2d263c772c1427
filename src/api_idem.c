/* api_idem.c - the HTTP side of idempotency, shared by every idempotent create. */
#include "api.h"

#include "db_idem.h"
#include "err.h"
#include "idem.h"
#include "metrics.h"

int api_idempotency_key_or_reply(struct http_req *r, const char **key)
{
	int rc;

	*key = http_header(r, "Idempotency-Key");
	rc = idem_key_check(*key);
	if (rc != PAY_OK)
		http_reply_error(r, rc, NULL, NULL);
	return rc;
}

int api_reply_idempotent(struct http_req *r, int rc, const struct db_idem_result *res)
{
	struct http_header extra[2];

	if (rc == PAY_EIDEM_IN_USE)
		metrics_conflict(true);
	if (rc != PAY_OK)
		return http_reply_error(r, rc, NULL, NULL);
	if (res->outcome == DB_IDEM_MISMATCH) {
		metrics_conflict(false);
		/* 409 is this API's answer; a Stripe SDK gets Stripe's 400 and raises IdempotencyError. */
		return http_reply_error(r, http_speaks_stripe(r) ? PAY_EIDEM_REUSED_STRIPE :
					PAY_EIDEM_REUSED, NULL, NULL);
	}
	r->replayed = res->outcome == DB_IDEM_REPLAYED;
	if (r->replayed)
		metrics_replay();
	extra[0] = (struct http_header){ "Idempotent-Replayed", r->replayed ? "true" : "false" };
	/* A stored decline is definitive: the same request would replay it. */
	extra[1] = (struct http_header){ "Stripe-Should-Retry", "false" };
	/* A stored decline is a card error, for the access log. */
	if (res->status == 402)
		r->error_code = err_info(PAY_ECARD_DECLINED)->code;
	return http_reply(r, res->status, res->body, res->body_len, extra, res->status >= 400 ? 2 : 1);
}
