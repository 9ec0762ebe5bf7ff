"""The socketmap table (Postfix's socketmap_table(5) protocol, for check_recipient_access)
against the real daemon and a real PostgreSQL, over its Unix socket and TCP: only recipients
that are already full are refused (OK with the over-quota reply), everything else is NOTFOUND;
wrong map names are answered PERM, broken framing PERM and a close; a store that cannot answer
is TEMP."""
import os
import socket
import tempfile
import time
import unittest

import mqtest

OVER = "OK 552 5.2.2 Mailbox full"
NOTFOUND = "NOTFOUND "
REQUEST_MAX = 4096  # SOCKETMAP_REQUEST_MAX


def netstring(data):
    if isinstance(data, str):
        data = data.encode()
    return str(len(data)).encode() + b":" + data + b","


class SockmapConn(mqtest.PolicyConn):
    """A connection to the socketmap listener: the policy connection's socket handling, with
    netstring replies."""

    def send(self, data):
        self.send_raw(data)

    def read_reply(self):
        """One netstring reply's payload, as text."""
        while True:
            if b":" in self.buf:
                head, rest = self.buf.split(b":", 1)
                n = int(head)
                if len(rest) > n:
                    assert rest[n:n + 1] == b",", self.buf
                    self.buf = rest[n + 1:]
                    return rest[:n].decode()
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk

    def lookup(self, key, name="mailquota"):
        self.send(netstring(f"{name} {key}"))
        return self.read_reply()


class Socketmap(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.dir = tempfile.mkdtemp(prefix="mq-sm-")
        cls.path = os.path.join(cls.dir, "socketmap.sock")
        cls.port = mqtest.free_port()
        cls.d = mqtest.Daemon(cls.db.conninfo, socketmap_socket=cls.path,
                              socketmap_tcp_listen=f"127.0.0.1:{cls.port}")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()
        os.rmdir(cls.dir)

    def conn(self, tcp=False):
        if tcp:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        else:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(self.path)
        return SockmapConn(s)

    def both(self, key, expect, name="mailquota"):
        for tcp in (False, True):
            with self.subTest(key=key, tcp=tcp), self.conn(tcp) as c:
                self.assertEqual(c.lookup(key, name), expect)

    def test_lookups(self):
        cases = [
            ("full@example.test", OVER),             # usage at its limit
            ("full2@example.test", OVER),
            ("counted@example.test", OVER),          # message count reached
            ("user1@example.test", NOTFOUND),        # room left
            ("small@example.test", NOTFOUND),        # a max message size needs a size
            ("p1@pool.test", NOTFOUND),              # the pool has one byte left
            ("nobody@nowhere.test", NOTFOUND),       # unknown: the next restriction decides
            ("nobody@example.test", NOTFOUND),
            ("off@example.test", NOTFOUND),          # disabled
            ("tofull@example.test", OVER),           # alias of one full mailbox
            ("allfull@example.test", OVER),          # every target full
            ("team@example.test", NOTFOUND),         # one target has room
            ("anything@catch.test", OVER),           # catch-all to a full mailbox
            ("box@catch.test", NOTFOUND),            # a mailbox beats the catch-all
        ]
        for key, expect in cases:
            self.both(key, expect)

    def test_extension_and_case(self):
        self.both("Full+Tag@Example.TEST", OVER)
        self.both("full+tag@example.test", OVER)     # as Postfix sends it (folded)
        self.both("USER1+x@EXAMPLE.TEST", NOTFOUND)
        self.both("<full@example.test>", OVER)

    def test_partial_keys_and_junk(self):
        # Postfix sends no partial keys to a socketmap; anything that is not an address is
        # no opinion
        for key in ("example.test", "full@", "full", "a" * 300 + "@example.test",
                    "full@example.test\x00x"):
            self.both(key, NOTFOUND)

    def test_wrong_map_name_keeps_the_connection(self):
        with self.conn() as c:
            self.assertEqual(c.lookup("full@example.test", name="other"),
                             "PERM unknown map name")
            self.assertEqual(c.lookup("full@example.test", name="MAILQUOTA"),
                             "PERM unknown map name")
            c.send(netstring("mailquota"))
            self.assertEqual(c.read_reply(), 'PERM request is not "name key"')
            c.send(netstring("mailquota "))
            self.assertEqual(c.read_reply(), "PERM empty key")
            self.assertEqual(c.lookup("full@example.test"), OVER)

    def test_pipelined_and_split(self):
        with self.conn() as c:
            keys = ["user1@example.test", "full@example.test", "team@example.test",
                    "allfull@example.test"] * 25
            c.send(b"".join(netstring(f"mailquota {k}") for k in keys))
            got = [c.read_reply() for _ in keys]
            self.assertEqual(got, [OVER if "full" in k else NOTFOUND for k in keys])
            # one byte at a time
            for b in netstring("mailquota full@example.test"):
                c.send(bytes([b]))
                time.sleep(0.001)
            self.assertEqual(c.read_reply(), OVER)

    def test_malformed_framing_is_perm_and_close(self):
        for junk in (b"mailquota full@example.test\n", b"05:hello,", b"-1:x,",
                     b"5:hello;", b"27:mailquota full@example.test!,"):
            with self.subTest(junk=junk), self.conn() as c:
                # the answers owed before the junk still come
                c.send(netstring("mailquota full@example.test") + junk)
                self.assertEqual(c.read_reply(), OVER)
                self.assertTrue(c.read_reply().startswith("PERM "))
                self.assertTrue(c.closed_by_server())
        self.both("full@example.test", OVER)  # still serving

    def test_oversize(self):
        key = "a" * (REQUEST_MAX - len("mailquota "))
        self.both(key, NOTFOUND)  # exactly the limit: answered
        with self.conn() as c:
            # refused from the announced length alone, before any payload
            c.send(str(REQUEST_MAX + 1).encode() + b":")
            self.assertEqual(c.read_reply(), "PERM netstring longer than allowed")
            self.assertTrue(c.closed_by_server())
        with self.conn(tcp=True) as c:
            c.send(b"9" * 40)
            self.assertTrue(c.read_reply().startswith("PERM "))
            self.assertTrue(c.closed_by_server())
        self.both("full@example.test", OVER)

    def test_policy_listeners_unaffected(self):
        self.assertEqual(self.d.policy(recipient="full@example.test", size=10),
                         "552 5.2.2 Mailbox full")
        with self.d.policy_conn() as c:
            # a netstring on the policy socket is a policy protocol error, nothing else
            c.send_raw(netstring("mailquota full@example.test") + b"\n\n")
            self.assertTrue(c.closed_by_server())

    def test_socket_mode_and_log(self):
        st = os.stat(self.path)
        self.assertEqual(st.st_mode & 0o777, 0o660)  # policy_socket_mode
        with self.conn() as c:
            c.lookup("full@example.test")
        log = mqtest.eventually(lambda: "key=<full@example.test>" in self.d.read_log(), True)
        self.assertTrue(log)
        self.assertIn("via=socketmap-unix", self.d.read_log())


class SocketmapStoreUnavailable(unittest.TestCase):
    def test_temp(self):
        tmp = tempfile.mkdtemp(prefix="mq-sm-")
        path = os.path.join(tmp, "socketmap.sock")
        d = mqtest.Daemon("host=/nonexistent-dir user=postgres dbname=none",
                          token=mqtest.UNUSABLE_TOKEN, view_load_timeout=0,
                          socketmap_socket=path)
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(path)
            with SockmapConn(s) as c:
                reply = c.lookup("full@example.test")
                self.assertTrue(reply.startswith("TEMP "), reply)
                self.assertEqual(c.lookup("x@y.test", name="nope"), "PERM unknown map name")
        finally:
            d.cleanup()
            os.rmdir(tmp)
        self.assertFalse(os.path.exists(path))  # unlinked at shutdown


class SocketmapConfig(unittest.TestCase):
    def test_config_checks(self):
        import subprocess
        bin_ = os.path.join(mqtest.BIN, "mailquotad")
        for opt, want in (("socketmap_socket=relative.sock", "must be an absolute path"),
                          ("socketmap_tcp_listen=nonsense", "socketmap_tcp_listen"),
                          ("socketmap_socket=/run/mailquota/policy.sock",
                           "the same path as policy_socket")):
            p = subprocess.run([bin_, "-n", "-o", opt], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, opt)
            self.assertIn(want, p.stderr, opt)
        p = subprocess.run([bin_, "-n", "-o", "socketmap_tcp_listen=10041"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
