"""The Postfix policy protocol against the real daemon and a real PostgreSQL, over the Unix
socket and TCP."""
import os
import stat
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"
BIG_MAILBOX = "552 5.2.3 Message length exceeds administrative limit"
BIG_SYSTEM = "552 5.3.4 Message too big for system"


class PolicySocket(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.d = mqtest.Daemon(cls.db.conninfo, message_size_limit="20M",
                              policy_socket_mode="0666")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def both(self, expect, **attrs):
        for tcp in (False, True):
            with self.subTest(tcp=tcp, **attrs):
                self.assertEqual(self.d.policy(tcp=tcp, **attrs), expect)

    def test_rcpt_verdicts(self):
        cases = [
            ("user1@example.test", 5000, "DUNNO"),
            ("full@example.test", 10, OVER),
            ("full@example.test", 0, OVER),            # size 0 is checked as 1 byte
            ("user1@example.test", 1048576, "DUNNO"),  # exactly the limit
            ("user1@example.test", 1048577, OVER),
            ("small@example.test", 1000, "DUNNO"),
            ("small@example.test", 1001, BIG_MAILBOX),
            ("user1@example.test", 10485761, BIG_SYSTEM),   # domain max-size 10M
            ("user1@catch.test", 20971521, BIG_SYSTEM),      # global message_size_limit
            ("box@catch.test", 20971520, "DUNNO"),
            ("counted@example.test", 1, OVER),              # message count reached
            ("p1@pool.test", 1, "DUNNO"),                   # pool has one byte left
            ("p1@pool.test", 2, OVER),                      # domain pool exhausted
            ("nobody@nowhere.test", 1, "DUNNO"),            # unknown: MTA decides
            ("off@example.test", 1, "DUNNO"),               # disabled: not ours to decide
        ]
        for rcpt, size, expect in cases:
            self.both(expect, recipient=rcpt, size=size)

    def test_address_normalisation(self):
        self.both(OVER, recipient="Full+Tag@Example.TEST", size=10)
        self.both("DUNNO", recipient="User1+tag@Example.Test", size=10)
        self.both(OVER, recipient="<full@example.test>", size=10)

    def test_aliases(self):
        self.both(OVER, recipient="tofull@example.test", size=10)       # single target
        self.both("DUNNO", recipient="team@example.test", size=10)      # one member fits
        self.both(OVER, recipient="allfull@example.test", size=10)      # every member full
        # all refuse: the least final refusal (over quota, not too big) is reported
        self.both(OVER, recipient="mixedbig@example.test", size=5000)
        self.both(OVER, recipient="anything@catch.test", size=1)        # catch-all, full
        self.both("DUNNO", recipient="box@catch.test", size=1)          # mailbox beats it

    def test_other_states_and_end_of_message(self):
        for state in ("CONNECT", "EHLO", "HELO", "MAIL", "DATA", "VRFY", "ETRN"):
            self.both("DUNNO", protocol_state=state, recipient="full@example.test", size=10)
        self.both(OVER, protocol_state="END-OF-MESSAGE", recipient="full@example.test",
                  recipient_count=1, size=10)
        self.both("DUNNO", protocol_state="END-OF-MESSAGE", recipient="user1@example.test",
                  recipient_count=1, size=10)
        self.both(BIG_MAILBOX, protocol_state="END-OF-MESSAGE", recipient="small@example.test",
                  recipient_count=1, size=5000)
        # several recipients: a decision would hit all of them, so no opinion
        self.both("DUNNO", protocol_state="END-OF-MESSAGE", recipient="",
                  recipient_count=2, size=10)

    def test_many_requests_one_connection(self):
        with self.d.policy_conn() as c:
            for i in range(200):
                rcpt = "full@example.test" if i % 2 else "user1@example.test"
                want = OVER if i % 2 else "DUNNO"
                self.assertEqual(c.ask(recipient=rcpt, size=100, instance=f"i{i}"), want)

    def test_pipelined_requests(self):
        req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=%s\nsize=10\n\n")
        with self.d.policy_conn() as c:
            c.send_raw(((req % "full@example.test") + (req % "user1@example.test") +
                        (req % "small@example.test")).encode())
            self.assertEqual(c.read_reply(), "action=" + OVER)
            self.assertEqual(c.read_reply(), "action=DUNNO")
            self.assertEqual(c.read_reply(), "action=DUNNO")

    def test_changes_are_seen(self):
        def ask(tcp=False):
            return lambda: self.d.policy(tcp=tcp, recipient="changing@example.test", size=100)
        self.db.cli("mailbox", "add", "changing@example.test", "storage=100")
        self.assertEqual(mqtest.eventually(ask(), "DUNNO"), "DUNNO")
        self.db.cli("usage", "set", "changing@example.test", "50")
        self.assertEqual(mqtest.eventually(ask(True), OVER), OVER)
        self.db.sql("UPDATE mailboxes SET storage_limit_bytes = 1000"
                    " WHERE local_part = 'changing'")
        self.assertEqual(mqtest.eventually(ask(), "DUNNO"), "DUNNO")
        self.db.cli("alias", "add", "newalias@example.test", "changing@example.test")
        self.db.cli("usage", "set", "changing@example.test", "1000")
        self.assertEqual(mqtest.eventually(
            lambda: self.d.policy(recipient="newalias@example.test", size=1), OVER), OVER)
        self.db.cli("mailbox", "del", "changing@example.test")
        self.assertEqual(mqtest.eventually(
            lambda: self.d.policy(recipient="newalias@example.test", size=1), "DUNNO"), "DUNNO")

    def test_socket_mode(self):
        st = os.stat(self.d.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o666)

    def test_invalid_recipient_gets_no_opinion(self):
        self.both("DUNNO", recipient="x" * 65 + "@example.test", size=1)
        self.both("DUNNO", recipient="postmaster", size=1)


class Profiles(unittest.TestCase):
    def test_profiles_and_custom_replies(self):
        db = mqtest.Database()
        try:
            mqtest.seed_standard(db)
            for profile, want in (("strict", "452 4.2.2 Mailbox full"),
                                  ("no452", "450 4.2.2 Mailbox full")):
                d = mqtest.Daemon(db.conninfo, reply_profile=profile,
                                  reply_too_big_mailbox="552 5.2.3 Too big for this mailbox")
                try:
                    self.assertEqual(d.policy(recipient="full@example.test", size=1), want)
                    self.assertEqual(d.policy(recipient="small@example.test", size=5000),
                                     "552 5.2.3 Too big for this mailbox")
                finally:
                    d.cleanup()
            d = mqtest.Daemon(db.conninfo, unknown_recipient_action="550 5.1.1 No such user")
            try:
                self.assertEqual(d.policy(recipient="nobody@example.test", size=1),
                                 "550 5.1.1 No such user")
            finally:
                d.cleanup()
        finally:
            db.close()


class StoreUnavailable(unittest.TestCase):
    def test_tempfail_never_5xx(self):
        d = mqtest.Daemon("host=/nonexistent-dir user=postgres dbname=none", token=mqtest.UNUSABLE_TOKEN,
                          view_load_timeout=0)
        try:
            self.assertEqual(d.policy(recipient="full@example.test", size=1),
                             "451 4.3.0 Quota service temporarily unavailable")
            status, doc, _ = d.http("GET", "/v1/check?recipient=full@example.test&size=1")
            self.assertEqual(status, 503)
            self.assertEqual(doc["error"], "store_unavailable")
            status, doc, _ = d.http("GET", "/v1/health")
            self.assertEqual(status, 503)
            self.assertEqual(doc["database"], "down")
        finally:
            d.cleanup()

    def test_defer_if_permit(self):
        d = mqtest.Daemon("host=/nonexistent-dir user=postgres dbname=none", token=mqtest.UNUSABLE_TOKEN,
                          view_load_timeout=0, reply_tempfail="DEFER_IF_PERMIT Quota service unavailable")
        try:
            self.assertEqual(d.policy(recipient="a@b.test", size=1),
                             "DEFER_IF_PERMIT Quota service unavailable")
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
