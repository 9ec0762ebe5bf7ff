"""The policy socket against an attacker on the same host: answers already owed are delivered
before any close, pipelines and half-closes are answered, TCP peers outside policy_tcp_allow and
clients past their connection cap are turned away, and running out of descriptors neither spins
nor floods the log. After each case a probe checks the daemon still answers correctly."""
import os
import socket
import subprocess
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"
REQ = (b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
       b"recipient=full@example.test\nsize=1\n\n")
ACTION = b"action=" + OVER.encode() + b"\n\n"


def read_all(sock, timeout=10):
    """Everything the server sends until it closes (or None on a timeout)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except ConnectionResetError:
        return out
    except socket.timeout:
        return None


def ask_tcp_from(d, src):
    """One request over TCP from the loopback address src; what the server sent back."""
    with socket.create_connection(("127.0.0.1", d.tcp_port), timeout=10,
                                  source_address=(src, 0)) as s:
        s.sendall(REQ)
        s.shutdown(socket.SHUT_WR)
        return read_all(s)


class Owed(mqtest.SeededTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = mqtest.Daemon(cls.db.conninfo, log_level="info")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        super().tearDownClass()

    def probe(self):
        self.assertEqual(self.d.policy(recipient="full@example.test", size=1), OVER)

    def send(self, data, shut_wr=False, tcp=False):
        with self.d.policy_conn(tcp=tcp) as c:
            try:
                c.sock.sendall(data)
                if shut_wr:
                    c.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading an offending request: what it sent counts
            return read_all(c.sock)

    def test_valid_requests_then_garbage_in_one_write(self):
        """The answers to the complete requests come before the connection is closed."""
        out = self.send(REQ * 3 + b"this is not an attribute\n\n")
        self.assertEqual(out, ACTION * 3)
        self.probe()

    def test_valid_request_then_oversized_request(self):
        out = self.send(REQ + b"request=smtpd_access_policy\n" +
                        b"".join(b"a%d=%s\n" % (i, b"y" * 4000) for i in range(30)))
        self.assertEqual(out, ACTION)
        self.probe()

    def test_complete_request_then_eof(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                self.assertEqual(self.send(REQ, shut_wr=True, tcp=tcp), ACTION)

    def test_long_pipeline_then_eof(self):
        """A pipeline longer than one read, cut anywhere, is answered in full."""
        self.assertEqual(self.send(REQ * 2000, shut_wr=True), ACTION * 2000)
        self.probe()

    def test_half_request_then_eof(self):
        self.assertEqual(self.send(REQ + REQ[:40], shut_wr=True), ACTION)

    def test_nul_and_non_utf8(self):
        for bad in (b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                    b"recipient=full@example.test\x00.evil\nsize=1\n\n",
                    b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                    b"recipient=\xff\xfe@example.test\nsize=1\n\n",
                    b"request=smtpd_access_policy\x00\nprotocol_state=RCPT\n\n"):
            with self.subTest(bad=bad):
                out = self.send(REQ + bad + REQ, shut_wr=True)
                # the first request is always answered; a NUL is a protocol error (the
                # connection closes), invalid UTF-8 in an address is no decision (DUNNO)
                self.assertTrue(out.startswith(ACTION), out)
                self.assertNotIn(OVER.encode() + b"\n\naction=" + OVER.encode() + b"\n\n" +
                                 ACTION, out)
        self.probe()

    def test_client_that_never_reads_then_closes(self):
        with self.d.policy_conn() as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.sock.settimeout(5)
            try:
                for _ in range(5000):
                    c.sock.sendall(REQ)
            except (OSError, socket.timeout):
                pass
        self.probe()


class Admission(mqtest.SeededTestCase):

    def test_tcp_allow(self):
        d = mqtest.Daemon(self.db.conninfo, log_level="info", policy_tcp_allow="127.0.0.2/32")
        try:
            with d.policy_conn(tcp=True) as c:  # from 127.0.0.1: not allowed
                c.sock.sendall(REQ)
                self.assertEqual(read_all(c.sock), b"")
            self.assertEqual(ask_tcp_from(d, "127.0.0.2"), ACTION)
            self.assertEqual(d.policy(recipient="full@example.test", size=1), OVER)  # unix
            self.assertIn("reason=policy_tcp_allow", d.read_log())
        finally:
            d.cleanup()

    def test_bad_tcp_allow_stops_start(self):
        p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-n", "-o",
                            "policy_tcp_allow=192.0.2.1/24"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("policy_tcp_allow", p.stderr)

    def test_one_client_cannot_fill_the_table(self):
        """With 1,024 idle connections one client used to take every slot (Postfix then
        answered 451 to everyone); its cap now leaves room for the others."""
        d = mqtest.Daemon(self.db.conninfo, log_level="info", policy_max_connections=30,
                          policy_max_connections_per_client=10, policy_socket_mode="0666")
        held = []
        try:
            for _ in range(10):
                held.append(socket.create_connection(("127.0.0.1", d.tcp_port), timeout=10))
            extra = socket.create_connection(("127.0.0.1", d.tcp_port), timeout=10)
            self.assertEqual(read_all(extra), b"")  # the eleventh from 127.0.0.1 is closed
            extra.close()
            # another address, and another local user, still get in
            self.assertEqual(ask_tcp_from(d, "127.0.0.3"), ACTION)
            code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(10);"
                    f"s.connect({d.socket!r}); s.sendall({REQ!r}); s.shutdown(1);"
                    "d=b''\nwhile True:\n c=s.recv(65536)\n if not c: break\n d+=c\n"
                    "sys.stdout.write(d.decode())")
            unix_held = []
            for _ in range(10):  # root's own Unix connections: a different client
                u = socket.socket(socket.AF_UNIX)
                u.connect(d.socket)
                unix_held.append(u)
            p = subprocess.run(["runuser", "-u", "nobody", "--", "python3", "-c", code],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.stdout.encode(), ACTION, p.stderr)
            for u in unix_held:
                u.close()
            self.assertIn("reason=policy_max_connections_per_client", d.read_log())
        finally:
            for s in held:
                s.close()
            d.cleanup()


class Descriptors(mqtest.SeededTestCase):

    def test_limits_that_cannot_fit_stop_start(self):
        p = subprocess.run(["prlimit", "--nofile=512:512", os.path.join(mqtest.BIN, "mailquotad"),
                            "-o", f"database_url={self.db.conninfo}", "-o", "policy_socket=",
                            "-o", "http_listen=", "-o", "policy_max_connections=1000"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("need", p.stdout + p.stderr)
        self.assertIn("RLIMIT_NOFILE is 512", p.stdout + p.stderr)

    def test_running_out_of_descriptors_does_not_spin(self):
        """Descriptors taken away at run time (RLIMIT_NOFILE 128 with 300 clients waiting):
        accepting pauses instead of looping on EMFILE, the log says so a few times, not
        millions, and once clients leave the daemon answers again."""
        d = mqtest.Daemon(self.db.conninfo, log_level="info")
        conns = []
        try:
            subprocess.run(["prlimit", f"--pid={d.proc.pid}", "--nofile=128:128"], check=True)
            cpu = d.cpu_seconds()
            for _ in range(300):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(5)
                    s.connect(d.socket)
                    conns.append(s)
                except OSError:
                    break
            time.sleep(3)
            used = d.cpu_seconds() - cpu
            log = d.read_log()
            self.assertIn("event=accept_paused", log)
            self.assertLess(log.count("event=accept_paused"), 10)
            self.assertLess(log.count("accept_failed"), 10)
            self.assertLess(used, 1.5, f"{used:.2f} s of CPU in 3 s: spinning")
            for s in conns:
                s.close()
            conns = []
            self.assertEqual(mqtest.eventually(
                lambda: self._ask(d), OVER, timeout=15), OVER)
        finally:
            for s in conns:
                s.close()
            d.cleanup()

    def _ask(self, d):
        try:
            return d.policy(recipient="full@example.test", size=1)
        except OSError:
            return None


if __name__ == "__main__":
    unittest.main()
