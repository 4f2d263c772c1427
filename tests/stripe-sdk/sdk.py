"""sdk.py - runs a list of operations against the payments service with Debian's stripe-python (python3-stripe).

Usage: /usr/bin/python3 sdk.py < request.json > results.json

The request and results are those of sdk.js (the stripe-node driver), so
tests/integration/test_stripe_sdk.py drives both SDKs alike. It must run
under /usr/bin/python3, where Debian installs the stripe package.
config.apiVersion becomes stripe.api_version: stripe-python sends
Stripe-Version only when it is set (null: none).
"""

import json
import sys

import stripe

RESOURCES = {
    "charges": stripe.Charge,
    "refunds": stripe.Refund,
    "events": stripe.Event,
    "webhookEndpoints": stripe.WebhookEndpoint,
}


def error_of(e):
    body = (getattr(e, "json_body", None) or {}).get("error") or {}
    headers = getattr(e, "headers", None) or {}
    return {
        "class": type(e).__name__,
        "type": body.get("type"),
        "code": getattr(e, "code", None) or body.get("code"),
        "decline_code": body.get("decline_code"),
        "charge": body.get("charge"),
        "param": body.get("param"),
        "status": getattr(e, "http_status", None),
        "requestId": getattr(e, "request_id", None),
        "shouldRetry": headers.get("stripe-should-retry") or headers.get("Stripe-Should-Retry"),
        "message": getattr(e, "user_message", None) or str(e),
    }


def response_info(obj):
    res = getattr(obj, "last_response", None)
    headers = getattr(res, "headers", None) or {}
    return {
        "requestId": getattr(res, "request_id", None),
        "replayed": headers.get("Idempotent-Replayed"),
        "stripeVersion": headers.get("Stripe-Version"),
    }


def run(op):
    cls = RESOURCES.get(op.get("resource"))
    kind = op["op"]
    if kind == "create":
        kwargs = dict(op.get("params") or {})
        if op.get("idempotencyKey"):
            kwargs["idempotency_key"] = op["idempotencyKey"]
        obj = cls.create(**kwargs)
    elif kind == "retrieve":
        obj = cls.retrieve(op["id"])
    elif kind == "capture":
        kwargs = dict(op.get("params") or {})
        if op.get("idempotencyKey"):
            kwargs["idempotency_key"] = op["idempotencyKey"]
        obj = cls.capture(op["id"], **kwargs)
    elif kind == "update":
        kwargs = dict(op.get("params") or {})
        if op.get("idempotencyKey"):
            kwargs["idempotency_key"] = op["idempotencyKey"]
        obj = cls.modify(op["id"], **kwargs)
    elif kind == "del":
        obj = cls.delete(op["id"])
    elif kind == "list":
        return {"ok": [item.id for item in cls.list(**(op.get("params") or {})).auto_paging_iter()]}
    elif kind == "constructEvent":
        event = stripe.Webhook.construct_event(op["payload"], op["header"], op["secret"])
        return {"ok": event.to_dict_recursive()}
    else:
        raise ValueError("sdk.py: unknown op %r" % kind)
    result = {"ok": obj.to_dict_recursive()}
    result.update(response_info(obj))
    return result


def main():
    request = json.load(sys.stdin)
    config = request["config"]
    stripe.api_key = config["key"]
    stripe.api_base = config["api"]
    stripe.max_network_retries = config.get("maxNetworkRetries", 0)
    stripe.api_version = config.get("apiVersion")
    stripe.enable_telemetry = False
    results = []
    for op in request["ops"]:
        try:
            results.append(run(op))
        except (stripe.error.StripeError, stripe.error.SignatureVerificationError) as e:
            results.append({"error": error_of(e)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
