#!/usr/bin/env python3
"""chaos.py - a Jepsen-style fault-injection test of the payments service: nothing committed is lost or doubled, whatever fails.

For a set time, concurrent clients create charges (tok_visa, and the decline
token tok_chargeDeclined; some only authorized, then captured, in full or in
part, by racing clients) and partial refunds of their users' charges, each
with its own Idempotency-Key, retrying with that key on timeouts, connection
errors, 5xx and 409 idempotency_key_in_use. Meanwhile, at moments drawn from
the seed, the harness SIGKILLs and restarts `payments serve` (same port) and
`payments relay`, crashes PostgreSQL (scripts/pg.sh kill, an immediate stop,
then start), and makes its webhook receiver answer 500 or hang; with --ha,
against scripts/ha.sh's primary and synchronous standby, it also kills the
primary's node with kill -9 (the monitor promotes the standby; the node is
restarted and rejoins as the standby) and runs controlled failovers
(pg_autoctl perform failover), one topology fault at a time. Then it
retries every operation whose outcome is unknown until it resolves, lets the
relay drain, and checks the invariants (tests/chaos/checks.py), one line
each; the last line is "chaos: N passed, M failed". The same seed gives the
same fault schedule (and the same client choices; not the same timing).

Usage: tests/chaos/chaos.py [--duration S] [--seed N] [--clients N] [--rate OPS]
                            [--users N] [--faults KIND,...|none] [--short]
                            [--keep-logs] [--keep-db] [--log-level LEVEL] [--ha]
  --short   the run `make test` uses: 15 s, 8 clients, shorter bounds
  --ha      run on scripts/ha.sh's topology (started, and left running) instead
            of the embedded cluster, with the faults kill_primary and failover
            added to the default ones (crash_postgres is then not used)
  --rate    operations per second of all clients (100; 0: as fast as they can)
  --faults  kill_serve, kill_relay, crash_postgres, webhook_fail, webhook_hang,
            and with --ha kill_primary, failover (default: all that apply;
            the schedule depends on the seed, duration and kinds)

Environment:
  PAYMENTS_TEST_ADMIN_URL  database URL whose user may CREATE DATABASE
                           (default: the embedded cluster, started with
                           scripts/pg.sh start, on PAYMENTS_PG_PORT or 54329)
  PAYMENTS_TEST_EMBEDDED   1 when that server is scripts/pg.sh's cluster, which
                           the harness may crash; when unset, assumed if the
                           admin URL is unset or the cluster's; with 0 (or
                           another server) PostgreSQL is never crashed
  PAYMENTS_TEST_BIN        the binary (default: bin/payments)
  CHAOS_SEED               the seed, when --seed is not given

Exit status: 0 every invariant held; 1 a violation (the seed is printed);
2 the harness could not run (no database, no binary); 130 interrupted.
Everything it starts is killed on exit (also on Ctrl-C or SIGTERM), its
database is dropped, and the PostgreSQL cluster is left running. Logs of
serve, relay and the client history stay in a directory printed on failure.
bin/payments and migrations/ are copied there at the start, so a rebuild
during the run cannot mix versions.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks                                   # noqa: E402
import procs                                    # noqa: E402
from procs import HarnessError, psql, sql_literal   # noqa: E402
from receiver import Receiver                   # noqa: E402
import workload                                 # noqa: E402

USERS = 4

# Operations per second of all clients together. Each makes one to three
# events, and the relay here sends about 250 a second when nothing fails
# (rounds of 200, most of a round is database work), so at this rate it keeps
# up: webhook faults then hit events as they are made, and the drain is short.
RATE = 100

# The relay: millisecond backoff and enough attempts that nothing goes dead
# during a run (the last step, 400 ms, repeats: 1000 attempts, the most
# allowed, last over six minutes), a short lease so a killed
# relay's claims come back quickly, and timeouts below the lease.
RELAY_ENV = {
    "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
    "PAYMENTS_WEBHOOK_SCHEDULE": "0,50ms,100ms,200ms,400ms",
    "PAYMENTS_WEBHOOK_MAX_ATTEMPTS": "1000",
    "PAYMENTS_WEBHOOK_TIMEOUT": "1s",
    "PAYMENTS_WEBHOOK_CONNECT_TIMEOUT": "500ms",
    "PAYMENTS_WEBHOOK_RETRY_AFTER_MAX": "1s",
    "PAYMENTS_RELAY_LEASE": "3s",
    "PAYMENTS_RELAY_POLL": "20ms",
    "PAYMENTS_DB_CONNECT_TIMEOUT": "1s",
    "PAYMENTS_LOG_LEVEL": "warn",
}

# The API: no rate limit (a few users send everything), and short bounded
# waits, so a request that cannot proceed answers 503 or 409 quickly and is
# retried, rather than outliving the client's timeout.
SERVE_ENV = {
    "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1",
    "PAYMENTS_RATE_LIMIT": "0",
    "PAYMENTS_DB_POOL_WAIT": "1s",
    "PAYMENTS_DB_CONNECT_TIMEOUT": "1s",
    "PAYMENTS_IDEMPOTENCY_WAIT": "1s",
    "PAYMENTS_LOG_LEVEL": "warn",
}

FAULT_KINDS = ("kill_serve", "kill_relay", "crash_postgres", "webhook_fail", "webhook_hang")
# The faults of the HA topology (--ha): one at a time, each leaves a primary
# and its synchronous standby behind (the killed node restarted as the standby).
HA_FAULT_KINDS = ("kill_primary", "failover")
ALL_FAULT_KINDS = FAULT_KINDS + HA_FAULT_KINDS


class Fault:
    __slots__ = ("at", "kind", "length")

    def __init__(self, at, kind, length):
        self.at = at            # seconds after the start of the load
        self.kind = kind
        self.length = length    # downtime (kills, crash) or window (receiver), seconds

    def __str__(self):
        what = "down" if self.kind in ("kill_serve", "kill_relay", "crash_postgres",
                                       "kill_primary") else "for"
        return "t=%5.2fs %-14s %s %.2fs" % (self.at, self.kind, what, self.length)


def make_schedule(seed, duration, kinds):
    """The faults of a run: a function of the seed, the duration and the kinds only."""
    rng = random.Random("%s/faults" % seed)
    if not kinds:
        return []
    n = max(len(kinds), int(round(duration / 2.5)))
    chosen = list(kinds) + [rng.choice(kinds) for _ in range(n - len(kinds))]
    rng.shuffle(chosen)
    times = sorted(rng.uniform(1.0, max(1.5, duration - 1.5)) for _ in chosen)
    faults = []
    for at, kind in zip(times, chosen):
        if kind == "crash_postgres":
            length = rng.uniform(0.2, 1.5)
        elif kind == "kill_primary":
            length = rng.uniform(0.5, 3.0)   # before the dead node is restarted
        elif kind == "failover":
            length = 0.0
        elif kind in ("kill_serve", "kill_relay"):
            length = rng.uniform(0.0, 0.5)
        else:
            length = rng.uniform(0.5, 3.0)
        faults.append(Fault(at, kind, length))
    return faults


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(msg=""):
    print(msg, flush=True)


class Run:
    def __init__(self, args, seed):
        self.args = args
        self.seed = seed
        # The embedded cluster (scripts/pg.sh) is the only server the harness
        # crashes: when PAYMENTS_TEST_EMBEDDED says so or, unset, when the
        # admin URL is unset or that cluster's.
        embedded_url = "postgresql://postgres@127.0.0.1:%s/postgres" % (
            os.environ.get("PAYMENTS_PG_PORT") or "54329")
        if args.ha:
            # The topology's multi-host URL: whichever node is primary.
            self.admin = procs.ha_script("url", "postgres")
            self.embedded = False
        else:
            self.admin = os.environ.get("PAYMENTS_TEST_ADMIN_URL") or embedded_url
            flag = os.environ.get("PAYMENTS_TEST_EMBEDDED")
            self.embedded = flag == "1" if flag else self.admin == embedded_url
        self.dbname = "payments_chaos_%d" % os.getpid()
        self.url = procs.database_url(self.admin, self.dbname)
        # serve and relay log in as a role that is only a member of payments_app,
        # as the README tells a DBA to set them up; migrations and keys as the owner.
        self.app_role = "payments_chaos_app_%d" % os.getpid()
        self.app_password = secrets.token_hex(16)
        self.app_url = procs.url_as(self.url, self.app_role, self.app_password)
        self.logdir = tempfile.mkdtemp(prefix="payments-chaos-%s-" % seed)
        self.db_created = False
        self.receiver = None
        self.serve = None
        self.relay = None
        self.stop_clients = threading.Event()
        self.stop_watch = threading.Event()
        self.clients = []
        self.watchdog = None
        self.history = workload.History()
        self.faults_done = []
        self.fault_threads = []
        self.fault_locks = {k: threading.Lock() for k in ALL_FAULT_KINDS}
        # One topology fault at a time: the next finds a primary and its standby.
        self.fault_locks["kill_primary"] = self.fault_locks["failover"]
        self.failovers = []     # (fault, old primary, new primary, seconds until whole again)
        self.faults_skipped = []  # topology faults due while the previous one was under way
        self.fault_errors = []
        self.keys = {}

    # --- set-up ---

    def setup(self):
        if self.embedded:
            procs.pg_script("start")
        if self.args.ha:
            procs.ha_script("start")
        migrations = procs.pin_binary(self.logdir)
        psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname)
        psql(self.admin, 'CREATE DATABASE "%s"' % self.dbname)
        self.db_created = True
        proc = procs.run_bin(["migrate", "up"], {"DATABASE_URL": self.url,
                                                 "PAYMENTS_MIGRATIONS_DIR": migrations})
        if proc.returncode != 0:
            raise HarnessError("payments migrate up failed (%d):\n%s%s" % (
                proc.returncode, proc.stdout, proc.stderr))
        psql(self.admin, 'DROP ROLE IF EXISTS "%s"' % self.app_role)
        psql(self.admin, 'CREATE ROLE "%s" LOGIN PASSWORD %s IN ROLE payments_app'
             % (self.app_role, procs.sql_literal(self.app_password)))
        for i in range(self.args.users):
            user = "chaos_u%d" % i
            proc = procs.run_bin(["keys", "create", "--user", user], {"DATABASE_URL": self.url})
            if proc.returncode != 0:
                raise HarnessError("keys create failed: %s" % proc.stderr)
            self.keys[user] = proc.stdout.strip()

        self.receiver = Receiver().start()
        port = free_port()
        env = dict(SERVE_ENV, DATABASE_URL=self.app_url, PAYMENTS_LOG_LEVEL=self.args.log_level)
        if self.args.ha:
            # GETs on the standby, the primary when it has not the object yet.
            env["PAYMENTS_READ_DATABASE_URL"] = self.app_url.replace(
                "target_session_attrs=read-write", "target_session_attrs=prefer-standby")
        self.serve = procs.Service("serve", ["serve", "--listen", "127.0.0.1:%d" % port], env,
                                   os.path.join(self.logdir, "serve.log"), procs.http_ready(port))
        self.serve.start()
        self.api = workload.Api(port)
        for user, key in self.keys.items():
            body = json.dumps({"url": self.receiver.url(user), "enabled_events": ["*"]})
            status, _, obj = self.api.post("/v1/webhook_endpoints", key, None, body.encode())
            if status != 201:
                raise HarnessError("creating the webhook endpoint of %s: %s %r" % (
                    user, status, obj))
            self.receiver.set_secret(user, obj["secret"])
        env = dict(RELAY_ENV, DATABASE_URL=self.app_url, PAYMENTS_LOG_LEVEL=self.args.log_level)
        self.relay = procs.Service("relay", ["relay"], env,
                                   os.path.join(self.logdir, "relay.log"), procs.alive_for(0.2))
        self.relay.start()
        self.watchdog = threading.Thread(target=self.watch, name="watchdog", daemon=True)
        self.watchdog.start()

    def watch(self):
        """Restarts serve or relay when it dies on its own (and remembers it)."""
        while not self.stop_watch.wait(0.1):
            for s in (self.serve, self.relay):
                try:
                    s.check()
                except HarnessError as e:
                    say("chaos: watchdog: %s" % e)

    # --- faults ---

    def inject(self, fault):
        """
        Starts fault. Receiver faults only open a window; kills and crashes
        run on a thread of their own, so a slow PostgreSQL recovery does not
        delay the rest of the schedule; one at a time per kind.
        """
        if fault.kind == "webhook_fail":
            self.receiver.fail_for(fault.length)
        elif fault.kind == "webhook_hang":
            self.receiver.hang_for(fault.length)
        else:
            t = threading.Thread(target=self.run_fault, args=(fault,), daemon=True,
                                 name="fault-" + fault.kind)
            self.fault_threads.append(t)
            t.start()

    def run_fault(self, fault):
        lock = self.fault_locks[fault.kind]
        # A topology fault due while the previous one is under way is skipped:
        # a queue of failovers would outlast the run.
        if not lock.acquire(blocking=fault.kind not in HA_FAULT_KINDS):
            self.faults_skipped.append(fault)
            return
        try:
            if fault.kind == "kill_serve":
                self.serve.kill()
                time.sleep(fault.length)
                self.serve.start()
            elif fault.kind == "kill_relay":
                self.relay.kill()
                time.sleep(fault.length)
                self.relay.start()
            elif fault.kind == "crash_postgres":
                procs.pg_script("kill")
                time.sleep(fault.length)
                procs.pg_script("start")
            elif fault.kind == "kill_primary":
                t = time.monotonic()
                before = procs.ha_script("primary")
                procs.ha_script("kill-primary")
                time.sleep(fault.length)
                procs.ha_script("start")   # the dead node rejoins as the standby
                self.failovers.append((fault, before, procs.ha_script("primary"),
                                       time.monotonic() - t))
            elif fault.kind == "failover":
                t = time.monotonic()
                before = procs.ha_script("primary")
                after = procs.ha_script("failover")
                self.failovers.append((fault, before, after, time.monotonic() - t))
        except Exception as e:      # reported by execute() as a harness failure
            self.fault_errors.append("%s: %s" % (fault, e))
        finally:
            lock.release()

    def join_faults(self, timeout=90):
        deadline = time.monotonic() + timeout
        for t in self.fault_threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in self.fault_threads if t.is_alive()]

    # --- the run ---

    def execute(self):
        a = self.args
        kinds = tuple(k for k in a.faults if (self.embedded or k != "crash_postgres") and
                      (a.ha or k not in HA_FAULT_KINDS))
        schedule = make_schedule(self.seed, a.duration, kinds)
        say("chaos: seed %s, %ss, %d clients, %s ops/s, %d users, %d faults%s" % (
            self.seed, a.duration, a.clients, a.rate or "unlimited", a.users, len(schedule),
            " (the HA topology of scripts/ha.sh)" if a.ha else
            "" if self.embedded else " (not the embedded cluster: PostgreSQL is not crashed)"))
        say("chaos: rerun with: " + self.rerun_command())
        for f in schedule:
            say("  " + str(f))
        self.setup()

        users = sorted(self.keys)
        for i in range(a.clients):
            user = users[i % len(users)]
            c = workload.Client(i, self.seed, self.api, user, self.keys[user], self.history,
                                self.stop_clients, rate=a.rate / a.clients)
            self.clients.append(c)
        t0 = time.monotonic()
        for c in self.clients:
            c.start()
        next_report = 10.0
        for f in schedule:
            while True:
                now = time.monotonic() - t0
                if now >= f.at:
                    break
                if now >= next_report:
                    self.report_progress(now)
                    next_report += 10.0
                time.sleep(min(0.05, f.at - now))
            late = time.monotonic() - t0 - f.at
            say("chaos: %s%s" % (f, "" if late < 0.5 else " (%.1fs late)" % late))
            self.inject(f)
            self.faults_done.append(f)
        while time.monotonic() - t0 < a.duration:
            now = time.monotonic() - t0
            if now >= next_report:
                self.report_progress(now)
                next_report += 10.0
            time.sleep(0.05)
        self.stop_clients.set()
        lingering = self.join_faults()
        if lingering or self.fault_errors:
            raise HarnessError("faults did not complete: %s %s" % (lingering, self.fault_errors))
        for c in self.clients:
            c.join(workload.REQUEST_TIMEOUT_S * 2 + 2)
        hung = [c.name for c in self.clients if c.is_alive()]
        errors = [(c.name, c.error) for c in self.clients if c.error is not None]
        if hung or errors:
            raise HarnessError("clients did not finish cleanly: hung %s, errors %s" % (
                hung, errors))
        self.receiver.clear_faults()
        run_time = time.monotonic() - t0
        ops = list(self.history.ops)
        unknown = sum(1 for op in ops if op.outcome == "unknown")
        say("chaos: load stopped after %.1fs: %d operations, %d unknown; resolving them" % (
            run_time, len(ops), unknown))

        deadline = time.monotonic() + a.resolve_bound
        unresolved = workload.resolve(self.api, self.keys, ops, deadline)

        drain_start = time.monotonic()
        drained = None
        n_events = 0
        while time.monotonic() - drain_start < a.drain_bound:
            backlog = checks.backlog(self.url)
            if backlog[0] == 0 and backlog[1] == 0:
                ids = {r[0] for r in psql(self.url, "SELECT id FROM outbox_events")}
                n_events = len(ids)
                if ids <= {x.webhook_id for x in self.receiver.arrivals() if x.delivered}:
                    drained = time.monotonic() - drain_start
                    break
            time.sleep(0.2)
        backlog = checks.backlog(self.url)
        say("chaos: %s" % ("relay drained %d events in %.1fs" % (n_events, drained)
                           if drained is not None else
                           "relay NOT drained after %.0fs: %d unpublished, %d pending" % (
                               a.drain_bound, backlog[0], backlog[1])))

        # Let in-flight duplicates land before looking, then freeze what the receiver saw.
        time.sleep(0.3)
        self.stop_watch.set()
        self.watchdog.join(20)
        snap = checks.Snapshot(self.url)
        arrivals = self.receiver.arrivals()
        by_key = checks.rows_by_key(snap)
        results = [
            checks.check_acknowledged(ops, by_key),
            checks.check_keys(ops, snap, by_key),
            checks.check_unknowns(ops, by_key, unresolved),
            checks.check_definite(ops, snap, by_key),
            checks.check_replays(ops, by_key),
            checks.check_money(snap),
            checks.check_outbox(snap),
            checks.check_captures(ops, snap),
            checks.check_drained(drained, backlog, a.drain_bound),
            checks.check_received(snap, arrivals),
            checks.check_exactly_once(snap, arrivals),
            checks.check_order(snap, arrivals),
            checks.check_processes([self.serve, self.relay]),
        ]
        self.print_counts(ops, unknown, arrivals, snap, run_time)
        passed = sum(1 for r in results if r.ok)
        failed = len(results) - passed
        for r in results:
            say("%s %s%s" % ("PASS" if r.ok else "FAIL", r.name,
                             " (%s)" % r.note if r.note else ""))
            for v in r.violations[:10]:
                say("       " + v.replace("\n", "\n       "))
            if len(r.violations) > 10:
                say("       ... %d violations in all" % len(r.violations))
        self.write_history(ops, arrivals)
        if failed:
            say("chaos: FAILED with seed %s; logs and history in %s" % (self.seed, self.logdir))
            say("chaos: rerun with: " + self.rerun_command())
            self.args.keep_logs = True
        say("chaos: %d passed, %d failed" % (passed, failed))
        return 1 if failed else 0

    def rerun_command(self):
        a = self.args
        cmd = "tests/chaos/chaos.py --seed %s --duration %s --clients %d --rate %g --users %d" % (
            self.seed, a.duration, a.clients, a.rate, a.users)
        if a.ha:
            cmd += " --ha"
        if list(a.faults) != list(default_faults(a.ha)):
            cmd += " --faults " + (",".join(a.faults) or "none")
        return cmd

    def report_progress(self, now):
        ops = list(self.history.ops)
        say("chaos: t=%.0fs %d operations (%d unknown), %d faults, %d webhook requests" % (
            now, len(ops), sum(1 for op in ops if op.outcome == "unknown"),
            len(self.faults_done), len(self.receiver.arrivals())))

    def print_counts(self, ops, unknown, arrivals, snap, run_time):
        def count(kind, outcome=None):
            return sum(1 for op in ops if op.kind == kind and (outcome is None
                                                               or op.outcome == outcome))
        charges, refunds = count("charge"), count("refund")
        retries = sum(op.retries for op in ops)
        requests = sum(op.attempts for op in ops)
        resolved = [op for op in ops if op.was_unknown]
        say("operations: %d in %.0fs (%d charges: %d succeeded, %d declined; %d captures: %d"
            " succeeded, %d refused; %d refunds: %d succeeded, %d refused); %d requests,"
            " %d retries" % (
                len(ops), run_time, charges, count("charge", "ok"), count("charge", "declined"),
                count("capture"), count("capture", "ok"), count("capture", "failed"),
                refunds, count("refund", "ok"), count("refund", "failed"), requests, retries))
        say("unknown: %d when the load stopped; retried with their keys: %d replayed (the lost"
            " attempt had committed), %d created by the retry, %d refused, %d never resolved" % (
                unknown,
                sum(1 for op in resolved if op.outcome in ("ok", "declined") and op.replayed),
                sum(1 for op in resolved if op.outcome in ("ok", "declined") and not op.replayed),
                sum(1 for op in resolved if op.outcome == "failed"),
                sum(1 for op in resolved if op.outcome == "unknown")))
        by_kind = {}
        for f in self.faults_done:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        say("faults: %d (%s); restarts: serve %d, relay %d" % (
            len(self.faults_done), ", ".join("%s %d" % (k, by_kind.get(k, 0))
                                             for k in default_faults(self.args.ha)),
            self.serve.starts - 1, self.relay.starts - 1))
        if self.faults_skipped:
            say("  skipped (the topology was still recovering from the previous one): %s"
                % ", ".join("%s at t=%.1fs" % (f.kind, f.at) for f in self.faults_skipped))
        for f, before, after, took in self.failovers:
            say("  %s: primary %s -> %s, a primary and its synchronous standby again after"
                " %.1fs" % (f.kind, before, after, took))
        delivered = [x for x in arrivals if x.delivered]
        distinct = len({x.webhook_id for x in delivered})
        say("webhooks: %d events; receiver got %d requests: %d delivered (%d distinct,"
            " %d duplicates), %d answered 500, %d hung, %d unauthentic" % (
                len(snap.events), len(arrivals), len(delivered), distinct,
                len(delivered) - distinct,
                sum(1 for x in arrivals if x.status == 500),
                sum(1 for x in arrivals if x.hung),
                sum(1 for x in arrivals if x.error is not None)))

    def write_history(self, ops, arrivals):
        with open(os.path.join(self.logdir, "history.jsonl"), "w") as f:
            for op in ops:
                f.write(json.dumps(op.to_json()) + "\n")
        with open(os.path.join(self.logdir, "arrivals.jsonl"), "w") as f:
            for x in arrivals:
                f.write(json.dumps({"index": x.index, "endpoint": x.name, "id": x.webhook_id,
                                    "type": (x.event or {}).get("type"), "status": x.status,
                                    "hung": x.hung, "error": x.error}) + "\n")

    # --- tear-down: always runs ---

    def cleanup(self):
        self.stop_clients.set()
        self.stop_watch.set()
        if self.watchdog is not None:
            self.watchdog.join(20)
        self.join_faults(timeout=30)
        for s in (self.serve, self.relay):
            if s is not None:
                try:
                    s.kill()
                except Exception as e:     # keep tearing down
                    say("chaos: cleanup: killing %s: %s" % (s.name, e))
        if self.receiver is not None:
            self.receiver.close()
        if self.args.ha:
            try:
                procs.ha_script("start")   # a killed node back as the standby
            except Exception as e:
                say("chaos: cleanup: scripts/ha.sh start: %s" % e)
        if self.embedded:
            try:
                if not procs.pg_running():
                    procs.pg_script("start")
            except Exception as e:
                say("chaos: cleanup: restarting PostgreSQL: %s" % e)
        if self.db_created and self.args.keep_db:
            say("chaos: database kept: %s" % self.url)
        elif self.db_created:
            try:
                psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname)
                psql(self.admin, 'DROP ROLE IF EXISTS "%s"' % self.app_role)
            except Exception as e:
                say("chaos: cleanup: dropping %s: %s" % (self.dbname, e))
        if self.args.keep_logs:
            say("chaos: logs kept in %s" % self.logdir)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)


def default_faults(ha):
    """The fault kinds of a run without --faults."""
    return tuple(k for k in ALL_FAULT_KINDS if k not in HA_FAULT_KINDS or ha)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=None, help="seconds of load and faults (60)")
    p.add_argument("--seed", default=os.environ.get("CHAOS_SEED") or None)
    p.add_argument("--clients", type=int, default=None, help="concurrent clients (12)")
    p.add_argument("--rate", type=float, default=RATE,
                   help="operations per second of all clients together (0: no limit)")
    p.add_argument("--users", type=int, default=USERS, help="users, one webhook endpoint each")
    p.add_argument("--short", action="store_true", help="the make test run: 15 s")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--keep-db", action="store_true", help="do not drop the run's database")
    p.add_argument("--log-level", default="warn", choices=("debug", "info", "warn", "error"),
                   help="PAYMENTS_LOG_LEVEL of serve and relay (their logs are kept on failure)")
    p.add_argument("--faults", default=None,
                   help="comma-separated fault kinds to inject (default: all that apply;"
                   " 'none': none)")
    p.add_argument("--ha", action="store_true",
                   help="on scripts/ha.sh's topology, with the kill_primary and failover faults")
    a = p.parse_args(argv)
    if a.faults is None:
        a.faults = ",".join(default_faults(a.ha))
    if a.duration is None:
        a.duration = 15.0 if a.short else 60.0
    if a.clients is None:
        a.clients = 8 if a.short else 12
    if a.duration <= 0 or a.clients < 1 or a.users < 1:
        p.error("--duration, --clients and --users must be positive")
    a.faults = [] if a.faults == "none" else [k for k in a.faults.split(",") if k]
    for k in a.faults:
        if k not in ALL_FAULT_KINDS:
            p.error("unknown fault kind %r (kinds: %s)" % (k, ", ".join(ALL_FAULT_KINDS)))
        if k in HA_FAULT_KINDS and not a.ha:
            p.error("the fault %s needs --ha (scripts/ha.sh's topology)" % k)
    a.duration = float(a.duration)
    if a.duration == int(a.duration):
        a.duration = int(a.duration)
    a.resolve_bound = 20.0 if a.short else 30.0
    a.drain_bound = 30.0 if a.short else 120.0
    return a


def main(argv):
    args = parse_args(argv)
    seed = args.seed
    if seed is None:
        seed = str(random.SystemRandom().randrange(1, 10 ** 9))
    if not str(seed).isdigit():
        sys.exit("chaos: --seed takes a number")
    run = Run(args, seed)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    # Also when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    rc = 2
    try:
        rc = run.execute()
    except KeyboardInterrupt:
        say("chaos: interrupted (seed %s); cleaning up" % seed)
        args.keep_logs = True
        rc = 130
    except HarnessError as e:
        say("chaos: cannot run: %s" % e)
        args.keep_logs = True
        rc = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not stop the clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.cleanup()
    if rc == 130:
        say("chaos: 0 passed, 1 failed (interrupted)")
    elif rc == 2:
        say("chaos: 0 passed, 1 failed (the harness could not run)")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
