"""Malformed, oversized and slow clients against the real daemon: each gets its connection
closed with a logged reason, and nobody else notices."""
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"


class Robustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.d = mqtest.Daemon(cls.db.conninfo, policy_idle_timeout=2,
                              policy_max_connections=50)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def bystander_ok(self, c):
        self.assertEqual(c.ask(recipient="full@example.test", size=1), OVER)

    def attack(self, payload, tcp=False):
        """Send payload on a fresh connection while a bystander keeps its own; the attacker
        must be disconnected and the bystander served."""
        with self.d.policy_conn(tcp=True) as bystander:
            self.bystander_ok(bystander)
            with self.d.policy_conn(tcp=tcp) as bad:
                try:
                    bad.send_raw(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.assertTrue(bad.closed_by_server(timeout=10))
            self.bystander_ok(bystander)

    def test_line_without_equals(self):
        self.attack(b"request=smtpd_access_policy\nthis is not an attribute\n\n")

    def test_missing_request(self):
        self.attack(b"protocol_state=RCPT\nrecipient=full@example.test\n\n")

    def test_bad_size(self):
        self.attack(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsize=12abc\n\n")

    def test_overlong_line(self):
        self.attack(b"request=smtpd_access_policy\nccert_subject=" + b"x" * 5000 + b"\n\n")

    def test_endless_line_without_newline(self):
        self.attack(b"x" * 100000, tcp=True)

    def test_too_many_attributes(self):
        self.attack(b"request=smtpd_access_policy\n" +
                    b"".join(b"a%d=1\n" % i for i in range(300)) + b"\n")

    def test_request_too_large(self):
        self.attack(b"request=smtpd_access_policy\n" +
                    b"".join(b"a%d=%s\n" % (i, b"y" * 4000) for i in range(30)) + b"\n")

    def test_binary_garbage(self):
        self.attack(bytes(range(256)) * 10 + b"\n\n")

    def test_known_attributes_of_any_length_within_limits(self):
        with self.d.policy_conn() as c:
            self.assertEqual(c.ask(recipient="full@example.test", size=1,
                                   ccert_subject="s" * 4000, policy_context="p" * 3000,
                                   client_name="c" * 1000), OVER)

    def test_half_request_then_idle_timeout(self):
        with self.d.policy_conn() as c:
            c.send_raw(b"request=smtpd_access_policy\nprotocol_state=RCPT\n")
            self.assertTrue(c.closed_by_server(timeout=15))
        self.assertIn("event=idle_timeout", self.d.read_log())

    def test_connection_limit(self):
        conns = [self.d.policy_conn() for _ in range(50)]
        try:
            extra = self.d.policy_conn()
            self.assertTrue(extra.closed_by_server(timeout=10))
            extra.sock.close()
        finally:
            for c in conns:
                c.sock.close()
        time.sleep(0.3)  # let the daemon see the closes before asking again
        self.assertEqual(self.d.policy(recipient="full@example.test", size=1), OVER)
        self.assertIn("reason=policy_max_connections", self.d.read_log())

    def test_client_that_never_reads(self):
        req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.test\n\n"
        with self.d.policy_conn() as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                for _ in range(20000):
                    c.sock.sendall(req)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
        self.assertEqual(self.d.policy(recipient="full@example.test", size=1), OVER)

    def test_errors_are_logged_with_reason(self):
        self.attack(b"request=junk\n\n")
        self.assertIn('event=protocol_error via=unix error="request is not smtpd_access_policy"',
                      self.d.read_log())


class Lifecycle(unittest.TestCase):
    def test_config_check(self):
        bin_ = os.path.join(mqtest.BIN, "mailquotad")
        p = subprocess.run([bin_, "-n", "-o", "reply_profile=strict"], capture_output=True,
                           text=True)
        self.assertEqual((p.returncode, p.stdout), (0, "configuration OK\n"))
        p = subprocess.run([bin_, "-n", "-o", "reply_over_quota=554 5.2.2 Full"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("554 is not a valid reply to RCPT TO", p.stderr)
        p = subprocess.run([bin_, "-n", "-o", "reply_over_quota=552 4.2.2 Full"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("class", p.stderr)
        conf = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mq-{os.getpid()}.conf")
        with open(conf, "w") as f:
            f.write("# test\nreply_profile = no452\n\npolicy_idle_tmeout = 5\n")
        p = subprocess.run([bin_, "-n", "-c", conf], capture_output=True, text=True)
        os.unlink(conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn('line 4: unknown parameter "policy_idle_tmeout"', p.stderr)
        p = subprocess.run([bin_, "-P", "-o", "reply_profile=strict"], capture_output=True,
                           text=True)
        self.assertEqual(p.stdout, "reply_profile = strict\n")

    def test_every_parameter_is_documented(self):
        p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-p"], capture_output=True,
                           text=True, check=True)
        names = [line.split(" = ")[0] for line in p.stdout.splitlines()]
        self.assertGreater(len(names), 20)
        with open(os.path.join(os.environ["MQ_SOURCE_DIR"], "docs", "configuration.md")) as f:
            doc = f.read()
        for name in names:
            self.assertIn(f"| `{name}` |", doc)

    def test_sigterm_is_clean_and_unlinks_socket(self):
        db = mqtest.Database()
        try:
            d = mqtest.Daemon(db.conninfo)
            with d.policy_conn() as c:
                self.assertEqual(c.ask(recipient="a@b.test", size=1), "DUNNO")
                self.assertEqual(d.stop(), 0)
            self.assertFalse(os.path.exists(d.socket))
            log = d.read_log()
            self.assertIn("event=stopping", log)
            self.assertIn("event=stopped", log)
            d.cleanup()
        finally:
            db.close()

    def test_drain_serves_open_connections_and_ends_them_between_requests(self):
        """After SIGTERM an open policy connection that keeps asking is still answered (a
        Postfix smtpd mid-message), and once it is quiet the daemon ends it cleanly: end of
        file between two requests, never a reset with a question unanswered."""
        db = mqtest.Database()
        try:
            d = mqtest.Daemon(db.conninfo)
            stopping = threading.Event()
            stop_asking = threading.Event()
            counts = {"before": 0, "after": 0}
            errors = []
            c = d.policy_conn()

            def ask_on():
                try:
                    while not stop_asking.is_set():
                        self.assertEqual(c.ask(recipient="a@b.test", size=1), "DUNNO")
                        counts["after" if stopping.is_set() else "before"] += 1
                except Exception as e:  # noqa: BLE001 (reported below)
                    errors.append(repr(e))

            t = threading.Thread(target=ask_on)
            t.start()
            mqtest.eventually(lambda: counts["before"] > 0, True)
            d.proc.send_signal(signal.SIGTERM)
            mqtest.eventually(lambda: "event=stopping" in d.read_log(), True)
            stopping.set()
            mqtest.eventually(lambda: counts["after"] >= 20 or bool(errors), True)
            stop_asking.set()
            t.join(30)
            self.assertEqual(errors, [], d.read_log()[-3000:])
            self.assertGreaterEqual(counts["after"], 20)
            # quiet now: closed between requests, a clean end of file
            c.sock.settimeout(10)
            self.assertEqual(c.sock.recv(1), b"")
            c.sock.close()
            self.assertEqual(d.proc.wait(timeout=20), 0)
            self.assertIn("event=stopped", d.read_log())
            d.cleanup()
        finally:
            db.close()

    def test_socket_in_use_is_refused(self):
        db = mqtest.Database()
        try:
            d = mqtest.Daemon(db.conninfo)
            try:
                p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-o",
                                    f"policy_socket={d.socket}", "-o", "http_listen=",
                                    "-o", "view_load_timeout=0"],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 1)
                self.assertIn("in use", p.stderr)
                self.assertEqual(d.policy(recipient="a@b.test", size=1), "DUNNO")
            finally:
                d.cleanup()
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()
