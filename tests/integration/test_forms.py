"""test_forms.py - form bodies (Stripe's bracket notation) and the response headers Stripe's SDKs read, over raw HTTP.

test_stripe_sdk.py drives the real SDKs; this module checks the same
contract byte by byte: a form is decoded into the object the same JSON
would be and validated alike, hostile forms get a clear 400, and every
answer carries Request-Id, Stripe-Version and, on errors, Stripe-Should-Retry.
"""

import urllib.parse

import harness as h

FORM = "application/x-www-form-urlencoded"


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def form(pairs):
    """pairs ([(name, value)]) encoded as the SDKs do: names keep their brackets, values are escaped."""
    return "&".join("%s=%s" % (urllib.parse.quote(n, safe="[]"), urllib.parse.quote_plus(v))
                    for n, v in pairs)


CHARGE_FORM = [("amount", "2000"), ("currency", "usd"), ("source", "tok_visa"),
               ("description", "Integration test"), ("metadata[order_id]", "6735")]


class FormTest(h.ServiceTestCase):
    def setUp(self):
        self.user, self.key = self.make_user("form")

    def post_form(self, body, idem=None, path="/v1/charges", content_type=FORM, headers=None):
        return self.post_charge(self.key, body, idem, path=path, content_type=content_type,
                                headers=headers)

    def assert_sdk_headers(self, resp, should_retry=None):
        self.assertEqual(resp.header("Request-Id"), resp.header("X-Request-Id"), repr(resp))
        self.assertEqual(resp.header("Stripe-Version"), "2024-06-20", repr(resp))
        self.assertEqual(resp.header("Stripe-Should-Retry"), should_retry, repr(resp))

    def test_form_charge_is_the_json_charge(self):
        """A form charge is created exactly like its JSON twin, metadata from bracket notation"""
        resp = self.post_form(form(CHARGE_FORM), h.new_key())
        obj = self.assert_json_response(resp, 201)
        self.assert_charge_object(obj, h.charge_body())
        self.assert_sdk_headers(resp)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")

    def test_percent_escapes_plus_and_charset(self):
        """Percent escapes, '+' for space, encoded brackets and a charset parameter all decode"""
        body = ("amount=2000&currency=usd&source=tok_visa&description=Caf%C3%A9+%2B+%26+%3D"
                "&metadata%5Bnote%5D=a+b&metadata[k%C3%A9y]=%E2%82%AC")
        resp = self.post_form(body, h.new_key(), content_type=FORM + "; charset=utf-8")
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(obj["description"], "Caf\u00e9 + & =")
        self.assertEqual(obj["metadata"], {"note": "a b", "k\u00e9y": "\u20ac"})

    def test_json_and_form_share_one_fingerprint(self):
        """A JSON request retried as a form with the same key replays, and the other way round"""
        idem = h.new_key()
        first = self.assert_json_response(self.post_charge(self.key, h.charge_body(), idem), 201)
        resp = self.post_form(form(CHARGE_FORM), idem)
        self.assertEqual(self.assert_json_response(resp, 201), first)
        self.assertEqual(resp.header("Idempotent-Replayed"), "true")
        idem2 = h.new_key()
        second = self.assert_json_response(self.post_form(form(CHARGE_FORM), idem2), 201)
        resp = self.post_charge(self.key, h.charge_body(), idem2)
        self.assertEqual(self.assert_json_response(resp, 201), second)
        other = self.post_form(form(CHARGE_FORM[:-1] + [("metadata[order_id]", "6736")]), idem2)
        err = self.assert_error(other, 409, "idempotency_key_reused", "idempotency_error")
        self.assertIsNone(err["param"])
        self.assert_sdk_headers(other, "false")
        self.assertEqual(self.counts(self.user), (2, 2, 2))

    def test_form_validation_matches_json(self):
        """A form is refused for what a JSON body is refused for, naming the field in bracket form"""
        base = dict(CHARGE_FORM)
        cases = [
            ({"amount": "abc"}, "parameter_invalid_type", "amount"),
            ({"amount": "20.5"}, "parameter_invalid_type", "amount"),
            ({"amount": "0"}, "amount_too_small", "amount"),
            ({"amount": "100000000"}, "amount_too_large", "amount"),
            ({"currency": "USD"}, "invalid_currency", "currency"),
            ({"source": "tok_nope"}, "invalid_source", "source"),
            ({"id": "ch_x"}, "parameter_unknown", "id"),
            ({"metadata[order_id]": "x" * 501}, "invalid_metadata", "metadata[order_id]"),
            ({"metadata[" + "k" * 41 + "]": "v"}, "invalid_metadata", "metadata[" + "k" * 41 + "]"),
            ({"description": "d" * 1001}, "parameter_too_long", "description"),
        ]
        for change, code, param in cases:
            with self.subTest(code=code, param=param):
                pairs = dict(base)
                pairs.update(change)
                resp = self.post_form(form(pairs.items()), h.new_key())
                self.assert_error(resp, 400, code, "invalid_request_error", param)
                self.assert_sdk_headers(resp, "false")
        missing = self.post_form(form([p for p in CHARGE_FORM if p[0] != "amount"]), h.new_key())
        self.assert_error(missing, 400, "parameter_missing", param="amount")
        self.assertEqual(self.counts(self.user), (0, 0, 0))

    def test_hostile_forms_get_a_clear_400(self):
        """Duplicated, malformed, too deep and too many form fields are 400 invalid_form; oversized is 413"""
        ok = form(CHARGE_FORM)
        cases = [
            (ok + "&amount=3000", "amount"),
            (ok + "&metadata[order_id]=1", "metadata[order_id]"),
            (ok + "&amount[x]=1", "amount[x]"),
            (ok + "&metadata=x", "metadata"),
            (ok + "&e[0]=a&e[2]=b", "e[2]"),
            (ok + "&d%ZZ=1", None),
            (ok + "&description=%E2%82", "description"),
            (ok + "&description=a%00b", "description"),
            (ok + "&a[b][c][d][e][f]=1", "a[b][c][d][e][f]"),
            (ok + "&a[b=1", "a[b"),
            (ok + "&=1", None),
            (ok + "&" + "n" * 300 + "=1", None),
            (ok + "".join("&f%d=1" % i for i in range(1100)), None),
        ]
        for body, param in cases:
            with self.subTest(body=body[-40:]):
                resp = self.post_form(body, h.new_key())
                self.assert_error(resp, 400, "invalid_form", "invalid_request_error", param)
                self.assert_sdk_headers(resp, "false")
        resp = self.post_form(ok + "&description=" + "x" * (64 * 1024), h.new_key())
        self.assert_error(resp, 413, "body_too_large")
        self.assertEqual(self.counts(self.user), (0, 0, 0))
        self.assertEqual(self.get("/healthz").status, 200)

    def test_form_refund_and_webhook_endpoint(self):
        """Refunds and webhook endpoints take forms too, arrays as [N] or []"""
        charge = self.assert_json_response(self.post_form(form(CHARGE_FORM), h.new_key()), 201)
        resp = self.post_form(form([("charge", charge["id"]), ("amount", "500"),
                                    ("metadata[ticket]", "42")]), h.new_key(), path="/v1/refunds")
        refund = self.assert_json_response(resp, 201)
        self.assertEqual((refund["amount"], refund["metadata"]), (500, {"ticket": "42"}))
        for events in ([("enabled_events[0]", "charge.succeeded"), ("enabled_events[1]", "charge.failed")],
                       [("enabled_events[]", "charge.succeeded"), ("enabled_events[]", "charge.failed")]):
            resp = self.post_form(form([("url", "https://8.8.8.8/hooks")] + events),
                                  path="/v1/webhook_endpoints")
            obj = self.assert_json_response(resp, 201)
            self.assertEqual(obj["enabled_events"], ["charge.succeeded", "charge.failed"])
        resp = self.post_form(form([("url", "https://8.8.8.8/hooks"), ("enabled_events[0]", "*"),
                                    ("enabled_events[1]", "nope")]), path="/v1/webhook_endpoints")
        self.assert_error(resp, 400, "parameter_invalid", param="enabled_events[1]")

    def test_sdk_headers_on_every_answer(self):
        """Every answer has Request-Id and Stripe-Version; a Stripe-Version request header is accepted"""
        resp = self.get("/v1/charges", self.key, {"Stripe-Version": "2026-11-18.endive"})
        self.assert_json_response(resp, 200)
        self.assert_sdk_headers(resp)
        resp = self.get("/v1/charges", self.key, {"X-Request-Id": "trace-1"})
        self.assertEqual((resp.header("X-Request-Id"), resp.header("Request-Id")), ("trace-1", "trace-1"))
        for resp, status in ((self.get("/healthz"), 200), (self.get("/v1/nope", self.key), 404),
                             (self.get("/v1/charges", "sk_test_" + "x" * 44), 401),
                             (self.server.request("DELETE", "/v1/charges", None, {}), 405)):
            self.assertEqual(resp.status, status)
            self.assertEqual(resp.header("Request-Id"), resp.header("X-Request-Id"))
            self.assertEqual(resp.header("Stripe-Version"), "2024-06-20")
            self.assertEqual(resp.header("Stripe-Should-Retry"), None if status < 400 else "false")
        resp = self.post_form(form(CHARGE_FORM[:2] + [("source", "tok_chargeDeclined")]), h.new_key())
        self.assert_error(resp, 402, "card_declined", "card_error")
        self.assert_sdk_headers(resp, "false")
        resp = self.post_form(form(CHARGE_FORM), h.new_key(), content_type="text/plain")
        self.assert_error(resp, 415, "unsupported_media_type")
        self.assert_sdk_headers(resp, "false")
        raw = self.server.raw(b"GET /v1/charges HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        self.assertGreaterEqual(raw.status, 400)
        self.assertEqual(raw.header("Request-Id"), raw.header("X-Request-Id"))
        self.assertEqual(raw.header("Stripe-Should-Retry"), "false")


class RateLimitedFormTest(h.ServiceTestCase):
    server_env = {"PAYMENTS_RATE_LIMIT": "1", "PAYMENTS_RATE_BURST": "1"}

    def test_429_says_retry(self):
        """A 429 says Stripe-Should-Retry: true, with Retry-After"""
        _, key = self.make_user("form")
        answers = [self.get("/v1/charges", key) for _ in range(3)]
        limited = [r for r in answers if r.status == 429]
        self.assertTrue(limited, "three requests at once were never limited")
        self.assert_error(limited[0], 429, "rate_limited", "rate_limit_error")
        self.assertEqual(limited[0].header("Stripe-Should-Retry"), "true")
        self.assertIsNotNone(limited[0].header("Retry-After"))
