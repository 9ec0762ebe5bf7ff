"""The mailquota CLI against a real PostgreSQL: migrations, administration and check."""
import json
import os
import subprocess
import re
import unittest

import mqtest


def table(out):
    """A table's rows as {first column: [the other columns]}: the first column is the row's
    first word, the last one the rest of the line (both left-aligned), every other one is cut
    where its right-aligned header word ends, so a value that does not line up is caught."""
    lines = out.splitlines()
    ends = [m.end() for m in re.finditer(r"\S+", lines[0])]
    rows = {}
    for line in lines[1:]:
        key = line.split()[0]
        cells, start = [], len(key)
        for end in ends[1:-1]:
            cells.append(line[start:end].strip())
            assert line[end:end + 1] == " ", f"{line!r}: a value spills past column {end}"
            start = end
        cells.append(line[start:].strip())
        rows[key] = cells
    return rows


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
        self.assertIn("1 GiB", out)
        out = db.cli("alias", "list").stdout
        self.assertIn("list@example.test", out)
        out = db.cli("domain", "list").stdout
        self.assertIn("10 MiB", out)
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
        self.assertEqual(rows["storage"], ["1G", "storage_limit_bytes"])
        self.assertEqual(rows["messages"], ["7", "message_limit"])
        self.assertEqual(rows["max-size"], ["25M", "max_message_size"])
        self.assertEqual(rows["grace"], ["none", "grace_percent"])
        self.assertEqual(rows["enabled"], ["no", "enabled"])
        self.assertIn("etag", rows)
        out = db.cli("domain", "get", "names.test").stdout
        self.assertRegex(out, r"(?m)^pool +1G +pool_limit_bytes$")
        self.assertRegex(out, r"(?m)^mailbox-max-size +none +default_max_message_size$")
        # round trip: what get shows, set takes back; another object set so is the same,
        # with sizes in units ("1G") or, with --bytes, in bytes; a size that is no whole
        # number of a unit ("1500") or of the larger ones ("1536K") too
        db.cli("domain", "set", "names.test", "max-size=1500", "mailbox-max-size=1536K")
        out = db.cli("domain", "get", "names.test").stdout
        self.assertRegex(out, r"(?m)^max-size +1500 +max_message_size$")
        self.assertRegex(out, r"(?m)^mailbox-max-size +1536K +default_max_message_size$")
        out = db.cli("--bytes", "domain", "get", "names.test").stdout
        self.assertRegex(out, r"(?m)^mailbox-max-size +1572864 +default_max_message_size$")
        db.cli("domain", "add", "copy.test")
        db.cli("domain", "add", "raw.test")
        for kind, src, dst, opts in (("domain", "names.test", "copy.test", ()),
                                     ("mailbox", "a@names.test", "b@names.test", ()),
                                     ("domain", "names.test", "raw.test", ("--bytes",))):
            with self.subTest(kind=kind, opts=opts):
                if kind == "mailbox":
                    db.cli("mailbox", "add", dst)
                out = db.cli(*opts, kind, "get", src).stdout
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
        # the domain table is headed by the names set takes, then what the domain holds
        out = db.cli("domain", "list").stdout
        self.assertRegex(out.splitlines()[0],
                         r"^DOMAIN +POOL +STORAGE +MESSAGES +MAILBOX-MAX-SIZE +MAX-SIZE +GRACE"
                         r" +MAILBOXES +OVER +USED +POOL%$")

    def test_sizes_for_people_or_in_bytes(self):
        db = self.db
        db.cli("domain", "add", "sizes.test", "pool=1T", "storage=10M", "messages=100",
               "mailbox-max-size=25M", "max-size=1536K")
        db.cli("mailbox", "add", "a@sizes.test", "storage=1G")
        db.cli("mailbox", "add", "b@sizes.test", "storage=1000")
        db.cli("usage", "set", "a@sizes.test", "7864320", "3")
        db.cli("usage", "set", "b@sizes.test", "1500", "2")
        # tables: binary units rounded down, counts and percentages as numbers, columns
        # lined up; with --bytes the same table in bytes
        rows = table(db.cli("mailbox", "list", "sizes.test").stdout)
        self.assertEqual(rows["a@sizes.test"], ["1 GiB", "7.5 MiB", "0.7", "3", "yes"])
        self.assertEqual(rows["b@sizes.test"], ["1000 B", "1.4 KiB", "150.0", "2", "yes OVER"])
        rows = table(db.cli("--bytes", "mailbox", "list", "sizes.test").stdout)
        self.assertEqual(rows["a@sizes.test"], [str(1 << 30), "7864320", "0.7", "3", "yes"])
        self.assertEqual(rows["b@sizes.test"], ["1000", "1500", "150.0", "2", "yes OVER"])
        out = db.cli("domain", "list").stdout
        self.assertEqual(table(out)["sizes.test"],
                         ["1 TiB", "10 MiB", "100", "25 MiB", "1.5 MiB", "-",
                          "2", "1", "7.5 MiB", "0.0"])
        self.assertEqual(table(db.cli("-b", "domain", "list").stdout)["sizes.test"],
                         [str(1 << 40), str(10 << 20), "100", str(25 << 20), str(1536 << 10),
                          "-", "2", "1", "7865820", "0.0"])
        self.assertEqual(out.splitlines()[0],
                         db.cli("-b", "domain", "list").stdout.splitlines()[0])
        # --json is the API's documents, in bytes, whatever --bytes says
        for args in (("mailbox", "list", "sizes.test"), ("domain", "get", "sizes.test"),
                     ("usage", "get", "a@sizes.test")):
            with self.subTest(args=args):
                a = json.loads(db.cli("--json", *args).stdout)
                self.assertEqual(a, json.loads(db.cli("--json", "--bytes", *args).stdout))
        items = json.loads(db.cli("--json", "mailbox", "list", "sizes.test").stdout)
        self.assertEqual((items[0]["effective"]["storage_limit_bytes"],
                          items[0]["usage"]["bytes"]), (1 << 30, 7864320))
        # get: settable sizes as set takes them, what the API adds as the tables show it
        out = db.cli("mailbox", "get", "a@sizes.test").stdout
        self.assertRegex(out, r"(?m)^storage +1G +storage_limit_bytes$")
        self.assertRegex(out, r"(?m)^usage\.bytes +7\.5 MiB$")
        self.assertRegex(out, r"(?m)^usage\.messages +3$")
        self.assertRegex(out, r"(?m)^effective\.storage +1 GiB$")
        self.assertRegex(out, r"(?m)^effective\.max-size +25 MiB$")
        out = db.cli("--bytes", "mailbox", "get", "a@sizes.test").stdout
        self.assertRegex(out, r"(?m)^storage +1073741824 +storage_limit_bytes$")
        self.assertRegex(out, r"(?m)^usage\.bytes +7864320$")
        self.assertRegex(out, r"(?m)^effective\.max-size +26214400$")
        # usage get and check: sizes in units, message counts as numbers
        want = "  storage            7.5 MiB used of 1 GiB, 1016.5 MiB left"
        out = mqtest.eventually(
            lambda: db.cli("usage", "get", "a@sizes.test").stdout.splitlines()[1], want)
        self.assertEqual(out, want)
        out = db.cli("usage", "get", "a@sizes.test").stdout
        self.assertIn("  messages           3 used of 100, 97 left\n", out)
        self.assertIn("  max message size   25 MiB\n", out)
        self.assertIn("  domain max size    1.5 MiB\n", out)
        out = db.cli("--bytes", "usage", "get", "a@sizes.test").stdout
        self.assertIn("  storage            7864320 used of 1073741824, 1065877504 left\n", out)
        self.assertIn("  domain max size    1572864\n", out)
        p = db.cli("check", "a@sizes.test", "1536K", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("size:      1.5 MiB\n", p.stdout)
        self.assertIn("used of 1 GiB", p.stdout)
        p = db.cli("-b", "check", "a@sizes.test", "1536K", check=False)
        self.assertIn("size:      1572864\n", p.stdout)
        # a usage report: 1500 + 524 bytes is 1.97 KiB, shown rounded down
        out = db.cli("usage", "add", "b@sizes.test", "524", "key=s/1").stdout
        self.assertIn("usage now 1.9 KiB, 2 messages", out)
        out = db.cli("--bytes", "usage", "add", "b@sizes.test", "24", "key=s/2").stdout
        self.assertIn("usage now 2048 bytes, 2 messages", out)
        self.assertIn("--bytes", db.cli("--help").stdout)

    def test_tokens(self):
        db = self.db
        db.cli("domain", "add", "t.test")
        db.cli("mailbox", "add", "me@t.test")
        p = db.cli("token", "create", "panel", "scope=read")
        tok = p.stdout.strip()
        self.assertRegex(tok, r"^mqt_[0-9]+_[A-Za-z0-9_-]{43}$")
        self.assertIn("shown once", p.stderr)
        # the read token lists but cannot change (exit 7); it reaches the daemon's view by
        # notification, a moment after it is made
        p = mqtest.eventually(lambda: db.cli("domain", "list", env={"MAILQUOTA_TOKEN": tok},
                                             check=False), 0, key=lambda p: p.returncode)
        self.assertEqual(p.returncode, 0, p.stderr)
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
