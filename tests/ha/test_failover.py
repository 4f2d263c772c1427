#!/usr/bin/env python3
"""test_failover.py - the service through the loss of its primary database (make ha-test).

Runs against scripts/ha.sh's topology (a pg_auto_failover monitor, a primary
and a synchronous standby), whose multi-host URL of the postgres database is
PAYMENTS_TEST_ADMIN_URL (mk/ha.mk sets it). Clients send charges and refunds
with retries while the primary's node is killed with kill -9; then:
every charge and refund acknowledged with 201 is on the new primary, every
key holds exactly one charge and replays it, the relay delivers every event
in order per charge, /readyz went not-ready and came back, and the failover
gap (the time of 503s) is measured and printed.

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
        self.charges = {}         # Idempotency-Key -> (charge id, body) acknowledged with 201
        self.refunds = {}         # Idempotency-Key -> (refund id, body)
        self.unexpected = []      # responses that are neither 201 nor a retryable 503
        self.missing_retry_after = []

    def record(self, sent, kind, status, key):
        with self.lock:
            self.attempts.append((time.monotonic(), sent, kind, status, key))

    def first_failure_after(self, t):
        """When the first answer other than 201 after t came, or None."""
        with self.lock:
            return min((a[0] for a in self.attempts if a[0] > t and a[3] != 201), default=None)


class FailoverTest(wh.WebhookTestCase):
    server_env = {"PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1", "PAYMENTS_DB_CONNECT_TIMEOUT": "1s"}

    def send_until_acknowledged(self, out, kind, path, body, key, headers):
        """
        POSTs body with Idempotency-Key key until it is answered 201, as a
        client that follows the API's advice does: a 503 or a broken
        connection is retried with the same key. Returns the object.
        """
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
            if resp.status == 201:
                return resp.json()
            if resp.status == 503:
                if resp.header("Retry-After") is None:
                    with out.lock:
                        out.missing_retry_after.append(resp)
                time.sleep(RETRY_PAUSE_S)
                continue
            with out.lock:
                out.unexpected.append((kind, key, resp))
            return None
        with out.lock:
            out.unexpected.append((kind, key, "no 201 within %ds" % FAILOVER_LIMIT_S))
        return None

    def client(self, api_key, n, out, stop):
        i = 0
        while not stop.is_set():
            i += 1
            key = "ha-%d-%d-%s" % (n, i, h.new_key())
            body = h.charge_body(amount=1000 + i, metadata={"client": str(n), "seq": str(i)})
            obj = self.send_until_acknowledged(out, "charge", "/v1/charges", body, key,
                                               self.auth(api_key, key))
            if obj is None:
                return
            with out.lock:
                out.charges[key] = (obj["id"], body)
            if i % 2:
                continue
            # Every other charge is partly refunded: its events then number three.
            rkey = key + "-refund"
            rbody = {"charge": obj["id"], "amount": 100}
            robj = self.send_until_acknowledged(out, "refund", "/v1/refunds", rbody, rkey,
                                                self.auth(api_key, rkey))
            if robj is None:
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

    def assert_nothing_lost_or_doubled(self, out, api_key):
        """
        Every acknowledged charge and refund is on the (new) primary, each key
        holds exactly one charge, and every key, sent once more, replays its
        own charge. Returns (the user, {key: charge id}).
        """
        self.assertEqual(out.unexpected, [], "answers other than 201 and 503")
        self.assertEqual(out.missing_retry_after, [], "503s without Retry-After")
        user = self.db.query("SELECT user_id FROM charges WHERE id = %s"
                             % h.sql_literal(next(iter(out.charges.values()))[0]))
        rows = self.db.query("SELECT idempotency_key, id FROM charges WHERE user_id = %s"
                             % h.sql_literal(user))
        stored = {}
        for line in rows.splitlines():
            k, cid = line.split("|")
            self.assertNotIn(k, stored, "two charges under key %s" % k)
            stored[k] = cid
        acked = {k: v[0] for k, v in out.charges.items()}
        lost = {k: v for k, v in acked.items() if stored.get(k) != v}
        self.assertEqual(lost, {}, "acknowledged charges missing on the primary")
        self.assertEqual(set(stored), set(acked), "charges nobody was told about")
        refunds = set(self.db.query(
            "SELECT id FROM refunds WHERE charge_id IN (SELECT id FROM charges WHERE user_id = %s)"
            % h.sql_literal(user)).splitlines())
        self.assertEqual({v[0] for v in out.refunds.values()} - refunds, set(),
                         "acknowledged refunds missing on the primary")
        for key, (cid, body) in out.charges.items():
            resp = self.post_charge(api_key, body, key)
            self.assertEqual(resp.status, 201, resp)
            self.assertEqual(resp.header("Idempotent-Replayed"), "true", resp)
            self.assertEqual(resp.json()["id"], cid, "key %s replayed another charge" % key)
        return user, acked

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

    def test_survives_the_loss_of_the_primary(self):
        """kill -9 of the primary under load: no acknowledged charge lost, none doubled, events in order."""
        _, api_key = self.make_user("ha")
        self.create_endpoint(api_key, "ha")
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
                acked_before = dict(out.charges)
            t_kill = time.monotonic()
            ha("kill-primary")

            # Recovered: a request sent after the first failure is acknowledged.
            def recovered():
                t_fail = out.first_failure_after(t_kill)
                with out.lock:
                    return t_fail is not None and any(
                        a[1] > t_fail and a[3] == 201 for a in out.attempts)
            h.poll(recovered, timeout=FAILOVER_LIMIT_S, interval=0.05,
                   message="a charge sent after the kill's first 503 to be acknowledged")
            t_recovered = time.monotonic()
            time.sleep(TRAFFIC_AFTER_RECOVERY_S)
        finally:
            stop.set()
            for t in threads[:-1]:
                t.join(FAILOVER_LIMIT_S + 20)
            ready_stop.set()
            threads[-1].join(10)
        primary_after = ha("primary")

        self.assertNotEqual(primary_before, primary_after, "the standby was promoted")
        self.assertGreater(len(acked_before), 10, "charges acknowledged before the kill")
        # No acknowledged write lost, none doubled, every key replays its charge.
        user, acked = self.assert_nothing_lost_or_doubled(out, api_key)

        # The relay delivers every event of those charges, each charge's in commit order.
        events = [line.split("|") for line in self.db.query(
            "SELECT id, charge_id FROM outbox_events WHERE user_id = %s ORDER BY seq"
            % h.sql_literal(user)).splitlines()]
        self.assertEqual({e[1] for e in events}, set(acked.values()), "a charge has no event")
        self.receiver.wait_delivered("ha", [e[0] for e in events], timeout=FAILOVER_LIMIT_S)
        first_seen = {}
        for i, eid in enumerate(self.receiver.delivered_ids("ha")):
            first_seen.setdefault(eid, i)
        by_charge = {}
        for eid, cid in events:
            by_charge.setdefault(cid, []).append(eid)
        for cid, ids in by_charge.items():
            self.assertEqual(sorted(ids, key=first_seen.get), ids,
                             "events of %s delivered out of order" % cid)
        self.assert_no_receiver_errors()

        # /readyz said not-ready during the gap and ready after it.
        not_ready = [t for t, st in ready if t > t_kill and st != 200]
        self.assertTrue(not_ready, "/readyz never said not-ready after the kill")
        self.assertEqual(ready[-1][1], 200, "/readyz is not ready after the failover")
        self.assertTrue(self.server.request("GET", "/readyz").status == 200)

        # The figures.
        failed = sorted(a for a in out.attempts if a[0] > t_kill and a[3] != 201)
        first_ok = min(a[0] for a in out.attempts if a[1] > failed[0][0] and a[3] == 201)
        n503 = sum(1 for a in failed if a[3] == 503)
        report = [
            "failover: %s -> %s" % (primary_before, primary_after),
            "charges acknowledged: %d before the kill, %d in all; refunds %d; events %d"
            % (len(acked_before), len(acked), len(out.refunds), len(events)),
            "gap: %.2f s of 503s, from %+.2f s to %+.2f s after the kill (%d x 503, %d broken"
            " connections); the first 201 of a request sent after the first 503 at %+.2f s"
            % (failed[-1][0] - failed[0][0], failed[0][0] - t_kill, failed[-1][0] - t_kill,
               n503, len(failed) - n503, first_ok - t_kill),
            "/readyz not ready from %+.2f s to %+.2f s after the kill"
            % (not_ready[0] - t_kill, not_ready[-1] - t_kill),
            "recovered (poll saw a 201) %+.2f s after the kill" % (t_recovered - t_kill),
        ]
        sys.stderr.write("\n" + "\n".join("  " + line for line in report) + "\n")

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
    unittest.main(verbosity=2)
