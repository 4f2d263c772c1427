"""test_hostile.py - hostile requests against the real server, and the security checks of issue 6.

HostileInputTest sends what an attacker or a broken client sends: truncated
and oversized bodies, invalid UTF-8, deep nesting, huge numbers, odd amounts,
duplicate keys, NUL bytes, very long headers and URLs, slow-loris clients and
idle connections. Each gets the right 4xx with a Stripe-shaped JSON error (or,
for slow and idle clients, the connection is dropped), nothing is stored, and
the server keeps serving everyone else.

IsolationTest checks what one user can learn about or do to another's
objects (nothing: 404 for every method), that ids cannot be guessed, that
fields the server owns are refused, that a revoked key stops at once, and
that no key, token or webhook secret reaches the logs.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# Importable as tests/integration/test_hostile.py from the top of the repo, not only through run.py.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BODY_LIMIT = 64 * 1024
REQUEST_TIMEOUT_S = 1.0
SLOW_CLIENTS = 12   # slow-loris clients at once; the idle tests open many more connections


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def exchange(port, data, timeout=10, shut=False):
    """
    Sends raw bytes on a new connection (then half-closes it when shut) and
    returns (everything read until EOF or timeout, seconds until then,
    whether the server closed the connection).
    """
    chunks = []
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        start = time.monotonic()
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass   # the server may answer and close before reading everything
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
        return b"".join(chunks), time.monotonic() - start, closed


class HostileTestCase(h.ServiceTestCase):
    """A server with a 1 s request timeout and no rate limit, one user, and helpers for raw requests."""

    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_REQUEST_TIMEOUT": "1s"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = h.new_user("hostile")
        cls.key = cls.db.create_key(cls.user)

    def setUp(self):
        self.stores = False    # a test that creates objects on purpose sets this
        self.before = self.stored()

    def tearDown(self):
        self.assertIsNone(self.server.proc.poll(), "the server died (exit status %r):\n%s" % (
            self.server.proc.returncode, self.server.log()[-3000:]))
        if not self.stores:
            time.sleep(0.1)   # a request cut off by the client may still be running
            self.assertEqual(self.stored(), self.before, "refused requests stored rows")

    # --- helpers ---

    def head(self, idem=None, path="/v1/charges"):
        """The head of a charge POST, up to (not including) the framing headers."""
        return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                b"Content-Type: application/json\r\nIdempotency-Key: %s\r\nConnection: close\r\n"
                % (path.encode(), self.key.encode(), (idem or h.new_key()).encode()))

    def post_bytes(self, body, path="/v1/charges", idem=None):
        """POSTs body (bytes) with a correct Content-Length and returns the Response."""
        return self.server.raw(self.head(idem, path) + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def stored(self):
        """(charges, idempotency keys) rows of this class's user."""
        return self.counts(self.user)[:2]

    def assert_refused(self, body, status, code, path="/v1/charges", param=Ellipsis):
        """POSTs body and asserts the error (tearDown checks that nothing was stored)."""
        resp = self.post_bytes(body, path)
        with self.subTest(body=body[:120], want=code):
            self.assert_error(resp, status, code, param=param)
        return resp

    def assert_error_in(self, resp, statuses, codes=None):
        """Asserts a Stripe-shaped JSON error with one of statuses (and of codes); returns the error."""
        self.assertIn(resp.status, statuses, resp)
        code = (self.assert_json_response(resp, resp.status).get("error") or {}).get("code")
        if codes is not None:
            self.assertIn(code, codes, resp)
        return self.assert_error(resp, resp.status, code)

    def assert_healthy_quickly(self, limit):
        """A normal authenticated request is answered 200 within limit seconds; returns the seconds."""
        start = time.monotonic()
        resp = None
        try:
            resp = self.server.request("GET", "/v1/charges?limit=1", None,
                                       {"Authorization": "Bearer " + self.key}, timeout=limit + 2)
        except socket.timeout:
            pass
        took = time.monotonic() - start
        self.assertIsNotNone(resp, "a normal request got no answer within %.1fs" % took)
        self.assertEqual(resp.status, 200, resp)
        self.assertLess(took, limit, "a normal request took %.2fs" % took)
        return took

    def charge(self, **overrides):
        resp = self.post_charge(self.key, h.charge_body(**overrides), idem=h.new_key())
        return self.assert_json_response(resp, 201)



class HostileInputTest(HostileTestCase):
    """Malformed bodies, heads and URLs on one server, which must survive them all."""

    # --- bodies ---

    def test_truncated_body_is_refused(self):
        """A body shorter than its Content-Length (then a half-close, a stall or a close) answers 400 or is dropped, and stores nothing"""
        body = b'{"amount":2000,"currency":"usd","source":"tok_visa"}'
        framing = b"Content-Length: %d\r\n\r\n" % (len(body) + 50)
        # Half-closed: the server sees the end of the stream at once.
        data, _, _ = exchange(self.server.port, self.head() + framing + body, shut=True)
        self.assert_error(h.parse_raw_response(data), 400, "body_unreadable")
        # Stalled: the server gives up after its request timeout.
        data, took, closed = exchange(self.server.port, self.head() + framing + body, timeout=8)
        if data:
            self.assert_error(h.parse_raw_response(data), 400, "body_unreadable")
        else:
            self.assertTrue(closed, "the server neither answered nor dropped a stalled body")
        self.assertLess(took, 5 * REQUEST_TIMEOUT_S + 2, "a stalled body held the connection %.1fs" % took)
        # Closed outright: nobody to answer, and nothing may be stored.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
            s.sendall(self.head() + framing + body[:20])
        # A chunked body cut inside a chunk.
        chunked = self.head() + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (len(body) + 50) + body
        data, _, _ = exchange(self.server.port, chunked, shut=True)
        self.assert_error_in(h.parse_raw_response(data), (400,), ("body_unreadable", "invalid_json"))
        time.sleep(0.2)   # tearDown checks that nothing was stored

    def test_oversized_body_is_413(self):
        """A body over 64 KiB answers 413 body_too_large: by Content-Length, chunked, or a huge chunk size"""
        idem = h.new_key()
        resp = self.server.raw(self.head(idem) + b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1))
        self.assert_error(resp, 413, "body_too_large")
        resp = self.server.raw(self.head(idem) + b"Content-Length: 99999999999999\r\n\r\n")
        self.assert_error_in(resp, (400, 413))
        payload = b'{"amount":2000,"currency":"usd","source":"tok_visa","description":"' + \
            b"x" * BODY_LIMIT + b'"}'
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 8192]), payload[i:i + 8192])
                          for i in range(0, len(payload), 8192))
        resp = self.server.raw(self.head(idem) + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        self.assert_error(resp, 413, "body_too_large")
        data, _, _ = exchange(self.server.port, self.head(idem) + b"Transfer-Encoding: chunked\r\n\r\n"
                              b"ffffffffffff\r\n" + b"[" * 70000, shut=True)
        resp = h.parse_raw_response(data)
        self.assert_error_in(resp, (400, 413))
        self.assertEqual(self.db.count("idempotency_keys", "key = %s" % h.sql_literal(idem)), 0)

    def test_invalid_utf8_is_refused(self):
        """Invalid UTF-8 in a JSON string or key (stray bytes, overlong forms, surrogates, a cut sequence) answers 400 invalid_json"""
        for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"caf\xc3", b"\x80abc",
                    b"\\ud800", b"\\udc00x", b"\xf8\x88\x80\x80\x80"):
            self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","description":"'
                                + bad + b'"}', 400, "invalid_json")
            self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","metadata":{"'
                                + bad + b'":"v"}}', 400, "invalid_json")

    def test_errors_that_quote_non_ascii_input_are_4xx_not_500(self):
        """An error message that quotes the client's non-ASCII text is still the 4xx, not a 500 (bodies from the fuzzers)"""
        e = "\u00e9"
        cases = [
            # jansson's error text quotes the token read so far: half of the "é".
            (b'{"description":"\\' + e.encode() + b'"}', 400, "invalid_json", None),
            # The param keeps 127 bytes of the key, the message 100: both cut an "é".
            (('{"%s":1}' % (e * 80)).encode(), 400, "parameter_unknown", Ellipsis),
            (('{"a%s":1}' % (e * 60)).encode(), 400, "parameter_unknown", Ellipsis),
            # "No such token: '%.64s'" and, for refunds, "No such charge: '%.40s'".
            (('{"amount":2000,"currency":"usd","source":"a%s"}' % (e * 40)).encode(), 400,
             "invalid_source", "source"),
        ]
        for body, status, code, param in cases:
            self.assert_refused(body, status, code, param=param)
        self.assert_refused(('{"charge":"a%s"}' % (e * 30)).encode(), 404, "resource_missing",
                            path="/v1/refunds", param="charge")

    def test_huge_numbers_are_refused(self):
        """1e400 and 100000000000000000000 answer 400 invalid_json; 64-bit extremes and 99999999+1 are out of range"""
        def body(amount):
            return b'{"amount":%s,"currency":"usd","source":"tok_visa"}' % amount
        self.assert_refused(body(b"1e400"), 400, "invalid_json")
        self.assert_refused(body(b"-1e400"), 400, "invalid_json")
        self.assert_refused(body(b"100000000000000000000"), 400, "invalid_json")
        self.assert_refused(body(b"9223372036854775808"), 400, "invalid_json")
        self.assert_refused(body(b"9223372036854775807"), 400, "amount_too_large", param="amount")
        self.assert_refused(body(b"-9223372036854775808"), 400, "amount_too_small", param="amount")
        self.assert_refused(body(b"100000000"), 400, "amount_too_large", param="amount")
        self.assert_refused(body(b"1" + b"0" * 5000), 400, "invalid_json")
        self.assert_refused(body(b"0." + b"0" * 5000 + b"1"), 400, "parameter_invalid_type", param="amount")

    def test_negative_and_float_amounts_are_refused(self):
        """Negative, zero and non-integer amounts answer 400 for charges and refunds"""
        def body(amount):
            return b'{"amount":%s,"currency":"usd","source":"tok_visa"}' % amount
        for amount in (b"-1", b"0", b"-0"):
            self.assert_refused(body(amount), 400, "amount_too_small", param="amount")
        for amount in (b"20.5", b"2000.0", b"1e3", b"-0.0", b'"2000"', b"true", b"[2000]", b"{}"):
            self.assert_refused(body(amount), 400, "parameter_invalid_type", param="amount")
        self.assert_refused(body(b"null"), 400, "parameter_missing", param="amount")
        charge = "ch_" + "A" * 24
        for amount, code in ((b"-1", "amount_too_small"), (b"0", "amount_too_small"),
                             (b"1.5", "parameter_invalid_type"), (b"1e2", "parameter_invalid_type")):
            self.assert_refused(b'{"charge":"%s","amount":%s}' % (charge.encode(), amount), 400, code,
                                path="/v1/refunds", param="amount")

    def test_duplicate_keys_are_refused(self):
        """Duplicate JSON keys, at the top or inside metadata, answer 400 invalid_json"""
        self.assert_refused(b'{"amount":2000,"amount":1,"currency":"usd","source":"tok_visa"}', 400, "invalid_json")
        self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","source":"tok_chargeDeclined"}',
                            400, "invalid_json")
        self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","metadata":{"a":"1","a":"2"}}',
                            400, "invalid_json")
        self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","amoun\\u0074":5}', 400,
                            "invalid_json")

    def test_nul_bytes_are_refused(self):
        """NUL in a JSON string or key (escaped or raw), in a header or in the path answers 4xx"""
        base = b'{"amount":2000,"currency":"usd","source":"tok_visa",'
        self.assert_refused(base + b'"description":"a\\u0000b"}', 400, "invalid_json")
        self.assert_refused(base + b'"description":"a\x00b"}', 400, "invalid_json")
        self.assert_refused(base + b'"metadata":{"k\\u0000":"v"}}', 400, "invalid_json")
        self.assert_refused(base + b'"metadata":{"k":"\\u0000"}}', 400, "invalid_json")
        self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa\\u0000junk"}', 400, "invalid_json")
        self.assert_refused(b"\x00" + base + b'"description":"x"}', 400, "invalid_json")
        resp = self.server.raw(b"GET /v1/charges HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                               + self.key.encode() + b"\x00junk\r\nConnection: close\r\n\r\n")
        self.assert_error_in(resp, range(400, 500))
        resp = self.get("/v1/charges/ch_" + "A" * 12 + "%00" + "A" * 11, self.key)
        self.assert_error(resp, 404, "resource_missing")

    # --- heads ---

    def test_very_long_header_is_refused(self):
        """A 100 KB header, or 20 KB headers that add up, answer 4xx with a JSON error"""
        for head in (b"X-Padding: " + b"a" * 100000 + b"\r\n",
                     b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 1000) for i in range(20)),
                     b"Authorization: Bearer " + b"k" * 100000 + b"\r\n",
                     b"Idempotency-Key: " + b"i" * 50000 + b"\r\n"):
            data, _, _ = exchange(self.server.port, b"GET /v1/charges HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head
                                  + b"Connection: close\r\n\r\n")
            resp = h.parse_raw_response(data)
            with self.subTest(head=head[:40]):
                self.assert_error_in(resp, (400, 413, 431))
        self.assert_healthy_quickly(1.0)

    def test_a_thousand_headers_are_refused(self):
        """A request with 1000 headers answers 4xx with a JSON error (431 or 400), not 200"""
        head = b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
        # Connection: close comes last, where it may be ignored too: do not wait for a close.
        data, _, _ = exchange(self.server.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head
                              + b"Connection: close\r\n\r\n", timeout=2)
        resp = h.parse_raw_response(data)
        self.assert_error_in(resp, (400, 413, 431))

    def test_headers_past_the_parsers_limit_are_not_dropped_silently(self):
        """Headers after the 64th are not ignored: a Content-Length among them must not turn the body into a second request"""
        smuggled = b"GET /v1/smuggled-%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % h.new_key().encode()
        head = b"".join(b"X-H%d: v\r\n" % i for i in range(70))
        data, _, _ = exchange(self.server.port, b"POST /v1/charges HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head
                              + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
                              + smuggled, timeout=2)
        statuses = re.findall(rb"HTTP/1\.[01] (\d{3})", data)
        path = smuggled.split(b" ")[1].decode()
        self.assertFalse([line for line in self.server.log_lines() if path in line],
                         "the body was served as a request of its own (request smuggling); answers: %r" % statuses)
        self.assertEqual(len(statuses), 1, "one request got %d answers: %r" % (len(statuses), statuses))
        self.assertTrue(400 <= int(statuses[0]) < 500, statuses)

    def smuggle(self, framing, body):
        """
        Sends a charge POST with the given framing headers and body, followed
        at once by a GET. Returns (statuses answered, whether the GET was served).
        """
        path = "/v1/smuggled-%s" % h.new_key()
        smuggled = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode()
        head = self.head().replace(b"Connection: close\r\n", b"")
        data, _, _ = exchange(self.server.port, head + framing + b"\r\n" + body + smuggled, timeout=1)
        time.sleep(0.1)
        served = any(path in line for line in self.server.log_lines())
        return [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3})", data)], served

    def test_conflicting_framing_is_refused(self):
        """Content-Length with Transfer-Encoding, two Content-Lengths or a signed one answer one 400 and close: what follows is never served as a request"""
        self.stores = True   # today some of these create a charge; the statuses below tell
        body = b'{"amount":2000,"currency":"usd","source":"tok_visa"}'
        cases = {
            # RFC 9112 6.1: with both, the server may go by Transfer-Encoding but must close
            # the connection after answering. A proxy that goes by Content-Length sees the
            # GET as part of this body: here it must not become a request of its own.
            "chunked and Content-Length": (b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                                           b"0\r\n\r\n", (400, 201)),
            # RFC 9112 6.3: differing Content-Lengths are an unrecoverable error (400, close).
            "two Content-Lengths": (b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body) + 40),
                                    body, (400,)),
            # Content-Length is 1*DIGIT: "+52" is no length (400, close).
            "a signed Content-Length": (b"Content-Length: +%d\r\n" % len(body), body, (400,)),
        }
        for name, (framing, payload, allowed) in cases.items():
            statuses, served = self.smuggle(framing, payload)
            with self.subTest(name):
                self.assertFalse(served, "%s: what followed the body was served as a request; answers %r"
                                 % (name, statuses))
                self.assertEqual(len(statuses), 1, "%s: answers %r" % (name, statuses))
                self.assertIn(statuses[0], allowed, "%s: answers %r" % (name, statuses))

    @staticmethod
    def read_reply(f):
        """Reads one reply from a socket file: (status, {lower-case header: value}, body)."""
        status = int(f.readline().split()[1])
        headers = {}
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, f.read(int(headers["content-length"]))

    def test_replies_say_whether_the_connection_stays_open(self):
        """Replies on an HTTP/1.1 connection say keep-alive and the next request is served on it; Connection: close and HTTP/1.0 say close and the server closes"""
        get = (b"GET /v1/charges?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               % self.key.encode())
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            f = s.makefile("rb")
            for _ in range(3):
                s.sendall(get + b"\r\n")
                status, headers, body = self.read_reply(f)
                self.assertEqual(status, 200, body)
                self.assertEqual(headers.get("connection"), "keep-alive", headers)
                self.assertRegex(headers.get("date", ""), r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} "
                                                          r"\d{2}:\d{2}:\d{2} GMT$")
                self.assertEqual(headers.get("content-type"), "application/json")
                self.assertTrue(headers.get("x-request-id", "").startswith("req_"), headers)
                self.assertEqual(body[:1] + body[-1:], b"{}", body)
        closing = {
            "Connection: close": get + b"Connection: close\r\n\r\n",
            "HTTP/1.0": get.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n",
        }
        for case, request in closing.items():
            with self.subTest(case=case):
                data, _, closed = exchange(self.server.port, request, timeout=5)
                self.assertTrue(closed, "the server kept the connection open: %r" % data[:300])
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertIn(b"\r\nConnection: close", head)
                length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
                self.assertEqual(len(body), length, data)

    def test_very_long_url_is_refused(self):
        """A 100 KB URL answers 4xx with a JSON error; a 10 KB id or query answers 404 or 400"""
        data, _, _ = exchange(self.server.port, b"GET /v1/charges/" + b"a" * 100000
                              + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        resp = h.parse_raw_response(data)
        self.assert_error_in(resp, (400, 413, 414, 431))
        self.assert_error(self.get("/v1/charges/ch_" + "a" * 10000, self.key), 404, "resource_missing")
        self.assert_error(self.get("/v1/charges?limit=" + "9" * 10000, self.key), 400, "parameter_invalid",
                          param="limit")
        self.assert_error(self.get("/v1/charges?starting_after=ch_" + "%41" * 3000, self.key), 400,
                          "parameter_invalid", param="starting_after")

    def test_zz_still_serves_a_normal_charge(self):
        """After all of the above the process is alive and a normal charge succeeds"""
        self.assertIsNone(self.server.proc.poll())
        self.stores = True
        obj = self.charge()
        self.assert_charge_object(obj, h.charge_body())
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.assertNotIn("AddressSanitizer", self.server.log())
        self.assertNotIn("runtime error", self.server.log())


class NestingTest(HostileTestCase):
    """Deep nesting has a server of its own: a crash here must not hide the other results."""

    def test_deeply_nested_json_is_refused(self):
        """Deep nesting answers 413 over 64 KiB (100000 '[') and 400 under it (1000, 5000, 60000 levels), and the server lives"""
        self.assert_refused(b"[" * 100000, 413, "body_too_large")
        # A crash here is a stack overflow: parsing recurses once per level on a worker thread.
        for depth in (1000, 5000, 60000):
            self.assert_refused(b"[" * depth, 400, "invalid_json")
        for depth in (1000, 5000, 12000):
            self.assert_refused(b'{"a":' * depth, 400, "invalid_json")
        self.assert_refused(b"[" * 1000 + b"]" * 1000, 400, "invalid_json")
        self.assert_refused(b'{"description":' + b"[" * 1500 + b"]" * 1500 + b"}", 400, "invalid_json")
        # Shallow nesting that parses is refused by the rules: metadata values are strings.
        self.assert_refused(b'{"amount":2000,"currency":"usd","source":"tok_visa","metadata":{"a":'
                            + b"[" * 30 + b"]" * 30 + b"}}", 400, "invalid_metadata")

    def test_zz_still_serves_a_normal_charge(self):
        """After deep nesting the process is alive and a normal charge succeeds"""
        self.assertIsNone(self.server.proc.poll())
        self.stores = True
        obj = self.charge()
        self.assert_charge_object(obj, h.charge_body())
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.assertNotIn("AddressSanitizer", self.server.log())
        self.assertNotIn("runtime error", self.server.log())



class SlowClientTest(HostileTestCase):
    """Slow and idle clients (the request timeout is 1 s); a server of its own, since they leave it busy."""

    # --- slow and idle clients ---

    def test_slow_loris_clients_are_dropped_while_others_are_served(self):
        """12 clients sending their headers one byte per 100 ms are dropped after the 1 s request timeout; meanwhile normal requests are answered at once"""
        n = SLOW_CLIENTS
        results = [None] * n
        stop = threading.Event()

        def slow(i):
            start = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                    for b in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 100:
                        if stop.is_set():
                            break
                        s.sendall(bytes([b]))
                        time.sleep(0.1)
                    results[i] = ("not dropped", time.monotonic() - start)
            except OSError:
                results[i] = ("dropped", time.monotonic() - start)

        threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        took = []
        try:
            time.sleep(0.3)
            for _ in range(5):
                took.append(self.assert_healthy_quickly(1.0))
                time.sleep(0.15)
        finally:
            for t in threads:
                t.join(REQUEST_TIMEOUT_S * 5 + 5)
            stop.set()
        for outcome, seconds in results:
            self.assertEqual(outcome, "dropped", results)
            self.assertLess(seconds, REQUEST_TIMEOUT_S * 3 + 1, "a slow client was held %.1fs" % seconds)
        self.assertLess(max(took), 1.0)

    def test_many_idle_connections_do_not_starve_others(self):
        """200 connections that send nothing do not keep normal requests waiting (each answered within 2 s)"""
        idle = []
        try:
            for _ in range(200):
                idle.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=5))
            time.sleep(0.2)
            self.assert_healthy_quickly(2.0)
            self.assert_healthy_quickly(2.0)
        finally:
            for s in idle:
                s.close()
        # Once they are gone, the server is back to normal.
        h.poll(lambda: self.server.request("GET", "/healthz", timeout=20).status == 200, timeout=30,
               message="the server to answer after the idle connections closed")
        self.assert_healthy_quickly(1.0)

    def test_idle_keep_alive_connections_do_not_starve_others(self):
        """40 keep-alive connections that each made one request and then sit idle do not keep the next clients waiting"""
        idle = []
        try:
            for i in range(40):
                s = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                idle.append(s)
                start = time.monotonic()
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answered = h.read_responses(s, 1, timeout=2)
                self.assertEqual(len(answered), 1, "client %d got no answer within %.1fs while %d idle keep-alive"
                                 " connections were open" % (i + 1, time.monotonic() - start, i))
            self.assert_healthy_quickly(1.0)
        finally:
            for s in idle:
                s.close()

    def test_zz_still_serves_a_normal_charge(self):
        """After slow and idle clients the process is alive and a normal charge succeeds"""
        self.assertIsNone(self.server.proc.poll())
        self.stores = True
        obj = self.charge()
        self.assert_charge_object(obj, h.charge_body())
        self.assertEqual(self.server.request("GET", "/healthz").status, 200)
        self.assertNotIn("AddressSanitizer", self.server.log())
        self.assertNotIn("runtime error", self.server.log())


class IsolationTest(h.ServiceTestCase):
    # No key cache: a revoked key is refused on the very next request.
    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
                  "PAYMENTS_KEY_CACHE_TTL": "0",
                  "PAYMENTS_LOG_LEVEL": "debug"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secrets = []   # every key, token and webhook secret the class uses, for the log check
        cls.alice, cls.alice_key = cls._user("alice")
        cls.mallory, cls.mallory_key = cls._user("mallory")
        cls.relay_log = None
        try:
            cls._make_alices_objects()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def _user(cls, prefix):
        user = h.new_user(prefix)
        key = cls.db.create_key(user)
        cls.secrets += [key, key[len("sk_test_") + 12:]]
        return user, key

    @classmethod
    def _call(cls, key, method, path, body=None, idem=None):
        headers = {"Authorization": "Bearer " + key}
        if body is not None:
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = idem or h.new_key()
        return cls.server.request(method, path, body, headers)

    @classmethod
    def _make_alices_objects(cls):
        """Alice's charge, refund, events, webhook endpoint and one webhook delivery."""
        cls.alice_idem = h.new_key()
        resp = cls._call(cls.alice_key, "POST", "/v1/charges", h.charge_body(amount=5000), cls.alice_idem)
        assert resp.status == 201, resp
        cls.charge = resp.json()
        resp = cls._call(cls.alice_key, "POST", "/v1/refunds", {"charge": cls.charge["id"], "amount": 1000})
        assert resp.status == 201, resp
        cls.refund = resp.json()
        resp = cls._call(cls.alice_key, "GET", "/v1/events?limit=100")
        assert resp.status == 200, resp
        cls.events = resp.json()["data"]
        assert cls.events, "alice has no events"
        # A receiver port nobody listens on: the delivery fails and stays listed.
        dead_port = h.free_port()
        resp = cls._call(cls.alice_key, "POST", "/v1/webhook_endpoints",
                         {"url": "http://127.0.0.1:%d/hook" % dead_port, "enabled_events": ["*"]})
        assert resp.status == 201, resp
        cls.endpoint = resp.json()
        cls.secrets += [cls.endpoint["secret"], cls.endpoint["secret"][len("whsec_"):]]
        # One more event after the endpoint exists, for the relay to deliver.
        resp = cls._call(cls.alice_key, "POST", "/v1/charges", h.charge_body(source="tok_chargeDeclined"))
        assert resp.status == 402, resp
        cls.delivery = cls._run_relay_until_a_delivery()

    @classmethod
    def _run_relay_until_a_delivery(cls):
        fd, cls.relay_log = tempfile.mkstemp(prefix="payments-it-relay-", suffix=".stderr")
        env = dict(os.environ)
        env.update({"DATABASE_URL": cls.db.app_url, "PAYMENTS_LOG_LEVEL": "debug",
                    "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1", "PAYMENTS_WEBHOOK_SCHEDULE": "0",
                    "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1", "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT": "200ms",
                    "PAYMENTS_WEBHOOK_TIMEOUT": "1s", "PAYMENTS_RELAY_POLL": "20ms"})
        relay = subprocess.Popen([h.BIN, "relay"], stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                 env=env, cwd=h.ROOT)
        os.close(fd)
        try:
            def delivered():
                resp = cls._call(cls.alice_key, "GET", "/v1/webhook_deliveries?limit=100")
                data = resp.json()["data"] if resp.status == 200 else []
                return data[0] if data else None
            return h.poll(delivered, timeout=15, message="a webhook delivery of alice's")
        finally:
            relay.send_signal(signal.SIGTERM)
            try:
                relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()

    @classmethod
    def tearDownClass(cls):
        if cls.relay_log and os.environ.get("PAYMENTS_TEST_KEEP_LOGS") != "1":
            os.unlink(cls.relay_log)
        super().tearDownClass()

    def tearDown(self):
        self.assertIsNone(self.server.proc.poll(), "the server died")

    def assert_not_found(self, resp):
        self.assert_error(resp, 404, "resource_missing")

    def assert_lists_nothing_of_alices(self, path):
        resp = self._call(self.mallory_key, "GET", path)
        self.assertEqual(resp.status, 200, resp)
        text = resp.body.decode()
        for oid in [self.charge["id"], self.refund["id"], self.endpoint["id"], self.delivery["id"]] + \
                [e["id"] for e in self.events]:
            self.assertNotIn(oid, text, "%s shows alice's %s to mallory" % (path, oid))

    # --- another user's objects ---

    def test_another_users_charge_is_404_for_every_method(self):
        """Mallory gets 404 for alice's charge: read it, refund it; it is in none of her lists"""
        cid = self.charge["id"]
        self.assert_not_found(self._call(self.mallory_key, "GET", "/v1/charges/" + cid))
        resp = self._call(self.mallory_key, "POST", "/v1/refunds", {"charge": cid})
        self.assert_error(resp, 404, "resource_missing", param="charge")
        resp = self._call(self.mallory_key, "POST", "/v1/refunds", {"charge": cid, "amount": 1})
        self.assert_error(resp, 404, "resource_missing", param="charge")
        # A made-up id answers exactly the same: existence does not leak.
        fake = "ch_" + "Z" * 24
        self.assertEqual(self._call(self.mallory_key, "GET", "/v1/charges/" + fake).json()["error"]["code"],
                         self._call(self.mallory_key, "GET", "/v1/charges/" + cid).json()["error"]["code"])
        for path in ("/v1/charges?limit=100", "/v1/refunds?limit=100&charge=" + cid, "/v1/events?limit=100"):
            self.assert_lists_nothing_of_alices(path)
        resp = self._call(self.mallory_key, "GET", "/v1/charges?starting_after=" + cid)
        self.assertIn(resp.status, (400, 404), resp)
        # Alice's charge is untouched.
        got = self._call(self.alice_key, "GET", "/v1/charges/" + cid).json()
        self.assertEqual(got["amount_refunded"], 1000)

    def test_another_users_idempotency_key_is_not_shared(self):
        """Mallory reusing alice's Idempotency-Key gets her own new charge, never alice's"""
        resp = self._call(self.mallory_key, "POST", "/v1/charges", h.charge_body(amount=5000), self.alice_idem)
        obj = self.assert_json_response(resp, 201)
        self.assertNotEqual(obj["id"], self.charge["id"])
        self.assertNotEqual(resp.header("Idempotent-Replayed"), "true")

    def test_another_users_refund_is_404(self):
        """Mallory gets 404 for alice's refund and does not see it in a list"""
        self.assert_not_found(self._call(self.mallory_key, "GET", "/v1/refunds/" + self.refund["id"]))
        self.assert_lists_nothing_of_alices("/v1/refunds?limit=100")
        resp = self._call(self.mallory_key, "GET", "/v1/refunds?ending_before=" + self.refund["id"])
        self.assertIn(resp.status, (400, 404), resp)

    def test_another_users_event_is_404(self):
        """Mallory gets 404 for each of alice's events and does not see them in a list"""
        for event in self.events:
            self.assert_not_found(self._call(self.mallory_key, "GET", "/v1/events/" + event["id"]))
        self.assert_lists_nothing_of_alices("/v1/events?limit=100&type=charge.succeeded")

    def test_another_users_webhook_endpoint_is_404_for_every_method(self):
        """Mallory gets 404 for alice's endpoint on GET and DELETE, it stays alive, and she does not see it"""
        path = "/v1/webhook_endpoints/" + self.endpoint["id"]
        self.assert_not_found(self._call(self.mallory_key, "GET", path))
        self.assert_not_found(self._call(self.mallory_key, "DELETE", path))
        self.assert_lists_nothing_of_alices("/v1/webhook_endpoints")
        got = self._call(self.alice_key, "GET", path)
        self.assertEqual(got.status, 200, got)
        self.assertNotIn(self.endpoint["secret"], got.body.decode(), "the secret is shown again")

    def test_another_users_webhook_delivery_is_404(self):
        """Mallory gets 404 retrying alice's delivery, and filtering by alice's endpoint or event shows her nothing"""
        resp = self._call(self.mallory_key, "POST",
                          "/v1/webhook_deliveries/%s/retry" % self.delivery["id"], {})
        self.assert_not_found(resp)
        for query in ("", "?webhook_endpoint=" + self.endpoint["id"], "?event=" + self.delivery["event"],
                      "?status=dead", "?status=pending"):
            self.assert_lists_nothing_of_alices("/v1/webhook_deliveries" + query)
        mine = self._call(self.alice_key, "GET", "/v1/webhook_deliveries?limit=100").json()["data"]
        self.assertIn(self.delivery["id"], [d["id"] for d in mine])

    # --- ids, owned fields, keys ---

    def test_ids_are_random(self):
        """50 charge ids are unique base62, share nothing beyond "ch_", and are not sequential"""
        ids = []
        for i in range(50):
            resp = self._call(self.alice_key, "POST", "/v1/charges", h.charge_body(amount=100 + i))
            ids.append(self.assert_json_response(resp, 201)["id"])
        self.assertEqual(len(set(ids)), 50)
        for oid in ids:
            self.assertRegex(oid, r"^ch_[0-9A-Za-z]{24}$")
        self.assertEqual(os.path.commonprefix(ids), "ch_")
        # No two share more than 4 leading random characters (chance ~1e-4 for random ids).
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                self.assertLess(len(os.path.commonprefix([a[3:], b[3:]])), 5, (a, b))
        # Neither a counter (ids in creation order sort in order) nor a near-counter.
        self.assertNotEqual(sorted(ids), ids)
        self.assertNotEqual(sorted(ids, reverse=True), ids)
        diffs = [sum(x != y for x, y in zip(a[3:], b[3:])) for a, b in zip(ids, ids[1:])]
        self.assertGreater(sum(diffs) / len(diffs), 20, "consecutive ids differ in few places: %r" % diffs)
        self.assertGreater(len(set("".join(i[3:] for i in ids))), 55, "ids use few characters")

    def test_server_owned_fields_are_refused(self):
        """status, amount_refunded, id, object, created, refunded (and others) in a body answer 400 and store nothing"""
        before = self.counts(self.alice)
        for field, value in (("status", "succeeded"), ("amount_refunded", 0), ("id", "ch_" + "A" * 24),
                             ("object", "charge"), ("created", 1700000000), ("refunded", False),
                             ("failure_code", None), ("decline_code", None), ("user_id", self.mallory),
                             ("livemode", True)):
            with self.subTest(field=field):
                resp = self._call(self.alice_key, "POST", "/v1/charges", h.charge_body(**{field: value}))
                self.assert_error(resp, 400, "parameter_unknown", param=field)
        for field, value in (("status", "succeeded"), ("id", "re_" + "A" * 24), ("object", "refund"),
                             ("created", 1700000000)):
            with self.subTest(refund_field=field):
                resp = self._call(self.alice_key, "POST", "/v1/refunds",
                                  {"charge": self.charge["id"], "amount": 1, field: value})
                self.assert_error(resp, 400, "parameter_unknown", param=field)
        self.assertEqual(self.counts(self.alice), before)

    def test_revoked_key_is_refused_at_once(self):
        """With PAYMENTS_KEY_CACHE_TTL=0, a key revoked with 'payments keys revoke' answers 401 on the very next request"""
        _, key = self._user("revoked")
        self.assertEqual(self._call(key, "GET", "/v1/charges").status, 200)
        self.assertEqual(self._call(key, "POST", "/v1/charges", h.charge_body()).status, 201)
        self.db.revoke_key(key)
        self.assert_error(self._call(key, "GET", "/v1/charges"), 401, "api_key_invalid")
        self.assert_error(self._call(key, "POST", "/v1/charges", h.charge_body()), 401, "api_key_invalid")
        self.assert_error(self._call(key, "GET", "/v1/charges/" + self.charge["id"]), 401, "api_key_invalid")

    def revoke(self, arg, stdin=None):
        env = dict(os.environ, DATABASE_URL=self.db.url)
        return subprocess.run([h.BIN, "keys", "revoke", arg], input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, text=True, timeout=30)

    def test_keys_revoke_never_takes_the_whole_secret_as_an_argument(self):
        """'keys revoke' refuses a whole key on the command line (exit 2, nothing revoked) and takes its id, or the key on stdin"""
        for how in ("sk_test_ID", "ID", "stdin"):
            with self.subTest(how=how):
                _, key = self._user("revocable")
                refused = self.revoke(key)
                self.assertEqual(refused.returncode, 2, refused.stderr)
                self.assertIn("id", refused.stderr)
                self.assertEqual(self._call(key, "GET", "/v1/charges").status, 200, "the key was revoked")
                key_id = key[len("sk_test_"):len("sk_test_") + 12]
                proc = {"sk_test_ID": lambda: self.revoke("sk_test_" + key_id),
                        "ID": lambda: self.revoke(key_id),
                        "stdin": lambda: self.revoke("-", stdin=key + "\n")}[how]()
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assert_error(self._call(key, "GET", "/v1/charges"), 401, "api_key_invalid")

    def test_zz_no_secret_reaches_the_logs(self):
        """No API key, bearer token, card token or webhook secret appears in the server's or relay's log"""
        # Requests that carry each kind of secret, accepted and refused.
        bogus = "sk_test_" + "Q" * 44
        self.secrets += [bogus]
        self.assertEqual(self._call(bogus, "GET", "/v1/charges").status, 401)
        self.assertEqual(self.server.request("GET", "/v1/charges", None,
                                             {"Authorization": "Basic " + bogus}).status, 401)
        for source in ("tok_visa", "tok_mastercard", "tok_chargeDeclinedInsufficientFunds", "tok_secret_XYZ987"):
            self._call(self.alice_key, "POST", "/v1/charges", h.charge_body(source=source))
        logs = {"server": self.server.log()}
        if self.relay_log:
            with open(self.relay_log, "rb") as f:
                logs["relay"] = f.read().decode("utf-8", "replace")
        self.assertGreater(len(logs["server"].splitlines()), 20, "the server logged almost nothing")
        needles = list(self.secrets) + ["Bearer", "bearer ", "tok_visa", "tok_mastercard", "tok_chargeDeclined",
                                        "tok_secret_XYZ987", "whsec_"]
        for name, text in logs.items():
            for needle in needles:
                self.assertNotIn(needle, text, "%s log contains %r" % (name, needle[:12] + "..."))


class SilentNameServer:
    """
    A name server that swallows every query: a UDP socket on port 53 of a
    loopback address of its own, counting what arrives. resolv_conf() is a
    file naming it, for a server run under prefix() (a private mount
    namespace where that file is /etc/resolv.conf). Needs root for port 53.
    """

    def __init__(self):
        self.addr = "127.53.%d.%d" % (os.getpid() % 250 + 1, int.from_bytes(os.urandom(1), "big") % 250 + 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.addr, 53))
        self.queries = 0
        self.closed = False
        fd, self.path = tempfile.mkstemp(prefix="payments-it-resolv-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write("nameserver %s\noptions timeout:5 attempts:3\n" % self.addr)
        os.chmod(self.path, 0o644)
        self.thread = threading.Thread(target=self._swallow, daemon=True)
        self.thread.start()

    def _swallow(self):
        while not self.closed:
            try:
                self.sock.recvfrom(4096)
                self.queries += 1
            except OSError:
                return

    def prefix(self):
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.path]

    def close(self):
        self.closed = True
        self.sock.close()
        os.unlink(self.path)

    @staticmethod
    def usable():
        """Why a test cannot run one (None when it can)."""
        if os.geteuid() != 0:
            return "needs root (port 53 and a mount namespace)"
        if subprocess.run(["sh", "-c", "command -v unshare"], stdout=subprocess.DEVNULL).returncode != 0:
            return "needs unshare(1)"
        return None


class WebhookDnsTest(HostileTestCase):
    """
    Webhook URLs are not resolved by the API: the server runs with a name
    server that never answers (a glibc resolver would wait 5 s x 3 attempts
    for it), and private addresses are refused.
    """

    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_REQUEST_TIMEOUT": "1s",
                  "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "0"}
    dns = None

    @classmethod
    def setUpClass(cls):
        reason = SilentNameServer.usable()
        if reason is None:
            cls.dns = SilentNameServer()
            cls.server_prefix = cls.dns.prefix()
        try:
            super().setUpClass()
        except Exception:
            if cls.dns is not None:
                cls.dns.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.dns is not None:
            cls.dns.close()

    def setUp(self):
        super().setUp()
        self.stores = True

    def create_endpoint(self, url, timeout=30):
        start = time.monotonic()
        resp = self.server.request("POST", "/v1/webhook_endpoints", {"url": url, "enabled_events": ["*"]},
                                   {"Authorization": "Bearer " + self.key,
                                    "Content-Type": "application/json"}, timeout=timeout)
        return resp, time.monotonic() - start

    def test_a_name_is_not_resolved_when_an_endpoint_is_created(self):
        """An endpoint whose host needs DNS is created at once (201 within 1 s), and no query is sent for it"""
        name = "hooks-%s.example.com" % h.new_key()[3:]
        resp, took = self.create_endpoint("https://%s/hook" % name)
        self.assertEqual(self.assert_json_response(resp, 201)["url"], "https://%s/hook" % name)
        self.assertLess(took, 1.0, "creating an endpoint took %.1fs: the API resolved its host" % took)
        if self.dns is not None:
            self.assertEqual(self.dns.queries, 0, "the API asked the name server about %s" % name)

    def test_a_silent_name_server_holds_no_request(self):
        """With a name server that never answers, 8 endpoints created at once are all answered within 1 s"""
        if self.dns is None:
            self.skipTest(SilentNameServer.usable())
        # The rig works: a look-up under the same prefix reaches the silent server.
        probe = subprocess.run(self.dns.prefix() + ["getent", "ahosts", "probe.example.org"],
                               env=dict(os.environ, RES_OPTIONS="timeout:1 attempts:1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        self.assertNotEqual(probe.returncode, 0)
        h.poll(lambda: self.dns.queries > 0, timeout=5, message="the probe's query at the silent name server")
        self.dns.queries = 0
        results = h.run_concurrently(8, lambda i: self.create_endpoint(
            "https://h%d-%s.example.net/hook" % (i, h.new_key()[3:]), timeout=20))
        for resp, took in results:
            self.assertEqual(resp.status, 201, resp)
            self.assertLess(took, 1.0, "an endpoint waited %.1fs for DNS" % took)
        self.assertEqual(self.dns.queries, 0)

    def test_private_literals_and_local_names_are_still_refused(self):
        """Literal private addresses in every spelling, localhost and single-label names answer 400 param url, without DNS"""
        for url in ("http://127.0.0.1/", "http://2130706433/", "http://0x7f.0.0.1/", "http://[::ffff:0:7f00:1]/",
                    "http://[2001::1]/", "http://[64:ff9b:1::a00:1]/", "http://localhost/", "http://api.localhost/",
                    "http://metadata/", "http://x.invalid/"):
            with self.subTest(url=url):
                resp, took = self.create_endpoint(url)
                self.assert_error(resp, 400, "parameter_invalid", param="url")
                self.assertLess(took, 1.0)
        if self.dns is not None:
            self.assertEqual(self.dns.queries, 0)


class TrickleTest(HostileTestCase):
    """A 2 s request timeout, and clients that send a byte every 0.5 s: each read is quick, the request is not."""

    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_REQUEST_TIMEOUT": "2s"}
    TIMEOUT_S = 2.0
    BOUND_S = 3.0   # the deadline, plus a byte's interval, plus slack for a loaded machine

    def trickle(self, head, body, interval=0.5, head_interval=None):
        """
        Sends head (at once, or a byte per head_interval) and then body a byte
        per interval, until the server answers or closes. Returns (seconds
        from the first byte, what the server sent).
        """
        got = []
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            start = time.monotonic()
            deadline = start + 30

            def answered():
                s.settimeout(0.001)
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, BlockingIOError):
                    return False
                except OSError:
                    return True
                got.append(chunk)
                return True

            def send(data, gap):
                for i in range(0, len(data), 1 if gap else len(data)):
                    if answered():
                        return True
                    try:
                        s.sendall(data[i:i + 1] if gap else data)
                    except OSError:
                        return True
                    if gap:
                        time.sleep(gap)
                return False

            done = send(head, head_interval) or send(body, interval)
            while not done and time.monotonic() < deadline:
                done = answered()
                time.sleep(0.05)
            took = time.monotonic() - start
            s.settimeout(2)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got.append(chunk)
            except OSError:
                pass
        return took, b"".join(got)

    def assert_cut_off(self, took, data):
        self.assertLess(took, self.BOUND_S, "a trickled request held its connection %.1fs" % took)
        if data:
            self.assert_error(h.parse_raw_response(data), 400, "body_unreadable")

    def test_a_trickled_body_is_cut_off_at_the_request_timeout(self):
        """A body sent a byte every 0.5 s (each read well inside the timeout) is answered 400 and closed within 3 s of the request's start"""
        body = b'{"amount":2000,"currency":"usd","source":"tok_visa","description":"' + b"x" * 100 + b'"}'
        head = self.head() + b"Content-Length: %d\r\n\r\n" % len(body)
        took, data = self.trickle(head, body)
        self.assert_cut_off(took, data)
        self.assertGreater(took, self.TIMEOUT_S - 0.5, "cut off before its timeout")
        self.assert_healthy_quickly(1.0)

    def test_a_trickled_chunked_body_is_cut_off(self):
        """A chunked body sent a byte every 0.5 s is cut off within 3 s too"""
        payload = b'{"amount":2000,"currency":"usd","source":"tok_visa"}'
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        took, data = self.trickle(self.head() + b"Transfer-Encoding: chunked\r\n\r\n", body)
        self.assert_cut_off(took, data)

    def test_slow_headers_count_against_the_same_deadline(self):
        """Headers sent a byte every 0.1 s for about 1.5 s, then a trickled body: the whole request is cut off within 3 s of its first byte"""
        body = b'{"amount":2000,"currency":"usd","source":"tok_visa"}'
        head = self.head() + b"Content-Length: %d\r\n\r\n" % len(body)
        fast, slow = head[:-15], head[-15:]
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            start = time.monotonic()
            s.sendall(fast)
            got = b""
            closed = False
            for part, gap in ((slow, 0.1), (body, 0.5)):
                for b in part:
                    try:
                        s.sendall(bytes([b]))
                    except OSError:
                        closed = True
                        break
                    time.sleep(gap)
                    s.settimeout(0.001)
                    try:
                        chunk = s.recv(65536)
                        got += chunk
                        closed = closed or not chunk
                    except (socket.timeout, BlockingIOError):
                        pass
                    except OSError:
                        closed = True
                    if closed or got:
                        break
                if closed or got:
                    break
            took = time.monotonic() - start
        self.assertTrue(closed or got, "the trickled request was never cut off")
        self.assert_cut_off(took, got)

    def test_zz_still_serves_a_normal_charge(self):
        """After the trickled requests a normal charge succeeds"""
        self.stores = True
        self.assert_charge_object(self.charge(), h.charge_body())


def made_up_key():
    """A well-formed secret key that exists nowhere."""
    return "sk_test_" + "".join("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"[b % 57]
                                for b in os.urandom(44))


class TableLock:
    """Holds an ACCESS EXCLUSIVE lock on a table in a psql session of its own until release()."""

    def __init__(self, db, table):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", db.url],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, text=True)
        self.proc.stdin.write("BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE;\n" % table)
        self.proc.stdin.flush()
        h.poll(lambda: db.query("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                                " WHERE c.relname = %s AND l.mode = 'AccessExclusiveLock' AND l.granted"
                                % h.sql_literal(table)) == "1", message="the lock on %s" % table)

    def release(self):
        try:
            self.proc.stdin.write("ROLLBACK;\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class AuthFloodTest(h.ServiceTestCase):
    """
    Requests without a verified key are limited per client address before
    the key is read (5 at once, then 1/s), behind a trusted proxy
    (127.0.0.1) by X-Forwarded-For; users (and addresses) have 1/s and a
    burst of 20; the health probes are never limited.
    """

    server_env = {"PAYMENTS_RATE_LIMIT": "1", "PAYMENTS_RATE_BURST": "20",
                  "PAYMENTS_AUTH_RATE_LIMIT": "1", "PAYMENTS_AUTH_RATE_BURST": "5",
                  "PAYMENTS_TRUSTED_PROXIES": "127.0.0.1", "PAYMENTS_REQUEST_TIMEOUT": "3s",
                  "PAYMENTS_KEY_CACHE_TTL": "0"}

    def call(self, path, key=None, client=None):
        headers = {}
        if key is not None:
            headers["Authorization"] = "Bearer " + key
        if client is not None:
            headers["X-Forwarded-For"] = client
        start = time.monotonic()
        resp = self.server.request("GET", path, None, headers, timeout=15)
        return resp, time.monotonic() - start

    def test_health_probes_are_never_rate_limited(self):
        """40 calls each of /healthz and /readyz from one address, over every bucket, all answer 200"""
        for path in ("/healthz", "/readyz"):
            for i in range(40):
                resp, _ = self.call(path)
                self.assertEqual(resp.status, 200, "%s call %d: %r" % (path, i + 1, resp))
                self.assertIsNone(resp.header("X-RateLimit-Limit"))

    def test_made_up_keys_are_limited_per_client_before_the_database(self):
        """Valid keys never use up their address's bucket; made-up keys from one client get 429 after 5 without reading a key (the key table is locked), while the probes and another client are served"""
        flooder, other = "203.0.113.%d" % (os.getpid() % 200 + 1), "198.51.100.%d" % (os.getpid() % 200 + 1)
        keys = [self.make_user("honest")[1] for _ in range(3)]
        key = keys[0]
        # Valid keys give their token back: 12 reads of them (over the burst of 5) from one address.
        for i in range(12):
            resp, _ = self.call("/v1/charges?limit=1", keys[i % 3], flooder)
            self.assertEqual(resp.status, 200, "call %d with a valid key: %r" % (i + 1, resp))
        statuses = [self.call("/v1/charges", made_up_key(), flooder)[0].status for _ in range(5)]
        self.assertEqual(statuses, [401] * 5)
        refused, _ = self.call("/v1/charges", made_up_key(), flooder)
        self.assertEqual(refused.status, 429, refused)
        self.assertEqual(refused.json()["error"]["code"], "rate_limited")
        self.assertRegex(refused.header("Retry-After") or "", r"^[1-9]\d*$")
        self.assertEqual(refused.header("X-RateLimit-Limit"), "5")
        # No key at all counts the same.
        self.assertEqual(self.call("/v1/charges", None, flooder)[0].status, 429)
        # The probes and another client are untouched.
        self.assertEqual(self.call("/readyz", None, flooder)[0].status, 200)
        self.assertEqual(self.call("/v1/charges", key, other)[0].status, 200)
        # With the key table locked, a read of a key would wait for the lock (3 s):
        # the flooder's made-up keys are refused at once, never read.
        lock = TableLock(self.db, "api_keys")
        try:
            for _ in range(5):
                resp, took = self.call("/v1/charges", made_up_key(), flooder)
                self.assertEqual(resp.status, 429, resp)
                self.assertLess(took, 1.0, "a refused key took %.1fs: it was read" % took)
        finally:
            lock.release()



class AuthBurstOfValidKeysTest(h.ServiceTestCase):
    """Every request reads its key (no cache), and the address's bucket holds 5."""

    server_env = {"PAYMENTS_AUTH_RATE_LIMIT": "1", "PAYMENTS_AUTH_RATE_BURST": "5",
                  "PAYMENTS_KEY_CACHE_TTL": "0"}

    def test_valid_keys_read_at_once_spend_nothing(self):
        """20 requests at once from one address, each reading its valid key, are all served: only failed keys spend the address's tokens"""
        _, key = self.make_user("busy")
        results = h.run_concurrently(20, lambda i: self.get("/v1/charges?limit=1", key).status)
        self.assertEqual(results, [200] * 20)


class UntrustedForwardedForTest(h.ServiceTestCase):
    """No trusted proxy: X-Forwarded-For is the client's own claim and changes nothing."""

    server_env = {"PAYMENTS_AUTH_RATE_LIMIT": "1", "PAYMENTS_AUTH_RATE_BURST": "3",
                  "PAYMENTS_KEY_CACHE_TTL": "0"}

    def test_a_forged_forwarded_for_does_not_escape_the_limit(self):
        """Made-up keys with a new X-Forwarded-For each time are still one client: 429 after 3"""
        statuses = []
        for i in range(6):
            resp = self.server.request("GET", "/v1/charges", None, {
                "Authorization": "Bearer " + made_up_key(), "X-Forwarded-For": "203.0.113.%d" % (i + 1)})
            statuses.append(resp.status)
        self.assertEqual(statuses, [401, 401, 401, 429, 429, 429])


class ConnectionCapTest(h.ServiceTestCase):
    """
    Each client address may hold 16 connections (128 worker threads, a 10 s
    request timeout); the idle ones come from 127.0.0.2, the client that
    must not wait from 127.0.0.1.
    """

    server_env = {"PAYMENTS_MAX_CONNECTIONS_PER_CLIENT": "16", "PAYMENTS_REQUEST_TIMEOUT": "10s",
                  "PAYMENTS_THREADS": "128"}
    IDLE_FROM = "127.0.0.2"

    def idle_connections(self, n):
        out = []
        for _ in range(n):
            out.append(socket.create_connection(("127.0.0.1", self.server.port), timeout=10,
                                                source_address=(self.IDLE_FROM, 0)))
        return out

    def test_idle_connections_of_one_address_do_not_delay_another_clients_charge(self):
        """300 idle connections from one address: another client's charge is answered 201 within 1 s, and the ones over the cap get a 503 at once"""
        _, key = self.make_user("patient")
        idle = self.idle_connections(300)
        try:
            start = time.monotonic()
            resp = self.post_charge(key, h.charge_body(), h.new_key(), timeout=15)
            took = time.monotonic() - start
            self.assertEqual(resp.status, 201, resp)
            self.assertLess(took, 1.0, "a charge waited %.2fs behind idle connections" % took)
            # The last idle connection is over the cap: a 503 JSON error, then the server closes.
            data, _, closed = b"", None, False
            last = idle[-1]
            last.settimeout(5)
            try:
                while True:
                    chunk = last.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    data += chunk
            except OSError:
                closed = True
            self.assertTrue(closed)
            refused = h.parse_raw_response(data)
            self.assert_error(refused, 503, "service_unavailable")
            self.assertEqual(refused.header("Retry-After"), "1")
        finally:
            for s in idle:
                s.close()

    def test_an_address_at_its_cap_gets_503_and_room_when_one_closes(self):
        """With 16 idle connections open, a 17th from that address is answered 503 at once; once one closes, the next is served"""
        idle = self.idle_connections(16)
        try:
            def healthz():
                with socket.create_connection(("127.0.0.1", self.server.port), timeout=5,
                                              source_address=(self.IDLE_FROM, 0)) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    return h.parse_raw_response(data)
            # The server counts a connection when a worker takes it up, which for
            # the 16 may come a moment after connect() returned: poll, boundedly.
            def refused_quickly():
                start = time.monotonic()
                resp = healthz()
                return (resp, time.monotonic() - start) if resp.status == 503 else None
            refused, took = h.poll(refused_quickly, timeout=15, message="the 17th connection's 503")
            self.assert_error(refused, 503, "service_unavailable")
            self.assertLess(took, 1.0)
            idle.pop().close()
            resp = h.poll(lambda: (lambda r: r if r.status == 200 else None)(healthz()), timeout=5,
                          message="room for one more connection")
            self.assertEqual(resp.status, 200)
        finally:
            for s in idle:
                s.close()
