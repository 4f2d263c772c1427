"""test_relay_processes.py - relays as processes: backlog status, two relays at once, kill -9, a stalled endpoint."""

import collections
import time

import harness as h
import webhooks as wh
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class RelayProcessTest(wh.WebhookTestCase):
    """Each test starts (and stops) the relays it needs; none runs between tests."""

    start_relay = False

    def start(self, env=None):
        relay = self.new_relay(env)
        self.addCleanup(relay.stop)
        return relay

    def test_status_reports_the_backlog(self):
        """'relay status' counts the unpublished events and their age while no relay runs, and zero once a relay has caught up"""
        user, key = self.make_user()
        self.create_endpoint(key, "backlog")
        # Events an earlier test left behind count too: measure from what is there now.
        before = wh.relay_status(self.db.app_url)
        started = time.monotonic()
        for _ in range(3):
            self.charge(key)
        status = wh.relay_status(self.db.app_url)
        elapsed = time.monotonic() - started
        self.assertEqual(status["unpublished events"], before["unpublished events"] + 3)
        self.assertEqual(status["unpublished events"],
                         self.db.count("outbox_events", "published_at IS NULL"))
        self.assertGreater(status["oldest unpublished age"], 0)
        if before["unpublished events"] == 0:
            self.assertLessEqual(status["oldest unpublished age"], elapsed + 1)
        self.assertEqual(status["pending deliveries"], before["pending deliveries"])
        self.assertEqual(self.receiver.requests("backlog"), [])

        relay = self.start()
        events = [e for e, _, _ in self.events_of(user)]
        self.receiver.wait_delivered("backlog", events)
        self.wait_settled(user)
        status = h.poll(lambda: (lambda s: s["unpublished events"] == 0
                                 and s["pending deliveries"] == 0 and s)(
                                     wh.relay_status(self.db.app_url)),
                        message="relay status to show no backlog")
        self.assertEqual(status["oldest unpublished age"], 0)
        backlog = [r for r in relay.records() if r.get("msg") == "relay backlog"]
        self.assertTrue(backlog, "the relay never logged its backlog")
        for field in ("unpublished_events", "oldest_unpublished_s", "pending_deliveries"):
            self.assertIn(field, backlog[0])

    def test_two_relays_deliver_each_event_exactly_once(self):
        """Two relays running together share the work and deliver each of 40 events exactly once"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "pair")
        relays = [self.start({"PAYMENTS_RELAY_BATCH": "4"}) for _ in range(2)]
        h.run_concurrently(4, lambda i: [self.charge(key) for _ in range(10)])
        events = [e for e, _, _ in self.events_of(user)]
        self.assertEqual(len(events), 40)
        self.receiver.wait_delivered("pair", events, timeout=20)
        self.wait_settled(user)
        self.assert_no_receiver_errors()

        counts = collections.Counter(r.webhook_id for r in self.receiver.requests("pair"))
        self.assertEqual({e: n for e, n in counts.items() if n != 1}, {},
                         "events delivered more than once")
        self.assertEqual(set(counts), set(events))
        self.assertEqual(self.db.count("webhook_deliveries", "endpoint_id = %s AND status ="
                                       " 'succeeded' AND attempts = 1" % lit(ep["id"])), 40)
        self.assertEqual(self.db.count(
            "webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id",
            "d.endpoint_id = %s" % lit(ep["id"])), 40)
        sent = [{r["event"] for r in relay.attempts() if r["endpoint"] == ep["id"]}
                for relay in relays]
        self.assertEqual(sent[0] & sent[1], set(), "both relays sent the same events")
        self.assertEqual(sent[0] | sent[1], set(events))
        self.assertTrue(sent[0] and sent[1],
                        "one relay did all the work: %d and %d events" % tuple(map(len, sent)))

    def test_workers_of_one_relay_share_the_work(self):
        """One relay with 4 workers (PAYMENTS_RELAY_WORKERS) delivers a backlog of 40 charges and 10 refunds exactly once, several workers sending, each charge's events in order"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "workers")
        charges = h.run_concurrently(4, lambda i: [self.charge(key)[0] for _ in range(10)])
        charges = [c for batch in charges for c in batch]
        for charge_id in charges[:10]:
            self.refund(key, charge_id, 500)
        relay = self.start({"PAYMENTS_RELAY_BATCH": "4", "PAYMENTS_RELAY_WORKERS": "4"})
        rows = self.events_of(user)
        events = [e for e, _, _ in rows]
        self.assertEqual(len(events), 40 + 10 * 2)   # a refund is refund.created + charge.refunded
        self.receiver.wait_delivered("workers", events, timeout=20)
        self.wait_settled(user)
        self.assert_no_receiver_errors()

        received = self.receiver.requests("workers")
        counts = collections.Counter(r.webhook_id for r in received)
        self.assertEqual({e: n for e, n in counts.items() if n != 1}, {},
                         "events delivered more than once")
        self.assertEqual(set(counts), set(events))
        order = {e: i for i, e in enumerate(events)}
        charge_of = {e: c for e, _, c in rows}
        arrived = collections.defaultdict(list)
        for r in received:
            arrived[charge_of[r.webhook_id]].append(order[r.webhook_id])
        for charge_id, seqs in arrived.items():
            self.assertEqual(seqs, sorted(seqs), "charge %s: events out of order" % charge_id)
        workers = collections.Counter(r["worker"] for r in relay.attempts() if r["endpoint"] == ep["id"])
        self.assertEqual(sum(workers.values()), len(events))
        self.assertLessEqual(set(workers), {0, 1, 2, 3})
        self.assertGreater(len(workers), 1, "one worker did all the work: %r" % workers)

    def test_sigkill_mid_batch_loses_nothing(self):
        """kill -9 of the relay while its batch hangs loses nothing: after a restart every event arrives, the ones in flight again"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "crash")
        self.receiver.hang("crash")
        try:
            # A 2 s timeout leaves time to kill the relay before it gives up on its batch.
            relay = self.start({"PAYMENTS_WEBHOOK_TIMEOUT": "2s"})
            for _ in range(6):
                self.charge(key)
            h.poll(lambda: self.receiver.hanging("crash"), message="a delivery in flight")
            relay.kill()
            in_flight = {r.webhook_id for r in self.receiver.requests("crash")}
            for _ in range(2):   # committed while no relay runs
                self.charge(key)
        finally:
            self.receiver.release("crash")
        events = [e for e, _, _ in self.events_of(user)]
        self.assertEqual(len(events), 8)
        self.assertTrue(in_flight)
        # Nothing of the killed attempts was recorded: those deliveries are still pending.
        for event_id in in_flight:
            d_id, status, attempts, _ = self.delivery(event_id, ep["id"])
            self.assertEqual((status, attempts), ("pending", 0))
            self.assertEqual(self.attempt_rows(d_id), [])
        self.assertEqual(self.receiver.delivered("crash"), [])

        self.start()
        self.receiver.wait_delivered("crash", events, timeout=15)
        self.wait_settled(user)
        self.assert_no_receiver_errors()
        for event_id in in_flight:
            sent = [r for r in self.receiver.requests("crash") if r.webhook_id == event_id]
            self.assertTrue(sent[0].hung and sent[-1].ok, "%s: %r" % (event_id, sent))
        for event_id in events:
            d_id, status, attempts, code = self.delivery(event_id, ep["id"])
            self.assertEqual((status, code), ("succeeded", 200))
            self.assertEqual(len(self.attempt_rows(d_id)), attempts)

    def test_stalled_endpoint_does_not_hold_back_another(self):
        """While one endpoint hangs until the timeout, another endpoint still gets every event of the charge promptly, in order"""
        user, key = self.make_user()
        self.create_endpoint(key, "stalled")
        self.create_endpoint(key, "prompt")
        self.receiver.hang("stalled")
        try:
            self.start({"PAYMENTS_WEBHOOK_TIMEOUT": "3s", "PAYMENTS_RELAY_LEASE": "5s"})
            charge_id, _, _ = self.charge(key, amount=5000)
            for amount in (100, 200, 300):
                self.refund(key, charge_id, amount)
            events = [e for e, _, _ in self.events_of(user)]
            self.assertEqual(len(events), 7)
            # Well within one stalled attempt's 3 s timeout.
            got = self.receiver.wait_delivered("prompt", events, timeout=2.5)
            self.assertEqual([r.webhook_id for r in got], events)
        finally:
            self.receiver.release("stalled")
        got = self.receiver.wait_delivered("stalled", events, timeout=15)
        ids = []
        for r in got:
            if r.webhook_id not in ids:
                ids.append(r.webhook_id)
        self.assertEqual(ids, events)
        self.wait_settled(user)
        self.assert_no_receiver_errors()
