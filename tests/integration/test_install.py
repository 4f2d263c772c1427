"""test_install.py - make install puts the binary, the migrations and the systemd units in place."""

import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

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
            units = {}
            for unit in ("payments-migrate.service", "payments-serve.service",
                         "payments-relay.service", "payments-processor.service",
                         "migrate.env.example", "payments.env.example"):
                with open(os.path.join(root, "share/payments/systemd", unit)) as f:
                    units[unit] = f.read()
                self.assertNotIn("@PREFIX@", units[unit])
            for unit in ("payments-migrate.service", "payments-serve.service",
                         "payments-relay.service", "payments-processor.service"):
                self.assertIn("ExecStart=/opt/pay/bin/payments", units[unit])

    def test_units_migrate_as_the_owner_and_serve_as_the_application_role(self):
        """Only the migrate unit runs 'migrate up', with the owner's settings; serve and relay use the application role's"""
        def read(path):
            with open(os.path.join(h.ROOT, "deploy", path)) as f:
                return f.read()

        def setting(text, name):
            lines = [line.split("=", 1)[1] for line in text.splitlines()
                     if line.startswith(name + "=")]
            self.assertEqual(len(lines), 1, "%s once in %r" % (name, text))
            return lines[0]

        migrate = read("systemd/payments-migrate.service")
        self.assertEqual(setting(migrate, "ExecStart"), "@PREFIX@/bin/payments migrate up")
        self.assertEqual(setting(migrate, "EnvironmentFile"), "/etc/payments/migrate.env")
        for unit in ("payments-serve.service", "payments-relay.service",
                     "payments-processor.service"):
            text = read("systemd/" + unit)
            self.assertNotIn("migrate", setting(text, "ExecStart"))
            self.assertNotIn("ExecStartPre", text)
            self.assertEqual(setting(text, "EnvironmentFile"), "/etc/payments/payments.env")
            self.assertIn("payments-migrate.service", setting(text, "Requires"))
        owner = setting(read("migrate.env.example"), "DATABASE_URL")
        app = setting(read("payments.env.example"), "DATABASE_URL")
        self.assertNotEqual(owner.split("@")[0], app.split("@")[0],
                            "the API must not log in as the owner")


    @unittest.skipIf(shutil.which("docker-compose") is None, "docker-compose is not installed")
    def test_compose_migrates_as_the_owner_and_serves_as_the_application_role(self):
        """compose.yaml: migrate logs in as the image's superuser; api and relay as payments_api, made after migrate"""
        try:
            import yaml   # Debian's docker-compose depends on python3-yaml
        except ImportError:
            self.skipTest("this python3 has no yaml module")

        proc = subprocess.run(["docker-compose", "-f", "compose.yaml", "config"], cwd=h.ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        services = yaml.safe_load(proc.stdout)["services"]

        def user(service):
            url = services[service]["environment"]["DATABASE_URL"]
            return urllib.parse.urlsplit(url).username

        owner = services["postgres"]["environment"]["POSTGRES_USER"]
        self.assertEqual(user("migrate"), owner)
        for service in ("api", "relay"):
            self.assertEqual(user(service), "payments_api", service)
            self.assertIn("app-role", services[service]["depends_on"])
        self.assertIn("migrate", services["app-role"]["depends_on"])
        self.assertIn("/app-role.sql", services["app-role"]["command"])


if __name__ == "__main__":
    unittest.main()
