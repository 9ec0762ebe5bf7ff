"""alias_policy through the real Postfix and Dovecot: an alias whose members include a full
mailbox, under `alias_policy = any` and `alias_policy = all`.

One database, one Dovecot (LMTP, userdb and quota_clone on mailquota, lmtp_rcpt_check_quota on),
and two pairs of mailquotad + Postfix on it, one pair per policy; Postfix reads its domains,
mailboxes and aliases from mailquota's tables and delivers by LMTP. team@ expands to a, b and
c; b has 6 KiB and already holds one 3.5 KB message, so another does not fit.

- any: RCPT TO:<team@> is accepted (a and c have room). Postfix expands the alias and delivers
  by LMTP: a and c get the message; Dovecot refuses b's copy with 552 5.2.2 (quota exceeded),
  and Postfix bounces that copy: status=bounced for b (orig_to team@) and a delivery status
  notification (DSN) to the sender, while a and c keep theirs.
- all: RCPT TO:<team@> is refused 552 5.2.2 (the sender learns at once, in the session), no
  member gets the message, and another recipient of the same transaction is delivered.
- any, b already over its limit: Dovecot refuses b at LMTP RCPT instead of after DATA; the
  same bounce.
- any, Dovecot's quota_full_tempfail = yes: b's copy is deferred (452 4.2.2) and stays queued.
- an alias's own policy: under any, strict@ (the same members, policy=all) is refused 552 5.2.2
  at RCPT while another recipient of the session is delivered.

It runs its own Postfix and Dovecot instances and assumes nothing about others on the machine."""
import re
import shutil
import time
import unittest

import mqdovecot
import mqtest
import test_postfix as tp
import test_postfix_dovecot as tpd

BODY = b"From: sender@client.test\r\nSubject: team\r\n\r\n" + b"z" * 3500 + b"\r\n"


@unittest.skipUnless(shutil.which("postfix") and shutil.which("dovecot"),
                     "postfix or dovecot is not installed")
class AliasPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        db = cls.db
        db.cli("domain", "add", "team.test", "storage=1M")
        for m in ("a", "b", "c", "d"):
            db.cli("mailbox", "add", f"{m}@team.test")
        db.cli("mailbox", "set", "b@team.test", "storage=6K")
        db.cli("alias", "add", "team@team.test", "a@team.test", "b@team.test", "c@team.test")
        cls.dc = None
        cls.pairs = {}
        try:
            cls.dc = mqdovecot.DovecotInstance(db, lmtp=True)
            token = None
            for policy in ("any", "all"):
                daemon = mqtest.Daemon(db.conninfo, token=token, alias_policy=policy,
                                       policy_socket_group="postfix",
                                       policy_socket_mode="0660")
                token = daemon.token
                cls.pairs[policy] = [daemon, None]
                cls.pairs[policy][1] = cls.postfix(daemon)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def postfix(cls, daemon):
        extra = "".join(f"{key} = pgsql:{{etc}}/{name}\n" for key, name in zip(
            ("virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_alias_maps"),
            tpd.MAPS))
        extra += f"virtual_transport = lmtp:unix:{cls.dc.lmtp_socket}\n"
        return tp.PostfixInstance(
            daemon.socket, f"http://127.0.0.1:{daemon.http_port}", mqtest.UNUSABLE_TOKEN,
            main_cf_extra=extra,
            etc_files={name: tpd.postfix_map(name, cls.db.name) for name in tpd.MAPS})

    @classmethod
    def tearDownClass(cls):
        errors = []
        for daemon, pf in cls.pairs.values():  # Postfix first: it delivers to Dovecot
            if pf is not None:
                pf.stop()
        for daemon, _ in cls.pairs.values():
            try:
                daemon.cleanup()
            except AssertionError as e:
                errors.append(e)
        if cls.dc is not None:
            cls.dc.stop()
        cls.db.close()
        if errors:
            raise errors[0]

    def messages(self, user):
        st, doc, _ = self.pairs["any"][0].http("GET", f"/v1/mailboxes/{user}")
        self.assertEqual(st, 200, doc)
        return doc["usage"]["messages"]

    def counts(self):
        return {m: self.messages(f"{m}@team.test") for m in "abcd"}

    def wait_counts(self, want):
        got = mqtest.eventually(self.counts, want, timeout=30)
        self.assertEqual(got, want, self.logs())
        return got

    def logs(self):
        return "".join(pf.log() for _, pf in self.pairs.values()) + self.dc.log()[-3000:]

    def fill_b(self):
        """b takes one message directly (it fits), after which the same message no longer
        does; both daemons learn b's usage from quota_clone through NOTIFY."""
        if self.messages("b@team.test") == 0:
            replies, data = tp.smtp_transaction(self, self.pairs["any"][1].port, len(BODY),
                                                ["b@team.test"], BODY)
            self.assertEqual(([c for c, _ in replies], data), ([250], 250))
            self.assertEqual(mqtest.eventually(lambda: self.messages("b@team.test"), 1,
                                               timeout=30), 1, self.logs())
        for policy, refused in (("any", False), ("all", True)):
            daemon = self.pairs[policy][0]
            self.assertEqual(mqtest.eventually(lambda: daemon.policy(
                recipient="b@team.test", size=str(len(BODY))).startswith("552"), True), True)
            # the alias, as each daemon answers it
            self.assertEqual(mqtest.eventually(lambda: daemon.policy(
                recipient="team@team.test", size=str(len(BODY))).startswith("552"), refused),
                refused, policy)

    def test_2_any_accepts_the_alias_and_dovecot_bounces_the_full_members_copy(self):
        self.fill_b()
        pf = self.pairs["any"][1]
        before = self.counts()
        replies, data = tp.smtp_transaction(self, pf.port, len(BODY), ["team@team.test"], BODY)
        self.assertEqual(([c for c, _ in replies], data), ([250], 250), replies)
        want = dict(before, a=before["a"] + 1, c=before["c"] + 1)
        self.wait_counts(want)
        # b's copy: refused by Dovecot's LMTP with 552 5.2.2, bounced by Postfix to the sender
        deadline = time.time() + 30
        bounced = None
        while time.time() < deadline:
            bounced = re.search(r"to=<b@team\.test>, orig_to=<team@team\.test>, .*"
                                r"dsn=5\.2\.2, status=bounced \((.*)\)", pf.log())
            if bounced and "sender non-delivery notification" in pf.log():
                break
            time.sleep(0.2)
        self.assertIsNotNone(bounced, pf.log())
        self.assertIn("sender non-delivery notification", pf.log())
        print(f"\nalias_policy=any: team@ accepted, a and c delivered, b's copy bounced: "
              f"{bounced.group(1)}")
        for m in ("a", "c"):
            self.assertRegex(pf.log(), rf"to=<{m}@team\.test>, orig_to=<team@team\.test>, "
                                       r".*status=sent")
        self.assertEqual(self.counts(), want)  # b still holds only its first message

    def test_1_all_refuses_the_alias_and_delivers_the_other_recipient(self):
        self.fill_b()
        pf = self.pairs["all"][1]
        before = self.counts()
        replies, data = tp.smtp_transaction(self, pf.port, len(BODY),
                                            ["team@team.test", "d@team.test"], BODY)
        self.assertEqual([c for c, _ in replies], [552, 250], replies)
        self.assertTrue(replies[0][1].startswith("5.2.2"), replies[0])
        self.assertEqual(data, 250)
        print(f"\nalias_policy=all: RCPT TO:<team@team.test> answered {replies[0][0]} "
              f"{replies[0][1]}")
        want = dict(before, d=before["d"] + 1)
        self.wait_counts(want)
        self.assertIsNone(re.search(r"orig_to=<team@team\.test>", pf.log()), pf.log())
        time.sleep(1)  # nothing else arrives late
        self.assertEqual(self.counts(), want)

    def test_1a_an_aliass_own_all_is_refused_under_any(self):
        """An alias's own policy (aliases.policy) overrides the daemon's alias_policy: under
        alias_policy = any, strict@ (the same members, policy=all) is refused 552 at RCPT while
        team@ (no policy of its own) is accepted in the same session, and nobody gets a copy
        through strict@."""
        self.fill_b()
        self.db.cli("alias", "add", "strict@team.test", "a@team.test", "b@team.test",
                    "c@team.test", "policy=all")
        daemon, pf = self.pairs["any"]
        self.assertEqual(mqtest.eventually(lambda: daemon.policy(
            recipient="strict@team.test", size=str(len(BODY)))[:3], "552"), "552")
        before = self.counts()
        replies, data = tp.smtp_transaction(self, pf.port, len(BODY),
                                            ["strict@team.test", "d@team.test"], BODY)
        self.assertEqual([c for c, _ in replies], [552, 250], replies)
        self.assertTrue(replies[0][1].startswith("5.2.2"), replies[0])
        self.assertEqual(data, 250)
        print(f"\nalias_policy=any, strict@ policy=all: RCPT TO:<strict@team.test> answered "
              f"{replies[0][0]} {replies[0][1]}")
        want = dict(before, d=before["d"] + 1)
        self.wait_counts(want)
        self.assertIsNone(re.search(r"orig_to=<strict@team\.test>", pf.log()), pf.log())
        # back to the installation's policy: accepted again
        self.db.cli("alias", "set", "strict@team.test", "policy=default")
        self.assertEqual(mqtest.eventually(lambda: daemon.policy(
            recipient="strict@team.test", size=str(len(BODY))), "DUNNO"), "DUNNO")
        self.db.cli("alias", "del", "strict@team.test")

    def wait_log(self, pf, pattern):
        deadline = time.time() + 30
        while time.time() < deadline:
            m = re.search(pattern, pf.log())
            if m:
                return m
            time.sleep(0.2)
        self.fail(f"no {pattern!r} in the log:\n" + pf.log() + self.dc.log()[-3000:])

    def test_3_member_over_its_limit_is_refused_at_lmtp_rcpt(self):
        """A member already over its limit: under any the alias is still accepted, and Dovecot
        (lmtp_rcpt_check_quota = yes) refuses b at LMTP RCPT rather than after DATA; Postfix
        bounces that copy the same way. Under all the alias is refused, whatever the size."""
        self.fill_b()
        self.db.cli("mailbox", "set", "b@team.test", "storage=3K")  # it holds about 3.6 KB
        for policy, want in (("any", "DUNNO"), ("all", "552")):
            daemon = self.pairs[policy][0]
            self.assertEqual(mqtest.eventually(lambda: daemon.policy(
                recipient="team@team.test", size="100")[:len(want)], want), want, policy)
        replies, data = tp.smtp_transaction(self, self.pairs["all"][1].port, 100,
                                            ["team@team.test"])
        self.assertEqual([c for c, _ in replies], [552], replies)
        pf = self.pairs["any"][1]
        before = self.counts()
        replies, data = tp.smtp_transaction(self, pf.port, 100, ["team@team.test"])
        self.assertEqual(([c for c, _ in replies], data), ([250], 250), replies)
        self.wait_counts(dict(before, a=before["a"] + 1, c=before["c"] + 1))
        m = self.wait_log(pf, r"to=<b@team\.test>, orig_to=<team@team\.test>, .*dsn=5\.2\.2, "
                              r"status=bounced \((.*in reply to RCPT TO command)\)")
        print(f"\nalias_policy=any, b over its limit: b's copy bounced: {m.group(1)}")

    def test_4_quota_full_tempfail_defers_the_full_members_copy(self):
        """With Dovecot's quota_full_tempfail = yes, b's copy is deferred (452 4.2.2) and stays
        in Postfix's queue, retried until maximal_queue_lifetime, instead of bouncing at once;
        a and c get theirs at once. Runs last: it changes the shared Dovecot's configuration."""
        self.fill_b()
        with open(self.dc.conf, "a") as f:
            f.write("quota_full_tempfail = yes\n")  # a delivery (LDA/LMTP) setting
        self.dc.doveadm("reload")
        # Postfix's LMTP client keeps an idle connection (to a Dovecot process still on the old
        # configuration) for up to connection_cache_ttl_limit (2 s): let it go
        time.sleep(3)
        self.db.cli("mailbox", "set", "b@team.test", "storage=3K")
        pf = self.pairs["any"][1]
        before = self.counts()
        replies, data = tp.smtp_transaction(self, pf.port, 100, ["team@team.test"])
        self.assertEqual(([c for c, _ in replies], data), ([250], 250), replies)
        self.wait_counts(dict(before, a=before["a"] + 1, c=before["c"] + 1))
        m = self.wait_log(pf, r"to=<b@team\.test>, orig_to=<team@team\.test>, .*dsn=4\.2\.2, "
                              r"status=deferred \((.*)\)")
        print(f"\nalias_policy=any, quota_full_tempfail=yes: b's copy deferred: {m.group(1)}")


if __name__ == "__main__":
    unittest.main()
