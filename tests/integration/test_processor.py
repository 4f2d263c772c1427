"""test_processor.py - processor mode end to end: charges pending here, carried by 'payments processor'
through a fault-injecting proxy to a second instance of this service (the processor), both databases checked."""

import json
import os
import re
import tempfile
import time
import urllib.parse

import harness as h
import processors as pr
import webhooks as wh
from harness import sql_literal as lit

UPSTREAM = None


def setUpModule():
    global UPSTREAM
    h.setup_module(__name__)
    UPSTREAM = pr.Upstream(__name__)
    try:
        UPSTREAM.start()
    except Exception:
        h.teardown_module(__name__)
        raise


def tearDownModule():
    UPSTREAM.stop()
    h.teardown_module(__name__)


class ProcessorTestCase(wh.WebhookTestCase):
    """Our server in processor mode (calling the proxy), a relay, a receiver; workers per test."""

    worker_env = None   # a worker for the whole class with these settings (None: none)

    @classmethod
    def setUpClass(cls):
        cls.upstream = UPSTREAM
        cls.proxy = UPSTREAM.proxy
        cls.server_env = dict(wh.WebhookTestCase.server_env,
                              PAYMENTS_PROCESSOR_URL=UPSTREAM.proxy.url)
        super().setUpClass()
        cls.workers = []
        if cls.worker_env is not None:
            cls.worker = cls.new_worker(cls.worker_env)

    @classmethod
    def tearDownClass(cls):
        for w in cls.workers:
            w.stop()
            w.remove_log()
        super().tearDownClass()

    @classmethod
    def new_worker(cls, env=None, start=True):
        w = pr.Worker(cls.db.app_url, UPSTREAM, env)
        cls.workers.append(w)
        return w.start() if start else w

    def setUp(self):
        self.proxy.default = "pass"
        self.proxy.get_fault = None

    # --- helpers ---

    def create_pending(self, key, **overrides):
        """POST /v1/charges; asserts the 201 pending answer and returns (charge, idem)."""
        idem = h.new_key()
        resp = self.post_charge(key, h.charge_body(**overrides), idem)
        obj = self.assert_json_response(resp, 201)
        self.assertEqual(obj["status"], "pending")
        self.assertFalse(obj["captured"])
        self.assertIsNone(obj["failure_code"])
        return obj, idem

    def wait_status(self, key, charge_id, statuses=("succeeded", "failed"), timeout=15):
        def final():
            obj = self.get_json(key, "/v1/charges/" + charge_id)
            return obj if obj["status"] in statuses else None
        return h.poll(final, timeout=timeout, message="charge %s to reach %s" % (charge_id, statuses))

    def scrape(self, port):
        """The worker's GET /metrics on port, as {name{labels}: value}."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return dict((m.group(1), float(m.group(2))) for m in
                    re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.M))

    def our_row(self, charge_id):
        row = self.db.query("SELECT status, coalesce(processor_ref, ''),"
                            " review_required_at IS NOT NULL,"
                            " (SELECT count(*) FROM processor_jobs WHERE charge_id = c.id)"
                            " FROM charges c WHERE id = %s" % lit(charge_id))
        status, ref, flagged, jobs = row.split("|")
        return status, ref, flagged == "t", int(jobs)

    def event_types(self, charge_id):
        rows = self.db.query("SELECT type FROM outbox_events WHERE charge_id = %s ORDER BY seq"
                             % lit(charge_id))
        return [r for r in rows.split("\n") if r]

    def assert_one_processor_charge(self, charge_id, status="succeeded", amount=2000):
        rows = self.upstream.charges_for(charge_id)
        self.assertEqual(len(rows), 1, "processor charges for %s: %r" % (charge_id, rows))
        ref, st, amt, _ = rows[0]
        self.assertEqual((st, int(amt)), (status, amount))
        # Made under our charge id as its Idempotency-Key, with it in metadata too.
        meta = self.upstream.db.query(
            "SELECT idempotency_key, metadata->>'payments_charge' FROM charges WHERE id = %s"
            % lit(ref))
        self.assertEqual(meta, "%s|%s" % (charge_id, charge_id))
        return ref


class ProcessorFlowTest(ProcessorTestCase):
    worker_env = {}

    def test_charge_is_pending_then_succeeds_with_one_charge_at_the_processor(self):
        """A charge answers 201 pending; the worker makes exactly one processor charge keyed by our id; ours succeeds with its reference and the events say so"""
        user, key = self.make_user()
        self.create_endpoint(key, "flow")
        obj, idem = self.create_pending(key)
        final = self.wait_status(key, obj["id"])
        self.assertEqual(final["status"], "succeeded")
        self.assertTrue(final["captured"])
        self.assertEqual(final["amount_captured"], 2000)
        ref = self.assert_one_processor_charge(obj["id"])
        self.assertEqual(self.our_row(obj["id"]), ("succeeded", ref, False, 0))
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.succeeded"])
        # A replay returns the stored answer: the pending charge as first answered.
        replay = self.post_charge(key, h.charge_body(), idem)
        self.assertEqual(replay.status, 201)
        self.assertEqual(replay.json(), obj)
        # Both events reach the webhook endpoint, the last with the final charge.
        events = [e for e, _, _ in self.events_of(user)]
        self.receiver.wait_delivered("flow", events)
        bodies = [json.loads(r.body) for r in self.receiver.delivered("flow")]
        self.assertEqual([b["type"] for b in bodies], ["charge.pending", "charge.succeeded"])
        self.assertEqual(bodies[-1]["data"]["object"]["status"], "succeeded")

    def test_decline_fails_with_the_processors_decline_code(self):
        """tok_chargeDeclinedInsufficientFunds: pending, then failed with card_declined / insufficient_funds, one failed charge at the processor, a charge.failed event"""
        _, key = self.make_user()
        obj, _ = self.create_pending(key, source="tok_chargeDeclinedInsufficientFunds")
        final = self.wait_status(key, obj["id"])
        self.assertEqual((final["status"], final["failure_code"], final["decline_code"]),
                         ("failed", "card_declined", "insufficient_funds"))
        self.assertFalse(final["captured"])
        ref = self.assert_one_processor_charge(obj["id"], status="failed")
        self.assertEqual(self.our_row(obj["id"]), ("failed", ref, False, 0))
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.failed"])

    def test_every_proxy_fault_ends_with_exactly_one_processor_charge(self):
        """500/429/409/idempotency_error/drop before forwarding: the lookup by our reference finds nothing and the call is made again with the same key; 500/timeout after it: the lookup finds the processor's charge and records it without calling again; a delay: one call. Each ends succeeded with one charge at the processor"""
        _, key = self.make_user()
        for fault in ("500_before", "429_before", "409_before", "400idem_before", "drop_before",
                      "500_after", "timeout_after", "drop_after", "delay:0.3"):
            with self.subTest(fault=fault):
                self.proxy.push(fault)
                lookups = len(self.proxy.lookups())
                obj, _ = self.create_pending(key)
                final = self.wait_status(key, obj["id"])
                self.assertEqual(final["status"], "succeeded")
                ref = self.assert_one_processor_charge(obj["id"])
                self.assertEqual(final["id"], obj["id"])
                self.assertEqual(self.our_row(obj["id"])[1], ref)
                seen = self.proxy.requests_for(obj["id"])
                self.assertEqual(seen[0][3], fault)
                self.assertTrue(all(r[:2] == ("POST", "/v1/charges") for r in seen), seen)
                if fault.startswith("drop_"):
                    # libcurl itself sends a request again (same headers, so the same key) when a
                    # reused connection closes unanswered; else the worker retries, as below.
                    self.assertTrue(len(seen) == 2 or len(self.proxy.lookups()) > lookups, seen)
                    self.assertTrue(fault == "drop_after" or len(seen) >= 2, seen)
                elif fault.endswith("_after"):
                    self.assertEqual(len(seen), 1, seen)
                    self.assertGreater(len(self.proxy.lookups()), lookups)
                    self.assertIn("%s succeeded (attempt 2, lookup: found succeeded" % obj["id"],
                                  self.worker.log())
                elif fault != "delay:0.3":
                    self.assertGreaterEqual(len(seen), 2, seen)
                    self.assertGreater(len(self.proxy.lookups()), lookups)
                else:
                    self.assertEqual(len(seen), 1, seen)
                self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.succeeded"])

    def test_a_pending_charge_updated_between_attempts_is_retried_as_first_sent(self):
        """An update of a pending charge (POST /v1/charges/{id}) between a call answered 500 after the processor charged and the retry (its lookup failing too): the retry under the same key is the request first sent, so the processor answers it; ours keeps the update, with its charge.updated event"""
        _, key = self.make_user()
        self.proxy.get_fault = "500_before"
        self.proxy.default = "500_before"
        self.proxy.push("500_after")
        obj, _ = self.create_pending(key, description="first", metadata={"order": "1"})
        h.poll(lambda: len(self.proxy.requests_for(obj["id"])) >= 2, message="a retry")
        resp = self.server.request("POST", "/v1/charges/" + obj["id"],
                                   {"description": "second", "metadata": {"order": "2", "x": "y"}},
                                   self.auth(key, h.new_key()))
        updated = self.assert_json_response(resp, 200)
        self.assertEqual((updated["status"], updated["description"], updated["metadata"]),
                         ("pending", "second", {"order": "2", "x": "y"}))
        self.proxy.default = "pass"
        final = self.wait_status(key, obj["id"])
        self.assertEqual((final["status"], final["description"], final["metadata"]),
                         ("succeeded", "second", {"order": "2", "x": "y"}))
        ref = self.assert_one_processor_charge(obj["id"])
        row = self.upstream.db.query("SELECT metadata::text, description FROM charges WHERE id = %s"
                                     % lit(ref))
        got, desc = row.split("|", 1)
        self.assertEqual((json.loads(got), desc),
                         ({"order": "1", "payments_charge": obj["id"]}, "first"))
        seen = self.proxy.requests_for(obj["id"])
        self.assertEqual(seen[-1][3:], ("pass", 201), seen)
        self.assertEqual(self.event_types(obj["id"]),
                         ["charge.pending", "charge.updated", "charge.succeeded"])
        data = json.loads(self.db.query(
            "SELECT data::text FROM outbox_events WHERE charge_id = %s AND type = 'charge.succeeded'"
            % lit(obj["id"])))
        self.assertEqual(data["metadata"], {"order": "2", "x": "y"})

    def test_metadata_reaches_the_processor_whole(self):
        """Metadata with a 40-character key of 4-byte characters, a description and 49 keys arrive at the processor as sent, plus payments_charge"""
        _, key = self.make_user()
        meta = {"\U0001F600" * 40: "smile", "order": "A&B=C d"}
        meta.update(("k%02d" % i, "v") for i in range(47))
        obj, _ = self.create_pending(key, metadata=meta, description="caf\u00e9 & co")
        self.wait_status(key, obj["id"])
        ref = self.assert_one_processor_charge(obj["id"])
        row = self.upstream.db.query("SELECT metadata::text, description FROM charges WHERE id = %s"
                                     % lit(ref))
        got, desc = row.split("|", 1)
        self.assertEqual(json.loads(got), dict(meta, payments_charge=obj["id"]))
        self.assertEqual(desc, "caf\u00e9 & co")
        # 50 keys leave no room for payments_charge: refused here, before anything is stored.
        meta["k99"] = "v"
        resp = self.post_charge(key, h.charge_body(metadata=meta), h.new_key())
        self.assert_error(resp, 400, "invalid_metadata", param="metadata")

    def test_a_refused_request_fails_the_charge_definitively(self):
        """400 invalid_request_error from the processor (it made no charge, nor will) fails ours with its code, at once, without a retry"""
        _, key = self.make_user()
        self.proxy.push("400_before")
        obj, _ = self.create_pending(key)
        final = self.wait_status(key, obj["id"])
        self.assertEqual((final["status"], final["failure_code"], final["decline_code"]),
                         ("failed", "parameter_invalid", None))
        self.assertEqual(len(self.proxy.requests_for(obj["id"])), 1)
        self.assertEqual(self.upstream.charges_for(obj["id"]), [])
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.failed"])

    def test_refund_and_capture_of_a_pending_charge_are_refused(self):
        """While the processor is unreachable the charge stays pending: a refund or capture is 400 charge_pending; once it succeeds, the refund works"""
        _, key = self.make_user()
        self.proxy.default = "500_before"
        obj, _ = self.create_pending(key)
        resp = self.server.request("POST", "/v1/refunds", {"charge": obj["id"]},
                                   self.auth(key, h.new_key()))
        self.assert_error(resp, 400, "charge_pending")
        resp = self.server.request("POST", "/v1/charges/%s/capture" % obj["id"], {},
                                   self.auth(key, h.new_key()))
        self.assert_error(resp, 400, "charge_pending")
        h.poll(lambda: len(self.proxy.requests_for(obj["id"])) >= 2,
               message="the worker to retry")
        self.assertEqual(self.upstream.charges_for(obj["id"]), [])
        self.assertEqual(self.our_row(obj["id"])[0], "pending")
        self.proxy.default = "pass"
        self.wait_status(key, obj["id"])
        self.refund(key, obj["id"], 500)
        self.assert_one_processor_charge(obj["id"])

    def test_an_authorization_is_refused_in_processor_mode(self):
        """capture=false is 400 parameter_invalid (capture); nothing is written"""
        user, key = self.make_user()
        resp = self.post_charge(key, h.charge_body(capture=False), h.new_key())
        self.assert_error(resp, 400, "parameter_invalid", param="capture")
        self.assertEqual(self.db.count("charges", "user_id = %s" % lit(user)), 0)


class ProcessorCrashTest(ProcessorTestCase):
    """Workers that _exit (as kill -9 would) at each phase; a healthy worker finishes the job."""

    def crash_then_recover(self, phase):
        _, key = self.make_user()
        obj, _ = self.create_pending(key)
        crasher = self.new_worker({"PAYMENTS_PROCESSOR_TEST_CRASH": phase + ":100"})
        self.assertEqual(crasher.wait(), 99)
        self.assertEqual(self.our_row(obj["id"])[0], "pending")
        at_processor = len(self.upstream.charges_for(obj["id"]))
        healthy = self.new_worker({"PAYMENTS_PROCESSOR_LEASE": "1s"})
        final = self.wait_status(key, obj["id"])
        self.assertEqual(healthy.stop(), 0, healthy.log())
        self.assertEqual(final["status"], "succeeded")
        self.assert_one_processor_charge(obj["id"])
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.succeeded"])
        return at_processor

    def test_kill_between_the_answer_and_the_commit_charges_once(self):
        """The worker dies after the processor charged and before our commit: the next worker's retry with the same key is answered from the processor's stored answer (its lease leaves no room for a lookup)"""
        self.assertEqual(self.crash_then_recover("before_commit"), 1)

    def test_kill_during_the_call_charges_once(self):
        """The worker dies once the request is sent: one processor charge in the end"""
        self.crash_then_recover("during_call")

    def test_kill_before_the_call_charges_once(self):
        """The worker dies before calling: nothing at the processor until the next worker"""
        self.assertEqual(self.crash_then_recover("before_call"), 0)


class ProcessorMetricsTest(ProcessorTestCase):

    def test_worker_metrics_count_calls_outcomes_lookups_and_pending(self):
        """PAYMENTS_PROCESSOR_METRICS_LISTEN: the latency histogram counts every call, unknown outcomes and lookups by result are counted, the pending gauges follow the table"""
        port = h.free_port()
        worker = self.new_worker({"PAYMENTS_PROCESSOR_METRICS_LISTEN": "127.0.0.1:%d" % port})
        scrape = lambda: self.scrape(port)   # noqa: E731
        _, key = self.make_user()
        # Unknown (never forwarded), a lookup that finds nothing, a call that succeeds.
        self.proxy.push("500_before")
        obj, _ = self.create_pending(key)
        self.wait_status(key, obj["id"])
        m = h.poll(lambda: (lambda m: m.get("payments_processor_pending") == 0 and m)(scrape()),
                   message="the pending gauge to read 0")
        self.assertEqual(m['payments_processor_calls_total{outcome="unknown"}'], 1)
        self.assertEqual(m['payments_processor_calls_total{outcome="succeeded"}'], 1)
        self.assertEqual(m["payments_processor_call_seconds_count"], 2)
        self.assertEqual(m['payments_processor_call_seconds_bucket{le="+Inf"}'], 2)
        self.assertEqual(m['payments_processor_lookups_total{result="not_found"}'], 1)
        self.assertEqual(m['payments_processor_lookups_total{result="found"}'], 0)
        self.assertEqual(m["payments_processor_review_required"], 0)
        self.assertEqual(m["payments_processor_review_flagged_total"], 0)
        # Unknown after the processor charged: the lookup finds it, no second call.
        self.proxy.push("500_after")
        obj, _ = self.create_pending(key)
        self.wait_status(key, obj["id"])
        m = scrape()
        self.assertEqual(m['payments_processor_calls_total{outcome="unknown"}'], 2)
        self.assertEqual(m["payments_processor_call_seconds_count"], 3)
        self.assertEqual(m['payments_processor_lookups_total{result="found"}'], 1)
        self.assertEqual(worker.stop(), 0, worker.log())
        self.proxy.default = "500_before"
        obj, _ = self.create_pending(key)
        worker = self.new_worker({"PAYMENTS_PROCESSOR_METRICS_LISTEN": "127.0.0.1:%d" % port})
        m = h.poll(lambda: (lambda m: m.get("payments_processor_pending") == 1 and m)(scrape()),
                   message="the pending gauge to read 1")
        self.assertGreater(m["payments_processor_pending_oldest_seconds"], 0)
        self.proxy.default = "pass"
        self.wait_status(key, obj["id"])


class ProcessorKeyWindowTest(ProcessorTestCase):
    worker_env = {"PAYMENTS_PROCESSOR_KEY_WINDOW": "1ms", "PAYMENTS_PROCESSOR_MAX_WAIT": "200ms"}

    def test_past_the_key_window_a_sent_charge_found_by_lookup_is_recorded_not_sent_again(self):
        """The first call is answered 500 after the processor charged; past the key window the worker does not call again (a forgotten key could charge twice), but its lookup by our reference finds the processor's charge and records it"""
        _, key = self.make_user()
        self.proxy.push("500_after")
        obj, _ = self.create_pending(key)
        final = self.wait_status(key, obj["id"])
        self.assertEqual(final["status"], "succeeded")
        ref = self.assert_one_processor_charge(obj["id"])
        self.assertEqual(self.our_row(obj["id"]), ("succeeded", ref, False, 0))
        self.assertEqual(len(self.proxy.requests_for(obj["id"])), 1)
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.succeeded"])

    def test_past_the_key_window_a_sent_charge_not_found_is_not_sent_again_but_reconciled(self):
        """Likewise, but the lookups fail too: the charge is not sent again; it is flagged, and reconcile --fix records the processor's outcome"""
        since = int(time.time()) - 1
        _, key = self.make_user()
        self.proxy.get_fault = "500_before"
        self.proxy.push("500_after")
        obj, _ = self.create_pending(key)
        h.poll(lambda: self.our_row(obj["id"])[2], message="the charge to be flagged")
        self.assertEqual(len(self.proxy.requests_for(obj["id"])), 1)
        ref = self.assert_one_processor_charge(obj["id"])
        self.assertEqual(self.our_row(obj["id"])[0], "pending")
        # reconcile reads the list straight from the processor, not through the failing proxy.
        proc = pr.processor_cli(self.db.app_url, "reconcile", "--since", str(since), "--fix",
                                env={"PAYMENTS_PROCESSOR_URL": "http://127.0.0.1:%d" % self.upstream.server.port,
                                     "PAYMENTS_PROCESSOR_KEY": self.upstream.key})
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(self.our_row(obj["id"]), ("succeeded", ref, True, 0))
        self.assertEqual(self.event_types(obj["id"]),
                         ["charge.pending", "charge.review_required", "charge.succeeded"])
        self.assertEqual(len(self.proxy.requests_for(obj["id"])), 1)


class ProcessorReconcileTest(ProcessorTestCase):

    def reconcile(self, since, *args):
        proc = pr.processor_cli(self.db.app_url, "reconcile", "--since", str(since), *args,
                                env={"PAYMENTS_PROCESSOR_URL": self.proxy.url,
                                     "PAYMENTS_PROCESSOR_KEY": self.upstream.key})
        self.assertIn(proc.returncode, (0, 3), proc.stderr)
        figures = dict((k.strip(), int(v)) for k, v in
                       re.findall(r"^([a-z ,]+):\s+(\d+)$", proc.stdout, re.M))
        self.assertEqual(proc.returncode == 0, figures["differences"] == 0, proc.stdout)
        return proc.stdout, figures

    def test_reconcile_finds_and_fixes_every_kind_of_difference(self):
        """Clean: 0 differences; a worker killed before its commit: a status mismatch that --fix records with its event; a processor charge for an id we lack: missing_here; an amount changed here: amount_mismatch; a second processor charge for one of ours: duplicate_at_processor; a succeeded charge of ours none there names: missing_at_processor (--fix changes neither)"""
        since = int(time.time()) - 1
        fd, self.metrics_path = tempfile.mkstemp(prefix="payments-reconcile-", suffix=".prom")
        os.close(fd)
        self.addCleanup(os.unlink, self.metrics_path)
        _, key = self.make_user()
        worker = self.new_worker()
        ids = [self.create_pending(key)[0]["id"] for _ in range(3)]
        ids.append(self.create_pending(key, source="tok_chargeDeclined")[0]["id"])
        for cid in ids:
            self.wait_status(key, cid)
        worker.stop()
        out, f = self.reconcile(since)
        self.assertEqual(f["differences"], 0, out)
        self.assertGreaterEqual(f["our charges compared"], 4)
        self.assertGreaterEqual(f["processor charges"], 4)

        # Charged at the processor, not recorded here: a status mismatch until --fix.
        obj, _ = self.create_pending(key)
        crasher = self.new_worker({"PAYMENTS_PROCESSOR_TEST_CRASH": "before_commit:100"})
        self.assertEqual(crasher.wait(), 99)
        ref = self.assert_one_processor_charge(obj["id"])
        out, f = self.reconcile(since)
        self.assertEqual((f["status mismatches"], f["differences"]), (1, 1), out)
        self.assertIn("status_mismatch %s (here pending, processor succeeded on %s)" % (obj["id"], ref),
                      out)
        out, f = self.reconcile(since, "--fix")
        self.assertEqual((f["fixed"], f["differences"]), (1, 0), out)
        self.assertEqual(self.our_row(obj["id"]), ("succeeded", ref, False, 0))
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.succeeded"])
        out, f = self.reconcile(since)
        self.assertEqual(f["differences"], 0, out)

        # A processor charge naming an id we never made.
        ghost = "ch_" + "Z" * 24
        form = urllib.parse.urlencode({"amount": 700, "currency": "usd", "source": "tok_visa",
                                       "metadata[payments_charge]": ghost})
        resp = self.upstream.server.request(
            "POST", "/v1/charges", form,
            {"Authorization": "Bearer " + self.upstream.key, "Idempotency-Key": h.new_key(),
             "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(resp.status, 201, resp)
        out, f = self.reconcile(since, "--fix")
        self.assertEqual((f["missing here"], f["differences"]), (1, 1), out)
        self.assertIn("missing_here %s" % ghost, out)

        # An amount that differs (changed behind the service's back, as a bug would).
        self.db.query("UPDATE charges SET amount = 2500 WHERE id = %s" % lit(ids[0]))
        out, f = self.reconcile(since, "--metrics-file", self.metrics_path)
        self.assertEqual((f["amount mismatches"], f["differences"]), (1, 2), out)
        with open(self.metrics_path) as mf:
            text = mf.read()
        self.assertIn('payments_processor_reconcile_differences{kind="amount_mismatch"} 1\n', text)
        self.assertIn('payments_processor_reconcile_differences{kind="missing_here"} 1\n', text)
        self.assertIn("payments_processor_reconcile_total_differences 2\n", text)
        self.assertIn("amount_mismatch %s (here 2500, processor 2000" % ids[0], out)
        self.db.query("UPDATE charges SET amount = 2000 WHERE id = %s" % lit(ids[0]))

        # A second processor charge for one of ours (a double charge): duplicate_at_processor.
        form = urllib.parse.urlencode({"amount": 2000, "currency": "usd", "source": "tok_visa",
                                       "metadata[payments_charge]": ids[1]})
        resp = self.upstream.server.request(
            "POST", "/v1/charges", form,
            {"Authorization": "Bearer " + self.upstream.key, "Idempotency-Key": h.new_key(),
             "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(resp.status, 201, resp)
        # The processor's charge for another no longer names it: missing there (and one more here).
        elsewhere = "ch_" + "Y" * 24
        self.upstream.db.query(
            "UPDATE charges SET metadata = json_build_object('payments_charge', %s) WHERE id = %s"
            % (lit(elsewhere), lit(self.our_row(ids[2])[1])))
        out, f = self.reconcile(since, "--fix")
        self.assertEqual((f["duplicates at processor"], f["missing at processor"], f["missing here"],
                          f["fixed"], f["differences"]), (1, 1, 2, 0, 4), out)
        self.assertIn("duplicate_at_processor %s (2 charges there)" % ids[1], out)
        self.assertIn("missing_at_processor %s (succeeded here" % ids[2], out)
        self.assertIn("missing_here %s" % elsewhere, out)
        self.assertEqual(self.our_row(ids[1])[0], "succeeded")
        self.assertEqual(self.our_row(ids[2])[0], "succeeded")

    def test_reconcile_refuses_bad_arguments(self):
        """A --since that is neither Unix seconds nor a duration is a usage error (exit 2)"""
        proc = pr.processor_cli(self.db.app_url, "reconcile", "--since", "yesterday",
                                env={"PAYMENTS_PROCESSOR_URL": self.proxy.url})
        self.assertEqual(proc.returncode, 2)
        self.assertIn("usage", proc.stderr)


class ProcessorReviewTest(ProcessorTestCase):

    def test_a_charge_unknown_past_max_wait_is_flagged_not_guessed(self):
        """With the processor answering 500 after charging and its list unreadable, the charge stays pending and is flagged once (charge.review_required, counted in the metrics); when answers come back the lookup finds it and it succeeds, still one processor charge"""
        port = h.free_port()
        self.new_worker({"PAYMENTS_PROCESSOR_MAX_WAIT": "300ms",
                         "PAYMENTS_PROCESSOR_METRICS_LISTEN": "127.0.0.1:%d" % port})
        _, key = self.make_user()
        self.proxy.default = "500_after"
        self.proxy.get_fault = "500_before"
        obj, _ = self.create_pending(key)
        h.poll(lambda: self.our_row(obj["id"])[2], message="the charge to be flagged")
        self.assertEqual(self.our_row(obj["id"])[0], "pending")
        self.assertEqual(self.get_json(key, "/v1/charges/" + obj["id"])["status"], "pending")
        status = pr.processor_cli(self.db.app_url, "status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertRegex(status.stdout, r"flagged for review:\s+[1-9]")
        h.poll(lambda: len(self.proxy.requests_for(obj["id"])) >= 4, message="more retries")
        self.assertEqual(self.event_types(obj["id"]), ["charge.pending", "charge.review_required"])
        m = h.poll(lambda: (lambda m: m.get("payments_processor_review_required") == 1 and m)(
            self.scrape(port)), message="the review gauge to read 1")
        self.assertEqual(m["payments_processor_review_flagged_total"], 1)
        self.assertGreaterEqual(m['payments_processor_lookups_total{result="failed"}'], 3)
        self.proxy.default = "pass"
        self.proxy.get_fault = None
        final = self.wait_status(key, obj["id"])
        self.assertEqual(final["status"], "succeeded")
        self.assert_one_processor_charge(obj["id"])
        self.assertEqual(self.event_types(obj["id"]),
                         ["charge.pending", "charge.review_required", "charge.succeeded"])
