"""test_zz_restart.py - PostgreSQL stops and starts under a running server (runs last: it stops the shared cluster).

Only with PAYMENTS_TEST_EMBEDDED=1, when the cluster is scripts/pg.sh's
throwaway one. PostgreSQL is always started again, in a finally block.
"""

import subprocess
import time
import unittest

import harness as h


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def pg(action):
    proc = subprocess.run([h.PG_SCRIPT, action], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120, cwd=h.ROOT)
    if proc.returncode != 0:
        raise AssertionError("scripts/pg.sh %s failed (%d): %s" % (action, proc.returncode, proc.stderr))


@unittest.skipUnless(h.embedded(), "PAYMENTS_TEST_EMBEDDED is not 1: the database is not the "
                     "throwaway scripts/pg.sh cluster, so it is not stopped")
class DatabaseRestartTest(h.ServiceTestCase):
    # Short connection attempts, so the 503s come back quickly while the database is down.
    server_env = {"PAYMENTS_DB_CONNECT_TIMEOUT": "1s", "PAYMENTS_DB_POOL_WAIT": "1s"}

    def test_database_restart(self):
        """With PostgreSQL stopped a charge answers 503 with Retry-After; once it is back the same key gives 201 and one charge"""
        user, key = self.make_user()
        self.assert_json_response(self.post_charge(key, h.charge_body(), h.new_key()), 201)
        idem = h.new_key()
        body = h.charge_body(amount=3131)
        try:
            pg("stop")
            # Every request while the database is down answers 503, the first one on a
            # pooled connection that just died included.
            for _ in range(3):
                resp = self.post_charge(key, body, idem, timeout=15)
                self.assert_error(resp, 503, "service_unavailable", "api_error")
                self.assertIsNotNone(resp.header("Retry-After"), "503 without Retry-After")
                self.assertEqual(resp.header("Stripe-Should-Retry"), "true")
                self.assertTrue(resp.header("Retry-After").strip().isdigit())
            self.assertEqual(self.server.request("GET", "/healthz").status, 200,
                             "liveness must not depend on the database")
            self.assert_error(self.server.request("GET", "/readyz"), 503, "service_unavailable")
        finally:
            pg("start")

        seen = []

        def created():
            resp = self.post_charge(key, body, idem, timeout=15)
            seen.append(resp.status)
            if resp.status == 503:
                self.assertIsNotNone(resp.header("Retry-After"))
                return None
            return resp

        started = time.monotonic()
        resp = h.poll(created, timeout=30, interval=0.2, message="a 201 after PostgreSQL started")
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false", "statuses seen: %r" % seen)
        self.assertEqual(set(seen[:-1]) - {503}, set(), "statuses while reconnecting: %r" % seen)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(self.key_rows(user, idem), (1, 1, 1))
        self.assertEqual(self.counts(user), (2, 2, 2))
        again = self.post_charge(key, body, idem)
        self.assertEqual((again.status, again.body), (201, resp.body))
        self.assertEqual(self.get("/v1/charges/" + obj["id"], key).status, 200)
