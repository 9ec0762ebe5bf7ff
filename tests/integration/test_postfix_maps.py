"""Postfix's virtual_mailbox_domains, virtual_mailbox_maps and virtual_alias_maps read
mailquota's tables through contrib/postfix/pgsql-*.cf (the files as shipped, only their
connection lines pointed at the test's database), asked with the real postmap(1) and
postfix-pgsql: so an alias is defined once, in mailquota."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import mqtest

CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                       "postfix")
MAPS = ("pgsql-virtual-mailbox-domains.cf", "pgsql-virtual-mailbox-maps.cf",
        "pgsql-virtual-alias-maps.cf")


def postfix_map_types():
    """The lookup table types this Postfix has (postconf -m reads a main.cf: an empty one)."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n")
        p = subprocess.run(["postconf", "-c", d, "-m"], capture_output=True, text=True)
    return p.stdout.split()


@unittest.skipUnless(shutil.which("postmap"), "postfix is not installed")
class PostfixMaps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # scripts/test installs postfix-pgsql with postfix: its absence is a failure
        assert "pgsql" in postfix_map_types(), "postfix-pgsql is not installed"
        cls.db = mqtest.Database()
        db = cls.db
        db.cli("domain", "add", "maps.test")
        db.cli("domain", "add", "other.test")
        for m in ("alice@maps.test", "bob@maps.test", "off@maps.test", "o'hara@maps.test"):
            db.cli("mailbox", "add", m)
        db.cli("mailbox", "set", "off@maps.test", "enabled=no")
        db.cli("alias", "add", "team@maps.test", "alice@maps.test", "bob@maps.test")
        db.cli("alias", "add", "@other.test", "bob@maps.test")
        cls.dir = tempfile.mkdtemp(prefix="mq-maps-")
        # postmap reads a main.cf; an empty one in a directory of its own will do
        with open(os.path.join(cls.dir, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n")
        cls.files = {}
        for name in MAPS:
            with open(os.path.join(CONTRIB, name)) as f:
                text = f.read()
            # the connection lines only: the queries are the shipped ones
            text = re.sub(r"(?m)^hosts = .*$", f"hosts = unix:{mqtest.PGHOST}", text)
            text = re.sub(r"(?m)^dbname = .*$", f"dbname = {db.name}", text)
            text = re.sub(r"(?m)^user = .*$", "user = postfix_maps", text)
            path = os.path.join(cls.dir, name)
            with open(path, "w") as f:
                f.write(text)
            cls.files[name] = path
        # a role that may only read, as the files' comments say to make
        db.sql("DO $$ BEGIN CREATE ROLE postfix_maps LOGIN; EXCEPTION WHEN duplicate_object"
               " THEN NULL; END $$;"
               "GRANT SELECT ON domains, mailboxes, aliases, alias_targets TO postfix_maps")

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def query(self, name, key):
        """postmap -q: (exit status, result); 1 is "not found"."""
        p = subprocess.run(["postmap", "-c", self.dir, "-q", key, "pgsql:" + self.files[name]],
                           capture_output=True, text=True)
        if p.returncode not in (0, 1):
            raise AssertionError(f"postmap -q {key} pgsql:{name}: {p.returncode} {p.stderr}")
        return p.returncode, p.stdout.strip()

    def test_domains(self):
        self.assertEqual(self.query(MAPS[0], "maps.test"), (0, "maps.test"))
        self.assertEqual(self.query(MAPS[0], "other.test"), (0, "other.test"))
        self.assertEqual(self.query(MAPS[0], "nowhere.test")[0], 1)

    def test_mailboxes(self):
        self.assertEqual(self.query(MAPS[1], "alice@maps.test"), (0, "maps.test/alice/"))
        self.assertEqual(self.query(MAPS[1], "off@maps.test"), (0, "maps.test/off/"))
        # a quote in the key is escaped by postfix-pgsql, not spliced into the SQL
        self.assertEqual(self.query(MAPS[1], "o'hara@maps.test"), (0, "maps.test/o'hara/"))
        for key in ("team@maps.test", "nobody@maps.test", "@maps.test", "alice",
                    "x' OR '1'='1"):
            self.assertEqual(self.query(MAPS[1], key)[0], 1, key)

    def test_aliases_defined_once(self):
        code, targets = self.query(MAPS[2], "team@maps.test")
        self.assertEqual((code, sorted(targets.split(","))),
                         (0, ["alice@maps.test", "bob@maps.test"]))
        self.assertEqual(self.query(MAPS[2], "@other.test"), (0, "bob@maps.test"))
        self.assertEqual(self.query(MAPS[2], "alice@maps.test")[0], 1)
        # a change made through mailquota is what Postfix reads next
        self.db.cli("alias", "remove", "team@maps.test", "bob@maps.test")
        self.assertEqual(self.query(MAPS[2], "team@maps.test"), (0, "alice@maps.test"))
        # the check expands the alias the same way
        st, doc, _ = self.db.api().http("GET", "/v1/check?recipient=team@maps.test&size=1")
        self.assertEqual(st, 200, doc)
        self.assertEqual([t["address"] for t in doc.get("targets", [])], ["alice@maps.test"])


if __name__ == "__main__":
    unittest.main()
