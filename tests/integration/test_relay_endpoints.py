"""test_relay_endpoints.py - the webhook endpoints API: create, read, list, delete, validation and private URLs."""

import base64
import json
import re
import socket
import threading

import harness as h
import webhooks as wh
from harness import sql_literal as lit

ENDPOINT_ID_RE = re.compile(r"^we_[0-9A-Za-z]{24}$")
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
ENDPOINT_FIELDS = ["id", "object", "url", "enabled_events", "status", "created"]
# What a tenant reads of every attempt that got no HTTP response (sender.h SENDER_NO_RESPONSE).
NO_RESPONSE = "no HTTP response: the connection failed, was refused or timed out"


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class EndpointsApiTest(wh.WebhookTestCase):
    start_relay = False

    def post_endpoint(self, key, body):
        return self.server.request("POST", "/v1/webhook_endpoints", body, self.auth(key))

    def endpoint_rows(self, user):
        return self.db.count("webhook_endpoints", "user_id = %s" % lit(user))

    def test_create_returns_the_secret_once(self):
        """POST answers 201 with the endpoint and its whsec_ secret of 32 random bytes; GET and the list never show the secret"""
        user, key = self.make_user()
        url = "http://127.0.0.1:9/hooks?shop=1"
        resp = self.post_endpoint(key, {"url": url, "enabled_events": ["charge.succeeded",
                                                                        "charge.failed"]})
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(list(obj.keys()), ENDPOINT_FIELDS + ["secret"])
        self.assertRegex(obj["id"], ENDPOINT_ID_RE)
        self.assertEqual(obj["object"], "webhook_endpoint")
        self.assertEqual(obj["url"], url)
        self.assertEqual(obj["enabled_events"], ["charge.succeeded", "charge.failed"])
        self.assertEqual(obj["status"], "enabled")
        self.assertIsInstance(obj["created"], int)
        self.assertRegex(obj["secret"], SECRET_RE)
        self.assertEqual(len(base64.b64decode(obj["secret"][6:], validate=True)), 32)

        row = self.db.query(
            "SELECT user_id, url, array_to_json(enabled_events), secret, status, deleted_at IS NULL,"
            " floor(extract(epoch FROM created))::bigint FROM webhook_endpoints WHERE id = %s"
            % lit(obj["id"])).split("|")
        self.assertEqual(row[0], user)
        self.assertEqual(row[1], url)
        self.assertEqual(json.loads(row[2]), obj["enabled_events"])
        self.assertEqual(row[3], obj["secret"], "the stored secret is not the one shown")
        self.assertEqual(row[4:6], ["enabled", "t"])
        self.assertEqual(int(row[6]), obj["created"])

        got = self.get("/v1/webhook_endpoints/" + obj["id"], key)
        shown = self.assert_json_response(got, 200)
        expected = dict(obj)
        del expected["secret"]
        self.assertEqual(shown, expected)
        self.assertEqual(list(shown.keys()), ENDPOINT_FIELDS)
        self.assertNotIn(obj["secret"][6:].encode(), got.body)

        listed = self.get("/v1/webhook_endpoints", key)
        self.assertEqual(self.assert_json_response(listed, 200)["data"], [expected])
        self.assertNotIn(obj["secret"][6:].encode(), listed.body)

    def test_each_endpoint_gets_its_own_secret(self):
        """Two endpoints of one user get different secrets"""
        _, key = self.make_user()
        a = self.create_endpoint(key, "own-secret-a")
        b = self.create_endpoint(key, "own-secret-b")
        self.assertNotEqual(a["secret"], b["secret"])

    def test_list_shows_own_endpoints_newest_first(self):
        """GET /v1/webhook_endpoints lists the user's live endpoints newest first, and nobody else's"""
        user, key = self.make_user()
        _, other_key = self.make_user("other")
        ids = [self.create_endpoint(key, "list-%d" % i, ["charge.succeeded"])["id"]
               for i in range(3)]
        self.create_endpoint(other_key, "list-other")
        body = self.get_json(key, "/v1/webhook_endpoints")
        self.assertEqual(body["object"], "list")
        self.assertEqual(body["url"], "/v1/webhook_endpoints")
        self.assertIs(body["has_more"], False)
        self.assertEqual([e["id"] for e in body["data"]], list(reversed(ids)))
        for e in body["data"]:
            self.assertEqual(list(e.keys()), ENDPOINT_FIELDS)

    def test_list_pages_with_cursors(self):
        """GET /v1/webhook_endpoints pages 12 endpoints by limit, starting_after and ending_before with has_more, skipping deleted ones"""
        _, key = self.make_user()
        _, other_key = self.make_user("other")
        ids = [self.create_endpoint(key, "page-%d" % i, ["charge.succeeded"])["id"] for i in range(13)]
        # Several endpoints share a second: the order is (created, id), newest first.
        newest_first = self.db.query(
            "SELECT string_agg(id, ',' ORDER BY created DESC, id DESC) FROM webhook_endpoints"
            " WHERE id IN (%s)" % ",".join(lit(i) for i in ids)).split(",")
        deleted = newest_first.pop(5)
        resp = self.server.request("DELETE", "/v1/webhook_endpoints/" + deleted, None, self.auth(key))
        self.assert_json_response(resp, 200)
        theirs = self.create_endpoint(other_key, "page-other")["id"]

        # No limit: 10, as the other lists, and more to come.
        first = self.get_json(key, "/v1/webhook_endpoints")
        self.assertEqual([e["id"] for e in first["data"]], newest_first[:10])
        self.assertIs(first["has_more"], True)
        # Forward through pages of 5.
        seen, after, pages = [], None, 0
        while True:
            path = "/v1/webhook_endpoints?limit=5" + ("&starting_after=" + after if after else "")
            page = self.get_json(key, path)
            self.assertEqual(page["url"], "/v1/webhook_endpoints")
            seen += [e["id"] for e in page["data"]]
            pages += 1
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        self.assertEqual(seen, newest_first)
        self.assertEqual(pages, 3)
        self.assertNotIn(deleted, seen)
        self.assertNotIn(theirs, seen)
        # Backward from the oldest: the 5 just newer than it, newest first.
        page = self.get_json(key, "/v1/webhook_endpoints?limit=5&ending_before=" + newest_first[-1])
        self.assertEqual([e["id"] for e in page["data"]], newest_first[-6:-1])
        self.assertIs(page["has_more"], True)
        page = self.get_json(key, "/v1/webhook_endpoints?limit=100&ending_before=" + newest_first[2])
        self.assertEqual([e["id"] for e in page["data"]], newest_first[:2])
        self.assertIs(page["has_more"], False)
        # A deleted endpoint still works as a cursor; another user's does not.
        page = self.get_json(key, "/v1/webhook_endpoints?limit=100&starting_after=" + deleted)
        self.assertEqual([e["id"] for e in page["data"]], newest_first[5:])
        self.assert_error(self.get("/v1/webhook_endpoints?starting_after=" + theirs, key), 400,
                          "parameter_invalid", param="starting_after")
        self.assert_error(self.get("/v1/webhook_endpoints?starting_after=we_nope", key), 400,
                          "parameter_invalid", param="starting_after")
        self.assert_error(self.get("/v1/webhook_endpoints?limit=101", key), 400,
                          "parameter_invalid", param="limit")

    def test_another_users_endpoint_is_not_found(self):
        """Another user's endpoint is 404 on GET and DELETE, stays alive, and is not in their list"""
        _, key = self.make_user()
        _, other_key = self.make_user("other")
        ep = self.create_endpoint(key, "not-yours")
        path = "/v1/webhook_endpoints/" + ep["id"]
        self.assert_error(self.get(path, other_key), 404, "resource_missing", param="id")
        resp = self.server.request("DELETE", path, None, self.auth(other_key))
        self.assert_error(resp, 404, "resource_missing", param="id")
        self.assertEqual(self.db.query("SELECT deleted_at IS NULL FROM webhook_endpoints WHERE id = %s"
                                       % lit(ep["id"])), "t")
        self.assertEqual(self.get_json(other_key, "/v1/webhook_endpoints")["data"], [])
        self.assertEqual(self.get_json(key, path)["id"], ep["id"])

    def test_delete_removes_the_endpoint(self):
        """DELETE answers deleted: true; the endpoint is then 404, out of the list, and soft-deleted in the database"""
        _, key = self.make_user()
        keep = self.create_endpoint(key, "delete-keep")
        ep = self.create_endpoint(key, "delete-me")
        path = "/v1/webhook_endpoints/" + ep["id"]
        resp = self.server.request("DELETE", path, None, self.auth(key))
        self.assertEqual(self.assert_json_response(resp, 200),
                         {"id": ep["id"], "object": "webhook_endpoint", "deleted": True})
        self.assert_error(self.get(path, key), 404, "resource_missing", param="id")
        self.assertEqual([e["id"] for e in self.get_json(key, "/v1/webhook_endpoints")["data"]],
                         [keep["id"]])
        resp = self.server.request("DELETE", path, None, self.auth(key))
        self.assert_error(resp, 404, "resource_missing", param="id")
        self.assertEqual(self.db.query(
            "SELECT status, deleted_at IS NOT NULL FROM webhook_endpoints WHERE id = %s"
            % lit(ep["id"])), "disabled|t")

    def test_malformed_id_is_not_found(self):
        """GET and DELETE of a malformed endpoint id answer 404"""
        _, key = self.make_user()
        for path in ("/v1/webhook_endpoints/we_nope", "/v1/webhook_endpoints/ch_" + "a" * 24):
            with self.subTest(path=path):
                self.assert_error(self.get(path, key), 404, "resource_missing")
                resp = self.server.request("DELETE", path, None, self.auth(key))
                self.assert_error(resp, 404, "resource_missing")

    def test_url_must_be_http_or_https(self):
        """A URL that is not absolute http(s) is refused with 400 and param url, and nothing is stored"""
        user, key = self.make_user()
        for url in ("ftp://127.0.0.1/hooks", "file:///etc/passwd", "javascript:alert(1)",
                    "gopher://127.0.0.1:70/", "127.0.0.1/hooks", "/hooks", "http://", ""):
            with self.subTest(url=url):
                resp = self.post_endpoint(key, {"url": url, "enabled_events": ["*"]})
                self.assert_error(resp, 400, "parameter_invalid", param="url")
        resp = self.post_endpoint(key, {"url": "https://" + "a" * 2050 + ".example/",
                                        "enabled_events": ["*"]})
        self.assert_error(resp, 400, "parameter_too_long", param="url")
        resp = self.post_endpoint(key, {"enabled_events": ["*"]})
        self.assert_error(resp, 400, "parameter_missing", param="url")
        resp = self.post_endpoint(key, {"url": 42, "enabled_events": ["*"]})
        self.assert_error(resp, 400, "parameter_invalid_type", param="url")
        self.assertEqual(self.endpoint_rows(user), 0)

    def test_enabled_events_must_be_known_types(self):
        """An unknown event type, an empty list or a wrong type is refused with 400 and param enabled_events"""
        user, key = self.make_user()
        url = "http://127.0.0.1:9/hooks"
        for events in (["charge.created"], ["*", "nope"], [], ["charge.succeeded", 1], "*",
                       ["CHARGE.SUCCEEDED"], ["charge.failed"] * 33, [None]):
            with self.subTest(events=events if len(events) < 5 else "33 types"):
                resp = self.post_endpoint(key, {"url": url, "enabled_events": events})
                self.assert_error(resp, 400, "parameter_invalid", param="enabled_events")
        resp = self.post_endpoint(key, {"url": url})
        self.assert_error(resp, 400, "parameter_missing", param="enabled_events")
        self.assertEqual(self.endpoint_rows(user), 0)

    def test_every_event_type_and_the_wildcard_are_accepted(self):
        """enabled_events may name every event type, or be ["*"]"""
        _, key = self.make_user()
        types = ["charge.succeeded", "charge.failed", "charge.refunded", "refund.created"]
        self.assertEqual(self.create_endpoint(key, "all-types", types)["enabled_events"], types)
        self.assertEqual(self.create_endpoint(key, "wildcard", ["*"])["enabled_events"], ["*"])

    def test_unknown_fields_are_refused(self):
        """A client cannot choose its own secret or status: unknown fields answer 400"""
        user, key = self.make_user()
        for extra in ({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, {"status": "disabled"}):
            body = {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]}
            body.update(extra)
            with self.subTest(field=list(extra)[0]):
                resp = self.post_endpoint(key, body)
                self.assert_error(resp, 400, "parameter_unknown", param=list(extra)[0])
        self.assertEqual(self.endpoint_rows(user), 0)

    def test_endpoints_need_an_api_key(self):
        """Every endpoints route answers 401 without an API key"""
        for method, path in (("POST", "/v1/webhook_endpoints"), ("GET", "/v1/webhook_endpoints"),
                             ("GET", "/v1/webhook_endpoints/we_" + "a" * 24),
                             ("DELETE", "/v1/webhook_endpoints/we_" + "a" * 24),
                             ("GET", "/v1/webhook_deliveries"),
                             ("POST", "/v1/webhook_deliveries/wd_" + "a" * 24 + "/retry")):
            with self.subTest(method=method, path=path):
                body = {"url": "http://127.0.0.1:9/", "enabled_events": ["*"]} \
                    if method == "POST" else None
                resp = self.server.request(method, path, body,
                                           {"Content-Type": "application/json"})
                self.assert_error(resp, 401, "api_key_missing")

    def test_loopback_url_accepted_when_private_urls_are_allowed(self):
        """With PAYMENTS_WEBHOOK_ALLOW_PRIVATE=1, loopback and private URLs are accepted"""
        _, key = self.make_user()
        for url in ("http://127.0.0.1:8080/hooks", "http://localhost/hooks", "http://[::1]:9/",
                    "http://10.0.0.5/hooks"):
            with self.subTest(url=url):
                resp = self.post_endpoint(key, {"url": url, "enabled_events": ["*"]})
                self.assertEqual(self.assert_json_response(resp, 201)["url"], url)


class EndpointLimitTest(wh.WebhookTestCase):
    """PAYMENTS_WEBHOOK_ENDPOINTS_MAX (16 by default, as Stripe) caps each user's endpoints."""

    start_relay = False
    server_env = dict(wh.WebhookTestCase.server_env, PAYMENTS_RATE_LIMIT="0")

    def post_endpoint(self, key, n):
        return self.server.request("POST", "/v1/webhook_endpoints",
                                   {"url": "http://127.0.0.1:9/limit-%d" % n,
                                    "enabled_events": ["*"]}, self.auth(key))

    def live(self, user):
        return self.db.count("webhook_endpoints", "user_id = %s AND deleted_at IS NULL" % lit(user))

    def test_twenty_concurrent_creates_make_exactly_sixteen(self):
        """Twenty concurrent creates of one user give sixteen endpoints and four 400 webhook_endpoints_limit; another user is not held back"""
        user, key = self.make_user()
        other, other_key = self.make_user("other")
        results = h.run_concurrently(20, lambda i: self.post_endpoint(key, i))
        for r in results:
            if isinstance(r, BaseException):
                raise r
        self.assertEqual(sorted(r.status for r in results), [201] * 16 + [400] * 4,
                         "statuses %r" % [r.status for r in results])
        for r in results:
            if r.status == 400:
                err = self.assert_error(r, 400, "webhook_endpoints_limit", "invalid_request_error",
                                        param=None)
                self.assertIn("16", err["message"])
                self.assertEqual(r.header("Stripe-Should-Retry"), "false")
        self.assertEqual(self.live(user), 16)
        self.assertEqual(self.db.count("webhook_endpoints", "user_id = %s" % lit(user)), 16,
                         "a refused create left a row behind")
        # The limit is per user.
        self.assert_json_response(self.post_endpoint(other_key, 0), 201)
        self.assertEqual(self.live(other), 1)

    def test_deleting_an_endpoint_makes_room(self):
        """At the limit a create is refused; after a DELETE the next create succeeds"""
        user, key = self.make_user()
        ids = [self.assert_json_response(self.post_endpoint(key, i), 201)["id"] for i in range(16)]
        self.assert_error(self.post_endpoint(key, 16), 400, "webhook_endpoints_limit")
        resp = self.server.request("DELETE", "/v1/webhook_endpoints/" + ids[0], None, self.auth(key))
        self.assert_json_response(resp, 200)
        self.assert_json_response(self.post_endpoint(key, 17), 201)
        self.assertEqual(self.live(user), 16)


class EndpointLimitSettingTest(wh.WebhookTestCase):
    """The limit is a setting."""

    start_relay = False
    server_env = dict(wh.WebhookTestCase.server_env, PAYMENTS_WEBHOOK_ENDPOINTS_MAX="2")

    def test_the_limit_follows_the_setting(self):
        """With PAYMENTS_WEBHOOK_ENDPOINTS_MAX=2 the third endpoint is refused, naming the limit"""
        _, key = self.make_user()
        for i in range(2):
            self.create_endpoint(key, "setting-%d" % i)
        resp = self.server.request("POST", "/v1/webhook_endpoints",
                                   {"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]},
                                   self.auth(key))
        err = self.assert_error(resp, 400, "webhook_endpoints_limit", param=None)
        self.assertIn("2 webhook endpoints", err["message"])


class PrivateUrlRefusedTest(wh.WebhookTestCase):
    """The API server started without PAYMENTS_WEBHOOK_ALLOW_PRIVATE."""

    server_env = {}
    start_relay = False

    def test_private_urls_are_refused(self):
        """Loopback, private, link-local and CGNAT URLs, however spelled, answer 400 with param url"""
        user, key = self.make_user()
        for url in ("http://127.0.0.1:8080/hooks", "http://localhost/hooks", "http://[::1]/hooks",
                    "http://10.0.0.5/hooks", "http://192.168.1.1/hooks", "http://172.16.0.1/",
                    "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/",
                    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/",
                    "http://[fd00::1]/", "http://2130706433/", "http://127.1/",
                    "https://0x7f.0.0.1/", "http://no-such-host.invalid/hooks"):
            with self.subTest(url=url):
                resp = self.server.request("POST", "/v1/webhook_endpoints",
                                           {"url": url, "enabled_events": ["*"]}, self.auth(key))
                self.assert_error(resp, 400, "parameter_invalid", param="url")
        self.assertEqual(self.db.count("webhook_endpoints", "user_id = %s" % lit(user)), 0)

    def test_public_url_is_accepted(self):
        """A URL on a public address is accepted"""
        _, key = self.make_user()
        url = "https://93.184.216.34/hooks"
        resp = self.server.request("POST", "/v1/webhook_endpoints",
                                   {"url": url, "enabled_events": ["*"]}, self.auth(key))
        self.assertEqual(self.assert_json_response(resp, 201)["url"], url)


class SenderGuardTest(wh.WebhookTestCase):
    """A relay without PAYMENTS_WEBHOOK_ALLOW_PRIVATE, for an endpoint the API accepted."""

    relay_env = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "0", "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1"}

    def test_relay_refuses_to_connect_to_a_private_address(self):
        """The relay checks the address it connects to: a loopback endpoint gets nothing and the delivery dies with the reason"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "guarded")
        charge_id, _, _ = self.charge(key)
        self.wait_settled(user)
        (event_id, _, _), = self.events_of(user)
        d_id, status, attempts, code = self.delivery(event_id, ep["id"])
        self.assertEqual((status, attempts, code), ("dead", 1, None))
        (a_code, a_error, a_ms), = self.attempt_rows(d_id)
        self.assertIsNone(a_code)
        # The tenant reads the one text of every failed connection; the operator's log says why.
        self.assertEqual((a_error, a_ms), (NO_RESPONSE, 0))
        (logged,) = self.relay.attempts(d_id)
        self.assertIn("private address", logged.get("detail", ""))
        self.assertEqual(self.receiver.requests(), [], "the relay connected to a loopback address")

    def test_relay_opens_no_connection_to_a_private_address(self):
        """The address is judged before the socket is opened: a loopback listener never even sees a connection (no port probing)"""
        peer = SilentPeer(answer=True)
        try:
            user, key = self.make_user()
            ep = self.create_endpoint(key, "probe", url="http://127.0.0.1:%d/hook" % peer.port)
            self.charge(key)
            self.wait_settled(user)
            (event_id, _, _), = self.events_of(user)
            self.assertEqual(self.delivery(event_id, ep["id"])[1], "dead")
            self.assertEqual(peer.conns, [], "the relay opened a connection to a loopback address")
        finally:
            peer.close()


class SilentPeer:
    """
    A TCP listener on loopback that accepts connections and records what
    they send; it answers every request line with 200 when answer is set,
    otherwise never answers. Stands in for a proxy, or a host that hangs.
    """

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        try:
            while not self.closed:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                if b"\r\n" in data and not self.lines[-1:] == [data.split(b"\r\n", 1)[0]]:
                    self.lines.append(data.split(b"\r\n", 1)[0])
                    if self.answer:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        return
        except OSError:
            return
        finally:
            if self.answer:
                conn.close()

    def close(self):
        self.closed = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class FailureTextTest(wh.WebhookTestCase):
    """A relay that may reach loopback, one attempt per delivery, a 1 s timeout."""

    relay_env = {"PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1"}

    def test_refused_and_timed_out_connections_read_the_same(self):
        """A refused and a hanging receiver leave the same error text and duration 0 for the tenant; the relay's log tells them apart"""
        hanging = SilentPeer(answer=False)
        try:
            user, key = self.make_user()
            refused = self.create_endpoint(key, "refused", url="http://127.0.0.1:%d/hook" % h.free_port())
            hangs = self.create_endpoint(key, "hangs", url="http://127.0.0.1:%d/hook" % hanging.port)
            self.charge(key)
            self.wait_settled(user)
            (event_id, _, _), = self.events_of(user)
            seen = {}
            for name, ep in (("refused", refused), ("hangs", hangs)):
                d_id, status, _, _ = self.delivery(event_id, ep["id"])
                self.assertEqual(status, "dead")
                (code, error, ms), = self.attempt_rows(d_id)
                seen[name] = (code, error, ms)
                shown = self.get_json(key, "/v1/webhook_deliveries?webhook_endpoint=" + ep["id"])["data"][0]
                self.assertEqual(shown["last_error"], NO_RESPONSE)
                self.assertEqual([(a["error"], a["duration_ms"]) for a in shown["attempt_history"]],
                                 [(NO_RESPONSE, 0)])
                (logged,) = self.relay.attempts(d_id)
                seen[name + " log"] = logged.get("detail")
            self.assertEqual(seen["refused"], (None, NO_RESPONSE, 0))
            self.assertEqual(seen["hangs"], seen["refused"])
            self.assertNotEqual(seen["refused log"], seen["hangs log"], seen)
        finally:
            hanging.close()


class ProxyTest(wh.WebhookTestCase):
    """Proxies: only the one PAYMENTS_WEBHOOK_PROXY names, never the environment's."""

    start_relay = False

    def test_proxy_variables_of_the_environment_are_ignored(self):
        """With http_proxy, HTTPS_PROXY and ALL_PROXY set, webhooks still go straight to the receiver and the proxy sees nothing"""
        proxy = SilentPeer(answer=True)
        try:
            url = "http://127.0.0.1:%d" % proxy.port
            relay = self.new_relay({"http_proxy": url, "HTTP_PROXY": url, "https_proxy": url,
                                    "HTTPS_PROXY": url, "ALL_PROXY": url, "all_proxy": url})
            user, key = self.make_user()
            self.create_endpoint(key, "direct")
            charge_id, _, _ = self.charge(key)
            self.wait_settled(user)
            self.assertEqual(len(self.receiver.delivered("direct")), 1)
            self.assertEqual(proxy.lines, [], "the relay went through the environment's proxy")
            relay.stop()
        finally:
            proxy.close()

    def test_the_configured_proxy_carries_webhooks(self):
        """With PAYMENTS_WEBHOOK_PROXY set, the delivery goes through that proxy (an absolute-form POST)"""
        proxy = SilentPeer(answer=True)
        try:
            relay = self.new_relay({"PAYMENTS_WEBHOOK_PROXY": "http://127.0.0.1:%d" % proxy.port})
            user, key = self.make_user()
            ep = self.create_endpoint(key, "proxied")
            self.charge(key)
            self.wait_settled(user)
            self.assertEqual(self.receiver.delivered("proxied"), [])
            self.assertEqual(proxy.lines, [b"POST %s HTTP/1.1" % ep["url"].encode()])
            relay.stop()
        finally:
            proxy.close()


class UnsignableSecretTest(wh.WebhookTestCase):
    """An endpoint whose stored secret cannot sign (corrupted in the database), one attempt per delivery."""

    relay_env = {"PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1"}

    def test_a_delivery_that_cannot_be_signed_is_never_sent(self):
        """With an unusable secret the receiver gets nothing (no unsigned webhook) and the attempt says why"""
        user, key = self.make_user()
        ep = self.create_endpoint(key, "unsignable")
        self.db.query("UPDATE webhook_endpoints SET secret = 'whsec_%%%%' WHERE id = " + lit(ep["id"]))
        self.charge(key)
        self.wait_settled(user)
        (event_id, _, _), = self.events_of(user)
        d_id, status, attempts, _ = self.delivery(event_id, ep["id"])
        self.assertEqual((status, attempts), ("dead", 1))
        self.assertEqual(self.attempt_rows(d_id),
                         [(None, "not sent: the endpoint's signing secret is unusable", 0)])
        self.assertEqual(self.receiver.requests("unsignable"), [], "an unsigned webhook was sent")
