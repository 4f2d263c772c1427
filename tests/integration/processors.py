"""processors.py - processor mode in tests: the upstream processor (a second instance of this
service in its default test-token mode, on its own database), the fault proxy in front of it,
and 'payments processor' worker processes."""

import os
import signal
import subprocess
import tempfile

import harness as h
from faultproxy import FaultProxy
from harness import sql_literal as lit

# Fast settings: a retry of an unknown outcome after 50-200 ms, a call given up after 1 s, a
# lease long enough for a lookup before the retry (a page and the call must fit in what is left).
WORKER_ENV = {"PAYMENTS_LOG_LEVEL": "info", "PAYMENTS_PROCESSOR_TIMEOUT": "1s",
              "PAYMENTS_PROCESSOR_LEASE": "3s", "PAYMENTS_PROCESSOR_POLL": "20ms",
              "PAYMENTS_PROCESSOR_SCHEDULE": "50ms,100ms,200ms",
              "PAYMENTS_PROCESSOR_MAX_WAIT": "1h"}


class Upstream:
    """The processor: its own database, a default-mode server, a platform key, a fault proxy."""

    def __init__(self, module):
        self.db = h.Database(module + "_upstream")
        self.server = None
        self.proxy = None
        self.key = None

    def start(self):
        self.db.create()
        try:
            self.server = h.Server(self.db.app_url).start()
            self.key = self.db.create_key("platform")
            self.proxy = FaultProxy(self.server.port)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self.server is not None:
            self.server.stop()
            if os.environ.get("PAYMENTS_TEST_KEEP_LOGS") != "1":
                self.server.remove_log()
            self.server = None
        self.db.drop()

    def charges_for(self, charge_id):
        """The processor's charges made for our charge_id: [(id, status, amount, decline_code)]."""
        rows = self.db.query(
            "SELECT id, status, amount, coalesce(decline_code, '') FROM charges"
            " WHERE idempotency_key = %s OR metadata->>'payments_charge' = %s ORDER BY created"
            % (lit(charge_id), lit(charge_id)))
        return [tuple(r.split("|")) for r in rows.split("\n") if r]


class Worker:
    """One 'payments processor' process, stderr captured to a file."""

    def __init__(self, database_url, upstream, env=None):
        self.env = dict(WORKER_ENV)
        self.env.update({"DATABASE_URL": database_url,
                         "PAYMENTS_PROCESSOR_URL": upstream.proxy.url,
                         "PAYMENTS_PROCESSOR_KEY": upstream.key})
        self.env.update(env or {})
        self.proc = None
        fd, self.log_path = tempfile.mkstemp(prefix="payments-processor-", suffix=".stderr")
        os.close(fd)

    def start(self):
        env = dict(os.environ)
        env.update(self.env)
        start_len = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([h.BIN, "processor"], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env, cwd=h.ROOT)

        def started():
            if self.proc.poll() is not None and "processor: calling" not in self.log()[start_len:]:
                raise h.HarnessError("payments processor exited with %d:\n%s" % (
                    self.proc.returncode, self.log()))
            return "processor: calling" in self.log()[start_len:]
        h.poll(started, timeout=10, interval=0.02, message="the processor worker to start")
        return self

    def wait(self, timeout=h.POLL_TIMEOUT):
        """Waits for the process to end on its own; returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM; returns the exit code (0: a clean stop, leak checks included under ASan)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def remove_log(self):
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def processor_cli(database_url, *args, env=None):
    """Runs 'payments processor ARGS' and returns the CompletedProcess."""
    e = {"DATABASE_URL": database_url}
    e.update(env or {})
    return h.run_bin(["processor"] + list(args), e, timeout=120)
