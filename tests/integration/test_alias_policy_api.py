"""An alias's own policy (aliases.policy: "any", "all" or null for the installation's
alias_policy) through the API, the CLI, the policy socket and import/export, against two real
daemons on one database: one configured alias_policy = any (the default), one alias_policy =
all, both with the periodic sweep off, so that whatever they learn of a change they learn
through NOTIFY."""
import json
import unittest
import urllib.parse

import mqtest

ALIASES = "/v1/aliases"
NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}
OVER = "552 5.2.2 Mailbox full"


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


class AliasPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        # "any": the configured default; "all": the other way round. No sweep: a change can
        # only reach either view through its notification.
        cls.any = mqtest.Daemon(cls.db.conninfo, view_sweep_interval=0)
        cls.all = mqtest.Daemon(cls.db.conninfo, token=cls.any.token, alias_policy="all",
                                view_sweep_interval=0)
        cls.d = cls.any
        try:
            cls.call("POST", "/v1/domains", {"name": "ap.test"}, want=201)
            cls.call("POST", "/v1/mailboxes", {"address": "room@ap.test"}, want=201)
            cls.call("POST", "/v1/mailboxes", {"address": "full@ap.test",
                                               "storage_limit_bytes": 1000}, want=201)
            cls.call("PUT", "/v1/mailboxes/full@ap.test/usage",
                     {"bytes": 1000, "source": "test"}, want=200)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.all.cleanup()
        cls.any.cleanup()
        cls.db.close()

    @classmethod
    def call(cls, method, path, body=None, headers=None, want=None):
        st, doc, _ = cls.d.http(method, path, body, headers)
        if want is not None:
            assert st == want, (method, path, st, doc)
        return st, doc

    @staticmethod
    def verdict(daemon, rcpt):
        st, doc, _ = daemon.http("GET", q("/v1/check", recipient=rcpt, size=10))
        return doc["verdict"] if st == 200 else st

    def verdicts(self, rcpt):
        """(the "any" daemon's verdict, the "all" daemon's) for rcpt."""
        return self.verdict(self.any, rcpt), self.verdict(self.all, rcpt)

    def settle(self, rcpt, want):
        """Wait until both daemons answer want for rcpt: through notifications, as the sweep
        that would also bring a change is off (view_sweep_interval). How fast is for the
        benchmarks to say, not a test."""
        got = mqtest.eventually(lambda: self.verdicts(rcpt), want, timeout=15)
        self.assertEqual(got, want, rcpt)

    def audit(self, address):
        _, page = self.call("GET", q("/v1/audit", object=address), want=200)
        return page["items"]

    def test_api_policy_overrides_alias_policy_both_ways(self):
        a = "team@ap.test"
        path = ALIASES + "/" + a
        _, doc = self.call("POST", ALIASES, {"address": a, "targets": ["room@ap.test",
                                                                        "full@ap.test"],
                                             "policy": "all"}, want=201)
        self.assertEqual(doc["policy"], "all")
        self.assertEqual(self.db.sql(f"SELECT policy FROM aliases WHERE address = '{a}'"),
                         "all")
        # its own "all" refuses under the daemon configured "any" (one target is full)
        self.settle(a, ("over_quota", "over_quota"))
        # /v1/check says which rule decided
        for daemon in (self.any, self.all):
            st, doc, _ = daemon.http("GET", q("/v1/check", recipient=a, size=10))
            self.assertEqual((st, doc["match"], doc["alias_policy"]), (200, "alias", "all"))
        # its own "any" accepts under the daemon configured "all"
        _, doc = self.call("PATCH", path, {"policy": "any"}, want=200)
        self.assertEqual((doc["policy"], doc["version"]), ("any", 2))
        self.settle(a, ("accept", "accept"))
        # null: each daemon's own alias_policy again
        _, doc = self.call("PATCH", path, {"policy": None}, want=200)
        self.assertEqual((doc["policy"], doc["version"]), (None, 3))
        self.settle(a, ("accept", "over_quota"))
        self.assertEqual([d.http("GET", q("/v1/check", recipient=a, size=10))[1]["alias_policy"]
                          for d in (self.any, self.all)], ["any", "all"])
        self.assertEqual(self.db.sql(f"SELECT policy IS NULL FROM aliases WHERE address = '{a}'"),
                         "t")
        # a no-op is no change: no version, no audit entry
        n = len(self.audit(a))
        _, doc = self.call("PATCH", path, {"policy": None}, want=200)
        self.assertEqual(doc["version"], 3)
        self.assertEqual(len(self.audit(a)), n)
        # GET shows it; a target change keeps it
        self.call("PATCH", path, {"policy": "all"}, want=200)
        _, doc = self.call("PATCH", path, {"add_targets": ["room@ap.test"]}, want=200)
        self.assertEqual(doc["policy"], "all")
        _, doc = self.call("GET", path, want=200)
        self.assertEqual(doc["policy"], "all")
        self.settle(a, ("over_quota", "over_quota"))
        # every change audited with the before and after documents
        items = self.audit(a)
        self.assertEqual([e["action"] for e in items],
                         ["alias.update"] * 3 + ["alias.create"])
        self.assertEqual([(e["before"]["policy"], e["after"]["policy"]) for e in items[:3]],
                         [(None, "all"), ("any", None), ("all", "any")])
        self.assertEqual(items[3]["after"]["policy"], "all")

    def test_bad_values_are_refused_naming_the_field(self):
        self.call("POST", ALIASES, {"address": "bad@ap.test", "targets": ["room@ap.test"]},
                  want=201)
        before = self.db.sql("SELECT version, policy IS NULL FROM aliases"
                             " WHERE address = 'bad@ap.test'")
        for value in ("every", "ALL", "Any", "", "default", 1, True, ["all"], {"x": 1}):
            with self.subTest(value=value):
                st, doc = self.call("PATCH", ALIASES + "/bad@ap.test", {"policy": value})
                self.assertEqual(st, 400, doc)
                self.assertEqual(doc["error"], "invalid_field")
                self.assertIn("policy", doc["message"])
                st, doc = self.call("POST", ALIASES, {"address": "bad2@ap.test",
                                                      "targets": ["room@ap.test"],
                                                      "policy": value})
                self.assertEqual((st, doc["error"]), (400, "invalid_field"))
                self.assertIn("policy", doc["message"])
        st, doc = self.call("PATCH", "/v1/mailboxes/room@ap.test", {"policy": "all"})
        self.assertEqual((st, doc["error"]), (400, "unknown_field"))
        self.assertEqual(self.db.sql("SELECT version, policy IS NULL FROM aliases"
                                     " WHERE address = 'bad@ap.test'"), before)
        self.assertEqual(self.db.sql("SELECT count(*) FROM aliases"
                                     " WHERE address = 'bad2@ap.test'"), "0")
        # the database refuses what the API would never send
        with self.assertRaises(Exception):
            self.db.sql("UPDATE aliases SET policy = 'some' WHERE address = 'bad@ap.test'")

    def test_rcpt_on_the_policy_socket(self):
        # under alias_policy = any: an alias of its own "all" is refused at RCPT, the same
        # members under "any" (or no policy) are accepted
        for a, policy in (("strict@ap.test", "all"), ("lenient@ap.test", "any"),
                          ("plain@ap.test", None)):
            self.call("POST", ALIASES, {"address": a, "targets": ["room@ap.test",
                                                                   "full@ap.test"],
                                        "policy": policy}, want=201)
        want = {"strict@ap.test": (OVER, OVER), "lenient@ap.test": ("DUNNO", "DUNNO"),
                "plain@ap.test": ("DUNNO", OVER)}
        for a, w in want.items():
            with self.subTest(alias=a):
                got = mqtest.eventually(
                    lambda: (self.any.policy(recipient=a, size=10),
                             self.all.policy(recipient=a, size=10)), w)
                self.assertEqual(got, w)

    def test_catch_all_has_its_own_policy(self):
        self.call("POST", "/v1/domains", {"name": "catch.ap.test"}, want=201)
        self.call("POST", "/v1/mailboxes", {"address": "r@catch.ap.test"}, want=201)
        self.call("POST", ALIASES, {"address": "@catch.ap.test",
                                    "targets": ["r@catch.ap.test", "full@ap.test"],
                                    "policy": "all"}, want=201)
        self.settle("anyone@catch.ap.test", ("over_quota", "over_quota"))
        self.call("PATCH", ALIASES + "/@catch.ap.test", {"policy": "any"}, want=200)
        self.settle("anyone@catch.ap.test", ("accept", "accept"))

    def test_export_import_round_trip(self):
        self.call("POST", ALIASES, {"address": "exp-all@ap.test", "targets": ["room@ap.test"],
                                    "policy": "all"}, want=201)
        self.call("POST", ALIASES, {"address": "exp-none@ap.test",
                                    "targets": ["room@ap.test"]}, want=201)
        dump = self.raw(self.any, "/v1/export?type=aliases")
        rows = {r["address"]: r for r in map(json.loads, dump.splitlines())}
        self.assertEqual(rows["exp-all@ap.test"]["policy"], "all")
        self.assertIsNone(rows["exp-none@ap.test"]["policy"])
        csv = self.raw(self.any, "/v1/export?format=csv&type=aliases")
        self.assertEqual(csv.splitlines()[0], "address,targets,policy")
        self.assertIn("exp-all@ap.test,room@ap.test,all", csv.splitlines())
        self.assertIn("exp-none@ap.test,room@ap.test,", csv.splitlines())
        # the whole export into an empty database gives the same export back
        full = self.raw(self.any, "/v1/export")
        other = mqtest.Database()
        try:
            st, doc, _ = other.api().http("POST", "/v1/import", full, NDJSON)
            self.assertEqual((st, doc["failed"]), (200, 0), doc)
            self.assertEqual(self.raw(other.api(), "/v1/export"), full)
            # and each CSV of it imports unchanged
            st, doc, _ = other.api().http("POST", "/v1/import?format=csv&type=aliases", csv,
                                          CSV)
            self.assertEqual((st, doc["failed"], doc["updated"], doc["created"]),
                             (200, 0, 0, 0), doc)
        finally:
            other.close()
        # a file from before the column leaves every policy as it is
        old = json.dumps({"type": "alias", "address": "exp-all@ap.test",
                          "targets": ["room@ap.test"]}) + "\n"
        st, doc, _ = self.any.http("POST", "/v1/import", old, NDJSON)
        self.assertEqual((st, doc["unchanged"]), (200, 1), doc)
        old_csv = "address,targets\r\nexp-all@ap.test,room@ap.test\r\n"
        st, doc, _ = self.any.http("POST", "/v1/import?format=csv&type=aliases", old_csv, CSV)
        self.assertEqual((st, doc["unchanged"]), (200, 1), doc)
        self.assertEqual(self.db.sql("SELECT policy FROM aliases"
                                     " WHERE address = 'exp-all@ap.test'"), "all")
        # an empty cell is null; an import's changes are audited and reach the views
        new_csv = ("address,targets,policy\r\nexp-all@ap.test,room@ap.test,\r\n"
                   "exp-none@ap.test,room@ap.test,all\r\n")
        st, doc, _ = self.any.http("POST", "/v1/import?format=csv&type=aliases", new_csv, CSV)
        self.assertEqual((st, doc["updated"]), (200, 2), doc)
        self.assertEqual(self.db.sql("SELECT string_agg(coalesce(policy, '-'), ','"
                                     " ORDER BY address) FROM aliases"
                                     " WHERE address LIKE 'exp-%'"), "-,all")
        self.assertEqual(self.audit("exp-none@ap.test")[0]["after"]["policy"], "all")
        # a bad value is a row error naming the field
        bad = json.dumps({"type": "alias", "address": "exp-all@ap.test",
                          "targets": ["room@ap.test"], "policy": "most"}) + "\n"
        st, doc, _ = self.any.http("POST", "/v1/import", bad, NDJSON)
        self.assertEqual(st, 422, doc)
        self.assertEqual((doc["errors"][0]["field"], doc["errors"][0]["error"]),
                         ("policy", "invalid_field"))

    def test_cli(self):
        p = self.db.cli("alias", "add", "cli@ap.test", "room@ap.test", "full@ap.test",
                        "policy=all")
        self.assertEqual(self.db.sql("SELECT policy FROM aliases WHERE address = 'cli@ap.test'"),
                         "all")
        out = self.db.cli("alias", "get", "cli@ap.test").stdout
        self.assertRegex(out, r"(?m)^policy +all +policy$")
        self.db.cli("alias", "set", "cli@ap.test", "policy=any")
        self.assertEqual(self.db.sql("SELECT policy FROM aliases WHERE address = 'cli@ap.test'"),
                         "any")
        self.db.cli("alias", "set", "cli@ap.test", "policy=default")
        self.assertEqual(self.db.sql("SELECT policy IS NULL FROM aliases"
                                     " WHERE address = 'cli@ap.test'"), "t")
        out = self.db.cli("alias", "get", "cli@ap.test").stdout
        self.assertRegex(out, r"(?m)^policy +default +policy$")
        # alias add on an existing alias sets the policy along with the new targets
        self.db.cli("alias", "add", "cli@ap.test", "policy=all")
        self.assertEqual(self.db.sql("SELECT policy FROM aliases WHERE address = 'cli@ap.test'"),
                         "all")
        for bad in (("alias", "set", "cli@ap.test", "policy=most"),
                    ("alias", "set", "cli@ap.test", "targets=room@ap.test"),
                    ("alias", "add", "cli@ap.test", "room@ap.test", "policy=ALL"),
                    ("alias", "remove", "cli@ap.test", "room@ap.test", "policy=any")):
            with self.subTest(args=bad):
                p = self.db.cli(*bad, check=False)
                self.assertNotEqual(p.returncode, 0)
        p = self.db.cli("alias", "set", "cli@ap.test", "policy=most", check=False)
        self.assertIn("policy", p.stderr)
        self.assertEqual(self.db.sql("SELECT policy, version FROM aliases"
                                     " WHERE address = 'cli@ap.test'"), "all|4")
        p = self.db.cli("--json", "alias", "get", "cli@ap.test")
        self.assertEqual(json.loads(p.stdout)["policy"], "all")

    @staticmethod
    def raw(daemon, path):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", daemon.http_port, timeout=30)
        c.request("GET", path, headers=daemon.auth)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        assert r.status == 200, (path, r.status, data)
        return data


if __name__ == "__main__":
    unittest.main()
