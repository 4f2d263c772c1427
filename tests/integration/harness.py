"""harness.py - the integration tests' fixtures: databases, API keys, the server, HTTP and psql.

Everything here talks to the real bin/payments and a real PostgreSQL, using
the Python standard library only.

Environment (set by scripts/test.sh, or by hand while developing):
  PAYMENTS_TEST_ADMIN_URL  libpq URI or conninfo of a database whose user may
                           CREATE and DROP DATABASE
  PAYMENTS_TEST_EMBEDDED   1 when that server is scripts/pg.sh's throwaway
                           cluster, which tests may stop and start
  PAYMENTS_TEST_BIN        the binary to test (default: bin/payments)
  PAYMENTS_TEST_KEEP_LOGS  1 keeps each server's captured stderr file

Each test module gets a fresh, migrated database named
payments_it_<module>_<pid> (setUpModule/tearDownModule call setup_module and
teardown_module); each ServiceTestCase class starts its own server on a free
port, with the class's server_env, and stops it afterwards.
"""

import atexit
import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PAYMENTS_TEST_BIN") or os.path.join(ROOT, "bin", "payments")
PG_SCRIPT = os.path.join(ROOT, "scripts", "pg.sh")

CHARGE_ID_RE = re.compile(r"^ch_[0-9A-Za-z]{24}$")
REQUEST_ID_RE = re.compile(r"^req_[0-9A-Za-z]{24}$")
EVENT_ID_RE = re.compile(r"^evt_[0-9A-Za-z]{24}$")

# The fields of a charge object, in the order the API renders them.
CHARGE_FIELDS = [
    "id", "object", "amount", "currency", "status", "source", "description", "metadata",
    "amount_refunded", "refunded", "captured", "amount_captured", "released_at", "release_reason",
    "failure_code", "decline_code", "created",
]

# Settings of every test server unless its class overrides them: access log
# lines on, and no rate limits or connection cap, since tests send many
# requests per user (and many without a valid key), many at once, from one
# address.
SERVER_DEFAULT_ENV = {"PAYMENTS_LOG_LEVEL": "info", "PAYMENTS_RATE_LIMIT": "0",
                      "PAYMENTS_AUTH_RATE_LIMIT": "0", "PAYMENTS_MAX_CONNECTIONS_PER_CLIENT": "0"}

# How long a condition may take before a poll gives up, in seconds.
POLL_TIMEOUT = 10.0


class HarnessError(Exception):
    """The environment is not usable (no database, no binary): an error, not a test failure."""


def admin_url():
    url = os.environ.get("PAYMENTS_TEST_ADMIN_URL", "")
    if not url:
        raise HarnessError(
            "PAYMENTS_TEST_ADMIN_URL is not set (e.g. "
            "postgresql://postgres@127.0.0.1:54329/postgres after scripts/pg.sh start)")
    return url


def embedded():
    return os.environ.get("PAYMENTS_TEST_EMBEDDED", "0") == "1"


def database_url(base, dbname):
    """The libpq URI or conninfo base, pointed at database dbname instead."""
    if re.match(r"^postgres(ql)?://", base):
        parts = urllib.parse.urlsplit(base)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                 if k != "dbname"]
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + dbname,
                                        urllib.parse.urlencode(query), ""))
    # A conninfo string: the last occurrence of a keyword wins.
    return "%s dbname='%s'" % (base, dbname)


def sql_literal(value):
    """value as an SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    if value is None:
        return "NULL"
    value = str(value)
    if "\0" in value:
        raise ValueError("NUL cannot appear in an SQL literal")
    return "'" + value.replace("'", "''") + "'"


def psql(url, sql, timeout=30):
    """Runs sql with psql -X -qAt and returns its stdout without the final newline."""
    env = dict(os.environ)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()
    env["PGCLIENTENCODING"] = "UTF8"
    proc = subprocess.run(
        ["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("psql failed (%d) on %r:\n%s" % (
            proc.returncode, sql, proc.stderr.decode("utf-8", "replace")))
    return proc.stdout.decode("utf-8").rstrip("\n")


def run_bin(args, env_extra=None, timeout=60):
    """Runs bin/payments args; returns the CompletedProcess (stdout/stderr as text)."""
    if not os.access(BIN, os.X_OK):
        raise HarnessError("%s is missing: run make first" % BIN)
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout, cwd=ROOT, text=True)


def poll(condition, timeout=POLL_TIMEOUT, interval=0.05, message="condition"):
    """Calls condition() until it returns a true value, which it returns; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (
                timeout, message, last))
        time.sleep(interval)


def key_taken_sql(user, key):
    """SQL that takes user's Idempotency-Key key, as the first request with it does (for open_transaction)."""
    return ("INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,"
            " expires_at) VALUES (%s, %s, decode(repeat('00', 32), 'hex'), 201, '{}',"
            " now() + interval '1 day')" % (sql_literal(user), sql_literal(key)))


@contextlib.contextmanager
def open_transaction(db, sql):
    """
    Runs sql in a transaction of another session (psql) that stays open
    while the with block runs, and ends it afterwards: what a slow request
    holding a key or a row looks like to the API. The block starts once the
    session holds what sql took.
    """
    marker = "it_open_tx_" + secrets.token_hex(8)
    proc = subprocess.Popen(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", db.url, "-c",
                             "BEGIN; %s; SELECT pg_sleep(30) AS %s; ROLLBACK;" % (sql, marker)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    where = "query LIKE %s AND pid <> pg_backend_pid()" % sql_literal("%" + marker + "%")
    try:
        poll(lambda: db.query("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND " + where),
             message="the open transaction to start")
        yield
    finally:
        db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE " + where)
        proc.wait(timeout=10)


def url_as(url, user, password):
    """url (a libpq URI or conninfo) logging in as user with password instead."""
    if re.match(r"^postgres(ql)?://", url):
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = "%s:%s@%s" % (urllib.parse.quote(user, safe=""),
                               urllib.parse.quote(password, safe=""), host)
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return "%s user='%s' password='%s'" % (url, user, password)


class Database:
    """
    A fresh database with every migration applied, dropped by drop().

    url is the owner's (migrations, 'payments keys', and the tests' own
    queries); app_url logs in as a role of its own that is only a member of
    payments_app, created the way the README tells a DBA to, and is what
    every server and relay of the tests connects with.
    """

    def __init__(self, module):
        short = re.sub(r"[^a-z0-9_]", "_", module.rsplit(".", 1)[-1].lower())
        short = re.sub(r"^test_", "", short)
        self.name = "payments_it_%s_%d" % (short, os.getpid())
        self.admin = admin_url()
        self.url = database_url(self.admin, self.name)
        self.app_role = "payments_it_app_%s_%d" % (short[:30], os.getpid())
        self.app_password = secrets.token_hex(16)

    @property
    def app_url(self):
        return url_as(self.url, self.app_role, self.app_password)

    def create(self):
        psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        psql(self.admin, 'CREATE DATABASE "%s"' % self.name)
        proc = run_bin(["migrate", "up"], {"DATABASE_URL": self.url})
        if proc.returncode != 0:
            raise HarnessError("payments migrate up failed (%d):\n%s%s" % (
                proc.returncode, proc.stdout, proc.stderr))
        psql(self.admin, 'DROP ROLE IF EXISTS "%s"' % self.app_role)
        psql(self.admin, 'CREATE ROLE "%s" LOGIN PASSWORD %s IN ROLE payments_app'
             % (self.app_role, sql_literal(self.app_password)))

    def drop(self):
        psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        psql(self.admin, 'DROP ROLE IF EXISTS "%s"' % self.app_role)

    def query(self, sql):
        return psql(self.url, sql)

    def count(self, table, where="true"):
        return int(self.query("SELECT count(*) FROM %s WHERE %s" % (table, where)))

    def create_key(self, user):
        """Creates an API key for user with 'payments keys create' and returns it."""
        proc = run_bin(["keys", "create", "--user", user], {"DATABASE_URL": self.url})
        if proc.returncode != 0:
            raise AssertionError("keys create failed (%d): %s" % (proc.returncode, proc.stderr))
        key = proc.stdout.strip()
        if not re.match(r"^sk_test_[0-9A-Za-z]{44}$", key):
            raise AssertionError("keys create printed %r, not a key" % proc.stdout)
        return key

    def revoke_key(self, key):
        """Revokes key by its public id (sk_test_ and 12 characters), as an operator does."""
        proc = run_bin(["keys", "revoke", key[:len("sk_test_") + 12]], {"DATABASE_URL": self.url})
        if proc.returncode != 0:
            raise AssertionError("keys revoke failed (%d): %s" % (proc.returncode, proc.stderr))


_databases = {}


def setup_module(module):
    """setUpModule: creates and migrates the module's database."""
    db = Database(module)
    db.create()
    _databases[module] = db
    return db


def teardown_module(module):
    """tearDownModule: drops the module's database."""
    db = _databases.pop(module, None)
    if db is not None:
        db.drop()


def module_database(module):
    try:
        return _databases[module]
    except KeyError:
        raise HarnessError("module %s did not call harness.setup_module" % module) from None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response(tuple):
    """(status, headers, body): headers is an http.client.HTTPMessage, body raw bytes."""

    def __new__(cls, status, headers, body):
        return super().__new__(cls, (status, headers, body))

    status = property(lambda self: self[0])
    headers = property(lambda self: self[1])
    body = property(lambda self: self[2])

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<Response %d %s %r>" % (self.status, dict(self.headers.items()), self.body[:500])


class Server:
    """One 'payments serve' process on a free port, its stderr captured to a file."""

    def __init__(self, database_url, env=None, prefix=None):
        self.database_url = database_url
        self.env = dict(env or {})
        self.prefix = list(prefix or [])   # a command the server runs under, e.g. unshare
        self.proc = None
        self.port = None
        fd, self.log_path = tempfile.mkstemp(prefix="payments-it-", suffix=".stderr")
        os.close(fd)

    def start(self):
        last_error = None
        for _ in range(5):   # a free port can be taken between probing and binding
            self.port = free_port()
            env = dict(os.environ)
            env.update(SERVER_DEFAULT_ENV)
            env.update({"DATABASE_URL": self.database_url})
            env.update(self.env)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.prefix + [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=ROOT)
            try:
                self._wait_healthy()
                return self
            except AssertionError as e:
                last_error = e
                self.stop()
        raise HarnessError("payments serve did not become healthy: %s\n%s" % (
            last_error, self.log()))

    def _wait_healthy(self):
        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError("payments serve exited with %d" % self.proc.returncode)
            try:
                return self.request("GET", "/healthz", timeout=1).status == 200
            except OSError:
                return False
        poll(healthy, timeout=10, message="GET /healthz")

    def stop(self, wait=True):
        """
        Stops the server with SIGTERM. With wait=False it drains in the
        background (its graceful shutdown takes a while) and is reaped by
        reap_servers(), at the latest when the test process exits.
        """
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        if wait:
            _reap(proc)
        else:
            _draining.append(proc)

    def remove_log(self):
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def log(self):
        """Everything the server wrote to stderr so far, as text."""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        return [line for line in self.log().split("\n") if line]

    def request(self, method, path, body=None, headers=None, timeout=10):
        """
        Sends one request on a new connection. body may be bytes, str or a
        JSON-able object (then serialised compactly). Returns a Response.
        """
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                if value is not None:
                    conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.headers, data)
        finally:
            conn.close()

    def raw(self, data, timeout=10):
        """Sends raw bytes on a new connection and returns everything read until EOF or timeout."""
        chunks = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            try:
                s.sendall(data)
            except OSError:
                pass   # the server may answer and close before reading everything
            s.settimeout(timeout)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if _complete_response(b"".join(chunks)):
                        break
            except (ConnectionResetError, socket.timeout):
                pass
        return parse_raw_response(b"".join(chunks))


def read_responses(sock, count, timeout=10):
    """Reads count pipelined responses (each with Content-Length) from sock; returns Responses."""
    sock.settimeout(timeout)
    data = b""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        while _complete_response(data):
            head, _, rest = data.partition(b"\r\n\r\n")
            n = int(re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head).group(1))
            out.append(parse_raw_response(data[:len(head) + 4 + n]))
            data = rest[n:]
        if len(out) >= count:
            break
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return out


_draining = []


def _reap(proc, timeout=15):
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def reap_servers():
    """Waits for every server stopped with wait=False (killing any that hangs)."""
    while _draining:
        _reap(_draining.pop())


atexit.register(reap_servers)


def _complete_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return m is not None and len(body) >= int(m.group(1))


def parse_raw_response(data):
    """Parses one HTTP/1.1 response from bytes into a Response (headers as an HTTPMessage)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete HTTP response in %r" % data[:300])
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    msg = http.client.parse_headers(_BytesLines(b"\r\n".join(lines[1:]) + b"\r\n\r\n"))
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if m is not None:
        body = body[:int(m.group(1))]
    return Response(status, msg, body)


class _BytesLines:
    """The readline() interface http.client.parse_headers needs, over bytes."""

    def __init__(self, data):
        self.lines = data.splitlines(keepends=True)

    def readline(self, limit=-1):
        return self.lines.pop(0) if self.lines else b""


def new_key():
    """A fresh Idempotency-Key."""
    return "it-" + secrets.token_hex(12)


def new_user(prefix="user"):
    return "%s_%s" % (prefix, secrets.token_hex(6))


def charge_body(**overrides):
    body = {"amount": 2000, "currency": "usd", "source": "tok_visa",
            "description": "Integration test", "metadata": {"order_id": "6735"}}
    for k, v in overrides.items():
        if v is _DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


_DROP = object()
DROP = _DROP   # charge_body(amount=DROP) leaves amount out


class ServiceTestCase(unittest.TestCase):
    """
    A test class with its own server (started with server_env) on the
    module's database, and helpers that assert the API's contracts.
    """

    server_env = {}
    server_prefix = None   # a command the server runs under (Server's prefix)
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = module_database(cls.__module__)
        cls.server = Server(cls.db.app_url, cls.server_env, cls.server_prefix)
        try:
            cls.server.start()
        except Exception:
            cls.server.remove_log()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.stop(wait=False)
        if os.environ.get("PAYMENTS_TEST_KEEP_LOGS") != "1":
            cls.server.remove_log()
        super().tearDownClass()

    # --- users and requests ---

    def make_user(self, prefix="user"):
        """Creates a user name and an API key for it; returns (user, key)."""
        user = new_user(prefix)
        return user, self.db.create_key(user)

    def post_charge(self, key, body, idem=None, path="/v1/charges", headers=None,
                    content_type="application/json", timeout=10):
        h = {"Content-Type": content_type}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if idem is not None:
            h["Idempotency-Key"] = idem
        h.update(headers or {})
        return self.server.request("POST", path, body, h, timeout=timeout)

    def get(self, path, key=None, headers=None):
        h = {}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        h.update(headers or {})
        return self.server.request("GET", path, None, h)

    # --- assertions ---

    def assert_request_id(self, resp):
        rid = resp.header("X-Request-Id")
        self.assertIsNotNone(rid, "response has no X-Request-Id: %r" % (resp,))
        self.assertTrue(rid, "X-Request-Id is empty")
        return rid

    def assert_json_response(self, resp, status):
        self.assertEqual(resp.status, status, "unexpected status: %r" % (resp,))
        ctype = resp.header("Content-Type") or ""
        self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json",
                         "Content-Type of %r" % (resp,))
        self.assert_request_id(resp)
        try:
            return resp.json()
        except ValueError as e:
            self.fail("body is not JSON (%s): %r" % (e, resp.body[:500]))

    def assert_error(self, resp, status, code, type_=None, param=Ellipsis):
        """
        Asserts a Stripe-shaped error: status, JSON Content-Type, X-Request-Id
        and {"error":{"type","code","message","param"}}. param=Ellipsis skips
        checking the param. Returns the error object.
        """
        body = self.assert_json_response(resp, status)
        self.assertIsInstance(body, dict)
        self.assertEqual(list(body.keys()), ["error"], "error body %r" % body)
        err = body["error"]
        self.assertIsInstance(err, dict)
        self.assertEqual(err.get("code"), code, "error code in %r" % body)
        self.assertIsInstance(err.get("type"), str)
        if type_ is not None:
            self.assertEqual(err["type"], type_, "error type in %r" % body)
        self.assertIsInstance(err.get("message"), str)
        self.assertTrue(err["message"].strip(), "empty error message")
        self.assertIn("param", err, "error object has no param member: %r" % body)
        if param is not Ellipsis:
            self.assertEqual(err["param"], param, "error param in %r" % body)
        return err

    def assert_charge_object(self, obj, body, status="succeeded"):
        """Asserts that obj is the charge object of the request body."""
        self.assertEqual(list(obj.keys()), CHARGE_FIELDS, "charge fields in %r" % obj)
        self.assertRegex(obj["id"], CHARGE_ID_RE)
        self.assertEqual(obj["object"], "charge")
        self.assertEqual(obj["amount"], body["amount"])
        self.assertIsInstance(obj["amount"], int)
        self.assertEqual(obj["currency"], body["currency"])
        self.assertEqual(obj["status"], status)
        self.assertEqual(obj["source"], body["source"])
        self.assertEqual(obj["description"], body.get("description"))
        self.assertEqual(obj["metadata"], body.get("metadata") or {})
        self.assertEqual(obj["amount_refunded"], 0)
        self.assertIs(obj["refunded"], False)
        captured = status == "succeeded" and body.get("capture", True) not in (False, "false")
        self.assertIs(obj["captured"], captured)
        self.assertEqual(obj["amount_captured"], body["amount"] if captured else 0)
        self.assertIsNone(obj["released_at"])
        self.assertIsNone(obj["release_reason"])
        self.assertIsInstance(obj["created"], int)
        self.assertLess(abs(obj["created"] - time.time()), 300, "created is not now")

    def counts(self, user):
        """(charges, idempotency_keys, outbox_events) rows of user."""
        row = self.db.query(
            "SELECT (SELECT count(*) FROM charges WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM idempotency_keys WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM outbox_events WHERE user_id = %(u)s)"
            % {"u": sql_literal(user)})
        return tuple(int(x) for x in row.split("|"))

    def key_rows(self, user, idem):
        """(charges, idempotency_keys, outbox_events) rows stored under user's key idem."""
        return self.key_rows_and_counts(user, idem)[0]

    def key_rows_and_counts(self, user, idem):
        """key_rows(user, idem) and counts(user) in one round trip."""
        row = self.db.query(
            "SELECT (SELECT count(*) FROM charges WHERE user_id = %(u)s AND idempotency_key = %(k)s),"
            " (SELECT count(*) FROM idempotency_keys WHERE user_id = %(u)s AND key = %(k)s),"
            " (SELECT count(*) FROM outbox_events WHERE user_id = %(u)s AND idempotency_key = %(k)s),"
            " (SELECT count(*) FROM charges WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM idempotency_keys WHERE user_id = %(u)s),"
            " (SELECT count(*) FROM outbox_events WHERE user_id = %(u)s)"
            % {"u": sql_literal(user), "k": sql_literal(idem)})
        n = tuple(int(x) for x in row.split("|"))
        return n[:3], n[3:]


def run_concurrently(n, fn, timeout=60):
    """
    Runs fn(i) on n threads released together by a barrier. Returns the
    list of results (an exception object where fn raised). Fails when a
    thread has not finished within timeout seconds.
    """
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        try:
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except BaseException as e:   # reported to the test, never lost
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(1 for t in threads if t.is_alive())
    if hung:
        raise AssertionError("%d of %d concurrent requests did not finish within %ds" % (
            hung, n, timeout))
    return results
