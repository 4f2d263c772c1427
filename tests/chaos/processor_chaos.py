#!/usr/bin/env python3
"""processor_chaos.py - processor mode under faults: many charges carried to a second instance of
this service (the processor) through the fault proxy, by workers that are killed at every phase.

  python3 tests/chaos/processor_chaos.py [--charges N] [--seed S] [--workers W]

Workers run with PAYMENTS_PROCESSOR_TEST_CRASH at before_call, during_call and before_commit
in turn (each _exits, as kill -9 would, at that phase with a small chance per call), and the
supervisor also sends real SIGKILLs at random moments. The proxy injects 500/429/409/idempotency_error/drops before
forwarding and 500/timeouts/drops after it. When every charge is created the faults stop, one
clean worker finishes, and the invariants are checked on both databases:

  - every charge of ours has exactly one charge at the processor (made under our id as its
    Idempotency-Key) when it succeeded or was declined, and never more than one;
  - our status and amount are the processor's;
  - no charge is left pending unflagged (and processor_jobs is empty);
  - each charge has one charge.pending event and exactly one final event matching its status;
  - 'payments processor reconcile' reports 0 differences.

Workers look a charge up by our reference before each retry (GETs of the list, under the same
faults), so both the lookup and the retry with the same key are exercised.

Needs PAYMENTS_TEST_ADMIN_URL (the Makefile target sets it for the embedded cluster).
Exit 0 when every invariant holds.
"""

import argparse
import collections
import os
import random
import secrets
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import harness as h            # noqa: E402
import processors as pr        # noqa: E402

PHASES = ("before_call", "during_call", "before_commit")
FAULTS = [("pass", 70), ("500_before", 4), ("429_before", 4), ("409_before", 2),
          ("400idem_before", 2), ("drop_before", 4),
          ("500_after", 5), ("timeout_after", 3), ("drop_after", 5), ("delay:0.05", 5)]


class Supervisor:
    """Keeps `count` workers running: each restart takes the next crash phase; random SIGKILLs."""

    def __init__(self, db_url, upstream, count, rnd, crash_percent):
        self.db_url, self.upstream, self.count, self.rnd = db_url, upstream, count, rnd
        self.crash_percent = crash_percent
        self.workers = []
        self.exits = collections.Counter()     # phase -> _exit(99) seen
        self.sigkills = 0
        self.starts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _spawn(self):
        phase = PHASES[self.starts % len(PHASES)]
        self.starts += 1
        w = pr.Worker(self.db_url, self.upstream, {
            "PAYMENTS_PROCESSOR_TEST_CRASH": "%s:%d" % (phase, self.crash_percent),
            # A lease above twice the timeout leaves room for lookups before retries.
            "PAYMENTS_PROCESSOR_LEASE": "2s", "PAYMENTS_PROCESSOR_TIMEOUT": "500ms",
            "PAYMENTS_PROCESSOR_SCHEDULE": "20ms,50ms,100ms",
            "PAYMENTS_LOG_LEVEL": "warn", "PAYMENTS_PROCESSOR_BATCH": "4",
            # Short, so that charges caught in a run of faults are flagged, then still decided.
            "PAYMENTS_PROCESSOR_MAX_WAIT": "2s"})
        w.phase = phase
        env = dict(os.environ)
        env.update(w.env)
        # Not w.start(): a worker may die at its first call, before it is seen to start.
        with open(w.log_path, "ab") as log:
            w.proc = subprocess.Popen([h.BIN, "processor"], stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, env=env, cwd=h.ROOT)
        return w

    def _run(self):
        next_kill = time.monotonic() + self.rnd.uniform(0.3, 1.0)
        while not self._stop.is_set():
            alive = []
            for w in self.workers:
                code = w.proc.poll()
                if code is None:
                    alive.append(w)
                    continue
                if code == 99:
                    self.exits[w.phase] += 1
                elif code != -9:
                    print("worker exited with %d:\n%s" % (code, w.log()[-2000:]))
                w.remove_log()
            self.workers = alive
            while len(self.workers) < self.count:
                self.workers.append(self._spawn())
            if time.monotonic() >= next_kill and self.workers:
                victim = self.rnd.choice(self.workers)
                victim.kill()
                self.sigkills += 1
                next_kill = time.monotonic() + self.rnd.uniform(0.3, 1.0)
            time.sleep(0.02)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
        for w in self.workers:
            w.kill()
            w.remove_log()
        self.workers = []


def create_charges(server, key, n, rnd, threads=8):
    """n charges (a tenth declined), each retried with its key until answered 201; returns [(id, source)]."""
    plan = [("tok_chargeDeclined" if rnd.random() < 0.1 else "tok_visa", 100 + i)
            for i in range(n)]
    out = [None] * n
    lock = threading.Lock()
    cursor = [0]

    def work():
        while True:
            with lock:
                i = cursor[0]
                cursor[0] += 1
            if i >= n:
                return
            source, amount = plan[i]
            idem = "chaos-%d-%s" % (i, secrets.token_hex(4))
            for _ in range(20):
                try:
                    resp = server.request("POST", "/v1/charges",
                                          h.charge_body(source=source, amount=amount),
                                          {"Authorization": "Bearer " + key,
                                           "Idempotency-Key": idem,
                                           "Content-Type": "application/json"})
                except OSError:
                    continue
                if resp.status == 201:
                    out[i] = (resp.json()["id"], source, amount)
                    break
                time.sleep(0.05)
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        raise AssertionError("%d charges were never created" % len(missing))
    return out


def rows(db, sql):
    return [r.split("|") for r in db.query(sql).split("\n") if r]


def check(db, upstream, charges, since, failures):
    def fail(msg):
        failures.append(msg)
        print("FAIL: " + msg)

    ours = {r[0]: r for r in rows(db, "SELECT id, status, amount, coalesce(processor_ref, ''),"
                                        " review_required_at IS NOT NULL FROM charges"
                                        " WHERE via_processor")}
    theirs = collections.defaultdict(list)
    for ref, idem, meta, status, amount in rows(
            upstream.db, "SELECT id, idempotency_key, coalesce(metadata->>'payments_charge', ''),"
                         " status, amount FROM charges"):
        theirs[idem].append((ref, meta, status, int(amount)))
    events = collections.defaultdict(list)
    for cid, typ in rows(db, "SELECT charge_id, type FROM outbox_events ORDER BY seq"):
        events[cid].append(typ)
    figures = collections.Counter()
    for cid, source, amount in charges:
        status, amt, ref, flagged = ours[cid][1], int(ours[cid][2]), ours[cid][3], ours[cid][4] == "t"
        figures[status] += 1
        there = theirs.get(cid, [])
        if len(there) > 1:
            fail("%s: %d charges at the processor (a double charge)" % (cid, len(there)))
        if status in ("succeeded", "failed") and len(there) != 1:
            fail("%s: %s here, %d charges at the processor" % (cid, status, len(there)))
        if status == "pending":
            if not flagged:
                fail("%s: pending and not flagged for review" % cid)
            continue
        if there:
            pref, meta, pstatus, pamount = there[0]
            if (pstatus, pamount, meta, pref) != (status, amt, cid, ref):
                fail("%s: here %s %d ref %s, processor %s %d meta %s ref %s" % (
                    cid, status, amt, ref, pstatus, pamount, meta, pref))
        want_status = "failed" if source == "tok_chargeDeclined" else "succeeded"
        if status != want_status or amt != amount:
            fail("%s: %s %d, expected %s %d" % (cid, status, amt, want_status, amount))
        evs = events[cid]
        final = [e for e in evs if e in ("charge.succeeded", "charge.failed")]
        if evs.count("charge.pending") != 1 or final != ["charge." + status]:
            fail("%s: events %r for a %s charge" % (cid, evs, status))
        if evs.count("charge.review_required") != (1 if flagged else 0):
            fail("%s: events %r, flagged %s" % (cid, evs, flagged))
    jobs = int(db.query("SELECT count(*) FROM processor_jobs"))
    if jobs != 0 and figures["pending"] == 0:
        fail("%d processor_jobs rows left with nothing pending" % jobs)
    proc = pr.processor_cli(db.app_url, "reconcile", "--since", str(since),
                            env={"PAYMENTS_PROCESSOR_URL": upstream.proxy.url,
                                 "PAYMENTS_PROCESSOR_KEY": upstream.key})
    print(proc.stdout.strip())
    if proc.returncode != 0:
        fail("reconcile exited %d: %s" % (proc.returncode, proc.stderr))
    figures["processor charges"] = sum(len(v) for k, v in theirs.items())
    figures["flagged"] = sum(1 for r in ours.values() if r[4] == "t")
    return figures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--charges", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--crash-percent", type=int, default=4)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    print("processor chaos: %d charges, %d workers, seed %d" % (args.charges, args.workers, seed))
    started = time.monotonic()
    db = h.Database("test_chaos_processor")
    db.create()
    upstream = pr.Upstream("test_chaos_processor")
    server = sup = None
    failures = []
    try:
        upstream.start()
        fault_rnd = random.Random(seed + 1)
        names, weights = zip(*FAULTS)
        upstream.proxy.chooser = lambda: fault_rnd.choices(names, weights)[0]
        upstream.proxy.hold_seconds = 3.0
        server = h.Server(db.app_url, {"PAYMENTS_PROCESSOR_URL": upstream.proxy.url}).start()
        key = db.create_key("chaos")
        since = int(time.time()) - 1
        sup = Supervisor(db.app_url, upstream, args.workers, rnd, args.crash_percent)
        sup.start()
        charges = create_charges(server, key, args.charges, rnd)
        created_s = time.monotonic() - started
        # Let the faulty workers chew on the backlog a while, then stop the faults and finish.
        h.poll(lambda: int(db.query("SELECT count(*) FROM processor_jobs")) < args.charges // 10,
               timeout=300, interval=0.2, message="most charges to be resolved under faults")
        sup.stop()
        upstream.proxy.chooser = None
        clean = pr.Worker(db.app_url, upstream, {"PAYMENTS_PROCESSOR_LEASE": "1s",
                                                 "PAYMENTS_PROCESSOR_SCHEDULE": "20ms,50ms,100ms"
                                                 }).start()
        try:
            h.poll(lambda: db.query("SELECT count(*) FROM processor_jobs") == "0", timeout=120,
                   interval=0.2, message="every charge to be resolved")
        finally:
            clean.stop()
            clean.remove_log()
        figures = check(db, upstream, charges, since, failures)
        log = upstream.proxy.log
        faults = collections.Counter(r[3] for r in log)
        print("charges: %d (succeeded %d, failed %d, pending %d, flagged %d); created in %.1fs,"
              " all resolved in %.1fs" % (len(charges), figures["succeeded"], figures["failed"],
                                          figures["pending"], figures["flagged"], created_s,
                                          time.monotonic() - started))
        print("processor charges: %d; processor calls: %d; lookup pages read: %d" % (
            figures["processor charges"], sum(1 for r in log if r[0] == "POST"),
            sum(1 for r in log if r[0] == "GET")))
        print("proxy faults: %s" % ", ".join("%s %d" % kv for kv in sorted(faults.items())))
        print("worker _exit at phase: %s; SIGKILLs: %d; worker starts: %d" % (
            ", ".join("%s %d" % (p, sup.exits[p]) for p in PHASES), sup.sigkills, sup.starts))
        for p in PHASES:
            if sup.exits[p] == 0:
                failures.append("no worker died at %s" % p)
                print("FAIL: no worker died at %s" % p)
    finally:
        if sup is not None:
            sup.stop()
        if server is not None:
            server.stop()
            server.remove_log()
        upstream.stop()
        db.drop()
    print("processor chaos: %s (%d failures), seed %d" % (
        "ok" if not failures else "FAILED", len(failures), seed))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
