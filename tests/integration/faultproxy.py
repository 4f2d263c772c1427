"""faultproxy.py - a loopback HTTP proxy that injects faults between the processor worker and the processor.

Each request takes the next fault from a queue (or the default, "pass"):

  pass            forward the request, return the answer
  delay:S         wait S seconds, then forward
  500_before      answer 500 without forwarding (the processor never saw it)
  500_after       forward, throw the processor's answer away, answer 500
  429_before      answer 429 rate_limit_error without forwarding
  409_before      answer 409 idempotency_key_in_use without forwarding
  400_before      answer 400 invalid_request_error (parameter_invalid) without forwarding
  400idem_before  answer 400 idempotency_error without forwarding
  timeout_after   forward, then hold the answer until the client gives up (its timeout)
  drop_after      forward, then close the connection without answering
  drop_before     close the connection without forwarding

Faults "after" forwarding are the dangerous ones: the processor has charged,
and the client does not know. The proxy records every request it saw.
When get_fault is set, every GET (the worker's lookups, reconcile's list)
takes that fault instead, leaving the queue to the POSTs.
"""

import http.client
import http.server
import socketserver
import threading
import time


# Answers given without forwarding: (status, body).
_CANNED = {
    "409_before": (409, b'{"error":{"type":"idempotency_error","code":"idempotency_key_in_use"}}'),
    "400_before": (400, b'{"error":{"type":"invalid_request_error","code":"parameter_invalid",'
                        b'"param":"source"}}'),
    "400idem_before": (400, b'{"error":{"type":"idempotency_error","code":"idempotency_key_reused"}}'),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):   # quiet
        pass

    def _forward(self, method, body):
        up = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port,
                                        timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
            up.request(method, self.path, body=body, headers=headers)
            resp = up.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            up.close()

    def _answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("connection", "content-length", "transfer-encoding", "date",
                                 "server", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = name = self.server.proxy.next_fault(method)
        forwarded_status = None
        try:
            if fault.startswith("delay:"):
                time.sleep(float(fault.split(":", 1)[1]))
                fault = "pass"
            if fault == "drop_before":
                self.close_connection = True
                return
            if fault == "500_before":
                self._answer(500, [("Content-Type", "application/json")],
                             b'{"error":{"type":"api_error","message":"injected"}}')
                return
            if fault in _CANNED:
                status, body = _CANNED[fault]
                self._answer(status, [("Content-Type", "application/json")], body)
                return
            if fault == "429_before":
                self._answer(429, [("Content-Type", "application/json")],
                             b'{"error":{"type":"rate_limit_error","message":"injected"}}')
                return
            status, headers, rbody = self._forward(method, body)
            forwarded_status = status
            if fault == "500_after":
                self._answer(500, [("Content-Type", "application/json")],
                             b'{"error":{"type":"api_error","message":"injected"}}')
            elif fault == "timeout_after":
                # Hold the answer until the client hangs up (or long enough for its timeout).
                self.connection.settimeout(self.server.proxy.hold_seconds)
                try:
                    self.connection.recv(1)
                except OSError:
                    pass
                self.close_connection = True
            elif fault == "drop_after":
                self.close_connection = True
            else:
                self._answer(status, headers, rbody)
        finally:
            self.server.proxy.record(method, self.path, self.headers.get("Idempotency-Key"),
                                     name, forwarded_status)

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that went away (a worker killed mid-call) is part of the test, not an error.
        pass


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to upstream_port."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1", hold_seconds=5.0):
        self._lock = threading.Lock()
        self._faults = []
        self.default = "pass"
        self.chooser = None   # when set, called for a fault whenever the queue is empty
        self.get_fault = None   # when set, the fault of every GET (the queue is left alone)
        self.hold_seconds = hold_seconds
        self.log = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream_host = upstream_host
        self._server.upstream_port = upstream_port
        self._server.proxy = self
        self.port = self._server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def push(self, *faults):
        """Queues faults for the next requests, in order."""
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self):
        with self._lock:
            return len(self._faults)

    def next_fault(self, method="POST"):
        with self._lock:
            if method == "GET" and self.get_fault is not None:
                return self.get_fault
            if self._faults:
                return self._faults.pop(0)
            return self.chooser() if self.chooser is not None else self.default

    def record(self, method, path, idem, fault, forwarded_status):
        with self._lock:
            self.log.append((method, path, idem, fault, forwarded_status))

    def requests_for(self, idem):
        with self._lock:
            return [r for r in self.log if r[2] == idem]

    def lookups(self):
        """The GETs of the processor's list seen so far (lookups and reconcile)."""
        with self._lock:
            return [r for r in self.log if r[0] == "GET"]

    def close(self):
        self._server.shutdown()
        self._server.server_close()
