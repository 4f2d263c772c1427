"""test_relay_deadletter.py - deliveries that never succeed die, are listed, and are replayed by the API and the CLI."""

import re

import harness as h
import webhooks as wh
from harness import sql_literal as lit

MAX_ATTEMPTS = 3
DELIVERY_FIELDS = ["id", "object", "event", "webhook_endpoint", "status", "attempts",
                   "next_attempt_at", "last_status_code", "last_error", "created", "delivered_at",
                   "attempt_history"]


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class DeadLetterTest(wh.WebhookTestCase):
    """One relay that gives up after three attempts."""

    relay_env = {"PAYMENTS_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}

    def wait_status(self, event_id, endpoint_id, status):
        def reached():
            d = self.delivery(event_id, endpoint_id)
            return d if d is not None and d[1] == status else None
        return h.poll(reached, message="the delivery of %s to %s to be %s" % (
            event_id, endpoint_id, status))

    def deliveries(self, key, query=""):
        return self.get_json(key, "/v1/webhook_deliveries" + query)

    def test_api_lists_a_dead_delivery_and_retries_it(self):
        """A receiver that always fails yields a dead delivery with every attempt's status; POST .../retry delivers it again with the same webhook-id"""
        user, key = self.make_user()
        _, other_key = self.make_user("other")
        ep = self.create_endpoint(key, "api-never")
        self.receiver.always("api-never", 500)
        self.charge(key)
        (event_id, _, _), = self.events_of(user)
        d_id, _, attempts, code = self.wait_status(event_id, ep["id"], "dead")
        self.assertEqual((attempts, code), (MAX_ATTEMPTS, 500))
        reqs = self.receiver.requests("api-never")
        self.assertEqual([(r.webhook_id, r.status) for r in reqs], [(event_id, 500)] * MAX_ATTEMPTS)
        self.assert_no_receiver_errors()

        listed = self.deliveries(key, "?status=dead")
        self.assertEqual(listed["object"], "list")
        self.assertEqual(listed["url"], "/v1/webhook_deliveries")
        (obj,) = listed["data"]
        self.assertEqual(list(obj.keys()), DELIVERY_FIELDS)
        self.assertEqual(obj["id"], d_id)
        self.assertRegex(obj["id"], r"^wd_[0-9A-Za-z]{24}$")
        self.assertEqual(obj["object"], "webhook_delivery")
        self.assertEqual((obj["event"], obj["webhook_endpoint"]), (event_id, ep["id"]))
        self.assertEqual((obj["status"], obj["attempts"]), ("dead", MAX_ATTEMPTS))
        self.assertIsNone(obj["next_attempt_at"])
        self.assertEqual((obj["last_status_code"], obj["last_error"]), (500, "HTTP 500"))
        self.assertIsNone(obj["delivered_at"])
        history = obj["attempt_history"]
        self.assertEqual([(a["status_code"], a["error"]) for a in history],
                         [(500, "HTTP 500")] * MAX_ATTEMPTS)
        self.assertEqual([a["seq"] for a in history], sorted(a["seq"] for a in history))
        for a in history:
            self.assertIsInstance(a["at"], int)
            self.assertGreaterEqual(a["duration_ms"], 0)
        self.assertEqual(len(self.attempt_rows(d_id)), MAX_ATTEMPTS)

        # Filters: by event, by status, and refusals of bad values.
        self.assertEqual([d["id"] for d in self.deliveries(key, "?status=dead&event=" + event_id)["data"]],
                         [d_id])
        self.assertEqual(self.deliveries(key, "?event=evt_" + "a" * 24)["data"], [])
        self.assertEqual(self.deliveries(key, "?status=pending")["data"], [])
        self.assert_error(self.get("/v1/webhook_deliveries?status=bogus", key), 400,
                          "parameter_invalid", param="status")
        self.assert_error(self.get("/v1/webhook_deliveries?event=ch_nope", key), 400,
                          "parameter_invalid", param="event")

        # Another user sees nothing and cannot retry it.
        self.assertEqual(self.deliveries(other_key, "?status=dead")["data"], [])
        resp = self.server.request("POST", "/v1/webhook_deliveries/%s/retry" % d_id, None,
                                   self.auth(other_key))
        self.assert_error(resp, 404, "resource_missing", param="id")
        self.assertEqual(self.delivery(event_id, ep["id"])[1], "dead")

        self.receiver.recover("api-never")
        resp = self.server.request("POST", "/v1/webhook_deliveries/%s/retry" % d_id, None,
                                   self.auth(key))
        retried = self.assert_json_response(resp, 200)
        self.assertEqual((retried["id"], retried["event"], retried["status"], retried["attempts"]),
                         (d_id, event_id, "pending", 0))
        self.assertEqual(len(retried["attempt_history"]), MAX_ATTEMPTS)
        self.receiver.wait_delivered("api-never", [event_id])
        self.wait_status(event_id, ep["id"], "succeeded")
        reqs = self.receiver.requests("api-never")
        self.assertEqual([r.webhook_id for r in reqs], [event_id] * (MAX_ATTEMPTS + 1))
        self.assertEqual(len({r.body for r in reqs}), 1, "the replayed body is not the same event")
        self.assertEqual([c for c, _, _ in self.attempt_rows(d_id)], [500] * MAX_ATTEMPTS + [200])
        self.assertEqual(self.deliveries(key, "?status=dead")["data"], [])
        succeeded = self.deliveries(key, "?status=succeeded")["data"]
        self.assertEqual([(d["id"], d["attempts"], d["last_status_code"]) for d in succeeded],
                         [(d_id, 1, 200)])
        self.assertIsInstance(succeeded[0]["delivered_at"], int)

    def test_api_retry_of_an_unknown_delivery_is_not_found(self):
        """POST /v1/webhook_deliveries/{id}/retry of an unknown or malformed id answers 404"""
        _, key = self.make_user()
        for d_id in ("wd_" + "a" * 24, "wd_nope", "evt_" + "a" * 24):
            with self.subTest(id=d_id):
                resp = self.server.request("POST", "/v1/webhook_deliveries/%s/retry" % d_id,
                                           None, self.auth(key))
                self.assert_error(resp, 404, "resource_missing")

    def test_cli_replays_dead_deliveries_by_endpoint_then_all(self):
        """'relay replay --dead --endpoint' requeues only that endpoint's dead deliveries, 'relay replay --dead' the rest; both keep the webhook-id"""
        user, key = self.make_user()
        a = self.create_endpoint(key, "cli-a")
        b = self.create_endpoint(key, "cli-b")
        for name in ("cli-a", "cli-b"):
            self.receiver.always(name, 503)
        self.charge(key)
        (event_id, _, _), = self.events_of(user)
        for ep in (a, b):
            self.wait_status(event_id, ep["id"], "dead")
        dead_before = self.db.count("webhook_deliveries", "status = 'dead'")
        self.assertGreaterEqual(dead_before, 2)
        status = wh.relay_status(self.db.app_url)
        self.assertEqual(status["dead deliveries"], dead_before)

        for name in ("cli-a", "cli-b"):
            self.receiver.recover(name)
        proc = wh.relay_cli(self.db.app_url, "replay", "--dead", "--endpoint", a["id"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "1 dead deliveries requeued")
        self.receiver.wait_delivered("cli-a", [event_id])
        self.wait_status(event_id, a["id"], "succeeded")
        self.assertEqual(self.delivery(event_id, b["id"])[1], "dead")
        self.assertEqual(len(self.receiver.requests("cli-b")), MAX_ATTEMPTS)

        # Dead deliveries of deleted endpoints (other tests') stay dead: only live ones count.
        dead_now = self.db.count("webhook_deliveries", "status = 'dead' AND endpoint_id IN"
                                 " (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)")
        proc = wh.relay_cli(self.db.app_url, "replay", "--dead")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "%d dead deliveries requeued" % dead_now)
        self.receiver.wait_delivered("cli-b", [event_id])
        self.wait_status(event_id, b["id"], "succeeded")
        for name in ("cli-a", "cli-b"):
            reqs = self.receiver.requests(name)
            self.assertEqual({r.webhook_id for r in reqs}, {event_id})
            self.assertEqual([r.status for r in reqs], [503] * MAX_ATTEMPTS + [200])
        self.assert_no_receiver_errors()
        self.assertEqual(self.db.count("webhook_deliveries",
                                       "status = 'dead' AND user_id = %s" % lit(user)), 0)

    def test_cli_replay_refuses_bad_arguments(self):
        """'relay replay' without --dead, or with a malformed --endpoint, prints usage and exits 2"""
        for args in (["replay"], ["replay", "--dead", "--endpoint", "nope"],
                     ["replay", "--dead", "--endpoint"], ["replay", "--all"]):
            with self.subTest(args=args):
                proc = wh.relay_cli(self.db.app_url, *args)
                self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
                self.assertTrue(re.search(r"usage", proc.stderr), proc.stderr)

    def replay_to_deleted_endpoint(self, name, replay):
        """
        Lets a delivery to endpoint name die, deletes the endpoint, calls
        replay(key, delivery id), and checks that the endpoint got nothing more.
        """
        user, key = self.make_user()
        gone = self.create_endpoint(key, name)
        self.create_endpoint(key, name + "-sentinel")
        self.receiver.always(name, 500)
        self.charge(key)
        (event_id, _, _), = self.events_of(user)
        d_id = self.wait_status(event_id, gone["id"], "dead")[0]
        resp = self.server.request("DELETE", "/v1/webhook_endpoints/" + gone["id"], None,
                                   self.auth(key))
        self.assertEqual(resp.status, 200)
        self.receiver.recover(name)
        replay(key, d_id, gone["id"])
        # A later event to a live endpoint of the user shows the relay has been round since.
        self.charge(key)
        events = [e for e, _, _ in self.events_of(user)]
        self.receiver.wait_delivered(name + "-sentinel", events)
        h.poll(lambda: self.delivery(event_id, gone["id"])[1] != "pending",
               message="the replayed delivery to be settled")
        self.assertEqual((self.delivery(event_id, gone["id"])[1], len(self.receiver.requests(name))),
                         ("dead", MAX_ATTEMPTS),
                         "the relay delivered to a deleted endpoint (delivery status, requests)")

    def test_api_retry_does_not_deliver_to_a_deleted_endpoint(self):
        """POST /v1/webhook_deliveries/{id}/retry of a deleted endpoint's dead delivery sends nothing to it"""
        def retry(key, d_id, endpoint_id):
            resp = self.server.request("POST", "/v1/webhook_deliveries/%s/retry" % d_id, None,
                                       self.auth(key))
            self.assertIn(resp.status, (200, 400, 404, 409), resp)
        self.replay_to_deleted_endpoint("deleted-api-retry", retry)

    def test_cli_replay_does_not_deliver_to_a_deleted_endpoint(self):
        """'relay replay --dead' does not send a deleted endpoint's dead deliveries to it"""
        def replay(key, d_id, endpoint_id):
            proc = wh.relay_cli(self.db.app_url, "replay", "--dead")
            self.assertEqual(proc.returncode, 0, proc.stderr)
        self.replay_to_deleted_endpoint("deleted-cli-replay", replay)

    def test_endpoint_deleted_during_an_attempt_gets_no_retry(self):
        """An endpoint deleted while an attempt is in flight gets no further attempt, and its delivery stays dead"""
        user, key = self.make_user()
        gone = self.create_endpoint(key, "deleted-in-flight")
        self.receiver.hang_next("deleted-in-flight", 1)
        try:
            self.charge(key)
            h.poll(lambda: self.receiver.hanging("deleted-in-flight"), message="an attempt in flight")
            (event_id, _, _), = self.events_of(user)
            d_id = self.delivery(event_id, gone["id"])[0]
            resp = self.server.request("DELETE", "/v1/webhook_endpoints/" + gone["id"], None,
                                       self.auth(key))
            self.assertEqual(resp.status, 200)
            self.assertEqual(self.delivery(event_id, gone["id"])[1], "dead")
            # The attempt times out (PAYMENTS_WEBHOOK_TIMEOUT) and is recorded.
            h.poll(lambda: self.attempt_rows(d_id), message="the timed-out attempt's record")
        finally:
            self.receiver.release("deleted-in-flight")
        h.poll(lambda: self.delivery(event_id, gone["id"])[1] != "pending",
               message="the delivery to be settled")
        self.assertEqual(self.attempt_rows(d_id)[0][0], None)
        self.assertEqual((self.delivery(event_id, gone["id"])[1],
                          len(self.receiver.requests("deleted-in-flight"))), ("dead", 1),
                         "the relay retried a deleted endpoint (delivery status, requests)")
