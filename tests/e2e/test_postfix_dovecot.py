"""Postfix and Dovecot on mailquota as their one source of truth, with the real programs:
Postfix's virtual domains, mailboxes and aliases come from mailquota's tables
(contrib/postfix/pgsql-*.cf), it asks mailquotad's policy service at RCPT TO and delivers by
LMTP to Dovecot, whose userdb reads the limits from mailquota (contrib/dovecot) and whose
quota_clone writes usage back. Deliveries show in mailquota's usage at once; the next RCPT to a
mailbox that just filled is refused with 552 5.2.2 while the other recipients are delivered;
`doveadm quota get` and the API agree, also after `doveadm quota recalc`."""
import os
import re
import shutil
import time
import unittest

import mqdovecot
import mqtest
import test_postfix as tp

MAPS = ("pgsql-virtual-mailbox-domains.cf", "pgsql-virtual-mailbox-maps.cf",
        "pgsql-virtual-alias-maps.cf")
CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                       "postfix")


def postfix_map(name, dbname):
    """A contrib map as shipped, its connection pointed at the test's database."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    text = re.sub(r"(?m)^hosts = .*$", f"hosts = unix:{mqtest.PGHOST}", text)
    text = re.sub(r"(?m)^dbname = .*$", f"dbname = {dbname}", text)
    return re.sub(r"(?m)^user = .*$", "user = postgres", text)


@unittest.skipUnless(shutil.which("postfix") and shutil.which("dovecot"),
                     "postfix or dovecot is not installed")
class PostfixDovecot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        db = cls.db
        db.cli("domain", "add", "lmtp.test", "storage=1M")
        for m in ("a", "b", "c"):
            db.cli("mailbox", "add", f"{m}@lmtp.test")
        db.cli("mailbox", "set", "b@lmtp.test", "storage=6K")
        db.cli("alias", "add", "all@lmtp.test", "a@lmtp.test", "c@lmtp.test")
        cls.daemon = cls.pf = cls.dc = None
        try:
            cls.dc = mqdovecot.DovecotInstance(db, lmtp=True)
            cls.daemon = mqtest.Daemon(db.conninfo, policy_socket_group="postfix",
                                       policy_socket_mode="0660")
            extra = "".join(f"{key} = pgsql:{{etc}}/{name}\n" for key, name in zip(
                ("virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps"),
                MAPS))
            extra += f"virtual_transport = lmtp:unix:{cls.dc.lmtp_socket}\n"
            cls.pf = tp.PostfixInstance(
                cls.daemon.socket, f"http://127.0.0.1:{cls.daemon.http_port}",
                mqtest.UNUSABLE_TOKEN, main_cf_extra=extra,
                etc_files={name: postfix_map(name, db.name) for name in MAPS})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        tp.stop_instances(cls)  # Postfix first: it delivers to Dovecot
        if cls.dc is not None:
            cls.dc.stop()

    def usage(self, user):
        st, doc, _ = self.daemon.http("GET", f"/v1/mailboxes/{user}")
        self.assertEqual(st, 200, doc)
        return doc["usage"]["bytes"], doc["usage"]["messages"]

    def agree(self, user):
        """doveadm's figures (STORAGE in KiB, rounded up) equal mailquota's."""
        dv = self.dc.quota(user)
        nbytes, messages = self.usage(user)
        self.assertEqual(((nbytes + 1023) // 1024, messages),
                         (dv["STORAGE"][0], dv["MESSAGE"][0]), user)

    def test_deliveries_fill_a_mailbox_and_its_next_rcpt_is_refused(self):
        body = (b"From: sender@client.test\r\nSubject: lmtp\r\n\r\n" + b"y" * 3500 + b"\r\n")
        t0 = time.monotonic()
        replies, data = tp.smtp_transaction(self, self.pf.port, len(body), [
            "a@lmtp.test", "b@lmtp.test", "c@lmtp.test"], body)
        self.assertEqual([c for c, _ in replies], [250, 250, 250], replies)
        self.assertEqual(data, 250)
        # delivered by Dovecot, counted by quota_clone into mailquota: how long that took
        for user in ("a@lmtp.test", "b@lmtp.test", "c@lmtp.test"):
            self.assertEqual(mqtest.eventually(lambda: self.usage(user)[1], 1, timeout=30), 1,
                             self.pf.log() + self.dc.log()[-2000:])
        took = time.monotonic() - t0
        print(f"\nthree LMTP deliveries visible in mailquota's usage {took:.2f} s after the "
              "SMTP transaction began")
        for user in ("a@lmtp.test", "b@lmtp.test", "c@lmtp.test"):
            self.agree(user)
        # b holds about 3.6 KB of 6 KiB: the same message again does not fit; the daemon's
        # view learns b's usage through NOTIFY
        mqtest.eventually(lambda: self.daemon.policy(
            recipient="b@lmtp.test", size=str(len(body))).startswith("552"), True)
        replies, data = tp.smtp_transaction(self, self.pf.port, len(body), [
            "a@lmtp.test", "b@lmtp.test", "c@lmtp.test"], body)
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertTrue(replies[1][1].startswith("5.2.2"), replies[1])
        self.assertEqual(data, 250)
        for user, want in (("a@lmtp.test", 2), ("b@lmtp.test", 1), ("c@lmtp.test", 2)):
            self.assertEqual(mqtest.eventually(lambda: self.usage(user)[1], want), want, user)
            self.agree(user)
        # an alias is defined once, in mailquota: Postfix expands it from the same tables
        replies, data = tp.smtp_transaction(self, self.pf.port, 100, ["all@lmtp.test"])
        self.assertEqual(([c for c, _ in replies], data), ([250], 250))
        for user in ("a@lmtp.test", "c@lmtp.test"):
            self.assertEqual(mqtest.eventually(lambda: self.usage(user)[1], 3), 3, user)
        # Dovecot recalculates: both still agree
        for user in ("a@lmtp.test", "b@lmtp.test", "c@lmtp.test"):
            self.dc.doveadm("quota", "recalc", "-u", user)
            self.agree(user)


if __name__ == "__main__":
    unittest.main()
