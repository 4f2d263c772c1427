"""test_charges.py - creating charges, idempotent replays, key scope and reading charges back."""

import json
import secrets

import harness as h
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class CreateChargeTest(h.ServiceTestCase):

    def test_server_runs_as_the_application_role(self):
        """The server connects as a member of payments_app only, which cannot UPDATE charges directly"""
        user, key = self.make_user()
        resp = self.post_charge(key, h.charge_body(), h.new_key())
        obj = self.assert_json_response(resp, 201)
        # Every connection the server holds to this database is the application role's.
        roles = self.db.query(
            "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        self.assertEqual(roles, self.db.app_role)
        self.assertEqual(h.psql(self.db.app_url,
                                "SELECT rolsuper OR rolcreaterole OR rolbypassrls FROM pg_roles"
                                " WHERE rolname = current_user"), "f")
        with self.assertRaisesRegex(AssertionError, "permission denied for table charges"):
            h.psql(self.db.app_url, "UPDATE charges SET amount = 1 WHERE id = %s" % lit(obj["id"]))
        self.assertEqual(self.db.query("SELECT amount FROM charges WHERE id = %s" % lit(obj["id"])),
                         "2000")

    def test_create_returns_charge_and_stores_it_with_its_event(self):
        """A new charge answers 201 with the charge object and stores one charge, one key and one charge.succeeded event"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body(metadata={"order_id": "6735", "z": "last", "a": "first"})
        resp = self.post_charge(key, body, idem)
        obj = self.assert_json_response(resp, 201)
        self.assert_charge_object(obj, body)
        self.assertIsNone(obj["failure_code"])
        self.assertIsNone(obj["decline_code"])
        # The metadata keeps the client's key order.
        self.assertEqual(list(obj["metadata"].keys()), ["order_id", "z", "a"])
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        rid = self.assert_request_id(resp)
        self.assertRegex(rid, h.REQUEST_ID_RE)

        self.assertEqual(self.counts(user), (1, 1, 1))
        row = self.db.query(
            "SELECT id, amount, currency, source, description, metadata::text, status,"
            " amount_refunded, failure_code IS NULL, decline_code IS NULL, idempotency_key,"
            " request_id, floor(extract(epoch FROM created))::bigint"
            " FROM charges WHERE user_id = %s" % lit(user)).split("|")
        self.assertEqual(row[:5], [obj["id"], "2000", "usd", "tok_visa", "Integration test"])
        self.assertEqual(json.loads(row[5]), body["metadata"])
        self.assertEqual(row[6:12], ["succeeded", "0", "t", "t", idem, rid])
        self.assertEqual(int(row[12]), obj["created"])

        krow = self.db.query(
            "SELECT status_code, object_id, response_body,"
            " expires_at - created_at BETWEEN interval '23 hours 59 minutes'"
            " AND interval '24 hours 1 minute'"
            " FROM idempotency_keys WHERE user_id = %s AND key = %s" % (lit(user), lit(idem)))
        status_code, object_id, rest = krow.split("|", 2)
        stored_body, ttl_ok = rest.rsplit("|", 1)
        self.assertEqual((status_code, object_id, ttl_ok), ("201", obj["id"], "t"))
        self.assertEqual(stored_body.encode("utf-8"), resp.body,
                         "the stored response is not the response sent")

        erow = self.db.query(
            "SELECT id, type, object_id, charge_id, idempotency_key, request_id,"
            " published_at IS NULL, data::text"
            " FROM outbox_events WHERE user_id = %s" % lit(user)).split("|", 7)
        self.assertRegex(erow[0], h.EVENT_ID_RE)
        self.assertEqual(erow[1:7], ["charge.succeeded", obj["id"], obj["id"], idem, rid, "t"])
        self.assertEqual(json.loads(erow[7]), obj, "the event's data is not the charge object")

    def test_charge_alias_creates_like_v1(self):
        """POST /charge is the same handler: 201, the charge object and the same rows"""
        user, key = self.make_user()
        body = h.charge_body(source="tok_mastercard")
        resp = self.post_charge(key, body, h.new_key(), path="/charge")
        obj = self.assert_json_response(resp, 201)
        self.assert_charge_object(obj, body)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertEqual(self.counts(user), (1, 1, 1))
        self.assertEqual(self.db.query(
            "SELECT type || ' ' || charge_id FROM outbox_events WHERE user_id = %s" % lit(user)),
            "charge.succeeded " + obj["id"])

    def test_alias_and_v1_share_idempotency_keys(self):
        """A retry on /charge of a key first used on /v1/charges replays it, and the other way round"""
        user, key = self.make_user()
        for first, second in (("/v1/charges", "/charge"), ("/charge", "/v1/charges")):
            idem = h.new_key()
            body = h.charge_body(amount=1234)
            r1 = self.post_charge(key, body, idem, path=first)
            self.assert_json_response(r1, 201)
            r2 = self.post_charge(key, body, idem, path=second)
            self.assert_json_response(r2, 201)
            self.assertEqual(r2.body, r1.body, "%s did not replay the key used on %s" % (second, first))
            self.assertEqual(r2.header("Idempotent-Replayed"), "true")
            self.assertEqual(self.key_rows(user, idem), (1, 1, 1))
            # A different body under the same key is a conflict on either route.
            r3 = self.post_charge(key, h.charge_body(amount=4321), idem, path=second)
            self.assert_error(r3, 409, "idempotency_key_reused")
        self.assertEqual(self.counts(user), (2, 2, 2))

    def test_replay_is_byte_identical_and_writes_nothing(self):
        """A retry with the same key and body returns the same status and bytes, Idempotent-Replayed true, and writes nothing"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body(description="Caf\u00e9 \u2615 \U0001F600")
        first = self.post_charge(key, body, idem)
        self.assert_json_response(first, 201)
        snapshot_sql = (
            "SELECT (SELECT string_agg(xmin::text || ':' || id, ',') FROM charges WHERE user_id = %(u)s),"
            " (SELECT string_agg(xmin::text || ':' || key, ',') FROM idempotency_keys WHERE user_id = %(u)s),"
            " (SELECT string_agg(xmin::text || ':' || id, ',') FROM outbox_events WHERE user_id = %(u)s)"
            % {"u": lit(user)})
        before = self.db.query(snapshot_sql)
        for _ in range(3):
            again = self.post_charge(key, body, idem)
            self.assertEqual(again.status, 201)
            self.assertEqual(again.body, first.body)
            self.assertEqual(again.header("Idempotent-Replayed"), "true")
            self.assertEqual(again.header("Content-Type"), "application/json")
            self.assert_request_id(again)
        self.assertEqual(self.counts(user), (1, 1, 1))
        self.assertEqual(self.db.query(snapshot_sql), before, "a replay rewrote a row")

    def test_canonical_json_replays(self):
        """The same fields in another order, with other white space and escapes, replay rather than conflict"""
        user, key = self.make_user()
        idem = h.new_key()
        first_text = ('{"amount":2500,"currency":"eur","source":"tok_amex",'
                      '"description":"Caf\u00e9","metadata":{"b":"2","a":"1"}}')
        first = self.post_charge(key, first_text, idem)
        self.assert_json_response(first, 201)
        variants = [
            '{\n  "metadata": {"a": "1", "b": "2"},\n  "source": "tok_amex",\n'
            '  "description": "Caf\\u00e9",\n  "currency": "eur",\n  "amount": 2500\n}\n',
            ' { "source" : "tok_amex" , "amount" :2500,"currency":"\\u0065ur",'
            '\t"metadata":{ "b":"2" ,"a" : "1"},"description":"Caf\u00e9" } ',
        ]
        for text in variants:
            resp = self.post_charge(key, text, idem)
            self.assertEqual(resp.status, 201, "variant %r: %r" % (text, resp))
            self.assertEqual(resp.body, first.body)
            self.assertEqual(resp.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.counts(user), (1, 1, 1))

    def test_same_key_different_body_conflicts(self):
        """The same key with a different body answers 409 idempotency_key_reused and writes nothing"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body()
        first = self.post_charge(key, body, idem)
        self.assert_json_response(first, 201)
        for changed in (h.charge_body(amount=2001), h.charge_body(currency="eur"),
                        h.charge_body(source="tok_amex"), h.charge_body(description="other"),
                        h.charge_body(metadata={"order_id": "6736"}),
                        h.charge_body(description=h.DROP),
                        h.charge_body(source="tok_chargeDeclined")):
            resp = self.post_charge(key, changed, idem)
            self.assert_error(resp, 409, "idempotency_key_reused", "idempotency_error")
            self.assertIsNone(resp.header("Idempotent-Replayed"))
        self.assertEqual(self.counts(user), (1, 1, 1))
        # The key still answers its first request.
        again = self.post_charge(key, body, idem)
        self.assertEqual((again.status, again.body), (201, first.body))

    def test_key_scope_is_per_user(self):
        """Two users who send the same Idempotency-Key get two different charges, each seeing only its own"""
        user_a, key_a = self.make_user("a")
        user_b, key_b = self.make_user("b")
        body = h.charge_body()
        ra = self.post_charge(key_a, body, "same-key")
        rb = self.post_charge(key_b, body, "same-key")
        ca = self.assert_json_response(ra, 201)
        cb = self.assert_json_response(rb, 201)
        self.assertEqual(ra.header("Idempotent-Replayed"), "false")
        self.assertEqual(rb.header("Idempotent-Replayed"), "false")
        self.assertNotEqual(ca["id"], cb["id"])
        self.assertEqual(self.key_rows(user_a, "same-key"), (1, 1, 1))
        self.assertEqual(self.key_rows(user_b, "same-key"), (1, 1, 1))
        self.assertEqual(self.db.query("SELECT user_id FROM charges WHERE id = %s" % lit(ca["id"])), user_a)
        self.assertEqual(self.db.query("SELECT user_id FROM charges WHERE id = %s" % lit(cb["id"])), user_b)
        self.assertEqual(self.get("/v1/charges/" + ca["id"], key_a).status, 200)
        self.assertEqual(self.get("/v1/charges/" + cb["id"], key_b).status, 200)
        self.assert_error(self.get("/v1/charges/" + cb["id"], key_a), 404, "resource_missing")
        self.assert_error(self.get("/v1/charges/" + ca["id"], key_b), 404, "resource_missing")

    def test_test_tokens_succeed(self):
        """tok_visa, tok_mastercard and tok_amex each create a succeeded charge"""
        user, key = self.make_user()
        for token in ("tok_visa", "tok_mastercard", "tok_amex"):
            body = h.charge_body(source=token)
            resp = self.post_charge(key, body, h.new_key())
            obj = self.assert_json_response(resp, 201)
            self.assert_charge_object(obj, body)
            self.assertEqual(self.db.query(
                "SELECT status || ' ' || source FROM charges WHERE id = %s" % lit(obj["id"])),
                "succeeded " + token)
            self.assertEqual(self.db.query(
                "SELECT type FROM outbox_events WHERE charge_id = %s" % lit(obj["id"])),
                "charge.succeeded")
        self.assertEqual(self.counts(user), (3, 3, 3))

    def test_unknown_token_is_refused(self):
        """Any other payment token answers 400 with param source and stores nothing"""
        user, key = self.make_user()
        for token in ("tok_unknown", "tok_VISA", "tok_visa ", "", "4242424242424242", "tok_chargeDeclinedX"):
            idem = h.new_key()
            resp = self.post_charge(key, h.charge_body(source=token), idem)
            self.assert_error(resp, 400, "invalid_source", "invalid_request_error", "source")
            self.assertEqual(self.key_rows(user, idem), (0, 0, 0))
        self.assertEqual(self.counts(user), (0, 0, 0))


class GetChargeTest(h.ServiceTestCase):

    def test_get_returns_the_created_object(self):
        """GET /v1/charges/{id} answers 200 with the object the create returned"""
        user, key = self.make_user()
        body = h.charge_body(description="\u00fcber \U0001F600", metadata={"k": "v", "a": "b"})
        created = self.post_charge(key, body, h.new_key())
        obj = self.assert_json_response(created, 201)
        got = self.get("/v1/charges/" + obj["id"], key)
        self.assertEqual(self.assert_json_response(got, 200), obj)
        self.assertIsNone(got.header("Idempotent-Replayed"))

    def test_get_of_another_users_charge_is_like_a_missing_one(self):
        """Another user's charge answers 404 resource_missing, identical to an id that does not exist"""
        _, key_a = self.make_user("a")
        _, key_b = self.make_user("b")
        obj = self.assert_json_response(self.post_charge(key_a, h.charge_body(), h.new_key()), 201)
        theirs = self.get("/v1/charges/" + obj["id"], key_b)
        self.assert_error(theirs, 404, "resource_missing", "invalid_request_error")
        missing_id = "ch_" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))
        missing = self.get("/v1/charges/" + missing_id, key_b)
        self.assert_error(missing, 404, "resource_missing")
        self.assertEqual(theirs.body, missing.body)
        self.assertEqual(sorted(k.lower() for k in theirs.headers.keys()),
                         sorted(k.lower() for k in missing.headers.keys()))
        self.assertEqual(self.get("/v1/charges/" + obj["id"], key_a).status, 200)

    def test_get_of_a_malformed_id_is_404(self):
        """A malformed charge id answers 404 resource_missing"""
        _, key = self.make_user()
        for bad in ("ch_short", "ch_" + "a" * 23, "ch_" + "a" * 25, "ch_" + "a" * 200,
                    "re_" + "a" * 24, "ch_" + "a" * 23 + "-", "ch_%27%20OR%201%3D1--aaaaaaaaaa",
                    "CH_" + "a" * 24):
            resp = self.get("/v1/charges/" + bad, key)
            self.assert_error(resp, 404, "resource_missing")
