"""test_read_pool.py - PAYMENTS_READ_DATABASE_URL: GETs on a read pool, the primary as fallback.

Without a standby: the read URL points at a second database of the same
schema that holds only the rows a test copies into it. A GET of an object
that is not there (a standby that has not caught up) is read again from the
primary; a row present only in the read database, changed there, shows that
single-object GETs and lists really go to the read pool; a read URL nobody
answers falls back to the primary, and is then skipped for a second.
tests/ha/test_failover.py reads through a real standby.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402

# The read database: migrated like the module's, empty of the tests' rows.
replica = h.Database(__name__ + "_replica")


def setUpModule():
    h.setup_module(__name__)
    replica.create()


def tearDownModule():
    try:
        replica.drop()
    finally:
        h.teardown_module(__name__)


def copy_rows(src, dst, table, where, then=""):
    """Copies table's rows matching where from database src to dst (no triggers), then runs then in dst."""
    data = h.psql(src.url, "COPY (SELECT * FROM %s WHERE %s) TO STDOUT" % (table, where))
    script = ("SET session_replication_role = replica;\nCOPY %s FROM STDIN;\n%s\n\\.\n%s\n"
              % (table, data, then))
    proc = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", dst.url, "-f", "-"],
                          input=script, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError("copy of %s failed: %s" % (table, proc.stderr))


class ReadPoolTest(h.ServiceTestCase):
    server_env = {"PAYMENTS_READ_DATABASE_URL": replica.app_url, "PAYMENTS_RATE_LIMIT": "0"}

    def create_charge(self, key, **overrides):
        resp = self.post_charge(key, h.charge_body(**overrides), h.new_key())
        self.assertEqual(resp.status, 201, resp)
        return resp.json()

    def test_objects_missing_from_the_read_pool_come_from_the_primary(self):
        """A GET right after a create finds the object though the read database does not have it."""
        _, key = self.make_user("rp")
        charge = self.create_charge(key)
        resp = self.server.request("POST", "/v1/refunds", {"charge": charge["id"], "amount": 100},
                                   {"Authorization": "Bearer " + key,
                                    "Content-Type": "application/json",
                                    "Idempotency-Key": h.new_key()})
        self.assertEqual(resp.status, 201, resp)
        refund = resp.json()
        event = self.db.query("SELECT id FROM outbox_events WHERE charge_id = %s ORDER BY seq LIMIT 1"
                              % h.sql_literal(charge["id"]))
        self.assertEqual(replica.count("charges"), 0, "the read database has no charge")
        for path, obj_id in (("/v1/charges/", charge["id"]), ("/v1/refunds/", refund["id"]),
                             ("/v1/events/", event)):
            resp = self.get(path + obj_id, key)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()["id"], obj_id)
        # Still a 404 when neither has it.
        resp = self.get("/v1/charges/ch_" + "0" * 24, key)
        self.assertEqual(resp.status, 404, resp)

    def test_reads_go_to_the_read_pool(self):
        """A row changed only in the read database is what GET and the list answer."""
        _, key = self.make_user("rp")
        first = self.create_charge(key, description="on the primary")
        second = self.create_charge(key, description="on the primary")
        copy_rows(self.db, replica, "charges", "id = %s" % h.sql_literal(first["id"]),
                  "UPDATE charges SET description = 'on the read pool' WHERE id = %s;"
                  % h.sql_literal(first["id"]))
        resp = self.get("/v1/charges/" + first["id"], key)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["description"], "on the read pool")
        # The list comes from the read pool too, with what it has (a lagging standby's view).
        resp = self.get("/v1/charges", key)
        self.assertEqual(resp.status, 200, resp)
        data = resp.json()["data"]
        self.assertEqual([c["id"] for c in data], [first["id"]])
        self.assertEqual(data[0]["description"], "on the read pool")
        # The other charge, not in the read database, still comes from the primary.
        resp = self.get("/v1/charges/" + second["id"], key)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["description"], "on the primary")

    def test_a_read_pool_that_is_down_falls_back_to_the_primary(self):
        """A read URL nobody answers: GETs and lists are served by the primary."""
        port = h.free_port()
        down = h.Server(self.db.app_url, {
            "PAYMENTS_READ_DATABASE_URL": "postgresql://nobody@127.0.0.1:%d/none" % port,
            "PAYMENTS_DB_CONNECT_TIMEOUT": "1s", "PAYMENTS_RATE_LIMIT": "0"})
        down.start()
        try:
            _, key = self.make_user("rp")
            charge = self.create_charge(key)
            auth = {"Authorization": "Bearer " + key}
            resp = down.request("GET", "/v1/charges/" + charge["id"], headers=auth)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(resp.json()["id"], charge["id"])
            resp = down.request("GET", "/v1/charges", headers=auth)
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual([c["id"] for c in resp.json()["data"]], [charge["id"]])
            # Once it failed, the read pool is skipped for a second: ten more
            # GETs at once do not each try to connect to it again.
            for _ in range(10):
                resp = down.request("GET", "/v1/charges/" + charge["id"], headers=auth)
                self.assertEqual(resp.status, 200, resp)
            tries = down.log().count("database connection failed")
            self.assertGreaterEqual(tries, 1, down.log())
            self.assertLess(tries, 8, "the read pool was tried for each GET:\n" + down.log())
        finally:
            down.stop()
            down.remove_log()


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)
