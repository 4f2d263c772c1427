#!/usr/bin/env python3
"""test_checks.py - the chaos harness's own tests: each invariant check catches the violation it names, on made-up histories.

No database or server: a consistent world (two charges, a refund, their
events and deliveries) passes every check; each test breaks one thing and
expects exactly the check about it to fail. Also the receiver's signature
check against the Standard Webhooks test vector. Run: python3 tests/chaos/test_checks.py
"""

import collections
import email.message
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks                           # noqa: E402
import receiver                         # noqa: E402
from workload import Op                 # noqa: E402

USER = "chaos_u0"


def charge_op(key, amount, source, outcome, object_id, status):
    op = Op("charge", USER, key, json.dumps({"amount": amount, "currency": "usd",
                                             "source": source}).encode())
    op.outcome, op.object_id, op.status = outcome, object_id, status
    if outcome == "ok":
        op.resp = {"id": object_id, "status": "succeeded", "amount": amount, "captured": True}
    else:
        op.code = "card_declined"
        op.resp = {"error": {"code": "card_declined", "charge": object_id}}
    return op


def refund_op(key, charge, amount, outcome, object_id=None, status=201, code=None):
    op = Op("refund", USER, key, json.dumps({"charge": charge, "amount": amount}).encode())
    op.outcome, op.object_id, op.status, op.code = outcome, object_id, status, code
    op.resp = {"id": object_id, "charge": charge, "amount": amount} if outcome == "ok" else {}
    return op


class World:
    """A run where everything went right."""

    def __init__(self):
        self.ops = [
            charge_op("k1", 1000, "tok_visa", "ok", "ch_1", 201),
            charge_op("k2", 500, "tok_chargeDeclined", "declined", "ch_2", 402),
            refund_op("k3", "ch_1", 300, "ok", "re_1"),
            refund_op("k4", "ch_1", 900, "failed", status=400, code="amount_too_large"),
        ]
        snap = checks.Snapshot.__new__(checks.Snapshot)
        snap.charges = {
            "ch_1": {"id": "ch_1", "user": USER, "amount": 1000, "status": "succeeded",
                     "amount_refunded": 300, "key": "k1"},
            "ch_2": {"id": "ch_2", "user": USER, "amount": 500, "status": "failed",
                     "amount_refunded": 0, "key": "k2"},
        }
        snap.refunds = {"re_1": {"id": "re_1", "user": USER, "charge": "ch_1", "amount": 300,
                                 "key": "k3"}}
        snap.events = [
            self.event(1, "evt_1", "charge.succeeded", "ch_1", "ch_1", "k1"),
            self.event(2, "evt_2", "charge.failed", "ch_2", "ch_2", "k2"),
            self.event(3, "evt_3", "refund.created", "re_1", "ch_1", "k3", amount=300),
            self.event(4, "evt_4", "charge.refunded", "ch_1", "ch_1", "k3", refunded=300),
        ]
        snap.idem = {(USER, "k1"): ("ch_1", 201), (USER, "k2"): ("ch_2", 402),
                     (USER, "k3"): ("re_1", 201)}
        snap.deliveries = collections.Counter({"succeeded": 4})
        self.snap = snap
        self.arrivals = []
        for e in snap.events:
            self.arrive(e, 200)
        self.unresolved = []
        self.drained = 0.5
        self.backlog = (0, 0, 0)

    @staticmethod
    def event(seq, eid, type_, obj, charge, key, amount=None, refunded=None):
        return {"seq": seq, "id": eid, "user": USER, "type": type_, "object": obj,
                "charge": charge, "key": key, "published": True, "amount": amount,
                "amount_refunded": refunded}

    def arrive(self, e, status, error=None, hung=False):
        body = {"id": e["id"], "type": e["type"], "data": {"object": {"id": e["object"]}}}
        a = receiver.Arrival(len(self.arrivals), e["user"], e["id"], body, error)
        a.status, a.hung = status, hung
        self.arrivals.append(a)
        return a

    def results(self):
        by_key = checks.rows_by_key(self.snap)

        class Proc:
            name = "serve"
            unexpected = []
        self.proc = getattr(self, "proc", Proc())
        return [
            checks.check_acknowledged(self.ops, by_key),
            checks.check_keys(self.ops, self.snap, by_key),
            checks.check_unknowns(self.ops, by_key, self.unresolved),
            checks.check_definite(self.ops, self.snap, by_key),
            checks.check_replays(self.ops, by_key),
            checks.check_money(self.snap),
            checks.check_outbox(self.snap),
            checks.check_captures(self.ops, self.snap),
            checks.check_drained(self.drained, self.backlog, 60),
            checks.check_received(self.snap, self.arrivals),
            checks.check_exactly_once(self.snap, self.arrivals),
            checks.check_order(self.snap, self.arrivals),
            checks.check_processes([self.proc]),
        ]


class TestChecks(unittest.TestCase):

    def assert_only_fails(self, world, name_part):
        results = world.results()
        failing = [r.name for r in results if not r.ok]
        self.assertEqual(len(failing), 1, "failing checks: %s" % failing)
        self.assertIn(name_part, failing[0])

    def test_consistent_world_passes_every_check(self):
        results = World().results()
        self.assertEqual([r.name for r in results if not r.ok], [])

    def test_acknowledged_charge_missing_is_caught(self):
        w = World()
        w.ops.append(charge_op("k5", 700, "tok_visa", "ok", "ch_5", 201))
        self.assert_only_fails(w, "acknowledged")

    def test_acknowledged_charge_with_another_amount_is_caught(self):
        w = World()
        w.snap.charges["ch_2"]["amount"] = 501
        self.assert_only_fails(w, "acknowledged")

    def test_two_charges_under_one_key_are_caught(self):
        w = World()
        w.snap.charges["ch_9"] = dict(w.snap.charges["ch_2"], id="ch_9")
        w.snap.events.append(w.event(5, "evt_9", "charge.failed", "ch_9", "ch_9", "k2"))
        w.arrive(w.snap.events[-1], 200)
        results = {r.name: r for r in w.results()}
        self.assertFalse(results["every Idempotency-Key maps to at most one charge or refund"].ok)
        self.assertFalse(results["every acknowledged charge and refund exists exactly once"].ok)

    def test_a_row_under_a_key_nobody_sent_is_caught(self):
        w = World()
        w.snap.charges["ch_9"] = dict(w.snap.charges["ch_2"], id="ch_9", key="zz")
        w.snap.idem[(USER, "zz")] = ("ch_9", 402)
        w.snap.events.append(w.event(5, "evt_9", "charge.failed", "ch_9", "ch_9", "zz"))
        w.arrive(w.snap.events[-1], 200)
        self.assert_only_fails(w, "Idempotency-Key")

    def test_idempotency_row_naming_another_object_is_caught(self):
        w = World()
        w.snap.idem[(USER, "k3")] = ("re_2", 201)
        self.assert_only_fails(w, "Idempotency-Key")

    def test_unresolved_unknown_is_caught(self):
        w = World()
        op = refund_op("k6", "ch_1", 10, "unknown")
        op.was_unknown = True
        w.ops.append(op)
        w.unresolved = [op]
        self.assert_only_fails(w, "unknown")

    def test_unknown_resolved_as_refused_but_stored_is_caught(self):
        w = World()
        op = w.ops[2]                       # the refund re_1 exists
        op.was_unknown = True
        op.outcome, op.status, op.code, op.object_id = "failed", 400, "amount_too_large", None
        results = {r.name: r for r in w.results()}
        self.assertFalse(results["each unknown operation ended as exactly 0 or 1"].ok)
        self.assertFalse(results["every definite answer is allowed, refusals stored nothing"].ok)

    def test_unjustified_refusal_is_caught(self):
        w = World()
        w.ops[3] = refund_op("k4", "ch_1", 700, "failed", status=400, code="amount_too_large")
        self.assert_only_fails(w, "definite answer")

    def test_key_reused_answer_is_caught(self):
        w = World()
        w.ops[3] = refund_op("k4", "ch_1", 900, "failed", status=409,
                             code="idempotency_key_reused")
        self.assert_only_fails(w, "definite answer")

    def test_declined_visa_is_caught(self):
        w = World()
        w.ops[0].source = "tok_visa"
        w.ops[1].source = "tok_visa"
        self.assert_only_fails(w, "definite answer")

    def test_replay_after_a_timeout_is_allowed(self):
        w = World()
        w.ops[0].answers, w.ops[0].replayed = ["timeout", 503, 201], True
        self.assertEqual([r.name for r in w.results() if not r.ok], [])

    def test_replay_after_only_503s_is_caught(self):
        w = World()
        w.ops[0].answers, w.ops[0].replayed = [503, 503, 201], True
        self.assert_only_fails(w, "replay")

    def test_replay_on_the_first_attempt_is_caught(self):
        w = World()
        w.ops[2].answers, w.ops[2].replayed = [201], True
        self.assert_only_fails(w, "replay")

    def test_amount_refunded_off_the_sum_is_caught(self):
        w = World()
        w.snap.charges["ch_1"]["amount_refunded"] = 400
        self.assert_only_fails(w, "amount_refunded")

    def test_missing_outbox_event_is_caught(self):
        w = World()
        del w.snap.events[3]                # charge.refunded of re_1
        w.arrivals = [a for a in w.arrivals if a.webhook_id != "evt_4"]
        self.assert_only_fails(w, "outbox")

    def test_charge_refunded_event_with_a_stale_total_is_caught(self):
        w = World()
        w.snap.events[3]["amount_refunded"] = 0
        self.assert_only_fails(w, "outbox")

    def test_refund_created_event_with_another_amount_is_caught(self):
        w = World()
        w.snap.events[2]["amount"] = 301
        self.assert_only_fails(w, "outbox")

    @staticmethod
    def with_capture(w):
        """w plus an authorization ch_3 of 800, captured for 600 under key k6, then refunded 100."""
        auth = Op("charge", USER, "k5", json.dumps({"amount": 800, "currency": "usd",
                                                   "source": "tok_visa", "capture": False}).encode())
        auth.outcome, auth.object_id, auth.status = "ok", "ch_3", 201
        auth.resp = {"id": "ch_3", "status": "succeeded", "amount": 800, "captured": False}
        cap = Op("capture", USER, "k6", json.dumps({"amount": 600}).encode(), charge="ch_3")
        cap.outcome, cap.object_id, cap.status = "ok", "ch_3", 200
        cap.resp = {"id": "ch_3", "captured": True, "amount_captured": 600}
        late = Op("capture", USER, "k7", b"{}", charge="ch_3")
        late.outcome, late.status, late.code = "failed", 400, "charge_already_captured"
        ref = refund_op("k8", "ch_3", 100, "ok", "re_3")
        w.ops += [auth, cap, late, ref]
        w.snap.charges["ch_3"] = {"id": "ch_3", "user": USER, "amount": 800, "status": "succeeded",
                                  "amount_refunded": 100, "key": "k5", "captured": True,
                                  "amount_captured": 600, "release_reason": ""}
        w.snap.refunds["re_3"] = {"id": "re_3", "user": USER, "charge": "ch_3", "amount": 100,
                                  "key": "k8"}
        ev = w.event(5, "evt_5", "charge.succeeded", "ch_3", "ch_3", "k5")
        ev["captured"] = False
        w.snap.events += [ev, w.event(6, "evt_6", "charge.captured", "ch_3", "ch_3", "k6"),
                          w.event(7, "evt_7", "refund.created", "re_3", "ch_3", "k8", amount=100),
                          w.event(8, "evt_8", "charge.refunded", "ch_3", "ch_3", "k8", refunded=100)]
        for e in w.snap.events[4:]:
            w.arrive(e, 200)
        w.snap.idem.update({(USER, "k5"): ("ch_3", 201), (USER, "k6"): ("ch_3", 200),
                            (USER, "k8"): ("re_3", 201)})
        w.snap.deliveries["succeeded"] += 4
        return w

    def test_a_world_with_a_capture_passes_every_check(self):
        results = self.with_capture(World()).results()
        self.assertEqual([r.name for r in results if not r.ok], [])

    def test_a_second_capture_key_of_one_charge_is_caught(self):
        w = self.with_capture(World())
        w.snap.idem[(USER, "k7")] = ("ch_3", 200)
        failing = [r.name for r in w.results() if not r.ok]
        self.assertTrue(any("captured at most once" in n for n in failing), failing)

    def test_refunded_more_than_captured_is_caught(self):
        w = self.with_capture(World())
        w.snap.charges["ch_3"]["amount_captured"] = 50
        failing = [r.name for r in w.results() if not r.ok]
        self.assertTrue(any("captured <= authorized" in n for n in failing), failing)

    def test_captured_more_than_authorized_is_caught(self):
        w = self.with_capture(World())
        w.snap.charges["ch_3"]["amount_captured"] = 900
        failing = [r.name for r in w.results() if not r.ok]
        self.assertTrue(any("captured <= authorized" in n for n in failing), failing)

    def test_a_missing_charge_captured_event_is_caught(self):
        w = self.with_capture(World())
        del w.snap.events[5]
        failing = [r.name for r in w.results() if not r.ok]
        self.assertTrue(any("outbox" in n for n in failing), failing)

    def test_undrained_relay_is_caught(self):
        w = World()
        w.drained, w.backlog = None, (0, 2, 0)
        self.assert_only_fails(w, "drained")

    def test_undelivered_event_is_caught(self):
        w = World()
        w.arrivals[1].status = 500
        self.assert_only_fails(w, "reached the receiver")

    def test_hung_request_is_not_a_delivery(self):
        w = World()
        w.arrivals[1].status, w.arrivals[1].hung = 503, True
        self.assert_only_fails(w, "reached the receiver")

    def test_unauthentic_request_is_caught(self):
        w = World()
        w.arrive(w.snap.events[0], 400, error="no valid v1 signature")
        self.assert_only_fails(w, "reached the receiver")

    def test_delivered_id_not_in_the_outbox_is_caught(self):
        w = World()
        w.arrive(w.event(9, "evt_x", "charge.succeeded", "ch_1", "ch_1", "k1"), 200)
        self.assert_only_fails(w, "exactly once")

    def test_delivery_with_another_body_is_caught(self):
        w = World()
        w.arrivals[0].event["type"] = "charge.failed"
        self.assert_only_fails(w, "exactly once")

    def test_duplicates_are_allowed(self):
        w = World()
        w.arrive(w.snap.events[0], 200)
        w.arrive(w.snap.events[2], 200)
        self.assertEqual([r.name for r in w.results() if not r.ok], [])

    def test_events_of_a_charge_out_of_order_are_caught(self):
        w = World()
        w.arrivals = []
        for i in (0, 1, 3, 2):              # charge.refunded before refund.created
            w.arrive(w.snap.events[i], 200)
        self.assert_only_fails(w, "in order")

    def test_order_counts_the_first_arrival_even_if_refused(self):
        w = World()
        w.arrivals = []
        w.arrive(w.snap.events[0], 200)
        w.arrive(w.snap.events[1], 200)
        w.arrive(w.snap.events[3], 500)     # sent before its predecessor was delivered
        w.arrive(w.snap.events[2], 200)
        w.arrive(w.snap.events[3], 200)
        self.assert_only_fails(w, "in order")

    def test_process_death_is_caught(self):
        w = World()

        class Proc:
            name = "relay"
            unexpected = [(0, -11, "segfault")]
        w.proc = Proc()
        self.assert_only_fails(w, "died")


class TestSignature(unittest.TestCase):
    SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    TS = "1614265330"
    SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def headers(self, **over):
        h = email.message.Message()
        values = {"webhook-id": self.ID, "webhook-timestamp": self.TS,
                  "webhook-signature": self.SIG, "Content-Type": "application/json"}
        values.update(over)
        for k, v in values.items():
            h[k] = v
        return h

    def test_standard_webhooks_vector(self):
        self.assertEqual(receiver.expected_signature(self.SECRET, self.ID, self.TS,
                                                     b'{"test": 2432232314}'), self.SIG)

    def test_verify_refuses_a_wrong_signature_stale_timestamp_and_foreign_body(self):
        body = json.dumps({"id": self.ID}).encode()
        sig = receiver.expected_signature(self.SECRET, self.ID, self.TS, body)
        now = int(self.TS)
        self.assertIsNone(receiver.verify(self.SECRET, self.headers(**{"webhook-signature": sig}),
                                          body, now))
        self.assertIsNotNone(receiver.verify(self.SECRET, self.headers(), body, now))
        self.assertIsNotNone(receiver.verify(
            self.SECRET, self.headers(**{"webhook-signature": sig}), body, now + 301))
        other = json.dumps({"id": "msg_other"}).encode()
        sig2 = receiver.expected_signature(self.SECRET, self.ID, self.TS, other)
        self.assertIsNotNone(receiver.verify(
            self.SECRET, self.headers(**{"webhook-signature": sig2}), other, now))


if __name__ == "__main__":
    unittest.main()
