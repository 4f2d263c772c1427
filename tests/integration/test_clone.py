"""test_clone.py - the embedded PostgreSQL works from a clone whose parent folder is closed to others.

Users clone under /root (mode 700) or into a mktemp -d folder, which the
postgres user that runs the embedded cluster for root cannot enter. This
clones the repository into a fresh mode-700 folder, starts scripts/pg.sh
there on a port of its own, applies the migrations, and checks that
status, psql and stop still find the cluster.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness as h


def run(args, cwd, env, timeout=120):
    return subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


class CloneTest(unittest.TestCase):

    def setUp(self):
        self.parent = tempfile.mkdtemp(prefix="payments-clone-")
        os.chmod(self.parent, 0o700)
        self.addCleanup(shutil.rmtree, self.parent, True)
        self.clone = os.path.join(self.parent, "payments")
        proc = run(["git", "clone", "-q", "--no-hardlinks", h.ROOT, self.clone], h.ROOT,
                   dict(os.environ))
        self.assertEqual(proc.returncode, 0, proc.stdout)
        # The scripts as they are in this tree, committed or not.
        shutil.rmtree(os.path.join(self.clone, "scripts"))
        shutil.copytree(os.path.join(h.ROOT, "scripts"), os.path.join(self.clone, "scripts"))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("PAYMENTS_PG_") and k != "DATABASE_URL"}
        self.env["PAYMENTS_PG_PORT"] = str(h.free_port())
        self.pg = os.path.join(self.clone, "scripts", "pg.sh")
        self.addCleanup(self.remove_cluster)

    def remove_cluster(self):
        run([self.pg, "stop"], self.clone, self.env)
        # Where the data went when the clone's own folder was out of reach.
        real = os.path.realpath(os.path.join(self.clone, ".pg"))
        if not real.startswith(self.parent):
            shutil.rmtree(real, True)

    def test_pg_sh_starts_and_migrates_in_a_clone_under_a_closed_folder(self):
        """In a clone under a mode-700 folder, scripts/pg.sh starts the cluster, a migration applies, and status, psql and stop find it"""
        proc = run([self.pg, "start"], self.clone, self.env)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        url = proc.stdout.strip().splitlines()[-1]
        self.assertIn(":%s/payments" % self.env["PAYMENTS_PG_PORT"], url)

        env = dict(self.env, DATABASE_URL=url,
                   PAYMENTS_MIGRATIONS_DIR=os.path.join(self.clone, "migrations"))
        proc = run([h.BIN, "migrate", "up"], self.clone, env)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("database is up to date", proc.stdout)
        self.assertEqual(h.psql(url, "SELECT to_regclass('public.charges') IS NOT NULL"), "t")

        proc = run([self.pg, "status"], self.clone, self.env)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("running on 127.0.0.1:%s" % self.env["PAYMENTS_PG_PORT"], proc.stdout)
        proc = run([self.pg, "psql", "payments", "-XAtc", "SELECT current_database()"],
                   self.clone, self.env)
        self.assertEqual((proc.returncode, proc.stdout.strip()), (0, "payments"), proc.stdout)

        proc = run([self.pg, "stop"], self.clone, self.env)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        proc = run([self.pg, "status"], self.clone, self.env)
        self.assertEqual((proc.returncode, proc.stdout.strip()), (3, "stopped"), proc.stdout)


if __name__ == "__main__":
    unittest.main()
