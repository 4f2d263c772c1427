#!/usr/bin/env python3
"""test_failover.py - the service through the loss of its primary database (make failover, make ha-test).

Runs against scripts/ha.sh's topology (a pg_auto_failover monitor, a primary
and a synchronous standby), whose multi-host URL of the postgres database is
PAYMENTS_TEST_ADMIN_URL (mk/ha.mk sets it); serve reads through a read pool
on the standby (PAYMENTS_READ_DATABASE_URL, target_session_attrs=prefer-standby).
Two rounds (make failover runs these): clients create charges (one in five
declined) and refunds, each retried with its key until a definitive answer,
and read each charge back, while round 1 kills the primary's node with
kill -9 and round 2 runs a controlled failover (pg_autoctl perform failover).
After each: every 201 and 402 the clients got is on the new primary, every
key holds exactly one charge and replays it, no charge is there without its
key, the relay delivered every event (duplicates only as the same webhook-id)
in order per charge, /readyz went not-ready and came back, the time writes
were unavailable (RTO) is within 20 s, and the old primary rejoins as the
standby. Each round prints its figures; the end prints one line per round.
With --short (make test's run), traffic runs 1.5 s before each fault and
after the recovery instead of 3 s.

A second test kills the standby instead: commits wait until the monitor
turns synchronous replication off, then go on; nothing acknowledged is lost.
Each test starts with scripts/ha.sh start, which brings a killed node back
as the standby, and so does the end of the module, so the topology is whole
for the next run.
"""

import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness as h  # noqa: E402
import webhooks as wh  # noqa: E402

HA_SCRIPT = os.path.join(h.ROOT, "scripts", "ha.sh")

# Client threads sending charges at once, and how long they run before the kill.
CLIENTS = 4
TRAFFIC_BEFORE_KILL_S = 3.0
# How long traffic goes on once charges succeed again after the kill.
TRAFFIC_AFTER_RECOVERY_S = 3.0
# A failover that takes longer than this fails the test.
FAILOVER_LIMIT_S = 60.0
# Writes may be unavailable this long in a round (the target for the RTO).
RTO_TARGET_S = 20.0
# The old primary must be the synchronous standby again within this.
REJOIN_LIMIT_S = 120.0
# A client retries a 503 or a broken connection after this long (Retry-After
# says 1 s; a shorter pause measures the gap more finely).
RETRY_PAUSE_S = 0.1


def ha(*args, timeout=300):
    proc = subprocess.run([HA_SCRIPT] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("scripts/ha.sh %s failed (%d): %s%s" % (
            " ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout.strip()


def node_addresses(role):
    """The 127.0.0.1:PORT of every data node the monitor reports in state role."""
    out = []
    for line in ha("status").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] != "monitor" and parts[2] == role:
            out.append(parts[1])
    return out


def setUpModule():
    h.setup_module(__name__)


def tearDownModule():
    try:
        ha("start")   # the killed node rejoins as the standby
    finally:
        h.teardown_module(__name__)


class Outcome:
    """What the clients saw: every attempt, and what was acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []        # (answered, sent: monotonic times, kind, status or error, key)
        self.charges = {}         # Idempotency-Key -> (charge id, body, status 201 or 402)
        self.refunds = {}         # Idempotency-Key -> (refund id, body)
        self.unexpected = []      # responses that are neither definitive nor a retryable 503
        self.missing_retry_after = []
        self.reads = 0            # GETs of a charge just acknowledged that found it
        self.read_misses = []     # ... that did not (404, or another charge)

    def record(self, sent, kind, status, key):
        with self.lock:
            self.attempts.append((time.monotonic(), sent, kind, status, key))

    def first_failure_after(self, t):
        """When the first answer other than 201 or 402 after t came, or None."""
        with self.lock:
            return min((a[0] for a in self.attempts if a[0] > t and a[3] not in (201, 402)),
                       default=None)


def read_url(url):
    """url with target_session_attrs=prefer-standby: the read pool's, a standby while there is one."""
    return url.replace("target_session_attrs=read-write", "target_session_attrs=prefer-standby")


class FailoverTest(wh.WebhookTestCase):
    server_env = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1", "PAYMENTS_DB_CONNECT_TIMEOUT": "1s",
                  "PAYMENTS_RATE_LIMIT": "0"}
    rounds = []   # the figures of each failover round, printed at the end

    @classmethod
    def setUpClass(cls):
        # GETs go to the standby (the read pool), the primary when it has not the object yet.
        db = h.module_database(cls.__module__)
        cls.server_env = dict(cls.server_env, PAYMENTS_READ_DATABASE_URL=read_url(db.app_url))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        if cls.rounds:
            sys.stderr.write("\n" + "\n".join(cls.rounds) + "\n")
        super().tearDownClass()

    def send_until_answered(self, out, kind, path, body, key, headers):
        """
        POSTs body with Idempotency-Key key until it gets a definitive answer
        (201, or 402 for a charge), as a client that follows the API's advice
        does: a 503 or a broken connection is retried with the same key.
        Returns (status, the object: the charge or refund, or the 402's error).
        """
        definitive = (201, 402) if kind == "charge" else (201,)
        deadline = time.monotonic() + FAILOVER_LIMIT_S
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                resp = self.server.request("POST", path, body, headers, timeout=15)
            except OSError as e:
                out.record(sent, kind, type(e).__name__, key)
                time.sleep(RETRY_PAUSE_S)
                continue
            out.record(sent, kind, resp.status, key)
            if resp.status in definitive:
                return resp.status, resp.json()
            if resp.status == 503:
                if resp.header("Retry-After") is None:
                    with out.lock:
                        out.missing_retry_after.append(resp)
                time.sleep(RETRY_PAUSE_S)
                continue
            with out.lock:
                out.unexpected.append((kind, key, resp))
            return None, None
        with out.lock:
            out.unexpected.append((kind, key, "no definitive answer within %ds" % FAILOVER_LIMIT_S))
        return None, None

    def read_back(self, out, api_key, charge_id):
        """GETs the charge just acknowledged (the read pool, a standby): it must be found."""
        deadline = time.monotonic() + FAILOVER_LIMIT_S
        while time.monotonic() < deadline:
            try:
                resp = self.get("/v1/charges/" + charge_id, api_key)
            except OSError:
                time.sleep(RETRY_PAUSE_S)
                continue
            if resp.status == 503:
                time.sleep(RETRY_PAUSE_S)
                continue
            with out.lock:
                if resp.status == 200 and resp.json().get("id") == charge_id:
                    out.reads += 1
                else:
                    out.read_misses.append((charge_id, resp))
            return
        with out.lock:
            out.read_misses.append((charge_id, "no answer within %ds" % FAILOVER_LIMIT_S))

    def client(self, api_key, n, out, stop):
        i = 0
        while not stop.is_set():
            i += 1
            key = "ha-%d-%d-%s" % (n, i, h.new_key())
            # One charge in five is declined: a 402 is as definitive as a 201.
            source = "tok_chargeDeclined" if i % 5 == 0 else "tok_visa"
            body = h.charge_body(amount=1000 + i, source=source,
                                 metadata={"client": str(n), "seq": str(i)})
            status, obj = self.send_until_answered(out, "charge", "/v1/charges", body, key,
                                                   self.auth(api_key, key))
            if status is None:
                return
            cid = obj["id"] if status == 201 else obj["error"]["charge"]
            with out.lock:
                out.charges[key] = (cid, body, status)
            self.read_back(out, api_key, cid)
            if status != 201 or i % 2:
                continue
            # Every other charge is partly refunded: its events then number three.
            rkey = key + "-refund"
            rbody = {"charge": cid, "amount": 100}
            status, robj = self.send_until_answered(out, "refund", "/v1/refunds", rbody, rkey,
                                                    self.auth(api_key, rkey))
            if status is None:
                return
            with out.lock:
                out.refunds[rkey] = (robj["id"], rbody)

    def poll_readyz(self, samples, stop):
        while not stop.is_set():
            try:
                status = self.server.request("GET", "/readyz", timeout=5).status
            except OSError:
                status = None
            samples.append((time.monotonic(), status))
            time.sleep(0.05)

    def setUp(self):
        super().setUp()
        ha("start")   # a primary and its synchronous standby, whatever an earlier test killed

    def start_clients(self, api_key, out, stop):
        threads = [threading.Thread(target=self.client, args=(api_key, n, out, stop), daemon=True)
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads

    def stored_charges(self, user):
        """{Idempotency-Key: [charge ids]} of user's charges on the primary (None: no key)."""
        stored = {}
        for line in self.db.query("SELECT coalesce(idempotency_key, '<none>'), id FROM charges"
                                  " WHERE user_id = %s" % h.sql_literal(user)).splitlines():
            k, cid = line.split("|")
            stored.setdefault(None if k == "<none>" else k, []).append(cid)
        return stored

    def assert_nothing_lost_or_doubled(self, out, api_key):
        """
        Every acknowledged charge (201 or 402) and refund is on the (new)
        primary, each key holds exactly one charge, no charge is there
        without a key a client was answered for, and every key, sent once
        more, replays its own answer. Returns (the user, {key: charge id},
        lost, doubled).
        """
        self.assertEqual(out.unexpected, [], "answers other than 201, 402 and 503")
        self.assertEqual(out.missing_retry_after, [], "503s without Retry-After")
        self.assertEqual(out.read_misses, [], "a charge just acknowledged that a GET did not find")
        user = self.db.query("SELECT user_id FROM charges WHERE id = %s"
                             % h.sql_literal(next(iter(out.charges.values()))[0]))
        stored = self.stored_charges(user)
        acked = {k: v[0] for k, v in out.charges.items()}
        lost = {k: v for k, v in acked.items() if v not in stored.get(k, [])}
        # A charge beyond the one its key was answered with, or under a key nobody was answered for.
        doubled = {k: ids for k, ids in stored.items()
                   if k not in acked or len(ids) > 1}
        self.assertEqual(lost, {}, "acknowledged charges missing on the primary")
        self.assertEqual(doubled, {}, "charges nobody was told about, or two under one key")
        refunds = set(self.db.query(
            "SELECT id FROM refunds WHERE charge_id IN (SELECT id FROM charges WHERE user_id = %s)"
            % h.sql_literal(user)).splitlines())
        lost_refunds = {v[0] for v in out.refunds.values()} - refunds
        self.assertEqual(lost_refunds, set(), "acknowledged refunds missing on the primary")
        for key, (cid, body, status) in out.charges.items():
            resp = self.post_charge(api_key, body, key)
            self.assertEqual(resp.status, status, resp)
            self.assertEqual(resp.header("Idempotent-Replayed"), "true", resp)
            got = resp.json()["id"] if status == 201 else resp.json()["error"]["charge"]
            self.assertEqual(got, cid, "key %s replayed another charge" % key)
        return user, acked, len(lost) + len(lost_refunds), sum(
            len(ids) - (1 if k in acked else 0) for k, ids in doubled.items())

    def assert_events_delivered_in_order(self, user, acked, hook):
        """
        The relay delivered every event of the user's charges, each charge's
        in commit order; a duplicate delivery carries its event's webhook-id
        (the receiver refuses a body whose event id is not the webhook-id).
        Returns (events, deliveries).
        """
        events = [line.split("|") for line in self.db.query(
            "SELECT id, charge_id FROM outbox_events WHERE user_id = %s ORDER BY seq"
            % h.sql_literal(user)).splitlines()]
        self.assertEqual({e[1] for e in events}, set(acked.values()), "a charge has no event")
        self.receiver.wait_delivered(hook, [e[0] for e in events], timeout=FAILOVER_LIMIT_S)
        delivered = self.receiver.delivered_ids(hook)
        first_seen = {}
        for i, eid in enumerate(delivered):
            first_seen.setdefault(eid, i)
        self.assertEqual(set(first_seen) - {e[0] for e in events}, set(),
                         "deliveries of events that are not the user's")
        by_charge = {}
        for eid, cid in events:
            by_charge.setdefault(cid, []).append(eid)
        for cid, ids in by_charge.items():
            self.assertEqual(sorted(ids, key=first_seen.get), ids,
                             "events of %s delivered out of order" % cid)
        self.assert_no_receiver_errors()
        return len(events), len(delivered)

    def run_round(self, n, name, fault, rejoin):
        """
        One failover under load: clients create charges (one in five
        declined) and refunds, each retried with its key until answered,
        and read each charge back; fault() is called (it returns once the
        fault is under way); once charges are acknowledged again, 3 s more
        of traffic. Then: nothing lost or doubled, every event delivered in
        order, /readyz went not-ready, and the old primary is back as the
        synchronous standby: rejoin(t_fault) brings it back and returns how
        long that took and from when (seconds, phrase); the test waits
        (bounded) for the monitor to report it. Prints the figures and adds
        a line to rounds.
        """
        _, api_key = self.make_user("ha")
        hook = "ha-round-%d" % n   # each round's endpoint, with its own secret
        self.create_endpoint(api_key, hook)
        primary_before = ha("primary")
        out = Outcome()
        stop, ready_stop = threading.Event(), threading.Event()
        ready = []
        threads = self.start_clients(api_key, out, stop)
        threads.append(threading.Thread(target=self.poll_readyz, args=(ready, ready_stop),
                                        daemon=True))
        threads[-1].start()
        try:
            time.sleep(TRAFFIC_BEFORE_KILL_S)
            with out.lock:
                acked_before = len(out.charges)
            t_fault = time.monotonic()
            fault()

            # Recovered: a request sent after the first failure is answered.
            def recovered():
                t_fail = out.first_failure_after(t_fault)
                with out.lock:
                    return t_fail is not None and any(
                        a[1] > t_fail and a[3] in (201, 402) for a in out.attempts)
            h.poll(recovered, timeout=FAILOVER_LIMIT_S, interval=0.05,
                   message="a charge sent after the fault's first 503 to be answered")
            time.sleep(TRAFFIC_AFTER_RECOVERY_S)
        finally:
            stop.set()
            for t in threads[:-1]:
                t.join(FAILOVER_LIMIT_S + 20)
            ready_stop.set()
            threads[-1].join(10)
        primary_after = ha("primary")
        self.assertNotEqual(primary_before, primary_after, "the standby was promoted")
        self.assertGreater(acked_before, 10, "charges acknowledged before the fault")

        user, acked, lost, doubled = self.assert_nothing_lost_or_doubled(out, api_key)
        n_events, n_deliveries = self.assert_events_delivered_in_order(user, acked, hook)

        # /readyz said not-ready during the gap and ready after it.
        not_ready = [t for t, st in ready if t > t_fault and st != 200]
        self.assertTrue(not_ready, "/readyz never said not-ready after the fault")
        self.assertEqual(ready[-1][1], 200, "/readyz is not ready after the failover")

        # RTO: writes were unavailable from the fault until the last failed
        # answer; the first definitive answer to a request sent after it follows.
        failed = sorted(a for a in out.attempts if a[0] > t_fault and a[3] not in (201, 402))
        t_last = failed[-1][0]
        first_ok = min(a[0] for a in out.attempts if a[1] > t_last and a[3] in (201, 402))
        rto = t_last - t_fault
        n503 = sum(1 for a in failed if a[3] == 503)

        # The old primary rejoins as the synchronous standby, within a bound.
        rejoin_s, rejoin_what = rejoin(t_fault)
        h.poll(lambda: primary_before in node_addresses("secondary") and
               ha("primary") == primary_after, timeout=REJOIN_LIMIT_S, interval=0.2,
               message="the old primary %s to rejoin as the standby" % primary_before)

        n402 = sum(1 for v in out.charges.values() if v[2] == 402)
        report = [
            "round %d (%s): %s -> %s" % (n, name, primary_before, primary_after),
            "acknowledged: %d charges (%d x 201, %d x 402; %d before the fault), %d refunds;"
            " %d read back at once (GET, the read pool first)" % (len(acked), len(acked) - n402, n402,
                                                     acked_before, len(out.refunds), out.reads),
            "lost: %d   doubled: %d" % (lost, doubled),
            "events: %d, delivered %d times (%d duplicates, each with its event's webhook-id),"
            " in commit order per charge" % (n_events, n_deliveries, n_deliveries - n_events),
            "RTO: %.2f s writes unavailable (the last failed answer at %+.2f s after the fault;"
            " the first failed at %+.2f s; %d x 503, %d broken connections); first answer to a"
            " request sent after it at %+.2f s" % (rto, t_last - t_fault, failed[0][0] - t_fault,
                                                  n503, len(failed) - n503, first_ok - t_fault),
            "/readyz not ready from %+.2f s to %+.2f s after the fault"
            % (not_ready[0] - t_fault, not_ready[-1] - t_fault),
            "old primary %s rejoined as the synchronous standby %.2f s after %s"
            % (primary_before, rejoin_s, rejoin_what),
        ]
        sys.stderr.write("\n" + "\n".join("  " + line for line in report) + "\n")
        FailoverTest.rounds.append(
            "round %d (%s): acknowledged %d, lost %d, doubled %d, RTO %.2f s, old primary"
            " the standby again %.2f s after %s" % (n, name, len(acked), lost, doubled, rto,
                                                     rejoin_s, rejoin_what))
        self.assertLessEqual(rto, RTO_TARGET_S, "writes unavailable longer than the target")

    def test_migrate_refuses_a_standby(self):
        """migrate up against the standby alone exits 1 and says it is a standby."""
        standby = node_addresses("secondary")
        self.assertEqual(len(standby), 1, ha("status"))
        url = "postgresql://postgres@%s/%s" % (standby[0], self.db.name)
        proc = h.run_bin(["migrate", "up"], {"DATABASE_URL": url})
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("standby", proc.stderr)
        proc = h.run_bin(["migrate", "status"], {"DATABASE_URL": url})
        self.assertEqual(proc.returncode, 0, "status reads, so a standby may answer it: %s"
                         % proc.stderr)

    def test_round_1_kill_primary(self):
        """Round 1, kill -9 of the primary under load: nothing lost or doubled, events in order, the node rejoins."""
        def rejoin(t_fault):
            t = time.monotonic()
            ha("start")   # the node's pg_autoctl again: pg_rewind, then it follows the new primary
            return time.monotonic() - t, "its restart (scripts/ha.sh start)"
        self.run_round(1, "kill -9", lambda: ha("kill-primary"), rejoin)

    def test_round_2_controlled_failover(self):
        """Round 2, pg_autoctl perform failover under load: the same checks; the old primary becomes the standby."""
        done, runner = [], []

        def perform():
            ha("failover")   # returns once the old primary is the synchronous standby
            done.append(time.monotonic())

        def fault():
            runner.append(threading.Thread(target=perform, daemon=True))
            runner[0].start()

        def rejoin(t_fault):
            runner[0].join(REJOIN_LIMIT_S)
            self.assertTrue(done, "scripts/ha.sh failover did not finish")
            return done[0] - t_fault, "the failover began (scripts/ha.sh failover returned)"
        self.run_round(2, "perform failover", fault, rejoin)

    def test_survives_the_loss_of_the_standby(self):
        """kill -9 of the standby under load: commits wait for the monitor, then go on; nothing lost."""
        _, api_key = self.make_user("ha")
        out = Outcome()
        stop = threading.Event()
        threads = self.start_clients(api_key, out, stop)
        try:
            time.sleep(TRAFFIC_BEFORE_KILL_S)
            t_kill = time.monotonic()
            ha("kill-standby")
            # The monitor turns synchronous replication off: the primary goes on alone.
            h.poll(lambda: node_addresses("wait_primary"), timeout=FAILOVER_LIMIT_S, interval=0.2,
                   message="the primary to go on alone (wait_primary)")
            t_alone = time.monotonic()
            time.sleep(TRAFFIC_AFTER_RECOVERY_S)
        finally:
            stop.set()
            for t in threads:
                t.join(FAILOVER_LIMIT_S + 20)
        self.assert_nothing_lost_or_doubled(out, api_key)
        after = [a for a in out.attempts if a[0] > t_kill]
        self.assertTrue(any(a[1] > t_alone and a[3] == 201 for a in after),
                        "charges succeed once the primary goes on alone")
        slowest = max(a[0] - a[1] for a in after)
        n503 = sum(1 for a in after if a[3] == 503)
        sys.stderr.write("\n  standby lost: the primary alone (wait_primary) %+.2f s after the kill;"
                         " the slowest answer after the kill took %.2f s; %d x 503\n"
                         % (t_alone - t_kill, slowest, n503))


if __name__ == "__main__":
    # --short (make test's run, tests/ha/run_short.sh): half the traffic around each fault.
    if "--short" in sys.argv:
        sys.argv.remove("--short")
        TRAFFIC_BEFORE_KILL_S = TRAFFIC_AFTER_RECOVERY_S = 1.5
    unittest.main(verbosity=2)
