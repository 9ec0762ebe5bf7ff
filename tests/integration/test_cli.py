"""The mailquota CLI against a real PostgreSQL: migrations, administration and check."""
import json
import os
import subprocess
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
        self.assertEqual(p.returncode, 6)  # conflict
        self.assertIn("exists already", p.stderr)
        p = db.cli("domain", "add", "bad..test", check=False)
        self.assertEqual(p.returncode, 2)
        p = db.cli("domain", "set", "example.test", "bogus=1", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown field", p.stderr)
        p = db.cli("domain", "set", "example.test", "storage=-1", check=False)
        self.assertEqual(p.returncode, 2)
        p = db.cli("domain", "set", "example.test", "storage=9223372036854775808", check=False)
        self.assertEqual(p.returncode, 2)
        p = db.cli("mailbox", "add", "u@missing.test", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("domain does not exist", p.stderr)
        db.cli("mailbox", "add", "Alice@Example.Test", "storage=1G", "max-size=25M")
        # all or nothing: a bad field leaves no mailbox behind
        p = db.cli("mailbox", "add", "bob@example.test", "storage=1G", "nope=1", check=False)
        self.assertEqual(p.returncode, 2)
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
        # two admins: the second one's --if-match names a version that is gone
        etag = json.loads(db.cli("--json", "mailbox", "get", "alice@example.test").stdout)["etag"]
        db.cli("--if-match", etag, "mailbox", "set", "alice@example.test", "messages=5")
        p = db.cli("--if-match", f'"{etag}"', "mailbox", "set", "alice@example.test",
                   "messages=6", check=False)
        self.assertEqual(p.returncode, 6)
        self.assertIn("changed since you read it", p.stderr)
        p = db.cli("--if-match", etag, "mailbox", "del", "alice@example.test", check=False)
        self.assertEqual(p.returncode, 6)
        self.assertEqual(db.sql("SELECT message_limit FROM mailboxes"), "5")
        p = db.cli("--if-match", 'a"b', "mailbox", "del", "alice@example.test", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(db.sql("SELECT storage_limit_bytes IS NULL FROM mailboxes"), "t")
        # --json: the API's documents, all pages as one array
        doc = json.loads(db.cli("--json", "mailbox", "get", "alice@example.test").stdout)
        self.assertEqual((doc["address"], doc["max_message_size"]),
                         ("alice@example.test", 25 * 1024 * 1024))
        for i in range(5):
            db.cli("mailbox", "add", f"m{i}@example.test")
        items = json.loads(db.cli("--json", "mailbox", "list", "example.test").stdout)
        self.assertEqual(len(items), 6)
        items = json.loads(db.cli("--json", "mailbox", "list", "limit=2").stdout)
        self.assertEqual([m["address"] for m in items], ["alice@example.test",
                                                         "m0@example.test"])
        db.cli("usage", "set", "m3@example.test", "11M")
        over = json.loads(db.cli("--json", "mailbox", "list", "over_quota=true").stdout)
        self.assertEqual([m["address"] for m in over], ["m3@example.test"])
        p = db.cli("mailbox", "list", "bogus=1", check=False)
        self.assertEqual(p.returncode, 1)
        db.cli("alias", "remove", "list@example.test", "alice@example.test", check=False)
        db.cli("alias", "del", "list@example.test")
        db.cli("mailbox", "del", "alice@example.test")
        p = db.cli("mailbox", "del", "alice@example.test", check=False)
        self.assertEqual(p.returncode, 4)
        # every change is in the audit log, with the token that made it
        log = json.loads(db.cli("--json", "audit", "object=alice@example.test").stdout)
        self.assertEqual([e["action"] for e in log],
                         ["mailbox.delete", "mailbox.update", "mailbox.update", "mailbox.create"])
        self.assertIn("mailbox.delete", db.cli("audit").stdout)
        db.cli("domain", "del", "example.test")
        self.assertEqual(db.sql("SELECT count(*) FROM domains"), "0")

    # the fields of each kind by their API names, as documents and exports have them
    FIELDS = {
        "domain": ["pool_limit_bytes", "default_storage_limit_bytes", "default_message_limit",
                   "default_max_message_size", "max_message_size", "grace_percent"],
        "mailbox": ["storage_limit_bytes", "message_limit", "max_message_size", "grace_percent",
                    "enabled"],
    }

    def test_field_names_of_the_api_and_of_get(self):
        db = self.db
        # the API's names work as well as the short ones, mixed in one command
        db.cli("domain", "add", "names.test", "pool_limit_bytes=1G", "storage=10M",
               "default_message_limit=100", "grace_percent=5")
        db.cli("mailbox", "add", "a@names.test", "storage_limit_bytes=1G", "max-size=25M")
        db.cli("mailbox", "set", "a@names.test", "message_limit=7", "enabled=no")
        m = json.loads(db.cli("--json", "mailbox", "get", "a@names.test").stdout)
        self.assertEqual([m[f] for f in self.FIELDS["mailbox"]],
                         [1 << 30, 7, 25 << 20, None, False])
        d = json.loads(db.cli("--json", "domain", "get", "names.test").stdout)
        self.assertEqual([d[f] for f in self.FIELDS["domain"]],
                         [1 << 30, 10 << 20, 100, None, None, 5])
        # another kind's name is refused, with the names this kind takes
        p = db.cli("domain", "set", "names.test", "storage_limit_bytes=1", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown field", p.stderr)
        self.assertIn("storage (default_storage_limit_bytes)", p.stderr)
        self.assertIn("mailbox-max-size (default_max_message_size)", p.stderr)
        p = db.cli("mailbox", "set", "a@names.test", "pool=1", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("storage (storage_limit_bytes)", p.stderr)
        self.assertIn("enabled", p.stderr)
        p = db.cli("mailbox", "set", "a@names.test", "message_limit=lots", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("is not a count", p.stderr)
        # get shows the names set takes, the value as set takes it, and the API's name
        out = db.cli("mailbox", "get", "a@names.test").stdout
        rows = {w[0]: w[1:] for w in (line.split() for line in out.splitlines()) if w}
        self.assertEqual(rows["address"], ["a@names.test"])
        self.assertEqual(rows["storage"], [str(1 << 30), "storage_limit_bytes"])
        self.assertEqual(rows["messages"], ["7", "message_limit"])
        self.assertEqual(rows["max-size"], [str(25 << 20), "max_message_size"])
        self.assertEqual(rows["grace"], ["none", "grace_percent"])
        self.assertEqual(rows["enabled"], ["no", "enabled"])
        self.assertIn("etag", rows)
        out = db.cli("domain", "get", "names.test").stdout
        self.assertRegex(out, r"(?m)^pool +1073741824 +pool_limit_bytes$")
        self.assertRegex(out, r"(?m)^mailbox-max-size +none +default_max_message_size$")
        # round trip: what get shows, set takes back; another object set so is the same
        db.cli("domain", "add", "copy.test")
        for kind, src, dst in (("domain", "names.test", "copy.test"),
                               ("mailbox", "a@names.test", "b@names.test")):
            with self.subTest(kind=kind):
                if kind == "mailbox":
                    db.cli("mailbox", "add", dst)
                out = db.cli(kind, "get", src).stdout
                args = [f"{w[0]}={w[1]}" for w in (line.split() for line in out.splitlines())
                        if len(w) == 3 and w[2] in self.FIELDS[kind]]
                self.assertEqual(len(args), len(self.FIELDS[kind]), out)
                db.cli(kind, "set", dst, *args)
                a = json.loads(db.cli("--json", kind, "get", src).stdout)
                b = json.loads(db.cli("--json", kind, "get", dst).stdout)
                self.assertEqual([a[f] for f in self.FIELDS[kind]],
                                 [b[f] for f in self.FIELDS[kind]])
                # and on the object itself, set changes nothing
                db.cli(kind, "set", src, *args)
                again = json.loads(db.cli("--json", kind, "get", src).stdout)
                self.assertEqual([again[f] for f in self.FIELDS[kind]],
                                 [a[f] for f in self.FIELDS[kind]])
        # the domain table is headed by the names set takes
        out = db.cli("domain", "list").stdout
        self.assertRegex(out.splitlines()[0],
                         r"^DOMAIN +POOL +STORAGE +MESSAGES +MAILBOX-MAX-SIZE +MAX-SIZE +GRACE$")

    def test_tokens(self):
        db = self.db
        db.cli("domain", "add", "t.test")
        db.cli("mailbox", "add", "me@t.test")
        p = db.cli("token", "create", "panel", "scope=read")
        tok = p.stdout.strip()
        self.assertRegex(tok, r"^mqt_[0-9]+_[A-Za-z0-9_-]{43}$")
        self.assertIn("shown once", p.stderr)
        # the read token lists but cannot change (exit 7)
        p = db.cli("domain", "list", env={"MAILQUOTA_TOKEN": tok})
        self.assertIn("t.test", p.stdout)
        p = db.cli("domain", "add", "x.test", env={"MAILQUOTA_TOKEN": tok}, check=False)
        self.assertEqual(p.returncode, 7)
        p = db.cli("token", "create", "u", "scope=self", check=False)
        self.assertEqual(p.returncode, 1)
        me = db.cli("token", "create", "me", "scope=self", "mailbox=me@t.test").stdout.strip()
        doc = json.loads(db.cli("--json", "token", "get", me.split("_")[1]).stdout)
        self.assertEqual((doc["scope"], doc["mailbox"], "token" in doc), ("self", "me@t.test",
                                                                          False))
        self.assertEqual(db.cli("token", "get", "99999", check=False).returncode, 4)
        out = db.cli("token", "list").stdout
        self.assertIn("panel", out)
        self.assertIn("me@t.test", out)
        tid = tok.split("_")[1]
        db.cli("token", "revoke", tid)
        self.assertNotIn("panel", db.cli("token", "list").stdout)
        self.assertIn("revoked", db.cli("token", "list", "all").stdout)
        p = mqtest.eventually(lambda: db.cli("domain", "list", env={"MAILQUOTA_TOKEN": tok},
                                             check=False).returncode, 7)
        self.assertEqual(p, 7)
        # no token, no API
        p = db.cli("domain", "list", env={"MAILQUOTA_TOKEN": ""}, check=False)
        self.assertEqual(p.returncode, 7)
        self.assertIn("no API token", p.stderr)
        p = db.cli("domain", "list", check=False,
                   env={"MAILQUOTA_URL": f"http://127.0.0.1:{mqtest.free_port()}"})
        self.assertEqual(p.returncode, 5)
        self.assertIn("cannot reach the API", p.stderr)
        # a token file from the configuration
        path = os.path.join(self.db.api().dir, "cli.conf")
        tf = os.path.join(self.db.api().dir, "token")
        with open(tf, "w") as f:
            f.write(self.db.api().token + "\n")
        with open(path, "w") as f:
            f.write(f"api_url = http://127.0.0.1:{self.db.api().http_port}\n"
                    f"api_token_file = {tf}\n")
        p = subprocess.run([os.path.join(mqtest.BIN, "mailquota"), "-c", path, "domain", "list"],
                           capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items()
                                if not k.startswith("MAILQUOTA_")})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("t.test", p.stdout)

    def test_check_exit_codes(self):
        db = self.db
        db.cli("domain", "add", "example.test")
        db.cli("mailbox", "add", "a@example.test", "storage=100")
        # check asks the daemon, whose view follows the database within milliseconds
        mqtest.eventually(lambda: db.cli("check", "a@example.test", "1",
                                         check=False).returncode, 0)
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
