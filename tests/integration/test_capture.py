"""test_capture.py - authorize now, capture later: POST /v1/charges with capture=false,
POST /v1/charges/{id}/capture, refunds that release an authorization.

Every case checks the status, the body and the rows in PostgreSQL: the charge's captured
columns, the idempotency key and the outbox events.
"""

import json
import os
import sys
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
