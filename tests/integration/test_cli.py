"""The mailquota CLI against a real PostgreSQL: migrations, administration and check."""
import os
import unittest

import mqtest


class Cli(unittest.TestCase):
    def setUp(self):
        self.db = mqtest.Database()

    def tearDown(self):
        self.db.close()

    def test_migrate_is_idempotent_and_recorded(self):
        p = self.db.cli("migrate")
        self.assertIn("migrations applied: 0", p.stdout)
        sql_dir = os.path.join(os.environ["MQ_SOURCE_DIR"], "sql")
        want = ",".join(sorted(f[:-4] for f in os.listdir(sql_dir) if f.endswith(".sql")))
        self.assertEqual(self.db.sql("SELECT string_agg(name, ',' ORDER BY version)"
                                     " FROM schema_migrations"), want)

    def test_schema_constraints(self):
        for bad in ("INSERT INTO domains (name) VALUES ('Upper.Test')",
                    "INSERT INTO domains (name, pool_limit_bytes) VALUES ('x.test', -1)"):
            with self.subTest(sql=bad):
                with self.assertRaises(Exception):
                    self.db.sql(bad)
        self.db.sql("INSERT INTO domains (name) VALUES ('ok.test')")
        with self.assertRaises(Exception):
            self.db.sql("INSERT INTO mailboxes (domain_id, local_part, used_bytes)"
                        " SELECT id, 'a', -5 FROM domains")
        self.db.sql("INSERT INTO aliases (domain_id, local_part) SELECT id, NULL FROM domains")
        with self.assertRaises(Exception):  # one catch-all per domain
            self.db.sql("INSERT INTO aliases (domain_id, local_part)"
                        " SELECT id, NULL FROM domains")

    def test_admin_flow_and_errors(self):
        db = self.db
        db.cli("domain", "add", "EXAMPLE.test", "storage=10M", "messages=100", "grace=10")
        p = db.cli("domain", "add", "example.test", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already exists", p.stderr)
        p = db.cli("domain", "add", "bad..test", check=False)
        self.assertEqual(p.returncode, 2)
        p = db.cli("domain", "set", "example.test", "bogus=1", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("unknown field", p.stderr)
        p = db.cli("domain", "set", "example.test", "storage=-1", check=False)
        self.assertEqual(p.returncode, 1)
        p = db.cli("domain", "set", "example.test", "storage=9223372036854775808", check=False)
        self.assertEqual(p.returncode, 1)
        p = db.cli("mailbox", "add", "u@missing.test", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no domain missing.test", p.stderr)
        db.cli("mailbox", "add", "Alice@Example.Test", "storage=1G", "max-size=25M")
        # all or nothing: a bad field leaves no mailbox behind
        p = db.cli("mailbox", "add", "bob@example.test", "storage=1G", "nope=1", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(db.sql("SELECT count(*) FROM mailboxes WHERE local_part = 'bob'"), "0")
        p = db.cli("alias", "add", "list@example.test", "nobody@example.test", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not a mailbox", p.stderr)
        self.assertEqual(db.sql("SELECT count(*) FROM aliases"), "0")
        db.cli("alias", "add", "list@example.test", "alice@example.test")
        db.cli("alias", "add", "list@example.test", "alice@example.test")  # no duplicate
        self.assertEqual(db.sql("SELECT count(*) FROM alias_targets"), "1")
        out = db.cli("mailbox", "list", "example.test").stdout
        self.assertIn("alice@example.test", out)
        self.assertIn("1073741824", out)
        out = db.cli("alias", "list").stdout
        self.assertIn("list@example.test", out)
        out = db.cli("domain", "list").stdout
        self.assertIn("10485760", out)
        db.cli("mailbox", "set", "alice@example.test", "storage=none")
        self.assertEqual(db.sql("SELECT storage_limit_bytes IS NULL FROM mailboxes"), "t")
        db.cli("alias", "del", "list@example.test")
        db.cli("mailbox", "del", "alice@example.test")
        p = db.cli("mailbox", "del", "alice@example.test", check=False)
        self.assertEqual(p.returncode, 1)
        db.cli("domain", "del", "example.test")
        self.assertEqual(db.sql("SELECT count(*) FROM domains"), "0")

    def test_check_exit_codes(self):
        db = self.db
        db.cli("domain", "add", "example.test")
        db.cli("mailbox", "add", "a@example.test", "storage=100")
        p = db.cli("check", "A+x@example.test", "100", check=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("verdict:   accept", p.stdout)
        p = db.cli("check", "a@example.test", "101", check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("552 5.2.2 Mailbox full", p.stdout)
        p = db.cli("check", "b@example.test", "1", check=False)
        self.assertEqual(p.returncode, 4)
        p = db.cli("check", "not-an-address", "1", check=False)
        self.assertEqual(p.returncode, 2)
        p = db.cli("check", "a@example.test", "1X", check=False)
        self.assertEqual(p.returncode, 2)

    def test_usage_and_unknown_command(self):
        p = self.db.cli("frobnicate", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)
        p = self.db.cli("domain", "add", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: mailquota domain add", p.stderr)


if __name__ == "__main__":
    unittest.main()
