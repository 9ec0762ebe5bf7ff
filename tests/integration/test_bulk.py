"""Bulk import and export (NDJSON and CSV) against the real daemon and PostgreSQL, through the
API and through `mailquota import/export`: round trips, all-or-nothing, per-row error reports,
best effort, dry runs, upserts, limits and scopes."""
import json
import os
import tempfile
import unittest

import mqtest

NDJSON = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}

SEED = "\n".join(json.dumps(x) for x in [
    {"type": "domain", "name": "b.test", "default_storage_limit_bytes": 1000,
     "grace_percent": 10},
    {"type": "domain", "name": "c.test", "pool_limit_bytes": 5000},
    {"type": "mailbox", "address": "a@b.test"},
    {"type": "mailbox", "address": "Quote\"d@b.test", "storage_limit_bytes": 50,
     "enabled": False},
    {"type": "mailbox", "address": "x,y@c.test", "max_message_size": 1024},
    {"type": "alias", "address": "list@b.test", "targets": ["a@b.test", "x,y@c.test"]},
    {"type": "alias", "address": "@c.test", "targets": ["x,y@c.test"]},
]) + "\n"


class Bulk(unittest.TestCase):
    def setUp(self):
        self.db = mqtest.Database()
        self.d = self.db.api()

    def tearDown(self):
        self.db.close()

    def imp(self, body, query="", headers=NDJSON, token=True):
        return self.d.http("POST", "/v1/import" + query, body, headers, token=token)

    def export(self, query=""):
        st, _, resp = self.d.http("GET", "/v1/export" + query)
        self.assertEqual(st, 200)
        return resp

    def raw_export(self, query=""):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        c.request("GET", "/v1/export" + query, headers=self.d.auth)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        self.assertEqual(r.status, 200, data)
        return data, r.getheader("Content-Type")

    def state(self):
        return self.db.sql(
            "SELECT (SELECT count(*) FROM domains), (SELECT count(*) FROM mailboxes),"
            " (SELECT count(*) FROM aliases), (SELECT count(*) FROM alias_targets),"
            " (SELECT count(*) FROM audit_log), (SELECT coalesce(sum(version), 0) FROM mailboxes)")

    def test_round_trips(self):
        st, doc, _ = self.imp(SEED)
        self.assertEqual((st, doc["created"], doc["failed"], doc["applied"]), (200, 7, 0, True))
        dump, ctype = self.raw_export()
        self.assertEqual(ctype, "application/x-ndjson")
        lines = dump.splitlines()
        self.assertEqual([json.loads(x)["type"] for x in lines],
                         ["domain"] * 2 + ["mailbox"] * 3 + ["alias"] * 2)
        # importing the export again changes nothing, and the same import into an empty
        # database gives the same export
        st, doc, _ = self.imp(dump)
        self.assertEqual((doc["unchanged"], doc["created"], doc["updated"]), (7, 0, 0))
        other = mqtest.Database()
        try:
            st, doc, _ = other.api().http("POST", "/v1/import", dump, NDJSON)
            self.assertEqual((st, doc["created"]), (200, 7))
            st, _, _ = other.api().http("GET", "/v1/health")
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", other.api().http_port, timeout=30)
            c.request("GET", "/v1/export", headers=other.api().auth)
            self.assertEqual(c.getresponse().read().decode(), dump)
            c.close()
        finally:
            other.close()
        # CSV, one type per file, with the quoting a spreadsheet needs
        for kind in ("domains", "mailboxes", "aliases"):
            csv, ctype = self.raw_export(f"?format=csv&type={kind}")
            self.assertTrue(ctype.startswith("text/csv"))
            st, doc, _ = self.imp(csv, f"?format=csv&type={kind}", CSV)
            self.assertEqual((st, doc["failed"], doc["created"], doc["updated"]), (200, 0, 0, 0),
                             (kind, doc))
        csv, _ = self.raw_export("?format=csv&type=mailboxes")
        self.assertIn('"quote""d@b.test",50,,,,false', csv)
        self.assertIn('"x,y@c.test",,,1024,,true', csv)

    def test_all_or_nothing_reports_every_bad_row(self):
        self.imp(SEED)
        before = self.state()
        bad = "\n".join([
            json.dumps({"type": "mailbox", "address": "ok@b.test"}),              # 1 fine
            json.dumps({"type": "mailbox", "address": "n@nodomain.test"}),        # 2 database
            "{not json",                                                           # 3 syntax
            json.dumps({"type": "mailbox", "address": "m@b.test", "quota": 5}),   # 4 field
            json.dumps({"type": "mailbox", "address": "m@b.test",
                        "storage_limit_bytes": -1}),                               # 5 value
            json.dumps({"type": "alias", "address": "l2@b.test",
                        "targets": ["ghost@b.test"]}),                             # 6 database
            json.dumps({"type": "planet", "name": "x"}),                          # 7 type
            json.dumps({"type": "mailbox", "address": "x'; DROP TABLE mailboxes;--@b.test"}),
        ]) + "\n"
        st, doc, _ = self.imp(bad)
        self.assertEqual(st, 422, doc)
        self.assertFalse(doc["applied"])
        got = {(e["line"], e.get("field"), e["error"]) for e in doc["errors"]}
        self.assertEqual(got, {(2, "address", "unknown_domain"), (3, None, "invalid_json"),
                               (4, "quota", "unknown_field"),
                               (5, "storage_limit_bytes", "invalid_field"),
                               (6, "targets", "unknown_target"), (7, "type", "invalid_field"),
                               (8, "address", "invalid_field")})
        self.assertEqual(doc["errors_total"], 7)
        self.assertEqual(self.state(), before)  # not even line 1
        # best effort: the good row goes in, the rest are reported
        st, doc, _ = self.imp(bad, "?mode=best_effort")
        self.assertEqual((st, doc["applied"], doc["created"], doc["failed"]), (200, True, 1, 7))
        self.assertEqual(self.db.sql("SELECT count(*) FROM mailboxes WHERE address = 'ok@b.test'"),
                         "1")

    def test_dry_run_and_updates(self):
        self.imp(SEED)
        before = self.state()
        change = json.dumps({"type": "mailbox", "address": "a@b.test",
                             "storage_limit_bytes": 7}) + "\n" + json.dumps(
            {"type": "mailbox", "address": "new@b.test"}) + "\n"
        st, doc, _ = self.imp(change, "?dry_run=true")
        self.assertEqual((st, doc["applied"], doc["updated"], doc["created"]), (200, False, 1, 1))
        self.assertEqual(self.state(), before)
        st, doc, _ = self.imp(change)
        self.assertEqual((doc["updated"], doc["created"]), (1, 1))
        self.assertEqual(self.db.sql("SELECT storage_limit_bytes FROM mailboxes"
                                     " WHERE address = 'a@b.test'"), "7")
        # every imported change is audited like any other
        _, log, _ = self.d.http("GET", "/v1/audit?object=a@b.test&action=mailbox.update")
        self.assertEqual(log["items"][0]["after"]["storage_limit_bytes"], 7)
        # the daemons see imported changes
        self.assertEqual(mqtest.eventually(lambda: self.d.http(
            "GET", "/v1/check?recipient=a@b.test&size=8")[1]["verdict"], "over_quota"),
            "over_quota")

    def test_csv_errors_have_line_numbers(self):
        self.imp(SEED)
        csv = ("address,storage_limit_bytes,enabled\r\n"
               "ok@b.test,10,true\r\n"
               "\"multi\nline@b.test\",5,true\r\n"      # lines 3-4: a newline in a field
               "bad@b.test,ten,true\r\n"                 # line 5
               "short@b.test,1\r\n"                      # line 6
               "flag@b.test,1,perhaps\r\n")              # line 7
        st, doc, _ = self.imp(csv, "?format=csv&type=mailboxes", CSV)
        self.assertEqual(st, 422)
        got = sorted((e["line"], e.get("field")) for e in doc["errors"])
        self.assertEqual(got, [(3, "address"), (5, "storage_limit_bytes"), (6, None),
                               (7, "enabled")])
        st, doc, _ = self.imp("address\n\"never closed@b.test\n", "?format=csv&type=mailboxes",
                              CSV)
        self.assertEqual((st, doc["errors"][0]["error"]), (422, "invalid_csv"))

    def test_text_csv_is_csv(self):
        """A body sent as text/csv needs no format=csv (format= still decides when given)."""
        self.imp(SEED)
        csv = "address,storage_limit_bytes,enabled\nnew@b.test,20971520,true\n"
        st, doc, _ = self.imp(csv, "?type=mailboxes", CSV)
        self.assertEqual((st, doc["created"]), (200, 1), doc)
        st, doc, _ = self.imp(csv, "", CSV)
        self.assertEqual((st, doc["error"], doc["field"]), (400, "missing_parameter", "type"))
        st, doc, _ = self.imp(csv, "?format=ndjson", CSV)
        self.assertEqual(st, 422)

    def test_request_errors(self):
        reader = self.make_read_token()
        before = self.state()
        for q in ("?format=xml", "?format=csv", "?type=tokens", "?mode=some", "?dry_run=1",
                  "?bogus=1"):
            st, doc, _ = self.imp(SEED, q)
            self.assertEqual(st, 400, (q, doc))
        st, _, _ = self.imp(SEED, "", {"Content-Type": "application/json"})
        self.assertEqual(st, 415)
        st, _, _ = self.imp(SEED, "", token=reader)
        self.assertEqual(st, 403)
        st, _, _ = self.imp(SEED, "", token=False)
        self.assertEqual(st, 401)
        # an announced body over 32 MiB is refused before it is read
        import socket
        with socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10) as s:
            s.sendall(b"POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                      b"Authorization: Bearer " + self.d.token.encode() +
                      b"\r\nContent-Length: 40000000\r\n\r\n")
            self.assertIn(b" 413 ", s.recv(4096))
        self.assertEqual(self.state(), before)
        for q in ("?format=csv", "?type=planets", "?mode=best_effort"):
            st, _, _ = self.d.http("GET", "/v1/export" + q)
            self.assertEqual(st, 400, q)
        self.assertEqual(self.d.http("GET", "/v1/export", token=reader)[0], 200)

    def make_read_token(self):
        st, doc, _ = self.d.http("POST", "/v1/tokens", {"name": "r", "scope": "read"})
        tok = doc["token"]
        mqtest.eventually(lambda: self.d.http("GET", "/v1/domains", token=tok)[0], 200)
        return tok

    def test_cli_import_and_export(self):
        tmp = tempfile.mkdtemp(prefix="mq-bulk-")
        try:
            src = os.path.join(tmp, "seed.ndjson")
            with open(src, "w") as f:
                f.write(SEED)
            p = self.db.cli("import", src)
            self.assertIn("7 rows: 7 created, 0 updated, 0 unchanged, 0 failed; applied",
                          p.stdout)
            out = self.db.cli("export").stdout
            self.assertEqual(len(out.splitlines()), 7)
            csv = self.db.cli("export", "format=csv", "type=mailboxes").stdout
            path = os.path.join(tmp, "boxes.csv")
            with open(path, "w") as f:
                f.write(csv.replace("a@b.test,,", "a@b.test,99,"))
            p = self.db.cli("import", path, "type=mailboxes")  # format from the name
            self.assertIn("1 updated", p.stdout)
            bad = os.path.join(tmp, "bad.ndjson")
            with open(bad, "w") as f:
                f.write('{"type":"mailbox","address":"z@nowhere.test"}\n')
            p = self.db.cli("import", bad, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn(f"{bad}:1: address: the domain does not exist", p.stderr)
            self.assertIn("nothing applied", p.stdout)
            p = self.db.cli("import", "-", "dry_run=true", input=SEED)
            self.assertIn("dry run: nothing applied", p.stdout)
            p = self.db.cli("--json", "import", src)
            self.assertEqual(json.loads(p.stdout)["unchanged"], 7)
        finally:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)

    def test_a_larger_import(self):
        rows = [{"type": "domain", "name": "big.test", "default_storage_limit_bytes": 10**9}]
        rows += [{"type": "mailbox", "address": f"u{i}@big.test", "storage_limit_bytes": i}
                 for i in range(20000)]
        st, doc, _ = self.imp("\n".join(json.dumps(r) for r in rows))
        self.assertEqual((st, doc["created"]), (200, 20001))
        self.assertEqual(self.db.sql("SELECT count(*) FROM mailboxes"), "20000")
        dump, _ = self.raw_export("?type=mailboxes")
        self.assertEqual(len(dump.splitlines()), 20000)
        self.assertEqual(mqtest.eventually(lambda: self.d.http("GET", "/v1/health")[1]["view"][
            "mailboxes"], 20000, 30), 20000)


if __name__ == "__main__":
    unittest.main()
