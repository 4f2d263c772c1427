"""test_relay_delivery.py - the relay delivers every event, signed, to the right endpoints, in order, with retries."""

import time

import harness as h
import webhooks as wh
from harness import sql_literal as lit

EVENT_FIELDS = ["id", "object", "api_version", "type", "created", "data", "livemode", "request"]


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def first_receipts(requests):
    """webhook-ids in the order they were first delivered (a re-send does not move an event)."""
    seen, out = set(), []
    for r in requests:
        if r.ok and r.webhook_id not in seen:
            seen.add(r.webhook_id)
            out.append(r.webhook_id)
    return out


class DeliveryTest(wh.WebhookTestCase):
    """One relay (test settings, five attempts) for the whole class."""

    def test_every_charge_is_delivered_signed_to_each_matching_endpoint(self):
        """Each succeeded and declined charge reaches exactly the live endpoints of its user that want its type, once, signed"""
        user, key = self.make_user()
        other, other_key = self.make_user("other")
        wants = {
            "match-succeeded": ["charge.succeeded"],
            "match-all": ["*"],
            "match-failed": ["charge.failed"],
            "match-refunds": ["refund.created", "charge.refunded"],
            "match-deleted": ["*"],
        }
        eps = {name: self.create_endpoint(key, name, events) for name, events in wants.items()}
        other_ep = self.create_endpoint(other_key, "match-other", ["*"])
        resp = self.server.request("DELETE", "/v1/webhook_endpoints/" + eps["match-deleted"]["id"],
                                   None, self.auth(key))
        self.assertEqual(resp.status, 200)

        charges = [self.charge(key, "tok_visa") for _ in range(3)]
        charges += [self.charge(key, "tok_chargeDeclined"),
                    self.charge(key, "tok_chargeDeclinedInsufficientFunds")]
        other_charge = self.charge(other_key, "tok_mastercard")

        events = self.events_of(user)
        self.assertEqual(sorted((t, c) for _, t, c in events),
                         sorted([("charge.succeeded", c[0]) for c in charges[:3]]
                                + [("charge.failed", c[0]) for c in charges[3:]]))
        expected = {name: [e for e, t, _ in events if "*" in wants[name] or t in wants[name]]
                    for name in wants if name != "match-deleted"}
        self.assertEqual(len(expected["match-all"]), 5)
        for name, ids in expected.items():
            self.receiver.wait_delivered(name, ids)
        (other_event, _, other_charge_id), = self.events_of(other)
        self.assertEqual(other_charge_id, other_charge[0])
        self.receiver.wait_delivered("match-other", [other_event])
        self.wait_settled(user)
        self.wait_settled(other)

        self.assert_no_receiver_errors()
        for name, ids in expected.items():
            got = self.receiver.requests(name)
            self.assertEqual(sorted(r.webhook_id for r in got), sorted(ids),
                             "%s got %r" % (name, got))
            self.assertTrue(all(r.status == 200 for r in got))
        self.assertEqual(self.receiver.requests("match-refunds"), [])
        self.assertEqual(self.receiver.requests("match-deleted"), [])
        self.assertEqual([r.webhook_id for r in self.receiver.requests("match-other")],
                         [other_event])

        # The database agrees: one delivery per (event, matching endpoint), no others, each
        # succeeded at its first attempt.
        self.assertEqual({k: d[1:] for k, d in self.deliveries_of(user).items()},
                         {(e, eps[name]["id"]): ("succeeded", 1, 200, [200])
                          for name, ids in expected.items() for e in ids})
        self.assertEqual({k: d[1:] for k, d in self.deliveries_of(other).items()},
                         {(other_event, other_ep["id"]): ("succeeded", 1, 200, [200])})
        self.assertEqual(self.db.count("outbox_events",
                                       "user_id = %s AND published_at IS NULL" % lit(user)), 0)

    def test_event_body_is_the_event_object_with_the_charge_as_the_api_shows_it(self):
        """The body is {id, object, type, created, data: {object: charge}, request: {id, idempotency_key}}, data.object byte for byte GET /v1/charges/{id}"""
        user, key = self.make_user()
        self.create_endpoint(key, "body-all")
        made = {c[0]: c for c in (self.charge(key, "tok_amex", 1234),
                                  self.charge(key, "tok_chargeDeclined", 999))}
        events = self.events_of(user)
        got = self.receiver.wait_delivered("body-all", [e for e, _, _ in events])
        self.assert_no_receiver_errors()
        self.assertEqual(len(got), 2)
        for (event_id, type_, charge_id), req in zip(events, sorted(
                got, key=lambda r: [e for e, _, _ in events].index(r.webhook_id))):
            with self.subTest(type=type_):
                self.assertEqual(req.webhook_id, event_id)
                ev = req.event
                self.assertEqual(list(ev.keys()), EVENT_FIELDS)
                self.assertEqual(ev["id"], event_id)
                self.assertEqual(ev["object"], "event")
                self.assertEqual(ev["type"], type_)
                charge_resp = self.get("/v1/charges/" + charge_id, key)
                charge = self.assert_json_response(charge_resp, 200)
                self.assertEqual(ev["data"], {"object": charge})
                self.assertIn(b'"data":{"object":' + charge_resp.body + b"}", req.body)
                self.assertEqual(ev["created"], charge["created"])
                _, request_id, idem = made[charge_id]
                self.assertEqual(ev["request"], {"id": request_id, "idempotency_key": idem})
                self.assertEqual(req.content_type, "application/json")
                self.assertLess(abs(int(req.timestamp) - time.time()), 30)
        statuses = sorted(r.event["data"]["object"]["status"] for r in got)
        self.assertEqual(statuses, ["failed", "succeeded"])

    def test_events_of_a_charge_arrive_in_commit_order(self):
        """Per charge and endpoint, events arrive in outbox order, even through a failing endpoint's retries"""
        user, key = self.make_user()
        wants = {"order-all": ["*"], "order-flaky": ["*"], "order-refunded": ["charge.refunded"]}
        for name, events in wants.items():
            self.create_endpoint(key, name, events)
        self.receiver.fail_next("order-flaky", 2)
        a, _, _ = self.charge(key, amount=10000)
        b, _, _ = self.charge(key, amount=10000)
        for charge_id, amount in ((a, 100), (b, 100), (a, 200), (b, 200), (a, 300)):
            self.refund(key, charge_id, amount)
        events = self.events_of(user)
        self.assertEqual(len(events), 2 + 2 * 5)
        for name, types in wants.items():
            self.receiver.wait_delivered(
                name, [e for e, t, _ in events if "*" in types or t in types])
        self.wait_settled(user)
        self.assert_no_receiver_errors()

        position = {e: i for i, (e, _, _) in enumerate(events)}
        for name, types in wants.items():
            for charge_id in (a, b):
                with self.subTest(endpoint=name, charge=charge_id):
                    want = [e for e, t, c in events
                            if c == charge_id and ("*" in types or t in types)]
                    reqs = [r for r in self.receiver.requests(name) if r.charge_id == charge_id]
                    self.assertEqual(first_receipts(reqs), want)
                    # No attempt of a later event went out before an earlier one was delivered.
                    sent = [position[r.webhook_id] for r in reqs]
                    self.assertEqual(sent, sorted(sent), "requests out of order: %r" % reqs)
        # What a consumer sees: amount_refunded only grows, refund by refund.
        refunded = [r.event["data"]["object"]["amount_refunded"]
                    for r in self.receiver.delivered("order-refunded") if r.charge_id == a]
        self.assertEqual(refunded, [100, 300, 600])
        self.assertEqual([r.status for r in self.receiver.requests("order-flaky")][:3],
                         [500, 500, 200])
        # Libcurl keeps connections alive across rounds: far fewer connections than requests.
        reqs = [r for name in wants for r in self.receiver.requests(name)]
        self.assertLess(len({r.conn for r in reqs}), len(reqs) / 2,
                        "the relay opened a connection per request")

    def test_failing_receiver_gets_the_same_webhook_id_after_backoff(self):
        """A receiver that fails 3 times then recovers gets the event with the same webhook-id, each retry after its backoff"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "flaky")
        self.receiver.fail_next("flaky", 3, 500)
        self.charge(key)
        (event_id, _, _), = self.events_of(user)
        self.receiver.wait_delivered("flaky", [event_id])
        self.wait_settled(user)
        self.assert_no_receiver_errors()

        reqs = self.receiver.requests("flaky")
        self.assertEqual([r.webhook_id for r in reqs], [event_id] * 4)
        self.assertEqual([r.status for r in reqs], [500, 500, 500, 200])
        self.assertEqual(len({r.body for r in reqs}), 1, "the body changed between attempts")
        for i, delay_ms in enumerate(wh.SCHEDULE_MS[1:4]):
            gap = reqs[i + 1].at - reqs[i].at
            self.assertGreaterEqual(gap, 0.8 * delay_ms / 1000 - 0.005,
                                    "retry %d came %.3fs after the attempt before" % (i + 1, gap))

        d_id, status, attempts, code = self.delivery(event_id, ep["id"])
        self.assertEqual((status, attempts, code), ("succeeded", 4, 200))
        rows = self.attempt_rows(d_id)
        self.assertEqual([(c, e) for c, e, _ in rows],
                         [(500, "HTTP 500")] * 3 + [(200, None)])

        lines = self.relay.attempts(d_id)
        self.assertEqual([(r["attempt"], r["status"], r["ok"]) for r in lines],
                         [(1, 500, False), (2, 500, False), (3, 500, False), (4, 200, True)])
        for r, delay_ms in zip(lines, wh.SCHEDULE_MS[1:4]):
            self.assertEqual((r["event"], r["endpoint"]), (event_id, ep["id"]))
            self.assertGreaterEqual(r["next_attempt_in_ms"], 0.8 * delay_ms)
            self.assertLessEqual(r["next_attempt_in_ms"], 1.2 * delay_ms)

    def test_retry_after_is_honoured_and_capped(self):
        """A 503 with Retry-After: 1 waits a second; a 429 with Retry-After: 3600 waits only PAYMENTS_WEBHOOK_RETRY_AFTER_MAX"""
        user, key = self.make_user()
        honour = self.create_endpoint(key, "retry-after-1")
        cap = self.create_endpoint(key, "retry-after-3600")
        self.receiver.fail_next("retry-after-1", 1, 503, {"Retry-After": "1"})
        self.receiver.fail_next("retry-after-3600", 1, 429, {"Retry-After": "3600"})
        self.charge(key)
        (event_id, _, _), = self.events_of(user)
        for name in ("retry-after-1", "retry-after-3600"):
            self.receiver.wait_delivered(name, [event_id])
        self.wait_settled(user)
        self.assert_no_receiver_errors()

        first, second = self.receiver.requests("retry-after-1")
        self.assertEqual((first.status, second.status), (503, 200))
        self.assertGreaterEqual(second.at - first.at, 0.99)
        first, second = self.receiver.requests("retry-after-3600")
        self.assertEqual((first.status, second.status), (429, 200))
        self.assertGreaterEqual(second.at - first.at, 1.49)
        self.assertLess(second.at - first.at, 5)
        for ep, status, delay in ((honour, 503, 1000), (cap, 429, 1500)):
            d_id = self.delivery(event_id, ep["id"])[0]
            line = self.relay.attempts(d_id)[0]
            self.assertEqual((line["status"], line["next_attempt_in_ms"]), (status, delay))
            self.assertEqual([c for c, _, _ in self.attempt_rows(d_id)], [status, 200])

    def test_hanging_receiver_times_out_and_is_retried(self):
        """A receiver that does not answer within PAYMENTS_WEBHOOK_TIMEOUT counts as a failure, recorded without a status, and is retried"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "slow")
        self.receiver.hang_next("slow", 1)
        try:
            self.charge(key)
            (event_id, _, _), = self.events_of(user)
            self.receiver.wait_delivered("slow", [event_id])
            self.wait_settled(user)
        finally:
            self.receiver.release("slow")
        reqs = self.receiver.requests("slow")
        self.assertEqual([r.webhook_id for r in reqs], [event_id] * 2)
        d_id, status, attempts, code = self.delivery(event_id, ep["id"])
        self.assertEqual((status, attempts, code), ("succeeded", 2, 200))
        (c1, e1, ms1), (c2, e2, _) = self.attempt_rows(d_id)
        self.assertIsNone(c1)
        # The tenant reads the text of every failed connection, with no timing (an
        # internal network's map); the relay's log keeps the cause and the time.
        self.assertEqual((e1, ms1), ("no HTTP response: the connection failed, was refused or timed out", 0))
        logged = self.relay.attempts(d_id)[0]
        self.assertRegex(logged.get("detail", ""), "(?i)time")
        self.assertGreaterEqual(logged["duration_ms"], 900)
        self.assertLess(logged["duration_ms"], 3000)
        self.assertEqual((c2, e2), (200, None))

    def test_refusing_endpoint_does_not_hold_back_another(self):
        """An endpoint that refuses connections fails alone: another endpoint gets every event of the charge, in order"""
        user, key = self.make_user()
        closed = h.free_port()
        bad = self.create_endpoint(key, "refusing", url="http://127.0.0.1:%d/hooks" % closed)
        self.create_endpoint(key, "healthy")
        charge_id, _, _ = self.charge(key, amount=5000)
        self.refund(key, charge_id, 100)
        self.refund(key, charge_id, 200)
        events = [e for e, _, _ in self.events_of(user)]
        self.assertEqual(len(events), 5)
        got = self.receiver.wait_delivered("healthy", events)
        self.assertEqual(first_receipts(got), events)
        def attempted():
            d = self.delivery(events[0], bad["id"])
            return d if d is not None and d[2] > 0 else None
        first = h.poll(attempted, message="an attempt at the refusing endpoint")
        code, error, _ = self.attempt_rows(first[0])[0]
        self.assertIsNone(code)
        self.assertRegex(error, "(?i)connect")
        # Behind the failing first event, the later ones wait their turn at that endpoint:
        # none is tried while the first is still pending (read them first, then the first).
        later = [self.delivery(ev, bad["id"]) for ev in events[1:]]
        if self.delivery(events[0], bad["id"])[1] == "pending":
            self.assertEqual([d[2] for d in later], [0] * 4,
                             "later deliveries %r went ahead of the first" % (later,))

    def test_log_has_one_json_line_per_attempt_and_no_secret(self):
        """The relay logs one JSON line per attempt (event, endpoint, attempt, status, duration) and no log holds a signing secret"""
        user, key = self.make_user()
        eps = {name: self.create_endpoint(key, name) for name in ("log-ok", "log-flaky")}
        self.receiver.fail_next("log-flaky", 2, 503)
        self.charge(key)
        self.charge(key, "tok_chargeDeclined")
        events = [e for e, _, _ in self.events_of(user)]
        for name in eps:
            self.receiver.wait_delivered(name, events)
        self.wait_settled(user)

        records = self.relay.records()   # fails on any line that is not JSON
        self.assertTrue(records)
        deliveries = self.deliveries_of(user)
        self.assertEqual(len(deliveries), 4)
        for (event_id, endpoint_id), d in deliveries.items():
            lines = self.relay.attempts(d.id)
            self.assertEqual(len(lines), len(d.codes), "log lines of %s: %r" % (d.id, lines))
            self.assertEqual([r["attempt"] for r in lines], list(range(1, len(d.codes) + 1)))
            for line, code in zip(lines, d.codes):
                self.assertEqual((line["event"], line["endpoint"]), (event_id, endpoint_id))
                self.assertEqual(line["status"], code)
                self.assertIsInstance(line["duration_ms"], int)
                self.assertGreaterEqual(line["duration_ms"], 0)
                self.assertIn(line["level"], ("info", "warn"))
        self.assertEqual(len([r for r in self.receiver.requests("log-flaky")]), 4)

        logs = {"relay": self.relay.log(), "server": self.server.log()}
        self.assertGreaterEqual(len(self.secrets), 2)
        for secret in self.secrets:
            for where, text in logs.items():
                self.assertNotIn(secret[len("whsec_"):], text, "a signing secret is in the %s log" % where)
        for secret in self.db.query("SELECT secret FROM webhook_endpoints").split("\n"):
            for where, text in logs.items():
                self.assertNotIn(secret[len("whsec_"):], text, "a signing secret is in the %s log" % where)
