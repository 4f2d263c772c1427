"""webhooks.py - the relay tests' fixtures: a receiver that checks every signature, and relay processes.

Receiver is what a subscriber runs: a threading HTTP/1.1 server on
127.0.0.1 (keep-alive, so the relay can reuse its connections). Every webhook
endpoint a test creates gets a path of its own on it, receiver.url(name),
and its signing secret is registered with receiver.set_secret(name, secret).
Each request is checked the way the Standard Webhooks spec tells a consumer to
check it: webhook-id, webhook-timestamp within five minutes, and
webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body keyed by the
base64-decoded part of whsec_...>". A request that fails a check is answered
400 and listed in receiver.errors(). Per path, the receiver can be told to
fail the next N requests, always fail, answer 429/503 with Retry-After, or hang.

Relay runs 'payments relay' with fast test settings (millisecond backoff,
short timeouts and lease), its stderr in a file, and can SIGKILL it.
"""

import base64
import binascii
import collections
import hashlib
import hmac
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

import harness as h

# Standard Webhooks: consumers refuse timestamps further than this from their clock.
TIMESTAMP_TOLERANCE_S = 5 * 60

# A hanging request is held at most this long, so a forgotten release cannot wedge a test run.
HANG_LIMIT_S = 30

# The relay's settings for tests: everything in milliseconds.
SCHEDULE_MS = [0, 50, 100, 200]
RELAY_ENV = {
    "PAYMENTS_LOG_LEVEL": "info",
    "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
    "PAYMENTS_WEBHOOK_SCHEDULE": ",".join("%dms" % d for d in SCHEDULE_MS),
    "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "5",
    "PAYMENTS_WEBHOOK_TIMEOUT": "1s",
    "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT": "500ms",
    "PAYMENTS_WEBHOOK_RETRY_AFTER_MAX": "1500ms",
    "PAYMENTS_RELAY_LEASE": "3s",
    "PAYMENTS_RELAY_POLL": "20ms",
}


def decode_secret(secret):
    """The key bytes of a whsec_ secret; raises ValueError when it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret %r does not start with whsec_" % secret)
    try:
        return base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error as e:
        raise ValueError("secret %r is not base64: %s" % (secret, e)) from None


def sign(secret, msg_id, timestamp, body):
    """The v1 signature of body as the Standard Webhooks spec defines it."""
    mac = hmac.new(decode_secret(secret), b"%s.%d.%s" % (msg_id.encode(), timestamp, body),
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(secret, headers, body, now=None):
    """
    Checks one delivery as a Standard Webhooks consumer does. headers is a
    mapping with case-insensitive get (an http.client.HTTPMessage). Returns
    None when the delivery is authentic, else the reason it is not.
    """
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not ts.isdigit():
        return "webhook-timestamp %r is not a Unix time" % ts
    now = time.time() if now is None else now
    if abs(now - int(ts)) > TIMESTAMP_TOLERANCE_S:
        return "webhook-timestamp %s is more than 5 minutes from now (%d)" % (ts, now)
    want = sign(secret, msg_id, int(ts), body)
    # The header may carry several space-separated signatures (key rotation): any may match.
    if not any(hmac.compare_digest(s.encode(), want.encode()) for s in sigs.split(" ") if s):
        return "no valid signature in %r" % sigs
    return verify_stripe(secret, headers, body, ts)


def verify_stripe(secret, headers, body, ts):
    """
    Checks the Stripe-Signature header as Stripe's SDKs do: "t=<ts>,v1=<hex
    HMAC-SHA256 of t.body keyed with the secret string>", t being this
    attempt's webhook-timestamp. Returns None or the reason it fails.
    """
    header = headers.get("Stripe-Signature")
    if not header:
        return "missing Stripe-Signature"
    parts = [p.split("=", 1) for p in header.split(",")]
    t = [v for k, v in parts if k == "t"]
    v1 = [v for k, v in parts if k == "v1"]
    if t != [ts]:
        return "Stripe-Signature %r does not carry t=%s" % (header, ts)
    want = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(s.encode(), want.encode()) for s in v1):
        return "no valid v1 in Stripe-Signature %r" % header
    return None


class Request:
    """One request the receiver got: what was sent, whether it was authentic, and what it answered."""

    def __init__(self, name, headers, body, conn):
        self.name = name                      # the endpoint's path name on the receiver
        self.headers = headers
        self.body = body                      # raw bytes, as signed
        self.conn = conn                      # client (host, port): one per TCP connection
        self.at = time.monotonic()
        self.webhook_id = headers.get("webhook-id")
        self.timestamp = headers.get("webhook-timestamp")
        self.content_type = headers.get("Content-Type")
        self.error = None                     # why the request is not an authentic delivery
        self.status = None                    # the status answered (None while held)
        self.hung = False                     # held by hang(): never an answer the sender saw
        try:
            self.event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self.event = None
        obj = ((self.event or {}).get("data") or {}).get("object") or {}
        self.type = (self.event or {}).get("type")
        self.charge_id = obj.get("charge") if obj.get("object") == "refund" else obj.get("id")

    @property
    def ok(self):
        return (self.error is None and not self.hung and self.status is not None
                and 200 <= self.status < 300)

    def __repr__(self):
        return "<Request %s %s %s %s -> %s%s>" % (
            self.name, self.webhook_id, self.type, self.charge_id, self.status,
            " error: " + self.error if self.error else "")


HANG = "hang"   # an answer that is no answer: the request is held until released


class _Endpoint:
    """The receiver's state for one path: its secret and how to answer."""

    def __init__(self):
        self.secret = None
        self.script = []            # (status or HANG, headers) for the next requests, in order
        self.default = (200, {})    # the answer once the script is used up
        self.release = threading.Event()   # set to let the held requests go


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: the relay may reuse connections
    disable_nagle_algorithm = True  # headers and body go in separate writes

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        status, headers = self.server.receiver._handle(self, body)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            self.close_connection = True   # the relay went away (timed out or killed)

    def _refuse(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_DELETE = _refuse


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256   # the relay opens many connections at once: no dropped SYNs
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A sender that gave up on a request (a relay killed, or one that lost
        # its database mid-delivery) resets its connection: that is the
        # sender's business, shown by what was delivered, not a traceback here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Receiver:
    """A webhook receiver on 127.0.0.1:<free port>; start() it, close() it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._endpoints = {}
        self._requests = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    def start(self):
        self._thread.start()
        return self

    def close(self):
        with self._lock:
            for ep in self._endpoints.values():
                ep.release.set()
        self._server.shutdown()
        self._server.server_close()

    # --- configuration, per endpoint path ---

    def _endpoint(self, name):
        return self._endpoints.setdefault(name, _Endpoint())

    def url(self, name):
        with self._lock:
            self._endpoint(name)
        return "http://127.0.0.1:%d/hooks/%s" % (self.port, name)

    def set_secret(self, name, secret):
        decode_secret(secret)
        with self._lock:
            self._endpoint(name).secret = secret

    def fail_next(self, name, n, status=500, headers=None):
        """The next n requests to name are answered status (with headers), then as before."""
        with self._lock:
            self._endpoint(name).script.extend([(status, dict(headers or {}))] * n)

    def always(self, name, status, headers=None):
        """Every request to name is answered status from now on (after any scripted answers)."""
        with self._lock:
            self._endpoint(name).default = (status, dict(headers or {}))

    def recover(self, name):
        """Drops scripted failures and answers 200 again."""
        with self._lock:
            ep = self._endpoint(name)
            ep.script = []
            ep.default = (200, {})

    def hang(self, name):
        """Every request to name is held without an answer until release(name)."""
        self.always(name, HANG)

    def hang_next(self, name, n):
        """The next n requests to name are held without an answer until release(name)."""
        self.fail_next(name, n, HANG)

    def release(self, name):
        """
        Lets the held requests of name go and answers 200 from now on. A held
        request never counts as delivered: its sender gave up (timed out or
        was killed) long before.
        """
        with self._lock:
            ep = self._endpoint(name)
            ep.release.set()
            ep.release = threading.Event()
            ep.script = [a for a in ep.script if a[0] != HANG]
            if ep.default[0] == HANG:
                ep.default = (200, {})

    # --- what was received ---

    def _handle(self, handler, body):
        path = handler.path
        name = path[len("/hooks/"):] if path.startswith("/hooks/") else None
        req = Request(name, handler.headers, body, handler.client_address)
        with self._lock:
            ep = self._endpoints.get(name)
            if ep is None or ep.secret is None:
                req.error = "no endpoint (or no secret) registered for %s" % path
            else:
                req.error = verify(ep.secret, handler.headers, body)
            if req.error is None and req.content_type != "application/json":
                req.error = "Content-Type is %r" % req.content_type
            if req.error is None and (req.event is None or req.event.get("id") != req.webhook_id):
                req.error = "the body is not an event whose id is the webhook-id"
            if req.error is not None:
                answer = (400, {})
            elif ep.script:
                answer = ep.script.pop(0)
            else:
                answer = ep.default
            release = ep.release if answer[0] == HANG else None
            self._requests.append(req)
        if release is not None:
            req.hung = True
            release.wait(HANG_LIMIT_S)
            answer = (503, {})
        with self._lock:
            req.status = answer[0]
        return answer

    def requests(self, name=None):
        """Every request so far (to name), in arrival order."""
        with self._lock:
            return [r for r in self._requests if name is None or r.name == name]

    def delivered(self, name=None):
        """The authentic requests answered 2xx (to name), in arrival order."""
        return [r for r in self.requests(name) if r.ok]

    def delivered_ids(self, name=None):
        return [r.webhook_id for r in self.delivered(name)]

    def hanging(self, name=None):
        """The requests held right now (to name)."""
        return [r for r in self.requests(name) if r.hung and r.status is None]

    def errors(self):
        """Requests that were not authentic deliveries: (request, reason)."""
        return [(r, r.error) for r in self.requests() if r.error is not None]

    def wait_delivered(self, name, ids, timeout=h.POLL_TIMEOUT):
        """Waits until every webhook-id in ids has been delivered to name; returns the requests."""
        want = set(ids)

        def done():
            got = set(self.delivered_ids(name))
            return want <= got
        h.poll(done, timeout=timeout, interval=0.02,
               message="deliveries of %d events to %s (got %r)" % (
                   len(want), name, self.delivered_ids(name)))
        return self.delivered(name)


class Relay:
    """One 'payments relay' process on a database, stderr captured to a file."""

    def __init__(self, database_url, env=None):
        self.database_url = database_url
        self.env = dict(RELAY_ENV)
        self.env.update(env or {})
        self.proc = None
        fd, self.log_path = tempfile.mkstemp(prefix="payments-relay-", suffix=".stderr")
        os.close(fd)

    def start(self):
        if not os.access(h.BIN, os.X_OK):
            raise h.HarnessError("%s is missing: run make first" % h.BIN)
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.database_url})
        env.update(self.env)
        start_len = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([h.BIN, "relay"], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env, cwd=h.ROOT)

        def started():
            if self.proc.poll() is not None:
                raise h.HarnessError("payments relay exited with %d:\n%s" % (
                    self.proc.returncode, self.log()))
            return "relay connected to the database" in self.log()[start_len:]
        h.poll(started, timeout=10, interval=0.02, message="the relay to connect")
        return self

    def kill(self):
        """SIGKILL: no chance to finish the batch or record anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def remove_log(self):
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        """Every log line parsed as JSON; fails on a line that is not JSON."""
        out = []
        for line in self.log().split("\n"):
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError("relay log line is not JSON: %r" % line) from None
        return out

    def attempts(self, delivery_id=None):
        """The log records of delivery attempts (of one delivery)."""
        return [r for r in self.records() if r.get("msg") == "webhook delivery attempt"
                and (delivery_id is None or r.get("delivery") == delivery_id)]


def relay_cli(database_url, *args):
    """Runs 'payments relay ARGS' (status, replay) and returns the CompletedProcess."""
    return h.run_bin(["relay"] + list(args), {"DATABASE_URL": database_url}, timeout=30)


def relay_status(database_url):
    """'payments relay status' parsed into a dict of its numbers."""
    proc = relay_cli(database_url, "status")
    if proc.returncode != 0:
        raise AssertionError("relay status failed (%d): %s" % (proc.returncode, proc.stderr))
    out = {}
    for line in proc.stdout.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            out[label.strip()] = float(value.strip().split()[0])
    return out


# One row of webhook_deliveries with the status codes of its attempts, in order.
Delivery = collections.namedtuple("Delivery", "id status attempts last_status_code codes")


class WebhookTestCase(h.ServiceTestCase):
    """
    A ServiceTestCase (the API server, with private webhook URLs allowed) with
    a receiver, and, when start_relay, one relay for the whole class.
    """

    server_env = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1"}
    relay_env = {}
    start_relay = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secrets = []    # every signing secret handed out, to look for in the logs
        cls.relays = []
        cls.receiver = Receiver().start()
        try:
            if cls.start_relay:
                cls.relay = cls.new_relay()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for relay in cls.relays:
            relay.stop()
        cls.receiver.close()
        if os.environ.get("PAYMENTS_TEST_KEEP_LOGS") != "1":
            for relay in cls.relays:
                relay.remove_log()
        super().tearDownClass()

    @classmethod
    def new_relay(cls, env=None, start=True):
        """A relay on the module's database with the test settings (plus env), started."""
        e = dict(cls.relay_env)
        e.update(env or {})
        relay = Relay(cls.db.app_url, e)
        cls.relays.append(relay)
        return relay.start() if start else relay

    # --- API helpers ---

    def auth(self, key, idem=None):
        headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        if idem is not None:
            headers["Idempotency-Key"] = idem
        return headers

    def create_endpoint(self, key, name, events=("*",), url=None):
        """Creates an endpoint pointing at receiver path name and registers its secret there."""
        body = {"url": url or self.receiver.url(name), "enabled_events": list(events)}
        resp = self.server.request("POST", "/v1/webhook_endpoints", body, self.auth(key))
        obj = self.assert_json_response(resp, 201)
        self.secrets.append(obj["secret"])
        self.receiver.set_secret(name, obj["secret"])
        return obj

    def charge(self, key, source="tok_visa", amount=2000):
        """Creates a charge; returns (charge id, X-Request-Id, Idempotency-Key), declined or not."""
        idem = h.new_key()
        resp = self.post_charge(key, h.charge_body(source=source, amount=amount), idem)
        if resp.status == 201:
            charge_id = resp.json()["id"]
        else:
            self.assertEqual(resp.status, 402, "charge failed: %r" % (resp,))
            charge_id = resp.json()["error"]["charge"]
        return charge_id, resp.header("X-Request-Id"), idem

    def refund(self, key, charge_id, amount):
        resp = self.server.request("POST", "/v1/refunds", {"charge": charge_id, "amount": amount},
                                   self.auth(key, h.new_key()))
        return self.assert_json_response(resp, 201)

    def get_json(self, key, path, status=200):
        return self.assert_json_response(self.get(path, key), status)

    # --- database helpers ---

    def events_of(self, user):
        """The user's events in commit order: [(id, type, charge_id)]."""
        rows = self.db.query("SELECT id, type, charge_id FROM outbox_events WHERE user_id = %s"
                             " ORDER BY seq" % h.sql_literal(user))
        return [tuple(r.split("|")) for r in rows.split("\n") if r]

    def delivery(self, event_id, endpoint_id):
        """(id, status, attempts, last_status_code) of one delivery, or None."""
        row = self.db.query(
            "SELECT id, status, attempts, coalesce(last_status_code::text, '')"
            " FROM webhook_deliveries WHERE event_id = %s AND endpoint_id = %s"
            % (h.sql_literal(event_id), h.sql_literal(endpoint_id)))
        if not row:
            return None
        d_id, status, attempts, code = row.split("|")
        return d_id, status, int(attempts), int(code) if code else None

    def attempt_rows(self, delivery_id):
        """[(status_code or None, error or None, duration_ms)] of a delivery, in order."""
        rows = self.db.query(
            "SELECT coalesce(status_code::text, ''), coalesce(error, ''), duration_ms"
            " FROM webhook_attempts WHERE delivery_id = %s ORDER BY seq"
            % h.sql_literal(delivery_id))
        out = []
        for r in rows.split("\n"):
            if r:
                code, error, ms = r.split("|")
                out.append((int(code) if code else None, error or None, int(ms)))
        return out

    def deliveries_of(self, user):
        """
        Every delivery of user's events in one query: {(event id, endpoint id):
        Delivery(id, status, attempts, last_status_code or None, [status code or None of
        each attempt])}.
        """
        rows = self.db.query(
            "SELECT d.event_id, d.endpoint_id, d.id, d.status, d.attempts,"
            " coalesce(d.last_status_code::text, ''),"
            " (SELECT coalesce(json_agg(a.status_code ORDER BY a.seq), '[]')"
            "    FROM webhook_attempts a WHERE a.delivery_id = d.id)"
            " FROM webhook_deliveries d WHERE d.user_id = %s" % h.sql_literal(user))
        out = {}
        for r in rows.split("\n"):
            if r:
                event_id, endpoint_id, d_id, status, attempts, code, codes = r.split("|")
                out[(event_id, endpoint_id)] = Delivery(d_id, status, int(attempts),
                                                        int(code) if code else None,
                                                        json.loads(codes))
        return out

    def wait_settled(self, user, timeout=h.POLL_TIMEOUT):
        """Waits until every event of user is published and none of its deliveries is pending."""
        sql = ("SELECT (SELECT count(*) FROM outbox_events WHERE user_id = %(u)s"
               "         AND published_at IS NULL)"
               " + (SELECT count(*) FROM webhook_deliveries WHERE user_id = %(u)s"
               "         AND status = 'pending')" % {"u": h.sql_literal(user)})
        h.poll(lambda: self.db.query(sql) == "0", timeout=timeout, interval=0.05,
               message="the relay to finish %s's events" % user)

    def assert_no_receiver_errors(self):
        self.assertEqual(self.receiver.errors(), [], "the receiver got unauthentic requests")
