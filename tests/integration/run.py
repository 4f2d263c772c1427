#!/usr/bin/env python3
"""run.py - runs every tests/integration/test_*.py against the real bin/payments and PostgreSQL.

Usage: python3 tests/integration/run.py [-k SUBSTRING] [-j N] [MODULE...]
  MODULE      run only these modules (e.g. test_auth); default: all, in name order
  -k TEXT     run only tests whose id or sentence contains TEXT
  -j N        run N modules at once, each in its own process (default
              PAYMENTS_TEST_JOBS, else 1)

Needs PAYMENTS_TEST_ADMIN_URL (and PAYMENTS_TEST_EMBEDDED=1 for the restart
test); see harness.py. Prints each test as a sentence, then the details of
every failure, and ends with the line "N passed, N failed" (", N skipped"
when tests were skipped). Exits 1 when anything failed or errored, 2 when
the environment is unusable.
"""

import argparse
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (needs the path above)


def sentence(test):
    """The test's docstring's first line, or its method name read as words."""
    doc = test.shortDescription() if hasattr(test, "shortDescription") else None
    if doc:
        return doc.strip()
    name = getattr(test, "_testMethodName", None) or str(test)
    return name.replace("test_", "", 1).replace("_", " ")


def where(test):
    module = type(test).__module__
    cls = type(test).__name__
    if isinstance(test, unittest.case._SubTest):
        test = test.test_case
        module, cls = type(test).__module__, type(test).__name__
    if cls == "_ErrorHolder":   # setUpModule / setUpClass failures
        return test.description
    return "%s.%s.%s" % (module, cls, getattr(test, "_testMethodName", "?"))


class SentenceResult(unittest.TestResult):
    """Prints one line per test as it finishes and keeps the counts."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.n_passed = self.n_failed = self.n_skipped = 0
        self.details = []
        self.module = None
        self._state = None
        self._started = 0.0

    def _print(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def startTest(self, test):
        super().startTest(test)
        module = type(test).__module__
        if module != self.module:
            self.module = module
            self._print("\n%s" % module)
        self._state = "ok"
        self._reason = ""
        self._started = time.monotonic()

    def stopTest(self, test):
        super().stopTest(test)
        took = time.monotonic() - self._started
        label = {"ok": "ok  ", "FAIL": "FAIL", "skip": "skip"}[self._state]
        extra = " (%s)" % self._reason if self._reason else ""
        if took >= 1.0:
            extra += " [%.1fs]" % took
        self._print("  %s  %s%s" % (label, sentence(test), extra))
        if self._state == "ok":
            self.n_passed += 1
        elif self._state == "FAIL":
            self.n_failed += 1
        else:
            self.n_skipped += 1

    def _fail(self, test, err, kind):
        self._state = "FAIL"
        self.details.append((kind, test, self._exc_info_to_string(err, test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, "FAIL")

    def addError(self, test, err):
        super().addError(test, err)
        if not isinstance(test, unittest.TestCase):
            # A module or class fixture failed: no test is running, so report it on its own.
            self.n_failed += 1
            self.details.append(("ERROR", test, self._exc_info_to_string(err, test)))
            self._print("  FAIL  %s" % where(test))
            return
        self._fail(test, err, "ERROR")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._fail(subtest, err, kind)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not isinstance(test, unittest.TestCase):
            self.n_skipped += 1
            self._print("  skip  %s (%s)" % (where(test), reason))
            return
        self._state = "skip"
        self._reason = reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._state = "FAIL"
        self.details.append(("UNEXPECTED SUCCESS", test, ""))


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


# Modules that take longest start first when running in parallel.
SLOW_FIRST = ["test_migrate", "test_relay_delivery", "test_nats", "test_hostile", "test_openapi",
              "test_relay_processes", "test_lists", "test_operations", "test_relay_deadletter"]


def run_parallel(jobs):
    """
    Runs every module in its own process, jobs at a time (each module has its
    own database and servers, and the tests mostly wait), then the test_zz_
    modules (they restart the shared PostgreSQL) alone. Prints each module's
    report whole, in order, and returns the summed counts.
    """
    import concurrent.futures
    import re
    import subprocess

    names = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    alone = [n for n in names if n.startswith("test_zz_")]
    shared = [n for n in names if n not in alone]
    shared.sort(key=lambda n: (SLOW_FIRST.index(n) if n in SLOW_FIRST else len(SLOW_FIRST), n))

    def one(name):
        proc = subprocess.run([sys.executable, os.path.join(HERE, "run.py"), name],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return name, proc.returncode, proc.stdout

    outputs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, code, out in pool.map(one, shared):
            outputs[name] = (code, out)
    for name in alone:
        outputs[name] = one(name)[1:]
    passed = failed = skipped = 0
    ok = True
    for name in names:
        code, out = outputs[name]
        sys.stdout.write(out)
        m = re.search(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", out, re.M)
        if m is None:
            failed += 1
            ok = False
            print("run.py: %s ended without a summary (exit %d)" % (name, code))
            continue
        passed += int(m.group(1))
        failed += int(m.group(2))
        skipped += int(m.group(3) or 0)
        ok = ok and code == 0
    return passed, failed, skipped, ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", dest="match", default=None)
    parser.add_argument("-j", dest="jobs", type=int,
                        default=int(os.environ.get("PAYMENTS_TEST_JOBS", "1")),
                        help="modules run at once, each in its own process (default PAYMENTS_TEST_JOBS, else 1)")
    parser.add_argument("modules", nargs="*")
    args = parser.parse_args()

    try:
        harness.admin_url()
        if not os.access(harness.BIN, os.X_OK):
            raise harness.HarnessError("%s is missing: run make first" % harness.BIN)
    except harness.HarnessError as e:
        print("run.py: %s" % e, file=sys.stderr)
        print("0 passed, 1 failed")
        return 2

    if args.jobs > 1 and not args.modules and not args.match:
        started = time.monotonic()
        passed, failed, skipped, ok = run_parallel(args.jobs)
        print("\nall modules ran in %.1fs, %d at a time" % (time.monotonic() - started, args.jobs))
        line = "%d passed, %d failed" % (passed, failed)
        if skipped:
            line += ", %d skipped" % skipped
        print(line)
        return 0 if ok and failed == 0 else 1

    loader = unittest.TestLoader()
    if args.modules:
        suite = unittest.TestSuite()
        for name in args.modules:
            name = os.path.basename(name)
            name = name[:-3] if name.endswith(".py") else name
            suite.addTests(loader.loadTestsFromName(name))
    else:
        # discover() walks the directory in sorted order, so test_zz_restart runs last.
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    if args.match:
        kept = [t for t in flatten(suite)
                if args.match in t.id() or args.match in sentence(t)
                or not isinstance(t, unittest.TestCase)]
        suite = unittest.TestSuite(kept)

    started = time.monotonic()
    result = SentenceResult(sys.stdout)
    suite.run(result)

    for kind, test, text in result.details:
        print("\n" + "=" * 70)
        print("%s: %s\n  %s" % (kind, where(test), sentence(test)))
        print("-" * 70)
        print(text.rstrip())
    print("\nran in %.1fs" % (time.monotonic() - started))
    line = "%d passed, %d failed" % (result.n_passed, result.n_failed)
    if result.n_skipped:
        line += ", %d skipped" % result.n_skipped
    print(line)
    return 0 if result.n_failed == 0 and result.wasSuccessful() else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
