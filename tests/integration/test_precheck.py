"""GET/POST /v1/precheck: a precheck token learns, per recipient, only what an SMTP RCPT would
tell (accept, mailbox_full, too_big with the size that fits, unknown), reaches nothing else,
and is rate-limited per token. The threat model is in api-docs/openapi.yaml."""
import unittest

import mqtest

PRE = "/v1/precheck"


class Precheck(mqtest.SeededTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = mqtest.Daemon(cls.db.conninfo, precheck_rate=1000, precheck_burst=1000)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        super().tearDownClass()

    @classmethod
    def token(cls, d, scope="precheck"):
        st, doc, _ = d.http("POST", "/v1/tokens", {"name": scope, "scope": scope})
        assert st == 201, doc
        t = doc["token"]
        mqtest.eventually(lambda: d.http("GET", "/v1/health", token=t)[0], 200)
        mqtest.eventually(lambda: d.http("GET", f"{PRE}?recipient=x@example.test",
                                         token=t)[0] in (200, 403), True)
        return t

    def setUp(self):
        if not hasattr(Precheck, "tok"):
            Precheck.tok = self.token(self.d)

    def many(self, recipients, size=0, token=None):
        st, doc, r = self.d.http("POST", PRE, {"recipients": recipients, "size": size},
                                 token=token or self.tok)
        self.assertEqual(st, 200, doc)
        return doc["results"]

    def test_answers(self):
        res = self.many(["user1@example.test", "full@example.test", "counted@example.test",
                         "team@example.test", "allfull@example.test", "tofull@example.test",
                         "box@catch.test", "anything@catch.test"], size=1000)
        self.assertEqual([r["status"] for r in res],
                         ["accept", "mailbox_full", "mailbox_full", "accept", "mailbox_full",
                          "mailbox_full", "accept", "mailbox_full"])
        # the domain pool full: mailbox_full too, nothing says which limit
        self.assertEqual(self.many(["p1@pool.test"], size=10)[0],
                         {"recipient": "p1@pool.test", "status": "mailbox_full"})

    def test_too_big_says_the_size_that_fits(self):
        res = self.many(["small@example.test", "user1@example.test"], size=20 * 1024 * 1024)
        self.assertEqual(res[0], {"recipient": "small@example.test", "status": "too_big",
                                  "max_message_size": 1000})
        # the domain's 10 MiB message limit, not the mailbox's 1 MiB of room
        self.assertEqual(res[1], {"recipient": "user1@example.test", "status": "too_big",
                                  "max_message_size": 10 * 1024 * 1024})

    def test_like_rcpt_with_size(self):
        """What RCPT with SIZE= would tell: a message too big for the room left is refused as
        the mailbox being full (varying the size finds the room, at precheck_rate)."""
        res = self.many(["user1@example.test"], size=2 * 1024 * 1024)
        self.assertEqual(res[0]["status"], "mailbox_full")

    def test_too_big_for_every_target_of_an_alias(self):
        """The size that fits an alias is the largest some target takes."""
        for body in ({"name": "big.test"},):
            self.d.http("POST", "/v1/domains", body)
        for address, limit in (("a@big.test", 1000), ("b@big.test", 3000)):
            self.d.http("POST", "/v1/mailboxes", {"address": address, "max_message_size": limit})
        self.d.http("POST", "/v1/aliases", {"address": "ab@big.test",
                                            "targets": ["a@big.test", "b@big.test"]})
        got = mqtest.eventually(lambda: self.many(["ab@big.test"], size=6000)[0],
                                {"recipient": "ab@big.test", "status": "too_big",
                                 "max_message_size": 3000})
        self.assertEqual(got, {"recipient": "ab@big.test", "status": "too_big",
                               "max_message_size": 3000})
        self.assertEqual(self.many(["ab@big.test"], size=2000)[0]["status"], "accept")

    def test_too_big_for_one_target_under_alias_policy_all(self):
        """Under alias_policy = all every target must take the message: the size that fits
        is the smallest target's limit."""
        self.d.http("POST", "/v1/domains", {"name": "small.test"})
        for address, limit in (("c@small.test", 1000), ("d@small.test", 3000)):
            self.d.http("POST", "/v1/mailboxes", {"address": address, "max_message_size": limit})
        self.d.http("POST", "/v1/aliases", {"address": "cd@small.test",
                                            "targets": ["c@small.test", "d@small.test"]})
        d = mqtest.Daemon(self.db.conninfo, token=self.d.token, alias_policy="all",
                          policy_socket="", policy_tcp_listen="")
        try:
            tok = self.token(d)
            want = {"recipient": "cd@small.test", "status": "too_big", "max_message_size": 1000}
            got = mqtest.eventually(lambda: d.http(
                "POST", PRE, {"recipients": ["cd@small.test"], "size": 2000},
                token=tok)[1]["results"][0], want)
            self.assertEqual(got, want)
            st, doc, _ = d.http("POST", PRE, {"recipients": ["cd@small.test"], "size": 900},
                                token=tok)
            self.assertEqual(doc["results"][0]["status"], "accept")
        finally:
            d.cleanup()
        # the same alias under any: the largest limit
        self.assertEqual(mqtest.eventually(lambda: self.many(["cd@small.test"], size=2000)[0],
                                           {"recipient": "cd@small.test", "status": "accept"}),
                         {"recipient": "cd@small.test", "status": "accept"})

    def test_unknown_reveals_nothing(self):
        odd = ["nobody@example.test", "nobody@elsewhere.test", "off@example.test",
               "not an address", "a@b@c", "x" * 300 + "@example.test", "\u00e9@example.test"]
        res = self.many(odd, size=1)
        for rcpt, r in zip(odd, res):
            self.assertEqual(r, {"recipient": rcpt, "status": "unknown"}, rcpt)
        st, doc, _ = self.d.http("GET", f"{PRE}?recipient=nobody@elsewhere.test&size=5",
                                 token=self.tok)
        self.assertEqual(doc, {"size": 5, "results": [{"recipient": "nobody@elsewhere.test",
                                                       "status": "unknown"}]})

    def test_no_figures_ever(self):
        res = self.many(["user1@example.test", "full@example.test", "small@example.test",
                         "team@example.test"], size=5000)
        for r in res:
            self.assertLessEqual(set(r), {"recipient", "status", "max_message_size"}, r)

    def test_a_precheck_token_reaches_nothing_else(self):
        for method, path, body in [
                ("GET", "/v1/check?recipient=user1@example.test", None),
                ("POST", "/v1/check", {"recipients": ["user1@example.test"]}),
                ("GET", "/v1/mailboxes/user1@example.test/usage", None),
                ("GET", "/v1/mailboxes/user1@example.test", None),
                ("GET", "/v1/mailboxes", None),
                ("GET", "/v1/self", None),
                ("GET", "/v1/export", None),
                ("POST", "/v1/usage", {"reports": []}),
                ("POST", "/v1/tokens", {"name": "x", "scope": "precheck"})]:
            st, doc, _ = self.d.http(method, path, body, token=self.tok)
            self.assertEqual((st, doc["error"]), (403, "forbidden"), path)
        # and other scopes may not precheck (admin may: it may do everything)
        read = self.token(self.d, "read")
        st, _, _ = self.d.http("GET", f"{PRE}?recipient=user1@example.test", token=read)
        self.assertEqual(st, 403)
        st, _, _ = self.d.http("GET", f"{PRE}?recipient=user1@example.test")
        self.assertEqual(st, 200)

    def test_bad_requests(self):
        st, doc, _ = self.d.http("GET", PRE, token=self.tok)
        self.assertEqual((st, doc["error"]), (400, "missing_parameter"))
        st, doc, _ = self.d.http("GET", f"{PRE}?recipient=a@b.test&size=-1", token=self.tok)
        self.assertEqual((st, doc["error"]), (400, "invalid_parameter"))
        st, doc, _ = self.d.http("POST", PRE, {"recipients": []}, token=self.tok)
        self.assertEqual(st, 400)
        st, doc, _ = self.d.http("POST", PRE, {"recipients": ["a@b.test"] * 1001},
                                 token=self.tok)
        self.assertEqual((st, doc["error"]), (413, "too_many_recipients"))


class RateLimit(mqtest.SeededTestCase):
    def test_each_token_has_its_own_budget(self):
        d = mqtest.Daemon(self.db.conninfo, precheck_rate=1, precheck_burst=5)
        try:
            a, b = Precheck.token(d), Precheck.token(d)
            # the two warm-up calls of token() cost one each
            st, _, _ = d.http("POST", PRE, {"recipients": ["user1@example.test"] * 3},
                              token=a)
            self.assertEqual(st, 200)
            st, doc, r = d.http("POST", PRE, {"recipients": ["user1@example.test"] * 3},
                                token=a)
            self.assertEqual((st, doc["error"]), (429, "rate_limited"))
            self.assertGreaterEqual(int(r.getheader("Retry-After")), 1)
            # more than a burst can never pass: refused as such, nothing charged
            st, doc, r = d.http("POST", PRE, {"recipients": ["user1@example.test"] * 6},
                                token=b)
            self.assertEqual((st, doc["error"]), (413, "too_many_recipients"))
            # b's own budget is untouched by a's
            st, _, _ = d.http("POST", PRE, {"recipients": ["user1@example.test"] * 3},
                              token=b)
            self.assertEqual(st, 200)
            # a refill: one a second
            st = mqtest.eventually(
                lambda: d.http("GET", f"{PRE}?recipient=user1@example.test", token=a)[0], 200,
                timeout=5)
            self.assertEqual(st, 200)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
