"""The listener for Exim's ${readsocket{...}} against the real daemon and a real PostgreSQL,
over its Unix socket and TCP, spoken the way Exim speaks it (src/src/lookups/readsock.c: connect,
write the request, half-close, read until the server closes): one "<recipient> <size>" line in,
"OK" or an SMTP reply line out, then the close. Requests that cannot be read are answered with a
4xx line (never OK), a store that cannot answer with the tempfail reply, and no client can hold
or fill more than its own connection."""
import os
import socket
import tempfile
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"
TOO_BIG = "552 5.2.3 Message length exceeds administrative limit"
BAD = "451 4.3.5 Quota service could not read the request: "
REQUEST_MAX = 1024  # EXIM_REQUEST_MAX


class EximListener(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.dir = tempfile.mkdtemp(prefix="mq-exim-")
        cls.path = os.path.join(cls.dir, "exim.sock")
        cls.port = mqtest.free_port()
        cls.d = mqtest.Daemon(cls.db.conninfo, exim_socket=cls.path,
                              exim_tcp_listen=f"127.0.0.1:{cls.port}",
                              message_size_limit="20M")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()
        os.rmdir(cls.dir)

    def connect(self, tcp=False):
        if tcp:
            return socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.path)
        return s

    def ask(self, data, tcp=False, half_close=True):
        """Exim's way: the request, a half-close (unless shutdown=no), everything until EOF."""
        return mqtest.exim_ask(self.connect(tcp), data, half_close)

    def both(self, request, expect):
        for tcp in (False, True):
            for half_close in (True, False):
                with self.subTest(request=request, tcp=tcp, half_close=half_close):
                    self.assertEqual(self.ask(request + "\n", tcp, half_close), expect + "\n")

    def test_decisions(self):
        cases = [
            ("user1@example.test 1000", "OK"),
            ("full@example.test 1", OVER),
            ("full@example.test -1", OVER),           # no SIZE: still full
            ("user1@example.test -1", "OK"),
            ("small@example.test 1001", TOO_BIG),     # over its max message size
            ("small@example.test 1000", "OK"),
            ("user1@example.test 30000000", "552 5.3.4 Message too big for system"),
            ("counted@example.test 10", OVER),        # message count reached
            ("nobody@nowhere.test 10", "OK"),         # unknown: Exim's own routing decides
            ("team@example.test 10", "OK"),           # one target has room
            ("allfull@example.test 10", OVER),        # every target full
            ("anything@catch.test 10", OVER),         # catch-all to a full mailbox
            ("p1@pool.test 1", "OK"),                 # the pool has one byte left
            ("p1@pool.test 2", OVER),
        ]
        for request, expect in cases:
            self.both(request, expect)

    def test_extension_and_case(self):
        self.both("Full+Tag@Example.TEST 10", OVER)
        self.both("USER1+x@EXAMPLE.TEST 10", "OK")
        self.both("Small+big@example.test 5000", TOO_BIG)
        # an extension that takes the local part over 64 octets is still the full mailbox
        self.both("full+" + "x" * 70 + "@example.test 5", OVER)

    def test_request_forms(self):
        # CRLF, and no newline at all when Exim half-closes after the request
        self.assertEqual(self.ask("full@example.test 5\r\n"), OVER + "\n")
        self.assertEqual(self.ask("full@example.test 5"), OVER + "\n")
        # a second line is never answered: one request per connection, then the close
        self.assertEqual(self.ask("full@example.test 5\nuser1@example.test 5\n",
                                  half_close=False), OVER + "\n")
        # byte by byte
        with self.connect() as s:
            for b in b"full@example.test 5\n":
                s.sendall(bytes([b]))
                time.sleep(0.001)
            self.assertEqual(s.recv(4096).decode(), OVER + "\n")
            self.assertEqual(s.recv(4096), b"")

    def test_unreadable_requests_defer(self):
        for req, why in [("full@example.test", "<recipient> <size>"),
                         ("full@example.test 1k", "decimal"),
                         ("full@example.test +5", "decimal"),
                         (" 5", "empty recipient"),
                         ("full@example.test 99999999999999999999999", "decimal")]:
            with self.subTest(req=req):
                reply = self.ask(req + "\n")
                self.assertTrue(reply.startswith(BAD) and why in reply, reply)
        reply = self.ask(b"full\x00@example.test 5\n")
        self.assertTrue(reply.startswith(BAD + "NUL"), reply)
        # not an address: no opinion, as on the policy socket
        self.assertEqual(self.ask("not-an-address 5\n"), "OK\n")
        self.assertEqual(self.ask("\n"), BAD + 'request is not "<recipient> <size>"\n')

    def test_oversize(self):
        rcpt = "a" * (REQUEST_MAX - len(" 5\n"))
        self.assertEqual(self.ask(rcpt + " 5\n"), "OK\n")  # exactly the limit: answered
        for tcp in (False, True):
            with self.connect(tcp) as s:
                s.sendall(b"x" * (REQUEST_MAX * 4))
                got = s.recv(4096).decode()
                self.assertEqual(got, BAD + "request line too long\n")
        self.both("full@example.test 5", OVER)  # still serving

    def test_empty_connection_is_closed_without_answer(self):
        self.assertEqual(self.ask(b""), "")
        self.both("full@example.test 5", OVER)

    def test_other_listeners_unaffected(self):
        self.assertEqual(self.d.policy(recipient="full@example.test", size=10), OVER)
        with self.d.policy_conn() as c:
            c.send_raw(b"full@example.test 5\n\n")  # an Exim line on the policy socket
            self.assertTrue(c.closed_by_server())

    def test_socket_mode_and_log(self):
        st = os.stat(self.path)
        self.assertEqual(st.st_mode & 0o777, 0o660)  # policy_socket_mode
        self.ask("full@example.test -1\n")
        log = mqtest.eventually(lambda: "rcpt=<full@example.test> size=0 size_given=no"
                                in self.d.read_log(), True)
        self.assertTrue(log)
        self.assertIn("via=exim-unix", self.d.read_log())

    def test_many_connections(self):
        # Exim opens one connection per RCPT: 300 in a row, each answered and closed
        for i in range(300):
            self.assertEqual(self.ask(f"user1@example.test {i}\n", tcp=bool(i % 2)), "OK\n")
        self.assertLess(self.d.fds(), 40)


class EximListenerStoreUnavailable(unittest.TestCase):
    def test_tempfail(self):
        tmp = tempfile.mkdtemp(prefix="mq-exim-")
        path = os.path.join(tmp, "exim.sock")
        d = mqtest.Daemon("host=/nonexistent-dir user=postgres dbname=none",
                          token=mqtest.UNUSABLE_TOKEN, view_load_timeout=0, exim_socket=path)
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(path)
            with s:
                s.sendall(b"full@example.test 5\n")
                s.shutdown(socket.SHUT_WR)
                reply = s.recv(4096).decode()
            self.assertEqual(reply, "451 4.3.0 Quota service temporarily unavailable\n")
        finally:
            d.cleanup()
            os.rmdir(tmp)


class EximConfig(unittest.TestCase):
    def test_config_checks(self):
        import subprocess
        bin_ = os.path.join(mqtest.BIN, "mailquotad")
        for opts, want in ((["exim_socket=relative.sock"], "must be an absolute path"),
                           (["exim_tcp_listen=nonsense"], "exim_tcp_listen"),
                           (["exim_socket=/run/mailquota/policy.sock"],
                            "exim_socket: the same path as policy_socket"),
                           (["exim_socket=/tmp/x.sock", "socketmap_socket=/tmp/x.sock"],
                            "exim_socket: the same path as socketmap_socket")):
            args = [bin_, "-n"]
            for o in opts:
                args += ["-o", o]
            p = subprocess.run(args, capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, opts)
            self.assertIn(want, p.stderr, opts)
        p = subprocess.run([bin_, "-n", "-o", "exim_tcp_listen=10042"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
