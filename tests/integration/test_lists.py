"""test_lists.py - GET /v1/charges, /v1/refunds and /v1/events: keyset pages, cursors, filters, indexes.

Lists are newest first by (created, id), limit 1..100 (default 10), with starting_after /
ending_before cursors that must be the user's own objects. Cases set created explicitly with
psql where the order or a filter must be deterministic.
"""

import os
import subprocess
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import new_key, sql_literal  # noqa: E402

LIST_KEYS = ["object", "url", "has_more", "data"]
# The three lists, with the prefix of their ids.
LISTS = {"/v1/charges": "ch_", "/v1/refunds": "re_", "/v1/events": "evt_"}
# Hundreds of requests per user: no rate limit gets in the way.
SERVER_ENV = {"PAYMENTS_RATE_LIMIT": "0"}


def setUpModule():
    harness.setup_module(__name__)


def tearDownModule():
    harness.teardown_module(__name__)


class ListTestCase(harness.ServiceTestCase):
    """Helpers: create charges and refunds, fetch pages, read the expected order from the database."""

    server_env = SERVER_ENV

    def make_charges(self, key, n, threads=8, amount=1000):
        """Creates n charges over HTTP, threads at a time; returns their ids."""
        ids = [None] * n
        errors = []
        lock = threading.Lock()
        counter = iter(range(n))

        def worker():
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                resp = self.post_charge(key, harness.charge_body(amount=amount), new_key())
                if resp.status != 201:
                    errors.append(resp)
                    return
                ids[i] = resp.json()["id"]

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        self.assertEqual(errors, [], "creating charges failed")
        self.assertNotIn(None, ids)
        return ids

    def make_refund(self, key, charge_id, amount):
        resp = self.post_charge(key, {"charge": charge_id, "amount": amount}, new_key(),
                                path="/v1/refunds")
        return self.assert_json_response(resp, 201)

    def page(self, key, path, **params):
        """GET path?params as a 200 list; checks the envelope and returns it."""
        query = urllib.parse.urlencode(params)
        resp = self.get(path + ("?" + query if query else ""), key)
        body = self.assert_json_response(resp, 200)
        self.assertEqual(list(body.keys()), LIST_KEYS, "list envelope %r" % body)
        self.assertEqual(body["object"], "list")
        self.assertEqual(body["url"], path)
        self.assertIsInstance(body["has_more"], bool)
        self.assertIsInstance(body["data"], list)
        return body

    def ids(self, key, path, **params):
        return [o["id"] for o in self.page(key, path, **params)["data"]]

    def db_order(self, table, user, where="true"):
        """The ids of user's rows in table, newest first by (created, id), as lists must show them."""
        out = self.db.query("SELECT id FROM %s WHERE user_id = %s AND (%s) ORDER BY created DESC, id DESC"
                            % (table, sql_literal(user), where))
        return out.split("\n") if out else []

    def set_created(self, table, ids_to_seconds):
        """Sets created of each id to the given Unix seconds (a number, may be fractional)."""
        values = ", ".join("(%s, %s::numeric)" % (sql_literal(i), sql_literal(repr(s)))
                           for i, s in ids_to_seconds.items())
        self.db.query("UPDATE %s t SET created = to_timestamp(v.s) FROM (VALUES %s) AS v(id, s)"
                      " WHERE t.id = v.id" % (table, values))


class ListShapeTest(ListTestCase):
    """The envelope, the default and bounds of limit, and which objects each list shows."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # alice: 12 charges, 3 refunds; bob: 2 charges, 1 refund.
        helper = cls("test_envelope_of_every_list")
        cls.alice, cls.alice_key = helper.make_user("alice")
        cls.bob, cls.bob_key = helper.make_user("bob")
        cls.alice_charges = helper.make_charges(cls.alice_key, 12, threads=1)
        cls.bob_charges = helper.make_charges(cls.bob_key, 2, threads=1)
        cls.alice_refunds = [helper.make_refund(cls.alice_key, cls.alice_charges[i], 100)["id"]
                             for i in range(3)]
        cls.bob_refunds = [helper.make_refund(cls.bob_key, cls.bob_charges[0], 100)["id"]]

    def test_envelope_of_every_list(self):
        """Each list answers {"object":"list","url","has_more","data"} in that order"""
        for path in LISTS:
            with self.subTest(path=path):
                resp = self.get(path, self.alice_key)
                self.assert_json_response(resp, 200)
                self.assertTrue(resp.body.startswith(
                    b'{"object":"list","url":"%s","has_more":' % path.encode()), resp.body[:80])
                self.page(self.alice_key, path)

    def test_default_limit_is_ten_and_newest_first(self):
        """Without limit a list holds the 10 newest objects, newest first, and has_more"""
        expected = {"/v1/charges": self.db_order("charges", self.alice),
                    "/v1/refunds": self.db_order("refunds", self.alice),
                    "/v1/events": self.db_order("outbox_events", self.alice)}
        self.assertEqual(len(expected["/v1/charges"]), 12)
        self.assertEqual(expected["/v1/charges"], list(reversed(self.alice_charges)),
                         "charges created one after another are listed newest first")
        for path, order in expected.items():
            with self.subTest(path=path):
                body = self.page(self.alice_key, path)
                self.assertEqual([o["id"] for o in body["data"]], order[:10])
                self.assertIs(body["has_more"], len(order) > 10)
                for obj in body["data"]:
                    self.assertTrue(obj["id"].startswith(LISTS[path]))

    def test_list_elements_are_the_objects_the_api_returns(self):
        """List elements are the same objects GET /v1/charges/{id} and /v1/refunds/{id} return"""
        for path, obj_id in (("/v1/charges", self.alice_charges[-1]),
                             ("/v1/refunds", self.alice_refunds[-1])):
            with self.subTest(path=path):
                first = self.page(self.alice_key, path, limit=1)["data"][0]
                self.assertEqual(first["id"], obj_id)
                one = self.assert_json_response(self.get("%s/%s" % (path, obj_id), self.alice_key), 200)
                self.assertEqual(first, one)

    def test_limit_bounds(self):
        """limit=1 and limit=100 are accepted; has_more tells whether more objects follow"""
        for path in LISTS:
            with self.subTest(path=path):
                total = len(self.ids(self.alice_key, path, limit=100))
                body = self.page(self.alice_key, path, limit=100)
                self.assertIs(body["has_more"], False)
                one = self.page(self.alice_key, path, limit=1)
                self.assertEqual(len(one["data"]), 1)
                self.assertIs(one["has_more"], total > 1)
                exact = self.page(self.alice_key, path, limit=total)
                self.assertEqual((len(exact["data"]), exact["has_more"]), (total, False))
                short = self.page(self.alice_key, path, limit=total - 1)
                self.assertEqual((len(short["data"]), short["has_more"]), (total - 1, True))

    def test_invalid_limit_is_400_on_param_limit(self):
        """limit 0, 101, -1, abc, 1.5, 1e2 or empty is refused with 400 on param limit"""
        for path in LISTS:
            for value in ("0", "101", "-1", "abc", "1.5", "1e2", "", "10000000000000"):
                with self.subTest(path=path, limit=value):
                    self.assert_error(self.get("%s?limit=%s" % (path, value), self.alice_key), 400,
                                      "parameter_invalid", "invalid_request_error", param="limit")

    def test_lists_show_only_the_users_own_objects(self):
        """Each user's lists hold only their own charges, refunds and events"""
        self.assertEqual(self.ids(self.bob_key, "/v1/charges", limit=100),
                         list(reversed(self.bob_charges)))
        self.assertEqual(self.ids(self.bob_key, "/v1/refunds", limit=100), self.bob_refunds)
        bob_events = self.page(self.bob_key, "/v1/events", limit=100)["data"]
        self.assertEqual([e["id"] for e in bob_events], self.db_order("outbox_events", self.bob))
        self.assertEqual(len(bob_events), 4)   # two charge.succeeded, refund.created, charge.refunded
        alice_objects = set(self.alice_charges) | set(self.alice_refunds)
        for e in bob_events:
            self.assertNotIn(e["data"]["object"]["id"], alice_objects)
        for path in LISTS:
            with self.subTest(path=path):
                alice_ids = set(self.ids(self.alice_key, path, limit=100))
                bob_ids = set(self.ids(self.bob_key, path, limit=100))
                self.assertEqual(alice_ids & bob_ids, set())

    def test_cursors_must_be_the_users_own_objects(self):
        """starting_after / ending_before of another user, an unknown or a malformed id is 400 on that param"""
        cursors = {
            "/v1/charges": (self.bob_charges[0], "ch_" + "0" * 24, self.alice_refunds[0]),
            "/v1/refunds": (self.bob_refunds[0], "re_" + "0" * 24, self.alice_charges[0]),
            "/v1/events": (self.db_order("outbox_events", self.bob)[0], "evt_" + "0" * 24,
                           self.alice_charges[0]),
        }
        for path, bad_ids in cursors.items():
            for param in ("starting_after", "ending_before"):
                for bad in bad_ids + ("nope", ""):
                    with self.subTest(path=path, param=param, id=bad):
                        self.assert_error(self.get("%s?%s=%s" % (path, param, bad), self.alice_key),
                                          400, "parameter_invalid", param=param)

    def test_both_cursors_at_once_are_refused(self):
        """starting_after and ending_before together are refused with 400"""
        a, b = self.db_order("charges", self.alice)[2:4]
        resp = self.get("/v1/charges?starting_after=%s&ending_before=%s" % (a, b), self.alice_key)
        err = self.assert_error(resp, 400, "parameter_invalid")
        self.assertIn(err["param"], ("starting_after", "ending_before"))

    def test_lists_need_an_api_key(self):
        """Lists without an API key answer 401"""
        for path in LISTS:
            with self.subTest(path=path):
                self.assert_error(self.get(path), 401, "api_key_missing")


class PaginationTest(ListTestCase):
    """Keyset pagination through 250 charges while new charges keep arriving."""

    def test_paging_250_charges_by_7_while_charges_are_created(self):
        """Pages of 7 through 250 charges, with a new charge created between pages, show every charge exactly once; ending_before walks back the same way"""
        user, key = self.make_user("pager")
        self.make_charges(key, 250)
        # Groups of five charges share one created second (pages of 7 end inside a group), so
        # the order and the cursors must use the id to break ties.
        order_by_id = sorted(self.db.query("SELECT id FROM charges WHERE user_id = %s"
                                           % sql_literal(user)).split("\n"))
        self.set_created("charges", {cid: 1700000000 + i // 5 for i, cid in enumerate(order_by_id)})
        expected = self.db_order("charges", user)
        self.assertEqual(len(expected), 250)

        seen, new, pages = [], [], 0
        cursor = None
        while True:
            params = {"limit": 7}
            if cursor:
                params["starting_after"] = cursor
            body = self.page(key, "/v1/charges", **params)
            pages += 1
            ids = [c["id"] for c in body["data"]]
            seen.extend(ids)
            if not body["has_more"]:
                break
            self.assertEqual(len(ids), 7, "a page before the last is not full")
            cursor = ids[-1]
            # A new charge arrives between pages.
            new.extend(self.make_charges(key, 1, threads=1))
        self.assertEqual(pages, 36)   # ceil(250 / 7)
        self.assertEqual(len(seen), len(set(seen)), "a charge was listed twice")
        self.assertEqual(seen, expected, "paging forward lost or reordered charges")
        self.assertEqual(set(seen) & set(new), set(), "charges newer than the first page appeared later")

        # Backwards from the oldest charge, with more charges arriving between pages: every
        # charge newer than the cursor, each once, up to the newest.
        back, cursor = [], seen[-1]
        while True:
            body = self.page(key, "/v1/charges", limit=7, ending_before=cursor)
            ids = [c["id"] for c in body["data"]]
            self.assertTrue(ids, "an empty page before the top")
            back[:0] = ids
            if not body["has_more"]:
                break
            self.assertEqual(len(ids), 7)
            cursor = ids[0]
            if len(back) < 70:
                new.extend(self.make_charges(key, 1, threads=1))
        final = self.db_order("charges", user)
        self.assertEqual(len(final), 250 + len(new))
        self.assertEqual(len(back), len(set(back)), "a charge was listed twice going back")
        self.assertEqual(back, final[:-1], "paging back lost or reordered charges")
        # And the page right below the newest, forward from it, lines up with the first page.
        self.assertEqual(self.ids(key, "/v1/charges", limit=7, starting_after=final[0]), final[1:8])

    def test_cursor_pages_of_refunds_and_events(self):
        """Refunds and events page with both cursors as charges do"""
        user, key = self.make_user("pager2")
        charges = self.make_charges(key, 4, threads=1)
        for cid in charges:
            for _ in range(3):
                self.make_refund(key, cid, 10)
        for path, table in (("/v1/refunds", "refunds"), ("/v1/events", "outbox_events")):
            with self.subTest(path=path):
                expected = self.db_order(table, user)
                self.assertGreaterEqual(len(expected), 12)
                got, cursor = [], None
                while True:
                    params = {"limit": 5}
                    if cursor:
                        params["starting_after"] = cursor
                    body = self.page(key, path, **params)
                    got.extend(o["id"] for o in body["data"])
                    if not body["has_more"]:
                        break
                    cursor = got[-1]
                self.assertEqual(got, expected)
                back, cursor = [], expected[-1]
                while True:
                    body = self.page(key, path, limit=5, ending_before=cursor)
                    back[:0] = [o["id"] for o in body["data"]]
                    if not body["has_more"]:
                        break
                    cursor = back[0]
                self.assertEqual(back, expected[:-1])


class CreatedFilterTest(ListTestCase):
    """created[gte] / created[lt] in Unix seconds, with created set explicitly in the database."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls("test_created_filters_select_a_range")
        cls.user, cls.key = helper.make_user("filter")
        cls.charges = helper.make_charges(cls.key, 6, threads=1)
        # charge i was created at 1700000000 + 100 * i.
        helper.set_created("charges", {c: 1700000000 + 100 * i for i, c in enumerate(cls.charges)})

    def expect(self, *indexes):
        return [self.charges[i] for i in indexes]

    def test_created_filters_select_a_range(self):
        """created[gte] is inclusive, created[lt] exclusive, and together they select a range"""
        cases = [
            ({"created[gte]": 1700000100}, self.expect(5, 4, 3, 2, 1)),
            ({"created[lt]": 1700000300}, self.expect(2, 1, 0)),
            ({"created[gte]": 1700000100, "created[lt]": 1700000300}, self.expect(2, 1)),
            ({"created[gte]": 1700000101, "created[lt]": 1700000300}, self.expect(2)),
            ({"created[gte]": 1700000600}, []),
            ({"created[lt]": 1700000000}, []),
            ({"created[gte]": 0}, self.expect(5, 4, 3, 2, 1, 0)),
        ]
        for params, want in cases:
            with self.subTest(params=params):
                self.assertEqual(self.ids(self.key, "/v1/charges", **params), want)

    def test_created_filters_accept_percent_encoded_brackets(self):
        """created%5Bgte%5D and created%5Blt%5D work like created[gte] and created[lt]"""
        resp = self.get("/v1/charges?created%5Bgte%5D=1700000100&created%5Blt%5D=1700000300", self.key)
        body = self.assert_json_response(resp, 200)
        self.assertEqual([c["id"] for c in body["data"]], self.expect(2, 1))
        resp = self.get("/v1/charges?created[gte]=1700000400", self.key)
        self.assertEqual([c["id"] for c in self.assert_json_response(resp, 200)["data"]],
                         self.expect(5, 4))

    def test_created_filter_with_limit_and_cursor(self):
        """A created filter combines with limit and starting_after, and has_more respects the filter"""
        body = self.page(self.key, "/v1/charges", **{"created[lt]": 1700000400, "limit": 2})
        self.assertEqual(([c["id"] for c in body["data"]], body["has_more"]), (self.expect(3, 2), True))
        body = self.page(self.key, "/v1/charges", **{"created[lt]": 1700000400, "limit": 2,
                                                     "starting_after": self.charges[2]})
        self.assertEqual(([c["id"] for c in body["data"]], body["has_more"]), (self.expect(1, 0), False))
        body = self.page(self.key, "/v1/charges", **{"created[gte]": 1700000300, "limit": 2,
                                                     "ending_before": self.charges[0]})
        self.assertEqual(([c["id"] for c in body["data"]], body["has_more"]), (self.expect(4, 3), True))

    def test_invalid_created_filters_are_400_on_their_param(self):
        """A created filter that is not whole Unix seconds is refused with 400 on its param"""
        for param in ("created[gte]", "created[lt]"):
            for value in ("abc", "-1", "1.5", "", "2024-01-01"):
                with self.subTest(param=param, value=value):
                    resp = self.get("/v1/charges?%s=%s" % (param, urllib.parse.quote(value)), self.key)
                    self.assert_error(resp, 400, "parameter_invalid", param=param)

    def test_created_shown_is_the_second_the_filters_use(self):
        """An object's created (Unix seconds, rounded down) is found by created[gte] of that value and excluded by created[lt] of it"""
        user, key = self.make_user("second")
        (cid,) = self.make_charges(key, 1, threads=1)
        self.set_created("charges", {cid: 1700000500.7})
        obj = self.assert_json_response(self.get("/v1/charges/" + cid, key), 200)
        self.assertEqual(obj["created"], 1700000500)
        self.assertEqual(self.ids(key, "/v1/charges", **{"created[gte]": obj["created"]}), [cid])
        self.assertEqual(self.ids(key, "/v1/charges", **{"created[lt]": obj["created"]}), [])
        self.assertEqual(self.ids(key, "/v1/charges", **{"created[lt]": obj["created"] + 1}), [cid])

    def test_refunds_and_events_filter_by_created(self):
        """Refunds and events filter by created too"""
        user, key = self.make_user("filter2")
        (cid,) = self.make_charges(key, 1, threads=1)
        refunds = [self.make_refund(key, cid, 10)["id"] for _ in range(3)]
        self.set_created("refunds", {r: 1700000000 + 100 * i for i, r in enumerate(refunds)})
        self.assertEqual(self.ids(key, "/v1/refunds", **{"created[gte]": 1700000100}),
                         [refunds[2], refunds[1]])
        self.assertEqual(self.ids(key, "/v1/refunds", **{"created[lt]": 1700000100, "charge": cid}),
                         [refunds[0]])
        events = self.db_order("outbox_events", user)
        self.set_created("outbox_events", {e: 1600000000 + 10 * i for i, e in enumerate(reversed(events))})
        self.assertEqual(self.ids(key, "/v1/events", **{"created[gte]": 1600000010, "created[lt]": 1600000030}),
                         [events[-3], events[-2]])


class ListIndexTest(ListTestCase):
    """An index serves every list query: the planner is asked, with sequential scans disabled."""

    def explain(self, sql):
        return self.db.query("SET enable_seqscan = off; SET enable_bitmapscan = off;"
                             " EXPLAIN (COSTS OFF) " + sql)

    def test_list_indexes_exist(self):
        """The newest-first indexes exist, sorted by created and id descending"""
        defs = dict(line.split("|", 1) for line in self.db.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").split("\n"))
        for name, cols in (("charges_user_created_idx", "(user_id, created DESC, id DESC)"),
                           ("refunds_user_created_idx", "(user_id, created DESC, id DESC)"),
                           ("refunds_charge_created_idx", "(charge_id, created DESC, id DESC)"),
                           ("outbox_events_user_created_idx", "(user_id, created DESC, id DESC)")):
            with self.subTest(index=name):
                self.assertIn(name, defs)
                self.assertTrue(defs[name].endswith(cols), defs[name])

    def test_keyset_query_shapes_use_the_indexes(self):
        """Queries shaped like each page (user, cursor on (created, id), newest first, limit) are index scans"""
        t, i = "'2024-01-01 00:00:00+00'", "'x'"
        shapes = [
            ("charges_user_created_idx",
             "SELECT * FROM charges WHERE user_id = 'u' AND (created, id) < (%s, %s)"
             " ORDER BY created DESC, id DESC LIMIT 8" % (t, i)),
            ("charges_user_created_idx",
             "SELECT * FROM charges WHERE user_id = 'u' AND (created, id) > (%s, %s)"
             " ORDER BY created, id LIMIT 8" % (t, i)),
            ("charges_user_created_idx",
             "SELECT * FROM charges WHERE user_id = 'u' AND created >= %s AND created < %s"
             " ORDER BY created DESC, id DESC LIMIT 11" % (t, t)),
            ("refunds_user_created_idx",
             "SELECT * FROM refunds WHERE user_id = 'u' AND (created, id) < (%s, %s)"
             " ORDER BY created DESC, id DESC LIMIT 8" % (t, i)),
            ("refunds_charge_created_idx",
             "SELECT * FROM refunds WHERE user_id = 'u' AND charge_id = 'ch_x'"
             " ORDER BY created DESC, id DESC LIMIT 8"),
            ("outbox_events_user_created_idx",
             "SELECT * FROM outbox_events WHERE user_id = 'u' AND (created, id) < (%s, %s)"
             " ORDER BY created DESC, id DESC LIMIT 8" % (t, i)),
            ("outbox_events_user_created_idx",
             "SELECT * FROM outbox_events WHERE user_id = 'u' AND type = 'refund.created'"
             " ORDER BY created DESC, id DESC LIMIT 8"),
        ]
        for index, sql in shapes:
            with self.subTest(sql=sql):
                plan = self.explain(sql)
                self.assertIn("Index Scan", plan)
                self.assertIn("using %s on" % index, plan)
                self.assertNotIn("Seq Scan", plan)
                self.assertNotIn("Sort", plan, "the index already gives the order")
                if "(created, id)" in sql:
                    self.assertRegex(plan, r"Index Cond: .*ROW\(created, id\) [<>] ROW\(")

    def auto_explain(self, calls):
        """Runs each SQL call with auto_explain logging nested statements; returns the notices."""
        env = dict(os.environ)
        env.pop("PGOPTIONS", None)
        args = ["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", self.db.url,
                "-c", "LOAD 'auto_explain'",
                "-c", "SET auto_explain.log_min_duration = 0",
                "-c", "SET auto_explain.log_nested_statements = on",
                "-c", "SET auto_explain.log_level = notice",
                "-c", "SET client_min_messages = notice",
                "-c", "SET enable_seqscan = off",
                "-c", "SET enable_bitmapscan = off"]
        for sql in calls:
            args += ["-c", sql]
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=30)
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0 and 'could not access file "auto_explain"' in err:
            self.skipTest("auto_explain is not available: %s" % err.strip())
        self.assertEqual(proc.returncode, 0, err)
        return err

    def test_list_page_queries_are_served_by_the_indexes(self):
        """The queries list_page actually runs, for every list and both cursors, are index scans"""
        user, key = self.make_user("plans")
        charges = self.make_charges(key, 3, threads=1)
        for cid in charges:
            self.make_refund(key, cid, 10)
        u = sql_literal(user)
        c0 = self.db_order("charges", user)[1]
        r0 = self.db_order("refunds", user)[1]
        e0 = self.db_order("outbox_events", user)[1]
        cases = [
            ("charges_user_created_idx", "charges", "NULL, NULL", "NULL, NULL"),
            ("charges_user_created_idx", "charges", "%s, NULL" % sql_literal(c0), "NULL, NULL"),
            ("charges_user_created_idx", "charges", "NULL, %s" % sql_literal(c0), "NULL, NULL"),
            ("refunds_user_created_idx", "refunds", "%s, NULL" % sql_literal(r0), "NULL, NULL"),
            ("refunds_charge_created_idx", "refunds", "NULL, NULL",
             "'charge_id', %s" % sql_literal(charges[0])),
            ("outbox_events_user_created_idx", "events", "NULL, %s" % sql_literal(e0), "NULL, NULL"),
            ("outbox_events_user_created_idx", "events", "NULL, NULL", "'type', 'refund.created'"),
        ]
        for index, kind, cursors, filt in cases:
            with self.subTest(kind=kind, cursors=cursors, filter=filt):
                notices = self.auto_explain([
                    "SELECT has_more FROM list_page('%s', %s, 7, %s, NULL, NULL, %s)"
                    % (kind, u, cursors, filt)])
                plans = [p for p in notices.split("NOTICE:") if "WITH page AS" in p]
                self.assertEqual(len(plans), 1, notices)
                plan = plans[0]
                self.assertIn("using %s on" % index, plan)
                self.assertNotIn("Seq Scan", plan)
                if cursors != "NULL, NULL":
                    self.assertRegex(plan, r"Index Cond: .*ROW\(created, id\) [<>] ROW\(")
