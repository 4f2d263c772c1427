"""test_access_log.py - one JSON line per request on stderr, and no secrets in it."""

import json
import secrets

import harness as h


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class AccessLogTest(h.ServiceTestCase):

    def log_records(self):
        records = []
        for line in self.server.log_lines():
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail("stderr line is not JSON: %r" % line)
        return records

    def request_lines(self, rid):
        return [r for r in self.log_records() if r.get("msg") == "request" and r.get("request_id") == rid]

    def wait_for_line(self, rid):
        # The line is written after the response is sent: wait for it, boundedly.
        h.poll(lambda: self.request_lines(rid), message="the access log line of %s" % rid)
        return self.request_lines(rid)

    def test_one_json_line_per_request(self):
        """Each request writes exactly one JSON line with request_id, user, status and duration"""
        user, key = self.make_user("logger")
        tag = secrets.token_hex(4)
        auth = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        cases = [
            ("log-%s-201" % tag, "POST", "/v1/charges", h.charge_body(), dict(auth, **{"Idempotency-Key": h.new_key()}), 201, user),
            ("log-%s-402" % tag, "POST", "/v1/charges", h.charge_body(source="tok_chargeDeclined"),
             dict(auth, **{"Idempotency-Key": h.new_key()}), 402, user),
            ("log-%s-400" % tag, "POST", "/v1/charges", h.charge_body(amount=0),
             dict(auth, **{"Idempotency-Key": h.new_key()}), 400, user),
            ("log-%s-401" % tag, "POST", "/v1/charges", h.charge_body(), {"Content-Type": "application/json"}, 401, None),
            ("log-%s-404" % tag, "GET", "/v1/nope", None, {}, 404, None),
            ("log-%s-200" % tag, "GET", "/healthz", None, {}, 200, None),
        ]
        for rid, method, path, body, headers, status, _ in cases:
            resp = self.server.request(method, path, body, dict(headers, **{"X-Request-Id": rid}))
            self.assertEqual(resp.status, status, resp)
        for rid, method, path, _, _, status, who in cases:
            self.wait_for_line(rid)
        for rid, method, path, _, _, status, who in cases:
            lines = self.request_lines(rid)
            self.assertEqual(len(lines), 1, "%s: %d lines" % (rid, len(lines)))
            rec = lines[0]
            self.assertEqual(rec["request_id"], rid)
            self.assertEqual(rec.get("status"), status, rec)
            self.assertIn("user", rec, rec)
            self.assertEqual(rec["user"], who, rec)
            self.assertEqual(rec.get("method"), method, rec)
            self.assertEqual(rec.get("path"), path, rec)
            durations = [k for k in rec if k.startswith("duration")]
            self.assertEqual(len(durations), 1, rec)
            self.assertIsInstance(rec[durations[0]], int)
            self.assertGreaterEqual(rec[durations[0]], 0)
            self.assertIsInstance(rec.get("ts"), str)
            self.assertIsInstance(rec.get("level"), str)

    def test_no_secrets_in_the_log(self):
        """The API key, bearer tokens and card tokens never appear in the log"""
        user, key = self.make_user("secretive")
        bogus_key = "sk_test_" + secrets.token_hex(22)
        bogus_token = "tok_" + secrets.token_hex(8)
        auth = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        rids = []
        for source in ("tok_visa", "tok_mastercard", "tok_amex", "tok_chargeDeclined",
                       "tok_chargeDeclinedInsufficientFunds", bogus_token):
            rid = "nosecret-" + secrets.token_hex(6)
            rids.append(rid)
            self.server.request("POST", "/v1/charges", h.charge_body(source=source),
                                dict(auth, **{"Idempotency-Key": h.new_key(), "X-Request-Id": rid}))
        for value in ("Bearer " + bogus_key, "Bearer not-a-key-" + bogus_token, "Basic " + key):
            rid = "nosecret-" + secrets.token_hex(6)
            rids.append(rid)
            resp = self.server.request("POST", "/v1/charges", h.charge_body(),
                                       {"Authorization": value, "Content-Type": "application/json",
                                        "Idempotency-Key": h.new_key(), "X-Request-Id": rid})
            self.assertEqual(resp.status, 401)
        self.assertEqual(self.server.request("GET", "/v1/charges/ch_" + "a" * 24, None,
                                             {"Authorization": "Bearer " + key}).status, 404)
        for rid in rids:
            self.wait_for_line(rid)
        log = self.server.log()
        for secret in (key, key[8:], key[-32:], bogus_key, bogus_token, "Bearer", "tok_visa",
                       "tok_mastercard", "tok_amex", "tok_chargeDeclined"):
            self.assertNotIn(secret, log, "%r appears in the log" % secret)

    def test_request_refused_by_the_http_parser_is_logged(self):
        """A request the HTTP layer refuses (a control character in a header) is logged too, under the request id it was answered with"""
        resp = self.server.request("POST", "/v1/charges", h.charge_body(), {
            "Content-Type": "application/json", "Idempotency-Key": "a\x01b"})
        self.assertEqual(resp.status, 400)
        rid = resp.header("X-Request-Id")
        self.assertTrue(rid, "no X-Request-Id on %r" % (resp,))
        h.poll(lambda: [r for r in self.log_records() if r.get("request_id") == rid],
               timeout=3, message="a log line with request_id %s" % rid)
        lines = [r for r in self.log_records() if r.get("request_id") == rid]
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0].get("status"), 400, lines[0])
