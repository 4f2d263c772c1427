"""test_validation.py - request bodies and Idempotency-Key headers the API refuses, and the limits it accepts.

Every refusal is checked the same way: the status and the Stripe-shaped
error (type, code, message, param), nothing stored under the key, and then a
corrected request with the same key succeeds with 201 (so the refusal did
not burn the key).
"""

import json

import harness as h
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


B = h.charge_body
DROP = h.DROP


def many_keys(n):
    return {"k%02d" % i: "v" for i in range(n)}


# (method name, sentence, body (object or raw text/bytes), error code, param)
REFUSED = [
    ("amount_missing", "A body without amount answers 400 parameter_missing on amount",
     B(amount=DROP), "parameter_missing", "amount"),
    ("amount_null", "An amount of null counts as missing",
     B(amount=None), "parameter_missing", "amount"),
    ("amount_zero", "An amount of 0 answers 400 amount_too_small",
     B(amount=0), "amount_too_small", "amount"),
    ("amount_negative", "A negative amount answers 400 amount_too_small",
     B(amount=-500), "amount_too_small", "amount"),
    ("amount_too_large", "An amount of 100000000 answers 400 amount_too_large",
     B(amount=100000000), "amount_too_large", "amount"),
    ("amount_string", "An amount sent as the string \"5000\" answers 400 parameter_invalid_type",
     B(amount="5000"), "parameter_invalid_type", "amount"),
    ("amount_fraction", "An amount of 50.5 answers 400 parameter_invalid_type",
     B(amount=50.5), "parameter_invalid_type", "amount"),
    ("amount_whole_float", "An amount of 5000.0 (a JSON real) answers 400 parameter_invalid_type",
     '{"amount":5000.0,"currency":"usd","source":"tok_visa"}', "parameter_invalid_type", "amount"),
    ("amount_exponent", "An amount of 5e3 (a JSON real) answers 400 parameter_invalid_type",
     '{"amount":5e3,"currency":"usd","source":"tok_visa"}', "parameter_invalid_type", "amount"),
    ("amount_boolean", "An amount of true answers 400 parameter_invalid_type",
     B(amount=True), "parameter_invalid_type", "amount"),
    ("currency_missing", "A body without currency answers 400 parameter_missing on currency",
     B(currency=DROP), "parameter_missing", "currency"),
    ("currency_upper", "Currency \"USD\" answers 400 invalid_currency",
     B(currency="USD"), "invalid_currency", "currency"),
    ("currency_unknown", "Currency \"xyz\" answers 400 invalid_currency",
     B(currency="xyz"), "invalid_currency", "currency"),
    ("currency_long", "Currency \"usdd\" answers 400 invalid_currency",
     B(currency="usdd"), "invalid_currency", "currency"),
    ("currency_number", "Currency 5 answers 400 parameter_invalid_type on currency",
     B(currency=5), "parameter_invalid_type", "currency"),
    ("source_missing", "A body without source answers 400 parameter_missing on source",
     B(source=DROP), "parameter_missing", "source"),
    ("source_number", "A source that is not a string answers 400 parameter_invalid_type",
     B(source=4242), "parameter_invalid_type", "source"),
    ("description_1001_ascii", "A description of 1001 ASCII characters answers 400 parameter_too_long",
     B(description="d" * 1001), "parameter_too_long", "description"),
    ("description_1001_two_byte", "A description of 1001 two-byte characters answers 400 parameter_too_long",
     B(description="\u00e9" * 1001), "parameter_too_long", "description"),
    ("description_1001_four_byte", "A description of 1001 emoji answers 400 parameter_too_long",
     B(description="\U0001F600" * 1001), "parameter_too_long", "description"),
    ("description_number", "A description that is not a string answers 400 parameter_invalid_type",
     B(description=12), "parameter_invalid_type", "description"),
    ("metadata_51_keys", "Metadata with 51 keys answers 400 invalid_metadata",
     B(metadata=many_keys(51)), "invalid_metadata", "metadata"),
    ("metadata_key_41", "A metadata key of 41 characters answers 400 invalid_metadata",
     B(metadata={"k" * 41: "v"}), "invalid_metadata", "metadata"),
    ("metadata_key_41_multibyte", "A metadata key of 41 multibyte characters answers 400 invalid_metadata",
     B(metadata={"\u00f6" * 41: "v"}), "invalid_metadata", "metadata"),
    ("metadata_key_empty", "An empty metadata key answers 400 invalid_metadata",
     B(metadata={"": "v"}), "invalid_metadata", "metadata"),
    ("metadata_value_501", "A metadata value of 501 characters answers 400 invalid_metadata",
     B(metadata={"k": "v" * 501}), "invalid_metadata", "metadata"),
    ("metadata_value_501_multibyte", "A metadata value of 501 multibyte characters answers 400 invalid_metadata",
     B(metadata={"k": "\u20ac" * 501}), "invalid_metadata", "metadata"),
    ("metadata_value_number", "A metadata value that is a number answers 400 invalid_metadata",
     B(metadata={"k": 1}), "invalid_metadata", "metadata"),
    ("metadata_value_null", "A metadata value of null answers 400 invalid_metadata",
     B(metadata={"k": None}), "invalid_metadata", "metadata"),
    ("metadata_value_object", "A metadata value that is an object answers 400 invalid_metadata",
     B(metadata={"k": {"nested": "v"}}), "invalid_metadata", "metadata"),
    ("metadata_array", "Metadata that is an array answers 400 invalid_metadata",
     B(metadata=["a", "b"]), "invalid_metadata", "metadata"),
    ("metadata_string", "Metadata that is a string answers 400 invalid_metadata",
     B(metadata="order=6735"), "invalid_metadata", "metadata"),
    ("unknown_field", "An unknown field answers 400 parameter_unknown naming it",
     B(customer="cus_123"), "parameter_unknown", "customer"),
    ("server_field_status", "The server-owned field status answers 400 parameter_unknown",
     B(status="succeeded"), "parameter_unknown", "status"),
    ("server_field_id", "The server-owned field id answers 400 parameter_unknown",
     B(id="ch_" + "a" * 24), "parameter_unknown", "id"),
    ("server_field_amount_refunded", "The server-owned field amount_refunded answers 400 parameter_unknown",
     B(amount_refunded=0), "parameter_unknown", "amount_refunded"),
    ("server_field_object", "The server-owned field object answers 400 parameter_unknown",
     B(object="charge"), "parameter_unknown", "object"),
    ("server_field_created", "The server-owned field created answers 400 parameter_unknown",
     B(created=1700000000), "parameter_unknown", "created"),
    ("duplicate_keys", "A body with a duplicate key answers 400 invalid_json",
     '{"amount":2000,"currency":"usd","source":"tok_visa","amount":1}', "invalid_json", None),
    ("duplicate_metadata_keys", "Metadata with a duplicate key answers 400 invalid_json",
     '{"amount":2000,"currency":"usd","source":"tok_visa","metadata":{"a":"1","a":"2"}}',
     "invalid_json", None),
    ("malformed_json", "Malformed JSON answers 400 invalid_json",
     '{"amount":2000,"currency":"usd",', "invalid_json", None),
    ("trailing_garbage", "JSON followed by more text answers 400 invalid_json",
     '{"amount":2000,"currency":"usd","source":"tok_visa"} {}', "invalid_json", None),
    ("array_body", "A JSON array body answers 400 invalid_json",
     '[{"amount":2000,"currency":"usd","source":"tok_visa"}]', "invalid_json", None),
    ("scalar_body", "A JSON number body answers 400 invalid_json",
     "42", "invalid_json", None),
    ("empty_body", "An empty body answers 400 invalid_json",
     b"", "invalid_json", None),
    ("invalid_utf8", "A body that is not valid UTF-8 answers 400 invalid_json",
     b'{"amount":2000,"currency":"usd","source":"tok_visa","description":"\xff\xfe"}',
     "invalid_json", None),
    ("nul_in_string", "A string containing \\u0000 answers 400 invalid_json",
     '{"amount":2000,"currency":"usd","source":"tok_visa","description":"a\\u0000b"}',
     "invalid_json", None),
]

# (method name, sentence, body, the description/metadata the charge must store)
ACCEPTED = [
    ("amount_one", "The smallest amount, 1, is accepted", B(amount=1)),
    ("amount_max", "The largest amount, 99999999, is accepted", B(amount=99999999)),
    ("description_1000_ascii", "A description of 1000 ASCII characters is accepted",
     B(description="d" * 1000)),
    ("description_1000_two_byte", "A description of 1000 two-byte characters (2000 bytes) is accepted",
     B(description="\u00e9" * 1000)),
    ("description_1000_four_byte", "A description of 1000 emoji (4000 bytes) is accepted",
     B(description="\U0001F600" * 1000)),
    ("metadata_50_keys", "Metadata with 50 keys is accepted", B(metadata=many_keys(50))),
    ("metadata_key_40", "A metadata key of 40 multibyte characters is accepted",
     B(metadata={"\u00f6" * 40: "v", "k" * 40: "w"})),
    ("metadata_value_500", "A metadata value of 500 multibyte characters is accepted",
     B(metadata={"k": "\u20ac" * 500, "l": "v" * 500})),
    ("nulls_as_absent", "description and metadata of null count as absent",
     B(description=None, metadata=None)),
    ("charset_parameter", "Content-Type application/json; charset=utf-8 is accepted", B()),
]


class ValidationTest(h.ServiceTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = h.new_user("validation")
        cls.key = cls.db.create_key(cls.user)

    def check_refused(self, body, code, param):
        idem = h.new_key()
        before = self.counts(self.user)
        resp = self.post_charge(self.key, body, idem)
        self.assert_error(resp, 400, code, "invalid_request_error", param)
        self.assertIsNone(resp.header("Idempotent-Replayed"))
        under_key, total = self.key_rows_and_counts(self.user, idem)
        self.assertEqual(under_key, (0, 0, 0), "a refused request stored rows")
        self.assertEqual(total, before)
        # The refusal did not consume the key: a corrected request succeeds.
        fixed = self.post_charge(self.key, B(), idem)
        self.assert_json_response(fixed, 201)
        self.assertEqual(fixed.header("Idempotent-Replayed"), "false")
        self.assertEqual(self.key_rows(self.user, idem), (1, 1, 1))

    def check_accepted(self, body, content_type="application/json"):
        resp = self.post_charge(self.key, body, h.new_key(), content_type=content_type)
        obj = self.assert_json_response(resp, 201)
        expected = dict(body)
        self.assert_charge_object(obj, expected)
        row = self.db.query(
            "SELECT amount, coalesce(description, '<null>'), char_length(description),"
            " metadata::text FROM charges WHERE id = %s" % lit(obj["id"]))
        amount, description, nchars, metadata = row.split("|", 3)
        self.assertEqual(int(amount), body["amount"])
        if body.get("description") is None:
            self.assertEqual(description, "<null>")
        else:
            self.assertEqual(description, body["description"])
            self.assertEqual(int(nchars), len(body["description"]))
        self.assertEqual(json.loads(metadata), body.get("metadata") or {})


def _refused_test(body, code, param, doc):
    def test(self):
        self.check_refused(body, code, param)
    test.__doc__ = doc
    return test


def _accepted_test(name, body, doc):
    def test(self):
        if name == "charset_parameter":
            self.check_accepted(body, "application/json; charset=utf-8")
        else:
            self.check_accepted(body)
    test.__doc__ = doc
    return test


for _i, (_name, _doc, _body, _code, _param) in enumerate(REFUSED):
    setattr(ValidationTest, "test_refuses_%02d_%s" % (_i, _name), _refused_test(_body, _code, _param, _doc))
for _i, (_name, _doc, _body) in enumerate(ACCEPTED):
    setattr(ValidationTest, "test_accepts_%02d_%s" % (_i, _name), _accepted_test(_name, _body, _doc))


class IdempotencyKeyHeaderTest(h.ServiceTestCase):

    def post_with_raw_key(self, key, idem_value):
        """Posts a valid body with an Idempotency-Key header of arbitrary bytes."""
        return self.server.request("POST", "/v1/charges", B(), {
            "Authorization": "Bearer " + key, "Content-Type": "application/json",
            "Idempotency-Key": idem_value})

    def assert_key_refused(self, user, key, resp, code):
        self.assert_error(resp, 400, code, "invalid_request_error")
        self.assertEqual(self.counts(user), (0, 0, 0))

    def test_missing_key(self):
        """A charge without Idempotency-Key answers 400 idempotency_key_missing and stores nothing"""
        user, key = self.make_user()
        self.assert_key_refused(user, key, self.post_charge(key, B(), None), "idempotency_key_missing")

    def test_empty_key(self):
        """An empty Idempotency-Key answers 400 idempotency_key_invalid"""
        user, key = self.make_user()
        self.assert_key_refused(user, key, self.post_with_raw_key(key, ""), "idempotency_key_invalid")

    def test_key_of_256_characters(self):
        """An Idempotency-Key of 256 characters answers 400 idempotency_key_invalid"""
        user, key = self.make_user()
        self.assert_key_refused(user, key, self.post_charge(key, B(), "k" * 256), "idempotency_key_invalid")

    def test_key_of_255_characters(self):
        """An Idempotency-Key of 255 printable characters is accepted, stored whole and replays"""
        user, key = self.make_user()
        idem = ("abc-_.~!*'()\"{} =+/" * 20)[:255]
        first = self.post_charge(key, B(), idem)
        self.assert_json_response(first, 201)
        self.assertEqual(self.db.query(
            "SELECT key FROM idempotency_keys WHERE user_id = %s" % lit(user)), idem)
        again = self.post_charge(key, B(), idem)
        self.assertEqual((again.status, again.body), (201, first.body))
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.counts(user), (1, 1, 1))

    def test_key_with_non_ascii_bytes(self):
        """An Idempotency-Key with non-ASCII (UTF-8) bytes answers 400 idempotency_key_invalid"""
        user, key = self.make_user()
        for value in ("k\u00e9y".encode("utf-8"), b"key-\xe2\x82\xac", b"\xff"):
            self.assert_key_refused(user, key, self.post_with_raw_key(key, value), "idempotency_key_invalid")

    def test_key_with_control_characters(self):
        """An Idempotency-Key with a control character (\\x01, DEL, tab) answers a JSON 400 and stores nothing"""
        user, key = self.make_user()
        for value in ("a\x01b", "a\x7fb", "a\tb"):
            resp = self.post_with_raw_key(key, value)
            # The HTTP parser may refuse the whole message before the handler sees the key.
            body = self.assert_json_response(resp, 400)
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            self.assertIn(code, ("idempotency_key_invalid", "request_malformed"), "%r: %r" % (value, body))
            self.assert_error(resp, 400, code, "invalid_request_error")
        self.assertEqual(self.counts(user), (0, 0, 0))
