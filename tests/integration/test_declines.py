"""test_declines.py - the test processor's declines: 402 card_error, a failed charge and its event."""

import json

import harness as h
from harness import sql_literal as lit


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class DeclineTest(h.ServiceTestCase):

    def check_decline(self, token, decline_code):
        user, key = self.make_user()
        idem = h.new_key()
        body = h.charge_body(source=token, amount=777)
        resp = self.post_charge(key, body, idem)
        err = self.assert_error(resp, 402, "card_declined", "card_error")
        self.assertEqual(err["decline_code"], decline_code)
        self.assertRegex(err["charge"], h.CHARGE_ID_RE)
        self.assertEqual(resp.header("Idempotent-Replayed"), "false")
        charge_id = err["charge"]

        # The charge is stored, failed, with its charge.failed event and the 402 under the key.
        self.assertEqual(self.counts(user), (1, 1, 1))
        row = self.db.query(
            "SELECT id, status, failure_code, decline_code, amount, source, idempotency_key"
            " FROM charges WHERE user_id = %s" % lit(user)).split("|")
        self.assertEqual(row, [charge_id, "failed", "card_declined", decline_code, "777", token, idem])
        krow = self.db.query(
            "SELECT status_code || '|' || object_id FROM idempotency_keys"
            " WHERE user_id = %s AND key = %s" % (lit(user), lit(idem)))
        self.assertEqual(krow, "402|" + charge_id)
        got = self.get("/v1/charges/" + charge_id, key)
        obj = self.assert_json_response(got, 200)
        self.assert_charge_object(obj, body, status="failed")
        self.assertEqual((obj["id"], obj["failure_code"], obj["decline_code"]),
                         (charge_id, "card_declined", decline_code))
        erow = self.db.query(
            "SELECT type, charge_id, data::text FROM outbox_events WHERE user_id = %s" % lit(user))
        etype, echarge, data = erow.split("|", 2)
        self.assertEqual((etype, echarge), ("charge.failed", charge_id))
        self.assertEqual(json.loads(data), obj, "the event's data is not the charge object")

        # A retry replays the 402 byte for byte and writes nothing.
        again = self.post_charge(key, body, idem)
        self.assertEqual(again.status, 402)
        self.assertEqual(again.body, resp.body)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.counts(user), (1, 1, 1))
        return err

    def test_generic_decline(self):
        """tok_chargeDeclined answers 402 card_declined with decline_code generic_decline and stores a failed charge"""
        self.check_decline("tok_chargeDeclined", "generic_decline")

    def test_insufficient_funds(self):
        """tok_chargeDeclinedInsufficientFunds answers 402 with decline_code insufficient_funds and stores a failed charge"""
        self.check_decline("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")

    def test_declined_key_conflicts_with_a_different_body(self):
        """A key whose charge was declined answers 409 to a different request, such as a retry with a good card"""
        user, key = self.make_user()
        idem = h.new_key()
        self.assertEqual(self.post_charge(key, h.charge_body(source="tok_chargeDeclined"), idem).status, 402)
        resp = self.post_charge(key, h.charge_body(source="tok_visa"), idem)
        self.assert_error(resp, 409, "idempotency_key_reused")
        self.assertEqual(self.counts(user), (1, 1, 1))
