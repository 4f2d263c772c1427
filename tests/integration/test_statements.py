"""test_statements.py - every prepared statement matches the schema's functions by argument name."""

import harness as h


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    h.teardown_module(__name__)


class StatementContractTest(h.ServiceTestCase):

    def test_a_renamed_function_argument_stops_the_service_instead_of_shifting_values(self):
        """A SQL function whose argument was renamed fails to prepare: /readyz says 503 and the log names the statement"""
        self.assertEqual(self.get("/readyz").status, 200)
        # The same signature by position, another name: a positional call would still run it.
        self.db.query("DROP FUNCTION purge_idempotency_keys(integer);"
                      " CREATE FUNCTION purge_idempotency_keys(p_limit integer) RETURNS bigint"
                      " LANGUAGE sql AS 'SELECT 0::bigint'")
        server = h.Server(self.db.app_url)
        self.addCleanup(server.remove_log)
        server.start()
        self.addCleanup(server.stop)
        self.assertEqual(server.request("GET", "/readyz").status, 503)
        h.poll(lambda: "preparing idem_purge failed" in server.log(),
               message="the log line naming the statement")
        self.assertIn("p_batch", server.log())
