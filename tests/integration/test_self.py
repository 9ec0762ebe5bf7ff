"""GET /v1/self: a self token's own mailbox as its user sees it, from the view; the largest
message it reports is exactly the edge of what a check accepts; other scopes are refused, an
expired token is told so, other failures look alike."""
import datetime
import os
import tempfile
import time
import unittest

import mqtest


class Self(mqtest.SeededTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = mqtest.Daemon(cls.db.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        super().tearDownClass()

    def token(self, address, **extra):
        st, doc, _ = self.d.http("POST", "/v1/tokens",
                                 {"name": "self-" + address, "scope": "self",
                                  "mailbox": address, **extra})
        self.assertEqual(st, 201, doc)
        t = doc["token"]
        # the view learns of a new token through NOTIFY
        mqtest.eventually(lambda: self.d.http("GET", "/v1/self", token=t)[0], 200)
        return t

    def view(self, t):
        st, doc, _ = self.d.http("GET", "/v1/self", token=t)
        self.assertEqual(st, 200, doc)
        return doc

    def test_figures_and_texts(self):
        doc = self.view(self.token("user1@example.test"))
        self.assertEqual(doc["address"], "user1@example.test")
        self.assertTrue(doc["enabled"])
        self.assertEqual(doc["storage"], {
            "limit": 1048576, "used": 0, "remaining": 1048576, "percent": 0.0,
            "limit_text": "1 MiB", "used_text": "0 B", "remaining_text": "1 MiB"})
        self.assertEqual(doc["messages"]["limit"], None)
        self.assertEqual(doc["messages"]["limit_text"], "unlimited")
        # 1 MiB of room is less than the domain's 10 MiB message limit
        self.assertEqual(doc["max_message_size"],
                         {"bytes": 1048576, "text": "1 MiB", "limited_by": "storage"})
        self.assertEqual(doc["domain"]["name"], "example.test")
        # no pool limit: the domain's total is none of this user's business
        self.assertIsNone(doc["domain"]["pool"])
        self.assertEqual(doc["grace_percent"], 0)
        as_of = datetime.datetime.fromisoformat(doc["as_of"].replace("Z", "+00:00"))
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - as_of)
                            .total_seconds()), 120)

    def test_full_mailbox(self):
        doc = self.view(self.token("full@example.test"))
        self.assertEqual((doc["storage"]["percent"], doc["storage"]["remaining"]), (100.0, 0))
        self.assertEqual(doc["messages"]["used_text"], "5")
        self.assertEqual(doc["max_message_size"],
                         {"bytes": 0, "text": "0 B", "limited_by": "storage"})

    def test_limits_that_decide(self):
        doc = self.view(self.token("small@example.test"))
        self.assertEqual(doc["max_message_size"]["limited_by"], "mailbox")
        self.assertEqual(doc["max_message_size"]["bytes"], 1000)
        doc = self.view(self.token("counted@example.test"))
        self.assertEqual(doc["max_message_size"]["limited_by"], "messages")
        self.assertEqual(doc["messages"]["percent"], 100.0)
        doc = self.view(self.token("p1@pool.test"))
        pool = doc["domain"]["pool"]
        self.assertEqual((pool["limit"], pool["used"], pool["remaining"], pool["percent"]),
                         (1000, 999, 1, 99.9))
        self.assertEqual(doc["max_message_size"], {"bytes": 1, "text": "1 B",
                                                   "limited_by": "domain_pool"})
        self.assertIsNone(doc["storage"]["limit"])

    def test_largest_is_the_edge_of_what_a_check_accepts(self):
        for address in ("user1@example.test", "small@example.test", "p2@pool.test"):
            t = self.token(address)
            big = self.view(t)["max_message_size"]["bytes"]

            def verdict(size):
                st, doc, _ = self.d.http("GET", f"/v1/check?recipient={address}&size={size}",
                                         token=t)
                self.assertEqual(st, 200)
                return doc["verdict"]
            self.assertEqual(verdict(big), "accept", address)
            self.assertNotEqual(verdict(big + 1), "accept", address)

    def test_follows_usage(self):
        t = self.token("box@catch.test")
        self.assertEqual(self.view(t)["storage"]["used"], 0)
        self.db.cli("usage", "set", "box@catch.test", "7864320", "3")
        self.assertEqual(mqtest.eventually(lambda: self.view(t)["storage"]["used_text"],
                                           "7.5 MiB"), "7.5 MiB")
        self.assertEqual(self.view(t)["messages"]["used"], 3)

    def test_other_scopes_and_bad_tokens(self):
        st, doc, _ = self.d.http("GET", "/v1/self")  # the admin token
        self.assertEqual((st, doc["error"]), (403, "forbidden"))
        for bad in ("mqt_1_" + "x" * 43, "garbage", None):
            st, doc, r = self.d.http("GET", "/v1/self", token=bad or False)
            self.assertEqual((st, doc["error"]), (401, "unauthorized"))
            self.assertEqual(r.getheader("WWW-Authenticate"), 'Bearer realm="mailquota"')

    def test_expired_token_is_told_so(self):
        soon = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        t = self.token("user1@example.test", expires_at=soon)
        time.sleep(4)
        st, doc, _ = self.d.http("GET", "/v1/self", token=t)
        self.assertEqual((st, doc["error"]), (401, "token_expired"))
        # a wrong secret for the same id is not told anything more
        wrong = t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB")
        st, doc, _ = self.d.http("GET", "/v1/self", token=wrong)
        self.assertEqual((st, doc["error"]), (401, "unauthorized"))

    def test_self_tokens_are_short_lived(self):
        """self_token_max_lifetime (default 1 day): a self token without expiry gets it, one
        asking for longer is refused; other scopes are not limited."""
        now = datetime.datetime.now(datetime.timezone.utc)
        st, doc, _ = self.d.http("POST", "/v1/tokens", {"name": "s", "scope": "self",
                                                       "mailbox": "user1@example.test"})
        self.assertEqual(st, 201)
        exp = datetime.datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00"))
        self.assertLess(abs((exp - now).total_seconds() - 86400), 120)
        later = (now + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        st, doc, _ = self.d.http("POST", "/v1/tokens", {"name": "s", "scope": "self",
                                                       "mailbox": "user1@example.test",
                                                       "expires_at": later})
        self.assertEqual((st, doc["error"], doc["field"]), (400, "invalid_field", "expires_at"))
        st, doc, _ = self.d.http("POST", "/v1/tokens", {"name": "r", "scope": "read",
                                                       "expires_at": later})
        self.assertEqual(st, 201)
        st, doc, _ = self.d.http("POST", "/v1/tokens", {"name": "r", "scope": "read"})
        self.assertEqual((st, doc["expires_at"]), (201, None))

    def test_self_link(self):
        p = self.db.cli("self-link", "User1@Example.Test", "expires=30m")
        url = p.stdout.strip()
        base, _, token = url.partition("#token=")
        self.assertTrue(base.startswith("http://127.0.0.1:") and base.endswith("/self"), url)
        self.assertIn("user1@example.test", p.stderr)
        self.assertNotIn(token, p.stderr)
        st = mqtest.eventually(lambda: self.d.http("GET", "/v1/self", token=token)[0], 200)
        self.assertEqual(st, 200)
        self.assertEqual(self.d.http("GET", "/v1/self", token=token)[1]["address"],
                         "user1@example.test")
        # longer than self_token_max_lifetime: the API refuses (exit 1), nothing is made
        p = self.db.cli("self-link", "user1@example.test", "expires=2d", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("self_token_max_lifetime", p.stderr)
        for bad in ("expires=soon", "expires=0", "ttl=1h"):
            p = self.db.cli("self-link", "user1@example.test", bad, check=False)
            self.assertEqual(p.returncode, 2, bad)
        p = self.db.cli("self-link", "nobody@example.test", check=False)
        self.assertNotEqual(p.returncode, 0)
        # an API URL written with a trailing slash names the same page
        slash = f"http://127.0.0.1:{self.db.api().http_port}/"
        p = self.db.cli("self-link", "user1@example.test", env={"MAILQUOTA_URL": slash})
        self.assertTrue(p.stdout.startswith(slash + "self#token=mqt_"), p.stdout)
        # the page as users reach it, behind a proxy
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("self_page_url = https://mail.example.test/quota/self\n")
        try:
            p = self.db.cli("-c", f.name, "self-link", "user1@example.test")
        finally:
            os.unlink(f.name)
        self.assertTrue(p.stdout.startswith("https://mail.example.test/quota/self#token=mqt_"))


if __name__ == "__main__":
    unittest.main()
