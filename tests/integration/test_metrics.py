"""GET /metrics (docs/metrics.md): a real scrape passes `promtool check metrics` (format and
lint), each kind of check moves exactly its own series, the view's gauges match the seeded
data, the route wants a metrics (or admin) token, and metrics_listen serves /metrics without a
token and nothing else."""
import http.client
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

import mqtest

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of (label, value)): float} of an exposition's samples."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def key(name, **labels):
    return (name, frozenset(labels.items()))


def moved(before, after, prefix):
    """The samples named prefix* whose value changed, with the change."""
    return {k: after[k] - before.get(k, 0) for k in after
            if k[0].startswith(prefix) and after[k] != before.get(k, 0)}


class Metrics(mqtest.SeededTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.exim_port = mqtest.free_port()
        cls.metrics_port = mqtest.free_port()
        cls.d = mqtest.Daemon(cls.db.conninfo, exim_tcp_listen=f"127.0.0.1:{cls.exim_port}",
                              metrics_listen=f"127.0.0.1:{cls.metrics_port}")
        cls.tokens = {}
        for scope in ("metrics", "read"):
            st, doc, _ = cls.d.http("POST", "/v1/tokens", {"name": scope, "scope": scope})
            assert st == 201, doc
            cls.tokens[scope] = doc["token"]
        for t in cls.tokens.values():  # the view learns of new tokens by notification
            mqtest.eventually(lambda: cls.d.http("GET", "/v1/health", token=t)[0], 200)
            mqtest.eventually(lambda: cls.d.http("GET", "/metrics", token=t)[0] != 401, True)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        super().tearDownClass()

    def text(self, token=True):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + self.d.token}
                  if token is True else {"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        self.assertEqual(r.status, 200, body)
        self.assertEqual(r.getheader("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        return body

    def metrics(self):
        return parse(self.text())

    def on_metrics_listen(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body, r

    def exim(self, line):
        return mqtest.exim_ask(
            socket.create_connection(("127.0.0.1", self.exim_port), timeout=10), line)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian package prometheus)")
    def test_promtool_finds_nothing(self):
        self.d.policy(request="smtpd_access_policy", protocol_state="RCPT",
                      recipient="user1@example.test", size="10")
        p = subprocess.run(["promtool", "check", "metrics"], input=self.text(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    def test_policy_checks_move_their_series(self):
        before = self.metrics()
        self.assertEqual(self.d.policy(request="smtpd_access_policy", protocol_state="RCPT",
                                       recipient="user1@example.test", size="10"), "DUNNO")
        self.assertTrue(self.d.policy(request="smtpd_access_policy", protocol_state="RCPT",
                                      recipient="full@example.test", size="10")
                        .startswith("552"))
        # a request that needs no check (not RCPT) counts nothing
        self.d.policy(request="smtpd_access_policy", protocol_state="DATA",
                      recipient="user1@example.test")
        after = self.metrics()
        self.assertEqual(moved(before, after, "mailquota_checks_total"), {
            key("mailquota_checks_total", front_end="policy", verdict="accept",
                reason="none"): 1,
            key("mailquota_checks_total", front_end="policy", verdict="over_quota",
                reason="storage"): 1,
        })
        hist = moved(before, after, "mailquota_check_duration_seconds_count")
        self.assertEqual(hist, {key("mailquota_check_duration_seconds_count",
                                    front_end="policy"): 2})
        inf = key("mailquota_check_duration_seconds_bucket", front_end="policy", le="+Inf")
        self.assertEqual(after[inf] - before[inf], 2)

    def test_http_check(self):
        before = self.metrics()
        st, doc, _ = self.d.http("GET", "/v1/check?recipient=small@example.test&size=5000")
        self.assertEqual((st, doc["verdict"]), (200, "too_big_mailbox"))
        st, _, _ = self.d.http("GET", "/v1/check?recipient=not-an-address")
        self.assertEqual(st, 400)
        self.assertEqual(moved(before, self.metrics(), "mailquota_checks_total"), {
            key("mailquota_checks_total", front_end="http", verdict="too_big_mailbox",
                reason="mailbox_max_size"): 1,
            key("mailquota_checks_total", front_end="http", verdict="invalid",
                reason="none"): 1,
        })

    def test_exim_check(self):
        before = self.metrics()
        self.assertTrue(self.exim("counted@example.test 10\n").startswith("552"))
        self.assertEqual(self.exim("nobody@example.test 10\n").strip(), "OK")
        self.assertEqual(moved(before, self.metrics(), "mailquota_checks_total"), {
            key("mailquota_checks_total", front_end="exim", verdict="over_quota",
                reason="messages"): 1,
            key("mailquota_checks_total", front_end="exim", verdict="unknown",
                reason="none"): 1,
        })

    def test_view_gauges_match_the_data(self):
        m = self.metrics()
        for table, name in (("domains", "domains"), ("mailboxes", "mailboxes"),
                            ("aliases", "aliases")):
            want = int(self.db.sql(f"SELECT count(*) FROM {table}").strip())
            self.assertEqual(m[key(f"mailquota_view_{name}")], want, table)
        self.assertEqual(m[key("mailquota_view_loaded")], 1)
        self.assertEqual(m[key("mailquota_database_up")], 1)
        self.assertGreaterEqual(m[key("mailquota_view_full_loads_total")], 1)
        self.assertEqual(m[key("mailquota_database_reconnects_total")], 0)
        self.assertGreater(m[key("process_start_time_seconds")], 1.6e9)
        version = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-V"],
                                 capture_output=True, text=True).stdout.split()[1]
        self.assertIn(key("mailquota_build_info", version=version), m)

    def test_connections_and_writes(self):
        with self.d.policy_conn() as c:
            c.ask(request="smtpd_access_policy", protocol_state="RCPT",
                  recipient="user1@example.test")
            conns = key("mailquota_connections", listener="unix")
            self.assertEqual(mqtest.eventually(lambda: self.metrics()[conns], 1), 1)
        before = self.metrics()
        st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
            {"mailbox": "box@catch.test", "bytes": 1, "messages": 1, "key": "metrics-1"}]})
        self.assertEqual(st, 200, doc)
        st, doc, _ = self.d.http("POST", "/v1/domains", {"name": "metrics.test"})
        self.assertEqual(st, 201, doc)
        st, doc, _ = self.d.http("POST", "/v1/domains", {"name": "metrics.test"})
        self.assertEqual(st, 409, doc)
        after = self.metrics()
        self.assertEqual(moved(before, after, "mailquota_usage_reports_total"),
                         {key("mailquota_usage_reports_total", outcome="applied"): 1})
        self.assertEqual(moved(before, after, "mailquota_admin_changes_total"), {
            key("mailquota_admin_changes_total", kind="domain", outcome="created"): 1,
            key("mailquota_admin_changes_total", kind="domain", outcome="exists"): 1,
        })

    def test_tokens(self):
        self.assertEqual(self.d.http("GET", "/metrics", token=False)[0], 401)
        self.assertEqual(self.d.http("GET", "/metrics", token=self.tokens["read"])[0], 403)
        self.assertIn("mailquota_build_info", self.text(token=self.tokens["metrics"]))
        # a metrics token reaches nothing else
        for method, path in (("GET", "/v1/check?recipient=user1@example.test"),
                             ("GET", "/v1/domains"), ("GET", "/v1/stats")):
            self.assertEqual(self.d.http(method, path, token=self.tokens["metrics"])[0], 403,
                             path)

    def test_cli_makes_a_metrics_token(self):
        p = self.db.cli("token", "create", "prometheus", "scope=metrics")
        self.assertIn("scope metrics", p.stderr)
        tok = p.stdout.strip()
        self.assertTrue(tok.startswith("mqt_"), p.stdout)
        st = mqtest.eventually(lambda: self.d.http("GET", "/metrics", token=tok)[0], 200)
        self.assertEqual(st, 200)

    def test_metrics_listen(self):
        st, body, r = self.on_metrics_listen("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        self.assertIn(key("mailquota_connections", listener="metrics"), parse(body))
        # nothing else, whatever the method or path; not even the routes without a token
        for method, path in (("GET", "/v1/health"), ("GET", "/self"), ("GET", "/v1/domains"),
                             ("GET", "/v1/check?recipient=user1@example.test"),
                             ("OPTIONS", "/v1/check"), ("GET", "/metrics/"),
                             ("GET", "/metricsx")):
            self.assertEqual(self.on_metrics_listen(method, path)[0], 404, (method, path))
        self.assertEqual(self.on_metrics_listen("POST", "/metrics")[0], 405)
        # and the API's own /metrics still wants a token
        self.assertEqual(self.d.http("GET", "/metrics", token=False)[0], 401)


class Refusals(unittest.TestCase):
    def test_a_refused_connection_is_counted_by_its_limit(self):
        db = mqtest.Database()
        d = mqtest.Daemon(db.conninfo, policy_max_connections_per_client=1)
        try:
            # over TCP: the start-up probe (mqtest.Daemon) used the Unix socket, and a Unix
            # client is its user id, the same for the probe and the test
            with d.policy_conn(tcp=True) as first:
                first.ask(request="smtpd_access_policy", protocol_state="RCPT",
                          recipient="a@b.test")
                with d.policy_conn(tcp=True) as second:
                    self.assertTrue(second.closed_by_server())
            c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
            c.request("GET", "/metrics", headers=d.auth)
            m = parse(c.getresponse().read().decode())
            c.close()
            self.assertEqual(m[key("mailquota_connections_refused_total", listener="tcp",
                                   reason="policy_max_connections_per_client")], 1)
            self.assertEqual(m[key("mailquota_connections_refused_total", listener="tcp",
                                   reason="policy_max_connections")], 0)
        finally:
            d.cleanup()
            db.close()


    def test_http_refusals_are_counted(self):
        """libmicrohttpd tells of its refusals only in its log: they are counted from it."""
        db = mqtest.Database()
        d = mqtest.Daemon(db.conninfo, http_max_connections_per_address=1)
        try:
            def hold():
                """A connection answered and kept open (once the start-up probe's is gone)."""
                s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
                try:
                    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if b" 200 " in s.recv(4096):
                        return s
                except OSError:
                    pass
                s.close()
                return None
            first, deadline = hold(), time.time() + 15
            while first is None and time.time() < deadline:
                time.sleep(0.05)
                first = hold()
            self.assertIsNotNone(first)
            with socket.create_connection(("127.0.0.1", d.http_port), timeout=10) as second:
                second.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    self.assertEqual(second.recv(4096), b"")
                except ConnectionResetError:
                    pass
            first.close()

            refused_key = key("mailquota_connections_refused_total", listener="http",
                              reason="http_max_connections")

            def count():
                try:
                    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
                    c.request("GET", "/metrics", headers=d.auth)
                    m = parse(c.getresponse().read().decode())
                    c.close()
                    return m[refused_key] >= 1
                except OSError:
                    return None
            self.assertTrue(mqtest.eventually(count, True))
        finally:
            d.cleanup()
            db.close()


class MetricsConfig(unittest.TestCase):
    def test_metrics_listen_needs_http_listen(self):
        p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-n", "-o",
                            "http_listen=", "-o", "metrics_listen=9100"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics_listen", p.stderr)


if __name__ == "__main__":
    unittest.main()
