"""GET /v1/self: a self token's own mailbox as its user sees it, from the view; the largest
message it reports is exactly the edge of what a check accepts; the quota warnings in force
follow usage through the view (thresholds 80/90/100 %, re-armed 5 points below); other scopes
are refused, an expired token is told so, other failures look alike."""
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

    def test_no_warnings(self):
        doc = self.view(self.token("user1@example.test"))
        self.assertEqual(doc["warnings"], {"storage": None, "messages": None})

    # (how usage changes, bytes, messages, then the levels in force: storage, messages); the
    # mailbox has 1000 bytes and 10 messages; "set" is PUT .../usage (absolute), "add" is POST
    # /v1/usage (a delta). The default thresholds are 80, 90, 100 and the hysteresis 5.
    WARNING_STEPS = [
        ("set", 790, 7, None, None),       # under every threshold
        ("set", 800, 8, 80, 80),           # exactly 80 % fires 80
        ("add", 100, 0, 90, 80),           # 90 %
        ("add", 100, 2, 100, 100),         # the limit reached
        ("set", 960, 9, 100, 90),          # 96 %: 100 stays until below 95; 90 % of messages
        ("set", 940, 9, 90, 90),           # 94 %: 100 re-armed, 90 still in force
        ("set", 860, 9, 90, 90),           # 86 %: within the hysteresis of 90
        ("set", 840, 8, 80, 80),           # 84 %: 90 re-armed
        ("add", 60, 0, 90, 80),            # 90 % again: fires again
        ("set", 740, 7, None, None),       # 74 %, 70 %: all re-armed
        ("set", 760, 0, None, None),       # 76 %: within 5 of 80, but 80 was re-armed
        ("add", 40, 0, 80, None),          # 80 % again: fires again
    ]

    def test_warnings_follow_usage(self):
        address = "warn@example.test"
        st, doc, _ = self.d.http("POST", "/v1/mailboxes", {"address": address,
                                                           "storage_limit_bytes": 1000,
                                                           "message_limit": 10})
        self.assertEqual(st, 201, doc)
        t = self.token(address)
        self.assertEqual(self.view(t)["warnings"], {"storage": None, "messages": None})

        def warning(level, what):
            return None if level is None else {"level": level,
                                               "text": f"{what} reached {level} % of its limit"}
        for i, (how, nbytes, count, ws, wm) in enumerate(self.WARNING_STEPS):
            with self.subTest(step=i, how=how, bytes=nbytes, messages=count):
                if how == "set":
                    st, doc, _ = self.d.http("PUT", f"/v1/mailboxes/{address}/usage",
                                             {"bytes": nbytes, "messages": count,
                                              "source": "test"})
                else:
                    st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
                        {"mailbox": address, "bytes": nbytes, "messages": count,
                         "key": f"warn-test-{i}"}]})
                self.assertEqual(st, 200, doc)
                used = doc["usage"] if how == "set" else doc["results"][0]["usage"]
                want = {"storage": warning(ws, "Storage"),
                        "messages": warning(wm, "Message count")}
                # the view learns of the new usage and levels through NOTIFY, together
                def seen():
                    doc = self.view(t)
                    return doc["storage"]["used"], doc["warnings"]
                got = mqtest.eventually(seen, (used["bytes"], want))
                self.assertEqual(got, (used["bytes"], want))
                # the mailbox document says the same
                st, mdoc, _ = self.d.http("GET", f"/v1/mailboxes/{address}")
                self.assertEqual(st, 200)
                self.assertEqual(mdoc["warnings"], {"storage": ws, "messages": wm})

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
