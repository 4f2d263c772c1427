"""test_operations.py - metrics, rate limits, graceful shutdown and TLS of 'payments serve'."""

import http.client
import os
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness as h
import webhooks as wh


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def metric(text, name, labels=""):
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    pattern = r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels))
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


class MetricsTest(h.ServiceTestCase):
    metrics_port = h.free_port()
    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_METRICS_LISTEN": "127.0.0.1:%d" % metrics_port}

    def scrape(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        finally:
            conn.close()
        return body.decode()

    def test_metrics_are_not_public_on_the_api_port(self):
        """GET /metrics on the API's port is 404 route_not_found; the metrics answer on PAYMENTS_METRICS_LISTEN only"""
        self.assert_error(self.get("/metrics"), 404, "route_not_found")
        self.assertIn("payments_http_requests_total", self.scrape())
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/v1/charges")
            self.assertEqual(conn.getresponse().status, 404)
        finally:
            conn.close()

    def test_counters_move_with_requests(self):
        """GET /metrics counts requests by route and status, replays, conflicts, latency and the pool"""
        _, key = self.make_user()
        before = self.scrape()
        idem = h.new_key()
        self.assertEqual(self.post_charge(key, h.charge_body(), idem).status, 201)
        self.assertEqual(self.post_charge(key, h.charge_body(), idem).status, 201)
        self.assertEqual(self.post_charge(key, h.charge_body(amount=7), idem).status, 409)
        after = self.scrape()
        route = '{route="POST /v1/charges",status="201"}'
        self.assertEqual(metric(after, "payments_http_requests_total", route)
                         - metric(before, "payments_http_requests_total", route), 2)
        conflict = '{route="POST /v1/charges",status="409"}'
        self.assertEqual(metric(after, "payments_http_requests_total", conflict)
                         - metric(before, "payments_http_requests_total", conflict), 1)
        self.assertEqual(metric(after, "payments_idempotent_replays_total")
                         - metric(before, "payments_idempotent_replays_total"), 1)
        reused = '{code="idempotency_key_reused"}'
        self.assertEqual(metric(after, "payments_idempotency_conflicts_total", reused)
                         - metric(before, "payments_idempotency_conflicts_total", reused), 1)
        count = '{route="POST /v1/charges"}'
        self.assertEqual(metric(after, "payments_http_request_duration_seconds_count", count)
                         - metric(before, "payments_http_request_duration_seconds_count", count), 3)
        inf = '{route="POST /v1/charges",le="+Inf"}'
        self.assertEqual(metric(after, "payments_http_request_duration_seconds_bucket", inf),
                         metric(after, "payments_http_request_duration_seconds_count", count))
        self.assertGreater(metric(after, "payments_db_pool_size"), 0)
        self.assertIn("payments_db_pool_connections_in_use", after)
        self.assertIn("payments_db_pool_waits_total", after)


class RelayMetricsTest(h.ServiceTestCase):
    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1"}

    def test_relay_metrics_move_and_sigterm_stops_cleanly(self):
        """The relay's /metrics on its own port counts deliveries by result and the lag; SIGTERM exits 0"""
        user, key = self.make_user()
        receiver = wh.Receiver().start()
        port = h.free_port()
        relay = wh.Relay(self.db.app_url, {"PAYMENTS_RELAY_METRICS_LISTEN": "127.0.0.1:%d" % port,
                                       "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "2"}).start()
        try:
            def scrape():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    conn.request("GET", "/metrics")
                    resp = conn.getresponse()
                    self.assertEqual(resp.status, 200)
                    return resp.read().decode()
                finally:
                    conn.close()

            before = h.poll(lambda: scrape(), message="the relay's metrics endpoint")
            ok_before = metric(before, "payments_relay_deliveries_total", '{result="ok"}')
            failed_before = metric(before, "payments_relay_deliveries_total", '{result="failed"}')
            resp = self.server.request("POST", "/v1/webhook_endpoints",
                                       {"url": receiver.url("ops"), "enabled_events": ["*"]},
                                       {"Authorization": "Bearer " + key,
                                        "Content-Type": "application/json"})
            self.assertEqual(resp.status, 201, resp)
            receiver.set_secret("ops", resp.json()["secret"])
            receiver.fail_next("ops", 1)
            self.assertEqual(self.post_charge(key, h.charge_body(), h.new_key()).status, 201)
            event_id = self.db.query("SELECT id FROM outbox_events WHERE user_id = %s"
                                     % h.sql_literal(user))
            receiver.wait_delivered("ops", [event_id])
            after = h.poll(lambda: (lambda t: t if metric(t, "payments_relay_deliveries_total",
                                                          '{result="ok"}') > ok_before else None)(scrape()),
                           message="the ok counter to move")
            self.assertEqual(metric(after, "payments_relay_deliveries_total", '{result="failed"}')
                             - failed_before, 1)
            self.assertGreaterEqual(metric(after, "payments_relay_delivery_lag_seconds_count"), 1)
            self.assertIn("payments_relay_backlog_events", after)
            self.assertIn("payments_relay_pending_deliveries", after)
            relay.proc.send_signal(signal.SIGTERM)
            self.assertEqual(relay.proc.wait(timeout=20), 0, relay.log()[-2000:])
            self.assertIn("relay stopped", relay.log())
        finally:
            relay.stop()
            relay.remove_log()
            receiver.close()


class RateLimitTest(h.ServiceTestCase):
    server_env = {"PAYMENTS_RATE_LIMIT": "2", "PAYMENTS_RATE_BURST": "3"}

    def test_bucket_refuses_with_429_and_never_stores_it(self):
        """Over the burst a user gets 429 with Retry-After; every response has X-RateLimit-*; the key is not spent"""
        _, key = self.make_user()
        _, other_key = self.make_user()
        statuses = []
        for _ in range(3):
            resp = self.get("/v1/charges", key)
            statuses.append(resp.status)
            for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                self.assertRegex(resp.header(name) or "", r"^\d+$", name)
            self.assertEqual(resp.header("X-RateLimit-Limit"), "3")
        self.assertEqual(statuses, [200, 200, 200])
        idem = h.new_key()
        refused = self.post_charge(key, h.charge_body(), idem)
        self.assert_error(refused, 429, "rate_limited", "rate_limit_error")
        self.assertRegex(refused.header("Retry-After") or "", r"^[1-9]\d*$")
        self.assertEqual(refused.header("X-RateLimit-Remaining"), "0")
        self.assertEqual(self.db.count("idempotency_keys", "key = %s" % h.sql_literal(idem)), 0)
        # Another user has a bucket of their own.
        self.assertEqual(self.get("/v1/charges", other_key).status, 200)
        # Once a token is back, the same key creates the charge: the 429 was never stored.
        created = h.poll(lambda: (lambda r: r if r.status != 429 else None)(
            self.post_charge(key, h.charge_body(), idem)), timeout=10, interval=0.2,
            message="a token back in the bucket")
        self.assertEqual(created.status, 201)
        self.assertEqual(created.header("Idempotent-Replayed"), "false")


class ShutdownTest(unittest.TestCase):

    def test_sigterm_drains_in_flight_requests_and_exits_zero(self):
        """SIGTERM under load: every request the server accepted gets a complete response, and it exits 0"""
        db = h.module_database(__name__)
        _, key = None, db.create_key(h.new_user())
        server = h.Server(db.app_url, {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_SHUTDOWN_TIMEOUT": "10s"})
        server.start()
        results = []
        lock = threading.Lock()
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    resp = server.request("POST", "/v1/charges", h.charge_body(),
                                          {"Authorization": "Bearer " + key,
                                           "Idempotency-Key": h.new_key(),
                                           "Content-Type": "application/json"}, timeout=15)
                    outcome = ("response", resp.status, resp.body)
                except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                    outcome = ("refused", None, None)   # never accepted: nothing to answer
                except (http.client.RemoteDisconnected, http.client.IncompleteRead) as e:
                    outcome = ("broken", None, repr(e))
                except OSError as e:
                    outcome = ("refused", None, repr(e))
                with lock:
                    results.append(outcome)
                if outcome[0] != "response":
                    return

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        h.poll(lambda: len(results) >= 40, timeout=30, message="requests under load")
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=20)
        stop.set()
        for t in threads:
            t.join(timeout=20)
        server.proc = None
        log = server.log()
        server.remove_log()
        self.assertEqual(code, 0, log[-2000:])
        broken = [r for r in results if r[0] == "broken"]
        self.assertEqual(broken, [], "accepted requests got broken responses")
        answered = [r for r in results if r[0] == "response"]
        created = [r for r in answered if r[1] == 201]
        # While draining, new requests get a complete 503 (retry with the same key).
        self.assertTrue(all(r[1] in (201, 503) and r[2].startswith(b"{") for r in answered),
                        [r[:2] for r in answered if r[1] not in (201, 503)][:5])
        self.assertTrue(all(b'"service_unavailable"' in r[2] for r in answered if r[1] == 503))
        self.assertGreater(len(created), 0)
        # Every 201 the clients saw is a charge in the database, and nothing else was created.
        self.assertEqual(db.count("charges", "user_id IN (SELECT user_id FROM api_keys"
                                  " WHERE id = %s)" % h.sql_literal(key[8:20])), len(created))
        self.assertIn('"msg":"draining"', log)


class LogTest(unittest.TestCase):

    def test_a_stuck_log_pipe_never_blocks_requests(self):
        """With stderr a pipe nobody reads (full after ~64 KiB), requests keep being answered: logs are written off the request path"""
        db = h.module_database(__name__)
        key = db.create_key(h.new_user())
        port = h.free_port()
        env = dict(os.environ, DATABASE_URL=db.app_url, PAYMENTS_RATE_LIMIT="0", PAYMENTS_LOG_LEVEL="debug")
        proc = subprocess.Popen([h.BIN, "serve", "--listen", "127.0.0.1:%d" % port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=h.ROOT)
        server = h.Server(db.app_url)
        server.port = port
        try:
            h.poll(lambda: self._healthy(server), timeout=10, message="GET /healthz")
            # ~1000 requests write far more than a pipe holds; none may hang on it.
            started = time.monotonic()
            for _ in range(1000):
                resp = server.request("GET", "/v1/charges/ch_000000000000000000000000",
                                      headers={"Authorization": "Bearer " + key}, timeout=5)
                self.assertEqual(resp.status, 404)
            self.assertLess(time.monotonic() - started, 60)
            self.assertIsNone(proc.poll())
        finally:
            proc.send_signal(signal.SIGTERM)
            # Drain the pipe so the writer thread can finish and the process exit.
            proc.communicate(timeout=30)
            server.remove_log()

    @staticmethod
    def _healthy(server):
        try:
            return server.request("GET", "/healthz", timeout=1).status == 200
        except OSError:
            return False


class TlsTest(unittest.TestCase):

    def test_https_with_a_certificate_made_at_test_time(self):
        """With PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY the API speaks HTTPS (and not plain HTTP)"""
        db = h.module_database(__name__)
        key = db.create_key(h.new_user())
        with tempfile.TemporaryDirectory() as tmp:
            cert, pkey = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", pkey, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60)
            port = h.free_port()
            log = tempfile.TemporaryFile()
            env = dict(os.environ, DATABASE_URL=db.app_url, PAYMENTS_TLS_CERT=cert,
                       PAYMENTS_TLS_KEY=pkey, PAYMENTS_RATE_LIMIT="0")
            proc = subprocess.Popen([h.BIN, "serve", "--listen", "127.0.0.1:%d" % port],
                                    stdout=log, stderr=log, env=env, cwd=h.ROOT)
            try:
                ctx = ssl.create_default_context(cafile=cert)

                def https(method, path, body=None, headers=None):
                    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                    try:
                        conn.request(method, path, body, headers or {})
                        resp = conn.getresponse()
                        return resp.status, resp.read()
                    finally:
                        conn.close()

                def up():
                    if proc.poll() is not None:
                        raise AssertionError("serve exited with %d" % proc.returncode)
                    try:
                        return https("GET", "/healthz")[0] == 200
                    except OSError:
                        return False

                h.poll(up, timeout=10, message="HTTPS /healthz")
                status, body = https("POST", "/v1/charges",
                                     '{"amount":500,"currency":"usd","source":"tok_visa"}',
                                     {"Authorization": "Bearer " + key,
                                      "Idempotency-Key": h.new_key(),
                                      "Content-Type": "application/json"})
                self.assertEqual(status, 201, body)
                plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                with self.assertRaises((OSError, http.client.HTTPException)):
                    plain.request("GET", "/healthz")
                    plain.getresponse().read()
                plain.close()
                # The private key is not left behind in a temporary file.
                self.assertEqual([f for f in os.listdir("/tmp") if f.startswith("payments-tls-")], [])
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
                log.close()


if __name__ == "__main__":
    unittest.main()
