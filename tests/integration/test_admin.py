"""The admin API against the real daemon and a real PostgreSQL: tokens and scopes, every
resource's success and failure cases, ETag/If-Match, lists, the audit log, CORS, and hostile
input. Every response is also checked against api-docs/openapi.yaml."""
import datetime
import json
import time
import unittest
import urllib.parse

import mqtest
import openapi

DOMAINS = "/v1/domains"
MAILBOXES = "/v1/mailboxes"
ALIASES = "/v1/aliases"
TOKENS = "/v1/tokens"


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


class AdminBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        cls.d = mqtest.Daemon(cls.db.conninfo, **getattr(cls, "daemon_options", {}))

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def call(self, method, path, body=None, headers=None, token=True, want=None):
        """A request whose response must match the spec; want: the expected status."""
        st, doc, resp = self.d.http(method, path, body, headers, token=token)
        openapi.validate(method, path, st, doc)
        if want is not None:
            self.assertEqual(st, want, f"{method} {path}: {doc}")
        if st >= 400:
            self.assertIsInstance(doc, dict, f"{method} {path}: not a JSON error")
            self.assertIsInstance(doc.get("error"), str)
            self.assertIsInstance(doc.get("message"), str)
        return st, doc, resp

    def make_token(self, scope, name=None, **extra):
        body = {"name": name or f"{scope}-token", "scope": scope, **extra}
        st, doc, _ = self.call("POST", TOKENS, body, want=201)
        self.assertTrue(doc["token"].startswith(f"mqt_{doc['id']}_"))
        # a new token reaches the daemon's view by notification, a moment after the 201
        mqtest.eventually(lambda: self.call("GET", TOKENS, token=doc["token"])[0] != 401, True)
        return doc

    def snapshot(self):
        """Everything an admin request could change."""
        return self.db.sql(
            "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM mailboxes),"
            " (SELECT count(*) FROM aliases), (SELECT count(*) FROM alias_targets),"
            " (SELECT count(*) FROM api_tokens), (SELECT count(*) FROM audit_log),"
            " (SELECT coalesce(sum(version), 0) FROM mailboxes),"
            " (SELECT coalesce(sum(version), 0) FROM domains),"
            " (SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL)")


class Auth(AdminBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, _, _ = cls.d.http("POST", DOMAINS, {"name": "auth.test"})
        assert st == 201
        for a in ("own@auth.test", "other@auth.test"):
            st, _, _ = cls.d.http("POST", MAILBOXES, {"address": a, "storage_limit_bytes": 1000})
            assert st == 201

    def sample_paths(self):
        """A concrete request for every route the daemon serves."""
        out = []
        for method, pattern in sorted(openapi.served_routes()):
            path = pattern.replace("{}", "1" if pattern.startswith(TOKENS)
                                   else "own@auth.test" if "mailboxes" in pattern
                                   else "auth.test")
            if pattern == "/v1/check" and method == "GET":
                path += "?recipient=own@auth.test"
            out.append((method, path))
        return out

    def test_every_route_but_health_needs_a_token(self):
        for method, path in self.sample_paths():
            body = {} if method in ("POST", "PUT", "PATCH") else None
            for token in (False, "mqt_1_" + "x" * 43, "garbage", "mqt_999999_" + "A" * 43):
                st, doc, resp = self.call(method, path, body, token=token)
                if path == "/v1/health":
                    self.assertEqual(st, 200)
                    continue
                self.assertEqual(st, 401, (method, path, token))
                # the same answer whatever was wrong: nothing to learn from it
                self.assertEqual(doc, {"error": "unauthorized",
                                       "message": "a valid bearer token is required"})
                self.assertEqual(resp.getheader("WWW-Authenticate"), 'Bearer realm="mailquota"')

    def test_authorization_header_forms(self):
        tok = self.d.token
        for value, want in ((f"Bearer {tok}", 200), (f"bearer {tok}", 200),
                            (f"Basic {tok}", 401), (tok, 401), (f"Bearer {tok}x", 401),
                            (f"Bearer {tok[:-1]}", 401), ("Bearer " + "A" * 5000, 401)):
            st, _, _ = self.call("GET", DOMAINS, headers={"Authorization": value}, token=False)
            self.assertEqual(st, want, value[:40])

    def test_only_a_hash_is_stored(self):
        doc = self.make_token("read", "hash-check")
        row = self.db.sql(f"SELECT encode(secret_hash, 'hex') FROM api_tokens WHERE id = {doc['id']}")
        self.assertEqual(len(row), 64)
        import hashlib
        self.assertEqual(row, hashlib.sha256(doc["token"].encode()).hexdigest())
        dump = self.db.sql("SELECT string_agg(t::text, ' ') FROM api_tokens t")
        self.assertNotIn(doc["token"].split("_", 2)[2], dump)
        # the list never shows secrets
        _, page, _ = self.call("GET", TOKENS, want=200)
        self.assertNotIn("token", json.dumps([i.keys() and list(i) for i in page["items"]]))
        self.assertNotIn(doc["token"], json.dumps(page))

    def test_scopes(self):
        read = self.make_token("read")["token"]
        usage = self.make_token("usage")["token"]
        # read: every GET but tokens, no change
        self.call("GET", DOMAINS, token=read, want=200)
        self.call("GET", MAILBOXES + "/own@auth.test", token=read, want=200)
        self.call("GET", "/v1/audit", token=read, want=200)
        self.call("GET", q("/v1/check", recipient="own@auth.test"), token=read, want=200)
        self.call("GET", TOKENS, token=read, want=403)
        self.call("POST", DOMAINS, {"name": "no.test"}, token=read, want=403)
        self.call("PATCH", MAILBOXES + "/own@auth.test", {"enabled": False}, token=read,
                  want=403)
        self.call("DELETE", MAILBOXES + "/own@auth.test", token=read, want=403)
        self.call("POST", "/v1/usage",
                  {"reports": [{"mailbox": "own@auth.test", "bytes": 1, "key": "r1"}]},
                  token=read, want=403)
        # usage: report, recalculate and check; nothing else
        self.call("POST", "/v1/usage",
                  {"reports": [{"mailbox": "own@auth.test", "bytes": 1, "key": "u1"}]},
                  token=usage, want=200)
        self.call("PUT", MAILBOXES + "/own@auth.test/usage", {"bytes": 5, "source": "t"},
                  token=usage, want=200)
        self.call("GET", q("/v1/check", recipient="own@auth.test"), token=usage, want=200)
        self.call("GET", DOMAINS, token=usage, want=403)
        self.call("POST", TOKENS, {"name": "x", "scope": "admin"}, token=usage, want=403)
        # a 403 says nothing about the object: same body for existing and missing ones
        a = self.call("DELETE", MAILBOXES + "/own@auth.test", token=read)[1]
        b = self.call("DELETE", MAILBOXES + "/nobody@auth.test", token=read)[1]
        self.assertEqual(a, b)

    def test_self_token_sees_only_its_mailbox(self):
        own = self.make_token("self", mailbox="Own@Auth.Test")
        self.assertEqual(own["mailbox"], "own@auth.test")
        t = own["token"]
        mqtest.eventually(lambda: self.call("GET", MAILBOXES + "/own@auth.test", token=t)[0],
                          200)
        self.call("GET", MAILBOXES + "/own@auth.test/usage", token=t, want=200)
        self.call("GET", q("/v1/check", recipient="OWN@auth.test", size=10), token=t, want=200)
        st, doc, _ = self.call("POST", "/v1/check", {"recipients": ["own@auth.test"]}, token=t)
        self.assertEqual(st, 200)
        forbidden = [("GET", MAILBOXES + "/other@auth.test"),
                     ("GET", MAILBOXES + "/nobody@auth.test"),
                     ("GET", MAILBOXES + "/other@auth.test/usage"),
                     ("GET", q("/v1/check", recipient="other@auth.test")),
                     ("GET", q("/v1/check", recipient="nobody@auth.test")),
                     ("GET", q("/v1/check", recipient="not an address")),
                     ("GET", MAILBOXES), ("GET", DOMAINS), ("GET", "/v1/audit"),
                     ("PATCH", MAILBOXES + "/own@auth.test"),
                     ("PUT", MAILBOXES + "/own@auth.test/usage")]
        bodies = set()
        for method, path in forbidden:
            st, doc, _ = self.call(method, path, {} if method in ("PATCH", "PUT") else None,
                                   token=t)
            self.assertEqual(st, 403, (method, path))
            bodies.add(json.dumps(doc))
        self.assertEqual(len(bodies), 1)  # indistinguishable
        st, _, _ = self.call("POST", "/v1/check",
                             {"recipients": ["own@auth.test", "other@auth.test"]}, token=t)
        self.assertEqual(st, 403)

    def test_self_token_needs_a_mailbox(self):
        before = self.snapshot()
        self.call("POST", TOKENS, {"name": "s", "scope": "self"}, want=400)
        self.call("POST", TOKENS, {"name": "s", "scope": "admin", "mailbox": "own@auth.test"},
                  want=400)
        self.call("POST", TOKENS, {"name": "s", "scope": "self", "mailbox": "no@auth.test"},
                  want=422)
        self.call("POST", TOKENS, {"name": "s", "scope": "root"}, want=400)
        self.assertEqual(self.snapshot(), before)

    def test_revoked_and_expired_tokens(self):
        doc = self.make_token("read", "to-revoke")
        t = doc["token"]
        mqtest.eventually(lambda: self.call("GET", DOMAINS, token=t)[0], 200)
        self.call("DELETE", f"{TOKENS}/{doc['id']}", want=204)
        self.assertEqual(mqtest.eventually(lambda: self.call("GET", DOMAINS, token=t)[0], 401),
                         401)
        self.call("DELETE", f"{TOKENS}/{doc['id']}", want=204)  # idempotent
        self.call("DELETE", f"{TOKENS}/999999", want=404)
        self.call("DELETE", f"{TOKENS}/abc", want=400)
        _, got, _ = self.call("GET", f"{TOKENS}/{doc['id']}", want=200)
        self.assertIsNotNone(got["revoked_at"])
        _, page, _ = self.call("GET", TOKENS, want=200)
        self.assertNotIn(doc["id"], [i["id"] for i in page["items"]])
        _, page, _ = self.call("GET", q(TOKENS, include_revoked="true"), want=200)
        self.assertIn(doc["id"], [i["id"] for i in page["items"]])
        # an expiry already past makes no token (1970-01-01T00:00:00Z would read as "never")
        for past in ("2020-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1900-01-01T00:00:00Z"):
            _, err, _ = self.call("POST", TOKENS, {"name": "x", "scope": "read",
                                                   "expires_at": past}, want=400)
            self.assertEqual(err["field"], "expires_at")
        soon = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        old = self.make_token("read", "expiring", expires_at=soon)["token"]
        later = self.make_token("read", "later", expires_at="2999-01-01T00:00:00Z")["token"]
        mqtest.eventually(lambda: self.call("GET", DOMAINS, token=later)[0], 200)
        time.sleep(3)
        self.call("GET", DOMAINS, token=old, want=401)

    def test_token_of_a_deleted_mailbox_stops_working(self):
        self.call("POST", MAILBOXES, {"address": "gone@auth.test"}, want=201)
        t = self.make_token("self", mailbox="gone@auth.test")["token"]
        mqtest.eventually(lambda: self.call("GET", MAILBOXES + "/gone@auth.test", token=t)[0],
                          200)
        self.call("DELETE", MAILBOXES + "/gone@auth.test", want=204)
        self.assertEqual(mqtest.eventually(
            lambda: self.call("GET", MAILBOXES + "/gone@auth.test", token=t)[0], 401), 401)


class Resources(AdminBase):
    def test_domain_lifecycle(self):
        st, doc, resp = self.call("POST", DOMAINS, {"name": "Life.Test", "pool_limit_bytes": 10**9,
                                                    "grace_percent": 10}, want=201)
        self.assertEqual(resp.getheader("Location"), "/v1/domains/life.test")
        etag = resp.getheader("ETag")
        self.assertEqual(etag, f'"{doc["etag"]}"')
        self.assertEqual((doc["name"], doc["pool_limit_bytes"], doc["grace_percent"],
                          doc["default_storage_limit_bytes"]), ("life.test", 10**9, 10, None))
        _, got, resp = self.call("GET", DOMAINS + "/LIFE.test", want=200)
        self.assertEqual(resp.getheader("ETag"), etag)
        st, body, resp = self.call("GET", DOMAINS + "/life.test", headers={"If-None-Match": etag})
        self.assertEqual((st, body), (304, None))
        self.call("POST", DOMAINS, {"name": "life.test"}, want=409)
        # two admins: both read the same ETag, the first write wins, the second gets 412
        _, a, _ = self.call("PATCH", DOMAINS + "/life.test", {"default_storage_limit_bytes": 5000},
                            headers={"If-Match": etag}, want=200)
        self.assertNotEqual(f'"{a["etag"]}"', etag)
        before = self.snapshot()
        _, b, resp = self.call("PATCH", DOMAINS + "/life.test",
                               {"default_storage_limit_bytes": 9000},
                               headers={"If-Match": etag}, want=412)
        self.assertEqual(b["error"], "precondition_failed")
        self.assertEqual(resp.getheader("ETag"), f'"{a["etag"]}"')
        self.assertEqual(self.snapshot(), before)
        _, now, _ = self.call("GET", DOMAINS + "/life.test", want=200)
        self.assertEqual(now["default_storage_limit_bytes"], 5000)
        self.call("PATCH", DOMAINS + "/life.test", {"pool_limit_bytes": None}, want=200)
        self.call("PATCH", DOMAINS + "/life.test", {"name": "x.test"}, want=400)
        self.call("DELETE", DOMAINS + "/life.test", headers={"If-Match": etag}, want=412)
        self.call("DELETE", DOMAINS + "/life.test", headers={"If-Match": '"1.999"'}, want=412)
        self.call("DELETE", DOMAINS + "/life.test", want=204)
        self.call("GET", DOMAINS + "/life.test", want=404)
        self.call("PATCH", DOMAINS + "/life.test", {"grace_percent": 1}, want=404)
        self.call("DELETE", DOMAINS + "/life.test", want=404)
        # a re-created domain never matches an old ETag
        self.call("POST", DOMAINS, {"name": "life.test"}, want=201)
        self.call("PATCH", DOMAINS + "/life.test", {"grace_percent": 1},
                  headers={"If-Match": etag}, want=412)

    def test_mailbox_lifecycle_reaches_checks(self):
        self.call("POST", DOMAINS, {"name": "mb.test", "default_storage_limit_bytes": 1000},
                  want=201)
        self.call("POST", MAILBOXES, {"address": "x@nodomain.test"}, want=422)
        st, doc, resp = self.call("POST", MAILBOXES, {"address": "Ann@MB.test"}, want=201)
        self.assertEqual(resp.getheader("Location"), "/v1/mailboxes/ann@mb.test")
        self.assertEqual((doc["address"], doc["domain"], doc["storage_limit_bytes"],
                          doc["effective"]["storage_limit_bytes"], doc["enabled"]),
                         ("ann@mb.test", "mb.test", None, 1000, True))
        self.call("POST", MAILBOXES, {"address": "ann@mb.test"}, want=409)

        def verdict(size):
            return self.call("GET", q("/v1/check", recipient="ann@mb.test", size=size))[1][
                "verdict"]
        self.assertEqual(mqtest.eventually(lambda: verdict(2000), "over_quota"), "over_quota")
        self.call("PATCH", MAILBOXES + "/ann@mb.test", {"storage_limit_bytes": 10**6}, want=200)
        self.assertEqual(mqtest.eventually(lambda: verdict(2000), "accept"), "accept")
        # usage changes do not change the ETag: it guards what admins edit
        _, a, _ = self.call("GET", MAILBOXES + "/ann@mb.test", want=200)
        self.call("POST", "/v1/usage",
                  {"reports": [{"mailbox": "ann@mb.test", "bytes": 500, "key": "e1"}]}, want=200)
        _, b, _ = self.call("GET", MAILBOXES + "/ann@mb.test", want=200)
        self.assertEqual((a["etag"], b["usage"]["bytes"]), (b["etag"], 500))
        _, c, _ = self.call("PATCH", MAILBOXES + "/ann@mb.test",
                            {"enabled": False, "message_limit": 10, "max_message_size": 100,
                             "grace_percent": 5}, headers={"If-Match": f'"{b["etag"]}"'},
                            want=200)
        self.assertEqual((c["enabled"], c["message_limit"], c["max_message_size"],
                          c["grace_percent"]), (False, 10, 100, 5))
        self.call("DELETE", MAILBOXES + "/ann@mb.test", want=204)
        self.assertEqual(mqtest.eventually(
            lambda: self.call("GET", q("/v1/check", recipient="ann@mb.test"))[1]["match"],
            "none"), "none")

    def test_aliases(self):
        self.call("POST", DOMAINS, {"name": "al.test"}, want=201)
        for a in ("a@al.test", "b@al.test", "c@al.test"):
            self.call("POST", MAILBOXES, {"address": a}, want=201)
        before = self.snapshot()
        self.call("POST", ALIASES, {"address": "list@al.test", "targets": ["zz@al.test"]},
                  want=422)
        self.call("POST", ALIASES, {"address": "list@al.test", "targets": []}, want=400)
        self.call("POST", ALIASES, {"address": "list@al.test"}, want=400)
        self.call("POST", ALIASES, {"address": "list@no.test", "targets": ["a@al.test"]},
                  want=422)
        self.assertEqual(self.snapshot(), before)
        _, doc, resp = self.call("POST", ALIASES, {"address": "List@al.test",
                                                   "targets": ["A@al.test", "b@al.test"]},
                                 want=201)
        self.assertEqual(doc["targets"], ["a@al.test", "b@al.test"])
        self.assertEqual(resp.getheader("Location"), "/v1/aliases/list@al.test")
        _, doc, _ = self.call("PATCH", ALIASES + "/list@al.test",
                              {"add_targets": ["c@al.test"], "remove_targets": ["a@al.test"]},
                              want=200)
        self.assertEqual(doc["targets"], ["b@al.test", "c@al.test"])
        _, doc, _ = self.call("PATCH", ALIASES + "/list@al.test", {"targets": ["a@al.test"]},
                              want=200)
        self.assertEqual(doc["targets"], ["a@al.test"])
        self.call("PATCH", ALIASES + "/list@al.test", {"remove_targets": ["a@al.test"]},
                  want=422)
        _, doc, resp = self.call("POST", ALIASES, {"address": "@al.test",
                                                   "targets": ["c@al.test"]}, want=201)
        self.assertTrue(doc["catch_all"])
        self.assertEqual(resp.getheader("Location"), "/v1/aliases/@al.test")
        self.assertEqual(mqtest.eventually(
            lambda: self.call("GET", q("/v1/check", recipient="anything@al.test"))[1]["match"],
            "catchall"), "catchall")
        self.call("GET", ALIASES + "/@al.test", want=200)
        _, page, _ = self.call("GET", q(ALIASES, domain="al.test"), want=200)
        self.assertEqual([a["address"] for a in page["items"]], ["@al.test", "list@al.test"])
        self.call("DELETE", ALIASES + "/@al.test", want=204)
        self.call("DELETE", ALIASES + "/@al.test", want=404)

    def test_recalculation_is_audited(self):
        self.call("POST", DOMAINS, {"name": "re.test"}, want=201)
        self.call("POST", MAILBOXES, {"address": "r@re.test"}, want=201)
        _, doc, _ = self.call("PUT", MAILBOXES + "/r@re.test/usage",
                              {"bytes": 1234, "messages": 3, "source": "doveadm"}, want=200)
        self.assertEqual(doc["usage"]["bytes"], 1234)
        _, page, _ = self.call("GET", q("/v1/audit", object="r@re.test", action="usage.set"),
                               want=200)
        e = page["items"][0]
        self.assertEqual((e["before"]["usage"]["bytes"], e["after"]["usage"]["bytes"]),
                         (0, 1234))
        self.call("PUT", MAILBOXES + "/nobody@re.test/usage", {"bytes": 1, "source": "x"},
                  want=404)


class Lists(AdminBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d.http("POST", DOMAINS, {"name": "l1.test", "default_storage_limit_bytes": 1000})
        cls.d.http("POST", DOMAINS, {"name": "l2.test"})
        for i in range(25):
            cls.d.http("POST", MAILBOXES, {"address": f"m{i:02d}@l1.test"})
        cls.d.http("POST", MAILBOXES, {"address": "u@l2.test"})  # unlimited
        cls.d.http("POST", MAILBOXES, {"address": "off@l2.test", "enabled": False,
                                       "storage_limit_bytes": 100})
        # usage 0, 40, 80, ... 960 of 1000; m24 over quota (1200)
        cls.db.sql("UPDATE mailboxes SET used_bytes = substr(local_part, 2)::int * 40"
                   " WHERE local_part ~ '^m[0-9]+$'")
        cls.db.sql("UPDATE mailboxes SET used_bytes = 1200 WHERE local_part = 'm24'")
        cls.db.sql("UPDATE mailboxes SET used_bytes = 100 WHERE local_part = 'off'")

    def pages(self, path, **params):
        out, cursor, n = [], None, 0
        while True:
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            _, doc, _ = self.call("GET", q(path, **p), want=200)
            out += doc["items"]
            cursor = doc["next_cursor"]
            n += 1
            if cursor is None:
                return out, n

    def test_pagination_visits_everything_once(self):
        items, n = self.pages(MAILBOXES, limit=10)
        addrs = [i["address"] for i in items]
        self.assertEqual(n, 3)
        self.assertEqual(addrs, sorted(addrs))
        self.assertEqual(len(addrs), 27)
        back, _ = self.pages(MAILBOXES, limit=7, sort="-address")
        self.assertEqual([i["address"] for i in back], addrs[::-1])

    def test_sort_by_usage(self):
        items, _ = self.pages(MAILBOXES, limit=4, sort="-usage", domain="l1.test")
        used = [i["usage"]["bytes"] for i in items]
        self.assertEqual(used, sorted(used, reverse=True))
        self.assertEqual(items[0]["address"], "m24@l1.test")

    def test_filters(self):
        def addrs(**p):
            return sorted(i["address"] for i in self.pages(MAILBOXES, limit=1000, **p)[0])
        self.assertEqual(addrs(over_quota="true"), ["m24@l1.test"])
        self.assertEqual(len(addrs(over_quota="false")), 26)
        # exactly 80 % is "at least 80 %", 81 % is not (m20 = 800 of 1000)
        self.assertIn("m20@l1.test", addrs(min_usage_percent=80))
        self.assertNotIn("m20@l1.test", addrs(min_usage_percent=81))
        self.assertEqual(addrs(min_usage_percent=90), ["m23@l1.test", "m24@l1.test",
                                                       "off@l2.test"])
        self.assertEqual(addrs(domain="L2.test"), ["off@l2.test", "u@l2.test"])
        self.assertEqual(addrs(enabled="false"), ["off@l2.test"])
        self.assertEqual(addrs(prefix="m1"), [f"m{i}@l1.test" for i in range(10, 20)])
        self.assertEqual(addrs(prefix="m_"), [])   # _ and % are themselves, not wildcards
        self.assertEqual(addrs(prefix="%"), [])
        self.assertEqual(addrs(prefix="m24@"), ["m24@l1.test"])
        self.assertEqual(addrs(domain="none.test"), [])
        time.sleep(0.01)
        stamp = self.db.sql("SELECT to_char(now() AT TIME ZONE 'UTC',"
                            " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        self.call("PATCH", MAILBOXES + "/m03@l1.test", {"grace_percent": 1}, want=200)
        self.assertEqual(addrs(updated_since=stamp), ["m03@l1.test"])
        _, doms, _ = self.call("GET", q(DOMAINS, prefix="l"), want=200)
        self.assertEqual([x["name"] for x in doms["items"]], ["l1.test", "l2.test"])

    def test_bad_parameters(self):
        cases = [("limit", "0"), ("limit", "1001"), ("limit", "ten"), ("limit", "-1"),
                 ("min_usage_percent", "-1"), ("min_usage_percent", "1e3"),
                 ("min_usage_percent", "99999999999999999999"), ("over_quota", "maybe"),
                 ("enabled", "1"), ("updated_since", "yesterday"), ("domain", "bad domain"),
                 ("domain", "x" * 300), ("sort", "password"), ("cursor", "%%%"),
                 ("cursor", "WyJhZGRyZXNzIiwiYSIsIjEiXQ"),  # a cursor of another sort order
                 ("cursor", "x" * 2000), ("bogus", "1"), ("prefix", "")]
        for name, value in cases:
            params = {"sort": "-address"}
            params[name] = value
            st, doc, _ = self.call("GET", q(MAILBOXES, **params))
            self.assertEqual(st, 400, (name, value, doc))
        st, _, _ = self.call("GET", MAILBOXES + "?limit=5&limit=6")
        self.assertEqual(st, 400)
        # a cursor from one sort order is refused by another
        _, doc, _ = self.call("GET", q(MAILBOXES, limit=2), want=200)
        self.call("GET", q(MAILBOXES, limit=2, sort="usage", cursor=doc["next_cursor"]),
                  want=400)
        self.call("GET", q(MAILBOXES, limit=2, cursor=doc["next_cursor"]), want=200)

    def test_audit_log(self):
        self.call("POST", DOMAINS, {"name": "audit.test"}, want=201)
        self.call("PATCH", DOMAINS + "/audit.test", {"max_message_size": 1000}, want=200)
        self.call("PATCH", DOMAINS + "/audit.test", {"max_message_size": 1000}, want=200)  # no-op
        self.call("DELETE", DOMAINS + "/audit.test", want=204)
        _, page, _ = self.call("GET", q("/v1/audit", object="audit.test"), want=200)
        acts = [e["action"] for e in page["items"]]
        self.assertEqual(acts, ["domain.delete", "domain.update", "domain.create"])
        upd = page["items"][1]
        self.assertEqual((upd["before"]["max_message_size"], upd["after"]["max_message_size"]),
                         (None, 1000))
        self.assertEqual(upd["token_name"], "test-admin")
        self.assertIsNone(page["items"][0]["after"])
        tok = upd["token_id"]
        # newest first, in pages
        items, n = self.pages("/v1/audit", limit=5, token=tok)
        ids = [e["id"] for e in items]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertGreater(n, 1)
        # a list's cursor is no audit cursor, and garbage is no cursor at all
        _, boxes, _ = self.call("GET", q(MAILBOXES, limit=1), want=200)
        for bad in (boxes["next_cursor"], "WyItaWQiLCJ4IiwieCJd", "!!", "x" * 800):
            self.call("GET", q("/v1/audit", cursor=bad), want=400)
        _, none, _ = self.call("GET", q("/v1/audit", until="2000-01-01T00:00:00Z"), want=200)
        self.assertEqual(none["items"], [])


class HostileInput(AdminBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d.http("POST", DOMAINS, {"name": "h.test"})
        cls.d.http("POST", MAILBOXES, {"address": "m@h.test"})
        cls.d.http("POST", ALIASES, {"address": "al@h.test", "targets": ["m@h.test"]})

    # shaped like injections and not valid names: refused
    INJECTIONS = ["x'; DROP TABLE mailboxes; --", "a' OR 1=1", "\u202e", "<script> x",
                  "a\u0000b", "\u00e9\u0301"]

    def bad_bodies(self, key):
        big = 2 ** 63
        out = ["not json", "[]", "null", "1", '{"a":1,"a":2}', "{", "{\"x\": \"\\ud800\"}",
               {key: 1}, {key: None}, {key: ["x"]}, {key: ""}, {key: "x" * 100000},
               {"unknown": 1}, {key: "ok.test", "unknown": 1}]
        for fld in ("pool_limit_bytes", "storage_limit_bytes", "grace_percent"):
            out += [{fld: -1}, {fld: 1.5}, {fld: "10"}, {fld: True},
                    f'{{"{fld}": {big}}}', f'{{"{fld}": {2 ** 64}}}', f'{{"{fld}": 1e400}}']
        out += [{key: s + "@h.test"} for s in self.INJECTIONS]
        out += [{key: s} for s in self.INJECTIONS]
        return out

    def check_refused(self, method, path, bodies):
        before = self.snapshot()
        for body in bodies:
            hdrs = {"Content-Type": "application/json"}
            raw = body if isinstance(body, str) else json.dumps(body)
            st, doc, _ = self.call(method, path, raw, hdrs)
            self.assertTrue(400 <= st < 500, (method, path, body, st, doc))
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.db.sql("SELECT count(*) FROM mailboxes"), "1")

    def test_creates(self):
        self.check_refused("POST", DOMAINS, self.bad_bodies("name"))
        self.check_refused("POST", MAILBOXES, self.bad_bodies("address") + [
            {"address": "noat"}, {"address": "a@"}, {"address": "@h.test"},
            {"address": "a b@h.test"}, {"address": "a@b@h.test"}, {"address": "a\n@h.test"},
            {"address": "x" * 65 + "@h.test"}, {"address": "m@h.test"},
            {"address": "n@h.test", "enabled": "yes"}, {"address": "n@h.test", "enabled": None},
            {"address": "n@h.test", "grace_percent": 1001}])
        self.check_refused("POST", ALIASES, self.bad_bodies("address") + [
            {"address": "x@h.test", "targets": "m@h.test"},
            {"address": "x@h.test", "targets": [1]},
            {"address": "x@h.test", "targets": ["m@h.test"] * 1001},
            {"address": "x@h.test", "targets": ["m@h.test"], "add_targets": ["m@h.test"]},
            {"address": "x@h.test", "targets": ["nobody@h.test"]},
            {"address": "al@h.test", "targets": ["m@h.test"]}])
        self.check_refused("POST", TOKENS, [
            {}, {"name": "x"}, {"scope": "read"}, {"name": "", "scope": "read"},
            {"name": "x" * 101, "scope": "read"}, {"name": "a\tb", "scope": "read"},
            {"name": "x", "scope": "READ"}, {"name": "x", "scope": "read", "expires_at": "soon"},
            {"name": "x", "scope": "read", "id": 5}, {"name": "x", "scope": "read", "token": "y"}])

    def test_injection_shaped_valid_names_are_just_names(self):
        # quotes, $ and % are valid in a local part: stored verbatim, harmless
        names = ["x'OR'1'='1@h.test", "$1@h.test", "%s%n@h.test", "a\\b@h.test",
                 "--;@h.test"]
        for n in names:
            _, doc, resp = self.call("POST", MAILBOXES, {"address": n}, want=201)
            self.assertEqual(doc["address"], n.lower())
            loc = resp.getheader("Location")
            _, got, _ = self.call("GET", loc, want=200)
            self.assertEqual(got["address"], n.lower())
            self.call("DELETE", loc, want=204)
        self.assertEqual(self.db.sql("SELECT count(*) FROM mailboxes"), "1")
        self.assertEqual(self.db.sql("SELECT count(*) FROM domains"), "1")

    def test_updates(self):
        self.check_refused("PATCH", MAILBOXES + "/m@h.test", [
            {}, {"address": "z@h.test"}, {"storage_limit_bytes": -5},
            {"storage_limit_bytes": 1.0}, {"used_bytes": 0}, {"enabled": 0}, "[]",
            '{"storage_limit_bytes": 99999999999999999999}'])
        self.check_refused("PATCH", ALIASES + "/al@h.test", [
            {"targets": []}, {"remove_targets": ["m@h.test"]}, {"add_targets": [None]},
            {"add_targets": ["zz@h.test"]}])
        before = self.snapshot()
        st, _, _ = self.call("PATCH", MAILBOXES + "/m@h.test", {"enabled": False},
                             headers={"If-Match": "W/\"1.1\""})
        self.assertEqual(st, 400)
        st, _, _ = self.call("PATCH", MAILBOXES + "/m@h.test", {"enabled": False},
                             headers={"If-Match": "1.1"})
        self.assertEqual(st, 400)
        self.assertEqual(self.snapshot(), before)

    def test_paths(self):
        before = self.snapshot()
        for path, want in ((MAILBOXES + "/not-an-address", 400),
                           (MAILBOXES + "/" + "x" * 2000 + "@h.test", 400),
                           (MAILBOXES + "/a%00b@h.test", 400),
                           (DOMAINS + "/a%20b", 400), (DOMAINS + "/a@b", 400),
                           (ALIASES + "/@", 400), (TOKENS + "/0", 400), (TOKENS + "/-1", 400),
                           (TOKENS + "/99999999999999999999", 400),
                           (MAILBOXES + "/" + urllib.parse.quote("x'; DROP TABLE domains;--@h.test"),
                            400),
                           (MAILBOXES + "/" + urllib.parse.quote("x'OR'1'='1@h.test"), 404)):
            st, _, _ = self.call("GET", path)
            self.assertEqual(st, want, path)
            st, _, _ = self.call("DELETE", path)
            self.assertEqual(st, want, path)
        self.assertEqual(self.snapshot(), before)
        self.call("GET", "/v1/health", token=False, want=200)


class Cors(AdminBase):
    daemon_options = {"http_cors_origins": "https://panel.example https://other.example:8443"}

    def test_preflight_and_headers(self):
        st, _, resp = self.d.http("OPTIONS", MAILBOXES + "/a@b.test", token=False,
                                  headers={"Origin": "https://panel.example",
                                           "Access-Control-Request-Method": "PATCH"})
        self.assertEqual(st, 204)
        self.assertEqual(resp.getheader("Access-Control-Allow-Origin"), "https://panel.example")
        self.assertEqual(resp.getheader("Access-Control-Allow-Methods"), "GET, PATCH, DELETE")
        self.assertIn("If-Match", resp.getheader("Access-Control-Allow-Headers"))
        st, _, resp = self.call("GET", DOMAINS, headers={"Origin": "https://other.example:8443"},
                                want=200)
        self.assertEqual(resp.getheader("Access-Control-Allow-Origin"),
                         "https://other.example:8443")
        self.assertIn("ETag", resp.getheader("Access-Control-Expose-Headers"))
        st, _, resp = self.call("GET", DOMAINS, headers={"Origin": "https://evil.example"},
                                want=200)
        self.assertIsNone(resp.getheader("Access-Control-Allow-Origin"))
        st, _, resp = self.d.http("OPTIONS", DOMAINS, token=False,
                                  headers={"Origin": "https://evil.example"})
        self.assertIsNone(resp.getheader("Access-Control-Allow-Origin"))
        # a browser still needs a token for the real request
        st, _, resp = self.call("GET", DOMAINS, token=False,
                                headers={"Origin": "https://panel.example"}, want=401)
        self.assertEqual(resp.getheader("Access-Control-Allow-Origin"), "https://panel.example")

    def test_bad_origin_setting_is_refused_at_start(self):
        import subprocess
        import os
        for bad in ("panel.example", "https://panel.example/", "ftp://x", "https://a@b"):
            p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-n", "-o",
                                f"http_cors_origins={bad}"], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn("http_cors_origins", p.stderr)


class Spec(unittest.TestCase):
    def test_every_route_is_in_the_spec(self):
        served, documented = openapi.served_routes(), openapi.spec_routes()
        self.assertGreater(len(served), 20)
        self.assertEqual(served - documented, set(), "served but not in api-docs/openapi.yaml")
        self.assertEqual(documented - served, set(), "in the spec but not served")

    def test_spec_is_openapi_31(self):
        s = openapi.spec()
        self.assertEqual(s["openapi"][:4], "3.1.")
        for template, item in s["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.assertIn("responses", op, (method, template))
                self.assertIn("operationId", op, (method, template))
                for status in op["responses"]:
                    self.assertRegex(str(status), r"^([1-5][0-9][0-9]|[1-5]XX|default)$")


if __name__ == "__main__":
    unittest.main()
