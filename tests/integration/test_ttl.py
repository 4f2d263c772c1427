"""test_ttl.py - Idempotency-Key expiry: an expired key is new again, and the purge deletes expired keys."""

import harness as h
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def expire(db, user, idem):
    """Moves the stored key's expiry into the past, as if its TTL had run out."""
    db.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
             " WHERE user_id = %s AND key = %s" % (lit(user), lit(idem)))


class ExpiryTest(h.ServiceTestCase):
    # Keep the purge out of the way so that expired rows stay until the API sees them. Keys
    # are expired by hand here, which the replay cache cannot see (it ends an entry at the
    # expiry it read; test_replaycache tests that): it is off.
    server_env = {"PAYMENTS_PURGE_INTERVAL": "1h", "PAYMENTS_REPLAY_CACHE_TTL": "0"}

    def test_expired_key_creates_a_new_charge(self):
        """After its key expired, the same key and body create a new charge (201, not replayed, another id)"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body()
        first = self.assert_json_response(self.post_charge(key, body, idem), 201)
        expire(self.db, user, idem)
        resp = self.post_charge(key, body, idem)
        second = self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertNotEqual(second["id"], first["id"])
        # Both charges remain; the key now answers for the new one and expires a TTL from now.
        self.assertEqual(self.key_rows(user, idem), (2, 1, 2))
        self.assertEqual(self.db.query(
            "SELECT object_id || '|' || (expires_at > now() + interval '23 hours')"
            " FROM idempotency_keys WHERE user_id = %s AND key = %s" % (lit(user), lit(idem))),
            second["id"] + "|true")
        again = self.post_charge(key, body, idem)
        self.assertEqual((again.status, again.body), (201, resp.body))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")

    def test_expired_key_accepts_a_different_body(self):
        """After its key expired, the same key may carry a different request"""
        user, key = self.make_user()
        idem = h.new_key()
        self.assert_json_response(self.post_charge(key, h.charge_body(amount=100), idem), 201)
        expire(self.db, user, idem)
        resp = self.post_charge(key, h.charge_body(amount=200), idem)
        self.assertEqual(self.assert_json_response(resp, 201)["amount"], 200)
        self.assertEqual(self.key_rows(user, idem), (2, 1, 2))

    def test_unexpired_key_still_replays(self):
        """A key one minute from expiry still replays"""
        user, key = self.make_user()
        idem = h.new_key()
        first = self.post_charge(key, h.charge_body(), idem)
        self.db.query("UPDATE idempotency_keys SET expires_at = now() + interval '1 minute'"
                      " WHERE user_id = %s AND key = %s" % (lit(user), lit(idem)))
        again = self.post_charge(key, h.charge_body(), idem)
        self.assertEqual((again.status, again.body), (201, first.body))
        self.assertEqual(self.key_rows(user, idem), (1, 1, 1))

    def test_concurrent_retries_of_an_expired_key(self):
        """20 concurrent retries of an expired key create exactly one new charge"""
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body()
        first = self.assert_json_response(self.post_charge(key, body, idem), 201)
        expire(self.db, user, idem)
        results = h.run_concurrently(20, lambda i: self.post_charge(key, body, idem, timeout=30))
        for r in results:
            self.assertNotIsInstance(r, BaseException)
        created = [r for r in results if r.status == 201]
        self.assertTrue(created)
        for r in results:
            if r.status != 201:
                self.assert_error(r, 409, "idempotency_key_in_use")
        self.assertEqual(len({r.body for r in created}), 1)
        self.assertNotEqual(created[0].json()["id"], first["id"])
        self.assertEqual(sum(1 for r in created if r.header("Idempotent-Replayed") == "false"), 1)
        self.assertEqual(self.key_rows(user, idem), (2, 1, 2))


class PurgeTest(h.ServiceTestCase):
    # Keys are expired by hand here too: the replay cache is off (see ExpiryTest).
    server_env = {"PAYMENTS_PURGE_INTERVAL": "100ms", "PAYMENTS_REPLAY_CACHE_TTL": "0"}

    def test_purge_deletes_expired_keys_and_keeps_charges(self):
        """With PAYMENTS_PURGE_INTERVAL=100ms expired keys disappear, unexpired ones stay, and every charge remains"""
        user, key = self.make_user()
        idems = [h.new_key() for _ in range(3)]
        ids = [self.assert_json_response(self.post_charge(key, h.charge_body(), k), 201)["id"]
               for k in idems]
        for k in idems[:2]:
            expire(self.db, user, k)
        h.poll(lambda: self.db.count("idempotency_keys", "user_id = %s" % lit(user)) == 1,
               message="the purge to delete the two expired keys")
        self.assertEqual(self.db.query(
            "SELECT key FROM idempotency_keys WHERE user_id = %s" % lit(user)), idems[2])
        self.assertEqual(self.counts(user), (3, 1, 3))
        for charge_id in ids:
            self.assertEqual(self.get("/v1/charges/" + charge_id, key).status, 200)
        # The unexpired key still replays; a purged key is free for a new charge.
        self.assertEqual(self.post_charge(key, h.charge_body(), idems[2]).header("Idempotent-Replayed"), "true")
        resp = self.post_charge(key, h.charge_body(), idems[0])
        self.assertNotEqual(self.assert_json_response(resp, 201)["id"], ids[0])
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
