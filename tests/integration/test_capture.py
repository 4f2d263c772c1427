"""test_capture.py - authorize now, capture later: POST /v1/charges with capture=false,
POST /v1/charges/{id}/capture, refunds that release an authorization.

Every case checks the status, the body and the rows in PostgreSQL: the charge's captured
columns, the idempotency key and the outbox events.
"""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import new_key, run_concurrently, sql_literal  # noqa: E402

FORM = "application/x-www-form-urlencoded"


def setUpModule():
    harness.setup_module(__name__)


def tearDownModule():
    harness.teardown_module(__name__)


class CaptureTestCase(harness.ServiceTestCase):
    """Helpers: authorizations, captures and the rows behind them."""

    server_env = {"PAYMENTS_RATE_LIMIT": "0"}

    def db_json(self, sql):
        return json.loads(self.db.query(
            "SELECT coalesce(json_agg(t), '[]')::text FROM (%s) t" % sql))

    def authorize(self, key, amount=1000, **extra):
        """Creates an uncaptured charge that must succeed; returns its object."""
        body = harness.charge_body(amount=amount, capture=False, **extra)
        resp = self.post_charge(key, body, new_key())
        obj = self.assert_json_response(resp, 201)
        self.assert_charge_object(obj, body)
        return obj

    def post_capture(self, key, charge_id, body=None, idem=Ellipsis, content_type="application/json"):
        if idem is Ellipsis:
            idem = new_key()
        return self.post_charge(key, body if body is not None else {}, idem,
                                path="/v1/charges/%s/capture" % charge_id, content_type=content_type)

    def charge_row(self, charge_id):
        return self.db_json(
            "SELECT captured, amount_captured, amount_refunded, released_at IS NOT NULL AS released,"
            " release_reason FROM charges WHERE id = %s" % sql_literal(charge_id))[0]

    def event_types(self, charge_id):
        return [e["type"] for e in self.db_json(
            "SELECT type FROM outbox_events WHERE charge_id = %s ORDER BY seq" % sql_literal(charge_id))]

    def event_data(self, charge_id, type_):
        rows = self.db_json("SELECT data FROM outbox_events WHERE charge_id = %s AND type = %s"
                            % (sql_literal(charge_id), sql_literal(type_)))
        self.assertEqual(len(rows), 1, "one %s event" % type_)
        return rows[0]["data"]


class AuthorizeTest(CaptureTestCase):
    """POST /v1/charges with capture=false only authorizes."""

    def test_capture_false_succeeds_uncaptured_with_a_charge_succeeded_event(self):
        """capture=false answers 201 with captured false and amount_captured 0, stores it, and emits charge.succeeded with captured false"""
        user, key = self.make_user()
        obj = self.authorize(key, amount=1500)
        self.assertIs(obj["captured"], False)
        self.assertEqual(obj["amount_captured"], 0)
        self.assertEqual(self.charge_row(obj["id"]),
                         {"captured": False, "amount_captured": 0, "amount_refunded": 0,
                          "released": False, "release_reason": None})
        self.assertEqual(self.event_types(obj["id"]), ["charge.succeeded"])
        self.assertEqual(self.event_data(obj["id"], "charge.succeeded"), obj)
        got = self.assert_json_response(self.get("/v1/charges/" + obj["id"], key), 200)
        self.assertEqual(got, obj)

    def test_default_and_capture_true_capture_the_whole_amount(self):
        """Without capture, or with capture true, the charge is captured in full"""
        user, key = self.make_user()
        for extra in ({}, {"capture": True}, {"capture": None}):
            with self.subTest(extra=extra):
                body = harness.charge_body(amount=700, **extra)
                obj = self.assert_json_response(self.post_charge(key, body, new_key()), 201)
                self.assert_charge_object(obj, body)
                self.assertEqual((obj["captured"], obj["amount_captured"]), (True, 700))

    def test_a_declined_charge_is_not_captured(self):
        """A declined charge with capture=false is stored failed and uncaptured"""
        user, key = self.make_user()
        resp = self.post_charge(key, harness.charge_body(source="tok_chargeDeclined", capture=False),
                                new_key())
        err = self.assert_error(resp, 402, "card_declined")
        got = self.assert_json_response(self.get("/v1/charges/" + err["charge"], key), 200)
        self.assertEqual((got["captured"], got["amount_captured"], got["refunded"]), (False, 0, False))

    def test_form_capture_false_is_the_json_boolean(self):
        """A form's capture=false authorizes and fingerprints as the JSON false: a JSON retry replays"""
        user, key = self.make_user()
        idem = new_key()
        form = urllib.parse.urlencode({"amount": "900", "currency": "usd", "source": "tok_visa",
                                       "capture": "false"})
        first = self.assert_json_response(self.post_charge(key, form, idem, content_type=FORM), 201)
        self.assertEqual((first["captured"], first["amount_captured"]), (False, 0))
        again = self.post_charge(key, {"amount": 900, "currency": "usd", "source": "tok_visa",
                                       "capture": False}, idem)
        self.assertEqual(again.status, 201)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.json(), first)

    def test_capture_of_the_wrong_type_is_refused(self):
        """capture must be a boolean: a string, a number or a form's 'yes' answer 400 parameter_invalid_type"""
        user, key = self.make_user()
        for value in ("false", 0, 1, "yes"):
            with self.subTest(value=value):
                resp = self.post_charge(key, harness.charge_body(capture=value), new_key())
                self.assert_error(resp, 400, "parameter_invalid_type", param="capture")
        form = urllib.parse.urlencode({"amount": "900", "currency": "usd", "source": "tok_visa",
                                       "capture": "yes"})
        self.assert_error(self.post_charge(key, form, new_key(), content_type=FORM), 400,
                          "parameter_invalid_type", param="capture")
        self.assertEqual(self.counts(user)[0], 0)


class CaptureTest(CaptureTestCase):
    """POST /v1/charges/{id}/capture: the capture, its event, its key, its refusals."""

    def test_capture_in_full_answers_200_and_emits_charge_captured(self):
        """A capture without amount answers 200 with the charge captured in full, stores it and its key, and emits charge.captured"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1200)
        idem = new_key()
        resp = self.post_capture(key, auth["id"], idem=idem)
        obj = self.assert_json_response(resp, 200)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertEqual(obj, dict(auth, captured=True, amount_captured=1200))
        self.assertEqual(self.charge_row(auth["id"]),
                         {"captured": True, "amount_captured": 1200, "amount_refunded": 0,
                          "released": False, "release_reason": None})
        self.assertEqual(self.event_types(auth["id"]), ["charge.succeeded", "charge.captured"])
        self.assertEqual(self.event_data(auth["id"], "charge.captured"), obj)
        self.assertEqual(self.db.query(
            "SELECT status_code || '|' || object_id FROM idempotency_keys WHERE user_id = %s AND key = %s"
            % (sql_literal(user), sql_literal(idem))), "200|" + auth["id"])
        self.assertEqual(self.assert_json_response(self.get("/v1/charges/" + auth["id"], key), 200), obj)

    def test_partial_capture_takes_the_amount_and_releases_the_rest(self):
        """A capture of 600 of 1000 captures 600; refunds are then bounded by 600"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)
        obj = self.assert_json_response(self.post_capture(key, auth["id"], {"amount": 600}), 200)
        self.assertEqual((obj["captured"], obj["amount_captured"], obj["amount"]), (True, 600, 1000))

    def test_a_retry_replays_byte_for_byte_and_another_body_conflicts(self):
        """The same key and body replay the stored answer byte for byte; another body with the key is 409"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)
        idem = new_key()
        first = self.post_capture(key, auth["id"], {"amount": 500}, idem=idem)
        self.assertEqual(first.status, 200)
        again = self.post_capture(key, auth["id"], {"amount": 500}, idem=idem)
        self.assertEqual((again.status, again.body), (200, first.body))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assert_error(self.post_capture(key, auth["id"], {"amount": 400}, idem=idem), 409,
                          "idempotency_key_reused")
        other = self.authorize(key, amount=1000)
        self.assert_error(self.post_capture(key, other["id"], {"amount": 500}, idem=idem), 409,
                          "idempotency_key_reused")
        self.assertEqual(self.event_types(auth["id"]), ["charge.succeeded", "charge.captured"])

    def test_form_bodies_and_an_empty_body_capture(self):
        """A form amount, an empty form and an empty JSON body all capture"""
        user, key = self.make_user()
        a, b, c = (self.authorize(key, amount=1000) for _ in range(3))
        obj = self.assert_json_response(self.post_capture(key, a["id"], "amount=300", content_type=FORM), 200)
        self.assertEqual(obj["amount_captured"], 300)
        obj = self.assert_json_response(self.post_capture(key, b["id"], "", content_type=FORM), 200)
        self.assertEqual(obj["amount_captured"], 1000)
        obj = self.assert_json_response(self.post_capture(key, c["id"], ""), 200)
        self.assertEqual(obj["amount_captured"], 1000)

    def test_refusals_answer_their_errors_and_store_nothing(self):
        """Already captured, failed, too large, unknown, another user's, malformed: each its error, no key, no event"""
        user, key = self.make_user()
        _, other_key = self.make_user()
        captured = self.assert_json_response(self.post_charge(key, harness.charge_body(), new_key()), 201)
        resp = self.post_charge(key, harness.charge_body(source="tok_chargeDeclined", capture=False), new_key())
        failed = self.assert_error(resp, 402, "card_declined")["charge"]
        auth = self.authorize(key, amount=1000)
        before = self.counts(user)
        self.assert_error(self.post_capture(key, captured["id"]), 400, "charge_already_captured")
        self.assert_error(self.post_capture(key, failed), 400, "charge_not_capturable")
        self.assert_error(self.post_capture(key, auth["id"], {"amount": 1001}), 400,
                          "amount_too_large", param="amount")
        self.assert_error(self.post_capture(key, "ch_" + "A" * 24), 404, "resource_missing", param="id")
        self.assert_error(self.post_capture(other_key, auth["id"]), 404, "resource_missing", param="id")
        self.assert_error(self.post_capture(key, "ch_bad"), 404, "resource_missing", param="id")
        self.assert_error(self.post_capture(key, auth["id"], {"amount": 0}), 400, "amount_too_small",
                          param="amount")
        self.assert_error(self.post_capture(key, auth["id"], {"amount_to_capture": 5}), 400,
                          "parameter_unknown", param="amount_to_capture")
        self.assert_error(self.post_capture(key, auth["id"], idem=None), 400, "idempotency_key_missing")
        self.assertEqual(self.counts(user), before)
        self.assertEqual(self.charge_row(auth["id"])["captured"], False)
        self.assert_json_response(self.post_capture(key, auth["id"]), 200)
        self.assert_error(self.post_capture(key, auth["id"]), 400, "charge_already_captured")

    def test_twenty_concurrent_captures_exactly_one_wins(self):
        """20 concurrent captures of one authorization, each with its own key: one 200, nineteen charge_already_captured, one event"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)
        results = run_concurrently(20, lambda i: self.post_capture(key, auth["id"], {"amount": 100 + i}))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        ok = [r for r in results if r.status == 200]
        self.assertEqual(len(ok), 1, [r.status for r in results])
        for r in results:
            if r.status != 200:
                self.assert_error(r, 400, "charge_already_captured")
        won = ok[0].json()["amount_captured"]
        self.assertEqual(self.charge_row(auth["id"])["amount_captured"], won)
        self.assertEqual(self.event_types(auth["id"]), ["charge.succeeded", "charge.captured"])
        self.assertEqual(int(self.db.query(
            "SELECT count(*) FROM idempotency_keys WHERE user_id = %s AND object_id = %s"
            " AND status_code = 200" % (sql_literal(user), sql_literal(auth["id"])))), 1,
            "only the winning capture stored its key")

    def test_twenty_concurrent_retries_with_one_key_capture_once(self):
        """20 concurrent captures with one Idempotency-Key and body: one capture, every 200 is the same bytes, the rest 409 in use"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)
        idem = new_key()
        results = run_concurrently(20, lambda i: self.post_capture(key, auth["id"], {"amount": 400},
                                                                   idem=idem))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        ok = [r for r in results if r.status == 200]
        self.assertGreaterEqual(len(ok), 1)
        self.assertEqual({r.body for r in ok}, {ok[0].body})
        self.assertEqual(sum(1 for r in ok if r.header("Idempotent-Replayed") == "false"), 1)
        for r in results:
            if r.status != 200:
                self.assert_error(r, 409, "idempotency_key_in_use")
        self.assertEqual(self.event_types(auth["id"]), ["charge.succeeded", "charge.captured"])
        self.assertEqual(self.charge_row(auth["id"])["amount_captured"], 400)


class ReleaseTest(CaptureTestCase):
    """A refund of an uncaptured charge releases it; refunds never exceed what was captured."""

    def post_refund(self, key, body):
        return self.post_charge(key, body, new_key(), path="/v1/refunds")

    def test_a_refund_of_an_uncaptured_charge_releases_it(self):
        """A refund of an authorization answers 201 for the whole amount, marks it refunded and released, emits charge.refunded, and then no capture is possible"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=800)
        refund = self.assert_json_response(self.post_refund(key, {"charge": auth["id"]}), 201)
        self.assertEqual(refund["amount"], 800)
        got = self.assert_json_response(self.get("/v1/charges/" + auth["id"], key), 200)
        self.assertEqual((got["refunded"], got["captured"], got["amount_captured"], got["amount_refunded"],
                          got["release_reason"]), (True, False, 0, 800, "refunded"))
        self.assertIsInstance(got["released_at"], int)
        self.assertEqual(self.event_types(auth["id"]),
                         ["charge.succeeded", "refund.created", "charge.refunded"])
        self.assertEqual(self.event_data(auth["id"], "charge.refunded"), got)
        self.assert_error(self.post_capture(key, auth["id"]), 400, "charge_expired_for_capture")
        self.assert_error(self.post_refund(key, {"charge": auth["id"]}), 400, "charge_already_refunded")

    def test_a_partial_refund_of_an_uncaptured_charge_is_refused(self):
        """A refund of part of an authorization is 400 parameter_invalid (amount); the whole amount releases it"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=800)
        self.assert_error(self.post_refund(key, {"charge": auth["id"], "amount": 300}), 400,
                          "parameter_invalid", param="amount")
        self.assertEqual(self.charge_row(auth["id"])["released"], False)
        refund = self.assert_json_response(self.post_refund(key, {"charge": auth["id"], "amount": 800}), 201)
        self.assertEqual(refund["amount"], 800)

    def test_refunds_never_exceed_the_captured_amount(self):
        """After capturing 600 of 1000, a refund of 601 is amount_too_large, a full refund takes 600 and makes it refunded"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)
        self.assert_json_response(self.post_capture(key, auth["id"], {"amount": 600}), 200)
        self.assert_error(self.post_refund(key, {"charge": auth["id"], "amount": 601}), 400,
                          "amount_too_large", param="amount")
        self.assert_json_response(self.post_refund(key, {"charge": auth["id"], "amount": 100}), 201)
        refund = self.assert_json_response(self.post_refund(key, {"charge": auth["id"]}), 201)
        self.assertEqual(refund["amount"], 500)
        got = self.assert_json_response(self.get("/v1/charges/" + auth["id"], key), 200)
        self.assertEqual((got["amount_refunded"], got["amount_captured"], got["refunded"]), (600, 600, True))
        self.assert_error(self.post_refund(key, {"charge": auth["id"]}), 400, "charge_already_refunded")

    def test_concurrent_captures_and_releases_exactly_one_wins(self):
        """10 captures and 10 releasing refunds at once: either one capture wins (and at most one refund then refunds it) or one release wins and every capture is refused"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=1000)

        def call(i):
            if i % 2:
                return ("capture", self.post_capture(key, auth["id"]))
            return ("refund", self.post_charge(key, {"charge": auth["id"]}, new_key(), path="/v1/refunds"))
        results = run_concurrently(20, call)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        captures = [r for kind, r in results if kind == "capture" and r.status == 200]
        refunds = [r for kind, r in results if kind == "refund" and r.status == 201]
        row = self.charge_row(auth["id"])
        self.assertLessEqual(len(captures), 1)
        self.assertEqual(len(refunds), 1, [(k, r.status, r.body[:80]) for k, r in results])
        if captures:
            # The capture came first: the one refund refunded the captured amount.
            self.assertEqual((row["captured"], row["released"], row["amount_refunded"]), (True, False, 1000))
        else:
            self.assertEqual((row["captured"], row["release_reason"]), (False, "refunded"))
            for kind, r in results:
                if kind == "capture":
                    self.assert_error(r, 400, "charge_expired_for_capture")


class ExpiryTest(CaptureTestCase):
    """An authorization not captured within PAYMENTS_AUTHORIZATION_TTL is released by serve's sweep."""

    TTL_S = 2.0
    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_AUTHORIZATION_TTL": "2s",
                  "PAYMENTS_PURGE_INTERVAL": "50ms"}

    def wait_released(self, charge_id, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.charge_row(charge_id)
            if row["released"]:
                return row
            time.sleep(0.05)
        self.fail("%s was not released within %ss" % (charge_id, timeout))

    def test_an_authorization_past_its_ttl_expires_with_a_charge_expired_event(self):
        """Past the TTL the charge is released (expired), charge.expired is emitted, and capture and refund are refused"""
        user, key = self.make_user()
        auth = self.authorize(key, amount=900)
        row = self.wait_released(auth["id"])
        self.assertEqual((row["captured"], row["release_reason"], row["amount_refunded"]),
                         (False, "expired", 0))
        got = self.assert_json_response(self.get("/v1/charges/" + auth["id"], key), 200)
        self.assertEqual((got["release_reason"], got["refunded"], got["captured"]), ("expired", False, False))
        self.assertIsInstance(got["released_at"], int)
        self.assertEqual(self.event_types(auth["id"]), ["charge.succeeded", "charge.expired"])
        self.assertEqual(self.event_data(auth["id"], "charge.expired"), got)
        page = self.assert_json_response(self.get("/v1/events?type=charge.expired", key), 200)
        self.assertEqual([e["data"]["object"]["id"] for e in page["data"]], [auth["id"]])
        self.assertEqual(page["data"][0]["request"], {"id": None, "idempotency_key": None})
        self.assert_error(self.post_capture(key, auth["id"]), 400, "charge_expired_for_capture")
        self.assert_error(self.post_charge(key, {"charge": auth["id"]}, new_key(), path="/v1/refunds"),
                          400, "charge_expired_for_capture")

    def test_charges_captured_at_creation_and_captured_ones_never_expire(self):
        """A charge captured at creation, or captured before its TTL, is left alone by the sweep"""
        user, key = self.make_user()
        plain = self.assert_json_response(self.post_charge(key, harness.charge_body(), new_key()), 201)
        auth = self.authorize(key)
        self.assert_json_response(self.post_capture(key, auth["id"]), 200)
        probe = self.authorize(key)
        self.wait_released(probe["id"])
        for cid in (plain["id"], auth["id"]):
            row = self.charge_row(cid)
            self.assertEqual((row["captured"], row["released"]), (True, False))
            self.assertNotIn("charge.expired", self.event_types(cid))

    def test_captures_racing_the_expiry_exactly_one_wins_per_charge(self):
        """20 authorizations captured around the moment they expire: each is either captured or expired, never both, and its answer and events agree"""
        user, key = self.make_user()
        auths = [self.authorize(key, amount=500) for _ in range(20)]
        # Aim the captures at the TTL: the sweep runs every 50 ms from then on.
        time.sleep(max(0.0, self.TTL_S - 0.15))
        results = run_concurrently(20, lambda i: (time.sleep(0.015 * i),
                                                  self.post_capture(key, auths[i]["id"]))[1])
        outcomes = []
        for auth, resp in zip(auths, results):
            if isinstance(resp, BaseException):
                raise resp
            if resp.status != 200:
                self.assert_error(resp, 400, "charge_expired_for_capture")
            row = self.charge_row(auth["id"])
            types = self.event_types(auth["id"])
            if resp.status == 200:
                self.assertEqual((row["captured"], row["released"]), (True, False))
                self.assertEqual(types, ["charge.succeeded", "charge.captured"])
            else:
                self.assertEqual((row["captured"], row["release_reason"]), (False, "expired"))
                self.assertEqual(types, ["charge.succeeded", "charge.expired"])
            outcomes.append(resp.status)
        # Let the sweep pass once more: nothing captured is ever expired afterwards.
        time.sleep(0.3)
        for auth, status in zip(auths, outcomes):
            self.assertEqual(self.charge_row(auth["id"])["captured"], status == 200)


class CapturedFilterTest(CaptureTestCase):
    """GET /v1/charges?captured=true|false lists by the charge object's captured."""

    def test_captured_filter_lists_by_the_objects_captured(self):
        """captured=false lists authorizations (pending or released) and failed charges; captured=true the rest; pages keep the filter"""
        user, key = self.make_user()
        _, other_key = self.make_user()
        plain = self.assert_json_response(self.post_charge(key, harness.charge_body(), new_key()), 201)
        pending = self.authorize(key)
        captured_later = self.authorize(key)
        self.assert_json_response(self.post_capture(key, captured_later["id"]), 200)
        released = self.authorize(key)
        self.assert_json_response(self.post_charge(key, {"charge": released["id"]}, new_key(),
                                                   path="/v1/refunds"), 201)
        failed = self.assert_error(self.post_charge(key, harness.charge_body(source="tok_chargeDeclined"),
                                                    new_key()), 402, "card_declined")["charge"]
        self.authorize(other_key)

        def ids(query):
            page = self.assert_json_response(self.get("/v1/charges?" + query, key), 200)
            for obj in page["data"]:
                self.assertIs(obj["captured"], "captured=true" in query)
            return [c["id"] for c in page["data"]], page["has_more"]

        self.assertEqual(ids("captured=false"), ([failed, released["id"], pending["id"]], False))
        self.assertEqual(ids("captured=true"), ([captured_later["id"], plain["id"]], False))
        self.assertEqual(ids("captured=false&limit=2"), ([failed, released["id"]], True))
        self.assertEqual(ids("captured=false&limit=2&starting_after=" + released["id"]),
                         ([pending["id"]], False))
        for bad in ("yes", "1", "", "False"):
            with self.subTest(value=bad):
                self.assert_error(self.get("/v1/charges?captured=" + bad, key), 400,
                                  "parameter_invalid", param="captured")
