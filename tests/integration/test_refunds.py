"""test_refunds.py - POST /v1/refunds, GET /v1/refunds/{id} and GET /v1/refunds?charge= over HTTP.

Every case checks the status, the body and the rows in PostgreSQL: refunds, the charge's
amount_refunded, idempotency keys and the outbox events refund.created and charge.refunded.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import new_key, run_concurrently, sql_literal  # noqa: E402

REFUND_ID_RE = re.compile(r"^re_[0-9A-Za-z]{24}$")
# The fields of a refund object, in the order the API renders them.
REFUND_FIELDS = ["id", "object", "amount", "charge", "currency", "metadata", "reason", "status",
                 "created"]
# Many requests per user in a few seconds: no rate limit gets in the way.
SERVER_ENV = {"PAYMENTS_RATE_LIMIT": "0"}


def setUpModule():
    harness.setup_module(__name__)


def tearDownModule():
    harness.teardown_module(__name__)


class RefundTestCase(harness.ServiceTestCase):
    """Helpers shared by the refund tests: charges, refunds and the rows behind them."""

    server_env = SERVER_ENV

    def db_json(self, sql):
        """The rows of sql as a list of dicts (through json_agg, so types survive)."""
        return json.loads(self.db.query(
            "SELECT coalesce(json_agg(t), '[]')::text FROM (%s) t" % sql))

    def make_charge(self, key, amount=1000, currency="usd"):
        body = harness.charge_body(amount=amount, currency=currency)
        resp = self.post_charge(key, body, new_key())
        return self.assert_json_response(resp, 201)

    def make_declined_charge(self, key, amount=1000):
        resp = self.post_charge(key, harness.charge_body(amount=amount, source="tok_chargeDeclined"),
                                new_key())
        err = self.assert_error(resp, 402, "card_declined")
        return err["charge"]

    def post_refund(self, key, body, idem=Ellipsis, headers=None):
        """POST /v1/refunds; idem defaults to a fresh key, None sends no Idempotency-Key."""
        if idem is Ellipsis:
            idem = new_key()
        return self.post_charge(key, body, idem, path="/v1/refunds", headers=headers)

    def refund(self, key, charge_id, amount=None, **extra):
        """Creates a refund that must succeed; returns (response, refund object)."""
        body = {"charge": charge_id}
        if amount is not None:
            body["amount"] = amount
        body.update(extra)
        resp = self.post_refund(key, body)
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        return resp, obj

    def assert_refund_object(self, obj, charge_id, amount, currency="usd", reason=None,
                             metadata=None):
        self.assertEqual(list(obj.keys()), REFUND_FIELDS, "refund fields in %r" % obj)
        self.assertRegex(obj["id"], REFUND_ID_RE)
        self.assertEqual(obj["object"], "refund")
        self.assertEqual(obj["amount"], amount)
        self.assertIsInstance(obj["amount"], int)
        self.assertEqual(obj["charge"], charge_id)
        self.assertEqual(obj["currency"], currency)
        self.assertEqual(obj["metadata"], metadata or {})
        self.assertEqual(obj["reason"], reason)
        self.assertEqual(obj["status"], "succeeded")
        self.assertIsInstance(obj["created"], int)
        self.assertLess(abs(obj["created"] - time.time()), 300, "created is not now")

    def amount_refunded(self, charge_id):
        return int(self.db.query("SELECT amount_refunded FROM charges WHERE id = %s"
                                 % sql_literal(charge_id)))

    def refund_rows(self, charge_id):
        return self.db_json(
            "SELECT id, user_id, charge_id, amount, currency, reason, metadata::text AS metadata,"
            " status, idempotency_key, request_id FROM refunds WHERE charge_id = %s"
            " ORDER BY created, id" % sql_literal(charge_id))

    def charge_events(self, charge_id):
        """The outbox events of a charge, in commit order, with data parsed."""
        return self.db_json(
            "SELECT id, user_id, type, object_id, charge_id, data, request_id, idempotency_key,"
            " published_at FROM outbox_events WHERE charge_id = %s ORDER BY seq"
            % sql_literal(charge_id))

    def user_rows(self, user):
        """(refunds, idempotency_keys, outbox_events) rows of user."""
        row = self.db.query(
            "SELECT (SELECT count(*) FROM refunds WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM idempotency_keys WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM outbox_events WHERE user_id = %(u)s)" % {"u": sql_literal(user)})
        return tuple(int(x) for x in row.split("|"))

    def assert_sum_matches(self, charge_id):
        """amount_refunded is the sum of the charge's refunds and at most its amount; returns it."""
        row = self.db.query(
            "SELECT c.amount, c.amount_refunded,"
            " (SELECT coalesce(sum(r.amount), 0) FROM refunds r WHERE r.charge_id = c.id)"
            " FROM charges c WHERE c.id = %s" % sql_literal(charge_id))
        amount, refunded, total = (int(x) for x in row.split("|"))
        self.assertEqual(refunded, total, "amount_refunded is not the sum of the refunds")
        self.assertLessEqual(refunded, amount, "refunded more than the charge")
        return refunded


class RefundCreateTest(RefundTestCase):
    """POST /v1/refunds: the refund, the charge's new totals, the events and the key."""

    def test_partial_refund_returns_the_refund_and_stores_every_row(self):
        """A partial refund answers 201 with the refund object and stores the refund, the charge's total, the key and two events"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        idem = new_key()
        body = {"charge": charge["id"], "amount": 300, "reason": "requested_by_customer",
                "metadata": {"ticket": "T-1", "agent": "ann"}}
        resp = self.post_refund(key, body, idem)
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assert_refund_object(obj, charge["id"], 300, reason="requested_by_customer",
                                  metadata={"ticket": "T-1", "agent": "ann"})
        self.assertIn(b'"metadata":{"ticket":"T-1","agent":"ann"}', resp.body,
                      "the client's metadata key order is kept")
        request_id = self.assert_request_id(resp)

        self.assertEqual(self.refund_rows(charge["id"]), [{
            "id": obj["id"], "user_id": user, "charge_id": charge["id"], "amount": 300,
            "currency": "usd", "reason": "requested_by_customer",
            "metadata": '{"ticket":"T-1","agent":"ann"}', "status": "succeeded",
            "idempotency_key": idem, "request_id": request_id}])
        self.assertEqual(self.amount_refunded(charge["id"]), 300)
        key_row = self.db_json(
            "SELECT status_code, response_body, object_id FROM idempotency_keys"
            " WHERE user_id = %s AND key = %s" % (sql_literal(user), sql_literal(idem)))
        self.assertEqual(key_row, [{"status_code": 201, "response_body": resp.body.decode(),
                                    "object_id": obj["id"]}])

        # The charge object shows the refund.
        got = self.assert_json_response(self.get("/v1/charges/" + charge["id"], key), 200)
        self.assertEqual(got["amount_refunded"], 300)
        self.assertIs(got["refunded"], False)

        # One refund.created and one charge.refunded, after the charge's own event.
        events = self.charge_events(charge["id"])
        self.assertEqual([e["type"] for e in events],
                         ["charge.succeeded", "refund.created", "charge.refunded"])
        created, refunded = events[1], events[2]
        self.assertEqual(created["object_id"], obj["id"])
        self.assertEqual(created["data"], obj)
        self.assertEqual(refunded["object_id"], charge["id"])
        self.assertEqual(refunded["data"], got)
        for e in (created, refunded):
            self.assertRegex(e["id"], harness.EVENT_ID_RE)
            self.assertEqual(e["user_id"], user)
            self.assertEqual(e["charge_id"], charge["id"])
            self.assertEqual(e["request_id"], request_id)
            self.assertEqual(e["idempotency_key"], idem)
        self.assertNotEqual(created["id"], refunded["id"])

    def test_partial_refunds_repeat_until_the_charge_is_refunded_in_full(self):
        """Partial refunds repeat until the charge is refunded in full; each charge.refunded event shows the running total"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        totals = []
        for amount in (300, 300, 399, 1):
            _, obj = self.refund(key, charge["id"], amount)
            self.assert_refund_object(obj, charge["id"], amount)
            totals.append((totals[-1] if totals else 0) + amount)
            self.assertEqual(self.amount_refunded(charge["id"]), totals[-1])
            got = self.assert_json_response(self.get("/v1/charges/" + charge["id"], key), 200)
            self.assertEqual(got["amount_refunded"], totals[-1])
            self.assertIs(got["refunded"], totals[-1] == 1000)
        self.assertEqual(totals[-1], 1000)
        self.assertEqual(self.assert_sum_matches(charge["id"]), 1000)
        events = [e for e in self.charge_events(charge["id"]) if e["type"] == "charge.refunded"]
        self.assertEqual([e["data"]["amount_refunded"] for e in events], [300, 600, 999, 1000])
        self.assertEqual([e["data"]["refunded"] for e in events], [False, False, False, True])
        self.assertEqual(len([e for e in self.charge_events(charge["id"])
                              if e["type"] == "refund.created"]), 4)

        # Nothing more can be refunded, with or without an amount.
        before = self.user_rows(user)
        self.assert_error(self.post_refund(key, {"charge": charge["id"], "amount": 1}), 400,
                          "charge_already_refunded", "invalid_request_error")
        self.assert_error(self.post_refund(key, {"charge": charge["id"]}), 400,
                          "charge_already_refunded", "invalid_request_error")
        self.assertEqual(self.user_rows(user), before, "a refused refund wrote rows")
        self.assertEqual(self.amount_refunded(charge["id"]), 1000)

    def test_refund_without_amount_refunds_what_is_left(self):
        """A refund without an amount refunds what is left of the charge"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000, currency="eur")
        self.refund(key, charge["id"], 250)
        _, obj = self.refund(key, charge["id"], reason="duplicate")
        self.assert_refund_object(obj, charge["id"], 750, currency="eur", reason="duplicate")
        self.assertEqual(self.assert_sum_matches(charge["id"]), 1000)
        got = self.assert_json_response(self.get("/v1/charges/" + charge["id"], key), 200)
        self.assertEqual((got["amount_refunded"], got["refunded"]), (1000, True))

    def test_refund_without_amount_of_a_fresh_charge_refunds_all_of_it(self):
        """A refund without an amount of an unrefunded charge refunds the whole amount"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=4321)
        _, obj = self.refund(key, charge["id"])
        self.assert_refund_object(obj, charge["id"], 4321)
        self.assertEqual(self.amount_refunded(charge["id"]), 4321)

    def test_refund_larger_than_what_is_left_is_refused_with_amount_too_large(self):
        """A refund larger than what is left is refused with 400 amount_too_large on param amount, and nothing is stored"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        before = self.user_rows(user)
        idem = new_key()
        err = self.assert_error(self.post_refund(key, {"charge": charge["id"], "amount": 1001}, idem),
                                400, "amount_too_large", "invalid_request_error", param="amount")
        self.assertIn("left", err["message"])
        self.assertEqual(self.user_rows(user), before)
        self.assertEqual(self.db.count("idempotency_keys", "key = %s" % sql_literal(idem)), 0)
        self.refund(key, charge["id"], 600)
        self.assert_error(self.post_refund(key, {"charge": charge["id"], "amount": 401}), 400,
                          "amount_too_large", param="amount")
        self.assertEqual(self.amount_refunded(charge["id"]), 600)
        self.assertEqual(len(self.refund_rows(charge["id"])), 1)
        # Exactly what is left is fine.
        self.refund(key, charge["id"], 400)
        self.assertEqual(self.assert_sum_matches(charge["id"]), 1000)

    def test_refund_of_a_declined_charge_is_refused(self):
        """A declined (failed) charge cannot be refunded: 400 charge_not_refundable, with or without an amount"""
        user, key = self.make_user()
        charge_id = self.make_declined_charge(key, amount=800)
        before = self.user_rows(user)
        for body in ({"charge": charge_id, "amount": 100}, {"charge": charge_id}):
            self.assert_error(self.post_refund(key, body), 400, "charge_not_refundable",
                              "invalid_request_error")
        self.assertEqual(self.user_rows(user), before)
        self.assertEqual(self.amount_refunded(charge_id), 0)

    def test_refund_of_another_users_charge_is_404(self):
        """Refunding another user's charge answers 404 resource_missing on param charge, as for a missing charge"""
        owner, owner_key = self.make_user("owner")
        user, key = self.make_user()
        charge = self.make_charge(owner_key, amount=1000)
        for body in ({"charge": charge["id"], "amount": 100}, {"charge": charge["id"]}):
            self.assert_error(self.post_refund(key, body), 404, "resource_missing",
                              "invalid_request_error", param="charge")
        self.assertEqual(self.user_rows(user), (0, 0, 0))
        self.assertEqual(self.amount_refunded(charge["id"]), 0)
        self.assertEqual(self.refund_rows(charge["id"]), [])

    def test_refund_of_a_missing_or_malformed_charge_is_404(self):
        """A charge id that is unknown, malformed or of another kind answers 404 on param charge"""
        user, key = self.make_user()
        for charge_id in ("ch_" + "0" * 24, "ch_nope", "ch_", "re_" + "A" * 24, "CH_" + "a" * 24):
            with self.subTest(charge=charge_id):
                self.assert_error(self.post_refund(key, {"charge": charge_id, "amount": 1}), 404,
                                  "resource_missing", param="charge")
        self.assertEqual(self.user_rows(user), (0, 0, 0))

    def test_refund_requires_an_idempotency_key(self):
        """POST /v1/refunds without an Idempotency-Key is refused with 400 and writes nothing"""
        user, key = self.make_user()
        charge = self.make_charge(key)
        self.assert_error(self.post_refund(key, {"charge": charge["id"]}, idem=None), 400,
                          "idempotency_key_missing")
        self.assert_error(self.post_refund(key, {"charge": charge["id"]}, idem="x" * 256), 400,
                          "idempotency_key_invalid")
        self.assertEqual(self.amount_refunded(charge["id"]), 0)
        self.assertEqual(self.db.count("refunds", "user_id = %s" % sql_literal(user)), 0)

    def test_invalid_bodies_are_refused_with_their_param(self):
        """Invalid refund bodies are refused with the right code and param, and write nothing"""
        user, key = self.make_user()
        charge = self.make_charge(key)
        cid = charge["id"]
        before = self.user_rows(user)
        cases = [
            ({"charge": cid, "amount": 0}, "amount_too_small", "amount"),
            ({"charge": cid, "amount": -5}, "amount_too_small", "amount"),
            ({"charge": cid, "amount": 100000000}, "amount_too_large", "amount"),
            ({"charge": cid, "amount": "100"}, "parameter_invalid_type", "amount"),
            ({"charge": cid, "amount": 1.5}, "parameter_invalid_type", "amount"),
            ({"charge": cid, "reason": "changed_my_mind"}, "parameter_invalid", "reason"),
            ({"charge": cid, "reason": 7}, "parameter_invalid_type", "reason"),
            ({"charge": cid, "metadata": {"a": 1}}, "invalid_metadata", "metadata"),
            ({"charge": cid, "currency": "usd"}, "parameter_unknown", "currency"),
            ({"charge": cid, "status": "succeeded"}, "parameter_unknown", "status"),
            ({"charge": cid, "id": "re_" + "0" * 24}, "parameter_unknown", "id"),
            ({"amount": 100}, "parameter_missing", "charge"),
            ({"charge": 42}, "parameter_invalid_type", "charge"),
        ]
        for body, code, param in cases:
            with self.subTest(body=body):
                self.assert_error(self.post_refund(key, body), 400, code, "invalid_request_error",
                                  param=param)
        self.assert_error(self.post_refund(key, '{"charge": "%s",' % cid), 400, "invalid_json")
        resp = self.post_charge(key, {"charge": cid}, new_key(), path="/v1/refunds",
                                content_type="text/plain")
        self.assert_error(resp, 415, "unsupported_media_type")
        resp = self.post_charge(None, {"charge": cid}, new_key(), path="/v1/refunds")
        self.assert_error(resp, 401, "api_key_missing")
        self.assertEqual(self.user_rows(user), before, "a refused request wrote rows")
        self.assertEqual(self.amount_refunded(cid), 0)


class RefundIdempotencyTest(RefundTestCase):
    """Replays, reused keys and concurrent requests with the same key."""

    def test_replay_is_byte_for_byte_and_writes_nothing(self):
        """A retry with the same key and body replays the first response byte for byte, with Idempotent-Replayed: true, and writes nothing"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        idem = new_key()
        body = {"charge": charge["id"], "amount": 300, "reason": "fraudulent",
                "metadata": {"b": "2", "a": "1"}}
        first = self.post_refund(key, body, idem)
        self.assert_json_response(first, 201)
        rows = self.user_rows(user)
        # Another refund changes the charge in between: the replay still shows the first answer.
        self.refund(key, charge["id"], 100)
        rows_after_second = self.user_rows(user)
        self.assertEqual(rows_after_second, (rows[0] + 1, rows[1] + 1, rows[2] + 2))
        same_body_reordered = ('{ "metadata": {"b": "2", "a": "1"}, "reason": "fraudulent",\n'
                               '  "amount": 300, "charge": "%s" }' % charge["id"])
        for replay_body in (body, same_body_reordered):
            replay = self.post_refund(key, replay_body, idem)
            self.assert_json_response(replay, 201)
            self.assertEqual(replay.header("Idempotent-Replayed"), "true")
            self.assertEqual(replay.body, first.body, "the replay is not byte for byte")
            self.assertNotEqual(replay.header("X-Request-Id"), first.header("X-Request-Id"))
        self.assertEqual(self.user_rows(user), rows_after_second, "a replay wrote rows")
        self.assertEqual(self.amount_refunded(charge["id"]), 400)

    def test_same_key_with_a_different_body_is_409(self):
        """The same key with a different body answers 409 idempotency_key_reused and writes nothing"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        idem = new_key()
        self.assert_json_response(self.post_refund(key, {"charge": charge["id"], "amount": 300}, idem), 201)
        rows = self.user_rows(user)
        for body in ({"charge": charge["id"], "amount": 301},
                     {"charge": charge["id"]},
                     {"charge": charge["id"], "amount": 300, "reason": "duplicate"}):
            with self.subTest(body=body):
                self.assert_error(self.post_refund(key, body, idem), 409, "idempotency_key_reused",
                                  "idempotency_error")
        self.assertEqual(self.user_rows(user), rows)
        self.assertEqual(self.amount_refunded(charge["id"]), 300)

    def test_a_charges_key_cannot_be_reused_for_a_refund(self):
        """A key already used to create a charge answers 409 when reused for a refund"""
        user, key = self.make_user()
        idem = new_key()
        resp = self.post_charge(key, harness.charge_body(amount=1000), idem)
        charge = self.assert_json_response(resp, 201)
        self.assert_error(self.post_refund(key, {"charge": charge["id"]}, idem), 409,
                          "idempotency_key_reused")
        self.assertEqual(self.amount_refunded(charge["id"]), 0)

    def test_keys_are_per_user(self):
        """Two users may use the same key for their own refunds"""
        a, key_a = self.make_user()
        b, key_b = self.make_user()
        charge_a = self.make_charge(key_a, amount=500)
        charge_b = self.make_charge(key_b, amount=700)
        idem = new_key()
        ra = self.assert_json_response(self.post_refund(key_a, {"charge": charge_a["id"]}, idem), 201)
        rb = self.assert_json_response(self.post_refund(key_b, {"charge": charge_b["id"]}, idem), 201)
        self.assertEqual((ra["amount"], rb["amount"]), (500, 700))
        self.assertNotEqual(ra["id"], rb["id"])

    def test_concurrent_requests_with_the_same_key_create_one_refund(self):
        """Ten concurrent refunds with the same key create exactly one refund; the others replay it"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        idem = new_key()
        body = {"charge": charge["id"], "amount": 100}
        results = run_concurrently(10, lambda i: self.post_refund(key, body, idem))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        created = [r for r in results if r.status == 201]
        in_use = [r for r in results if r.status == 409]
        self.assertEqual(len(created) + len(in_use), 10, "unexpected statuses %r" % results)
        for r in in_use:
            self.assert_error(r, 409, "idempotency_key_in_use")
        self.assertGreaterEqual(len(created), 1)
        self.assertEqual({r.body for r in created}, {created[0].body},
                         "concurrent same-key responses differ")
        self.assertEqual(sorted(r.header("Idempotent-Replayed") for r in created),
                         ["false"] + ["true"] * (len(created) - 1))
        self.assertEqual(len(self.refund_rows(charge["id"])), 1)
        self.assertEqual(self.amount_refunded(charge["id"]), 100)
        self.assertEqual(self.user_rows(user), (1, 2, 3))


class RefundConcurrencyTest(RefundTestCase):
    """Refunds with different keys racing for one charge never refund more than its amount."""

    def check_race_outcome(self, charge_id, amount, results, already=0):
        """
        Every response is a 201 or a 400 refusal, and already + the 201s' amounts is
        amount_refunded <= amount. Returns (that total, the refusals' codes).
        """
        granted = already
        refused = []
        for r in results:
            if isinstance(r, BaseException):
                raise r
            if r.status == 201:
                obj = r.json()
                self.assert_refund_object(obj, charge_id, obj["amount"])
                granted += obj["amount"]
            else:
                body = self.assert_json_response(r, 400)
                refused.append(body["error"]["code"])
        self.assertEqual(self.assert_sum_matches(charge_id), granted)
        self.assertLessEqual(granted, amount)
        events = self.charge_events(charge_id)
        n_refunds = len(self.refund_rows(charge_id))
        self.assertEqual(len([e for e in events if e["type"] == "refund.created"]), n_refunds)
        totals = sorted(e["data"]["amount_refunded"] for e in events if e["type"] == "charge.refunded")
        self.assertEqual(len(totals), n_refunds)
        self.assertEqual(len(set(totals)), n_refunds, "two charge.refunded events show the same total")
        self.assertEqual(totals[-1] if totals else 0, granted)
        return granted, refused

    def test_twenty_concurrent_partial_refunds_never_exceed_the_amount(self):
        """20 concurrent refunds of 70 with different keys against a charge of 1000: 14 succeed, 6 get amount_too_large, 980 refunded"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        results = run_concurrently(
            20, lambda i: self.post_refund(key, {"charge": charge["id"], "amount": 70}))
        granted, refused = self.check_race_outcome(charge["id"], 1000, results)
        self.assertEqual(granted, 980)
        self.assertEqual(refused, ["amount_too_large"] * 6)
        got = self.assert_json_response(self.get("/v1/charges/" + charge["id"], key), 200)
        self.assertEqual((got["amount_refunded"], got["refunded"]), (980, False))

    def test_concurrent_refunds_of_the_rest_refund_the_charge_once(self):
        """Ten concurrent refunds without an amount: one refunds everything, the others get charge_already_refunded"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        self.refund(key, charge["id"], 100)
        results = run_concurrently(10, lambda i: self.post_refund(key, {"charge": charge["id"]}))
        granted, refused = self.check_race_outcome(charge["id"], 1000, results, already=100)
        self.assertEqual(granted, 1000)
        self.assertEqual([r.json()["amount"] for r in results if r.status == 201], [900])
        self.assertEqual(refused, ["charge_already_refunded"] * 9)

    def test_concurrent_partial_and_full_refunds_never_exceed_the_amount(self):
        """Concurrent refunds of 150 and of the rest, mixed, never refund more than the charge"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)

        def one(i):
            body = {"charge": charge["id"]}
            if i % 3:
                body["amount"] = 150
            return self.post_refund(key, body)

        results = run_concurrently(15, one)
        granted, refused = self.check_race_outcome(charge["id"], 1000, results)
        self.assertTrue(set(refused) <= {"amount_too_large", "charge_already_refunded"}, refused)
        # Refunds of 150 alone stop at 900; the first refund of the rest to run takes what is
        # left, so in any interleaving exactly one of them succeeds and the charge ends refunded.
        self.assertEqual(granted, 1000)
        rest = [r.json()["amount"] for i, r in enumerate(results) if i % 3 == 0 and r.status == 201]
        self.assertEqual(len(rest), 1, "refunds of the rest that succeeded: %r" % rest)


class RefundReadTest(RefundTestCase):
    """GET /v1/refunds/{id} and GET /v1/refunds?charge=, scoped to the user."""

    def test_get_refund_returns_the_created_object(self):
        """GET /v1/refunds/{id} answers the refund object, byte for byte as POST answered it"""
        user, key = self.make_user()
        charge = self.make_charge(key)
        resp, obj = self.refund(key, charge["id"], 100, reason="duplicate", metadata={"z": "1", "a": "2"})
        got = self.get("/v1/refunds/" + obj["id"], key)
        self.assert_json_response(got, 200)
        self.assertEqual(got.body, resp.body)
        self.assertIsNone(got.header("Idempotent-Replayed"))

    def test_get_refund_of_another_user_or_unknown_id_is_404(self):
        """GET of another user's refund, an unknown or a malformed refund id answers 404"""
        owner, owner_key = self.make_user("owner")
        user, key = self.make_user()
        charge = self.make_charge(owner_key)
        _, obj = self.refund(owner_key, charge["id"], 100)
        for rid in (obj["id"], "re_" + "0" * 24, "re_nope", charge["id"]):
            with self.subTest(id=rid):
                self.assert_error(self.get("/v1/refunds/" + rid, key), 404, "resource_missing",
                                  param="id")
        self.assert_error(self.get("/v1/refunds/" + obj["id"]), 401, "api_key_missing")
        self.assert_json_response(self.get("/v1/refunds/" + obj["id"], owner_key), 200)

    def test_list_refunds_of_a_charge(self):
        """GET /v1/refunds?charge= lists only that charge's refunds, newest first"""
        user, key = self.make_user()
        other_user, other_key = self.make_user("other")
        c1 = self.make_charge(key, amount=1000)
        c2 = self.make_charge(key, amount=1000)
        theirs = self.make_charge(other_key, amount=1000)
        mine = [self.refund(key, c1["id"], 100 + i)[1] for i in range(3)]
        self.refund(key, c2["id"], 50)
        self.refund(other_key, theirs["id"], 10)
        page = self.assert_json_response(self.get("/v1/refunds?charge=" + c1["id"], key), 200)
        self.assertEqual(list(page.keys()), ["object", "url", "has_more", "data"])
        self.assertEqual((page["object"], page["url"], page["has_more"]), ("list", "/v1/refunds", False))
        self.assertEqual(page["data"], list(reversed(mine)))
        page = self.assert_json_response(self.get("/v1/refunds?charge=%s&limit=2" % c1["id"], key), 200)
        self.assertEqual([r["id"] for r in page["data"]], [mine[2]["id"], mine[1]["id"]])
        self.assertIs(page["has_more"], True)
        # Another user's charge: an empty list, never their refunds.
        page = self.assert_json_response(self.get("/v1/refunds?charge=" + theirs["id"], key), 200)
        self.assertEqual((page["data"], page["has_more"]), ([], False))
        self.assert_error(self.get("/v1/refunds?charge=ch_nope", key), 400, "parameter_invalid",
                          param="charge")
        # Without the filter: all of the user's refunds, and only theirs.
        page = self.assert_json_response(self.get("/v1/refunds?limit=100", key), 200)
        self.assertEqual(len(page["data"]), 4)
        self.assertEqual({r["charge"] for r in page["data"]}, {c1["id"], c2["id"]})


class RefundChargeBusyTest(RefundTestCase):
    """A refund that waits too long for its charge's row says so, rather than blaming its key."""

    # A short wait, so a refund behind another transaction on its charge gives up quickly.
    server_env = dict(SERVER_ENV, PAYMENTS_IDEMPOTENCY_WAIT="300ms")

    def test_refund_of_a_charge_locked_by_another_session_is_charge_busy(self):
        """A refund whose charge another transaction holds answers 409 charge_busy with Retry-After, stores nothing, and succeeds with the same key once it ends"""
        user, key = self.make_user()
        charge = self.make_charge(key, amount=1000)
        idem = new_key()
        # Another session locks the charge's row and sits in its transaction, as a slow refund would.
        with harness.open_transaction(
                self.db, "SELECT 1 FROM charges WHERE id = %s FOR UPDATE" % sql_literal(charge["id"])):
            started = time.monotonic()
            resp = self.post_refund(key, {"charge": charge["id"], "amount": 100}, idem)
            took = time.monotonic() - started
            self.assert_error(resp, 409, "charge_busy", "invalid_request_error", param=None)
            self.assertIsNotNone(resp.header("Retry-After"))
            self.assertEqual(resp.header("Stripe-Should-Retry"), "true")
            self.assertGreaterEqual(took, 0.25, "answered before PAYMENTS_IDEMPOTENCY_WAIT ran out")
            self.assertLess(took, 5, "waited far longer than PAYMENTS_IDEMPOTENCY_WAIT")
            # Nothing stored: no refund, no events, and the key is free for the retry.
            self.assertEqual(self.refund_rows(charge["id"]), [])
            self.assertEqual(self.amount_refunded(charge["id"]), 0)
            self.assertEqual(self.db.count("idempotency_keys", "key = %s" % sql_literal(idem)), 0)
        resp = self.post_refund(key, {"charge": charge["id"], "amount": 100}, idem)
        self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertEqual(self.amount_refunded(charge["id"]), 100)
