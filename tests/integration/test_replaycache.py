"""test_replaycache.py - retries of new charges answered from the process's memory (PAYMENTS_REPLAY_CACHE_TTL)."""

import harness as h
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class ReplayCacheTest(h.ServiceTestCase):
    # Long enough that only the key's own expiry can end an entry within a test.
    server_env = {"PAYMENTS_REPLAY_CACHE_TTL": "60s"}

    def set_stored_body(self, user, idem, body):
        self.db.query("UPDATE idempotency_keys SET response_body = %s WHERE user_id = %s AND key = %s"
                      % (lit(body), lit(user), lit(idem)))

    def test_a_retry_is_answered_from_memory_byte_for_byte(self):
        """A retry is answered without reading the key: the stored response's bytes as first sent, replayed"""
        user, key = self.make_user()
        idem = h.new_key()
        first = self.post_charge(key, h.charge_body(), idem)
        self.assert_json_response(first, 201)
        # The database's copy changes (nothing in the service ever does this): the cache does not see it.
        self.set_stored_body(user, idem, '{"changed":true}')
        again = self.post_charge(key, h.charge_body(), idem)
        self.assertEqual((again.status, again.body), (201, first.body))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.key_rows(user, idem), (1, 1, 1))
        # A server that keeps nothing reads the database's copy.
        other = h.Server(self.db.app_url, {"PAYMENTS_REPLAY_CACHE_TTL": "0"}).start()
        self.addCleanup(other.remove_log)
        self.addCleanup(other.stop)
        resp = other.request("POST", "/v1/charges", h.charge_body(),
                             {"Content-Type": "application/json", "Authorization": "Bearer " + key,
                              "Idempotency-Key": idem})
        self.assertEqual((resp.status, resp.body), (201, b'{"changed":true}'))

    def test_a_stored_decline_is_replayed_from_memory(self):
        """A retry of a declined charge gets the stored 402 again, byte for byte"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body(source="tok_chargeDeclined")
        first = self.post_charge(key, body, idem)
        self.assertEqual(first.status, 402)
        again = self.post_charge(key, body, idem)
        self.assertEqual((again.status, again.body), (402, first.body))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.key_rows(user, idem), (1, 1, 1))

    def test_another_request_under_a_cached_key_is_refused(self):
        """A different body under a cached key still gets 409 idempotency_key_reused, and the key still replays"""
        user, key = self.make_user()
        idem = h.new_key()
        first = self.post_charge(key, h.charge_body(amount=100), idem)
        self.assert_json_response(first, 201)
        self.assert_error(self.post_charge(key, h.charge_body(amount=200), idem), 409,
                          "idempotency_key_reused")
        again = self.post_charge(key, h.charge_body(amount=100), idem)
        self.assertEqual((again.status, again.body), (201, first.body))
        self.assertEqual(self.key_rows(user, idem), (1, 1, 1))

    def test_the_same_key_of_another_user_is_its_own(self):
        """Another user's request with a cached key's name creates that user's own charge"""
        _, key_a = self.make_user()
        user_b, key_b = self.make_user()
        idem = h.new_key()
        first = self.assert_json_response(self.post_charge(key_a, h.charge_body(), idem), 201)
        resp = self.post_charge(key_b, h.charge_body(), idem)
        second = self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertNotEqual(second["id"], first["id"])
        self.assertEqual(self.key_rows(user_b, idem), (1, 1, 1))

    def test_an_entry_ends_with_its_keys_expiry(self):
        """A key read with 3 s left is replayed from memory until then, never after: then the same request charges anew"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body()
        # Stored by a server that keeps nothing, so that this one first reads the key from the database.
        other = h.Server(self.db.app_url, {"PAYMENTS_REPLAY_CACHE_TTL": "0"}).start()
        self.addCleanup(other.remove_log)
        self.addCleanup(other.stop)
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key, "Idempotency-Key": idem}
        first = other.request("POST", "/v1/charges", body, headers)
        self.assertEqual(first.status, 201)
        self.db.query("UPDATE idempotency_keys SET expires_at = now() + interval '3 seconds'"
                      " WHERE user_id = %s AND key = %s" % (lit(user), lit(idem)))
        again = self.post_charge(key, body, idem)   # read from the database: 3 s left
        self.assertEqual((again.status, again.body), (201, first.body))
        # From memory now: the database's copy is no longer what is answered.
        self.set_stored_body(user, idem, '{"changed":true}')
        self.assertEqual(self.post_charge(key, body, idem).body, first.body)
        # Once the key expired the cache answers no more (its 60 s would), and the database charges anew.
        resp = h.poll(lambda: (lambda r: r if r.header("Idempotent-Replayed") == "false" else None)(
            self.post_charge(key, body, idem)), message="a new charge after the key's expiry")
        self.assertEqual(resp.status, 201)
        self.assertNotEqual(resp.json()["id"], first.json()["id"])
        self.assertEqual(self.key_rows(user, idem), (2, 1, 2))
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM idempotency_keys WHERE user_id = %s AND key = %s"
            " AND response_body = '{\"changed\":true}'" % (lit(user), lit(idem))), "0")
