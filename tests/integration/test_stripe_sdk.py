"""test_stripe_sdk.py - the official Stripe libraries, unchanged, against the real server.

Each test runs once with stripe-node (npm `stripe`, pinned in
tests/stripe-sdk/package-lock.json and installed here with npm ci) and once
with stripe-python (Debian's python3-stripe, under /usr/bin/python3). Both
are driven by the small scripts in tests/stripe-sdk/ (sdk.js, sdk.py), which
take a list of operations on stdin and print what the SDK returned or raised:
the object, or the error's class and Stripe fields. The assertions live here,
beside the database.

Covered: form bodies as the SDKs encode them (bracket notation, arrays),
creates with and without an explicit Idempotency-Key, a JSON request retried
by an SDK as a form (one fingerprint), retrieve, update (a charge's
description and metadata, a refund's metadata), auto-pagination over
charges, refunds and events, partial and full refunds, declines, key reuse
(the SDKs' IdempotencyError, for creates, captures, refunds and updates),
authentication and rate-limit errors, webhook verification with each SDK's
helper (Stripe-Signature), and the SDKs' automatic retries over connections
dropped after the server did the work and over a server killed with SIGKILL
and restarted, with one charge per logical request. StripeDialectTest
checks the one answer that depends on the Stripe-Version header over raw
HTTP.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness as h
import webhooks

SDK_DIR = os.path.join(h.ROOT, "tests", "stripe-sdk")
# Debian installs python3-stripe for its own interpreter, not for a python3 earlier on PATH.
SYSTEM_PYTHON = os.environ.get("PAYMENTS_TEST_SYSTEM_PYTHON", "/usr/bin/python3")

# The error class each SDK raises, by what the error is.
ERROR_CLASSES = {
    "node": {"card": "StripeCardError", "invalid": "StripeInvalidRequestError",
             "auth": "StripeAuthenticationError", "rate": "StripeRateLimitError",
             "idempotency": "StripeIdempotencyError", "api": "StripeAPIError",
             "signature": "StripeSignatureVerificationError"},
    "python": {"card": "CardError", "invalid": "InvalidRequestError",
               "auth": "AuthenticationError", "rate": "RateLimitError",
               "idempotency": "IdempotencyError", "api": "APIError",
               "signature": "SignatureVerificationError"},
}


# The Stripe-Version each driver sends, configured as the README's snippets do:
# stripe-node always sends its own (None keeps it); stripe-python sends one only
# when stripe.api_version is set, which the README's Python snippet does.
API_VERSION = {"node": None, "python": "2024-06-20"}


def install_node_sdk():
    """npm ci in tests/stripe-sdk unless node_modules already holds exactly the pinned packages."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise h.HarnessError("node and npm are needed for the stripe-node tests")
    ok = subprocess.run(["npm", "ls", "--all"], cwd=SDK_DIR, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL).returncode == 0
    if not ok:
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                              cwd=SDK_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=300)
        if proc.returncode != 0:
            raise h.HarnessError("npm ci in tests/stripe-sdk failed:\n" + proc.stdout)


def check_python_sdk():
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import stripe"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise h.HarnessError("%s cannot import stripe: install python3-stripe (scripts/deps.sh)\n%s"
                             % (SYSTEM_PYTHON, proc.stdout))


def setUpModule():
    install_node_sdk()
    check_python_sdk()
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


def sdk_command(sdk, api, key, ops, retries, api_version=Ellipsis):
    """The driver's command line, its stdin and its environment (api_version: API_VERSION's by default)."""
    cmd = ["node", "sdk.js"] if sdk == "node" else [SYSTEM_PYTHON, "sdk.py"]
    if api_version is Ellipsis:
        api_version = API_VERSION[sdk]
    request = {"config": {"api": api, "key": key, "maxNetworkRetries": retries,
                          "apiVersion": api_version}, "ops": ops}
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                 "https_proxy"):
        env.pop(name, None)
    return cmd, json.dumps(request), env


def sdk_results(sdk, ops, returncode, stdout, stderr):
    if returncode != 0:
        raise AssertionError("%s driver failed (%d):\n%s" % (sdk, returncode, stderr))
    results = json.loads(stdout)
    if len(results) != len(ops):
        raise AssertionError("%s driver returned %d results for %d ops" % (sdk, len(results), len(ops)))
    return results


def run_sdk(sdk, api, key, ops, retries=0, timeout=120, api_version=Ellipsis):
    """Runs ops with sdk ("node" or "python") against api; returns one result per op."""
    cmd, stdin, env = sdk_command(sdk, api, key, ops, retries, api_version)
    proc = subprocess.run(cmd, cwd=SDK_DIR, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
    return sdk_results(sdk, ops, proc.returncode, proc.stdout, proc.stderr)


def charge_params(**overrides):
    params = {"amount": 2000, "currency": "usd", "source": "tok_visa",
              "description": "SDK order", "metadata": {"order_id": "6735"}}
    params.update(overrides)
    return params


def create(resource, params, key=None):
    op = {"op": "create", "resource": resource, "params": params}
    if key is not None:
        op["idempotencyKey"] = key
    return op


def update(resource, id_, params, key=None):
    op = {"op": "update", "resource": resource, "id": id_, "params": params}
    if key is not None:
        op["idempotencyKey"] = key
    return op


def retrieve(resource, id_):
    return {"op": "retrieve", "resource": resource, "id": id_}


class SdkMixin:
    """What every SDK test class shares; sdk is set by the concrete class."""

    sdk = None

    def shortDescription(self):
        doc = super().shortDescription()
        return "%s: %s" % ({"node": "stripe-node", "python": "stripe-python"}[self.sdk], doc)

    def api(self):
        return "http://127.0.0.1:%d" % self.server.port

    def run_ops(self, key, ops, retries=0, api=None, api_version=Ellipsis):
        return run_sdk(self.sdk, api or self.api(), key, ops, retries, api_version=api_version)

    def one(self, key, op, retries=0, api=None, api_version=Ellipsis):
        return self.run_ops(key, [op], retries, api, api_version)[0]

    def assert_ok(self, result):
        self.assertIn("ok", result, "the SDK raised: %r" % (result,))
        return result["ok"]

    def assert_raised(self, result, kind, status=None, code=None, type_=None):
        """Asserts the SDK raised its error class for kind; returns the error's fields."""
        self.assertIn("error", result, "the SDK did not raise: %r" % (result,))
        err = result["error"]
        self.assertEqual(err["class"], ERROR_CLASSES[self.sdk][kind], "error %r" % err)
        if status is not None:
            self.assertEqual(err["status"], status, "error %r" % err)
        if code is not None:
            self.assertEqual(err["code"], code, "error %r" % err)
        if type_ is not None:
            self.assertEqual(err["type"], type_, "error %r" % err)
        return err

    def user_ids(self, table, user, extra=""):
        rows = self.db.query("SELECT id FROM %s WHERE user_id = %s %s"
                             % (table, h.sql_literal(user), extra))
        return [r for r in rows.split("\n") if r]


class _ApiTests(SdkMixin):
    """Charges, refunds, lists and errors through the SDK."""

    def test_create_with_and_without_a_key_and_retrieve(self):
        """A charge created without a key (the SDK adds one) and with one, then retrieved, are the API's objects"""
        user, key = self.make_user("sdk")
        idem = h.new_key()
        params = charge_params()
        r = self.run_ops(key, [
            create("charges", params),
            create("charges", params, idem),
            create("charges", params, idem),
        ])
        first, second, again = (self.assert_ok(x) for x in r)
        self.assert_charge_object(first, params)
        self.assert_charge_object(second, params)
        self.assertNotEqual(first["id"], second["id"])
        self.assertEqual(again, second, "the retry with the same key is not the stored charge")
        self.assertEqual([x["replayed"] for x in r], ["false", "false", "true"])
        for x in r:
            self.assertRegex(x["requestId"], h.REQUEST_ID_RE)
            self.assertEqual(x["stripeVersion"], "2024-06-20")
        # The SDK's own key is stored like any other.
        self.assertEqual(self.counts(user), (2, 2, 2))
        got = self.assert_ok(self.one(key, {"op": "retrieve", "resource": "charges",
                                            "id": first["id"]}))
        self.assertEqual(got, first)
        missing = self.one(key, {"op": "retrieve", "resource": "charges",
                                 "id": "ch_" + "0" * 24})
        self.assert_raised(missing, "invalid", 404, "resource_missing")

    def test_json_request_retried_as_a_form_replays(self):
        """A charge sent as JSON and retried by the SDK as a form with the same key replays it"""
        user, key = self.make_user("sdk")
        idem = h.new_key()
        params = charge_params(description="Order 123 \u20ac", metadata={"order_id": "6735",
                                                                          "note": "a&b=c [x]"})
        resp = self.post_charge(key, params, idem)
        stored = self.assert_json_response(resp, 201)
        r = self.one(key, create("charges", params, idem))
        self.assertEqual(self.assert_ok(r), stored)
        self.assertEqual(r["replayed"], "true")
        other = self.one(key, create("charges", charge_params(amount=2001), idem))
        self.assert_raised(other, "idempotency", 400, "idempotency_key_reused", "idempotency_error")
        self.assertEqual(self.counts(user), (1, 1, 1))

    def test_update_changes_description_and_metadata(self):
        """The SDK's update changes a charge's description and merges its metadata, a refund's metadata too; retrieve shows it"""
        user, key = self.make_user("sdk")
        charge = self.assert_ok(self.one(key, create("charges", charge_params(
            metadata={"order_id": "6735", "note": "gift"}))))
        refund = self.assert_ok(self.one(key, create("refunds", {"charge": charge["id"], "amount": 100,
                                                                 "metadata": {"ticket": "42"}})))
        r = self.run_ops(key, [
            update("charges", charge["id"], {"description": "Order 6735, shipped",
                                             "metadata": {"note": "", "carrier": "ups"}}),
            retrieve("charges", charge["id"]),
            update("refunds", refund["id"], {"metadata": {"ticket": "", "reason": "damaged"}}),
            retrieve("refunds", refund["id"]),
            update("charges", charge["id"], {"metadata": "", "description": ""}),
            retrieve("charges", charge["id"]),
        ], retries=2)
        updated, got, refund_updated, refund_got, cleared, got_cleared = (self.assert_ok(x) for x in r)
        self.assertEqual(updated["description"], "Order 6735, shipped")
        self.assertEqual(updated["metadata"], {"order_id": "6735", "carrier": "ups"})
        self.assertEqual(got, updated)
        self.assertEqual(r[0]["replayed"], "false")
        self.assertEqual(refund_updated["metadata"], {"reason": "damaged"})
        self.assertEqual(refund_got, refund_updated)
        self.assertEqual((cleared["description"], cleared["metadata"]), (None, {}))
        self.assertEqual(got_cleared, cleared)
        # Nothing but description and metadata changed (the refund of 100 came before).
        self.assertEqual(got_cleared, dict(charge, description=None, metadata={}, amount_refunded=100))
        self.assertEqual(self.db.query(
            "SELECT string_agg(type, ',' ORDER BY seq) FROM outbox_events WHERE user_id = %s"
            " AND type LIKE '%%.updated'" % h.sql_literal(user)),
            "charge.updated,refund.updated,charge.updated")
        # Anything else than description and metadata is refused, naming the param.
        r = self.one(key, update("charges", charge["id"], {"receipt_email": "a@example.com"}), retries=2)
        err = self.assert_raised(r, "invalid", 400, "parameter_unknown", "invalid_request_error")
        self.assertEqual((err["param"], err["shouldRetry"]), ("receipt_email", "false"))

    def test_auto_pagination_walks_charges_refunds_and_events(self):
        """Auto-pagination walks every charge, refund and event of the user, two at a time, to the end"""
        user, key = self.make_user("sdk")
        charges = []
        for i in range(5):
            resp = self.post_charge(key, h.charge_body(amount=1000 + i), h.new_key())
            charges.append(self.assert_json_response(resp, 201)["id"])
        for cid in charges[:3]:
            resp = self.post_charge(key, {"charge": cid, "amount": 100}, h.new_key(),
                                    path="/v1/refunds")
            self.assert_json_response(resp, 201)
        since = int(time.time()) - 3600
        r = self.run_ops(key, [
            {"op": "list", "resource": "charges", "params": {"limit": 2}},
            {"op": "list", "resource": "refunds", "params": {"limit": 2}},
            {"op": "list", "resource": "events", "params": {"limit": 2}},
            {"op": "list", "resource": "charges", "params": {"limit": 2, "created": {"gte": since}}},
            {"op": "list", "resource": "refunds", "params": {"limit": 2, "charge": charges[0]}},
            {"op": "list", "resource": "events", "params": {"limit": 2, "type": "charge.refunded"}},
        ])
        lists = [self.assert_ok(x) for x in r]
        for ids in lists:
            self.assertEqual(len(ids), len(set(ids)), "an item came twice: %r" % ids)
        self.assertEqual(sorted(lists[0]), sorted(charges))
        self.assertEqual(sorted(lists[1]), sorted(self.user_ids("refunds", user)))
        self.assertEqual(len(lists[1]), 3)
        self.assertEqual(sorted(lists[2]), sorted(self.user_ids("outbox_events", user)))
        self.assertEqual(len(lists[2]), 5 + 3 * 2)
        self.assertEqual(sorted(lists[3]), sorted(charges))
        self.assertEqual(len(lists[4]), 1)
        self.assertEqual(len(lists[5]), 3)

    def test_partial_then_full_refund(self):
        """A partial refund, then a refund of the rest, refund the charge in full; a third is refused"""
        _, key = self.make_user("sdk")
        charge = self.assert_ok(self.one(key, create("charges", charge_params(amount=2000))))
        r = self.run_ops(key, [
            create("refunds", {"charge": charge["id"], "amount": 500,
                               "reason": "requested_by_customer", "metadata": {"ticket": "42"}}),
            create("refunds", {"charge": charge["id"]}),
            {"op": "retrieve", "resource": "charges", "id": charge["id"]},
            create("refunds", {"charge": charge["id"], "amount": 1}),
        ])
        partial, rest, after = (self.assert_ok(x) for x in r[:3])
        self.assertEqual((partial["object"], partial["amount"], partial["charge"]),
                         ("refund", 500, charge["id"]))
        self.assertEqual(partial["metadata"], {"ticket": "42"})
        self.assertEqual(partial["reason"], "requested_by_customer")
        self.assertEqual(rest["amount"], 1500)
        self.assertEqual((after["amount_refunded"], after["refunded"]), (2000, True))
        self.assert_raised(r[3], "invalid", 400, "charge_already_refunded")
        got = self.assert_ok(self.one(key, {"op": "retrieve", "resource": "refunds",
                                            "id": partial["id"]}))
        self.assertEqual(got, partial)

    def test_authorize_then_capture_part(self):
        """A charge created with capture false is captured in part by the SDK's capture; a second capture is refused"""
        _, key = self.make_user("sdk")
        auth = self.assert_ok(self.one(key, create("charges", charge_params(amount=2000, capture=False))))
        self.assertEqual((auth["captured"], auth["amount_captured"]), (False, 0))
        r = self.run_ops(key, [
            {"op": "capture", "resource": "charges", "id": auth["id"], "params": {"amount": 1500},
             "idempotencyKey": h.new_key()},
            {"op": "retrieve", "resource": "charges", "id": auth["id"]},
            {"op": "capture", "resource": "charges", "id": auth["id"]},
        ])
        captured, after = self.assert_ok(r[0]), self.assert_ok(r[1])
        self.assertEqual((captured["id"], captured["captured"], captured["amount_captured"]),
                         (auth["id"], True, 1500))
        self.assertEqual(after, captured)
        self.assert_raised(r[2], "invalid", 400, "charge_already_captured")

    def test_decline_raises_the_card_error(self):
        """A declined card raises the card-error class with decline_code and the stored charge"""
        user, key = self.make_user("sdk")
        r = self.run_ops(key, [
            create("charges", charge_params(source="tok_chargeDeclinedInsufficientFunds")),
            create("charges", charge_params(source="tok_chargeDeclined")),
        ], retries=2)
        err = self.assert_raised(r[0], "card", 402, "card_declined", "card_error")
        self.assertEqual(err["decline_code"], "insufficient_funds")
        self.assertRegex(err["charge"], h.CHARGE_ID_RE)
        self.assertEqual(err["shouldRetry"], "false")
        self.assertRegex(err["requestId"], h.REQUEST_ID_RE)
        err2 = self.assert_raised(r[1], "card", 402, "card_declined")
        self.assertEqual(err2["decline_code"], "generic_decline")
        # Not retried: each decline is one charge, stored as failed.
        self.assertEqual(self.db.query("SELECT string_agg(status, ',' ORDER BY status) FROM charges"
                                       " WHERE user_id = %s" % h.sql_literal(user)),
                         "failed,failed")

    def test_key_reuse_raises_the_idempotency_error(self):
        """A key reused with another body raises the SDK's IdempotencyError (400, as Stripe answers), not retried, for creates, captures, refunds and updates"""
        user, key = self.make_user("sdk")
        k_charge, k_capture, k_refund, k_update = (h.new_key() for _ in range(4))
        r = self.run_ops(key, [
            create("charges", charge_params(), k_charge),
            create("charges", charge_params(amount=999), k_charge),
            create("charges", charge_params(amount=2000, capture=False), h.new_key()),
        ], retries=2)
        self.assert_ok(r[0])
        auth = self.assert_ok(r[2])
        r = self.run_ops(key, [
            {"op": "capture", "resource": "charges", "id": auth["id"], "params": {"amount": 1500},
             "idempotencyKey": k_capture},
            {"op": "capture", "resource": "charges", "id": auth["id"], "params": {"amount": 1400},
             "idempotencyKey": k_capture},
            create("refunds", {"charge": auth["id"], "amount": 100}, k_refund),
            create("refunds", {"charge": auth["id"], "amount": 200}, k_refund),
            update("charges", auth["id"], {"metadata": {"a": "1"}}, k_update),
            update("charges", auth["id"], {"metadata": {"a": "2"}}, k_update),
            create("charges", charge_params(amount=999), k_charge),
        ], retries=2)
        for first, reused in ((r[0], r[1]), (r[2], r[3]), (r[4], r[5]), (None, r[6])):
            if first is not None:
                self.assert_ok(first)
            # Both SDKs raise IdempotencyError for a 400 (or 404) of type idempotency_error:
            # the SDKs send Stripe-Version, so this service answers as Stripe does.
            err = self.assert_raised(reused, "idempotency", 400, "idempotency_key_reused",
                                     "idempotency_error")
            self.assertEqual(err["shouldRetry"], "false")
        # Two charges, five keys; the events of one charge each, a capture, a refund (two) and an update.
        self.assertEqual(self.counts(user), (2, 5, 6))
        if self.sdk == "python":
            # stripe-python without stripe.api_version sends no Stripe-Version: it gets this
            # API's own 409, which it raises as its APIError class, still without retrying.
            r = self.one(key, create("charges", charge_params(amount=998), k_charge), retries=2,
                         api_version=None)
            err = self.assert_raised(r, "api", 409, "idempotency_key_reused", "idempotency_error")
            self.assertEqual(err["shouldRetry"], "false")
            self.assertEqual(self.counts(user), (2, 5, 6))

    def test_bad_key_raises_the_authentication_error(self):
        """An unknown API key raises the authentication-error class"""
        r = self.one("sk_test_" + "x" * 44, {"op": "list", "resource": "charges", "params": {}})
        self.assert_raised(r, "auth", 401, "api_key_invalid", "authentication_error")

    def test_invalid_params_name_the_bracket_field(self):
        """A bad form field raises the invalid-request class naming it in bracket form"""
        user, key = self.make_user("sdk")
        r = self.run_ops(key, [
            create("charges", charge_params(metadata={"order_id": "x" * 501})),
            create("charges", charge_params(amount=0)),
            create("charges", charge_params(currency="USD")),
            create("charges", charge_params(customer="cus_1")),
        ])
        self.assertEqual(self.assert_raised(r[0], "invalid", 400, "invalid_metadata")["param"],
                         "metadata[order_id]")
        self.assertEqual(self.assert_raised(r[1], "invalid", 400, "amount_too_small")["param"],
                         "amount")
        self.assertEqual(self.assert_raised(r[2], "invalid", 400, "invalid_currency")["param"],
                         "currency")
        self.assertEqual(self.assert_raised(r[3], "invalid", 400, "parameter_unknown")["param"],
                         "customer")
        self.assertEqual(self.counts(user), (0, 0, 0))

    def test_webhook_endpoints_with_arrays(self):
        """Webhook endpoints are created (enabled_events as an array), retrieved, listed and deleted"""
        _, key = self.make_user("sdk")
        events = ["charge.succeeded", "charge.failed"]
        r = self.run_ops(key, [
            create("webhookEndpoints", {"url": "https://8.8.8.8/hooks", "enabled_events": events}),
            create("webhookEndpoints", {"url": "https://8.8.8.8/hooks",
                                        "enabled_events": ["charge.succeeded", "nope"]}),
        ])
        endpoint = self.assert_ok(r[0])
        self.assertEqual(endpoint["enabled_events"], events)
        self.assertTrue(endpoint["secret"].startswith("whsec_"))
        err = self.assert_raised(r[1], "invalid", 400, "parameter_invalid")
        self.assertEqual(err["param"], "enabled_events[1]")
        r = self.run_ops(key, [
            {"op": "retrieve", "resource": "webhookEndpoints", "id": endpoint["id"]},
            {"op": "list", "resource": "webhookEndpoints", "params": {}},
            {"op": "del", "resource": "webhookEndpoints", "id": endpoint["id"]},
            {"op": "retrieve", "resource": "webhookEndpoints", "id": endpoint["id"]},
        ])
        self.assertEqual(self.assert_ok(r[0])["url"], "https://8.8.8.8/hooks")
        self.assertEqual(self.assert_ok(r[1]), [endpoint["id"]])
        self.assertIs(self.assert_ok(r[2])["deleted"], True)
        self.assert_raised(r[3], "invalid", 404, "resource_missing")


class NodeApiTest(_ApiTests, h.ServiceTestCase):
    sdk = "node"


class PythonApiTest(_ApiTests, h.ServiceTestCase):
    sdk = "python"


class StripeDialectTest(h.ServiceTestCase):
    """
    Over raw HTTP, the one answer that depends on Stripe-Version: a key
    reused with another request is this API's 409 without the header and
    Stripe's 400 with it (what makes both SDKs raise IdempotencyError), on
    every idempotent POST. Nothing else changes with the header.
    """

    server_env = {"PAYMENTS_RATE_LIMIT": "0", "PAYMENTS_IDEMPOTENCY_WAIT": "300ms"}

    def post(self, key, path, body, idem, version=None):
        headers = {"Stripe-Version": version} if version is not None else None
        return self.post_charge(key, body, idem, path=path, headers=headers)

    def test_key_reuse_is_409_without_stripe_version_and_400_with_it(self):
        """Charges, captures, refunds and updates: a reused key is 409 without Stripe-Version and 400 with one, idempotency_error either way, not retried, nothing stored"""
        user, key = self.make_user("dialect")
        charge = self.assert_json_response(self.post_charge(key, h.charge_body(), h.new_key()), 201)
        auth = self.assert_json_response(
            self.post_charge(key, h.charge_body(capture=False), h.new_key()), 201)
        refund = self.assert_json_response(self.post_charge(
            key, {"charge": charge["id"], "amount": 50}, h.new_key(), path="/v1/refunds"), 201)
        cases = [
            ("/v1/charges", h.charge_body(amount=700), h.charge_body(amount=701)),
            ("/charge", h.charge_body(amount=800), h.charge_body(amount=800, description="other")),
            ("/v1/charges/%s/capture" % auth["id"], {"amount": 500}, {"amount": 400}),
            ("/v1/refunds", {"charge": charge["id"], "amount": 100}, {"charge": charge["id"], "amount": 200}),
            ("/v1/charges/" + charge["id"], {"description": "a"}, {"description": "b"}),
            ("/v1/refunds/" + refund["id"], {"metadata": {"a": "1"}}, {"metadata": {"a": "2"}}),
        ]
        for path, body, other in cases:
            with self.subTest(path=path):
                idem = h.new_key()
                first = self.post(key, path, body, idem)
                self.assertIn(first.status, (200, 201), first)
                before = self.counts(user)
                for version, status in ((None, 409), ("", 409), ("2024-06-20", 400),
                                        ("2026-11-18.endive", 400)):
                    resp = self.post(key, path, other, idem, version)
                    err = self.assert_error(resp, status, "idempotency_key_reused", "idempotency_error",
                                            param=None)
                    self.assertEqual(err["message"],
                                     "This Idempotency-Key was already used with a different request.")
                    self.assertEqual((resp.header("Stripe-Should-Retry"), resp.header("Retry-After"),
                                      resp.header("Idempotent-Replayed"), resp.header("Stripe-Version")),
                                     ("false", None, None, "2024-06-20"), "headers of %r" % (resp,))
                # The header changes nothing else: the first request still replays, byte for byte.
                again = self.post(key, path, body, idem, "2024-06-20")
                self.assertEqual((again.status, again.body, again.header("Idempotent-Replayed")),
                                 (first.status, first.body, "true"))
                self.assertEqual(self.counts(user), before)

    def test_a_key_in_use_stays_409_with_stripe_version(self):
        """A key that another request still holds is 409 idempotency_key_in_use with Stripe-Version too, with Retry-After, as Stripe answers it"""
        user, key = self.make_user("dialect")
        idem = h.new_key()
        with h.open_transaction(self.db, h.key_taken_sql(user, idem)):
            resp = self.post(key, "/v1/charges", h.charge_body(), idem, "2024-06-20")
        self.assert_error(resp, 409, "idempotency_key_in_use", "idempotency_error")
        self.assertEqual(resp.header("Stripe-Should-Retry"), "true")
        self.assertIsNotNone(resp.header("Retry-After"))


class _RateLimitTests(SdkMixin):
    server_env = {"PAYMENTS_RATE_LIMIT": "1", "PAYMENTS_RATE_BURST": "1"}

    def test_429_raises_the_rate_limit_error(self):
        """Over the rate limit the SDK raises its rate-limit class, and the answer says to retry"""
        _, key = self.make_user("sdk")
        r = self.run_ops(key, [{"op": "list", "resource": "charges", "params": {}}] * 3)
        errors = [x for x in r if "error" in x]
        self.assertTrue(errors, "three requests at once were never limited: %r" % r)
        err = self.assert_raised(errors[0], "rate", 429, "rate_limited", "rate_limit_error")
        self.assertEqual(err["shouldRetry"], "true")


class NodeRateLimitTest(_RateLimitTests, h.ServiceTestCase):
    sdk = "node"


class PythonRateLimitTest(_RateLimitTests, h.ServiceTestCase):
    sdk = "python"


class _WebhookTests(SdkMixin):
    def test_deliveries_verify_with_the_sdk_helper(self):
        """A delivery's Stripe-Signature verifies with the SDK's webhook helper, a charge.updated one too; a tampered body does not"""
        user, key = self.make_user("sdk")
        name = "sdk-%s" % self.sdk
        endpoint = self.assert_ok(self.one(key, create("webhookEndpoints", {
            "url": self.receiver.url(name), "enabled_events": ["charge.succeeded", "charge.updated"]})))
        self.secrets.append(endpoint["secret"])
        self.receiver.set_secret(name, endpoint["secret"])
        charge_id, request_id, idem = self.charge(key)
        got = h.poll(lambda: self.receiver.delivered(name), message="a delivery")
        req = got[0]
        header = req.headers.get("Stripe-Signature")
        self.assertRegex(header or "", r"^t=\d+,v1=[0-9a-f]{64}$")
        self.assertEqual(header.split(",")[0], "t=" + req.timestamp)
        payload = req.body.decode("utf-8")
        r = self.run_ops(key, [
            {"op": "constructEvent", "payload": payload, "header": header,
             "secret": endpoint["secret"]},
            {"op": "constructEvent", "payload": payload.replace(charge_id, "ch_" + "0" * 24),
             "header": header, "secret": endpoint["secret"]},
            {"op": "constructEvent", "payload": payload, "header": header,
             "secret": "whsec_" + "A" * 43 + "="},
        ])
        event = self.assert_ok(r[0])
        self.assertEqual(event["id"], req.webhook_id)
        self.assertEqual(event["object"], "event")
        self.assertEqual(event["type"], "charge.succeeded")
        self.assertIsInstance(event["created"], int)
        self.assertEqual(event["data"]["object"]["id"], charge_id)
        self.assertEqual(event["request"], {"id": request_id, "idempotency_key": idem})
        self.assertEqual((event["api_version"], event["livemode"]), ("2024-06-20", False))
        self.assert_raised(r[1], "signature")
        self.assert_raised(r[2], "signature")
        # An update made with the SDK reaches the endpoint as charge.updated with the charge after it.
        updated = self.assert_ok(self.one(key, update("charges", charge_id, {"description": "shipped"})))
        got = h.poll(lambda: [d for d in self.receiver.delivered(name) if d.type == "charge.updated"],
                     message="the charge.updated delivery")
        r = self.one(key, {"op": "constructEvent", "payload": got[0].body.decode("utf-8"),
                           "header": got[0].headers.get("Stripe-Signature"),
                           "secret": endpoint["secret"]})
        event = self.assert_ok(r)
        self.assertEqual(event["type"], "charge.updated")
        self.assertEqual((event["data"]["object"]["id"], event["data"]["object"]["description"]),
                         (charge_id, "shipped"))
        self.assertEqual(event["data"]["object"], updated)
        self.assert_no_receiver_errors()


class NodeWebhookTest(_WebhookTests, webhooks.WebhookTestCase):
    sdk = "node"


class PythonWebhookTest(_WebhookTests, webhooks.WebhookTestCase):
    sdk = "python"


class DroppingProxy:
    """
    A loopback HTTP/1.1 proxy in front of the server that loses the first
    answer to every POST with a new Idempotency-Key: it forwards the request,
    waits until the server has answered (the work is committed), and then
    closes the client's connection instead of passing the answer on. A
    client that retries with the same key must get the stored answer.
    """

    def __init__(self, port):
        self.upstream = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.dropped = []     # the Idempotency-Key of every answer lost
        self.forwarded = []   # (method, path, key, status) of every answer passed on
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock, buf):
        """Reads one message with a Content-Length body; returns (head, body, rest) or None at EOF."""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head, rest[:length], rest[length:]

    def _serve(self, client):
        buf = b""
        try:
            with client:
                client.settimeout(30)
                while True:
                    msg = self._read_message(client, buf)
                    if msg is None:
                        return
                    head, body, buf = msg
                    lines = head.split(b"\r\n")
                    method, path = lines[0].split(b" ")[:2]
                    headers = {}
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        headers[name.strip().lower().decode()] = value.strip().decode()
                    with socket.create_connection(("127.0.0.1", self.upstream), timeout=30) as up:
                        up.sendall(head + b"\r\n\r\n" + body)
                        answer = self._read_message(up, b"")
                    if answer is None:
                        return
                    key = headers.get("idempotency-key")
                    with self.lock:
                        drop = method == b"POST" and key is not None and key not in self.dropped
                        if drop:
                            self.dropped.append(key)
                        else:
                            status = int(answer[0].split(b" ")[1])
                            self.forwarded.append((method.decode(), path.decode(), key, status))
                    if drop:
                        return   # the with block closes the connection: the answer is lost
                    client.sendall(answer[0] + b"\r\n\r\n" + answer[1])
        except OSError:
            return


class _RetryTests(SdkMixin):
    def setUp(self):
        super().setUp()
        self.proxy = DroppingProxy(self.server.port)
        self.addCleanup(self.proxy.close)

    def test_retries_over_dropped_connections_charge_once(self):
        """Answers lost after the commit are retried by the SDK itself, and every charge, refund and update is made once"""
        user, key = self.make_user("sdk")
        api = "http://127.0.0.1:%d" % self.proxy.port
        explicit = [h.new_key(), h.new_key()]
        ops = [create("charges", charge_params(amount=1000 + i)) for i in range(4)]
        ops += [create("charges", charge_params(amount=2000 + i), k) for i, k in enumerate(explicit)]
        r = self.run_ops(key, ops, retries=3, api=api)
        charges = [self.assert_ok(x) for x in r]
        self.assertEqual(sorted(c["amount"] for c in charges), [1000, 1001, 1002, 1003, 2000, 2001])
        self.assertEqual(len({c["id"] for c in charges}), 6)
        # Each answer the client saw is the replay of the request whose answer was lost.
        self.assertEqual([x["replayed"] for x in r], ["true"] * 6)
        self.assertEqual(len(self.proxy.dropped), 6)
        for k in explicit:
            self.assertIn(k, self.proxy.dropped)
        self.assertEqual(self.counts(user), (6, 6, 6))
        self.assertEqual(sorted(self.user_ids("charges", user)), sorted(c["id"] for c in charges))

        refunds = self.run_ops(key, [create("refunds", {"charge": charges[0]["id"], "amount": 300}),
                                     create("refunds", {"charge": charges[0]["id"]})],
                               retries=3, api=api)
        amounts = [self.assert_ok(x)["amount"] for x in refunds]
        self.assertEqual(amounts, [300, 700])
        self.assertEqual(len(self.user_ids("refunds", user)), 2)
        self.assertEqual(len(self.proxy.dropped), 8)

        r = self.one(key, update("charges", charges[1]["id"], {"metadata": {"shipped": "yes"}}),
                     retries=3, api=api)
        self.assertEqual(self.assert_ok(r)["metadata"], dict(charges[1]["metadata"], shipped="yes"))
        self.assertEqual(r["replayed"], "true")
        self.assertEqual(len(self.proxy.dropped), 9)
        self.assertEqual(self.db.count("outbox_events", "object_id = %s AND type = 'charge.updated'"
                                       % h.sql_literal(charges[1]["id"])), 1)


class NodeRetryTest(_RetryTests, h.ServiceTestCase):
    sdk = "node"


class PythonRetryTest(_RetryTests, h.ServiceTestCase):
    sdk = "python"


def kill_and_restart(server):
    """
    SIGKILLs the server (no drain: requests in flight lose their answers)
    and starts it again on the same port, with the harness's own start-up,
    so that a client's retries reach it again.
    """
    port = server.port
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.proc = None
    time.sleep(0.3)   # the client meets a refused connection meanwhile
    saved = h.free_port
    h.free_port = lambda: port
    try:
        server.start()
    finally:
        h.free_port = saved


class _KillTests(SdkMixin):
    def test_retries_across_a_killed_server_charge_once(self):
        """serve is killed with SIGKILL amid the SDK's creates and restarted: every charge is made once"""
        user, key = self.make_user("sdk")
        n = 30
        ops = [create("charges", charge_params(amount=3000 + i)) for i in range(n)]
        cmd, stdin, env = sdk_command(self.sdk, self.api(), key, ops, 8)
        proc = subprocess.Popen(cmd, cwd=SDK_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        out = []
        reader = threading.Thread(target=lambda: out.append(proc.communicate(stdin, timeout=120)),
                                  daemon=True)
        reader.start()
        where = "user_id = %s" % h.sql_literal(user)
        h.poll(lambda: self.db.count("charges", where) >= 3, interval=0.01,
               message="the first charges")
        self.assertIsNone(proc.poll(), "the SDK finished before the kill: nothing was tested")
        kill_and_restart(self.server)
        reader.join(150)
        self.assertTrue(out, "the SDK did not finish")
        results = sdk_results(self.sdk, ops, proc.returncode, *out[0])
        charges = [self.assert_ok(x) for x in results]
        self.assertEqual([c["amount"] for c in charges], [3000 + i for i in range(n)])
        self.assertEqual(self.counts(user), (n, n, n))
        self.assertEqual(sorted(self.user_ids("charges", user)), sorted(c["id"] for c in charges))


class NodeKillTest(_KillTests, h.ServiceTestCase):
    sdk = "node"


class PythonKillTest(_KillTests, h.ServiceTestCase):
    sdk = "python"


if __name__ == "__main__":
    unittest.main()
