"""test_nats.py - the relay publishes every event to NATS JetStream exactly once, in order per charge.

Starts a local nats-server with JetStream on loopback (skipped when the
nats-server binary is missing: scripts/deps.sh installs it), API instances
and relays on one database, and reads the stream back over the plain NATS
protocol: $JS.API.STREAM.INFO for the sequence range, then
$JS.API.STREAM.MSG.GET for every message (subject, Nats-Msg-Id header, data).
Each test uses a stream and subject prefix of its own, and looks only at the
events committed since it started.
"""

import base64
import concurrent.futures
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import unittest

# Runnable as "python3 -m unittest tests/integration/test_nats.py" from the repository too.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402  (needs the path above)
from harness import sql_literal as lit  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"

# The relay's settings for these tests: a short lease so a killed relay's claims come back soon.
RELAY_ENV = {
    "PAYMENTS_LOG_LEVEL": "debug",
    "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
    "PAYMENTS_WEBHOOK_SCHEDULE": "0,50ms,100ms,200ms",
    "PAYMENTS_WEBHOOK_TIMEOUT": "1s",
    "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT": "500ms",
    "PAYMENTS_RELAY_LEASE": "3s",
    "PAYMENTS_RELAY_POLL": "20ms",
}
API_ENV = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1", "PAYMENTS_RATE_LIMIT": "0"}

_nats = None


def setUpModule():
    if not os.access(NATS_SERVER, os.X_OK):
        raise unittest.SkipTest("nats-server is not installed (scripts/deps.sh installs it)")
    global _nats
    h.setup_module(__name__)
    _nats = NatsServer()
    try:
        _nats.start()
    except BaseException:
        _nats.close()
        h.teardown_module(__name__)
        raise


def tearDownModule():
    if _nats is not None:
        _nats.close()
    h.teardown_module(__name__)


# --- NATS: the server, and a client of the plain protocol ---

class NatsServer:
    """nats-server -js on 127.0.0.1:<free port>, its store in a temporary directory kept across restarts."""

    def __init__(self):
        self.port = h.free_port()
        self.store = tempfile.mkdtemp(prefix="payments-it-nats-")
        self.log_path = os.path.join(self.store, "nats-server.log")
        self.proc = None

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                with NatsClient(self.port, timeout=1) as c:
                    return c.request("$JS.API.INFO", b"").get("type") is not None
            except OSError:
                return False
        h.poll(ready, timeout=15, message="nats-server with JetStream")
        return self

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.store, ignore_errors=True)


class NatsClient:
    """Just enough of the NATS client protocol for JetStream API requests and one publish."""

    def __init__(self, port, timeout=5):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.next_id = 0
        self.inbox = "_INBOX.it%d" % os.getpid()
        if not self._line().startswith(b"INFO "):
            raise AssertionError("no INFO from nats-server")
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"no_responders":true,"protocol":1}\r\nPING\r\n')
        while self._line() != b"PONG":
            pass
        self.sock.sendall(("SUB %s.* 1\r\n" % self.inbox).encode())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("nats-server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _message(self):
        """The next MSG or HMSG as (subject, headers bytes, payload bytes); answers PINGs."""
        while True:
            line = self._line()
            parts = line.split()
            if not parts or parts[0] in (b"PONG", b"+OK", b"INFO"):
                continue
            if parts[0] == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif parts[0] == b"MSG":
                return parts[1].decode(), b"", self._bytes(int(parts[-1]))
            elif parts[0] == b"HMSG":
                data = self._bytes(int(parts[-1]))
                n = int(parts[-2])
                return parts[1].decode(), data[:n], data[n:]
            else:
                raise AssertionError("nats-server said %r" % line)

    def requests(self, items):
        """Sends every (subject, payload, headers) request at once; returns the JSON replies in order."""
        base = self.next_id
        self.next_id += len(items)
        out = []
        for i, (subject, payload, headers) in enumerate(items):
            reply = "%s.%d" % (self.inbox, base + i)
            if headers:
                hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                                  for k, v in headers.items()) + b"\r\n"
                out.append(b"HPUB %s %s %d %d\r\n%s%s\r\n" % (
                    subject.encode(), reply.encode(), len(hdr), len(hdr) + len(payload), hdr, payload))
            else:
                out.append(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(),
                                                          len(payload), payload))
        self.sock.sendall(b"".join(out))
        replies = {}
        while len(replies) < len(items):
            subject, headers, payload = self._message()
            n = int(subject.rsplit(".", 1)[1]) - base
            if 0 <= n < len(items):
                if headers.startswith(b"NATS/1.0 503"):
                    raise AssertionError("no responders for %s" % items[n][0])
                replies[n] = json.loads(payload.decode()) if payload else {}
        return [replies[i] for i in range(len(items))]

    def request(self, subject, payload, headers=None):
        return self.requests([(subject, payload, headers)])[0]

    def stream_info(self, stream):
        """The stream's info, or None when it does not exist."""
        info = self.request("$JS.API.STREAM.INFO." + stream, b"")
        if "error" in info:
            if info["error"].get("err_code") == 10059:
                return None
            raise AssertionError("STREAM.INFO %s: %r" % (stream, info))
        return info

    def stream_messages(self, stream):
        """Every message of the stream as dicts: seq, subject, msg_id, data (parsed JSON)."""
        state = self.stream_info(stream)["state"]
        seqs = list(range(state["first_seq"], state["last_seq"] + 1)) if state["messages"] else []
        replies = self.requests([("$JS.API.STREAM.MSG.GET." + stream,
                                  json.dumps({"seq": s}).encode(), None) for s in seqs])
        out = []
        for seq, r in zip(seqs, replies):
            if "error" in r:
                raise AssertionError("MSG.GET %d of %s: %r" % (seq, stream, r))
            m = r["message"]
            headers = base64.b64decode(m.get("hdrs") or b"").decode()
            msg_id = None
            for line in headers.split("\r\n")[1:]:
                if line.lower().startswith("nats-msg-id:"):
                    msg_id = line.split(":", 1)[1].strip()
            out.append({"seq": m["seq"], "subject": m["subject"], "msg_id": msg_id,
                        "data": json.loads(base64.b64decode(m.get("data") or b"").decode())})
        return out


# --- the relay processes and a webhook receiver ---

class Relay:
    """One 'payments relay' with NATS on, its stderr in a file."""

    def __init__(self, database_url, env):
        self.env = dict(os.environ)
        self.env.update(RELAY_ENV)
        self.env.update(env)
        self.env["DATABASE_URL"] = database_url
        fd, self.log_path = tempfile.mkstemp(prefix="payments-it-relay-", suffix=".stderr")
        os.close(fd)
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([h.BIN, "relay"], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env, cwd=h.ROOT)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def lines(self):
        """The JSON log lines written so far."""
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        out = []
        for line in text.split("\n"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def logged(self, msg):
        return [line for line in self.lines() if line.get("msg") == msg]

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        self.stop()
        if os.environ.get("PAYMENTS_TEST_KEEP_LOGS") != "1":
            os.unlink(self.log_path)


class Receiver:
    """A webhook receiver on loopback that answers 200 and remembers every webhook-id."""

    def __init__(self):
        receiver = self
        self.lock = threading.Lock()
        self.ids = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.ids.append(self.headers.get("webhook-id"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         kwargs={"poll_interval": 0.05}).start()

    def delivered(self):
        with self.lock:
            return set(self.ids)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- the tests ---

class NatsTestCase(unittest.TestCase):
    """Each test: its own stream and prefix, APIs and relays it starts, and a watermark in the outbox."""

    maxDiff = None
    stream = None
    prefix = None

    def setUp(self):
        self.db = h.module_database(__name__)
        self.cleanups = []
        self.addCleanup(self._cleanup)
        self.watermark = int(self.db.query("SELECT coalesce(max(seq), 0) FROM outbox_events"))

    def _cleanup(self):
        for fn in reversed(self.cleanups):
            fn()

    def api(self):
        server = h.Server(self.db.app_url, API_ENV).start()
        self.cleanups.append(server.remove_log)
        self.cleanups.append(server.stop)
        return server

    def relay(self, env=None):
        e = {"PAYMENTS_NATS_URL": _nats.url, "PAYMENTS_NATS_STREAM": self.stream,
             "PAYMENTS_NATS_SUBJECT_PREFIX": self.prefix}
        e.update(env or {})
        relay = Relay(self.db.app_url, e).start()
        self.cleanups.append(relay.close)
        return relay

    def post(self, server, path, key, body, idem):
        return server.request("POST", path, body, {
            "Authorization": "Bearer " + key, "Idempotency-Key": idem,
            "Content-Type": "application/json"}, timeout=30)

    def post_twice(self, first, second, path, key, body):
        """Posts body on first, then retries it with the same key on second; both must agree."""
        idem = h.new_key()
        a = self.post(first, path, key, body, idem)
        b = self.post(second, path, key, body, idem)
        self.assertEqual(a.status, 201, "POST %s: %r" % (path, a))
        self.assertEqual((b.status, b.body), (a.status, a.body), "the retry on the other instance")
        self.assertEqual(b.header("Idempotent-Replayed"), "true")
        return a.json()

    def unpublished(self):
        return int(self.db.query("SELECT count(*) FROM outbox_events WHERE seq > %d"
                                 " AND nats_published_at IS NULL" % self.watermark))

    def wait_all_published(self, timeout=30):
        h.poll(lambda: self.unpublished() == 0, timeout=timeout, interval=0.1,
               message="every event published to NATS")

    def outbox(self):
        """The events since the watermark: [(seq, id, charge_id, type)] in seq order."""
        rows = self.db.query("SELECT seq, id, charge_id, type FROM outbox_events WHERE seq > %d"
                             " ORDER BY seq" % self.watermark)
        return [(int(r[0]), r[1], r[2], r[3]) for r in (line.split("|") for line in rows.split("\n") if line)]

    def assert_stream_matches_outbox(self):
        """Every event since the watermark is in the stream exactly once, on its subject, in order per charge."""
        events = self.outbox()
        self.assertTrue(events, "no events were committed")
        with NatsClient(_nats.port) as c:
            messages = c.stream_messages(self.stream)
        by_id = {}
        for m in messages:
            by_id.setdefault(m["msg_id"], []).append(m)
        twice = {i: [m["seq"] for m in ms] for i, ms in by_id.items() if len(ms) > 1}
        self.assertEqual(twice, {}, "event ids stored more than once (stream seqs)")
        missing = [e[1] for e in events if e[1] not in by_id]
        self.assertEqual(missing, [], "events missing from the stream")
        known = set(self.db.query("SELECT id FROM outbox_events").split("\n"))
        self.assertEqual([i for i in by_id if i not in known], [], "stream ids that are no events")
        order = {}
        for seq, eid, charge, etype in events:
            m = by_id[eid][0]
            self.assertEqual(m["subject"], "%s.%s" % (self.prefix, etype))
            self.assertEqual((m["data"]["id"], m["data"]["type"]), (eid, etype))
            order.setdefault(charge, []).append((m["seq"], seq))
        for charge, pairs in order.items():
            by_stream = [outbox_seq for _, outbox_seq in sorted(pairs)]
            self.assertEqual(by_stream, sorted(by_stream),
                             "charge %s: the stream's order differs from commit order" % charge)
        return events, messages


class NatsScaleOutTest(NatsTestCase):
    stream = "IT_SCALE"
    prefix = "it.scale.events"

    def test_two_apis_and_two_relays_with_one_killed_put_each_event_once_in_order(self):
        """Two APIs and two relays, one killed with -9 midway: every event is in the stream exactly once, each charge's in order"""
        apis = [self.api(), self.api()]
        relays = [self.relay(), self.relay()]
        user = h.new_user("nats")
        key = self.db.create_key(user)
        done = []
        lock = threading.Lock()

        def lifecycle(i):
            """A charge and two partial refunds, each retried on the other API."""
            a, b = apis[i % 2], apis[(i + 1) % 2]
            charge = self.post_twice(a, b, "/v1/charges", key, h.charge_body(amount=3000 + i))
            for n in range(2):
                self.post_twice(b if n else a, a if n else b, "/v1/refunds", key,
                                {"charge": charge["id"], "amount": 500 + n})
            with lock:
                done.append(i)

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(lifecycle, i) for i in range(40)]
            # Kill the first relay once it is publishing and half the work is done.
            h.poll(lambda: relays[0].logged("published events to NATS") or None, timeout=20,
                   message="the first relay publishing to NATS")
            h.poll(lambda: len(done) >= 20 or any(f.done() and f.exception() for f in futures),
                   timeout=60, message="half of the charges")
            relays[0].kill()
            for f in futures:
                f.result(timeout=60)

        self.wait_all_published()
        self.assertTrue(relays[1].alive(), relays[1].log())
        events, _ = self.assert_stream_matches_outbox()
        self.assertEqual(len(events), 40 * 5, "a charge and two refunds (two events each) per lifecycle")
        self.assertTrue(relays[1].logged("published events to NATS"), "the second relay did no work")

    def test_republish_of_an_event_already_in_the_stream_is_dropped(self):
        """An event a crashed relay published but never marked is published again and the server drops the copy"""
        api = self.api()
        key = self.db.create_key(h.new_user("nats"))
        charge = self.post(api, "/v1/charges", key, h.charge_body(), h.new_key()).json()
        row = self.db.query("SELECT id, type, event_object(e)::text FROM outbox_events e"
                            " WHERE charge_id = %s" % lit(charge["id"]))
        event_id, event_type, body = row.split("|", 2)
        # As if a relay had claimed it, published it and died before marking it.
        self.db.query("UPDATE outbox_events SET nats_locked_until = now() + interval '2 seconds'"
                      " WHERE id = %s" % lit(event_id))
        relay = self.relay()
        with NatsClient(_nats.port) as c:
            h.poll(lambda: c.stream_info(self.stream), timeout=15, message="the relay creating the stream")
            ack = c.request("%s.%s" % (self.prefix, event_type), body.encode(),
                            {"Nats-Msg-Id": event_id})
            self.assertEqual(ack.get("stream"), self.stream, ack)
            self.assertFalse(ack.get("duplicate", False))
        self.wait_all_published(timeout=15)
        self.assert_stream_matches_outbox()
        dups = [line for line in relay.logged("published events to NATS") if line.get("duplicates")]
        self.assertEqual([d["duplicates"] for d in dups], [1], relay.log())


class NatsOutageTest(NatsTestCase):
    stream = "IT_OUTAGE"
    prefix = "it.outage.events"

    def test_webhooks_keep_flowing_while_nats_is_down_and_nothing_is_lost(self):
        """With NATS frozen, then killed and restarted, under load: webhooks keep flowing and every event reaches the stream once, in order"""
        receiver = Receiver()
        self.cleanups.append(receiver.close)
        api = self.api()
        user = h.new_user("nats")
        key = self.db.create_key(user)
        resp = api.request("POST", "/v1/webhook_endpoints",
                           {"url": receiver.url, "enabled_events": ["*"]},
                           {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        self.assertEqual(resp.status, 201, resp)
        relay = self.relay()

        stop = threading.Event()
        errors = []

        def load():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    charge = self.post(api, "/v1/charges", key, h.charge_body(amount=1000 + i),
                                       h.new_key())
                    if charge.status != 201:
                        errors.append(charge)
                    elif i % 3 == 0:
                        self.post(api, "/v1/refunds", key, {"charge": charge.json()["id"]}, h.new_key())
                except Exception as e:   # reported below, never lost
                    errors.append(e)
                stop.wait(0.03)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        try:
            h.poll(lambda: int(self.db.query(
                "SELECT count(*) FROM outbox_events WHERE seq > %d AND nats_published_at IS NOT NULL"
                % self.watermark)) >= 10, timeout=20, message="events flowing to NATS")

            def outage(what):
                """While NATS is down: the failure is logged, webhooks keep arriving, events wait."""
                failures = len(relay.logged("NATS publishing failed; webhooks are not affected, "
                                            "events wait in the outbox"))
                h.poll(lambda: len(relay.logged("NATS publishing failed; webhooks are not affected, "
                                                "events wait in the outbox")) > failures,
                       timeout=20, message="the relay noticing NATS %s" % what)
                before = len(receiver.delivered())
                h.poll(lambda: len(receiver.delivered()) >= before + 10, timeout=15,
                       message="webhooks while NATS is %s" % what)
                self.assertGreater(self.unpublished(), 0, "events committed while NATS is %s" % what)

            _nats.pause()
            try:
                outage("frozen (SIGSTOP)")
            finally:
                _nats.resume()
            h.poll(lambda: relay.logged("NATS publishing resumed"), timeout=30,
                   message="publishing resuming after SIGCONT")
            _nats.kill()
            try:
                outage("killed")
            finally:
                _nats.start()   # same port, same store
        finally:
            stop.set()
            loader.join(timeout=30)
        self.assertEqual(errors, [], "the API failed while NATS was down")

        self.wait_all_published(timeout=40)
        events, _ = self.assert_stream_matches_outbox()
        ids = {e[1] for e in events}
        h.poll(lambda: ids <= receiver.delivered(), timeout=20, message="every webhook delivered")
        self.assertTrue(relay.alive(), relay.log())
