"""The HTTP API against an attacker on the same host: connection storms, half-closed and
truncated requests, slow clients past every limit, unauthenticated uploads, NUL bytes, deeply
nested JSON. After each attack a probe checks that the daemon still answers correctly, and its
memory and descriptors are watched."""
import json
import socket
import subprocess
import threading
import time
import unittest

import mqtest

FULL = "/v1/check?recipient=full@example.test&size=1"


def close_wait(port):
    """Connections to port the daemon has not closed although the client did."""
    out = subprocess.run(["ss", "-Htan", "state", "close-wait", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len(out.strip().splitlines())


def raw_request(port, data, shut_wr=False, timeout=10, src="127.0.0.1"):
    """Send raw bytes; return everything the server sent until it closed (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
    try:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (socket.timeout, ConnectionResetError):
        return None
    finally:
        s.close()


class Base(mqtest.SeededTestCase):
    options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = mqtest.Daemon(cls.db.conninfo, log_level="info", **cls.options)
        cls.auth = f"Authorization: Bearer {cls.d.token}\r\n".encode()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        super().tearDownClass()

    def probe(self):
        """The daemon still answers a check correctly."""
        st, doc, _ = self.d.http("GET", FULL)
        self.assertEqual(st, 200)
        self.assertEqual(doc["verdict"], "over_quota")

    def eventually_no_close_wait(self):
        deadline = time.time() + 5
        while close_wait(self.d.http_port) > 0 and time.time() < deadline:
            time.sleep(0.05)
        return close_wait(self.d.http_port)


class Storms(Base):
    def storm(self, payload, n=2000):
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=2)
                s.sendall(payload)
                s.close()
            except OSError:
                pass

    def test_connect_half_request_close(self):
        """Each closed connection is reclaimed at once, whatever the client left unsaid (with
        libmicrohttpd's epoll loop they stayed in CLOSE-WAIT until their timeout, and the
        per-address limit then refused everyone on that address)."""
        fds = self.d.fds()
        shapes = {
            "request line": b"GET /v1/chec",
            "headers": b"GET " + FULL.encode() + b" HTTP/1.1\r\nHost: x\r\n",
            "body": (b"POST /v1/check HTTP/1.1\r\nHost: x\r\n" + self.auth +
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"rec"),
        }
        for name, payload in shapes.items():
            with self.subTest(shape=name):
                self.storm(payload)
                self.assertEqual(self.eventually_no_close_wait(), 0)
                self.probe()
        self.assertLess(self.d.fds(), fds + 10)

    def test_truncated_chunked_body_then_half_close(self):
        data = (b"POST /v1/check HTTP/1.1\r\nHost: x\r\n" + self.auth +
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"40\r\n{\"recipients\": [\"full@exa")
        self.assertIsNotNone(raw_request(self.d.http_port, data, shut_wr=True, timeout=3),
                             "the server did not close a half-closed truncated request")
        self.assertEqual(self.eventually_no_close_wait(), 0)
        self.probe()


class SlowClients(Base):
    # every connection from one address allowed, so the deadline alone is tested here
    options = {"http_max_connections": 40, "http_request_timeout": 2,
               "http_max_connections_per_address": 0}

    def test_dribblers_past_the_connection_limit(self):
        """60 clients trickle a request a byte at a time (more than http_max_connections):
        the inactivity timeout never fires, the whole-request deadline does, and the API
        answers again while they are still trickling."""
        stop = threading.Event()
        socks = []

        def dribble():
            payload = b"GET " + FULL.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500
            try:
                s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=5)
            except OSError:
                return
            socks.append(s)
            for b in payload:
                if stop.is_set():
                    return
                try:
                    s.send(bytes([b]))
                except OSError:
                    return
                time.sleep(0.1)

        threads = [threading.Thread(target=dribble) for _ in range(60)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)  # they hold every slot now
            answered = False
            deadline = time.time() + 20
            while not answered and time.time() < deadline:
                try:
                    st, doc, _ = self.d.http("GET", FULL)
                    answered = st == 200 and doc["verdict"] == "over_quota"
                except OSError:
                    time.sleep(0.2)
            self.assertTrue(answered, "the API stayed blocked by slow clients")
            self.assertTrue(any(t.is_alive() for t in threads), "the attack ended first")
        finally:
            stop.set()
            for t in threads:
                t.join()
            for s in socks:
                s.close()
        self.assertIn("event=http_request_timeout", self.d.read_log())
        self.probe()

    def test_idle_keepalive_closed_after_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        s.settimeout(10)
        rest = b""
        try:
            while True:  # nothing more is sent: the server closes after the deadline
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        finally:
            s.close()
        self.assertEqual(rest, b"")


class PerAddress(Base):
    options = {"http_max_connections_per_address": 5}

    def test_one_address_cannot_take_every_connection(self):
        held = [socket.create_connection(("127.0.0.1", self.d.http_port), timeout=5)
                for _ in range(5)]
        try:
            # a sixth from the same address is refused at accept ...
            out = raw_request(self.d.http_port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
                              timeout=5)
            self.assertIn(out, (b"", None))
            # ... while another address is served
            out = raw_request(self.d.http_port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n", src="127.0.0.2")
            self.assertTrue(out.startswith(b"HTTP/1.1 200"), out)
        finally:
            for s in held:
                s.close()


class Uploads(Base):
    def test_unauthenticated_upload_refused_before_the_body(self):
        """Eight 30 MB imports without a token: each is answered 401 before a byte of its body
        is read, and the daemon's memory does not grow with them."""
        rss = self.d.rss_kb()
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
            s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/x-ndjson\r\nContent-Length: 31457280\r\n\r\n")
            head = s.recv(65536)  # the answer comes with no body byte sent
            self.assertTrue(head.startswith(b"HTTP/1.1 401"), head)
            try:
                s.sendall(b"x" * (1 << 20))  # what follows is not read
            except OSError:
                pass
            s.close()
        self.assertLess(self.d.rss_kb() - rss, 10 * 1024)
        self.probe()

    def test_wrong_scope_upload_refused_before_the_body(self):
        tok = mqtest.bootstrap_token(self.db.conninfo, "reader", "scope=read")
        # the view learns of the new token by notification
        mqtest.eventually(lambda: self.d.http("GET", FULL, token=tok)[0], 200)
        s = socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10)
        s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  tok.encode() + b"\r\nContent-Length: 31457280\r\n\r\n")
        head = s.recv(65536)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 403"), head)

    def test_body_where_none_is_taken(self):
        st, doc, _ = self.d.http("GET", FULL, body="x" * 100, validate=False)
        self.assertEqual((st, doc["error"]), (413, "body_too_large"))

    def test_deeply_nested_json(self):
        for depth in (100, 5000, 200000):
            with self.subTest(depth=depth):
                body = "[" * depth + "]" * depth
                st, doc, _ = self.d.http("POST", "/v1/check", body,
                                         {"Content-Type": "application/json"}, validate=False)
                self.assertEqual(st, 400)
                self.assertIn(doc["error"], ("invalid_json", "invalid_body"))
                body = '{"reports": ' + "[" * depth + "]" * depth + "}"
                st, doc, _ = self.d.http("POST", "/v1/usage", body,
                                         {"Content-Type": "application/json"}, validate=False)
                self.assertEqual(st, 400)
        # deeper still is larger than a body may be: refused from its announced length
        out = raw_request(self.d.http_port, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n" +
                          self.auth + b"Content-Type: application/json\r\n"
                          b"Content-Length: 600000\r\n\r\n" + b"[" * 1000)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)
        self.probe()


class NulBytes(Base):
    def expect_400(self, data):
        out = raw_request(self.d.http_port, data + b"Connection: close\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), head)
        self.assertEqual(json.loads(body)["error"], "invalid_request")

    def test_nul_in_query_values(self):
        for q in (b"recipient=full@example.test&size=1%00",
                  b"recipient=user1@example.test%00.evil.example&size=1",
                  b"recipient%00x=full@example.test&size=1"):
            with self.subTest(query=q):
                self.expect_400(b"GET /v1/check?" + q + b" HTTP/1.1\r\nHost: x\r\n" + self.auth)

    def test_nul_in_path(self):
        self.expect_400(b"GET /v1/mailboxes/full@example.test%00/usage HTTP/1.1\r\nHost: x\r\n" +
                        self.auth)

    def test_nul_after_a_valid_token(self):
        self.expect_400(b"GET " + FULL.encode() + b" HTTP/1.1\r\nHost: x\r\n" +
                        self.auth[:-2] + b"\x00junk\r\n")

    def test_nul_in_other_headers(self):
        self.expect_400(b"GET " + FULL.encode() + b" HTTP/1.1\r\nHost: x\r\n" + self.auth +
                        b"X-Thing: a\x00b\r\n")
        self.probe()


if __name__ == "__main__":
    unittest.main()
