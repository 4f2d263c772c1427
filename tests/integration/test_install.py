"""test_install.py - make install puts the binary, the migrations and the systemd units in place."""

import os
import subprocess
import tempfile
import unittest

import harness as h


class InstallTest(unittest.TestCase):

    def test_install_honours_prefix_and_destdir(self):
        """make install PREFIX=/opt/pay DESTDIR=<tmp> installs a working binary, every migration and units naming PREFIX"""
        with tempfile.TemporaryDirectory() as dest:
            proc = subprocess.run(["make", "-s", "install", "PREFIX=/opt/pay", "DESTDIR=" + dest],
                                  cwd=h.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stdout)
            root = os.path.join(dest, "opt/pay")
            binary = os.path.join(root, "bin/payments")
            self.assertTrue(os.access(binary, os.X_OK))
            out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, text=True, timeout=30)
            self.assertEqual(out.returncode, 0)
            self.assertIn("serve", out.stdout)
            want = sorted(f for f in os.listdir(os.path.join(h.ROOT, "migrations")) if f.endswith(".sql"))
            got = sorted(os.listdir(os.path.join(root, "share/payments/migrations")))
            self.assertEqual(got, want)
            for unit in ("payments-serve.service", "payments-relay.service"):
                with open(os.path.join(root, "share/payments/systemd", unit)) as f:
                    text = f.read()
                self.assertIn("ExecStart=/opt/pay/bin/payments", text)
                self.assertNotIn("@PREFIX@", text)


if __name__ == "__main__":
    unittest.main()
