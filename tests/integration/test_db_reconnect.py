"""test_db_reconnect.py - the pool when the database drops its connections or turns read-only, as in a failover."""

import time

import harness as h


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class ReconnectTest(h.ServiceTestCase):

    def app_backends(self):
        return int(self.db.query(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s"
            % h.sql_literal(self.db.app_role)))

    def terminate_app_backends(self):
        """Closes every connection of the server's role and waits until they are gone."""
        self.db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s"
                      % h.sql_literal(self.db.app_role))
        h.poll(lambda: self.app_backends() == 0, message="the terminated backends to exit")

    def charge_ok(self, key):
        resp = self.post_charge(key, h.charge_body(), h.new_key())
        self.assertEqual(resp.status, 201, resp)

    def test_closed_idle_connections_are_redialled_before_use(self):
        """After the server closes every pooled connection, the next charges all succeed (no 503)"""
        _, key = self.make_user()
        # Fill the pool: concurrent charges open several connections.
        h.run_concurrently(8, lambda i: self.charge_ok(key))
        self.assertGreater(self.app_backends(), 1)
        self.terminate_app_backends()
        statuses = [self.post_charge(key, h.charge_body(), h.new_key()).status for _ in range(20)]
        self.assertEqual(set(statuses), {201}, statuses)

    def test_a_read_only_server_is_not_ready_and_answers_503(self):
        """A read-only server makes /readyz 503 and charges 503 with Retry-After; writable again, both recover"""
        _, key = self.make_user()
        self.charge_ok(key)
        role = '"%s"' % self.db.app_role
        self.db.query("ALTER ROLE %s SET default_transaction_read_only = on" % role)
        try:
            self.terminate_app_backends()
            ready = self.server.request("GET", "/readyz")
            self.assert_error(ready, 503, "service_unavailable")
            resp = self.post_charge(key, h.charge_body(), h.new_key())
            self.assert_error(resp, 503, "service_unavailable")
            self.assertIsNotNone(resp.header("Retry-After"))
        finally:
            self.db.query("ALTER ROLE %s RESET default_transaction_read_only" % role)
        # Connections made while read-only are dropped on their next error and redialled.
        h.poll(lambda: self.server.request("GET", "/readyz").status == 200,
               message="/readyz to be ready again")
        deadline = time.monotonic() + h.POLL_TIMEOUT
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(self.post_charge(key, h.charge_body(), h.new_key()).status)
            if statuses[-5:] == [201] * 5:
                break
        self.assertEqual(statuses[-5:], [201] * 5, statuses)
        self.assertEqual(set(statuses) - {201, 503}, set(), statuses)
