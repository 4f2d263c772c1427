"""test_events.py - GET /v1/events/{id} and GET /v1/events: the event objects the relay sends.

An event is {"id","object":"event","type","created","data":{"object":...},"request":{"id",
"idempotency_key"}}; the list, the single GET and the relay's webhook body are the same bytes.
The retention case runs the real relay, which purges published events past the retention.
"""

import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import new_key, poll, sql_literal  # noqa: E402

EVENT_FIELDS = ["id", "object", "api_version", "type", "created", "data", "livemode", "request"]
EVENT_TYPES = ["charge.succeeded", "charge.failed", "charge.refunded", "refund.created"]
# Webhooks to a receiver on 127.0.0.1, and no rate limit in the way.
SERVER_ENV = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1"}


def setUpModule():
    harness.setup_module(__name__)


def tearDownModule():
    harness.teardown_module(__name__)


class Receiver:
    """A webhook receiver on a free port of 127.0.0.1 that records every POST body and answers 200."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def received(self):
        with self.lock:
            return list(self.bodies)


class Relay:
    """One 'payments relay' process on the module's database, stopped with SIGTERM on exit."""

    def __init__(self, database_url):
        self.database_url = database_url
        self.proc = None
        self.log = tempfile.TemporaryFile()

    def __enter__(self):
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.database_url, "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
                    "PAYMENTS_LOG_LEVEL": "info"})
        env.pop("PAYMENTS_EVENT_RETENTION", None)   # the default retention is what is tested
        self.proc = subprocess.Popen([harness.BIN, "relay"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, env=env, cwd=harness.ROOT)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def assert_running(self):
        if self.proc.poll() is not None:
            raise AssertionError("payments relay exited with %d:\n%s" % (self.proc.returncode,
                                                                         self.output()))


class EventTestCase(harness.ServiceTestCase):
    server_env = SERVER_ENV

    def make_charge(self, key, amount=1000, source="tok_visa"):
        """Creates a charge; returns (response, charge id)."""
        idem = new_key()
        resp = self.post_charge(key, harness.charge_body(amount=amount, source=source), idem)
        self.assertIn(resp.status, (201, 402), resp)
        body = resp.json()
        return resp, body["id"] if resp.status == 201 else body["error"]["charge"]

    def make_refund(self, key, charge_id, amount=None, idem=None):
        body = {"charge": charge_id}
        if amount is not None:
            body["amount"] = amount
        resp = self.post_charge(key, body, idem or new_key(), path="/v1/refunds")
        self.assert_json_response(resp, 201)
        return resp

    def list_events(self, key, **params):
        query = urllib.parse.urlencode(params)
        resp = self.get("/v1/events" + ("?" + query if query else ""), key)
        body = self.assert_json_response(resp, 200)
        self.assertEqual((body["object"], body["url"]), ("list", "/v1/events"))
        return resp, body

    def db_events(self, user, where="true"):
        """user's events as (id, type, object_id), newest first by (created, id)."""
        out = self.db.query("SELECT id, type, object_id FROM outbox_events WHERE user_id = %s AND (%s)"
                            " ORDER BY created DESC, id DESC" % (sql_literal(user), where))
        return [tuple(line.split("|")) for line in out.split("\n")] if out else []

    def event_object_text(self, event_id):
        """event_object(e)::text: the body the relay sends for the event."""
        return self.db.query("SELECT event_object(e)::text FROM outbox_events e WHERE e.id = %s"
                             % sql_literal(event_id))

    def assert_event_object(self, ev, type_=None):
        self.assertEqual(list(ev.keys()), EVENT_FIELDS, "event fields in %r" % ev)
        self.assertRegex(ev["id"], harness.EVENT_ID_RE)
        self.assertEqual(ev["object"], "event")
        self.assertIn(ev["type"], EVENT_TYPES)
        if type_ is not None:
            self.assertEqual(ev["type"], type_)
        self.assertIsInstance(ev["created"], int)
        self.assertEqual(list(ev["data"].keys()), ["object"])
        self.assertEqual(list(ev["request"].keys()), ["id", "idempotency_key"])


class EventsApiTest(EventTestCase):
    """The events of charges and refunds, one by one and listed, and only the user's own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls("test_events_of_a_refund_carry_the_refund_and_the_charge")
        cls.user, cls.key = helper.make_user("events")
        cls.other, cls.other_key = helper.make_user("other")
        cls.charge_resp, cls.charge_id = helper.make_charge(cls.key, amount=1000)
        cls.declined_resp, cls.declined_id = helper.make_charge(cls.key, source="tok_chargeDeclined")
        cls.refund_idem = new_key()
        cls.refund_resp = helper.make_refund(cls.key, cls.charge_id, 400, idem=cls.refund_idem)
        cls.other_charge_resp, cls.other_charge_id = helper.make_charge(cls.other_key)

    def test_events_of_a_refund_carry_the_refund_and_the_charge(self):
        """A refund's refund.created event carries the refund object and its charge.refunded event the refunded charge, with the request's id and key"""
        refund = self.refund_resp.json()
        (created_id, _, _), = self.db_events(self.user, "type = 'refund.created'")
        (refunded_id, _, _), = self.db_events(self.user, "type = 'charge.refunded'")
        created = self.assert_json_response(self.get("/v1/events/" + created_id, self.key), 200)
        refunded = self.assert_json_response(self.get("/v1/events/" + refunded_id, self.key), 200)
        self.assert_event_object(created, "refund.created")
        self.assert_event_object(refunded, "charge.refunded")
        self.assertEqual(created["data"]["object"], refund)
        charge = self.assert_json_response(self.get("/v1/charges/" + self.charge_id, self.key), 200)
        self.assertEqual(refunded["data"]["object"], charge)
        self.assertEqual((charge["amount_refunded"], charge["refunded"]), (400, False))
        request = {"id": self.refund_resp.header("X-Request-Id"), "idempotency_key": self.refund_idem}
        self.assertEqual(created["request"], request)
        self.assertEqual(refunded["request"], request)
        self.assertEqual(created["created"], refund["created"])
        self.assertEqual(refunded["created"], refund["created"])

    def test_events_of_charges(self):
        """A charge's event carries the charge; a declined charge has a charge.failed event"""
        (ok_id, _, _), = self.db_events(self.user, "type = 'charge.succeeded'")
        (failed_id, _, obj), = self.db_events(self.user, "type = 'charge.failed'")
        self.assertEqual(obj, self.declined_id)
        ok = self.assert_json_response(self.get("/v1/events/" + ok_id, self.key), 200)
        failed = self.assert_json_response(self.get("/v1/events/" + failed_id, self.key), 200)
        self.assert_event_object(ok, "charge.succeeded")
        self.assert_event_object(failed, "charge.failed")
        # The charge as it was when the event happened: not yet refunded.
        self.assertEqual(ok["data"]["object"], self.charge_resp.json())
        self.assertEqual(failed["data"]["object"]["id"], self.declined_id)
        self.assertEqual(failed["data"]["object"]["status"], "failed")

    def test_get_event_is_the_listed_event_and_the_relay_body(self):
        """GET /v1/events/{id} answers the same bytes as the list element and as the relay's webhook body"""
        resp, body = self.list_events(self.key, limit=100)
        self.assertEqual([e["id"] for e in body["data"]], [e[0] for e in self.db_events(self.user)])
        self.assertEqual(len(body["data"]), 4)
        for ev in body["data"]:
            with self.subTest(event=ev["id"]):
                self.assert_event_object(ev)
                got = self.get("/v1/events/" + ev["id"], self.key)
                self.assertEqual(got.json(), ev)
                self.assertIn(got.body, resp.body, "the single event is not the list's bytes")
                self.assertEqual(got.body.decode("utf-8"), self.event_object_text(ev["id"]))

    def test_events_newest_first_and_by_type(self):
        """The events list is newest first; ?type= keeps only that type"""
        _, body = self.list_events(self.key)
        self.assertEqual([e["id"] for e in body["data"]], [e[0] for e in self.db_events(self.user)])
        for type_ in EVENT_TYPES:
            with self.subTest(type=type_):
                _, body = self.list_events(self.key, type=type_)
                want = self.db_events(self.user, "type = %s" % sql_literal(type_))
                self.assertEqual([e["id"] for e in body["data"]], [e[0] for e in want])
                self.assertEqual(len(want), 1)
                self.assertEqual({e["type"] for e in body["data"]}, {type_})
        _, body = self.list_events(self.key, type="refund.created", limit=1,
                                   **{"created[gte]": 0})
        self.assertEqual(len(body["data"]), 1)
        self.assertIs(body["has_more"], False)

    def test_invalid_type_is_400_on_param_type(self):
        """An unknown event type is refused with 400 on param type"""
        for value in ("charge", "refund.deleted", "*", "", "CHARGE.SUCCEEDED", "charge.succeeded "):
            with self.subTest(type=value):
                resp = self.get("/v1/events?type=" + urllib.parse.quote(value), self.key)
                self.assert_error(resp, 400, "parameter_invalid", "invalid_request_error", param="type")

    def test_other_users_events_are_404_and_never_listed(self):
        """Another user's event answers 404 and is in none of this user's lists; unknown and malformed ids are 404"""
        theirs = [e[0] for e in self.db_events(self.other)]
        self.assertEqual(len(theirs), 1)
        for eid in theirs + ["evt_" + "0" * 24, "evt_nope", self.charge_id]:
            with self.subTest(id=eid):
                self.assert_error(self.get("/v1/events/" + eid, self.key), 404, "resource_missing",
                                  param="id")
        self.assert_json_response(self.get("/v1/events/" + theirs[0], self.other_key), 200)
        _, body = self.list_events(self.key, limit=100)
        self.assertNotIn(theirs[0], [e["id"] for e in body["data"]])
        _, body = self.list_events(self.other_key, limit=100)
        self.assertEqual([e["id"] for e in body["data"]], theirs)
        self.assertEqual(body["data"][0]["data"]["object"]["id"], self.other_charge_id)
        self.assert_error(self.get("/v1/events/" + theirs[0]), 401, "api_key_missing")


class EventsRelayTest(EventTestCase):
    """The real relay: what it sends is what the API shows, and events outlive the retention."""

    def test_relay_sends_the_event_objects_the_api_shows(self):
        """The relay's webhook bodies for a refund's events are byte for byte GET /v1/events/{id}"""
        user, key = self.make_user("relayed")
        with Receiver() as receiver:
            resp = self.post_charge(key, {"url": receiver.url, "enabled_events": ["*"]}, new_key(),
                                    path="/v1/webhook_endpoints")
            self.assert_json_response(resp, 201)
            _, charge_id = self.make_charge(key, amount=500)
            self.make_refund(key, charge_id)
            ids = [e[0] for e in self.db_events(user)]
            self.assertEqual(len(ids), 3)
            with Relay(self.db.app_url) as relay:
                def delivered():
                    relay.assert_running()
                    got = {json.loads(b)["id"]: b for b in receiver.received()}
                    return got if set(ids) <= set(got) else None
                got = poll(delivered, timeout=20, message="the relay delivering 3 events")
        for eid in ids:
            with self.subTest(event=eid):
                api = self.get("/v1/events/" + eid, key)
                self.assert_json_response(api, 200)
                self.assertEqual(got[eid], api.body)

    def test_events_are_kept_for_the_default_retention(self):
        """With the default retention the relay keeps published events 29 days old and purges those 31 days old"""
        user, key = self.make_user("retention")
        _, charge_id = self.make_charge(key)
        self.make_refund(key, charge_id, 100)
        (young, _, _), (old, _, _), (older, _, _) = self.db_events(user)
        self.db.query(
            "UPDATE outbox_events SET published_at = now(), created = now() - CASE id"
            " WHEN %s THEN interval '29 days' WHEN %s THEN interval '31 days'"
            " ELSE interval '45 days' END WHERE user_id = %s"
            % (sql_literal(young), sql_literal(old), sql_literal(user)))
        for eid in (young, old, older):
            self.assert_json_response(self.get("/v1/events/" + eid, key), 200)
        with Relay(self.db.app_url) as relay:
            def purged():
                relay.assert_running()
                return self.db.count("outbox_events", "id IN (%s, %s)"
                                     % (sql_literal(old), sql_literal(older))) == 0
            poll(purged, timeout=20, message="the relay purging events older than 30 days")
        self.assert_error(self.get("/v1/events/" + old, key), 404, "resource_missing")
        kept = self.assert_json_response(self.get("/v1/events/" + young, key), 200)
        self.assertEqual(kept["id"], young)
        _, body = self.list_events(key)
        self.assertEqual([e["id"] for e in body["data"]], [young])
