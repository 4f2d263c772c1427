"""test_update.py - POST /v1/charges/{id} and POST /v1/refunds/{id}: updates of description and metadata.

Every case checks the status and the body, and the rows behind them in
PostgreSQL: the charge or refund, the idempotency key and the outbox event
(charge.updated, refund.updated) that webhooks and NATS consumers receive.
"""

import json
import unittest

import harness as h
from harness import new_key, sql_literal

FORM = "application/x-www-form-urlencoded"


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class UpdateTestCase(h.ServiceTestCase):
    """Helpers: updates and the rows behind them."""

    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_IDEMPOTENCY_WAIT": "300ms"}

    def setUp(self):
        self.user, self.key = self.make_user("update")

    def db_json(self, sql):
        return json.loads(self.db.query("SELECT coalesce(json_agg(t), '[]')::text FROM (%s) t" % sql))

    def new_charge(self, **overrides):
        body = h.charge_body(**overrides)
        return self.assert_json_response(self.post_charge(self.key, body, new_key()), 201)

    def update(self, path, body, idem=Ellipsis, content_type="application/json", key=None,
               headers=None):
        if idem is Ellipsis:
            idem = new_key()
        return self.post_charge(key or self.key, body, idem, path=path, content_type=content_type,
                                headers=headers)

    def events(self, object_id, type_):
        return self.db_json("SELECT id, charge_id, data, request_id, idempotency_key FROM outbox_events"
                            " WHERE object_id = %s AND type = %s ORDER BY seq"
                            % (sql_literal(object_id), sql_literal(type_)))

    def charge_row(self, charge_id):
        return self.db_json("SELECT description, metadata FROM charges WHERE id = %s"
                            % sql_literal(charge_id))[0]

    def key_row(self, idem):
        rows = self.db_json("SELECT status_code, object_id, response_body FROM idempotency_keys"
                            " WHERE user_id = %s AND key = %s" % (sql_literal(self.user), sql_literal(idem)))
        return rows[0] if rows else None


class ChargeUpdateTest(UpdateTestCase):
    """POST /v1/charges/{id}."""

    def test_update_answers_200_stores_it_and_emits_charge_updated(self):
        """An update answers 200 with the charge after it, writes the row, stores the key and emits charge.updated with that charge"""
        charge = self.new_charge(metadata={"order_id": "6735", "note": "gift"})
        idem = new_key()
        resp = self.update("/v1/charges/" + charge["id"],
                           {"description": "Order 6735, shipped", "metadata": {"note": "", "carrier": "ups"}},
                           idem)
        obj = self.assert_json_response(resp, 200)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        want = dict(charge, description="Order 6735, shipped",
                    metadata={"order_id": "6735", "carrier": "ups"})
        self.assertEqual(obj, want)
        self.assertEqual(list(obj["metadata"]), ["order_id", "carrier"], "the stored key order, then new keys")
        self.assertEqual(self.charge_row(charge["id"]),
                         {"description": "Order 6735, shipped",
                          "metadata": {"order_id": "6735", "carrier": "ups"}})
        events = self.events(charge["id"], "charge.updated")
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["data"], obj)
        self.assertEqual((events[0]["charge_id"], events[0]["idempotency_key"], events[0]["request_id"]),
                         (charge["id"], idem, resp.header("Request-Id")))
        row = self.key_row(idem)
        self.assertEqual((row["status_code"], row["object_id"]), (200, charge["id"]))
        self.assertEqual(row["response_body"].encode(), resp.body)
        got = self.assert_json_response(self.get("/v1/charges/" + charge["id"], self.key), 200)
        self.assertEqual(got, obj)
        # The events API serves it like every other event, filtered by its type.
        page = self.assert_json_response(self.get("/v1/events?type=charge.updated", self.key), 200)
        self.assertEqual([e["id"] for e in page["data"]], [events[0]["id"]])
        self.assertEqual(page["data"][0]["data"]["object"], obj)

    def test_form_update_merges_unsets_and_clears(self):
        """A form update merges metadata (metadata[k]= removes k), description= unsets it, metadata= clears every key"""
        charge = self.new_charge(description="Order", metadata={"a": "1", "b": "2"})
        path = "/v1/charges/" + charge["id"]
        obj = self.assert_json_response(
            self.update(path, "metadata[b]=&metadata[c]=3+4&metadata[d]=%E2%82%AC", content_type=FORM), 200)
        self.assertEqual(obj["metadata"], {"a": "1", "c": "3 4", "d": "\u20ac"})
        self.assertEqual(obj["description"], "Order")
        obj = self.assert_json_response(self.update(path, "description=", content_type=FORM), 200)
        self.assertIsNone(obj["description"])
        obj = self.assert_json_response(self.update(path, "metadata=", content_type=FORM), 200)
        self.assertEqual(obj["metadata"], {})
        self.assertEqual(self.charge_row(charge["id"]), {"description": None, "metadata": {}})
        types = [e["type"] for e in self.db_json(
            "SELECT type FROM outbox_events WHERE charge_id = %s ORDER BY seq" % sql_literal(charge["id"]))]
        self.assertEqual(types, ["charge.succeeded"] + ["charge.updated"] * 3)

    def test_an_update_of_nothing_answers_the_charge_and_emits_nothing(self):
        """An empty update, or one that sets what is there, answers 200 with the charge as it is and emits no event"""
        charge = self.new_charge()
        path = "/v1/charges/" + charge["id"]
        for body, ctype in (("", FORM), ({}, "application/json"),
                            ({"description": charge["description"], "metadata": charge["metadata"]},
                             "application/json"),
                            ({"metadata": {"absent": ""}}, "application/json")):
            with self.subTest(body=body):
                self.assertEqual(self.assert_json_response(self.update(path, body, content_type=ctype), 200),
                                 charge)
        self.assertEqual(self.events(charge["id"], "charge.updated"), [])

    def test_retries_replay_byte_for_byte_and_another_body_is_refused(self):
        """The same key and update replay byte for byte (JSON retried as a form too); another update or charge with the key is 409, 400 with Stripe-Version"""
        charge = self.new_charge()
        other = self.new_charge()
        idem = new_key()
        path = "/v1/charges/" + charge["id"]
        first = self.update(path, {"metadata": {"k": "v"}}, idem)
        self.assertEqual(first.status, 200)
        for body, ctype in (({"metadata": {"k": "v"}}, "application/json"), ("metadata[k]=v", FORM)):
            again = self.update(path, body, idem, content_type=ctype)
            self.assertEqual((again.status, again.body), (200, first.body))
            self.assertEqual(again.header("Idempotent-Replayed"), "true")
        # Meanwhile another key changes the charge: the key still answers its own update.
        self.assert_json_response(self.update(path, {"description": "changed"}), 200)
        again = self.update(path, {"metadata": {"k": "v"}}, idem)
        self.assertEqual((again.status, again.body), (200, first.body))
        for p, body in ((path, {"metadata": {"k": "w"}}), ("/v1/charges/" + other["id"], {"metadata": {"k": "v"}})):
            resp = self.update(p, body, idem)
            self.assert_error(resp, 409, "idempotency_key_reused", "idempotency_error")
            self.assertEqual(resp.header("Stripe-Should-Retry"), "false")
            resp = self.update(p, body, idem, headers={"Stripe-Version": "2024-06-20"})
            self.assert_error(resp, 400, "idempotency_key_reused", "idempotency_error")
            self.assertEqual(resp.header("Stripe-Should-Retry"), "false")
        self.assertEqual(len(self.events(charge["id"], "charge.updated")), 2)
        self.assertEqual(self.events(other["id"], "charge.updated"), [])

    def test_refusals_name_the_param_and_store_nothing(self):
        """Unknown or server-owned params, bad values and too many keys after the merge are 400 naming the param; nothing is stored"""
        charge = self.new_charge(metadata={"k%02d" % i: "v" for i in range(49)})
        path = "/v1/charges/" + charge["id"]
        cases = [
            ({"amount": 100}, "application/json", "parameter_unknown", "amount"),
            ("receipt_email=a%40b.c", FORM, "parameter_unknown", "receipt_email"),
            ("shipping[name]=x", FORM, "parameter_unknown", "shipping"),
            ({"status": "failed"}, "application/json", "parameter_unknown", "status"),
            ({"description": "d" * 1001}, "application/json", "parameter_too_long", "description"),
            ({"description": 5}, "application/json", "parameter_invalid_type", "description"),
            ({"metadata": {"k": 1}}, "application/json", "invalid_metadata", "metadata"),
            ("metadata=x", FORM, "invalid_metadata", "metadata"),
            ("metadata[n]=" + "v" * 501, FORM, "invalid_metadata", "metadata[n]"),
            ({"metadata": {"new1": "x", "new2": "y"}}, "application/json", "invalid_metadata", "metadata"),
            ("metadata[a]=1&metadata[a]=2", FORM, "invalid_form", "metadata[a]"),
            (b"{", "application/json", "invalid_json", None),
        ]
        for body, ctype, code, param in cases:
            with self.subTest(body=body):
                idem = new_key()
                err = self.assert_error(self.update(path, body, idem, content_type=ctype), 400, code,
                                        "invalid_request_error", param=param)
                if code == "parameter_unknown":
                    self.assertIn("only description and metadata", err["message"])
                self.assertIsNone(self.key_row(idem))
        self.assertEqual(self.charge_row(charge["id"])["metadata"], charge["metadata"])
        self.assertEqual(self.events(charge["id"], "charge.updated"), [])
        # Replacing one key with another stays within the 50: the merge is what counts.
        obj = self.assert_json_response(
            self.update(path, {"metadata": {"k00": "", "new1": "x", "new2": "y"}}), 200)
        self.assertEqual(len(obj["metadata"]), 50)

    def test_another_users_missing_and_malformed_charges_are_404(self):
        """Another user's charge, a missing one and a malformed id answer 404 param id, and nothing changes"""
        _, other_key = self.make_user("other")
        theirs = self.assert_json_response(self.post_charge(other_key, h.charge_body(), new_key()), 201)
        for cid in (theirs["id"], "ch_" + "0" * 24, "ch_short", "re_" + "0" * 24):
            with self.subTest(id=cid):
                idem = new_key()
                self.assert_error(self.update("/v1/charges/" + cid, {"description": "mine"}, idem), 404,
                                  "resource_missing", param="id")
                self.assertIsNone(self.key_row(idem))
        got = self.assert_json_response(self.get("/v1/charges/" + theirs["id"], other_key), 200)
        self.assertEqual(got, theirs)
        self.assertEqual(self.events(theirs["id"], "charge.updated"), [])

    def test_key_and_key_rules_are_those_of_every_post(self):
        """An update without an Idempotency-Key, or with a bad one, is 400; without an API key 401"""
        charge = self.new_charge()
        path = "/v1/charges/" + charge["id"]
        self.assert_error(self.update(path, {"description": "x"}, None), 400, "idempotency_key_missing")
        self.assert_error(self.update(path, {"description": "x"}, "k" * 256), 400, "idempotency_key_invalid")
        resp = self.server.request("POST", path, {"description": "x"},
                                   {"Content-Type": "application/json", "Idempotency-Key": new_key()})
        self.assert_error(resp, 401, "api_key_missing")
        self.assert_error(self.update(path, "description=x", content_type="text/plain"), 415,
                          "unsupported_media_type")
        self.assertEqual(self.charge_row(charge["id"])["description"], charge["description"])

    def test_an_update_of_a_declined_or_refunded_charge_works(self):
        """A declined charge and a refunded one can be updated too: only description and metadata change"""
        resp = self.post_charge(self.key, h.charge_body(source="tok_chargeDeclined"), new_key())
        failed = self.assert_json_response(self.get(
            "/v1/charges/" + self.assert_error(resp, 402, "card_declined")["charge"], self.key), 200)
        obj = self.assert_json_response(self.update("/v1/charges/" + failed["id"], {"description": "retry later"}), 200)
        self.assertEqual(obj, dict(failed, description="retry later"))
        charge = self.new_charge()
        self.assert_json_response(self.post_charge(self.key, {"charge": charge["id"]}, new_key(),
                                                   path="/v1/refunds"), 201)
        refunded = self.assert_json_response(self.get("/v1/charges/" + charge["id"], self.key), 200)
        obj = self.assert_json_response(self.update("/v1/charges/" + charge["id"], {"metadata": {"r": "1"}}), 200)
        self.assertEqual(obj, dict(refunded, metadata=dict(refunded["metadata"], r="1")))

    def test_a_charge_held_by_another_transaction_is_409_charge_busy(self):
        """An update that waits for the charge's row longer than PAYMENTS_IDEMPOTENCY_WAIT is 409 charge_busy with Retry-After, stores nothing, and the retry works"""
        charge = self.new_charge()
        idem = new_key()
        with h.open_transaction(self.db, "SELECT 1 FROM charges WHERE id = %s FOR UPDATE"
                                % sql_literal(charge["id"])):
            resp = self.update("/v1/charges/" + charge["id"], {"description": "x"}, idem)
            self.assert_error(resp, 409, "charge_busy", "invalid_request_error")
            self.assertEqual(resp.header("Stripe-Should-Retry"), "true")
            self.assertIsNotNone(resp.header("Retry-After"))
            self.assertIsNone(self.key_row(idem))
        obj = self.assert_json_response(self.update("/v1/charges/" + charge["id"], {"description": "x"}, idem), 200)
        self.assertEqual(obj["description"], "x")

    def test_concurrent_updates_with_one_key_update_once(self):
        """Ten concurrent updates with one key change the charge once: one event, the 200s are the same bytes, the rest 409 in use"""
        charge = self.new_charge()
        idem = new_key()
        path = "/v1/charges/" + charge["id"]
        results = h.run_concurrently(10, lambda i: self.update(path, {"metadata": {"n": "1"}}, idem))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        ok = [r for r in results if r.status == 200]
        self.assertTrue(ok, results)
        self.assertEqual({r.body for r in ok}, {ok[0].body})
        for r in results:
            if r.status != 200:
                self.assert_error(r, 409, "idempotency_key_in_use")
        self.assertEqual(len(self.events(charge["id"], "charge.updated")), 1)


class RefundUpdateTest(UpdateTestCase):
    """POST /v1/refunds/{id}: metadata only."""

    def new_refund(self, metadata=None):
        charge = self.new_charge()
        body = {"charge": charge["id"], "amount": 500}
        if metadata is not None:
            body["metadata"] = metadata
        return self.assert_json_response(self.post_charge(self.key, body, new_key(), path="/v1/refunds"), 201)

    def test_metadata_update_answers_200_and_emits_refund_updated(self):
        """A refund's metadata is merged, stored under the key, and announced as refund.updated with the refund"""
        refund = self.new_refund({"ticket": "42"})
        idem = new_key()
        resp = self.update("/v1/refunds/" + refund["id"], "metadata[note]=called+back", idem, content_type=FORM)
        obj = self.assert_json_response(resp, 200)
        self.assertEqual(obj, dict(refund, metadata={"ticket": "42", "note": "called back"}))
        events = self.events(refund["id"], "refund.updated")
        self.assertEqual(len(events), 1)
        self.assertEqual((events[0]["data"], events[0]["charge_id"]), (obj, refund["charge"]))
        row = self.key_row(idem)
        self.assertEqual((row["status_code"], row["object_id"], row["response_body"].encode()),
                         (200, refund["id"], resp.body))
        self.assertEqual(self.assert_json_response(self.get("/v1/refunds/" + refund["id"], self.key), 200), obj)
        again = self.update("/v1/refunds/" + refund["id"], {"metadata": {"note": "called back"}}, idem)
        self.assertEqual((again.status, again.body, again.header("Idempotent-Replayed")),
                         (200, resp.body, "true"))
        obj = self.assert_json_response(self.update("/v1/refunds/" + refund["id"], {"metadata": ""}), 200)
        self.assertEqual(obj["metadata"], {})
        self.assertEqual(len(self.events(refund["id"], "refund.updated")), 2)
        # The charge's money is untouched.
        got = self.assert_json_response(self.get("/v1/charges/" + refund["charge"], self.key), 200)
        self.assertEqual(got["amount_refunded"], 500)

    def test_refund_refusals(self):
        """Anything but metadata is 400 naming it; another user's, missing and malformed refunds are 404"""
        refund = self.new_refund()
        _, other_key = self.make_user("other")
        for body, param in (({"description": "x"}, "description"), ({"amount": 1}, "amount"),
                            ({"reason": "duplicate"}, "reason")):
            with self.subTest(body=body):
                err = self.assert_error(self.update("/v1/refunds/" + refund["id"], body), 400,
                                        "parameter_unknown", param=param)
                self.assertIn("only metadata", err["message"])
        for rid, key in ((refund["id"], other_key), ("re_" + "0" * 24, self.key), ("ch_" + "0" * 24, self.key)):
            with self.subTest(id=rid):
                self.assert_error(self.update("/v1/refunds/" + rid, {"metadata": {"a": "b"}}, key=key), 404,
                                  "resource_missing", param="id")
        self.assertEqual(self.events(refund["id"], "refund.updated"), [])


if __name__ == "__main__":
    unittest.main()
