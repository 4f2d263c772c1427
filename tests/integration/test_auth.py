"""test_auth.py - Bearer API keys: missing, malformed, unknown, wrong secret and revoked keys answer 401."""

import secrets
import string
import threading
import time

import harness as h

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def random_key():
    """A well-formed key that was never issued."""
    return "sk_test_" + "".join(secrets.choice(BASE62) for _ in range(44))


class AuthTest(h.ServiceTestCase):

    def post_with_authorization(self, value, idem=None):
        headers = {"Content-Type": "application/json", "Idempotency-Key": idem or h.new_key()}
        if value is not None:
            headers["Authorization"] = value
        return self.server.request("POST", "/v1/charges", h.charge_body(), headers)

    def assert_nothing_stored(self):
        self.assertEqual(self.db.count("charges"), self.charges_before)
        self.assertEqual(self.db.count("idempotency_keys"), self.keys_before)

    def setUp(self):
        self.charges_before = self.db.count("charges")
        self.keys_before = self.db.count("idempotency_keys")

    def test_missing_authorization(self):
        """A request without Authorization answers 401 api_key_missing as JSON and stores nothing"""
        resp = self.post_with_authorization(None)
        self.assert_error(resp, 401, "api_key_missing", "authentication_error")
        self.assert_error(self.get("/v1/charges/ch_" + "a" * 24), 401, "api_key_missing")
        self.assert_nothing_stored()

    def test_malformed_authorization(self):
        """Malformed Authorization values (Bearer foo, Basic x, a bare key, a live-mode prefix) answer 401 api_key_invalid"""
        real = self.db.create_key(h.new_user())
        for value in ("Bearer foo", "Basic x", "Basic " + real, real, "Bearer", "Bearer ",
                      "Bearer sk_live_" + real[8:], "Bearer " + real[:-1], "Bearer " + real + "x",
                      "Bearer " + real[:-1] + "!", "Token " + real):
            resp = self.post_with_authorization(value)
            self.assert_error(resp, 401, "api_key_invalid", "authentication_error")
        self.assert_nothing_stored()

    def test_unknown_key(self):
        """A well-formed key that was never issued answers 401 api_key_invalid"""
        resp = self.post_with_authorization("Bearer " + random_key())
        self.assert_error(resp, 401, "api_key_invalid", "authentication_error")
        self.assert_error(self.get("/v1/charges/ch_" + "a" * 24, random_key()), 401, "api_key_invalid")
        self.assert_nothing_stored()

    def test_wrong_secret_for_a_known_key_id(self):
        """A key whose public id exists but whose secret is wrong answers 401 api_key_invalid"""
        real = self.db.create_key(h.new_user())
        last = real[-1]
        forged = real[:-1] + ("A" if last != "A" else "B")
        resp = self.post_with_authorization("Bearer " + forged)
        self.assert_error(resp, 401, "api_key_invalid", "authentication_error")
        self.assert_nothing_stored()

    def test_scheme_is_case_insensitive(self):
        """The Bearer scheme name is case-insensitive, as HTTP auth schemes are"""
        user, key = self.make_user()
        resp = self.post_with_authorization("bearer " + key)
        self.assert_json_response(resp, 201)
        self.assertEqual(self.counts(user), (1, 1, 1))

    def test_revoked_key_is_refused_after_the_cache_ttl(self):
        """A key revoked with 'payments keys revoke' answers 401 to every request sent over PAYMENTS_KEY_CACHE_TTL (1 s) later"""
        user, key = self.make_user()
        idem = h.new_key()
        first = self.post_charge(key, h.charge_body(), idem)
        charge = self.assert_json_response(first, 201)
        self.db.revoke_key(key)
        revoked = time.monotonic()
        h.poll(lambda: time.monotonic() > revoked + 1.0, interval=0.1, message="the cache TTL")
        # Not even a replay of a stored response gets past a revoked key.
        resp = self.post_charge(key, h.charge_body(), idem)
        self.assert_error(resp, 401, "api_key_invalid", "authentication_error")
        self.assert_error(self.get("/v1/charges/" + charge["id"], key), 401, "api_key_invalid")
        self.assertEqual(self.counts(user), (1, 1, 1))
        # Another key of the same user still works and sees the charge.
        other = self.db.create_key(user)
        self.assertEqual(self.get("/v1/charges/" + charge["id"], other).status, 200)

    def test_revoking_a_key_while_requests_flow_stops_it_within_a_second(self):
        """Requests flow on a key while it is revoked: each one sent over 1 s after the revoke committed answers 401, none 201"""
        user, key = self.make_user()
        results = []   # (sent at, status)
        stop = threading.Event()

        def client():
            while not stop.is_set():
                sent = time.monotonic()
                resp = self.post_charge(key, h.charge_body(), h.new_key())
                results.append((sent, resp.status))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        # The cache holds the key now: requests are answered without reading it.
        h.poll(lambda: len(results) >= 40, message="requests on the key")
        answered_before = list(results)
        self.db.revoke_key(key)
        committed = time.monotonic()   # the revoke's commit came before this
        h.poll(lambda: any(sent > committed + 1.2 for sent, _ in results),
               message="requests over a second after the revoke")
        stop.set()
        for t in threads:
            t.join(10)
        late = [status for sent, status in results if sent > committed + 1.0]
        self.assertTrue(late)
        self.assertEqual(set(late), {401}, "a revoked key worked over a second later")
        self.assertEqual({status for _, status in answered_before}, {201})
        self.assertEqual(self.counts(user)[0], sum(1 for _, status in results if status == 201))
