"""test_migrate.py - 'payments migrate' as a DBA uses it, retention under load, and least privilege.

Every test makes its own scratch database (payments_it_migrate_<pid>_<n>)
and, where it needs other migrations, a temporary copy of migrations/ passed
with PAYMENTS_MIGRATIONS_DIR. 'migrate verify' runs with an empty
PAYMENTS_SQL_TESTS_DIR unless a test is about its pgTAP run, so that the
other sql-tests/ files do not decide these tests.
"""

import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# So that 'python3 -m unittest tests/integration/test_migrate.py' from the repo root finds harness.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402  (needs the path above)
from harness import sql_literal as lit  # noqa: E402

MIGRATIONS = os.path.join(h.ROOT, "migrations")
REAL_VERSIONS = sorted(int(f[:4]) for f in os.listdir(MIGRATIONS) if re.match(r"^\d{4}_\w+\.sql$", f))
# The repeatable migrations (R__name.sql), by name: the order 'migrate up' runs them in.
REPEATABLES = sorted(f[3:-4] for f in os.listdir(MIGRATIONS) if re.match(r"^R__\w+\.sql$", f))
# The versioned files that existed before repeatable migrations: an existing deployment ran these.
PRE_REPEATABLE_VERSIONS = [v for v in REAL_VERSIONS if v <= 6]

# Versions of the extra migrations tests add after the real set (which grows over time).
A = max(REAL_VERSIONS) + 1
B = A + 1
LATE, LATER = A + 2, A + 5   # for the out-of-order test

# A migration that takes a while, for the concurrency tests.
SLOW_SECONDS = 2

_serial = itertools.count(1)


def mig(version, name):
    """The file name of migration version called name."""
    return "%04d_%s.sql" % (version, name)


# --- helpers ---------------------------------------------------------------

def file_checksum(data):
    """The checksum migrate records: SHA-256 hex of the bytes without a BOM and with CRLF as LF."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def server_address(url):
    """(host, port) of a libpq URI, or None for a conninfo string or a socket directory."""
    if not re.match(r"^postgres(ql)?://", url):
        return None
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or parts.hostname.startswith("/"):
        return None
    return parts.hostname, parts.port or 5432


def psql_error(url, sql):
    """Runs sql with psql, which must fail; returns its stderr."""
    proc = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if proc.returncode == 0:
        raise AssertionError("psql succeeded on %r but should have failed: %r" % (sql, proc.stdout))
    return proc.stderr


class ScratchDb(h.Database):
    """A database of its own for one test: empty (create_empty) or fully migrated (create)."""

    def __init__(self):
        super().__init__(__name__)
        self.name = "payments_it_migrate_%d_%d" % (os.getpid(), next(_serial))
        self.url = h.database_url(self.admin, self.name)
        self.app_role = "payments_it_app_" + self.name[len("payments_it_"):]

    def create_empty(self):
        h.psql(self.admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        h.psql(self.admin, 'CREATE DATABASE "%s"' % self.name)

    def exists(self, regclass):
        return self.query("SELECT to_regclass(%s) IS NOT NULL" % lit(regclass)) == "t"


class HeldLock:
    """
    A psql session, driven through its stdin, that holds a lock until
    release(): statements are sent in one go and the constructor returns once
    pg_locks shows the lock granted (or fails after a bounded wait).
    """

    def __init__(self, db, statements, relation, mode):
        self.db = db
        self.proc = subprocess.Popen(
            ["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", db.url],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PGAPPNAME="payments-it-lock-holder"))
        self.proc.stdin.write(statements + "\n")
        self.proc.stdin.flush()

        def held():
            if self.proc.poll() is not None:
                raise AssertionError("the lock holder exited: %s" % self.proc.stderr.read())
            return self.db.query(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE a.application_name = 'payments-it-lock-holder' AND l.granted"
                " AND l.relation = %s::regclass AND l.mode = %s"
                % (lit(relation), lit(mode))) == "1"
        h.poll(held, message="%s on %s held by the psql session" % (mode, relation))

    def release(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.write("ROLLBACK;\n\\q\n")
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stderr.close()
        self.proc = None


class DelayedProxy:
    """
    A TCP forwarder to the database server that starts listening only after
    delay seconds: a database that is still starting up, as in compose.
    """

    def __init__(self, target, delay):
        self.target = target
        self.port = h.free_port()
        self.stopping = threading.Event()
        self.listening_at = None
        self.sock = None
        self.threads = []
        self.conns = []
        self.timer = threading.Timer(delay, self._listen)
        self.timer.daemon = True

    def start(self):
        self.timer.start()
        return self

    def _listen(self):
        if self.stopping.is_set():
            return
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.listening_at = time.monotonic()
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pump(src, dst):
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Half-close towards dst; stop() closes both sockets once both pumps are done.
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self.stopping.set()
        self.timer.cancel()
        if self.sock is not None:
            self.sock.close()
        for t in self.threads:
            t.join(timeout=5)
        for c in self.conns:
            c.close()


class MigrateTestCase(unittest.TestCase):
    """A scratch database and a scratch copy of migrations/ per test, and 'payments migrate' on them."""

    maxDiff = None
    migrate_first = False   # True: the real set is applied in setUp

    def setUp(self):
        super().setUp()
        self.db = ScratchDb()
        self.db.create_empty()
        self.addCleanup(self.db.drop)
        self.dir = tempfile.mkdtemp(prefix="payments-it-migrations-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        for name in os.listdir(MIGRATIONS):
            shutil.copy(os.path.join(MIGRATIONS, name), self.dir)
        self.tests_dir = tempfile.mkdtemp(prefix="payments-it-sqltests-")
        self.addCleanup(shutil.rmtree, self.tests_dir, True)
        if self.migrate_first:
            self.assert_ok(self.migrate("up"))

    def env(self, extra=None):
        env = {"DATABASE_URL": self.db.url, "PAYMENTS_MIGRATIONS_DIR": self.dir,
               "PAYMENTS_SQL_TESTS_DIR": self.tests_dir, "PAYMENTS_MIGRATE_WAIT": "10s"}
        env.update(extra or {})
        return env

    def migrate(self, *args, env=None, timeout=60):
        return h.run_bin(["migrate"] + list(args), self.env(env), timeout=timeout)

    def spawn(self, *args, env=None):
        """Starts 'payments migrate args' without waiting; returns the Popen (text pipes)."""
        full = dict(os.environ)
        full.update(self.env(env))
        proc = subprocess.Popen([h.BIN, "migrate"] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=full, cwd=h.ROOT, text=True)
        self.addCleanup(self._reap, proc)
        return proc

    @staticmethod
    def _reap(proc):
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)

    def write(self, filename, text):
        path = os.path.join(self.dir, filename)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    def read(self, filename):
        with open(os.path.join(self.dir, filename), "rb") as f:
            return f.read()

    def history(self):
        """{version: row dict} of the versioned migrations in payments_schema_history."""
        out = self.db.query(
            "SELECT coalesce(json_object_agg(version, to_json(h)), '{}') FROM"
            " (SELECT version, name, checksum, status, installed_by,"
            "         extract(epoch FROM now() - installed_at) AS age_s, execution_ms,"
            "         error_sqlstate, error_message FROM payments_schema_history"
            "  WHERE version IS NOT NULL ORDER BY version) h")
        return {int(k): v for k, v in json.loads(out).items()}

    def history_without_age(self):
        return {v: dict(r, age_s=None) for v, r in self.history().items()}

    def applied_versions(self):
        return sorted(v for v, r in self.history().items() if r["status"] == "applied")

    def assert_ok(self, proc):
        self.assertEqual(proc.returncode, 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (
            proc.returncode, proc.stdout, proc.stderr))
        return proc

    def assert_refused(self, proc, *fragments):
        """proc failed (non-zero exit) and its stderr holds each fragment."""
        self.assertNotEqual(proc.returncode, 0, "exit 0\nstdout:\n%s\nstderr:\n%s" % (
            proc.stdout, proc.stderr))
        for fragment in fragments:
            self.assertIn(fragment, proc.stderr, "stderr lacks %r" % fragment)
        return proc

    def status_lines(self, proc):
        """{version: state} of a 'migrate status' output."""
        states = {}
        for line in proc.stdout.splitlines():
            m = re.match(r"^(\d{4})\s+(\w+)\s+(\w+)\s", line)
            if m:
                states[int(m.group(1))] = m.group(3)
        return states


# --- the real migration set ------------------------------------------------

class RealSetTest(MigrateTestCase):

    def test_whole_set_applies_to_an_empty_database(self):
        """The whole migration set applies to an empty database and records each file's checksum"""
        proc = self.assert_ok(self.migrate("up"))
        for v in REAL_VERSIONS:
            self.assertRegex(proc.stdout, r"(?m)^applying %04d_\w+\.sql( \(no transaction\))?$" % v)
        self.assertIn("%d migration(s) applied" % len(REAL_VERSIONS), proc.stdout)
        hist = self.history()
        self.assertEqual(sorted(hist), REAL_VERSIONS)
        admin_user = self.db.query("SELECT current_user")
        for name in sorted(f for f in os.listdir(MIGRATIONS) if not f.startswith("R__")):
            v = int(name[:4])
            row = hist[v]
            self.assertEqual(row["status"], "applied", row)
            self.assertEqual("%04d_%s.sql" % (v, row["name"]), name)
            self.assertEqual(row["checksum"], file_checksum(self.read(name)), name)
            self.assertEqual(row["installed_by"], admin_user)
            self.assertLess(row["age_s"], 120)
            self.assertGreaterEqual(row["execution_ms"], 0)
            self.assertIsNone(row["error_sqlstate"])
        for table in ("api_keys", "charges", "idempotency_keys", "outbox_events", "refunds",
                      "webhook_endpoints", "webhook_deliveries", "webhook_attempts"):
            self.assertTrue(self.db.exists(table), table)

    def test_second_up_is_a_no_op_and_status_is_clean(self):
        """A second 'migrate up' applies nothing, and 'migrate status' then exits 0 with nothing pending"""
        self.assert_ok(self.migrate("up"))
        before = self.history()
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("0 migration(s) applied", proc.stdout)
        self.assertNotIn("applying", proc.stdout)
        self.assertEqual(self.history_without_age(), {v: dict(r, age_s=None)
                                                      for v, r in before.items()})
        status = self.assert_ok(self.migrate("status"))
        self.assertEqual(self.status_lines(status), {v: "applied" for v in REAL_VERSIONS})
        self.assertIn("0 problem(s): up to date", status.stdout)
        for v, row in self.history().items():
            self.assertIn(row["checksum"][:12], status.stdout)

    def test_status_exits_1_while_something_is_pending(self):
        """'migrate status' exits 1 and names the pending migrations, on an empty and on a partly migrated database"""
        proc = self.migrate("status")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertEqual(self.status_lines(proc), {v: "pending" for v in REAL_VERSIONS})
        self.assert_ok(self.migrate("up", "--target", "2"))
        proc = self.migrate("status")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        expected = {v: ("applied" if v <= 2 else "pending") for v in REAL_VERSIONS}
        self.assertEqual(self.status_lines(proc), expected)
        self.assertIn("%d problem(s)" % (len(REAL_VERSIONS) - 2 + len(REPEATABLES)), proc.stdout)

    def test_target_applies_up_to_a_version(self):
        """'migrate up --target 2' applies 0001 and 0002 only; a later 'up' applies the rest"""
        proc = self.assert_ok(self.migrate("up", "--target", "2"))
        self.assertIn("2 migration(s) applied", proc.stdout)
        self.assertIn("to the target", proc.stdout)
        self.assertEqual(self.applied_versions(), [1, 2])
        self.assertTrue(self.db.exists("webhook_endpoints"))
        self.assertFalse(self.db.exists("refunds"))
        proc = self.assert_ok(self.migrate("up", "--target", "2"))
        self.assertIn("0 migration(s) applied", proc.stdout)
        self.assert_ok(self.migrate("up"))
        self.assertEqual(self.applied_versions(), REAL_VERSIONS)

    def test_plan_prints_the_pending_sql_and_changes_nothing(self):
        """'migrate plan' prints the SQL of each pending migration and runs none of it"""
        self.assert_ok(self.migrate("up", "--target", "2"))
        before = self.history()
        proc = self.assert_ok(self.migrate("plan"))
        self.assertIn("%d pending migration(s)" % (len(REAL_VERSIONS) - 2), proc.stdout)
        self.assertIn("SET lock_timeout", proc.stdout)
        for v in REAL_VERSIONS[2:]:
            name = [f for f in os.listdir(MIGRATIONS) if f.startswith("%04d_" % v)][0]
            self.assertIn("-- %s (checksum %s)" % (name, file_checksum(self.read(name))),
                          proc.stdout)
        self.assertIn("CREATE TABLE refunds", proc.stdout)
        self.assertIn("GRANT USAGE ON SCHEMA public TO payments_app", proc.stdout)
        self.assertNotIn("0001_charges.sql", proc.stdout)
        self.assertEqual(sorted(self.history()), sorted(before))
        self.assertFalse(self.db.exists("refunds"))
        # --target limits the plan as it limits up.
        proc = self.assert_ok(self.migrate("plan", "--target", "3"))
        self.assertIn("1 pending migration(s)", proc.stdout)
        self.assertNotIn("0004_", proc.stdout)

    def test_plan_on_an_empty_database_creates_nothing(self):
        """'migrate plan' on an empty database leaves it empty (not even a history table)"""
        proc = self.assert_ok(self.migrate("plan"))
        self.assertIn("%d pending migration(s)" % len(REAL_VERSIONS), proc.stdout)
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"), "0")

    def test_status_plan_and_verify_work_in_a_read_only_session(self):
        """'migrate status', 'plan' and 'verify' work in a read-only session (a hot standby, a read-only role)"""
        self.assert_ok(self.migrate("up"))
        ro = {"PGOPTIONS": "-c default_transaction_read_only=on"}
        for cmd in ("status", "plan", "verify"):
            with self.subTest(cmd=cmd):
                self.assert_ok(self.migrate(cmd, env=ro))


    def insert_rows(self):
        """20,000 charges, each with its event, for the live-table migration tests."""
        self.db.query(
            "INSERT INTO charges (id, user_id, amount, currency, source, status)"
            " SELECT 'ch_' || lpad(n::text, 24, '0'), 'rows', 100, 'usd', 'tok_visa', 'succeeded'"
            "   FROM generate_series(1, 20000) n;"
            "INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)"
            " SELECT 'evt_' || lpad(n::text, 24, '0'), 'rows', 'charge.succeeded',"
            "        'ch_' || lpad(n::text, 24, '0'), 'ch_' || lpad(n::text, 24, '0'), '{}'"
            "   FROM generate_series(1, 20000) n")

    def start_writer(self):
        """A writer committing charges 20001..20400 and their events one at a time; returns once
        its first commits are in, so a migration started next runs while it writes."""
        writer = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.db.url, "-c",
             "DO $$ BEGIN FOR n IN 20001..20400 LOOP"
             " INSERT INTO charges (id, user_id, amount, currency, source, status)"
             " VALUES ('ch_' || lpad(n::text, 24, '0'), 'rows', 100, 'usd', 'tok_visa', 'succeeded');"
             " INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)"
             " VALUES ('evt_' || lpad(n::text, 24, '0'), 'rows', 'charge.succeeded',"
             " 'ch_' || lpad(n::text, 24, '0'), 'ch_' || lpad(n::text, 24, '0'), '{}');"
             " COMMIT; PERFORM pg_sleep(0.002); END LOOP; END $$"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(writer.wait, 60)
        h.poll(lambda: int(self.db.query("SELECT count(*) FROM charges")) > 20010,
               message="the writer's first commits")
        return writer

    def test_index_drops_apply_to_tables_with_rows_while_writes_flow(self):
        """0008 and 0009 drop their indexes CONCURRENTLY on tables with rows while inserts keep committing"""
        self.assert_ok(self.migrate("up", "--target", "7"))
        self.insert_rows()
        for index in ("outbox_events_unpublished_charge_idx", "charges_user_id_idx"):
            self.assertTrue(self.db.exists(index))
        writer = self.start_writer()
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("applying 0008_drop_outbox_unpublished_charge_index.sql (no transaction)",
                      proc.stdout)
        self.assertIn("applying 0009_drop_charges_user_id_index.sql (no transaction)", proc.stdout)
        _, err = writer.communicate(timeout=60)
        self.assertEqual(writer.returncode, 0, err)
        for index in ("outbox_events_unpublished_charge_idx", "charges_user_id_idx"):
            self.assertFalse(self.db.exists(index))
        self.assertEqual(self.db.query("SELECT count(*) FROM charges"), "20400")
        self.assertEqual(self.db.query("SELECT count(*) FROM outbox_events"), "20400")
        self.assertEqual(self.db.query("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), "0")
        self.assert_ok(self.migrate("status"))

    def test_row_checks_apply_out_of_order_to_tables_with_rows_while_writes_flow(self):
        """0050 and 0051 (one CHECK per table) apply to a database already at 0063, with rows, while charges commit; the old rules still refuse by name"""
        # A deployment of main before 0050: every other file (0060-0063 included) applied.
        held = tempfile.mkdtemp(prefix="payments-it-migrations-held-")
        self.addCleanup(shutil.rmtree, held, True)
        for name in ("0050_row_checks.sql", "0051_row_checks_validate.sql", "R__charges_row_valid.sql",
                     "R__idempotency_keys_row_valid.sql", "R__outbox_events_row_valid.sql"):
            shutil.move(os.path.join(self.dir, name), held)
        self.assert_ok(self.migrate("up"))
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid = 'charges'::regclass"), "15")
        self.insert_rows()
        self.db.query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)"
            " SELECT 'rows', 'k' || n, decode(repeat('ab', 32), 'hex'), 201, '{}', now() + interval '1 day'"
            "   FROM generate_series(1, 20000) n")
        for name in os.listdir(held):
            shutil.move(os.path.join(held, name), self.dir)
        self.assert_refused(self.migrate("up"), "0050_row_checks.sql", "--allow-out-of-order")
        writer = self.start_writer()
        proc = self.assert_ok(self.migrate("up", "--allow-out-of-order"))
        self.assertIn("applying 0050_row_checks.sql", proc.stdout)
        self.assertIn("applying 0051_row_checks_validate.sql", proc.stdout)
        _, err = writer.communicate(timeout=60)
        self.assertEqual(writer.returncode, 0, err)
        self.assertEqual(self.db.query("SELECT count(*) FROM charges"), "20400")
        self.assertEqual(self.db.query(
            "SELECT string_agg(conname || ':' || convalidated, ' ' ORDER BY conname) FROM pg_constraint"
            " WHERE contype = 'c' AND conrelid IN ('charges'::regclass, 'outbox_events'::regclass,"
            "                                      'idempotency_keys'::regclass)"),
            "charges_row_check:true charges_status_check:true charges_via_processor_check:true"
            " idempotency_keys_row_check:true outbox_events_row_check:true")
        # The rules still hold, and a refusal still names the rule.
        for sql, rule in (
                ("INSERT INTO charges (id, user_id, amount, currency, source, status)"
                 " VALUES ('ch_x', 'rows', 100, 'usd', 'tok_visa', 'succeeded')", "charges_id_check"),
                ("UPDATE charges SET amount_refunded = 101 WHERE id = 'ch_' || lpad('1', 24, '0')",
                 "charges_refund_bounds"),
                ("INSERT INTO charges (id, user_id, amount, currency, source, status)"
                 " VALUES ('ch_' || lpad('0', 24, '0'), 'rows', 100, 'usd', 'tok_visa', 'pending!')",
                 "charges_status_check"),
                ("INSERT INTO outbox_events (id, user_id, type, object_id, charge_id, data)"
                 " VALUES ('evt_' || lpad('0', 24, '0'), 'rows', 'Charge', 'x', 'ch_' || lpad('1', 24, '0'), '{}')",
                 "outbox_events_type_check"),
                ("INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, expires_at)"
                 " VALUES ('rows', 'k0', '\\x00', 201, '{}', now())", "idempotency_keys_fingerprint_check")):
            with self.subTest(rule=rule):
                proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.db.url, "-c", sql],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn('violates check constraint "%s"' % rule, proc.stderr)
        self.assert_ok(self.migrate("status"))


# --- repeatable migrations (R__name.sql) ------------------------------------

def schema_dump(url):
    """pg_dump --schema-only --no-owner of the database at url, normalised only where dumps differ by design."""
    proc = subprocess.run(["pg_dump", "--schema-only", "--no-owner", url], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError("pg_dump failed (%d): %s" % (proc.returncode, proc.stderr))
    # Newer pg_dump wraps its output in \restrict KEY / \unrestrict KEY with a random KEY.
    return re.sub(r"(?m)^\\(un)?restrict \S+$", r"\\\1restrict KEY", proc.stdout)


class RepeatableTest(MigrateTestCase):

    def repeatable_runs(self):
        """[(name, checksum, status, error_sqlstate)] of every repeatable run, in the order they were recorded."""
        out = self.db.query(
            "SELECT coalesce(json_agg(json_build_array(name, checksum, status, error_sqlstate)"
            " ORDER BY installed_rank), '[]') FROM payments_schema_history"
            " WHERE type = 'repeatable' AND version IS NULL")
        return [tuple(r) for r in json.loads(out)]

    def test_fresh_and_upgraded_databases_have_identical_catalogs(self):
        """A database migrated from a deployment of 0001-0006 and one built fresh end up with identical schemas (pg_dump)"""
        old_dir = tempfile.mkdtemp(prefix="payments-it-migrations-old-")
        self.addCleanup(shutil.rmtree, old_dir, True)
        for name in os.listdir(MIGRATIONS):
            if re.match(r"^\d{4}_", name) and int(name[:4]) in PRE_REPEATABLE_VERSIONS:
                shutil.copy(os.path.join(MIGRATIONS, name), old_dir)
        upgraded = ScratchDb()
        upgraded.create_empty()
        self.addCleanup(upgraded.drop)
        # The existing deployment: only the versioned files it had, and some data.
        proc = self.assert_ok(self.migrate("up", env={"DATABASE_URL": upgraded.url,
                                                      "PAYMENTS_MIGRATIONS_DIR": old_dir}))
        self.assertIn("%d migration(s) applied, 0 repeatable(s)" % len(PRE_REPEATABLE_VERSIONS),
                      proc.stdout)
        upgraded.query("INSERT INTO api_keys (id, user_id, secret_hash)"
                       " VALUES ('abcdefABCDEF', 'acme', sha256('x'::bytea))")
        # Then this release on it, and on an empty database.
        proc = self.assert_ok(self.migrate("up", env={"DATABASE_URL": upgraded.url}))
        self.assertIn("%d migration(s) applied, %d repeatable(s) applied" % (
            len(REAL_VERSIONS) - len(PRE_REPEATABLE_VERSIONS), len(REPEATABLES)), proc.stdout)
        self.assert_ok(self.migrate("up"))
        fresh_dump, upgraded_dump = schema_dump(self.db.url), schema_dump(upgraded.url)
        self.assertIn("CREATE FUNCTION public.create_charge(", fresh_dump)
        self.assertIn("GRANT ALL ON FUNCTION public.create_charge(", fresh_dump)
        self.assertEqual(fresh_dump, upgraded_dump)
        self.assert_ok(self.migrate("status", env={"DATABASE_URL": upgraded.url}))

    def test_repeatables_run_after_the_versioned_ones_in_name_order_and_are_recorded(self):
        """'migrate up' runs every repeatable after the versioned migrations, in name order, and records each with its checksum"""
        proc = self.assert_ok(self.migrate("up"))
        applied = re.findall(r"(?m)^applying (\S+)", proc.stdout)
        self.assertEqual(applied, [mig(v, n[5:-4]) for v, n in zip(
            REAL_VERSIONS, sorted(f for f in os.listdir(MIGRATIONS) if not f.startswith("R__")))]
            + ["R__%s.sql" % n for n in REPEATABLES])
        self.assertIn("applying R__create_charge.sql (repeatable)", proc.stdout)
        self.assertEqual(self.repeatable_runs(), [
            (n, file_checksum(self.read("R__%s.sql" % n)), "applied", None) for n in REPEATABLES])
        status = self.assert_ok(self.migrate("status"))
        for n in REPEATABLES:
            self.assertRegex(status.stdout, r"(?m)^R\s+%s\s+applied\s" % n)
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("0 migration(s) applied, 0 repeatable(s) applied", proc.stdout)
        self.assertEqual(len(self.repeatable_runs()), len(REPEATABLES))

    def test_a_changed_repeatable_is_pending_runs_again_and_keeps_privileges(self):
        """An edited repeatable is pending for status, plan and verify, runs again on up, and its function keeps SECURITY DEFINER, search_path and grants"""
        self.assert_ok(self.migrate("up"))
        name = "R__purge_idempotency_keys.sql"
        text = self.read(name).decode()
        edited = text.replace("SELECT count(*) FROM d", "SELECT count(*) FROM d  -- edited in place")
        self.assertNotEqual(edited, text)
        self.write(name, edited)
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1, status.stdout)
        self.assertRegex(status.stdout, r"(?m)^R\s+purge_idempotency_keys\s+changed\s")
        self.assertIn("1 problem(s)", status.stdout)
        verify = self.assert_ok(self.migrate("verify"))
        self.assertIn("pending: %s (changed since it was applied" % name, verify.stdout)
        plan = self.assert_ok(self.migrate("plan"))
        self.assertIn("0 pending migration(s) and 1 repeatable(s)", plan.stdout)
        self.assertIn("-- %s (checksum %s), repeatable: changed since it was applied" % (
            name, file_checksum(edited.encode())), plan.stdout)
        self.assertNotIn("R__create_charge.sql", plan.stdout)
        proc = self.assert_ok(self.migrate("up"))
        self.assertEqual(re.findall(r"(?m)^applying (\S+)", proc.stdout), [name])
        self.assertIn("edited in place", self.db.query(
            "SELECT prosrc FROM pg_proc WHERE oid = 'purge_idempotency_keys(integer)'::regprocedure"))
        self.assertEqual(self.db.query(
            "SELECT prosecdef, proconfig::text,"
            " has_function_privilege('payments_app', oid, 'EXECUTE'),"
            " has_function_privilege('public', oid, 'EXECUTE')"
            " FROM pg_proc WHERE oid = 'purge_idempotency_keys(integer)'::regprocedure"),
            't|{"search_path=public, pg_temp"}|t|f')
        runs = [r for r in self.repeatable_runs() if r[0] == "purge_idempotency_keys"]
        self.assertEqual([r[1] for r in runs],
                         [file_checksum(text.encode()), file_checksum(edited.encode())])
        self.assert_ok(self.migrate("status"))

    def test_a_failing_repeatable_is_recorded_and_retried_once_fixed(self):
        """A failing repeatable rolls back, is recorded as failed, fails status and verify, and applies once fixed"""
        self.assert_ok(self.migrate("up"))
        self.write(mig(A, "notes"), "CREATE TABLE notes (id int);\n")
        broken = "CREATE OR REPLACE FUNCTION zz_note_count() RETURNS bigint\n" \
                 "LANGUAGE sql AS $$ SELECT count(*) FROM notes_typo $$;\n"
        self.write("R__zz_note_count.sql", broken)
        proc = self.assert_refused(self.migrate("up"), "R__zz_note_count.sql failed", "42P01",
                                   "database is unchanged")
        self.assertIn("applying %s" % mig(A, "notes"), proc.stdout)
        self.assertEqual(self.history()[A]["status"], "applied")
        self.assertEqual(self.repeatable_runs()[-1][::2], ("zz_note_count", "failed"))
        self.assertEqual(self.repeatable_runs()[-1][3], "42P01")
        status = self.migrate("status")
        self.assertRegex(status.stdout, r"(?m)^R\s+zz_note_count\s+FAILED\s")
        self.assertIn("error: 42P01", status.stdout)
        self.assert_refused(self.migrate("verify"), "repeatable migration R__zz_note_count failed")
        self.write("R__zz_note_count.sql", broken.replace("notes_typo", "notes"))
        proc = self.assert_ok(self.migrate("up"))
        self.assertEqual(re.findall(r"(?m)^applying (\S+)", proc.stdout), ["R__zz_note_count.sql"])
        self.assertEqual(self.db.query("SELECT zz_note_count()"), "0")
        self.assert_ok(self.migrate("status"))
        self.assert_ok(self.migrate("verify"))

    def test_target_below_the_last_version_runs_no_repeatable(self):
        """'migrate up --target 2' runs no repeatable: they define the functions of the newest schema"""
        proc = self.assert_ok(self.migrate("up", "--target", "2"))
        self.assertNotIn("R__", proc.stdout)
        self.assertEqual(self.db.query("SELECT count(*) FROM payments_schema_history"), "2")
        status = self.migrate("status")
        self.assertRegex(status.stdout, r"(?m)^R\s+create_charge\s+pending\s")
        self.assertNotIn("R__", self.assert_ok(self.migrate("plan", "--target", "3")).stdout)
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("applying R__create_charge.sql", proc.stdout)

    def test_repeatable_marked_no_transaction_is_refused(self):
        """A repeatable marked payments:no-transaction is refused before anything runs"""
        self.write("R__zz_index.sql", "-- payments:no-transaction\n"
                   "CREATE INDEX CONCURRENTLY charges_currency_idx ON charges (currency);\n")
        proc = self.assert_refused(self.migrate("up"), "R__zz_index.sql is repeatable and marked",
                                   "always run in a transaction")
        self.assertNotIn("applying", proc.stdout)

    def test_a_removed_repeatable_is_reported_missing(self):
        """A repeatable whose file is gone is MISSING for status and verify; up still runs"""
        self.assert_ok(self.migrate("up"))
        os.unlink(os.path.join(self.dir, "R__random_id.sql"))
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertRegex(status.stdout, r"(?m)^R\s+random_id\s+MISSING\s")
        self.assert_refused(self.migrate("verify"), "R__random_id.sql is missing")
        self.assertIn("0 migration(s) applied", self.assert_ok(self.migrate("up")).stdout)


# --- refusals --------------------------------------------------------------

class RefusalTest(MigrateTestCase):
    migrate_first = True

    def test_modified_file_is_refused(self):
        """An applied file that was changed makes up, status and verify fail, naming the file"""
        self.write("0002_webhooks.sql", self.read("0002_webhooks.sql") + b"\n-- an afterthought\n")
        self.write(mig(A, "next"), "CREATE TABLE next_thing (id int);\n")
        proc = self.assert_refused(self.migrate("up"), "0002_webhooks.sql was modified")
        self.assertNotIn("applying", proc.stdout)
        self.assertFalse(self.db.exists("next_thing"))
        self.assertNotIn(A, self.history())
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertEqual(self.status_lines(status)[2], "MODIFIED")
        self.assert_refused(self.migrate("verify"), "0002_webhooks.sql was modified")
        self.assert_refused(self.migrate("plan"), "0002_webhooks.sql was modified")

    def test_crlf_and_bom_do_not_count_as_modified(self):
        """Files that only gained CRLF line endings or a UTF-8 BOM still match their checksums"""
        for name in os.listdir(self.dir):
            data = self.read(name).replace(b"\r\n", b"\n")
            if name.startswith("0001_"):
                data = b"\xef\xbb\xbf" + data
            elif name.startswith("0002_"):
                data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
            else:
                data = data.replace(b"\n", b"\r\n")
            self.write(name, data)
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("0 migration(s) applied", proc.stdout)
        self.assert_ok(self.migrate("status"))
        self.assert_ok(self.migrate("verify"))

    def test_crlf_file_applies_with_the_same_checksum_as_lf(self):
        """A new file written with CRLF and a BOM applies and records the checksum of its LF form"""
        lf = b"-- 0005: a note\nCREATE TABLE crlf_thing (id int);\n"
        self.write(mig(A, "crlf"), b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n"))
        self.assert_ok(self.migrate("up"))
        self.assertTrue(self.db.exists("crlf_thing"))
        self.assertEqual(self.history()[A]["checksum"], hashlib.sha256(lf).hexdigest())
        self.write(mig(A, "crlf"), lf)
        self.assert_ok(self.migrate("status"))

    def test_missing_file_is_refused(self):
        """An applied migration whose file is gone makes up refuse and status report MISSING"""
        os.unlink(os.path.join(self.dir, "0003_refunds_and_lists.sql"))
        self.write(mig(A, "next"), "CREATE TABLE next_thing (id int);\n")
        self.assert_refused(self.migrate("up"), "0003_refunds_and_lists.sql is missing")
        self.assertFalse(self.db.exists("next_thing"))
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertRegex(status.stdout, r"(?m)^0003\s+refunds_and_lists\s+MISSING")
        self.assert_refused(self.migrate("verify"), "is missing")

    def test_out_of_order_file_is_refused_unless_allowed(self):
        """A new file numbered below the last applied one is refused, and applied with --allow-out-of-order"""
        self.write(mig(LATER, "later"), "CREATE TABLE later_thing (id int);\n")
        self.assert_ok(self.migrate("up"))
        self.write(mig(LATE, "late"), "CREATE TABLE late_thing (id int);\n")
        proc = self.assert_refused(self.migrate("up"), mig(LATE, "late") + " is numbered below",
                                   "--allow-out-of-order")
        self.assertNotIn("applying", proc.stdout)
        self.assertFalse(self.db.exists("late_thing"))
        self.assert_refused(self.migrate("plan"), mig(LATE, "late") + " is numbered below")
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertEqual(self.status_lines(status)[LATE], "pending")
        proc = self.assert_ok(self.migrate("up", "--allow-out-of-order"))
        self.assertIn("applying " + mig(LATE, "late"), proc.stdout)
        self.assertTrue(self.db.exists("late_thing"))
        self.assertEqual(self.applied_versions(), REAL_VERSIONS + [LATE, LATER])
        self.assert_ok(self.migrate("status"))
        self.assertIn("0 migration(s) applied", self.assert_ok(self.migrate("up")).stdout)

    def test_unknown_arguments_are_refused(self):
        """'migrate' refuses unknown subcommands and arguments with exit 2"""
        for args in (["sideways"], ["up", "--fast"], ["up", "--target", "zero"],
                     ["resolve", "5"], ["status", "extra"]):
            with self.subTest(args=args):
                proc = self.migrate(*args)
                self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
        self.assertEqual(self.applied_versions(), REAL_VERSIONS)


# --- failures, no-transaction migrations, invalid indexes, resolve ----------

class FailureTest(MigrateTestCase):
    migrate_first = True

    def test_failing_migration_leaves_the_database_unchanged(self):
        """A failing migration is rolled back, recorded as failed with its SQLSTATE, and applies once fixed"""
        good = "CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\n"
        self.write(mig(A, "broken"), good + "SELECT 1 / 0;\n")
        self.write(mig(B, "after"), "CREATE TABLE after_broken (id int);\n")
        proc = self.assert_refused(self.migrate("up"), mig(A, "broken") + " failed", "22012",
                                   "division by zero", "database is unchanged")
        self.assertNotIn("applying %04d_" % B, proc.stdout)
        row = self.history()[A]
        self.assertEqual((row["status"], row["error_sqlstate"], row["error_message"]),
                         ("failed", "22012", "division by zero"))
        self.assertNotIn(B, self.history())
        self.assertFalse(self.db.exists("half_done"))
        self.assertFalse(self.db.exists("after_broken"))
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertEqual(self.status_lines(status)[A], "FAILED")
        self.assertIn("error: 22012: division by zero", status.stdout)
        self.assert_refused(self.migrate("verify"), "%04d_broken failed" % A)
        # The next up retries the failed file once it is fixed: no dirty flag to clear by hand.
        self.write(mig(A, "broken"), good)
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("2 migration(s) applied", proc.stdout)
        row = self.history()[A]
        self.assertEqual((row["status"], row["error_sqlstate"], row["error_message"]),
                         ("applied", None, None))
        self.assertEqual(row["checksum"], file_checksum(good.encode()))
        self.assertEqual(self.db.query("SELECT count(*) FROM half_done"), "1")
        self.assertTrue(self.db.exists("after_broken"))
        self.assert_ok(self.migrate("status"))

    def test_no_transaction_migration_applies(self):
        """A '-- payments:no-transaction' migration is planned without BEGIN, runs CREATE INDEX CONCURRENTLY and is recorded"""
        self.write(mig(A, "currency_idx"),
                   "-- payments:no-transaction\n"
                   "CREATE INDEX CONCURRENTLY charges_currency_idx ON charges (currency);\n")
        # plan shows it outside a transaction: no BEGIN/COMMIT around it.
        proc = self.assert_ok(self.migrate("plan"))
        self.assertIn(mig(A, "currency_idx") + " (checksum", proc.stdout)
        self.assertIn("outside a transaction", proc.stdout)
        self.assertNotIn("BEGIN;", proc.stdout)
        self.assertFalse(self.db.exists("charges_currency_idx"))
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("applying " + mig(A, "currency_idx") + " (no transaction)", proc.stdout)
        self.assertEqual(self.db.query(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'charges_currency_idx'::regclass"),
            "t")
        self.assertEqual(self.history()[A]["status"], "applied")
        plan = self.assert_ok(self.migrate("plan"))
        self.assertIn("0 pending migration(s)", plan.stdout)
        self.assert_ok(self.migrate("status"))

    def test_no_transaction_migration_with_two_statements_is_refused(self):
        """A no-transaction migration holding two statements is refused before it runs"""
        self.write(mig(A, "two"),
                   "-- payments:no-transaction\n"
                   "CREATE INDEX CONCURRENTLY charges_currency_idx ON charges (currency);\n"
                   "CREATE INDEX CONCURRENTLY charges_source_idx ON charges (source);\n")
        self.assert_refused(self.migrate("up"), mig(A, "two") + " is marked payments:no-transaction",
                            "holds 2 statements", "exactly one statement")
        self.assertFalse(self.db.exists("charges_currency_idx"))
        self.assertFalse(self.db.exists("charges_source_idx"))
        self.assertNotEqual(self.history().get(A, {}).get("status"), "applied")

    def make_invalid_index(self):
        """Migration A makes a table with a duplicate; B (no-transaction) fails to make a unique index on it."""
        self.write(mig(A, "dups"), "CREATE TABLE dups (v int);\nINSERT INTO dups VALUES (1), (1);\n")
        self.write(mig(B, "dups_unique"),
                   "-- payments:no-transaction\n"
                   "CREATE UNIQUE INDEX CONCURRENTLY dups_v_key ON dups (v);\n")
        proc = self.assert_refused(self.migrate("up"), mig(B, "dups_unique") + " failed", "23505",
                                   "index dups_v_key on dups is INVALID",
                                   "DROP INDEX CONCURRENTLY dups_v_key")
        self.assertIn("applying " + mig(B, "dups_unique") + " (no transaction)", proc.stdout)
        self.assertEqual(self.db.query(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dups_v_key'::regclass"), "f")
        row = self.history()[B]
        self.assertEqual((row["status"], row["error_sqlstate"]), ("failed", "23505"))

    def test_invalid_index_is_reported_by_up_status_and_verify(self):
        """A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index that up, status and verify report"""
        self.make_invalid_index()
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1)
        self.assertEqual(self.status_lines(status)[B], "FAILED")
        self.assertIn("index dups_v_key on dups is INVALID", status.stderr)
        self.assert_refused(self.migrate("verify"), "index dups_v_key on dups is INVALID")
        # A second up retries the file, fails the same way, and still reports the index.
        self.assert_refused(self.migrate("up"), "index dups_v_key on dups is INVALID")

    def test_invalid_index_outside_any_failed_migration_fails_status(self):
        """An invalid index alone (every migration applied) still makes status and verify fail"""
        self.make_invalid_index()
        self.db.query("DELETE FROM payments_schema_history WHERE version = %d" % B)
        os.unlink(os.path.join(self.dir, mig(B, "dups_unique")))
        status = self.migrate("status")
        self.assertEqual(status.returncode, 1, status.stdout)
        self.assertIn("1 problem(s)", status.stdout)
        self.assertIn("dups_v_key", status.stderr)
        self.assert_refused(self.migrate("verify"), "dups_v_key")

    def test_resolve_rolled_back_runs_the_migration_again(self):
        """After the operator cleans up, 'resolve N --rolled-back' lets the next up run the migration again"""
        self.make_invalid_index()
        self.db.query("DROP INDEX dups_v_key; DELETE FROM dups WHERE ctid IN"
                      " (SELECT ctid FROM dups LIMIT 1)")
        proc = self.assert_ok(self.migrate("resolve", str(B), "--rolled-back"))
        self.assertIn(mig(B, "dups_unique") + " recorded as rolled back", proc.stdout)
        self.assertNotIn(B, self.history())
        status = self.migrate("status")
        self.assertEqual(self.status_lines(status)[B], "pending")
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("applying " + mig(B, "dups_unique"), proc.stdout)
        self.assertEqual(self.history()[B]["status"], "applied")
        self.assertEqual(self.db.query(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'dups_v_key'::regclass"), "t")
        self.assert_ok(self.migrate("status"))

    def test_resolve_applied_records_the_operators_fix(self):
        """After the operator finishes a migration by hand, 'resolve N --applied' records it as applied"""
        self.make_invalid_index()
        self.db.query("DROP INDEX dups_v_key; DELETE FROM dups WHERE ctid IN"
                      " (SELECT ctid FROM dups LIMIT 1); CREATE UNIQUE INDEX dups_v_key ON dups (v)")
        proc = self.assert_ok(self.migrate("resolve", str(B), "--applied"))
        self.assertIn(mig(B, "dups_unique") + " recorded as applied", proc.stdout)
        row = self.history()[B]
        self.assertEqual(row["status"], "applied")
        self.assertIsNone(row["error_sqlstate"])
        self.assertIn("resolved as applied by an operator", row["error_message"])
        self.assertEqual(row["checksum"], file_checksum(self.read(mig(B, "dups_unique"))))
        self.assert_ok(self.migrate("status"))
        proc = self.assert_ok(self.migrate("up"))
        self.assertIn("0 migration(s) applied", proc.stdout)

    def test_resolve_refuses_a_migration_that_did_not_fail(self):
        """'resolve' refuses a version that is applied or unknown, and changes nothing"""
        before = self.history()
        for version in ("2", "99"):
            with self.subTest(version=version):
                self.assert_refused(self.migrate("resolve", version, "--rolled-back"),
                                    "version %s has no failed migration to resolve" % version)
        self.assertEqual(sorted(self.history()), sorted(before))
        self.assertEqual(self.applied_versions(), REAL_VERSIONS)


# --- locks, concurrency, waiting -------------------------------------------

class LockingTest(MigrateTestCase):
    migrate_first = True

    def test_lock_timeout_fails_cleanly_and_succeeds_once_released(self):
        """A migration blocked by another session's lock times out, retries, fails with a lock message, and applies after release"""
        self.write(mig(A, "add_note"), "ALTER TABLE charges ADD COLUMN note text;\n")
        holder = HeldLock(self.db, "BEGIN;\nLOCK TABLE charges IN ACCESS EXCLUSIVE MODE;",
                          "charges", "AccessExclusiveLock")
        self.addCleanup(holder.release)
        env = {"PAYMENTS_MIGRATE_LOCK_TIMEOUT": "200ms", "PAYMENTS_MIGRATE_LOCK_RETRIES": "1"}
        started = time.monotonic()
        proc = self.assert_refused(self.migrate("up", env=env, timeout=30),
                                   mig(A, "add_note") + " hit lock_timeout; retry 1 of 1",
                                   mig(A, "add_note") + " failed: 55P03",
                                   "another session holds a lock on the table")
        self.assertLess(time.monotonic() - started, 10)
        row = self.history()[A]
        self.assertEqual((row["status"], row["error_sqlstate"]), ("failed", "55P03"))
        self.assertIn("lock timeout", row["error_message"])
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'charges' AND column_name = 'note'"), "0")
        holder.release()
        self.assert_ok(self.migrate("up", env=env))
        self.assertEqual(self.history()[A]["status"], "applied")
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'charges' AND column_name = 'note'"), "1")

    def cic_blocked_by_a_writer(self, sql):
        """
        Runs up on a no-transaction CREATE INDEX CONCURRENTLY while a session
        holds ROW EXCLUSIVE on charges (an open write transaction): the build
        creates its index, then times out waiting for that writer, which
        leaves the index INVALID. Returns the up's CompletedProcess after the
        writer is gone.
        """
        self.write(mig(A, "currency_idx"), "-- payments:no-transaction\n" + sql + "\n")
        holder = HeldLock(self.db, "BEGIN;\nLOCK TABLE charges IN ROW EXCLUSIVE MODE;",
                          "charges", "RowExclusiveLock")
        self.addCleanup(holder.release)
        proc = self.migrate("up", env={"PAYMENTS_MIGRATE_LOCK_TIMEOUT": "200ms",
                                       "PAYMENTS_MIGRATE_LOCK_RETRIES": "1"}, timeout=30)
        holder.release()
        self.assertEqual(self.db.query(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'charges_currency_idx'::regclass"),
            "f", "the scenario did not leave an invalid index")
        return proc

    def test_concurrent_index_lock_timeout_is_recorded_as_a_lock_timeout(self):
        """A CREATE INDEX CONCURRENTLY that times out on a lock is recorded as 55P03, not as the retry's 'already exists'"""
        proc = self.cic_blocked_by_a_writer(
            "CREATE INDEX CONCURRENTLY charges_currency_idx ON charges (currency);")
        self.assert_refused(proc, "index charges_currency_idx on charges is INVALID")
        row = self.history()[A]
        self.assertEqual((row["status"], row["error_sqlstate"]), ("failed", "55P03"),
                         "history: %r\nstderr:\n%s" % (row, proc.stderr))
        # The advice printed works: drop the invalid index, run up again.
        self.db.query("DROP INDEX CONCURRENTLY charges_currency_idx")
        self.assert_ok(self.migrate("up"))
        self.assertEqual(self.db.query(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'charges_currency_idx'::regclass"),
            "t")

    def test_concurrent_index_if_not_exists_is_not_recorded_applied_when_invalid(self):
        """A CREATE INDEX CONCURRENTLY IF NOT EXISTS that left an invalid index is not recorded as applied"""
        proc = self.cic_blocked_by_a_writer(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS charges_currency_idx ON charges (currency);")
        self.assert_refused(proc, "index charges_currency_idx on charges is INVALID")
        row = self.history()[A]
        self.assertEqual(row["status"], "failed",
                         "the retry found the invalid index, skipped, and was recorded: %r" % row)
        # Until the index is dealt with, up must not call the database up to date.
        again = self.migrate("up")
        self.assertNotEqual(again.returncode, 0, "a second up passed over the invalid index:\n"
                            + again.stdout)
        # Following the printed advice must end with the index built.
        self.db.query("DROP INDEX CONCURRENTLY charges_currency_idx")
        self.assert_ok(self.migrate("up"))
        self.assertEqual(self.db.query(
            "SELECT coalesce((SELECT indisvalid::text FROM pg_index"
            " WHERE indexrelid = to_regclass('charges_currency_idx')), 'missing')"), "true")

    def test_statement_timeout_bounds_a_migration(self):
        """A migration statement longer than PAYMENTS_MIGRATE_STATEMENT_TIMEOUT is cancelled and recorded as failed"""
        self.write(mig(A, "slow"), "CREATE TABLE slow_thing (id int);\nSELECT pg_sleep(5);\n")
        started = time.monotonic()
        self.assert_refused(self.migrate("up", env={"PAYMENTS_MIGRATE_STATEMENT_TIMEOUT": "300ms"}),
                            mig(A, "slow") + " failed: 57014")
        self.assertLess(time.monotonic() - started, 4)
        self.assertEqual(self.history()[A]["error_sqlstate"], "57014")
        self.assertFalse(self.db.exists("slow_thing"))

    def slow_migration(self):
        self.write(mig(A, "slow"),
                   "SELECT pg_sleep(%d);\nCREATE TABLE slow_thing (id int);\n" % SLOW_SECONDS)

    def assert_applied_once(self):
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM payments_schema_history WHERE version = %d" % A), "1")
        self.assertEqual(self.history()[A]["status"], "applied")
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM pg_class WHERE relname = 'slow_thing'"), "1")

    def test_two_concurrent_ups_apply_once(self):
        """Two 'migrate up' started together: one applies the slow migration, the other waits and finds nothing to do"""
        self.slow_migration()
        a, b = self.spawn("up"), self.spawn("up")
        outs = [p.communicate(timeout=SLOW_SECONDS + 30) for p in (a, b)]
        for p, (out, err) in zip((a, b), outs):
            self.assertEqual(p.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (out, err))
        applied = sorted(re.search(r"(\d+) migration\(s\) applied", out).group(1)
                         for out, _ in outs)
        self.assertEqual(applied, ["0", "1"], outs)
        self.assertEqual(sum(out.count("applying " + mig(A, "slow")) for out, _ in outs), 1, outs)
        self.assert_applied_once()

    def test_second_migrator_gives_up_naming_the_holder(self):
        """With a short PAYMENTS_MIGRATE_WAIT, a second 'migrate up' (or a resolve) exits naming the one holding the lock"""
        self.slow_migration()
        first = self.spawn("up")

        def holder_pid():
            if first.poll() is not None:
                raise AssertionError("the first migrator exited early: %r" % (first.communicate(),))
            return self.db.query(
                "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND a.application_name = 'payments-migrate'"
                # Other modules migrate their own databases on the same server meanwhile.
                " AND a.datname = current_database()")
        pid = h.poll(holder_pid, message="the first migrator to take the migration lock")
        started = time.monotonic()
        second = self.migrate("up", env={"PAYMENTS_MIGRATE_WAIT": "500ms"})
        self.assertLess(time.monotonic() - started, SLOW_SECONDS + 1,
                        "the second migrator did not give up within its wait")
        self.assert_refused(second, "another migration holds the lock", "pid %s" % pid,
                            "application 'payments-migrate'")
        self.assertNotIn("applying", second.stdout)
        # resolve takes the same lock, so an operator's decision cannot race a running up.
        self.assert_refused(self.migrate("resolve", str(A), "--applied",
                                         env={"PAYMENTS_MIGRATE_WAIT": "300ms"}),
                            "another migration holds the lock")
        out, err = first.communicate(timeout=SLOW_SECONDS + 30)
        self.assertEqual(first.returncode, 0, out + err)
        self.assertIn("1 migration(s) applied", out)
        self.assert_applied_once()


class WaitForDatabaseTest(MigrateTestCase):

    def test_up_gives_up_on_an_absent_database_within_the_wait(self):
        """'migrate up' against a port where nothing listens fails after PAYMENTS_MIGRATE_WAIT with a clear message"""
        port = h.free_port()
        url = "postgresql://postgres@127.0.0.1:%d/nothing" % port
        started = time.monotonic()
        proc = self.migrate("up", env={"DATABASE_URL": url, "PAYMENTS_MIGRATE_WAIT": "1s"},
                            timeout=30)
        took = time.monotonic() - started
        self.assert_refused(proc, "cannot connect to the database")
        self.assertIn(str(port), proc.stderr)
        self.assertGreaterEqual(took, 0.9, "it did not wait for the database at all")
        self.assertLess(took, 5, "it waited far longer than PAYMENTS_MIGRATE_WAIT")

    def test_up_waits_for_a_database_that_comes_up(self):
        """'migrate up' started before the database accepts connections applies everything once it does"""
        target = server_address(self.db.admin)
        if target is None:
            self.skipTest("PAYMENTS_TEST_ADMIN_URL is not a host:port URI")
        proxy = DelayedProxy(target, delay=1.5).start()
        self.addCleanup(proxy.stop)
        parts = urllib.parse.urlsplit(self.db.url)
        url = urllib.parse.urlunsplit((parts.scheme, "%s127.0.0.1:%d" % (
            parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else "", proxy.port),
            parts.path, parts.query, ""))
        started = time.monotonic()
        proc = self.assert_ok(self.migrate("up", env={"DATABASE_URL": url,
                                                      "PAYMENTS_MIGRATE_WAIT": "20s"}))
        self.assertGreaterEqual(time.monotonic() - started, 1.4)
        self.assertIsNotNone(proxy.listening_at)
        self.assertIn("%d migration(s) applied" % len(REAL_VERSIONS), proc.stdout)
        self.assertEqual(self.applied_versions(), REAL_VERSIONS)


# --- verify ----------------------------------------------------------------

class VerifyTest(MigrateTestCase):
    migrate_first = True

    def test_verify_passes_then_fails_after_a_checksum_is_tampered_with(self):
        """'migrate verify' exits 0 on a good database and 1 once a recorded checksum was tampered with"""
        proc = self.assert_ok(self.migrate("verify"))
        self.assertIn("every applied migration matches its file", proc.stdout)
        self.db.query("UPDATE payments_schema_history SET checksum = repeat('0', 64)"
                      " WHERE version = 2")
        proc = self.assert_refused(self.migrate("verify"), "0002_webhooks.sql was modified")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("PROBLEMS", proc.stdout)
        self.assert_refused(self.migrate("up"), "0002_webhooks.sql was modified")

    def pgtap_available(self):
        return self.db.query(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgtap'") == "1"

    def test_verify_runs_pgtap_files_in_a_rolled_back_transaction(self):
        """'migrate verify' runs each pgTAP file, rolls back whatever it did, and fails a failing or short file"""
        if not self.pgtap_available():
            self.skipTest("pgTAP is not installed on the server")
        with open(os.path.join(self.tests_dir, "001_ok.sql"), "w") as f:
            f.write("SELECT plan(2);\n"
                    "CREATE TABLE verify_probe (id int);\n"
                    "SELECT has_table('verify_probe', 'The probe table exists inside the run.');\n"
                    "SELECT has_table('charges', 'charges exists.');\n"
                    "SELECT * FROM finish();\n")
        with open(os.path.join(self.tests_dir, "README"), "w") as f:
            f.write("not a test\n")
        had_pgtap = self.db.query("SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'")
        proc = self.assert_ok(self.migrate("verify"))
        self.assertIn("pgTAP 001_ok.sql: ok", proc.stdout)
        self.assertNotIn("README", proc.stdout)
        self.assertFalse(self.db.exists("verify_probe"))
        self.assertEqual(self.db.query(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgtap'"), had_pgtap)

        with open(os.path.join(self.tests_dir, "002_fails.sql"), "w") as f:
            f.write("SELECT plan(1);\nSELECT ok(false, 'This fails on purpose.');\n"
                    "SELECT * FROM finish();\n")
        proc = self.migrate("verify")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("pgTAP 001_ok.sql: ok", proc.stdout)
        self.assertIn("pgTAP 002_fails.sql: FAILED", proc.stdout)
        self.assertIn("This fails on purpose", proc.stdout)

        # A file that ran fewer tests than it planned fails too.
        os.unlink(os.path.join(self.tests_dir, "002_fails.sql"))
        with open(os.path.join(self.tests_dir, "003_short.sql"), "w") as f:
            f.write("SELECT plan(3);\nSELECT ok(true, 'Only one of three.');\n")
        proc = self.migrate("verify")
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("pgTAP 003_short.sql: FAILED", proc.stdout)


# --- retention -------------------------------------------------------------

class RetentionTest(unittest.TestCase):
    EXPIRED = 100000
    MAX_LATENCY = 2.0

    def setUp(self):
        self.db = ScratchDb()
        self.db.create()
        self.addCleanup(self.db.drop)

    def test_purging_100k_expired_keys_does_not_block_charges(self):
        """Purging 100,000 expired idempotency keys in batches never holds up concurrent charges for long"""
        user = h.new_user("purge")
        key = self.db.create_key(user)
        # No rate limit: one client sends charges back to back, as fast as they are answered.
        server = h.Server(self.db.app_url, {"PAYMENTS_PURGE_INTERVAL": "100ms",
                                        "PAYMENTS_PURGE_BATCH": "1000",
                                        "PAYMENTS_RATE_LIMIT": "0"})
        self.addCleanup(server.remove_log)
        server.start()
        self.addCleanup(server.stop)

        results = []   # (started, latency, status or exception)
        stop = threading.Event()

        def charge_continuously():
            body = h.charge_body()
            while not stop.is_set():
                started = time.monotonic()
                try:
                    resp = server.request("POST", "/v1/charges", body, {
                        "Authorization": "Bearer " + key, "Content-Type": "application/json",
                        "Idempotency-Key": h.new_key()}, timeout=30)
                    outcome = resp.status
                except Exception as e:   # reported below, never lost
                    outcome = e
                results.append((started, time.monotonic() - started, outcome))

        worker = threading.Thread(target=charge_continuously, daemon=True)
        worker.start()
        self.addCleanup(worker.join, 30)
        self.addCleanup(stop.set)
        h.poll(lambda: len(results) >= 5, message="the first charges")

        self.db.query(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,"
            " object_id, created_at, expires_at)"
            " SELECT 'expired_user', 'old-' || g, decode(repeat('ab', 32), 'hex'), 201, '{}',"
            "        NULL, now() - interval '2 days', now() - interval '1 day' - g * interval '1 ms'"
            "   FROM generate_series(1, %d) g" % self.EXPIRED)
        inserted = time.monotonic()
        seen_partway = []

        def purged():
            n = self.db.count("idempotency_keys", "user_id = 'expired_user'")
            if 0 < n < self.EXPIRED:
                seen_partway.append(n)
            return n == 0
        h.poll(purged, timeout=60, interval=0.05, message="every expired key to be purged")
        done = time.monotonic()
        # A few more charges after the purge, then stop.
        count_at_done = len(results)
        h.poll(lambda: len(results) >= count_at_done + 3, message="charges after the purge")
        stop.set()
        worker.join(30)
        self.assertFalse(worker.is_alive(), "the charging thread did not stop")

        failures = [r for r in results if r[2] != 201]
        self.assertEqual(failures, [], "charges that did not answer 201")
        during = [r for r in results if inserted <= r[0] <= done]
        self.assertGreaterEqual(len(during), 3, "too few charges ran while the purge ran")
        self.assertTrue(seen_partway, "the keys never were partly purged: not done in batches?")
        worst = max(r[1] for r in results)
        self.assertLess(worst, self.MAX_LATENCY,
                        "a charge took %.2fs while the purge ran" % worst)
        # Only expired keys went: every charge's own key is still there.
        self.assertEqual(self.db.count("idempotency_keys", "user_id = %s" % lit(user)),
                         len(results))
        self.assertEqual(self.db.count("charges", "user_id = %s" % lit(user)), len(results))
        # The purge logs after its last batch commits: wait for the line, boundedly.
        h.poll(lambda: "purged expired idempotency keys" in server.log(),
               message="the purge's log line")


# --- least privilege -------------------------------------------------------

class LeastPrivilegeTest(unittest.TestCase):
    """The API running as a login role that is only a member of payments_app."""

    def setUp(self):
        self.db = ScratchDb()
        self.role = "payments_it_app_%d_%s" % (os.getpid(), secrets.token_hex(4))
        password = secrets.token_hex(16)
        # Cleanups run last-in first-out: the role is dropped after the database.
        self.addCleanup(h.psql, self.db.admin, 'DROP ROLE IF EXISTS "%s"' % self.role)
        self.db.create()
        self.addCleanup(self.db.drop)
        h.psql(self.db.admin, "CREATE ROLE \"%s\" LOGIN PASSWORD %s IN ROLE payments_app"
               % (self.role, lit(password)))
        self.app_url = h.url_as(self.db.url, self.role, password)

    def test_full_flow_works_as_the_application_role(self):
        """Charges, refunds, lists, webhook endpoints and the purge all work as a payments_app member"""
        self.assertEqual(h.psql(self.app_url, "SELECT current_user"), self.role)
        self.db.query("INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code,"
                      " response_body, expires_at) VALUES ('someone', 'stale',"
                      " decode(repeat('ab', 32), 'hex'), 201, '{}', now() - interval '1 hour')")
        user = h.new_user("priv")
        key = self.db.create_key(user)
        server = h.Server(self.app_url, {"PAYMENTS_PURGE_INTERVAL": "100ms",
                                         "PAYMENTS_WEBHOOK_ALLOW_PRIVATE": "1"})
        self.addCleanup(server.remove_log)
        server.start()
        self.addCleanup(server.stop)
        auth = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}

        def post(path, body):
            return server.request("POST", path, body, dict(auth, **{"Idempotency-Key": h.new_key()}))

        resp = post("/v1/charges", h.charge_body(amount=2000))
        self.assertEqual(resp.status, 201, resp)
        charge = resp.json()
        resp = post("/v1/refunds", {"charge": charge["id"], "amount": 500})
        self.assertEqual(resp.status, 201, resp)
        refund = resp.json()
        self.assertEqual((refund["amount"], refund["charge"]), (500, charge["id"]))
        # A replayed request is answered from the stored key.
        idem = h.new_key()
        first = server.request("POST", "/v1/charges", h.charge_body(amount=300),
                               dict(auth, **{"Idempotency-Key": idem}))
        again = server.request("POST", "/v1/charges", h.charge_body(amount=300),
                               dict(auth, **{"Idempotency-Key": idem}))
        self.assertEqual((first.status, again.status, again.body), (201, 201, first.body))

        resp = server.request("GET", "/v1/charges", None, auth)
        self.assertEqual(resp.status, 200, resp)
        listed = {c["id"]: c for c in resp.json()["data"]}
        self.assertEqual(listed[charge["id"]]["amount_refunded"], 500)
        self.assertEqual(len(listed), 2)
        resp = server.request("GET", "/v1/refunds?charge=%s" % charge["id"], None, auth)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual([r["id"] for r in resp.json()["data"]], [refund["id"]])
        resp = server.request("GET", "/v1/events", None, auth)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(len(resp.json()["data"]), 4)   # two charges, a refund and its charge
        resp = server.request("GET", "/v1/charges/%s" % charge["id"], None, auth)
        self.assertEqual(resp.status, 200, resp)

        resp = post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hook",
                                              "enabled_events": ["*"]})
        self.assertIn(resp.status, (200, 201), resp)
        endpoint = resp.json()["id"]
        resp = server.request("DELETE", "/v1/webhook_endpoints/%s" % endpoint, None, auth)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNotNone(self.db.query(
            "SELECT deleted_at FROM webhook_endpoints WHERE id = %s" % lit(endpoint)) or None)

        # The purge thread deletes expired keys through its SECURITY DEFINER function.
        h.poll(lambda: self.db.count("idempotency_keys", "user_id = 'someone'") == 0,
               message="the expired key to be purged by the application role")
        self.assertNotIn("permission denied", server.log())

    def test_direct_writes_are_denied_to_the_application_role(self):
        """As a payments_app member, direct UPDATE and DELETE of charges, refunds, keys and events are denied"""
        # A charge and its refund, made the only way the role can: through the functions.
        self.assertEqual(h.psql(self.app_url, (
            "SELECT (SELECT outcome FROM create_charge('priv', 'k1', sha256('1'), 86400000, 1000,"
            " 'ch_priv00000000000000000001', 'evt_priv00000000000000000001', 2000, 'usd',"
            " 'tok_visa', NULL, '{}', NULL, NULL, NULL, 'req_1')) || '|' ||"
            " (SELECT outcome FROM create_refund('priv', 'k2', sha256('2'), 86400000, 1000,"
            " 're_priv00000000000000000001', 'ch_priv00000000000000000001', 500, NULL, '{}',"
            " 'req_2', 'evt_priv00000000000000000002', 'evt_priv00000000000000000003'))")),
            "created|created")
        before = self.db.query(
            "SELECT (SELECT count(*) FROM charges) || '|' || (SELECT count(*) FROM outbox_events)"
            " || '|' || (SELECT count(*) FROM idempotency_keys)")

        denied = [
            ("charges", "UPDATE charges SET amount = 1"),
            ("charges", "UPDATE charges SET amount_refunded = amount"),
            ("charges", "DELETE FROM charges"),
            ("charges", "INSERT INTO charges (id, user_id, amount, currency, source, status)"
                        " VALUES ('ch_aaaaaaaaaaaaaaaaaaaaaaaa', 'u', 1, 'usd', 'tok_visa',"
                        " 'succeeded')"),
            ("outbox_events", "UPDATE outbox_events SET published_at = NULL"),
            ("outbox_events", "DELETE FROM outbox_events"),
            ("refunds", "UPDATE refunds SET amount = 1"),
            ("refunds", "DELETE FROM refunds"),
            ("idempotency_keys", "UPDATE idempotency_keys SET expires_at = now()"),
            ("idempotency_keys", "DELETE FROM idempotency_keys"),
            ("api_keys", "UPDATE api_keys SET revoked_at = NULL"),
            ("payments_schema_history", "DELETE FROM payments_schema_history"),
            ("charges", "TRUNCATE charges CASCADE"),
        ]
        for table, sql in denied:
            with self.subTest(sql=sql):
                err = psql_error(self.app_url, sql)
                self.assertIn("permission denied for table %s" % table, err)
        with self.subTest(sql="CREATE TABLE"):
            self.assertIn("permission denied for schema public",
                          psql_error(self.app_url, "CREATE TABLE sneaky (id int)"))
        with self.subTest(sql="random_id"):
            self.assertIn("permission denied for function random_id",
                          psql_error(self.app_url, "SELECT random_id('ch_')"))
        self.assertEqual(h.psql(self.app_url, "SELECT count(*) FROM charges"), "1")
        self.assertEqual(self.db.query(
            "SELECT (SELECT count(*) FROM charges) || '|' || (SELECT count(*) FROM outbox_events)"
            " || '|' || (SELECT count(*) FROM idempotency_keys)"), before)
        self.assertEqual(before, "1|3|2")


if __name__ == "__main__":
    unittest.main()
