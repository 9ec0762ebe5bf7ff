"""SIGHUP reloads the configuration as an admin expects of `postfix reload`: the live parameters
(replies and profile, log level, limits, thresholds, allow lists) take effect on the policy
sockets and the HTTP API without dropping a persistent policy connection; a configuration that
does not pass `mailquotad -n` is refused with its reason and the running one keeps working;
restart-only parameters are named and not applied; reloads under HTTP load fail no request;
the warning channels follow a reload."""
import os
import re
import threading
import unittest
import urllib.parse

import mqtest
import test_warnings

BASE = {"log_level": "debug", "policy_tcp_allow": "127.0.0.0/8"}
FULL = {"recipient": "full@example.test", "size": 10}


def changed(lines):
    """The parameter names of the last event=reloaded line."""
    got = [re.search(r'event=reloaded changed="([^"]*)"', line) for line in lines]
    got = [m.group(1) for m in got if m]
    assert got, "\n".join(lines)
    return set(filter(None, got[-1].split(",")))


class Reload(mqtest.SeededTestCase):
    def setUp(self):
        self.d = mqtest.Daemon(self.db.conninfo, config=BASE)

    def tearDown(self):
        self.d.cleanup()

    def http_reply(self, rcpt="full@example.test", size=10):
        q = urllib.parse.urlencode({"recipient": rcpt, "size": size})
        status, doc, _ = self.d.http("GET", "/v1/check?" + q)
        self.assertEqual(status, 200, doc)
        return doc["smtp_reply"]

    def test_live_parameters_apply_on_open_connections(self):
        unix = self.d.policy_conn()
        tcp = self.d.policy_conn(tcp=True)
        self.assertEqual(unix.ask(**FULL), "552 5.2.2 Mailbox full")
        self.assertEqual(tcp.ask(**FULL), "552 5.2.2 Mailbox full")
        self.assertEqual(self.http_reply(), "552 5.2.2 Mailbox full")

        lines = self.d.reload(dict(BASE, reply_profile="strict", log_level="notice",
                                   policy_tcp_allow="192.0.2.0/24"))
        self.assertEqual(changed(lines), {"reply_profile", "log_level", "policy_tcp_allow"})
        # the same connections, the new reply, on both protocols and the API
        self.assertEqual(unix.ask(**FULL), "452 4.2.2 Mailbox full")
        self.assertEqual(tcp.ask(**FULL), "452 4.2.2 Mailbox full")
        self.assertEqual(self.http_reply(), "452 4.2.2 Mailbox full")
        # the allow list holds for new TCP connections (the open one stays: it was allowed)
        with self.d.policy_conn(tcp=True) as refused:
            self.assertTrue(refused.closed_by_server())
        # log_level notice: a refusal (info) is no longer logged
        before = self.d.read_log().count("verdict=over_quota")
        self.assertEqual(unix.ask(**FULL), "452 4.2.2 Mailbox full")
        self.assertEqual(self.d.read_log().count("verdict=over_quota"), before)

        # a reply of its own overrides the profile's; thresholds and limits apply too
        lines = self.d.reload(dict(BASE, reply_over_quota="452 4.2.2 Over quota, try later",
                                   message_size_limit="2000",
                                   policy_max_connections_per_client="1",
                                   http_cors_origins="https://panel.example"))
        self.assertEqual(changed(lines), {"reply_over_quota", "reply_profile",
                                          "message_size_limit",
                                          "policy_max_connections_per_client",
                                          "http_cors_origins", "log_level",
                                          "policy_tcp_allow"})
        self.assertEqual(unix.ask(**FULL), "452 4.2.2 Over quota, try later")
        self.assertEqual(self.http_reply(), "452 4.2.2 Over quota, try later")
        self.assertEqual(unix.ask(recipient="user1@example.test", size=5000),
                         "552 5.3.4 Message too big for system")
        self.assertEqual(self.http_reply("user1@example.test", 5000),
                         "552 5.3.4 Message too big for system")
        # debug again: accepts are logged
        self.assertEqual(tcp.ask(recipient="user1@example.test", size=10), "DUNNO")
        self.assertTrue(mqtest.eventually(
            lambda: "verdict=accept" in self.d.read_log(), True, timeout=10))
        # one connection from this user (a Unix peer's uid) is open: a second is refused
        with self.d.policy_conn() as second:
            self.assertTrue(second.closed_by_server())
        _, _, resp = self.d.http("GET", "/v1/health", headers={"Origin": "https://panel.example"})
        self.assertEqual(resp.getheader("Access-Control-Allow-Origin"), "https://panel.example")
        unix.sock.close()
        tcp.sock.close()

    def test_bad_configuration_is_refused_and_the_old_one_kept(self):
        conn = self.d.policy_conn()
        self.assertEqual(conn.ask(**FULL), "552 5.2.2 Mailbox full")
        secret = os.path.join(self.d.dir, "no-such-secret")
        bad = [
            ("polcy_socket = /tmp/x.sock\nreply_profile = strict\n",
             "unknown parameter 'polcy_socket'"),
            ("reply_profile = strict\nreply_over_quota = 250 2.0.0 fine\n", "reply_over_quota"),
            ("reply_profile = strict\npolicy_idle_timeout = 0\n",
             "policy_idle_timeout: 0 is out of range"),
            # what only the warning thread's own checks (as mailquotad -n) find
            ("reply_profile = strict\nwarning_webhook_url = https://hook.example/\n"
             f"warning_webhook_secret_file = {secret}\n", "warning_webhook_secret_file"),
        ]
        for text, reason in bad:
            lines = self.d.reload(text)
            failed = [line for line in lines if "event=reload_failed" in line]
            self.assertEqual(len(failed), 1, "\n".join(lines))
            self.assertIn("level=error", failed[0])
            self.assertIn(reason, failed[0])
            self.assertFalse(any("event=reloaded" in line for line in lines))
            # nothing of it applied: the profile stays, on the same connection
            self.assertEqual(conn.ask(**FULL), "552 5.2.2 Mailbox full")
            self.assertEqual(self.http_reply(), "552 5.2.2 Mailbox full")
        # a good one afterwards applies
        self.assertEqual(changed(self.d.reload(dict(BASE, reply_profile="no452"))),
                         {"reply_profile"})
        self.assertEqual(conn.ask(**FULL), "450 4.2.2 Mailbox full")
        conn.sock.close()

    def test_restart_only_parameters_are_named_and_not_applied(self):
        lines = self.d.reload(dict(BASE, policy_socket_mode="0600", http_threads="2",
                                   reply_profile="strict"))
        warn = [line for line in lines if "event=reload_needs_restart" in line]
        self.assertEqual(len(warn), 1, "\n".join(lines))
        self.assertIn("level=warn", warn[0])
        self.assertIn('keys="policy_socket_mode,http_threads"', warn[0])
        self.assertEqual(changed(lines), {"reply_profile"})
        # the socket keeps the mode it was made with, and the live part applied
        self.assertEqual(os.stat(self.d.socket).st_mode & 0o777, 0o660)
        self.assertEqual(self.d.policy(**FULL), "452 4.2.2 Mailbox full")
        # only restart-only changes: nothing live changed, said so
        lines = self.d.reload(dict(BASE, policy_socket_mode="0600", reply_profile="strict"))
        self.assertIn('event=reloaded changed=""', "\n".join(lines))

    def test_reloads_while_http_checks_run(self):
        replies = {"552 5.2.2 Mailbox full", "452 4.2.2 Mailbox full"}
        stop = threading.Event()
        errors, counts = [], [0]

        def hammer():
            try:
                while not stop.is_set():
                    got = self.http_reply()
                    if got not in replies:
                        errors.append(got)
                    counts[0] += 1
            except Exception as e:  # noqa: BLE001 - any failure fails the test
                errors.append(repr(e))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        conn = self.d.policy_conn()
        try:
            for i in range(8):
                profile = "strict" if i % 2 == 0 else "conventional"
                self.assertEqual(changed(self.d.reload(dict(BASE, reply_profile=profile))),
                                 {"reply_profile"})
                self.assertIn(conn.ask(**FULL), replies)
        finally:
            stop.set()
            for t in threads:
                t.join()
            conn.sock.close()
        self.assertEqual(errors, [])
        self.assertGreater(counts[0], 0)
        self.assertEqual(self.http_reply(), "552 5.2.2 Mailbox full")


class ReloadWarnings(unittest.TestCase):
    """The warning channels are live too: a reload that sets warning_webhook_url (and its secret
    file, read anew) makes this daemon deliver the event waiting in the outbox, signed."""

    def setUp(self):
        self.db = mqtest.Database()
        self.rx = test_warnings.Receiver()
        self.d = None

    def tearDown(self):
        if self.d is not None:
            self.d.cleanup()
        self.rx.close()
        self.db.close()

    def test_webhook_switched_on_by_a_reload(self):
        self.db.cli("domain", "add", "w.test", "storage=1000")
        self.db.cli("mailbox", "add", "u@w.test")
        base = {"log_level": "info"}
        self.d = mqtest.Daemon(self.db.conninfo, config=base, policy_socket="",
                               policy_tcp_listen="")
        st, doc, _ = self.d.http("PATCH", "/v1/warnings/settings",
                                 {"channels": ["webhook"], "thresholds": [80]})
        self.assertEqual(st, 200, doc)
        self.assertEqual(mqtest.eventually(
            lambda: self.d.http("GET", "/v1/mailboxes/u@w.test/usage")[0], 200), 200)
        st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
            {"mailbox": "u@w.test", "bytes": 850, "messages": 1, "key": "k1"}]})
        self.assertEqual(st, 200, doc)
        secret = os.path.join(self.d.dir, "secret")
        with open(secret, "w") as f:
            f.write(test_warnings.SECRET + "\n")
        lines = self.d.reload(dict(base, warning_webhook_url=self.rx.url(),
                                   warning_webhook_secret_file=secret,
                                   warning_retry_base="1"))
        self.assertEqual(changed(lines), {"warning_webhook_url", "warning_webhook_secret_file",
                                          "warning_retry_base"})
        self.assertEqual(self.rx.wait_for(1), 1)
        with self.rx.lock:
            headers, body = self.rx.requests[0]
        self.assertTrue(test_warnings.verify(headers, body), headers)
        # and off again: nothing left to deliver, nothing fails
        self.assertEqual(changed(self.d.reload(base)),
                         {"warning_webhook_url", "warning_webhook_secret_file",
                          "warning_retry_base"})


if __name__ == "__main__":
    unittest.main()
