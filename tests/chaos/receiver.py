"""receiver.py - the chaos harness's webhook receiver: checks every signature, records every arrival, fails or hangs on demand.

It is what a subscriber runs: a threading HTTP/1.1 server on 127.0.0.1
(keep-alive, so the relay reuses its connections), one path per webhook
endpoint (/hooks/<name>), each with its signing secret. Every request is
checked the way the Standard Webhooks spec tells a consumer to: webhook-id,
webhook-timestamp within five minutes, and webhook-signature
"v1,<base64 HMAC-SHA256 of id.timestamp.body keyed by the base64-decoded part
of whsec_...>"; the body must be the event whose id is the webhook-id. A
request failing a check is answered 400 and kept as invalid.

Faults: fail_for(seconds) answers 500 until then; hang_for(seconds) holds
each request without an answer until the window ends, then answers 503 (the
sender has timed out long before). Only a 2xx answer counts as a delivery.
"""

import base64
import binascii
import hashlib
import hmac
import http.server
import json
import socketserver
import threading
import time

# Standard Webhooks: consumers refuse timestamps further than this from their clock.
TIMESTAMP_TOLERANCE_S = 5 * 60

# A held request is released after this long whatever the window says, so a
# mistake cannot wedge the run.
HANG_LIMIT_S = 10.0


def decode_secret(secret):
    """The key bytes of a whsec_ secret; raises ValueError when it is not one."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret %r does not start with whsec_" % secret)
    try:
        return base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error as e:
        raise ValueError("secret %r is not base64: %s" % (secret, e)) from None


def expected_signature(secret, msg_id, timestamp, body):
    """The v1 signature of body: HMAC-SHA256 of "id.timestamp.body", base64."""
    msg = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    mac = hmac.new(decode_secret(secret), msg, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(secret, headers, body, now):
    """None when the delivery is authentic, else why it is not."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    if not ts.isdigit():
        return "webhook-timestamp %r is not a Unix time" % ts
    if abs(now - int(ts)) > TIMESTAMP_TOLERANCE_S:
        return "webhook-timestamp %s is more than 5 minutes from now (%d)" % (ts, now)
    want = expected_signature(secret, msg_id, ts, body)
    # Several space-separated signatures may be sent (key rotation); any may match.
    if not any(hmac.compare_digest(s.encode(), want.encode()) for s in sigs.split(" ") if s):
        return "no valid v1 signature in %r" % sigs
    if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
        return "Content-Type is %r" % headers.get("Content-Type")
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the body is not JSON"
    if not isinstance(event, dict) or event.get("id") != msg_id:
        return "the body is not the event %s" % msg_id
    return None


class Arrival:
    """One request the receiver got, in arrival order (index), and what it answered."""

    __slots__ = ("index", "name", "webhook_id", "event", "error", "status", "hung")

    def __init__(self, index, name, webhook_id, event, error):
        self.index = index
        self.name = name                # the endpoint's path name
        self.webhook_id = webhook_id
        self.event = event              # the parsed body (dict) or None
        self.error = error              # why it is not authentic, or None
        self.status = None              # the status answered
        self.hung = False               # held by a hang window

    @property
    def delivered(self):
        return self.error is None and not self.hung and self.status is not None \
            and 200 <= self.status < 300


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
        except (OSError, ValueError):
            self.close_connection = True
            return
        status = self.server.receiver._handle(self, body)
        try:
            self.send_response(status)
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
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass    # a relay killed or timing out mid-request resets its connection: expected here


class Receiver:
    """The webhook receiver on 127.0.0.1:<free port>; start() it, close() it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._secrets = {}
        self._arrivals = []
        self._fail_until = 0.0
        self._hang_until = 0.0
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05}, name="receiver")

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self.clear_faults()
        self._server.shutdown()
        self._server.server_close()

    def url(self, name):
        return "http://127.0.0.1:%d/hooks/%s" % (self.port, name)

    def set_secret(self, name, secret):
        decode_secret(secret)
        with self._lock:
            self._secrets[name] = secret

    # --- faults ---

    def fail_for(self, seconds):
        """Answers 500 to every authentic request for the next seconds."""
        with self._lock:
            self._fail_until = max(self._fail_until, time.monotonic() + seconds)

    def hang_for(self, seconds):
        """Holds every authentic request without an answer for the next seconds."""
        with self._lock:
            self._hang_until = max(self._hang_until, time.monotonic() + seconds)

    def clear_faults(self):
        """Ends the fail and hang windows now and lets held requests go."""
        with self._lock:
            self._fail_until = 0.0
            self._hang_until = 0.0
            self._release.set()
            self._release = threading.Event()

    # --- requests ---

    def _handle(self, handler, body):
        path = handler.path
        name = path[len("/hooks/"):] if path.startswith("/hooks/") else None
        now = time.time()
        event = None
        try:
            event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
        with self._lock:
            secret = self._secrets.get(name)
            if secret is None:
                error = "no endpoint registered for %s" % path
            else:
                error = verify(secret, handler.headers, body, now)
            arrival = Arrival(len(self._arrivals), name, handler.headers.get("webhook-id"),
                              event if isinstance(event, dict) else None, error)
            self._arrivals.append(arrival)
            mono = time.monotonic()
            if error is not None:
                status = 400
            elif mono < self._hang_until:
                arrival.hung = True
                status = None
                hold = min(self._hang_until - mono, HANG_LIMIT_S)
                release = self._release
            elif mono < self._fail_until:
                status = 500
            else:
                status = 200
            if status is not None:
                arrival.status = status
        if status is None:
            release.wait(hold)
            status = 503
            with self._lock:
                arrival.status = status
        return status

    def arrivals(self):
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._arrivals)
