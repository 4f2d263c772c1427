"""test_openapi.py - the real server's answers checked against openapi.yaml, the API's contract.

openapi.yaml is the one source of truth. It is converted to JSON once per run
with node and js-yaml (tests/openapi, installed by tests/openapi/lint.sh
--install-only when missing), and every response below is checked against the
operation it answers: the status is one the operation lists, every required
header is there, every declared header matches its schema, the Content-Type is
one the response lists and the body matches its schema. Request bodies, the
Idempotency-Key header and list parameters are checked the other way round: a
request the spec accepts must be accepted by the server and one it refuses
must be refused, so the limits in the spec are the server's.

The JSON Schema validator below implements exactly the keywords openapi.yaml
uses and raises on any other, so a keyword it would silently skip cannot creep
into the spec; its own test feeds it wrong bodies that it must reject.
"""

import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import new_key, poll, sql_literal  # noqa: E402

SPEC_YAML = os.path.join(harness.ROOT, "openapi.yaml")
OPENAPI_DIR = os.path.join(harness.ROOT, "tests", "openapi")
HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

# Loopback webhooks, no rate limit in the way, and a short wait on a busy Idempotency-Key.
SERVER_ENV = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1", "PAYMENTS_RATE_LIMIT": "0",
              "PAYMENTS_IDEMPOTENCY_WAIT": "300ms"}
# A URL on loopback where nothing listens: endpoints created with it are never reached.
DEAD_URL = "http://127.0.0.1:9/hooks"

# "METHOD /template" -> statuses seen, for the coverage check at the end of the module.
SEEN = {}


def setUpModule():
    harness.setup_module(__name__)


def tearDownModule():
    harness.teardown_module(__name__)


# --- the spec ---

_spec = None


def load_spec():
    """openapi.yaml as a Python object, converted once by tests/openapi/tojson.mjs."""
    global _spec
    if _spec is not None:
        return _spec
    try:
        if not os.path.isdir(os.path.join(OPENAPI_DIR, "node_modules", "js-yaml")):
            proc = subprocess.run(["bash", os.path.join(OPENAPI_DIR, "lint.sh"), "--install-only"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
            if proc.returncode != 0:
                raise harness.HarnessError("tests/openapi/lint.sh --install-only failed:\n"
                                           + proc.stdout.decode("utf-8", "replace"))
        with tempfile.TemporaryDirectory(prefix="payments-openapi-") as tmp:
            out = os.path.join(tmp, "openapi.json")
            proc = subprocess.run(["node", os.path.join(OPENAPI_DIR, "tojson.mjs"), SPEC_YAML, out],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            if proc.returncode != 0:
                raise AssertionError("openapi.yaml does not parse:\n"
                                     + proc.stdout.decode("utf-8", "replace"))
            with open(out, encoding="utf-8") as f:
                _spec = json.load(f)
    except FileNotFoundError as e:
        raise harness.HarnessError("node is needed to read openapi.yaml: %s" % e) from None
    return _spec


# --- a JSON Schema validator for the keywords openapi.yaml uses ---

class SchemaError(Exception):
    """The schema itself is unusable: an unknown keyword or a $ref that does not resolve."""


# Keywords that constrain a value, and keywords that only describe it.
KEYWORDS = {"$ref", "type", "enum", "const", "properties", "required", "additionalProperties",
            "propertyNames", "minProperties", "maxProperties", "items", "minItems", "maxItems",
            "pattern", "minLength", "maxLength", "minimum", "maximum", "oneOf", "anyOf", "allOf"}
ANNOTATIONS = {"description", "examples", "default", "format", "title", "deprecated"}


def ecma_pattern(pattern):
    """
    pattern (ECMA-262, as JSON Schema has it) as a Python regex: '$' outside a
    character class matches only at the very end (Python's '$' also matches
    before a final newline), and compiled with re.ASCII so that \\d and \\w
    are ASCII, as in ECMA-262.
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "$" and not in_class:
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def same_json(a, b):
    """JSON equality: true is not 1 and 1.0 is not 1, unlike Python's ==."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def is_type(value, name):
    """
    JSON type membership. "integer" is a number written without a fraction, as
    the server reads it: JSON Schema would also accept 5.0, which the server
    refuses (body_get_integer), so the validator is as strict as the server.
    """
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise SchemaError("unknown type %r" % name)


class Validator:
    """Validates JSON values against the schemas of one OpenAPI document (its local $refs)."""

    def __init__(self, root):
        self.root = root
        self._patterns = {}

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise SchemaError("only local $refs are supported: %r" % ref)
        node = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SchemaError("$ref %r does not resolve" % ref)
            node = node[part]
        return node

    def deref(self, node):
        """node, or what its $ref points to (for parameters, headers and responses)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            node = self.resolve(node["$ref"])
            seen += 1
            if seen > 20:
                raise SchemaError("$ref loop")
        return node

    def errors(self, value, schema, where="$"):
        """The list of reasons why value does not match schema (empty when it does)."""
        out = []
        self._check(value, schema, where, out)
        return out

    def _pattern(self, pattern):
        if pattern not in self._patterns:
            self._patterns[pattern] = ecma_pattern(pattern)
        return self._patterns[pattern]

    def _check(self, value, schema, where, out):
        if schema is True:
            return
        if schema is False:
            out.append("%s: no value is allowed here" % where)
            return
        if not isinstance(schema, dict):
            raise SchemaError("%s: a schema must be an object, not %r" % (where, schema))
        unknown = set(schema) - KEYWORDS - ANNOTATIONS
        if unknown:
            raise SchemaError("%s: keywords this validator does not implement: %s"
                              % (where, ", ".join(sorted(unknown))))
        if "$ref" in schema:
            self._check(value, self.resolve(schema["$ref"]), where, out)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(is_type(value, t) for t in types):
                out.append("%s: %s is not of type %s" % (where, json.dumps(value), "/".join(types)))
                return   # the other keywords would only repeat the mismatch
        if "enum" in schema and not any(same_json(value, e) for e in schema["enum"]):
            out.append("%s: %s is not one of %s" % (where, json.dumps(value),
                                                    json.dumps(schema["enum"])))
        if "const" in schema and not same_json(value, schema["const"]):
            out.append("%s: %s is not %s" % (where, json.dumps(value), json.dumps(schema["const"])))
        if isinstance(value, str):
            # Lengths count code points, as the server's charge_utf8_chars does.
            if "minLength" in schema and len(value) < schema["minLength"]:
                out.append("%s: shorter than %d characters" % (where, schema["minLength"]))
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append("%s: longer than %d characters" % (where, schema["maxLength"]))
            if "pattern" in schema and not self._pattern(schema["pattern"]).search(value):
                out.append("%s: %s does not match %s" % (where, json.dumps(value[:80]),
                                                         schema["pattern"]))
        if is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append("%s: %s is less than %s" % (where, value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                out.append("%s: %s is more than %s" % (where, value, schema["maximum"]))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append("%s: %r is required" % (where, name))
            for name, v in value.items():
                if name in props:
                    self._check(v, props[name], "%s.%s" % (where, name), out)
                elif "additionalProperties" in schema:
                    self._check(v, schema["additionalProperties"], "%s.%s" % (where, name), out)
                if "propertyNames" in schema:
                    self._check(name, schema["propertyNames"], "%s{key %r}" % (where, name), out)
            if "minProperties" in schema and len(value) < schema["minProperties"]:
                out.append("%s: fewer than %d members" % (where, schema["minProperties"]))
            if "maxProperties" in schema and len(value) > schema["maxProperties"]:
                out.append("%s: more than %d members" % (where, schema["maxProperties"]))
        if isinstance(value, list):
            if "items" in schema:
                for i, v in enumerate(value):
                    self._check(v, schema["items"], "%s[%d]" % (where, i), out)
            if "minItems" in schema and len(value) < schema["minItems"]:
                out.append("%s: fewer than %d items" % (where, schema["minItems"]))
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append("%s: more than %d items" % (where, schema["maxItems"]))
        for sub in schema.get("allOf", []):
            self._check(value, sub, where, out)
        if "anyOf" in schema:
            if not any(not self.errors(value, sub, where) for sub in schema["anyOf"]):
                out.append("%s: matches none of anyOf" % where)
        if "oneOf" in schema:
            results = [self.errors(value, sub, where) for sub in schema["oneOf"]]
            matched = sum(1 for r in results if not r)
            if matched != 1:
                out.append("%s: matches %d of oneOf, not exactly one (%s)" % (
                    where, matched, "; ".join(e for r in results for e in r[:2])))


def schema_nodes(spec):
    """Every schema object in spec: components, parameters, headers, bodies and responses."""
    found = []

    def walk_schema(node, where):
        if not isinstance(node, dict):
            return
        found.append((where, node))
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                walk_schema(sub, "%s.%s.%s" % (where, key, name))
        for key in ("items", "additionalProperties", "propertyNames"):
            if isinstance(node.get(key), dict):
                walk_schema(node[key], "%s.%s" % (where, key))
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(node.get(key, [])):
                walk_schema(sub, "%s.%s[%d]" % (where, key, i))

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema":
                    walk_schema(value, where + ".schema")
                elif key == "schemas" and where == "$.components":
                    for name, sub in value.items():
                        walk_schema(sub, "%s.schemas.%s" % (where, name))
                else:
                    walk(value, "%s.%s" % (where, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s[%d]" % (where, i))

    walk(spec, "$")
    return found


# --- checking real answers against the spec ---

def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


class Contract:
    """The spec's operations and responses, and the checks of one answer against them."""

    def __init__(self, spec):
        self.spec = spec
        self.v = Validator(spec)
        # Exact paths first, so a literal path wins over a template that also matches it.
        self.paths = sorted(spec["paths"], key=lambda p: ("{" in p, p))

    def template(self, path):
        for t in self.paths:
            if template_regex(t).match(path):
                return t
        return None

    def methods(self, template):
        return {m.upper() for m in HTTP_METHODS if m in self.spec["paths"][template]}

    def operation(self, method, path):
        t = self.template(path)
        if t is None:
            return None, None
        return t, self.spec["paths"][t].get(method.lower())

    def header_problems(self, resp, response):
        problems = []
        for name, header in response.get("headers", {}).items():
            header = self.v.deref(header)
            value = resp.header(name)
            if value is None:
                if header.get("required"):
                    problems.append("required header %s is missing" % name)
                continue
            schema = header["schema"]
            typed = self.v.deref(schema)
            if typed.get("type") == "integer":
                if not re.fullmatch(r"-?[0-9]+", value):
                    problems.append("header %s: %r is not an integer" % (name, value))
                    continue
                value = int(value)
            problems += ["header " + e for e in self.v.errors(value, schema, name)]
        return problems

    def body_problems(self, resp, response):
        content = response.get("content")
        ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
        if not content:
            return [] if not resp.body else ["the response has a body but the spec lists none"]
        if ctype not in content:
            return ["Content-Type %r is not one of %s" % (ctype, sorted(content))]
        schema = content[ctype].get("schema", True)
        if ctype.endswith("json"):
            try:
                body = json.loads(resp.body.decode("utf-8"))
            except ValueError as e:
                return ["the body is not JSON (%s): %r" % (e, resp.body[:200])]
        else:
            body = resp.body.decode("utf-8")
        return self.v.errors(body, schema, "body")

    def response_problems(self, resp, response):
        response = self.v.deref(response)
        return self.header_problems(resp, response) + self.body_problems(resp, response)


def http_layer_refusal(resp):
    """True for civetweb's own refusals, answered before any route (see http_on_error)."""
    try:
        code = resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in ("request_malformed", "request_too_large")


class ContractMixin:
    """Assertions that a real answer is what openapi.yaml says it is."""

    @classmethod
    def setUpClass(cls):
        cls.contract = Contract(load_spec())
        super().setUpClass()

    def check(self, resp, method, url, status=None, allow_default=False):
        """
        Asserts that resp, the answer to method url, is a response the spec
        lists for that operation, and that its headers and body match it.
        Only the operation's explicit statuses count, except that with
        allow_default an HTTP-layer refusal (request_malformed,
        request_too_large: the request never reached the router) is checked
        against its default response. status, when given, is the status
        expected. Returns the parsed JSON body, or the text of other media
        types.
        """
        if status is not None:
            self.assertEqual(resp.status, status, "%s %s: %r" % (method, url, resp))
        path = urllib.parse.urlsplit(url).path
        template, op = self.contract.operation(method, path)
        self.assertIsNotNone(template, "%s %s: no path of openapi.yaml matches %s" % (method, url, path))
        self.assertIsNotNone(op, "%s %s: openapi.yaml has no %s on %s" % (method, url, method, template))
        responses = op["responses"]
        response = responses.get(str(resp.status))
        if allow_default and http_layer_refusal(resp):
            response = responses.get("default")
        self.assertIsNotNone(response, "%s %s answered %d, which openapi.yaml does not list for %s: %r"
                             % (method, url, resp.status, op["operationId"], resp))
        problems = self.contract.response_problems(resp, response)
        self.assertEqual(problems, [], "%s %s -> %d does not match openapi.yaml:\n  %s\n%r"
                         % (method, url, resp.status, "\n  ".join(problems), resp))
        SEEN.setdefault("%s %s" % (method.upper(), template), set()).add(resp.status)
        ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
        if ctype.endswith("json"):
            return resp.json()
        return resp.body.decode("utf-8")

    def check_component(self, resp, name, status):
        """Asserts that resp is components/responses/name (the router's own answers)."""
        self.assertEqual(resp.status, status, repr(resp))
        response = self.contract.spec["components"]["responses"][name]
        problems = self.contract.response_problems(resp, response)
        self.assertEqual(problems, [], "answer is not components/responses/%s:\n  %s\n%r"
                         % (name, "\n  ".join(problems), resp))
        return resp.json()

    def check_error(self, resp, method, url, status, code, param=Ellipsis):
        """check() for an error answer, plus its code (and param, unless Ellipsis)."""
        body = self.check(resp, method, url, status)
        self.assertEqual(body["error"]["code"], code, "%s %s: %r" % (method, url, body))
        if param is not Ellipsis:
            self.assertEqual(body["error"]["param"], param, "%s %s: %r" % (method, url, body))
        return body["error"]

    def schema_errors(self, value, ref):
        return self.contract.v.errors(value, {"$ref": ref})

    def request_body_schema(self, method, path):
        _, op = self.contract.operation(method, path)
        body = self.contract.v.deref(op["requestBody"])
        return body["content"]["application/json"]["schema"]

    def parameter(self, method, path, name):
        template, op = self.contract.operation(method, path)
        item = self.contract.spec["paths"][template]
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = self.contract.v.deref(p)
            if p["name"] == name:
                return p
        self.fail("openapi.yaml has no parameter %s on %s %s" % (name, method, template))

    def param_errors(self, method, path, name, raw):
        """The spec's complaints about the raw (string) value of a query or header parameter."""
        schema = self.parameter(method, path, name)["schema"]
        value = raw
        if self.contract.v.deref(schema).get("type") == "integer":
            if not re.fullmatch(r"-?[0-9]+", raw):
                return ["%r is not an integer" % raw]
            value = int(raw)
        return self.contract.v.errors(value, schema, name)


# --- helpers that drive the server ---

class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 200 on /ok and 500 on anything else."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200 if self.path == "/ok" else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class Relay:
    """A 'payments relay' on the module's database that gives up after one attempt."""

    def __init__(self, database_url):
        self.database_url = database_url
        self.proc = None
        self.log = tempfile.TemporaryFile()

    def __enter__(self):
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.database_url, "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
                    "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1", "PAYMENTS_LOG_LEVEL": "warn",
                    "PAYMENTS_NATS_URL": ""})
        self.proc = subprocess.Popen([harness.BIN, "relay"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, env=env, cwd=harness.ROOT)
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def raw_exchange(port, data, half_close=False, timeout=10):
    """Sends raw bytes (closing our side when half_close) and parses the one answer."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (ConnectionResetError, socket.timeout):
            pass
    return harness.parse_raw_response(b"".join(chunks))


# --- the tests ---

class ValidatorTest(ContractMixin, unittest.TestCase):
    """The validator and the checks are strict enough to fail."""

    CHARGE = {"id": "ch_" + "A" * 24, "object": "charge", "amount": 5000, "currency": "usd",
              "status": "succeeded", "source": "tok_visa", "description": None,
              "metadata": {"order_id": "123"}, "amount_refunded": 0, "refunded": False,
              "captured": True, "amount_captured": 5000, "released_at": None, "release_reason": None,
              "failure_code": None, "decline_code": None, "created": 1795318526}

    def test_validator_accepts_a_charge_and_rejects_wrong_ones(self):
        """The validator accepts a real charge and rejects each deliberately wrong one"""
        ref = "#/components/schemas/Charge"
        self.assertEqual(self.schema_errors(self.CHARGE, ref), [])
        wrong = {
            "a missing field": {k: v for k, v in self.CHARGE.items() if k != "created"},
            "an unknown field": dict(self.CHARGE, secret="x"),
            "a string amount": dict(self.CHARGE, amount="5000"),
            "a boolean amount": dict(self.CHARGE, amount=True),
            "a real amount": dict(self.CHARGE, amount=5000.0),
            "a zero amount": dict(self.CHARGE, amount=0),
            "an amount over the maximum": dict(self.CHARGE, amount=100000000),
            "an upper-case currency": dict(self.CHARGE, currency="USD"),
            "a malformed id": dict(self.CHARGE, id="ch_short"),
            "an id with a newline after it": dict(self.CHARGE, id="ch_" + "A" * 24 + "\n"),
            "a 1001-character description": dict(self.CHARGE, description="é" * 1001),
            "51 metadata keys": dict(self.CHARGE, metadata={"k%d" % i: "v" for i in range(51)}),
            "a 41-character metadata key": dict(self.CHARGE, metadata={"k" * 41: "v"}),
            "an empty metadata key": dict(self.CHARGE, metadata={"": "v"}),
            "a number as metadata value": dict(self.CHARGE, metadata={"k": 1}),
            "null for a boolean": dict(self.CHARGE, refunded=None),
            "an unknown failure code": dict(self.CHARGE, failure_code="expired_card"),
            "the object of another type": dict(self.CHARGE, object="refund"),
        }
        for what, body in wrong.items():
            with self.subTest(what):
                self.assertNotEqual(self.schema_errors(body, ref), [], "accepted %s" % what)

    def test_validator_handles_one_of_all_of_and_lists(self):
        """oneOf needs exactly one match, allOf all of them, and list items are checked one by one"""
        v = self.contract.v
        self.assertNotEqual(v.errors(1, {"oneOf": [{"type": "integer"}, {"minimum": 0}]}), [])
        self.assertNotEqual(v.errors("x", {"oneOf": [{"type": "integer"}, {"type": "null"}]}), [])
        self.assertEqual(v.errors(None, {"oneOf": [{"type": "integer"}, {"type": "null"}]}), [])
        event = {"id": "evt_" + "B" * 24, "object": "event", "api_version": "2024-06-20",
                 "type": "charge.succeeded", "created": 1, "data": {"object": dict(self.CHARGE)},
                 "livemode": False, "request": {"id": "req_x", "idempotency_key": "k"}}
        self.assertEqual(self.schema_errors(event, "#/components/schemas/Event"), [])
        event["data"]["object"]["object"] = "payout"
        self.assertNotEqual(self.schema_errors(event, "#/components/schemas/Event"), [])
        page = {"object": "list", "url": "/v1/charges", "has_more": False,
                "data": [self.CHARGE, dict(self.CHARGE, amount=-1)]}
        self.assertNotEqual(self.schema_errors(page, "#/components/schemas/ChargeList"), [])
        page["data"].pop()
        self.assertEqual(self.schema_errors(page, "#/components/schemas/ChargeList"), [])
        self.assertNotEqual(self.schema_errors(dict(page, url="/v1/refunds"),
                                               "#/components/schemas/ChargeList"), [])
        self.assertNotEqual(self.schema_errors(dict(page, extra=1),
                                               "#/components/schemas/ChargeList"), [])

    def test_validator_refuses_keywords_it_does_not_implement(self):
        """A schema keyword the validator does not implement, or a dangling $ref, is an error, not a pass"""
        with self.assertRaises(SchemaError):
            self.contract.v.errors("abc", {"type": "string", "maxLenght": 2})
        with self.assertRaises(SchemaError):
            self.contract.v.errors("abc", {"$ref": "#/components/schemas/NoSuchSchema"})

    def test_every_schema_in_the_spec_uses_only_implemented_keywords(self):
        """Every schema in openapi.yaml uses only keywords this validator implements, and every $ref resolves"""
        nodes = schema_nodes(self.contract.spec)
        self.assertGreater(len(nodes), 100)
        for where, node in nodes:
            unknown = set(node) - KEYWORDS - ANNOTATIONS
            self.assertEqual(unknown, set(), "%s uses %s" % (where, unknown))
            if "$ref" in node:
                self.contract.v.resolve(node["$ref"])

    def test_response_check_fails_on_a_wrong_answer(self):
        """The answer check fails on a missing header, a wrong body, a wrong Content-Type and an unlisted status"""
        good_headers = {"Content-Type": "application/json", "X-Request-Id": "req_1",
                        "Request-Id": "req_1", "Stripe-Version": "2024-06-20",
                        "Cache-Control": "no-store", "X-RateLimit-Limit": "200",
                        "X-RateLimit-Remaining": "199", "X-RateLimit-Reset": "1"}

        def answer(status, headers, body):
            msg = http.client.parse_headers(harness._BytesLines(b"".join(
                ("%s: %s\r\n" % kv).encode() for kv in headers.items()) + b"\r\n"))
            return harness.Response(status, msg, json.dumps(body).encode())

        url = "/v1/charges/ch_" + "A" * 24
        self.check(answer(200, good_headers, self.CHARGE), "GET", url, 200)
        cases = {
            "no X-Request-Id": answer(200, {k: v for k, v in good_headers.items()
                                            if k != "X-Request-Id"}, self.CHARGE),
            "a non-integer X-RateLimit-Reset": answer(200, dict(good_headers, **{
                "X-RateLimit-Reset": "soon"}), self.CHARGE),
            "a body that is not a charge": answer(200, good_headers, dict(self.CHARGE, amount="1")),
            "text/html": answer(200, dict(good_headers, **{"Content-Type": "text/html"}),
                                self.CHARGE),
            "a status the operation does not list": answer(409, good_headers, self.CHARGE),
            "a 404 whose code is another status's": answer(404, good_headers, {"error": {
                "type": "invalid_request_error", "code": "parameter_missing",
                "message": "x", "param": None}}),
        }
        for what, resp in cases.items():
            with self.subTest(what):
                with self.assertRaises(AssertionError):
                    self.check(resp, "GET", url)


class ContractTest(ContractMixin, harness.ServiceTestCase):
    """Every endpoint, its successes and its main errors, against openapi.yaml."""

    server_env = SERVER_ENV

    def call(self, method, url, key=None, body=None, idem=None, headers=None,
             content_type="application/json"):
        h = {}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None and content_type is not None:
            h["Content-Type"] = content_type
        if idem is not None:
            h["Idempotency-Key"] = idem
        h.update(headers or {})
        return self.server.request(method, url, body, h)

    def new_charge(self, key, amount=2000, source="tok_visa", **extra):
        """Creates a charge and returns its id (also for a declined one)."""
        resp = self.call("POST", "/v1/charges", key,
                         harness.charge_body(amount=amount, source=source, **extra), new_key())
        body = self.check(resp, "POST", "/v1/charges")
        return body["id"] if resp.status == 201 else body["error"]["charge"]

    # --- charges ---

    def test_charge_creation_and_replays_match_the_spec(self):
        """POST /v1/charges and POST /charge answer 201 and 402, first and replayed, as openapi.yaml says"""
        _, key = self.make_user()
        for path in ("/v1/charges", "/charge"):
            idem = new_key()
            body = harness.charge_body(description="é" * 1000,
                                       metadata={"k%02d" % i: "v" * 500 for i in range(50)})
            first = self.call("POST", path, key, body, idem)
            charge = self.check(first, "POST", path, 201)
            self.assertEqual(first.header("Idempotent-Replayed"), "false")
            again = self.call("POST", path, key, body, idem)
            self.assertEqual(self.check(again, "POST", path, 201), charge)
            self.assertEqual(again.header("Idempotent-Replayed"), "true")
            self.assertEqual(again.body, first.body)
        for source, decline in (("tok_chargeDeclined", "generic_decline"),
                                ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")):
            idem = new_key()
            first = self.call("POST", "/v1/charges", key, harness.charge_body(source=source), idem)
            err = self.check_error(first, "POST", "/v1/charges", 402, "card_declined", None)
            self.assertEqual(err["decline_code"], decline)
            again = self.call("POST", "/v1/charges", key, harness.charge_body(source=source), idem)
            self.check(again, "POST", "/v1/charges", 402)
            self.assertEqual((again.header("Idempotent-Replayed"), again.body), ("true", first.body))
            stored = self.call("GET", "/v1/charges/" + err["charge"], key)
            self.assertEqual(self.check(stored, "GET", "/v1/charges/{id}", 200)["status"], "failed")

    def test_charge_refusals_match_the_spec(self):
        """Every 400, 401, 409, 413 and 415 of POST /v1/charges matches openapi.yaml"""
        _, key = self.make_user()
        good = harness.charge_body()
        cases = [
            ("not JSON", b"{", "invalid_json", None),
            ("not an object", [], "invalid_json", None),
            ("an unknown field", dict(good, color="red"), "parameter_unknown", "color"),
            ("a server-owned field", dict(good, status="succeeded"), "parameter_unknown", "status"),
            ("no amount", harness.charge_body(amount=harness.DROP), "parameter_missing", "amount"),
            ("a string amount", dict(good, amount="20"), "parameter_invalid_type", "amount"),
            ("a zero amount", dict(good, amount=0), "amount_too_small", "amount"),
            ("a huge amount", dict(good, amount=100000000), "amount_too_large", "amount"),
            ("an unknown currency", dict(good, currency="xxx"), "invalid_currency", "currency"),
            ("an unknown token", dict(good, source="tok_nope"), "invalid_source", "source"),
            ("a long description", dict(good, description="d" * 1001), "parameter_too_long",
             "description"),
            ("bad metadata", dict(good, metadata={"k": 1}), "invalid_metadata", "metadata"),
        ]
        for what, body, code, param in cases:
            with self.subTest(what):
                resp = self.call("POST", "/v1/charges", key, body, new_key())
                self.check_error(resp, "POST", "/v1/charges", 400, code, param)
        resp = self.call("POST", "/v1/charges", key, good)
        self.check_error(resp, "POST", "/v1/charges", 400, "idempotency_key_missing")
        resp = self.call("POST", "/v1/charges", key, good, "k" * 256)
        self.check_error(resp, "POST", "/v1/charges", 400, "idempotency_key_invalid")
        resp = self.call("POST", "/v1/charges", None, good, new_key())
        self.check_error(resp, "POST", "/v1/charges", 401, "api_key_missing")
        resp = self.call("POST", "/v1/charges", "sk_test_" + "x" * 44, good, new_key())
        self.check_error(resp, "POST", "/v1/charges", 401, "api_key_invalid")
        idem = new_key()
        self.check(self.call("POST", "/v1/charges", key, good, idem), "POST", "/v1/charges", 201)
        resp = self.call("POST", "/v1/charges", key, dict(good, amount=1), idem)
        self.check_error(resp, "POST", "/v1/charges", 409, "idempotency_key_reused")
        resp = self.call("POST", "/v1/charges", key, b"{" + b" " * (64 * 1024) + b"}", new_key())
        self.check_error(resp, "POST", "/v1/charges", 413, "body_too_large")
        resp = self.call("POST", "/v1/charges", key, json.dumps(good), new_key(),
                         content_type="text/plain")
        self.check_error(resp, "POST", "/v1/charges", 415, "unsupported_media_type")
        # A body shorter than its Content-Length: the client closes its side early.
        head = ("POST /v1/charges HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Idempotency-Key: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n{\"amount\"" % (key, new_key())).encode()
        resp = raw_exchange(self.server.port, head, half_close=True)
        self.check_error(resp, "POST", "/v1/charges", 400, "body_unreadable")

    def test_a_key_in_use_answers_409_with_retry_after(self):
        """A request whose Idempotency-Key another transaction holds answers 409 idempotency_key_in_use as openapi.yaml says"""
        user, key = self.make_user()
        idem = new_key()
        with harness.open_transaction(self.db, harness.key_taken_sql(user, idem)):
            resp = self.call("POST", "/v1/charges", key, harness.charge_body(), idem)
            self.check_error(resp, "POST", "/v1/charges", 409, "idempotency_key_in_use", None)
            self.assertIsNotNone(resp.header("Retry-After"), "409 in_use without Retry-After")

    def test_charge_reads_and_lists_match_the_spec(self):
        """GET /v1/charges/{id} and GET /v1/charges answer 200, 400 and 404 as openapi.yaml says"""
        _, key = self.make_user()
        _, other = self.make_user()
        ids = [self.new_charge(key, amount=100 + i) for i in range(3)]
        theirs = self.new_charge(other)
        for cid in ids:
            self.check(self.call("GET", "/v1/charges/" + cid, key), "GET", "/v1/charges/{id}", 200)
        for cid in (theirs, "ch_" + "0" * 24, "ch_short"):
            resp = self.call("GET", "/v1/charges/" + cid, key)
            self.check_error(resp, "GET", "/v1/charges/{id}", 404, "resource_missing", "id")
        page = self.check(self.call("GET", "/v1/charges?limit=2", key), "GET", "/v1/charges", 200)
        self.assertEqual(([c["id"] for c in page["data"]], page["has_more"]),
                         (ids[::-1][:2], True))
        for query in ("starting_after=" + ids[1], "ending_before=" + ids[0], "created[gte]=0",
                      "created%5Blt%5D=999999999999", "limit=100"):
            self.check(self.call("GET", "/v1/charges?" + query, key), "GET", "/v1/charges", 200)
        for query, param in (("limit=0", "limit"), ("starting_after=" + theirs, "starting_after"),
                             ("starting_after=%s&ending_before=%s" % (ids[0], ids[1]),
                              "ending_before"),
                             ("created[gte]=soon", "created[gte]"),
                             ("created[lt]=-1", "created[lt]")):
            resp = self.call("GET", "/v1/charges?" + query, key)
            self.check_error(resp, "GET", "/v1/charges", 400, "parameter_invalid", param)
        resp = self.call("GET", "/v1/charges", None)
        self.check_error(resp, "GET", "/v1/charges", 401, "api_key_missing")

    # --- captures ---

    def test_captures_match_the_spec(self):
        """POST /v1/charges/{id}/capture answers 200, 400, 404 and 409 as openapi.yaml says"""
        t = "/v1/charges/{id}/capture"
        _, key = self.make_user()
        _, other = self.make_user()
        charge = self.new_charge(key, amount=1000, capture=False)
        path = "/v1/charges/%s/capture" % charge
        idem = new_key()
        resp = self.call("POST", path, key, {"amount": 1001}, new_key())
        self.check_error(resp, "POST", t, 400, "amount_too_large", "amount")
        resp = self.call("POST", path, key, {"amount_to_capture": 1}, new_key())
        self.check_error(resp, "POST", t, 400, "parameter_unknown", "amount_to_capture")
        first = self.call("POST", path, key, {"amount": 700}, idem)
        captured = self.check(first, "POST", t, 200)
        self.assertEqual((captured["captured"], captured["amount_captured"]), (True, 700))
        again = self.call("POST", path, key, {"amount": 700}, idem)
        self.assertEqual(self.check(again, "POST", t, 200), captured)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        resp = self.call("POST", path, key, {"amount": 1}, idem)
        self.check_error(resp, "POST", t, 409, "idempotency_key_reused")
        resp = self.call("POST", path, key, {}, new_key())
        self.check_error(resp, "POST", t, 400, "charge_already_captured")
        failed = self.new_charge(key, source="tok_chargeDeclined", capture=False)
        resp = self.call("POST", "/v1/charges/%s/capture" % failed, key, {}, new_key())
        self.check_error(resp, "POST", t, 400, "charge_not_capturable")
        released = self.new_charge(key, capture=False)
        self.check(self.call("POST", "/v1/refunds", key, {"charge": released}, new_key()),
                   "POST", "/v1/refunds", 201)
        resp = self.call("POST", "/v1/charges/%s/capture" % released, key, {}, new_key())
        self.check_error(resp, "POST", t, 400, "charge_expired_for_capture")
        for cid in (self.new_charge(other, capture=False), "ch_" + "0" * 24, "ch_short"):
            resp = self.call("POST", "/v1/charges/%s/capture" % cid, key, {}, new_key())
            self.check_error(resp, "POST", t, 404, "resource_missing", "id")
        resp = self.call("POST", path, key, {})
        self.check_error(resp, "POST", t, 400, "idempotency_key_missing")
        resp = self.call("POST", path, None, {}, new_key())
        self.check_error(resp, "POST", t, 401, "api_key_missing")

    # --- updates ---

    def test_charge_updates_match_the_spec(self):
        """POST /v1/charges/{id} answers 200, 400 (idempotency_error with Stripe-Version), 404 and 409 as openapi.yaml says"""
        t = "/v1/charges/{id}"
        _, key = self.make_user()
        _, other = self.make_user()
        charge = self.new_charge(key, amount=1000)
        path = "/v1/charges/" + charge
        idem = new_key()
        body = {"description": "Shipped", "metadata": {"order_id": "", "carrier": "ups"}}
        first = self.call("POST", path, key, body, idem)
        updated = self.check(first, "POST", t, 200)
        self.assertEqual((updated["description"], updated["metadata"]), ("Shipped", {"carrier": "ups"}))
        again = self.call("POST", path, key, "description=Shipped&metadata[order_id]=&metadata[carrier]=ups",
                          idem, content_type="application/x-www-form-urlencoded")
        self.assertEqual((self.check(again, "POST", t, 200), again.header("Idempotent-Replayed")),
                         (updated, "true"))
        self.check(self.call("POST", path, key, "", new_key(), content_type="application/x-www-form-urlencoded"),
                   "POST", t, 200)
        self.check(self.call("POST", path, key, {"metadata": "", "description": None}, new_key()), "POST", t, 200)
        resp = self.call("POST", path, key, {"description": "other"}, idem)
        self.check_error(resp, "POST", t, 409, "idempotency_key_reused")
        resp = self.call("POST", path, key, {"description": "other"}, idem,
                         headers={"Stripe-Version": "2024-06-20"})
        self.check_error(resp, "POST", t, 400, "idempotency_key_reused")
        self.assertEqual(resp.json()["error"]["type"], "idempotency_error")
        for bad, code, param in (({"amount": 1}, "parameter_unknown", "amount"),
                                 ({"description": "d" * 1001}, "parameter_too_long", "description"),
                                 ({"metadata": "x"}, "invalid_metadata", "metadata"),
                                 ({"description": 1}, "parameter_invalid_type", "description")):
            resp = self.call("POST", path, key, bad, new_key())
            self.check_error(resp, "POST", t, 400, code, param)
        for cid in (self.new_charge(other), "ch_" + "0" * 24, "ch_short"):
            resp = self.call("POST", "/v1/charges/" + cid, key, {"description": "x"}, new_key())
            self.check_error(resp, "POST", t, 404, "resource_missing", "id")
        resp = self.call("POST", path, key, {})
        self.check_error(resp, "POST", t, 400, "idempotency_key_missing")
        resp = self.call("POST", path, None, {}, new_key())
        self.check_error(resp, "POST", t, 401, "api_key_missing")

    def test_refund_updates_match_the_spec(self):
        """POST /v1/refunds/{id} answers 200, 400 and 404 as openapi.yaml says"""
        t = "/v1/refunds/{id}"
        _, key = self.make_user()
        charge = self.new_charge(key, amount=1000)
        refund = self.check(self.call("POST", "/v1/refunds", key, {"charge": charge, "amount": 100}, new_key()),
                            "POST", "/v1/refunds", 201)
        path = "/v1/refunds/" + refund["id"]
        resp = self.call("POST", path, key, "metadata[ticket]=42", new_key(),
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(self.check(resp, "POST", t, 200)["metadata"], {"ticket": "42"})
        self.check(self.call("POST", path, key, {"metadata": ""}, new_key()), "POST", t, 200)
        resp = self.call("POST", path, key, {"reason": "duplicate"}, new_key())
        self.check_error(resp, "POST", t, 400, "parameter_unknown", "reason")
        for rid in ("re_" + "0" * 24, "re_short"):
            resp = self.call("POST", "/v1/refunds/" + rid, key, {"metadata": {}}, new_key())
            self.check_error(resp, "POST", t, 404, "resource_missing", "id")

    # --- refunds ---

    def test_refunds_match_the_spec(self):
        """POST, GET and list of /v1/refunds answer 201, 400, 404 and 409 as openapi.yaml says"""
        _, key = self.make_user()
        _, other = self.make_user()
        charge = self.new_charge(key, amount=1000)
        idem = new_key()
        body = {"charge": charge, "amount": 400, "reason": "requested_by_customer",
                "metadata": {"ticket": "42"}}
        first = self.call("POST", "/v1/refunds", key, body, idem)
        refund = self.check(first, "POST", "/v1/refunds", 201)
        self.assertEqual(first.header("Idempotent-Replayed"), "false")
        again = self.call("POST", "/v1/refunds", key, body, idem)
        self.assertEqual(self.check(again, "POST", "/v1/refunds", 201), refund)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        resp = self.call("POST", "/v1/refunds", key, dict(body, amount=1), idem)
        self.check_error(resp, "POST", "/v1/refunds", 409, "idempotency_key_reused")
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge, "amount": 601}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 400, "amount_too_large", "amount")
        rest = self.call("POST", "/v1/refunds", key, {"charge": charge, "amount": None}, new_key())
        self.assertEqual(self.check(rest, "POST", "/v1/refunds", 201)["amount"], 600)
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 400, "charge_already_refunded")
        failed = self.new_charge(key, source="tok_chargeDeclined")
        resp = self.call("POST", "/v1/refunds", key, {"charge": failed}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 400, "charge_not_refundable")
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge, "reason": "bored"}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 400, "parameter_invalid", "reason")
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge, "why": 1}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 400, "parameter_unknown", "why")
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge})
        self.check_error(resp, "POST", "/v1/refunds", 400, "idempotency_key_missing")
        for cid in (self.new_charge(other), "ch_" + "0" * 24, "ch_short"):
            resp = self.call("POST", "/v1/refunds", key, {"charge": cid}, new_key())
            self.check_error(resp, "POST", "/v1/refunds", 404, "resource_missing", "charge")
        resp = self.call("POST", "/v1/refunds", key, {"charge": charge}, new_key(),
                         content_type="multipart/form-data; boundary=x")
        self.check_error(resp, "POST", "/v1/refunds", 415, "unsupported_media_type")
        resp = self.call("POST", "/v1/refunds", None, {"charge": charge}, new_key())
        self.check_error(resp, "POST", "/v1/refunds", 401, "api_key_missing")

        got = self.check(self.call("GET", "/v1/refunds/" + refund["id"], key),
                         "GET", "/v1/refunds/{id}", 200)
        self.assertEqual(got, refund)
        for rid in ("re_" + "0" * 24, "re_bad"):
            resp = self.call("GET", "/v1/refunds/" + rid, key)
            self.check_error(resp, "GET", "/v1/refunds/{id}", 404, "resource_missing", "id")
        resp = self.call("GET", "/v1/refunds/" + refund["id"], other)
        self.check_error(resp, "GET", "/v1/refunds/{id}", 404, "resource_missing", "id")
        page = self.check(self.call("GET", "/v1/refunds?charge=" + charge, key),
                          "GET", "/v1/refunds", 200)
        self.assertEqual(len(page["data"]), 2)
        self.check(self.call("GET", "/v1/refunds?limit=1&starting_after=" + refund["id"], key),
                   "GET", "/v1/refunds", 200)
        for query, param in (("charge=ch_bad", "charge"), ("limit=101", "limit"),
                             ("ending_before=re_bad", "ending_before")):
            resp = self.call("GET", "/v1/refunds?" + query, key)
            self.check_error(resp, "GET", "/v1/refunds", 400, "parameter_invalid", param)

    # --- events ---

    def test_events_match_the_spec(self):
        """GET /v1/events and /v1/events/{id} answer 200, 400 and 404 as openapi.yaml says"""
        _, key = self.make_user()
        _, other = self.make_user()
        charge = self.new_charge(key)
        self.new_charge(key, source="tok_chargeDeclined")
        refund = self.call("POST", "/v1/refunds", key, {"charge": charge, "amount": 5}, new_key())
        self.check(refund, "POST", "/v1/refunds", 201)
        page = self.check(self.call("GET", "/v1/events?limit=100", key), "GET", "/v1/events", 200)
        self.assertEqual(sorted(e["type"] for e in page["data"]),
                         ["charge.failed", "charge.refunded", "charge.succeeded", "refund.created"])
        for event in page["data"]:
            kind = "refund" if event["type"] == "refund.created" else "charge"
            self.assertEqual(event["data"]["object"]["object"], kind, event)
            got = self.check(self.call("GET", "/v1/events/" + event["id"], key),
                             "GET", "/v1/events/{id}", 200)
            self.assertEqual(got, event)
            resp = self.call("GET", "/v1/events/" + event["id"], other)
            self.check_error(resp, "GET", "/v1/events/{id}", 404, "resource_missing", "id")
        for etype in ("charge.succeeded", "charge.failed", "charge.refunded", "refund.created"):
            page = self.check(self.call("GET", "/v1/events?type=" + etype, key),
                              "GET", "/v1/events", 200)
            self.assertEqual([e["type"] for e in page["data"]], [etype])
        for query, param in (("type=charge.nope", "type"), ("type=*", "type"),
                             ("starting_after=evt_bad", "starting_after")):
            resp = self.call("GET", "/v1/events?" + query, key)
            self.check_error(resp, "GET", "/v1/events", 400, "parameter_invalid", param)
        resp = self.call("GET", "/v1/events/evt_" + "0" * 24, key)
        self.check_error(resp, "GET", "/v1/events/{id}", 404, "resource_missing", "id")

    # --- webhook endpoints and deliveries ---

    def test_webhook_endpoints_match_the_spec(self):
        """POST, GET, list and DELETE of /v1/webhook_endpoints answer as openapi.yaml says"""
        _, key = self.make_user()
        _, other = self.make_user()
        resp = self.call("POST", "/v1/webhook_endpoints", key,
                         {"url": DEAD_URL, "enabled_events": ["charge.succeeded", "refund.created"]})
        created = self.check(resp, "POST", "/v1/webhook_endpoints", 201)
        self.assertIsNone(resp.header("Idempotent-Replayed"))
        wid = created["id"]
        got = self.check(self.call("GET", "/v1/webhook_endpoints/" + wid, key),
                         "GET", "/v1/webhook_endpoints/{id}", 200)
        self.assertEqual(got, {k: v for k, v in created.items() if k != "secret"})
        page = self.check(self.call("GET", "/v1/webhook_endpoints", key),
                          "GET", "/v1/webhook_endpoints", 200)
        self.assertEqual(page["data"], [got])
        for who, wid_ in ((other, wid), (key, "we_" + "0" * 24), (key, "we_bad")):
            resp = self.call("GET", "/v1/webhook_endpoints/" + wid_, who)
            self.check_error(resp, "GET", "/v1/webhook_endpoints/{id}", 404, "resource_missing", "id")
            resp = self.call("DELETE", "/v1/webhook_endpoints/" + wid_, who)
            self.check_error(resp, "DELETE", "/v1/webhook_endpoints/{id}", 404, "resource_missing",
                             "id")
        gone = self.check(self.call("DELETE", "/v1/webhook_endpoints/" + wid, key),
                          "DELETE", "/v1/webhook_endpoints/{id}", 200)
        self.assertEqual(gone, {"id": wid, "object": "webhook_endpoint", "deleted": True})
        resp = self.call("DELETE", "/v1/webhook_endpoints/" + wid, key)
        self.check_error(resp, "DELETE", "/v1/webhook_endpoints/{id}", 404, "resource_missing", "id")
        resp = self.call("GET", "/v1/webhook_endpoints/" + wid, key)
        self.check_error(resp, "GET", "/v1/webhook_endpoints/{id}", 404, "resource_missing", "id")
        cases = [
            ("no url", {"enabled_events": ["*"]}, "parameter_missing", "url"),
            ("a number as url", {"url": 5, "enabled_events": ["*"]}, "parameter_invalid_type", "url"),
            ("an ftp url", {"url": "ftp://127.0.0.1/x", "enabled_events": ["*"]},
             "parameter_invalid", "url"),
            ("a 2049-character url", {"url": "http://127.0.0.1/" + "a" * 2032,
                                      "enabled_events": ["*"]}, "parameter_too_long", "url"),
            ("no events", {"url": DEAD_URL}, "parameter_missing", "enabled_events"),
            ("an empty event list", {"url": DEAD_URL, "enabled_events": []}, "parameter_invalid",
             "enabled_events"),
            ("an unknown event", {"url": DEAD_URL, "enabled_events": ["charge.nope"]},
             "parameter_invalid", "enabled_events"),
            ("a secret", {"url": DEAD_URL, "enabled_events": ["*"], "secret": "whsec_x"},
             "parameter_unknown", "secret"),
        ]
        for what, body, code, param in cases:
            with self.subTest(what):
                resp = self.call("POST", "/v1/webhook_endpoints", key, body)
                self.check_error(resp, "POST", "/v1/webhook_endpoints", 400, code, param)
        resp = self.call("POST", "/v1/webhook_endpoints", key, "{", content_type="application/json")
        self.check_error(resp, "POST", "/v1/webhook_endpoints", 400, "invalid_json")
        resp = self.call("POST", "/v1/webhook_endpoints", key, json.dumps({"url": DEAD_URL}),
                         content_type=None)
        self.check_error(resp, "POST", "/v1/webhook_endpoints", 415, "unsupported_media_type")
        resp = self.call("GET", "/v1/webhook_endpoints", None)
        self.check_error(resp, "GET", "/v1/webhook_endpoints", 401, "api_key_missing")

    def test_webhook_deliveries_match_the_spec(self):
        """GET /v1/webhook_deliveries and POST .../{id}/retry answer as openapi.yaml says, for succeeded, dead and pending deliveries"""
        _, key = self.make_user()
        _, other = self.make_user()
        with Receiver() as receiver:
            ok = self.check(self.call("POST", "/v1/webhook_endpoints", key, {
                "url": receiver.base + "/ok", "enabled_events": ["charge.succeeded"]}),
                "POST", "/v1/webhook_endpoints", 201)
            bad = self.check(self.call("POST", "/v1/webhook_endpoints", key, {
                "url": receiver.base + "/fail", "enabled_events": ["*"]}),
                "POST", "/v1/webhook_endpoints", 201)
            self.new_charge(key)
            with Relay(self.db.app_url):
                def settled():
                    page = self.check(self.call("GET", "/v1/webhook_deliveries", key),
                                      "GET", "/v1/webhook_deliveries", 200)
                    done = [d for d in page["data"] if d["status"] != "pending"]
                    return page if len(page["data"]) == 2 and len(done) == 2 else None
                page = poll(settled, timeout=20, message="one delivery succeeded and one dead")
        by_endpoint = {d["webhook_endpoint"]: d for d in page["data"]}
        self.assertEqual(by_endpoint[ok["id"]]["status"], "succeeded")
        dead = by_endpoint[bad["id"]]
        self.assertEqual((dead["status"], dead["last_status_code"]), ("dead", 500))
        for query, count in (("status=dead", 1), ("status=succeeded", 1), ("status=pending", 0),
                             ("event=" + dead["event"], 2), ("webhook_endpoint=" + ok["id"], 1),
                             ("limit=1", 1)):
            page = self.check(self.call("GET", "/v1/webhook_deliveries?" + query, key),
                              "GET", "/v1/webhook_deliveries", 200)
            self.assertEqual(len(page["data"]), count, query)
        for query, param in (("status=failed", "status"), ("event=evt_bad", "event"),
                             ("webhook_endpoint=we_bad", "webhook_endpoint"), ("limit=0", "limit"),
                             ("limit=x", "limit")):
            resp = self.call("GET", "/v1/webhook_deliveries?" + query, key)
            self.check_error(resp, "GET", "/v1/webhook_deliveries", 400, "parameter_invalid", param)
        url = "/v1/webhook_deliveries/%s/retry" % dead["id"]
        retried = self.check(self.call("POST", url, key), "POST", "/v1/webhook_deliveries/{id}/retry",
                             200)
        self.assertEqual((retried["status"], retried["attempts"]), ("pending", 0))
        self.assertIsInstance(retried["next_attempt_at"], int)
        self.assertEqual(len(retried["attempt_history"]), 1)
        for who, did in ((other, dead["id"]), (key, "wd_" + "0" * 24), (key, "wd_bad")):
            resp = self.call("POST", "/v1/webhook_deliveries/%s/retry" % did, who)
            self.check_error(resp, "POST", "/v1/webhook_deliveries/{id}/retry", 404,
                             "resource_missing", "id")
        resp = self.call("GET", "/v1/webhook_deliveries", None)
        self.check_error(resp, "GET", "/v1/webhook_deliveries", 401, "api_key_missing")

    # --- operations and the router ---

    def test_probes_metrics_and_the_document_match_the_spec(self):
        """GET /healthz, /readyz and /v1/openapi.yaml answer as openapi.yaml says, without a key; /metrics is not on the API's port"""
        self.assertEqual(self.check(self.call("GET", "/healthz"), "GET", "/healthz", 200),
                         {"status": "ok"})
        self.assertEqual(self.check(self.call("GET", "/readyz"), "GET", "/readyz", 200),
                         {"status": "ready"})
        resp = self.call("GET", "/metrics")
        self.assertEqual((resp.status, resp.json()["error"]["code"]), (404, "route_not_found"), resp)
        resp = self.call("GET", "/v1/openapi.yaml")
        self.assertNotEqual(resp.status, 404, "GET /v1/openapi.yaml is not routed (%r): add it to"
                            " the routing table (src/api_openapi.c)" % (resp,))
        self.check(resp, "GET", "/v1/openapi.yaml", 200)
        with open(SPEC_YAML, "rb") as f:
            self.assertEqual(resp.body, f.read(), "GET /v1/openapi.yaml is not openapi.yaml as it is now")

    def test_other_methods_answer_405_with_the_spec_methods_in_allow(self):
        """Every path of openapi.yaml answers 405 with Allow listing exactly its methods to any other method"""
        _, key = self.make_user()
        for template in self.contract.paths:
            path = template.replace("{id}", "x_" + "0" * 24)
            methods = self.contract.methods(template)
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
                with self.subTest(method=method, path=template):
                    resp = self.call(method, path, key)
                    self.check_component(resp, "MethodNotAllowed", 405)
                    allow = {m.strip() for m in resp.header("Allow").split(",")}
                    self.assertEqual(allow, methods, "Allow of %s" % template)

    def test_unknown_urls_answer_route_not_found(self):
        """A URL that no path of openapi.yaml matches answers 404 route_not_found"""
        _, key = self.make_user()
        for path in ("/", "/v1", "/v2/charges", "/v1/charges/ch_x/refunds", "/v1/webhook_deliveries/x",
                     "/v1/charges/"):
            with self.subTest(path):
                self.assertIsNone(self.contract.template(path), path)
                resp = self.call("GET", path, key)
                err = self.check_component(resp, "RouteNotFound", 404)
                self.assertEqual(err["error"]["code"], "route_not_found")

    def test_request_ids_follow_the_spec(self):
        """A sane X-Request-Id is echoed and any other is replaced by one the spec allows"""
        rid = "client.trace:42_" + "a" * 100
        resp = self.call("GET", "/healthz", headers={"X-Request-Id": rid})
        self.check(resp, "GET", "/healthz", 200)
        self.assertEqual(resp.header("X-Request-Id"), rid)
        for sent in ("has space", "x" * 129, "semi;colon"):
            with self.subTest(sent):
                self.assertNotEqual(self.param_errors("GET", "/healthz", "X-Request-Id", sent), [])
                resp = self.call("GET", "/healthz", headers={"X-Request-Id": sent})
                self.check(resp, "GET", "/healthz", 200)
                self.assertRegex(resp.header("X-Request-Id"), harness.REQUEST_ID_RE)

    def test_an_unreadable_request_gets_the_default_answer(self):
        """A request the HTTP layer cannot read answers the default response of openapi.yaml: an error with X-Request-Id"""
        requests = {
            "a request line without URL or version": b"BLAH\r\n\r\n",
            "a header line without a colon": b"GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n",
            "headers over 16 KiB": b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
        }
        for what, data in requests.items():
            with self.subTest(what):
                resp = raw_exchange(self.server.port, data)
                self.assertTrue(http_layer_refusal(resp), repr(resp))
                self.check(resp, "GET", "/healthz", allow_default=True)

    # --- requests: what the spec accepts, the server accepts ---

    def assert_request_agrees(self, what, spec_errors, resp, accepted_statuses):
        accepted = resp.status in accepted_statuses
        self.assertEqual(accepted, not spec_errors,
                         "%s: the spec %s it%s but the server answered %r" % (
                             what, "refuses" if spec_errors else "accepts",
                             " (%s)" % "; ".join(spec_errors) if spec_errors else "", resp))

    def test_charge_bodies_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every charge body that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        schema = self.request_body_schema("POST", "/v1/charges")
        base = {"amount": 2000, "currency": "usd", "source": "tok_visa"}
        sources = self.contract.v.deref(schema)["properties"]["source"]["enum"]
        bodies = [("the minimum", base), ("null description", dict(base, description=None)),
                  ("null metadata", dict(base, metadata=None)), ("a list", []),
                  ("a JSON string", '"x"'), ("not JSON", "{"),
                  ("1000 characters", dict(base, description="é" * 1000)),
                  ("1001 characters", dict(base, description="é" * 1001)),
                  ("50 keys", dict(base, metadata={"k%d" % i: "" for i in range(50)})),
                  ("51 keys", dict(base, metadata={"k%d" % i: "" for i in range(51)})),
                  ("a 40-character key", dict(base, metadata={"é" * 40: "v"})),
                  ("a 41-character key", dict(base, metadata={"é" * 41: "v"})),
                  ("an empty key", dict(base, metadata={"": "v"})),
                  ("a 500-character value", dict(base, metadata={"k": "🙂" * 500})),
                  ("a 501-character value", dict(base, metadata={"k": "🙂" * 501})),
                  ("a number value", dict(base, metadata={"k": 5})),
                  ("a list as metadata", dict(base, metadata=["k"])),
                  ("a number as description", dict(base, description=5)),
                  ("a null amount", dict(base, amount=None)), ("a real amount", dict(base, amount=5.0)),
                  ("a negative amount", dict(base, amount=-1)), ("a boolean amount", dict(base, amount=True)),
                  ("a string amount", dict(base, amount="100")),
                  ("a null source", dict(base, source=None)),
                  ("a 256-character source", dict(base, source="t" * 256)),
                  ("an id", dict(base, id="ch_" + "A" * 24)), ("a customer", dict(base, customer="c")),
                  ("a declined card", dict(base, source="tok_chargeDeclinedInsufficientFunds"))]
        bodies += [("amount %d" % a, dict(base, amount=a)) for a in (0, 1, 99999999, 100000000)]
        bodies += [("currency %s" % c, dict(base, currency=c))
                   for c in self.contract.spec["components"]["schemas"]["Currency"]["enum"]]
        bodies += [("currency %r" % c, dict(base, currency=c)) for c in ("USD", "us", "usdd", "xxx", 1)]
        bodies += [("source %s" % s, dict(base, source=s)) for s in sources]
        bodies += [("no %s" % k, {x: y for x, y in base.items() if x != k}) for k in base]
        for what, body in bodies:
            with self.subTest(what):
                resp = self.call("POST", "/v1/charges", key, body, new_key())
                self.check(resp, "POST", "/v1/charges")
                sent = json.loads(body) if isinstance(body, str) and body != "{" else body
                spec = (["not JSON"] if body == "{" else
                        self.contract.v.errors(sent, schema, "body"))
                self.assert_request_agrees(what, spec, resp, (201, 402))

    def test_refund_bodies_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every refund body that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        schema = self.request_body_schema("POST", "/v1/refunds")
        bodies = [("the minimum", {}), ("a null amount", {"amount": None}),
                  ("amount 1", {"amount": 1}), ("amount 99999999", {"amount": 99999999}),
                  ("amount 0", {"amount": 0}), ("amount 100000000", {"amount": 100000000}),
                  ("a string amount", {"amount": "5"}), ("a real amount", {"amount": 5.0}),
                  ("a null reason", {"reason": None}), ("an unknown reason", {"reason": "bored"}),
                  ("null metadata", {"metadata": None}),
                  ("51 metadata keys", {"metadata": {"k%d" % i: "v" for i in range(51)}}),
                  ("an unknown field", {"currency": "usd"}), ("a malformed charge", {"charge": "ch_x"}),
                  ("a number as charge", {"charge": 5}), ("no charge", {"charge": harness.DROP})]
        bodies += [("reason %s" % r, {"reason": r})
                   for r in ("duplicate", "fraudulent", "requested_by_customer")]
        for what, extra in bodies:
            with self.subTest(what):
                body = {"charge": self.new_charge(key, amount=99999999)}
                for k, v in extra.items():
                    if v is harness.DROP:
                        body.pop(k)
                    else:
                        body[k] = v
                resp = self.call("POST", "/v1/refunds", key, body, new_key())
                self.check(resp, "POST", "/v1/refunds")
                self.assert_request_agrees(what, self.contract.v.errors(body, schema, "body"),
                                           resp, (201,))

    def test_charge_update_bodies_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every charge update body that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        schema = self.request_body_schema("POST", "/v1/charges/ch_" + "0" * 24)
        charge = self.new_charge(key)
        bodies = [("nothing", {}), ("a description", {"description": "x"}),
                  ("an empty description", {"description": ""}), ("a null description", {"description": None}),
                  ("1000 characters", {"description": "é" * 1000}), ("1001 characters", {"description": "d" * 1001}),
                  ("a number as description", {"description": 5}),
                  ("metadata", {"metadata": {"a": "1", "b": ""}}), ("metadata \"\"", {"metadata": ""}),
                  ("null metadata", {"metadata": None}), ("metadata \"x\"", {"metadata": "x"}),
                  ("51 metadata keys", {"metadata": {"k%d" % i: "v" for i in range(51)}}),
                  ("a number as a metadata value", {"metadata": {"a": 1}}),
                  ("an amount", {"amount": 1}), ("receipt_email", {"receipt_email": "a@b.c"})]
        for what, body in bodies:
            with self.subTest(what):
                resp = self.call("POST", "/v1/charges/" + charge, key, body, new_key())
                self.check(resp, "POST", "/v1/charges/{id}")
                self.assert_request_agrees(what, self.contract.v.errors(body, schema, "body"),
                                           resp, (200,))

    def test_webhook_bodies_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every webhook endpoint body that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        schema = self.request_body_schema("POST", "/v1/webhook_endpoints")
        types = self.contract.spec["components"]["schemas"]["EventType"]["enum"]
        base = {"url": DEAD_URL, "enabled_events": ["*"]}
        bodies = [("the minimum", base), ("every type", dict(base, enabled_events=types)),
                  ("32 events", dict(base, enabled_events=["*"] * 32)),
                  ("33 events", dict(base, enabled_events=["*"] * 33)),
                  ("no events", dict(base, enabled_events=[])),
                  ("null events", dict(base, enabled_events=None)),
                  ("an unknown event", dict(base, enabled_events=["charge.nope"])),
                  ("a number as event", dict(base, enabled_events=[1])),
                  ("a string as events", dict(base, enabled_events="*")),
                  ("an https url", dict(base, url="https://127.0.0.1/hooks")),
                  ("a 2048-character url", dict(base, url="http://127.0.0.1/" + "a" * 2031)),
                  ("a 2049-character url", dict(base, url="http://127.0.0.1/" + "a" * 2032)),
                  ("an ftp url", dict(base, url="ftp://127.0.0.1/x")),
                  ("a url without host", dict(base, url="http://")),
                  ("a relative url", dict(base, url="/hooks")),
                  ("a null url", dict(base, url=None)), ("a status", dict(base, status="enabled"))]
        bodies += [("type %s" % t, dict(base, enabled_events=[t])) for t in types]
        for what, body in bodies:
            with self.subTest(what):
                resp = self.call("POST", "/v1/webhook_endpoints", key, body)
                self.check(resp, "POST", "/v1/webhook_endpoints")
                self.assert_request_agrees(what, self.contract.v.errors(body, schema, "body"),
                                           resp, (201,))
                if resp.status == 201:
                    self.call("DELETE", "/v1/webhook_endpoints/" + resp.json()["id"], key)

    def test_idempotency_keys_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every Idempotency-Key that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        keys = [("one character", "a"), ("255 characters", "k" * 255), ("256 characters", "k" * 256),
                ("spaces and symbols inside", "order 123/~!@#$%^&*()"), ("empty", ""),
                ("a tab inside", "a\tb"), ("a Latin-1 letter", "caf\u00e9"), ("DEL", "a\x7fb")]
        for what, idem in keys:
            with self.subTest(what):
                resp = self.call("POST", "/v1/charges", key, harness.charge_body(), idem)
                # civetweb itself refuses control characters in a header value.
                self.check(resp, "POST", "/v1/charges", allow_default=True)
                spec = self.param_errors("POST", "/v1/charges", "Idempotency-Key", idem)
                self.assert_request_agrees(what, spec, resp, (201,))
        resp = self.call("POST", "/v1/charges", key, harness.charge_body())
        self.assertTrue(self.parameter("POST", "/v1/charges", "Idempotency-Key")["required"])
        self.check_error(resp, "POST", "/v1/charges", 400, "idempotency_key_missing")

    def test_list_parameters_the_spec_accepts_are_the_ones_the_server_accepts(self):
        """Every list parameter value that openapi.yaml accepts is accepted, and every one it refuses is refused"""
        _, key = self.make_user()
        cases = {
            "/v1/charges": [("limit", v) for v in ("1", "100", "0", "101", "-1", "1.5", "x", "",
                                                   "999999999999")]
            + [(p, v) for p in ("created[gte]", "created[lt]")
               for v in ("0", "1795300000", "999999999999", "1000000000000", "-1", "x", "")]
            + [("starting_after", "ch_short"), ("ending_before", "re_" + "0" * 24)],
            "/v1/refunds": [("charge", "ch_" + "0" * 24), ("charge", "ch_x"), ("limit", "7")],
            "/v1/events": [("type", t) for t in ("charge.succeeded", "charge.failed",
                                                 "charge.refunded", "refund.created", "*", "x")],
            "/v1/webhook_deliveries": [("status", s) for s in ("pending", "succeeded", "dead",
                                                               "failed", "")]
            + [("limit", v) for v in ("1", "100", "0", "101", "x", "99999999")]
            + [("event", "evt_" + "0" * 24), ("event", "evt_x"),
               ("webhook_endpoint", "we_" + "0" * 24), ("webhook_endpoint", "ch_" + "0" * 24)],
        }
        for path, params in cases.items():
            for name, value in params:
                with self.subTest(path=path, name=name, value=value):
                    url = "%s?%s" % (path, urllib.parse.urlencode({name: value}, safe="[]"))
                    resp = self.call("GET", url, key)
                    self.check(resp, "GET", url)
                    spec = self.param_errors("GET", path, name, value)
                    self.assert_request_agrees("%s %s=%r" % (path, name, value), spec, resp, (200,))


class RateLimitTest(ContractMixin, harness.ServiceTestCase):
    """Over the rate limit, 429 with Retry-After, as openapi.yaml says."""

    server_env = {"PAYMENTS_RATE_LIMIT": "1", "PAYMENTS_RATE_BURST": "2"}

    def test_over_the_limit_answers_429_as_the_spec_says(self):
        """A user over the burst gets 429 rate_limited with Retry-After, and so does a client without a key"""
        _, key = self.make_user()
        for url, headers in (("/v1/charges", {"Authorization": "Bearer " + key}), ("/v1/openapi.yaml", {})):
            with self.subTest(url):
                statuses = []
                for _ in range(4):
                    resp = self.server.request("GET", url, None, headers)
                    statuses.append(resp.status)
                    self.check(resp, "GET", url)
                    if resp.status == 429:
                        self.check_error(resp, "GET", url, 429, "rate_limited", None)
                        self.assertEqual(resp.header("X-RateLimit-Remaining"), "0")
                        break
                self.assertIn(429, statuses, "never limited: %s" % statuses)


class UnavailableTest(ContractMixin, harness.ServiceTestCase):
    """With the database unreachable, 503 with Retry-After, as openapi.yaml says."""

    @classmethod
    def setUpClass(cls):
        cls.contract = Contract(load_spec())
        unittest.TestCase.setUpClass()
        cls.db = harness.module_database(cls.__module__)
        # A port nothing listens on: every connection attempt is refused at once.
        nowhere = "postgresql://postgres@127.0.0.1:%d/payments_nowhere" % harness.free_port()
        cls.server = harness.Server(nowhere, {"PAYMENTS_DB_CONNECT_TIMEOUT": "1s"})
        try:
            cls.server.start()
        except Exception:
            cls.server.remove_log()
            raise

    def test_an_unreachable_database_answers_503_as_the_spec_says(self):
        """GET /readyz and every operation that needs the database answer 503 service_unavailable with Retry-After"""
        key = "sk_test_" + "A" * 44
        self.check_error(self.server.request("GET", "/readyz"), "GET", "/readyz", 503,
                         "service_unavailable", None)
        for method, url in (("GET", "/v1/charges"), ("POST", "/v1/charges"), ("GET", "/v1/events"),
                            ("POST", "/v1/refunds"), ("GET", "/v1/webhook_endpoints"),
                            ("DELETE", "/v1/webhook_endpoints/we_" + "0" * 24)):
            with self.subTest(method=method, url=url):
                resp = self.server.request(method, url, harness.charge_body() if method == "POST"
                                           else None, {"Authorization": "Bearer " + key,
                                                       "Content-Type": "application/json",
                                                       "Idempotency-Key": new_key()})
                self.check_error(resp, method, url, 503, "service_unavailable", None)


class ZzCoverageTest(ContractMixin, unittest.TestCase):
    """Runs last in this module: what the tests above exercised."""

    def test_every_operation_was_answered_with_a_success(self):
        """Every operation of openapi.yaml was answered at least once with a success it lists"""
        if not SEEN:
            self.skipTest("no contract test ran before this one")
        missing = []
        for template, item in self.contract.spec["paths"].items():
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                seen = SEEN.get("%s %s" % (method.upper(), template), set())
                if not any(200 <= s < 300 for s in seen):
                    missing.append("%s %s (seen: %s)" % (method.upper(), template, sorted(seen)))
        self.assertEqual(missing, [], "operations never answered with a success")


if __name__ == "__main__":
    unittest.main()
