"""procs.py - the chaos harness's processes: psql, the embedded cluster, and the serve and relay it kills and restarts.

Every process the harness starts stays in its process group, so a budget
that kills the group (timeout(1) in scripts/test.sh) takes them along; the
PostgreSQL cluster is the exception: scripts/pg.sh runs in a session of its
own, so Ctrl-C never stops the shared cluster.
"""

import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PAYMENTS_TEST_BIN") or os.path.join(ROOT, "bin", "payments")
PG_SCRIPT = os.path.join(ROOT, "scripts", "pg.sh")
HA_SCRIPT = os.path.join(ROOT, "scripts", "ha.sh")


def pin_binary(dest):
    """
    Copies bin/payments (with the libraries its RPATH names, ../lib/payments)
    and migrations/ under dest, and uses that copy from now on: every restart
    during the run starts the same binary, even if the tree is rebuilt
    meanwhile. Returns the migrations directory to migrate with.
    """
    global BIN
    if not os.access(BIN, os.X_OK):
        raise HarnessError("%s is missing: run make first" % BIN)
    stale = newer_sources(BIN)
    if stale:
        print("chaos: warning: %s is older than %s: the run tests an older build"
              " (run make first)" % (BIN, ", ".join(stale[:3])), flush=True)
    os.makedirs(os.path.join(dest, "bin"))
    copy = os.path.join(dest, "bin", "payments")
    shutil.copy2(BIN, copy)
    libs = os.path.join(os.path.dirname(os.path.abspath(BIN)), "..", "lib", "payments")
    if os.path.isdir(libs):
        shutil.copytree(libs, os.path.join(dest, "lib", "payments"))
    migrations = os.path.join(dest, "migrations")
    shutil.copytree(os.path.join(ROOT, "migrations"), migrations)
    BIN = copy
    return migrations


def newer_sources(path):
    """Sources and migrations modified after path was built."""
    built = os.path.getmtime(path)
    out = []
    for d in ("src", "include", "migrations"):
        top = os.path.join(ROOT, d)
        for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
            if os.path.getmtime(os.path.join(top, name)) > built:
                out.append(os.path.join(d, name))
    return out


class HarnessError(Exception):
    """The environment is not usable (no database, no binary): not a finding about the system."""


def database_url(base, dbname):
    """The libpq URI or conninfo base, pointed at database dbname instead."""
    if re.match(r"^postgres(ql)?://", base):
        parts = urllib.parse.urlsplit(base)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                 if k != "dbname"]
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + dbname,
                                        urllib.parse.urlencode(query), ""))
    return "%s dbname='%s'" % (base, dbname)


def url_as(url, user, password):
    """url (a libpq URI or conninfo) logging in as user with password instead."""
    if re.match(r"^postgres(ql)?://", url):
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        netloc = "%s:%s@%s" % (urllib.parse.quote(user, safe=""),
                               urllib.parse.quote(password, safe=""), host)
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return "%s user='%s' password='%s'" % (url, user, password)


def sql_literal(value):
    """value as an SQL string literal (standard_conforming_strings is on)."""
    return "'" + str(value).replace("'", "''") + "'"


def psql(url, sql, timeout=60):
    """Runs sql with psql; returns the rows as lists of strings (tab-separated, unaligned)."""
    env = dict(os.environ)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()
    env["PGCLIENTENCODING"] = "UTF8"
    env.setdefault("PGCONNECT_TIMEOUT", "5")
    proc = subprocess.run(
        ["psql", "-X", "-qAt", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise HarnessError("psql failed (%d) on %r:\n%s" % (
            proc.returncode, sql[:300], proc.stderr.decode("utf-8", "replace")))
    text = proc.stdout.decode("utf-8")
    return [line.split("\t") for line in text.split("\n") if line]


def run_bin(args, env_extra=None, timeout=60):
    """Runs bin/payments args and returns the CompletedProcess (text)."""
    if not os.access(BIN, os.X_OK):
        raise HarnessError("%s is missing: run make first" % BIN)
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=timeout, cwd=ROOT, text=True)


def pg_script(action, timeout=90):
    """Runs scripts/pg.sh action in a session of its own; returns its stdout. Raises on failure."""
    proc = subprocess.run([PG_SCRIPT, action], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, cwd=ROOT, text=True,
                          start_new_session=True)
    if proc.returncode != 0:
        raise HarnessError("scripts/pg.sh %s failed (%d): %s" % (
            action, proc.returncode, proc.stderr.strip()))
    return proc.stdout.strip()


def ha_script(*args, timeout=180):
    """Runs scripts/ha.sh args (the HA topology) in a session of its own; returns its stdout. Raises on failure."""
    proc = subprocess.run([HA_SCRIPT] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, cwd=ROOT, text=True,
                          start_new_session=True)
    if proc.returncode != 0:
        raise HarnessError("scripts/ha.sh %s failed (%d): %s" % (
            " ".join(args), proc.returncode, proc.stderr.strip()))
    return proc.stdout.strip()


def pg_running():
    proc = subprocess.run([PG_SCRIPT, "status"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    return proc.returncode == 0


class Service:
    """
    One long-running bin/payments process (serve or relay) that the harness
    SIGKILLs and restarts. Its output goes to log_path, appended across
    restarts. A watchdog (check()) notices deaths the harness did not cause.
    """

    def __init__(self, name, args, env, log_path, ready=None):
        self.name = name
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env)
        self.log_path = log_path
        self.ready = ready              # ready(service) -> bool, polled after each start
        self.proc = None
        self.lock = threading.RLock()
        self.starts = 0
        self.started_at = 0.0
        self.unexpected = []            # (time, return code, log tail) of deaths we did not cause

    def start(self, timeout=15.0):
        """Starts the process and waits for ready(); retries a start that fails at once (port in use)."""
        with self.lock:
            deadline = time.monotonic() + timeout
            tries = 0
            while True:
                tries += 1
                with open(self.log_path, "ab") as log:
                    log.write(b"--- chaos: start %s\n" % self.name.encode())
                    self.proc = subprocess.Popen([BIN] + self.args, stdin=subprocess.DEVNULL,
                                                 stdout=log, stderr=log, env=self.env, cwd=ROOT)
                self.started_at = time.monotonic()
                self.starts += 1
                while time.monotonic() < deadline:
                    if self.proc.poll() is not None:
                        break
                    if self.ready is None or self.ready(self):
                        return
                    time.sleep(0.02)
                if self.proc.poll() is None:
                    raise HarnessError("%s did not become ready within %.0fs:\n%s" % (
                        self.name, timeout, self.log_tail()))
                if time.monotonic() >= deadline or tries >= 10:
                    raise HarnessError("%s keeps exiting at start (%d):\n%s" % (
                        self.name, self.proc.returncode, self.log_tail(3)))
                time.sleep(0.1)     # e.g. the port is still held: try again

    def kill(self):
        """SIGKILL: no chance to finish a request, a batch or a transaction."""
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
            self.proc = None

    def check(self):
        """Records and restarts the process if it died without the harness killing it."""
        with self.lock:
            if self.proc is None or self.proc.poll() is None:
                return
            self.unexpected.append((time.time(), self.proc.returncode, self.log_tail()))
            self.proc = None
            self.start()

    def stop(self):
        """At the end: SIGTERM, then SIGKILL if it lingers."""
        with self.lock:
            if self.proc is None:
                return
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.proc = None

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def http_ready(port):
    """ready() for serve: GET /healthz (liveness, no database) answers 200."""
    def ready(_service):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
    return ready


def alive_for(seconds):
    """ready() for the relay: still running this long after its start (it has no probe)."""
    def ready(service):
        return time.monotonic() - service.started_at >= seconds
    return ready
