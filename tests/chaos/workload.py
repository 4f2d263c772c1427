"""workload.py - the chaos harness's clients: charges (some only authorized), captures and partial refunds, each with its own Idempotency-Key, retried with that key.

An Op is one logical operation (a charge, a capture or a refund) and its
history: every attempt, and its outcome as the client knows it:
  ok        201 (a charge, or a refund), 200 (a capture)
  declined  402 for a charge: a definite answer, and a stored failed charge
  failed    another definite 4xx: nothing may have been stored
  unknown   the client gave up after timeouts, connection errors, 5xx or
            409 idempotency_key_in_use: it may or may not have happened
  pending   not finished yet
Retries use the same key and the same bytes, on exactly those indefinite
answers. Unknown operations are resolved after the run by retrying them
again (resolve()).
"""

import http.client
import json
import random
import threading
import time

SUCCESS_TOKEN = "tok_visa"
DECLINE_TOKEN = "tok_chargeDeclined"
CURRENCY = "usd"

# Per HTTP attempt: long enough for the server's own bounded waits (pool 1 s,
# idempotency wait 1 s) to answer before the client gives up on it.
REQUEST_TIMEOUT_S = 4.0

# The share of attempts that give up after 2 to 30 ms.
IMPATIENT = 0.1

# The share of succeeded charges created with capture=false, to be captured later.
AUTHORIZE_ONLY = 0.3


class Op:
    """One charge, capture or refund with its key, the request bytes, and what came of it."""

    __slots__ = ("kind", "user", "key", "body", "amount", "source", "charge", "capture", "outcome",
                 "status", "code", "object_id", "attempts", "retries", "was_unknown",
                 "answers", "request_ids", "replayed", "resp")

    def __init__(self, kind, user, key, body, charge=None):
        self.kind = kind                  # "charge", "capture" or "refund"
        self.user = user
        self.key = key
        self.body = body                  # the exact bytes sent on every attempt
        req = json.loads(body)
        self.amount = req.get("amount")   # None: a capture of the whole authorization
        self.source = req.get("source")   # charges only
        self.capture = req.get("capture", True)   # charges only: false authorizes only
        # refunds: the charge refunded; captures: the charge captured (in the path)
        self.charge = req.get("charge", charge)
        self.outcome = "pending"
        self.status = None                # the definite status, when there is one
        self.code = None                  # the error code of a definite 4xx
        self.object_id = None             # the charge or refund id answered
        self.attempts = 0
        self.retries = 0
        self.was_unknown = False          # unknown when the run ended, resolved after
        self.answers = []                 # every attempt: status or the exception's name
        self.request_ids = []             # every attempt: the X-Request-Id answered, or None
        self.replayed = False
        self.resp = None                  # the definite answer's parsed body

    def to_json(self):
        return {s: getattr(self, s) for s in self.__slots__ if s not in ("body", "resp")}


class Api:
    """The HTTP API at 127.0.0.1:port, one connection per attempt."""

    def __init__(self, port):
        self.port = port

    def post(self, path, api_key, idem, body, timeout=REQUEST_TIMEOUT_S):
        """Returns (status, headers, parsed JSON or None); raises OSError/HTTPException."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": "Bearer " + api_key, "Content-Type": "application/json"}
            if idem is not None:
                headers["Idempotency-Key"] = idem
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            try:
                parsed = json.loads(data.decode("utf-8")) if data else None
            except (UnicodeDecodeError, ValueError):
                parsed = None
            return resp.status, resp.headers, parsed
        finally:
            conn.close()


def error_code(parsed):
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return parsed["error"].get("code")
    return None


def attempt(api, api_key, op, timeout=REQUEST_TIMEOUT_S):
    """
    Sends op once. Returns True when the answer is definite (op updated),
    False when it must be retried.
    """
    op.attempts += 1
    path = {"charge": "/v1/charges", "refund": "/v1/refunds",
            "capture": "/v1/charges/%s/capture" % op.charge}[op.kind]
    try:
        status, headers, parsed = api.post(path, api_key, op.key, op.body, timeout)
    except (OSError, http.client.HTTPException) as e:
        op.answers.append(type(e).__name__)
        op.request_ids.append(None)
        return False
    op.request_ids.append(headers.get("X-Request-Id"))
    # A server killed while writing leaves a status line with the headers or
    # body cut short, which http.client takes for a complete response. Every
    # answer of this API is JSON with a Content-Length: anything else is no
    # answer, and retried like a lost connection.
    if not isinstance(parsed, dict) or headers.get("Content-Length") is None:
        op.answers.append("truncated %d" % status)
        return False
    op.answers.append(status)
    code = error_code(parsed)
    if status >= 500 or (status == 409 and code == "idempotency_key_in_use"):
        return False
    op.status = status
    op.code = code
    op.resp = parsed
    op.replayed = (headers.get("Idempotent-Replayed") or "").lower() == "true"
    if (status == 201 or (status == 200 and op.kind == "capture")) and isinstance(parsed, dict):
        op.outcome = "ok"
        op.object_id = parsed.get("id")
    elif status == 402 and op.kind == "charge":
        op.outcome = "declined"
        err = parsed.get("error") if isinstance(parsed, dict) else None
        op.object_id = err.get("charge") if isinstance(err, dict) else None
    else:
        op.outcome = "failed"
    return True


class History:
    """Every Op of the run, and the succeeded charges clients may refund, per user."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.refundable = {}              # user -> [(charge id, amount)]
        self.capturable = {}              # user -> [(charge id, amount)]: authorizations

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def add_refundable(self, user, charge_id, amount):
        with self.lock:
            self.refundable.setdefault(user, []).append((charge_id, amount))

    def add_capturable(self, user, charge_id, amount):
        with self.lock:
            self.capturable.setdefault(user, []).append((charge_id, amount))

    def pick_capturable(self, user, rng):
        """A recent authorization of user (clients of one user may race to capture it), or None."""
        with self.lock:
            lst = self.capturable.get(user) or []
            if not lst:
                return None
            return lst[-1 - min(int(rng.expovariate(0.5)), len(lst) - 1)]

    def pick_refundable(self, user, rng):
        with self.lock:
            lst = self.refundable.get(user) or []
            if not lst:
                return None
            # Favour recent charges, so refunds of one charge overlap in time.
            return lst[-1 - min(int(rng.expovariate(0.2)), len(lst) - 1)]


class Client(threading.Thread):
    """
    One client: a loop of charges and refunds for one user until stop is set.
    Its choices come from its own Random (seeded from the run's seed); its
    interleaving with faults does not.
    """

    def __init__(self, index, seed, api, user, api_key, history, stop, rate=0.0, max_attempts=4):
        super().__init__(name="client-%d" % index, daemon=True)
        self.index = index
        self.rng = random.Random("%s/client/%d" % (seed, index))
        self.api = api
        self.user = user
        self.api_key = api_key
        self.history = history
        self.stop = stop
        self.rate = rate                  # this client's operations per second (0: as fast as it can)
        self.max_attempts = max_attempts
        self.seq = 0
        self.seed = seed
        self.error = None

    def new_key(self):
        self.seq += 1
        return "chaos-%s-c%d-%d-%08x" % (self.seed, self.index, self.seq,
                                         self.rng.getrandbits(32))

    def next_op(self):
        r = self.rng.random()
        auth = self.history.pick_capturable(self.user, self.rng) if r >= 0.85 else None
        if auth is not None:
            # Capture all of it, or part (the rest is released).
            charge_id, amount = auth
            req = {} if self.rng.random() < 0.5 else {"amount": self.rng.randint(1, amount)}
            body = json.dumps(req, separators=(",", ":"))
            return Op("capture", self.user, self.new_key(), body.encode(), charge=charge_id)
        target = self.history.pick_refundable(self.user, self.rng) if r < 0.4 else None
        if target is not None:
            charge_id, amount = target
            refund = self.rng.randint(1, max(1, amount // 3))
            body = json.dumps({"charge": charge_id, "amount": refund}, separators=(",", ":"))
            return Op("refund", self.user, self.new_key(), body.encode())
        source = DECLINE_TOKEN if self.rng.random() < 0.2 else SUCCESS_TOKEN
        req = {"amount": self.rng.randint(100, 10000), "currency": CURRENCY,
               "source": source, "description": "chaos", "metadata": {"client": str(self.index)}}
        if self.rng.random() < AUTHORIZE_ONLY:
            req["capture"] = False
        body = json.dumps(req, separators=(",", ":"))
        return Op("charge", self.user, self.new_key(), body.encode())

    def run(self):
        try:
            next_at = time.monotonic()
            while not self.stop.is_set():
                op = self.next_op()
                self.history.add(op)
                self.perform(op)
                if self.rate > 0:
                    # Poisson arrivals at the client's rate; after a stall
                    # (a fault), catch up by at most a second's worth.
                    now = time.monotonic()
                    next_at = max(next_at + self.rng.expovariate(self.rate), now - 1.0)
                    if next_at > now:
                        self.stop.wait(next_at - now)
        except BaseException as e:   # a harness bug: reported, never lost
            self.error = e

    def perform(self, op):
        # Give up after a few attempts (seeded): the run needs unknown
        # operations, resolved at the end, as much as retried ones.
        limit = self.rng.randint(1, self.max_attempts)
        delay = 0.05
        while True:
            # Now and then an impatient client: it hangs up after a few
            # milliseconds, often while the server is committing, and its
            # retry races the first attempt for the key.
            timeout = REQUEST_TIMEOUT_S
            if self.rng.random() < IMPATIENT:
                timeout = self.rng.uniform(0.002, 0.03)
            if attempt(self.api, self.api_key, op, timeout):
                break
            if op.attempts >= limit or self.stop.is_set():
                op.outcome = "unknown"
                return
            op.retries += 1
            time.sleep(delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, 0.8)
        if op.outcome == "ok" and op.kind == "charge" and op.source == SUCCESS_TOKEN \
                and op.object_id:
            if op.capture is False:
                self.history.add_capturable(op.user, op.object_id, op.amount)
            else:
                self.history.add_refundable(op.user, op.object_id, op.amount)
        if op.outcome == "ok" and op.kind == "capture":
            # Refunds of it are bounded by what was captured.
            self.history.add_refundable(op.user, op.charge, op.resp.get("amount_captured", 0))


def resolve(api, keys, ops, deadline):
    """
    Retries every unknown op with its key until it gets a definite answer or
    deadline (time.monotonic()) passes. Returns the ops still unknown.
    """
    pending = [op for op in ops if op.outcome == "unknown"]
    for op in pending:
        op.was_unknown = True
    delay = 0.05
    while pending and time.monotonic() < deadline:
        still = []
        for op in pending:
            if time.monotonic() >= deadline:
                still.append(op)
                continue
            if attempt(api, keys[op.user], op):
                continue
            op.retries += 1
            still.append(op)
        pending = still
        if pending:
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    return pending
