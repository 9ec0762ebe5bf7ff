"""Dovecot and mailquota on one source of truth, with Debian's real Dovecot 2.3 run on a
configuration of the test's own (no listener but its own sockets): its userdb reads each user's
limits from mailquota (contrib/dovecot/dovecot-sql.conf.ext over sql/014's view), its
quota_clone plugin writes usage back (contrib/dovecot/dovecot-dict-sql.conf.ext into sql/004's
table), and `doveadm quota get` and mailquota's mailbox document agree after saving mail and
after `doveadm quota recalc`."""
import shutil
import unittest

import mqdovecot
import mqtest


@unittest.skipUnless(shutil.which("dovecot"), "dovecot is not installed")
class Dovecot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        db = cls.db
        db.cli("domain", "add", "dc.test", "storage=100K", "messages=50", "grace=5")
        db.cli("mailbox", "add", "ann@dc.test")
        db.cli("mailbox", "add", "ben@dc.test", "storage=1M", "max-size=20K")
        db.cli("mailbox", "add", "zero@dc.test", "storage=0")
        db.cli("domain", "add", "free.test")
        db.cli("mailbox", "add", "free@free.test")
        cls.dc = mqdovecot.DovecotInstance(db)

    @classmethod
    def tearDownClass(cls):
        cls.dc.stop()
        cls.db.close()

    def doveadm(self, *args, input=None):
        return self.dc.doveadm(*args, input=input)

    def quota(self, user):
        return self.dc.quota(user)

    def userdb(self, user):
        out = self.doveadm("user", "-f", "quota_rule", user)
        fields = {}
        for line in self.doveadm("user", user).splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                fields[parts[0]] = parts[1]
        fields["quota_rule"] = out.strip()
        return fields

    def usage(self, user):
        st, doc, _ = self.db.api().http("GET", "/v1/mailboxes/" + user)
        self.assertEqual(st, 200, doc)
        return doc["usage"]["bytes"], doc["usage"]["messages"], doc["usage"]["source"]

    def test_userdb_limits_follow_mailquota(self):
        ann = self.userdb("ann@dc.test")
        self.assertEqual(ann["quota_rule"], "*:storage=102400B:messages=50")
        self.assertEqual(ann.get("quota_grace"), "5%")
        self.assertNotIn("quota_max_mail_size", ann)
        ben = self.userdb("ben@dc.test")
        self.assertEqual(ben["quota_rule"], "*:storage=1048576B:messages=50")
        self.assertEqual(ben.get("quota_max_mail_size"), "20480B")
        # a limit of 0 stays a limit (Dovecot reads 0 as none)
        self.assertEqual(self.userdb("zero@dc.test")["quota_rule"],
                         "*:storage=1B:messages=50")
        # no limits: Dovecot's 0
        self.assertEqual(self.userdb("free@free.test")["quota_rule"],
                         "*:storage=0B:messages=0")
        self.assertEqual(self.quota("free@free.test"),
                         {"STORAGE": (0, None), "MESSAGE": (0, None)})
        # Dovecot reads the limits as mailquota means them: 100 KiB and 50 messages
        self.assertEqual(self.quota("ann@dc.test"), {"STORAGE": (0, 100), "MESSAGE": (0, 50)})
        # a change in mailquota is what Dovecot reads next
        self.db.cli("mailbox", "set", "ann@dc.test", "storage=200K")
        try:
            self.assertEqual(self.quota("ann@dc.test")["STORAGE"], (0, 200))
        finally:
            self.db.cli("mailbox", "set", "ann@dc.test", "storage=none")
        users = self.doveadm("user", "*")  # the iterate_query
        self.assertEqual(sorted(users.split()),
                         ["ann@dc.test", "ben@dc.test", "free@free.test", "zero@dc.test"])

    def test_quota_clone_feeds_usage_and_they_agree(self):
        msg = "From: a@b.test\nSubject: hello\n\n" + "x" * 3000 + "\n"
        for _ in range(3):
            self.doveadm("save", "-u", "ben@dc.test", input=msg)
        dv = self.quota("ben@dc.test")
        want = (dv["STORAGE"][0], dv["MESSAGE"][0])
        self.assertEqual(want[1], 3)
        # quota_clone writes through the dict process: usage arrives within a second or so
        got = mqtest.eventually(lambda: self.usage("ben@dc.test")[1], 3)
        self.assertEqual(got, 3)
        nbytes, messages, source = self.usage("ben@dc.test")
        self.assertEqual(source, "dovecot")
        # doveadm shows KiB rounded up; mailquota has the bytes
        self.assertEqual(((nbytes + 1023) // 1024, messages), want)
        # recalculation on Dovecot's side: still the same on both
        self.doveadm("quota", "recalc", "-u", "ben@dc.test")
        dv = self.quota("ben@dc.test")
        nbytes, messages, _ = self.usage("ben@dc.test")
        self.assertEqual(((nbytes + 1023) // 1024, messages),
                         (dv["STORAGE"][0], dv["MESSAGE"][0]))
        # and the whole installation through mailquota usage load agrees too
        dump = self.doveadm("-f", "tab", "quota", "get", "-A")
        p = self.db.cli("usage", "load", "-", "source=doveadm", input=dump, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
