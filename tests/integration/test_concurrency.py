"""test_concurrency.py - many requests racing on one Idempotency-Key create exactly one charge."""

import threading
import time

import harness as h
from harness import sql_literal as lit

THREADS = 50


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class ConcurrencyTest(h.ServiceTestCase):

    def race(self, key, bodies, idem):
        """Posts bodies[i] on thread i, all released together; returns the responses."""
        results = h.run_concurrently(
            len(bodies), lambda i: self.post_charge(key, bodies[i], idem, timeout=30), timeout=60)
        errors = [r for r in results if isinstance(r, BaseException)]
        self.assertEqual(errors, [], "some requests failed without a response (hung or reset)")
        return results

    def assert_in_use(self, resp):
        self.assert_error(resp, 409, "idempotency_key_in_use", "idempotency_error")
        self.assertIsNotNone(resp.header("Retry-After"), "409 in_use without Retry-After")
        self.assertEqual(resp.header("Stripe-Should-Retry"), "true", "the SDKs would not retry it")

    def test_fifty_identical_requests_create_one_charge(self):
        """50 concurrent identical requests with one key create one charge and one event; each answers the same 201 or 409 in_use with Retry-After"""
        user, key = self.make_user()
        idem = h.new_key()
        results = self.race(key, [h.charge_body(amount=4999)] * THREADS, idem)

        created = [r for r in results if r.status == 201]
        others = [r for r in results if r.status != 201]
        self.assertTrue(created, "no request succeeded: %r" % results[:3])
        bodies = {r.body for r in created}
        self.assertEqual(len(bodies), 1, "the 201 responses differ")
        for r in others:
            self.assert_in_use(r)
        fresh = [r for r in created if r.header("Idempotent-Replayed") == "false"]
        self.assertEqual(len(fresh), 1, "exactly one response must be the original, not a replay")
        for r in created:
            self.assertIn(r.header("Idempotent-Replayed"), ("true", "false"))

        self.assertEqual(self.counts(user), (1, 1, 1))
        charge_id = created[0].json()["id"]
        self.assertEqual(self.db.query(
            "SELECT id FROM charges WHERE user_id = %s" % lit(user)), charge_id)
        self.assertEqual(self.db.query(
            "SELECT type || ' ' || charge_id FROM outbox_events WHERE user_id = %s" % lit(user)),
            "charge.succeeded " + charge_id)

    def test_racing_different_bodies_on_one_key(self):
        """Concurrent different requests with one key create one charge; the others answer 409"""
        user, key = self.make_user()
        idem = h.new_key()
        n = 20
        bodies = [h.charge_body(amount=100 + i) for i in range(n)]
        results = self.race(key, bodies, idem)
        created = [(i, r) for i, r in enumerate(results) if r.status == 201]
        self.assertEqual(len(created), 1, "statuses: %r" % [r.status for r in results])
        winner, resp = created[0]
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        for i, r in enumerate(results):
            if i == winner:
                continue
            err = self.assert_error(r, 409, r.json().get("error", {}).get("code"), "idempotency_error")
            self.assertIn(err["code"], ("idempotency_key_reused", "idempotency_key_in_use"))
            if err["code"] == "idempotency_key_in_use":
                self.assertIsNotNone(r.header("Retry-After"))
        self.assertEqual(self.counts(user), (1, 1, 1))
        self.assertEqual(self.db.query(
            "SELECT amount FROM charges WHERE user_id = %s" % lit(user)), str(100 + winner))

    def test_many_keys_in_parallel(self):
        """50 concurrent requests with 50 different keys create 50 charges and 50 events"""
        user, key = self.make_user()
        keys = [h.new_key() for _ in range(THREADS)]
        results = h.run_concurrently(
            THREADS, lambda i: self.post_charge(key, h.charge_body(amount=10 + i), keys[i], timeout=30),
            timeout=60)
        for r in results:
            self.assertNotIsInstance(r, BaseException)
            self.assert_json_response(r, 201)
        self.assertEqual(len({r.json()["id"] for r in results}), THREADS)
        self.assertEqual(self.counts(user), (THREADS, THREADS, THREADS))


class InUseTest(h.ServiceTestCase):
    # A short wait, so a request behind a slow transaction with the same key gives up quickly.
    server_env = {"PAYMENTS_IDEMPOTENCY_WAIT": "300ms"}

    def test_request_behind_an_open_transaction_gets_in_use(self):
        """A request whose key another transaction holds answers 409 idempotency_key_in_use with Retry-After, and succeeds once it ends"""
        user, key = self.make_user()
        idem = h.new_key()
        # Another session inserts the key and sits in its transaction, as a slow first request would.
        with h.open_transaction(self.db, h.key_taken_sql(user, idem)):
            started = time.monotonic()
            resp = self.post_charge(key, h.charge_body(), idem, timeout=10)
            took = time.monotonic() - started
            self.assert_error(resp, 409, "idempotency_key_in_use", "idempotency_error")
            self.assertIsNotNone(resp.header("Retry-After"))
            self.assertEqual(resp.header("Stripe-Should-Retry"), "true")
            self.assertGreaterEqual(took, 0.25, "answered before PAYMENTS_IDEMPOTENCY_WAIT ran out")
            self.assertLess(took, 5, "waited far longer than PAYMENTS_IDEMPOTENCY_WAIT")
            # The blocker's row is not committed, and the refused request wrote nothing.
            self.assertEqual(self.counts(user), (0, 0, 0))
        self.assertEqual(self.counts(user), (0, 0, 0))
        resp = self.post_charge(key, h.charge_body(), idem)
        self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        self.assertEqual(self.counts(user), (1, 1, 1))


class PoolExhaustedTest(h.ServiceTestCase):
    # One connection, a short wait for it, and a long wait on a busy key.
    server_env = {"PAYMENTS_DB_POOL_SIZE": "1", "PAYMENTS_DB_POOL_WAIT": "300ms",
                  "PAYMENTS_IDEMPOTENCY_WAIT": "20s"}

    def test_exhausted_pool_answers_503(self):
        """When every database connection stays busy past PAYMENTS_DB_POOL_WAIT, a request answers 503 service_unavailable with Retry-After"""
        user, key = self.make_user()
        idem = h.new_key()
        held = {}
        with h.open_transaction(self.db, h.key_taken_sql(user, idem)):
            # This request takes the only connection and waits on the blocked key.
            waiter = threading.Thread(target=lambda: held.update(
                resp=self.post_charge(key, h.charge_body(), idem, timeout=30)), daemon=True)
            waiter.start()
            h.poll(lambda: self.db.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'payments'"
                " AND datname = current_database() AND wait_event_type = 'Lock'") == "1",
                message="the first request to wait on the key")
            started = time.monotonic()
            resp = self.post_charge(key, h.charge_body(amount=1), h.new_key(), timeout=10)
            took = time.monotonic() - started
            self.assert_error(resp, 503, "service_unavailable", "api_error")
            self.assertIsNotNone(resp.header("Retry-After"))
            self.assertLess(took, 5, "waited far longer than PAYMENTS_DB_POOL_WAIT")
        # With the blocker gone, the waiting request goes through.
        waiter.join(30)
        self.assertFalse(waiter.is_alive(), "the waiting request hung")
        self.assert_json_response(held["resp"], 201)
        self.assertEqual(self.counts(user), (1, 1, 1))
