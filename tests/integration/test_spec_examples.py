"""The examples in api-docs/openapi.yaml (issue 11): every operation's request body and 2xx
response body has one, each is valid against its own schema, and each has the shape of a real
response: one real request per operation (and per body media type) against the real daemon and
PostgreSQL, with the demo data of scripts/quickstart made through the API — request examples
are sent as they are — and the same keys at every object level. Real responses are also
validated against the spec (mqtest.Daemon.http)."""
import http.client
import json
import os
import unittest

import mqtest
import openapi

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
PROM = "text/plain"  # GET /metrics: Prometheus's text format
EXAMPLE = object()  # a request's body: the spec's request example for its media type

# One real request per operation and per body media type, in this order (later ones rely on
# what earlier ones made). token: "admin" (default), "self" (the token createToken made),
# "precheck", or None. allowed: members that may be on one side only, each with its reason.
REQUESTS = [
    dict(op="getHealth", path="/v1/health", token=None),
    dict(op="getMetrics", path="/metrics", resp_media=PROM),
    dict(op="createDomain", path="/v1/domains", body=EXAMPLE, want=201),
    dict(op="updateWarningSettings", path="/v1/warnings/settings", body=EXAMPLE),
    dict(op="getWarningSettings", path="/v1/warnings/settings"),
    dict(op="createMailbox", path="/v1/mailboxes", body=EXAMPLE, want=201),
    dict(op="setMailboxUsage", path="/v1/mailboxes/bob@demo.test/usage", body=EXAMPLE),
    dict(op="reportUsage", path="/v1/usage", body=EXAMPLE),
    dict(op="recalculateUsage", path="/v1/usage/recalculations", body=EXAMPLE),
    dict(op="createAlias", path="/v1/aliases", body=EXAMPLE, want=201),
    dict(op="checkOne", path="/v1/check?recipient=Bob%2Bx@Demo.Test&size=1000000"),
    dict(op="checkMany", path="/v1/check", body=EXAMPLE),
    dict(op="getMailboxUsage", path="/v1/mailboxes/bob@demo.test/usage"),
    dict(op="createToken", path="/v1/tokens", body=EXAMPLE, want=201),
    dict(op="getSelf", path="/v1/self", token="self"),
    dict(op="precheckOne", path="/v1/precheck?recipient=carol@demo.test&size=2000000",
         token="precheck"),
    dict(op="precheckMany", path="/v1/precheck", body=EXAMPLE, token="precheck"),
    dict(op="listDomains", path="/v1/domains?limit=10"),
    dict(op="getDomain", path="/v1/domains/demo.test"),
    dict(op="updateDomain", path="/v1/domains/demo.test", body=EXAMPLE),
    dict(op="listMailboxes", path="/v1/mailboxes?domain=demo.test&sort=-usage&limit=2"),
    dict(op="getMailbox", path="/v1/mailboxes/bob@demo.test"),
    dict(op="updateMailbox", path="/v1/mailboxes/carol@demo.test", body=EXAMPLE),
    dict(op="listAliases", path="/v1/aliases?domain=demo.test"),
    dict(op="getAlias", path="/v1/aliases/team@demo.test"),
    dict(op="updateAlias", path="/v1/aliases/team@demo.test", body=EXAMPLE),
    dict(op="listTokens", path="/v1/tokens?limit=2"),
    dict(op="getToken", path="/v1/tokens/{self_id}"),
    dict(op="listWarnings", path="/v1/warnings?mailbox=bob@demo.test&limit=1"),
    dict(op="listAudit", path="/v1/audit?object=bob@demo.test&action=usage.set&limit=1"),
    dict(op="getStats", path="/v1/stats?top=2"),
    dict(op="importAll", path="/v1/import", body=EXAMPLE, media=NDJSON),
    dict(op="importAll", path="/v1/import?format=csv&type=mailboxes", body=EXAMPLE,
         media=CSV),
    dict(op="exportAll", path="/v1/export", resp_media=NDJSON),
    dict(op="exportAll", path="/v1/export?format=csv&type=mailboxes", resp_media=CSV),
    dict(op="deleteAlias", path="/v1/aliases/old@demo.test", want=204),
    dict(op="deleteMailbox", path="/v1/mailboxes/gone@demo.test", want=204),
    dict(op="deleteDomain", path="/v1/domains/old.test", want=204),
    dict(op="revokeToken", path="/v1/tokens/{old_id}", want=204),
]

OPS = {op.get("operationId"): (method, template, op)
       for method, template, op in openapi.operations()}


def request_example(op_id, media):
    _, _, op = OPS[op_id]
    for where, mtype, m, _ in openapi.example_sites(op):
        if where == "request" and mtype == media:
            return openapi.media_examples(m)[0]
    raise AssertionError(f"{op_id}: no {media} request example")


def response_example(op_id, status, media):
    _, _, op = OPS[op_id]
    for where, mtype, m, _ in openapi.example_sites(op):
        if where == str(status) and mtype == media and openapi.media_examples(m):
            return openapi.media_examples(m)[0]
    return None


class SpecExamples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        cls.d = mqtest.Daemon(cls.db.conninfo, precheck_rate=1000, precheck_burst=1000)
        cls.tokens = {"admin": True, None: False}
        cls.ids = {}
        cls.real = []  # (entry, status, parsed body or text)
        try:
            cls.run_requests()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    @classmethod
    def admin(cls, method, path, body=None, want=201):
        st, doc, _ = cls.d.http(method, path, body)
        assert st == want, (method, path, st, doc)
        return doc

    @classmethod
    def seed_after(cls, op):
        """What the demo data needs besides the request examples, made right after op."""
        if op == "createDomain":
            cls.admin("POST", "/v1/domains", {"name": "old.test"})
        elif op == "createMailbox":
            cls.admin("POST", "/v1/mailboxes", {"address": "alice@demo.test"})
            cls.admin("POST", "/v1/mailboxes", {"address": "carol@demo.test",
                                                "max_message_size": 1048576})
            cls.admin("POST", "/v1/mailboxes", {"address": "gone@demo.test"})
            cls.admin("POST", "/v1/aliases", {"address": "old@demo.test",
                                              "targets": ["alice@demo.test"]})
            cls.ids["old_id"] = cls.admin("POST", "/v1/tokens",
                                          {"name": "old", "scope": "read"})["id"]
            pre = cls.admin("POST", "/v1/tokens", {"name": "webmail", "scope": "precheck"})
            cls.tokens["precheck"] = pre["token"]

    # operations answered from the daemon's view, which learns of changes through NOTIFY
    FROM_VIEW = ("checkOne", "checkMany", "precheckOne", "precheckMany", "getSelf",
                 "getMailboxUsage")

    @classmethod
    def sync_view(cls):
        """Wait until the view has every change made so far: notifications are applied in
        commit order, so once a token made now authenticates, all before it are there."""
        t = cls.admin("POST", "/v1/tokens", {"name": "sync", "scope": "read"})["token"]
        st = mqtest.eventually(
            lambda: cls.d.http("GET", "/v1/check?recipient=sync@demo.test", token=t)[0], 200)
        assert st == 200, st

    @classmethod
    def run_requests(cls):
        for e in REQUESTS:
            method, _, _ = OPS[e["op"]]
            if e["op"] in cls.FROM_VIEW:
                cls.sync_view()
            path = e["path"].format(**cls.ids)
            media = e.get("media", JSON)
            body, headers = e.get("body"), {}
            if body is EXAMPLE:
                body = request_example(e["op"], media)
                if media != JSON:
                    headers["Content-Type"] = media
            token = cls.tokens[e.get("token", "admin")]
            if e.get("token") in ("self", "precheck"):
                # the view learns of a new token through NOTIFY
                mqtest.eventually(lambda: cls.d.http(method, path, body, headers,
                                                     token=token)[0], e.get("want", 200))
            if e.get("resp_media", JSON) == JSON:
                st, doc, _ = cls.d.http(method, path, body, headers, token=token)
            else:
                st, doc = cls.raw(method, path)
                openapi.validate(method, path, st, None)
            assert st == e.get("want", 200), (e["op"], path, st, doc)
            cls.real.append((e, st, doc))
            if e["op"] == "createToken":
                cls.tokens["self"] = doc["token"]
                cls.ids["self_id"] = doc["id"]
            cls.seed_after(e["op"])
        # MQ_DUMP_REAL=FILE writes every real response there: the stuff to write examples from
        if os.environ.get("MQ_DUMP_REAL"):
            with open(os.environ["MQ_DUMP_REAL"], "w") as f:
                for e, st, doc in cls.real:
                    f.write(f"## {e['op']} {e['path']} -> {st}\n")
                    f.write((json.dumps(doc, indent=1) if not isinstance(doc, str) else doc)
                            + "\n")

    @classmethod
    def raw(cls, method, path):
        """A request whose body is not JSON: (status, text)."""
        c = http.client.HTTPConnection("127.0.0.1", cls.d.http_port, timeout=30)
        c.request(method, path, headers=cls.d.auth)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data

    def test_every_operation_has_examples(self):
        self.maxDiff = None
        self.assertEqual(openapi.missing_examples(), [],
                         "operations lacking a request or 2xx response example")

    def test_every_operation_has_a_real_request(self):
        self.assertEqual(sorted(set(OPS) - {e["op"] for e in REQUESTS}), [],
                         "operations without a real request in REQUESTS")
        for op_id in OPS:
            _, _, op = OPS[op_id]
            # every body media type of the operation is tried for real
            for where, mtype, _, _ in openapi.example_sites(op):
                key = "media" if where == "request" else "resp_media"
                with self.subTest(op=op_id, where=where, media=mtype):
                    self.assertTrue(any(e["op"] == op_id and e.get(key, JSON) == mtype
                                        for e in REQUESTS))

    def test_examples_match_their_schemas(self):
        for method, template, op in openapi.operations():
            for where, mtype, media, schema in openapi.example_sites(op):
                for ex in openapi.media_examples(media):
                    with self.subTest(op=op.get("operationId"), where=where, media=mtype):
                        self.assertEqual(openapi.schema_errors(schema or {}, ex), [])
                        if mtype == NDJSON:
                            for line in ex.splitlines():
                                self.assertIsInstance(json.loads(line), dict)
        # examples on the shared schemas (error bodies, the self view)
        for name, schema in openapi.spec()["components"]["schemas"].items():
            for ex in ([schema["example"]] if "example" in schema else []) \
                    + schema.get("examples", []):
                with self.subTest(schema=name):
                    self.assertEqual(openapi.schema_errors(schema, ex), [])

    def test_examples_have_the_shape_of_real_responses(self):
        for e, st, doc in self.real:
            media = e.get("resp_media", JSON)
            ex = response_example(e["op"], st, media)
            with self.subTest(op=e["op"], media=media):
                if ex is None:
                    # only a response without a body needs no example
                    self.assertTrue(doc is None or doc == "", (e["op"], doc))
                    continue
                if media == NDJSON:
                    ex, doc = self.by_type(ex), self.by_type(doc)
                elif media == CSV:
                    ex, doc = self.csv_header(ex), self.csv_header(doc)
                elif media == PROM:
                    # every metric family the example shows is in the real exposition
                    self.assertLessEqual(self.families(ex), self.families(doc))
                    continue
                diffs, used = openapi.shape_diff(ex, doc, allowed=e.get("allowed", {}))
                self.assertEqual(diffs, [], f"{e['op']}: the example and {e['path']}")
                self.assertEqual(sorted(set(e.get("allowed", {})) - used), [],
                                 "allowances no difference needs")

    @staticmethod
    def by_type(text):
        """NDJSON rows as {type: first row of that type}."""
        out = {}
        for line in text.splitlines():
            row = json.loads(line)
            out.setdefault(row.get("type"), row)
        return out

    @staticmethod
    def families(text):
        """The metric families of a Prometheus exposition (its TYPE lines)."""
        return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}

    @staticmethod
    def csv_header(text):
        """The columns of a CSV body, as an object's keys."""
        return dict.fromkeys(text.splitlines()[0].split(","))


if __name__ == "__main__":
    unittest.main()
