"""test_relay_fairness.py - one tenant's hanging receiver and backlog do not hold back another tenant's webhooks."""

import time

import harness as h
import webhooks as wh
from harness import sql_literal as lit

# Small numbers so that the old relay visibly starves: a pipeline of 20 per
# worker, of which one endpoint may hold 4.
BATCH = 20
SHARE = 4
WORKERS = 2
# A hanging attempt is held this long before the relay gives up on it: far
# beyond the bound the healthy tenant's deliveries must meet.
ATTEMPT_TIMEOUT_S = 20
# Every webhook of the healthy tenant arrives within this of its charge.
LATENCY_BOUND_S = 5


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class FairRelayTest(wh.WebhookTestCase):
    start_relay = False
    server_env = dict(wh.WebhookTestCase.server_env, PAYMENTS_RATE_LIMIT="0")
    relay_env = {
        "PAYMENTS_RELAY_BATCH": str(BATCH),
        "PAYMENTS_RELAY_ENDPOINT_IN_FLIGHT": str(SHARE),
        "PAYMENTS_RELAY_WORKERS": str(WORKERS),
        "PAYMENTS_WEBHOOK_TIMEOUT": "%ds" % ATTEMPT_TIMEOUT_S,
        "PAYMENTS_RELAY_LEASE": "%ds" % (ATTEMPT_TIMEOUT_S + 10),
        "PAYMENTS_SHUTDOWN_TIMEOUT": "1s",
    }

    def pending(self, user):
        return self.db.count("webhook_deliveries",
                             "user_id = %s AND status = 'pending'" % lit(user))

    def test_a_hanging_tenant_with_a_backlog_does_not_hold_back_another(self):
        """Tenant A's receiver never answers and has 80 deliveries due first; tenant B's 10 webhooks still all arrive within 5 s while A's wait, A holding at most its share of each worker"""
        a, key_a = self.make_user("hang")
        b, key_b = self.make_user("fast")
        self.create_endpoint(key_a, "fair-hang-a")
        self.create_endpoint(key_b, "fair-fast-b")
        self.receiver.hang("fair-hang-a")
        self.addCleanup(self.receiver.release, "fair-hang-a")
        # A's backlog is committed before any relay runs, so all of it comes due first.
        for _ in range(80):
            self.charge(key_a)
        relay = self.new_relay()
        self.addCleanup(relay.stop)   # runs before the release: nothing of A is delivered
        h.poll(lambda: len(self.receiver.hanging("fair-hang-a")) >= SHARE,
               message="A's receiver to hold attempts")

        started = time.monotonic()
        for _ in range(10):
            self.charge(key_b)
        events_b = [e for e, _, _ in self.events_of(b)]
        self.assertEqual(len(events_b), 10)
        self.receiver.wait_delivered("fair-fast-b", events_b, timeout=LATENCY_BOUND_S)
        took = time.monotonic() - started
        self.assertLess(took, LATENCY_BOUND_S)
        self.wait_settled(b, timeout=LATENCY_BOUND_S)

        # A still waits: nothing delivered, almost everything pending, and its
        # receiver holds at most its share of each worker's pipeline.
        self.assertEqual(self.receiver.delivered_ids("fair-hang-a"), [])
        self.assertGreaterEqual(self.pending(a), 80 - SHARE * WORKERS)
        self.assertLessEqual(len(self.receiver.hanging("fair-hang-a")), SHARE * WORKERS)
        self.assertLessEqual(len(self.receiver.requests("fair-hang-a")), SHARE * WORKERS,
                             "the relay sent A more attempts than its share")
        self.assert_no_receiver_errors()
