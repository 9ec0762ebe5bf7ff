"""The daemon's log as an admin reads it: under systemd's journal (JOURNAL_STREAM naming its
stderr) every line starts with its syslog priority and has no timestamp of its own, elsewhere
lines start with ts=; a decision carries the instance, queue id, client and sender that follow
one message through the log; failed API authentications are logged at notice with the
client's address, at most one line a second."""
import re
import time
import unittest

import mqtest

PRIORITY = {"debug": "7", "info": "6", "notice": "5", "warn": "4", "error": "3"}


class Logging(mqtest.SeededTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.j = mqtest.Daemon(cls.db.conninfo, journal=True)
        cls.plain = mqtest.Daemon(cls.db.conninfo, token=cls.j.token)

    @classmethod
    def tearDownClass(cls):
        cls.j.cleanup()
        cls.plain.cleanup()
        super().tearDownClass()

    def refuse(self, d):
        return d.policy(recipient="full@example.test", size=10, sender="ann@example.net",
                        instance="1a2b.6a4f0e3c.5c2d.0", queue_id="4BxQ2",
                        client_address="192.0.2.7")

    def test_journal_lines_carry_priority_and_no_timestamp(self):
        self.assertEqual(self.refuse(self.j), "552 5.2.2 Mailbox full")
        self.assertTrue(mqtest.eventually(lambda: "verdict=over_quota" in self.j.read_log(),
                                          True, timeout=10))
        lines = [line for line in self.j.read_log().splitlines() if line]
        self.assertTrue(lines)
        for line in lines:
            m = re.match(r"<([0-7])>prog=mailquotad level=(\w+) ", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), PRIORITY[m.group(2)], line)
            self.assertNotIn("ts=", line)
        # ... and a daemon whose stderr is no journal keeps its timestamps
        self.assertEqual(self.refuse(self.plain), "552 5.2.2 Mailbox full")
        first = self.plain.read_log().splitlines()[0]
        self.assertRegex(first, r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z prog=mailquotad ")

    def test_decision_lines_follow_the_message(self):
        self.refuse(self.j)
        want = ("<6>prog=mailquotad level=info conn=", " instance=1a2b.6a4f0e3c.5c2d.0 "
                "queue_id=4BxQ2 client_address=192.0.2.7 sender=<ann@example.net> state=RCPT "
                "rcpt=<full@example.test> size=10 match=mailbox verdict=over_quota")
        got = mqtest.eventually(
            lambda: any(want[0] in line and want[1] in line
                        for line in self.j.read_log().splitlines()), True, timeout=10)
        self.assertTrue(got, self.j.read_log()[-3000:])
        # sender and instance are the client's text: sanitised
        self.j.policy(recipient="full@example.test", size=10, sender='a"b\\c@x',
                      instance="i\x7fj")
        self.assertTrue(mqtest.eventually(
            lambda: 'sender=<a?b?c@x>' in self.j.read_log() and "instance=i?j " in
            self.j.read_log(), True, timeout=10))

    def test_failed_authentication_is_a_rate_limited_notice(self):
        time.sleep(1.1)  # a second of its own for the rate limit
        t0 = time.monotonic()
        for _ in range(30):
            st, _, _ = self.j.http("GET", "/v1/domains", token="mqt_1_" + "B" * 43,
                                   validate=False)
            self.assertEqual(st, 401)
        took = time.monotonic() - t0
        time.sleep(1.1)
        st, _, _ = self.j.http("GET", "/v1/domains", token=False, validate=False)
        self.assertEqual(st, 401)
        # each line is written before its 401 is sent
        lines = [line for line in self.j.read_log().splitlines() if "event=auth_failed" in line]
        # at most one line a second (however long the 30 took), not thirty; the one after a
        # pause reports how many were held back
        self.assertLessEqual(len(lines), int(took) + 3, lines)
        self.assertGreaterEqual(len(lines), 2, lines)
        for line in lines:
            self.assertTrue(line.startswith("<5>prog=mailquotad level=notice http "
                                            "event=auth_failed client_address=127.0.0.1 "),
                            line)
        held = sum(int(re.search(r"suppressed=(\d+)", line).group(1)) for line in lines)
        self.assertEqual(held + len(lines), 31, lines)
        self.assertIn("reason=missing", lines[-1])


if __name__ == "__main__":
    unittest.main()
