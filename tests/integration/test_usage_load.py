"""Loading usage in bulk (issue 11): `doveadm quota get -A` output (Dovecot 2.3's tab, table and
flow formats, STORAGE in KiB, "-" for unlimited, several quota roots, "error" figures) through
`mailquota usage load`, and POST /v1/usage/recalculations itself: figures equal afterwards, delta
reports from before the load superseded, per-item answers, limits, dry runs, audit records."""
import http.client
import json
import os
import random
import subprocess
import tempfile
import threading
import time
import unittest

import mqtest

# What `doveadm -f tab quota get -A` prints on Dovecot 2.3 with `quota = count:User quota`:
# a header of the titles, then per user a STORAGE row (KiB, rounded up) and a MESSAGE row;
# ghost@ exists in Dovecot's userdb but not in mailquota.
ROWS = [
    # user, root, type, value, limit ("-": unlimited)
    ("alice@example.test", "User quota", "STORAGE", 52341, 1048576),
    ("alice@example.test", "User quota", "MESSAGE", 1203, "-"),
    ("bob@example.test", "User quota", "STORAGE", 1048577, 1048576),
    ("bob@example.test", "User quota", "MESSAGE", 30211, "-"),
    ("carol@example.test", "User quota", "STORAGE", 0, 1048576),
    ("carol@example.test", "User quota", "MESSAGE", 0, "-"),
    ("ghost@example.test", "User quota", "STORAGE", 12, 1048576),
    ("ghost@example.test", "User quota", "MESSAGE", 3, "-"),
    ("dave@example.test", "User quota", "STORAGE", 4, "-"),
    ("dave@example.test", "User quota", "MESSAGE", 2, "-"),
]
KNOWN = ("alice@example.test", "bob@example.test", "carol@example.test", "dave@example.test")


def percent(value, limit):
    return 0 if limit == "-" or limit == 0 else value * 100 // limit


def tab(rows, header=True):
    """doveadm -f tab: the titles, then the columns between tabs (doveadm-print-tab.c)."""
    out = ["Username\tQuota name\tType\tValue\tLimit\t%"] if header else []
    out += [f"{u}\t{r}\t{t}\t{v}\t{lim}\t{percent(v, lim)}" for u, r, t, v, lim in rows]
    return "\n".join(out) + "\n"


def table(rows):
    """doveadm's default table (doveadm-print-table.c, not a terminal: 80 columns): each column
    as wide as its widest value, Value, Limit and % right-justified, the last column widened by
    half of what is left of 80."""
    cells = [[u, r, t, str(v), str(lim), str(percent(v, lim))] for u, r, t, v, lim in rows]
    titles = ["Username", "Quota name", "Type", "Value", "Limit", "%"]
    width = [max(len(x) for x in col) for col in zip(titles, *cells)]
    total = sum(width) + len(width) - 1
    if total < 80:
        width[-1] += (80 - total) // 2

    def line(c):
        return " ".join(c[i].ljust(width[i]) if i < 3 else c[i].rjust(width[i])
                        for i in range(6))
    return "\n".join(line(c) for c in [titles] + cells) + "\n"


def flow(rows):
    """doveadm -f flow: the username's title hidden, the others as Title=value."""
    return "".join(f"{u} Quota name={r} Type={t} Value={v} Limit={lim} %={percent(v, lim)}\n"
                   for u, r, t, v, lim in rows)


def want_figures(rows, root="User quota"):
    out = {}
    for u, r, t, v, _ in rows:
        if r != root:
            continue
        b, m = out.get(u, (None, None))
        out[u] = (v * 1024, m) if t == "STORAGE" else (b, v)
    return out


class UsageLoad(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        cls.d = cls.db.api()
        cls.db.cli("domain", "add", "example.test", "storage=10G")
        for a in KNOWN:
            cls.db.cli("mailbox", "add", a)
        cls.db.cli("domain", "add", "bulk.test", "storage=1G")
        # a few hundred mailboxes in one import, as the benchmark makes 100,000
        rows = "".join(json.dumps({"type": "mailbox", "address": f"u{i}@bulk.test"}) + "\n"
                       for i in range(300))
        st, doc, _ = cls.d.http("POST", "/v1/import", rows,
                                {"Content-Type": "application/x-ndjson"})
        assert st == 200 and doc["created"] == 300, doc

    @classmethod
    def tearDownClass(cls):
        cls.db.close()

    def figures(self, address):
        row = self.db.sql("SELECT used_bytes || ' ' || used_messages FROM mailboxes"
                          f" WHERE address = '{address}'")
        return tuple(int(x) for x in row.split())

    def load(self, *args, input=None, check=False):
        return self.db.cli("usage", "load", *args, input=input, check=check)

    def post(self, body, query="", token=True):
        return self.d.http("POST", "/v1/usage/recalculations" + query, body, token=token)

    def audit_count(self, address):
        return int(self.db.sql("SELECT count(*) FROM audit_log WHERE action = 'usage.load'"
                               f" AND object = '{address}'"))

    # ---- the CLI and doveadm's formats ----

    def test_doveadm_tab_from_a_pipe(self):
        p = self.load("-", "format=doveadm", input=tab(ROWS))
        self.assertEqual(p.returncode, 4, p.stderr)  # only an unknown mailbox: exit 4
        self.assertIn("4 applied", p.stdout)
        self.assertIn("1 unknown", p.stdout)
        self.assertIn("-:8: ghost@example.test: unknown_mailbox", p.stderr)
        for a, (b, m) in want_figures(ROWS).items():
            if a in KNOWN:
                self.assertEqual(self.figures(a), (b, m), a)
        self.assertEqual(self.figures("bob@example.test"), (1048577 * 1024, 30211))
        self.assertEqual(self.db.sql("SELECT usage_source FROM mailboxes"
                                     " WHERE address = 'alice@example.test'"), "doveadm")
        # the daemon's view has it too
        self.assertEqual(mqtest.eventually(
            lambda: self.d.http("GET", "/v1/mailboxes/alice@example.test/usage")[1]["usage"],
            {"bytes": 52341 * 1024, "messages": 1203}),
            {"bytes": 52341 * 1024, "messages": 1203})
        # audited: the usage part of the document before and after
        st, doc, _ = self.d.http("GET", "/v1/audit?object=alice@example.test&action=usage.load")
        self.assertEqual(st, 200)
        entry = doc["items"][0]
        self.assertEqual(entry["after"]["usage"]["bytes"], 52341 * 1024)
        self.assertEqual(entry["after"]["usage"]["source"], "doveadm")
        self.assertEqual(set(entry["before"]["usage"]), {"bytes", "messages", "source", "set_at"})
        # the same load again changes nothing: no new audit record, but set_at moves
        n = self.audit_count("alice@example.test")
        set_at = self.db.sql("SELECT usage_set_at FROM mailboxes"
                             " WHERE address = 'alice@example.test'")
        p = self.load(input=tab(ROWS))  # format=doveadm and standard input are the defaults
        self.assertEqual(p.returncode, 4, p.stderr)
        self.assertIn("(0 changed)", p.stdout)
        self.assertEqual(self.audit_count("alice@example.test"), n)
        self.assertNotEqual(self.db.sql("SELECT usage_set_at FROM mailboxes"
                                        " WHERE address = 'alice@example.test'"), set_at)

    def test_table_flow_and_headerless_tab(self):
        for i, text in enumerate([table, flow, lambda r: tab(r, header=False)]):
            rows = [(u, r, t, v + 10 * (i + 1), lim) for u, r, t, v, lim in ROWS]
            with self.subTest(format=i):
                p = self.load(input=text(rows))
                self.assertEqual(p.returncode, 4, p.stderr + p.stdout)
                for a, fig in want_figures(rows).items():
                    if a in KNOWN:
                        self.assertEqual(self.figures(a), fig, a)

    def test_file_measured_at_its_modification_time(self):
        with tempfile.NamedTemporaryFile("w", suffix=".tab", delete=False) as f:
            f.write(tab([r for r in ROWS if r[0] == "dave@example.test"]))
        try:
            os.utime(f.name, (1893456000, 1893456000))  # 2030-01-01T00:00:00Z
            p = self.load(f.name)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            os.unlink(f.name)
        self.assertEqual(self.db.sql(
            "SELECT to_char(usage_set_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
            " FROM mailboxes WHERE address = 'dave@example.test'"), "2030-01-01 00:00:00")

    def test_quota_roots(self):
        rows = [
            ("carol@example.test", "User quota", "STORAGE", 100, 1048576),
            ("carol@example.test", "User quota", "MESSAGE", 7, "-"),
            ("carol@example.test", "Domain", "STORAGE", 999999, "-"),
            ("carol@example.test", "Domain", "MESSAGE", 88888, "-"),
            ("dave@example.test", "Domain", "STORAGE", 5, "-"),  # no User quota row
        ]
        p = self.load(input=tab(rows))  # each user's first root
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 rows of other quota roots ignored", p.stdout)
        self.assertEqual(self.figures("carol@example.test"), (100 * 1024, 7))
        self.assertEqual(self.figures("dave@example.test")[0], 5 * 1024)
        p = self.load("quota_root=User quota", input=tab(rows))
        self.assertEqual(p.returncode, 1, p.stdout)  # dave has no row of it
        self.assertIn("dave@example.test: no_figures", p.stderr)
        self.assertIn("1 applied", p.stdout)
        p = self.load("quota_root=Domain", input=tab(rows))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.figures("carol@example.test"), (999999 * 1024, 88888))

    def test_bad_lines_and_doveadm_errors(self):
        text = tab([ROWS[0], ROWS[1]]) + (
            "carol@example.test\tUser quota\tSTORAGE\terror\terror\terror\n"
            "carol@example.test\tUser quota\tMESSAGE\t5\t-\t0\n"
            "bob@example.test\tUser quota\tSTORAGE\t1\t-\n"
            "dave@example.test\tUser quota\tBYTES\t1\t-\t0\n"
            + tab([("dave@example.test", "User quota", "STORAGE", 777, "-")], header=False))
        before = self.figures("carol@example.test")
        p = self.load(input=text)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("-:4: carol@example.test: doveadm_error", p.stderr)
        self.assertIn("-:6: invalid_line: no Username column", p.stderr)
        self.assertIn("-:7: invalid_line: Type is neither STORAGE nor MESSAGE", p.stderr)
        self.assertIn("2 applied", p.stdout)
        self.assertEqual(self.figures("carol@example.test"), before)  # not half-set
        self.assertEqual(self.figures("dave@example.test")[0], 777 * 1024)

    def test_pipe_batches_go_on_time(self):
        rows = [(f"u{i}@bulk.test", "User quota", t, i + 1, "-")
                for i in range(300) for t in ("STORAGE", "MESSAGE")]
        text = tab(rows)
        half = text.index("u150@bulk.test")
        e = dict(os.environ, MAILQUOTA_URL=f"http://127.0.0.1:{self.d.http_port}",
                 MAILQUOTA_TOKEN=self.d.token)
        proc = subprocess.Popen([os.path.join(mqtest.BIN, "mailquota"), "usage", "load"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=e)
        proc.stdin.write(text[:half])
        proc.stdin.flush()
        time.sleep(2.5)  # doveadm is slow: what was read goes without waiting for the rest
        first = self.figures("u0@bulk.test")
        proc.stdin.write(text[half:])
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(first, (1024, 1))
        self.assertIn("300 applied", out)
        # u0..u148; u149, held until u150's row came and measured before the pause; the rest
        self.assertIn("3 batches", out)
        self.assertEqual(self.figures("u299@bulk.test"), (300 * 1024, 300))
        # each batch is measured when its first line was read: 2.5 s apart
        gap = float(self.db.sql(
            "SELECT extract(epoch FROM max(usage_set_at) - min(usage_set_at)) FROM mailboxes"
            " WHERE address IN ('u0@bulk.test', 'u299@bulk.test')"))
        self.assertGreater(gap, 2.0)

    def test_ndjson_and_csv(self):
        nd = "\n".join([
            json.dumps({"mailbox": "alice@example.test", "bytes": 11, "messages": 1}),
            "",
            json.dumps({"mailbox": "bob@example.test", "messages": 22}),
            "{not json",
            json.dumps({"mailbox": "carol@example.test", "bytes": -1}),
            json.dumps({"mailbox": "dave@example.test", "bytes": 44,
                        "measured_at": "2031-01-01T00:00:00Z"}),
        ]) + "\n"
        bob = self.figures("bob@example.test")
        p = self.load("format=ndjson", "source=du", input=nd)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("-:4: invalid_item", p.stderr)
        self.assertIn("-:5: carol@example.test: invalid_item: bytes must be", p.stderr)
        self.assertIn("3 applied", p.stdout)
        self.assertEqual(self.figures("alice@example.test"), (11, 1))
        self.assertEqual(self.figures("bob@example.test"), (bob[0], 22))
        self.assertEqual(self.db.sql("SELECT usage_source || ' ' || to_char(usage_set_at"
                                     " AT TIME ZONE 'UTC', 'YYYY') FROM mailboxes"
                                     " WHERE address = 'dave@example.test'"), "du 2031")
        csv = ('mailbox,messages,bytes\n'
               'alice@example.test,2,12\n'
               '"bob@example.test",,13\n'
               'carol@example.test,x,1\n'
               'nobody@example.test,1,1\n')
        p = self.load("format=csv", input=csv)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("-:4: invalid_item", p.stderr)
        self.assertIn("-:5: nobody@example.test: unknown_mailbox", p.stderr)
        self.assertEqual(self.figures("alice@example.test"), (12, 2))
        self.assertEqual(self.figures("bob@example.test"), (13, 22))
        p = self.load("format=csv", input="address,bytes\nx,1\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("invalid_header", p.stderr)

    def test_cli_arguments_and_dry_run(self):
        for bad in (["format=xml"], ["at=yesterday"], ["source="], ["dry_run=maybe"],
                    ["format=csv", "quota_root=x"], ["colour=blue"]):
            with self.subTest(args=bad):
                self.assertEqual(self.load(*bad, input="").returncode, 2)
        self.assertEqual(self.load("/nonexistent/file").returncode, 1)
        before = self.figures("alice@example.test")
        n = self.audit_count("alice@example.test")
        p = self.load("dry_run=true", input=tab(
            [("alice@example.test", "User quota", "STORAGE", 424242, "-")]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 applied (1 changed)", p.stdout)
        self.assertIn("dry run: nothing stored", p.stdout)
        self.assertEqual(self.figures("alice@example.test"), before)
        self.assertEqual(self.audit_count("alice@example.test"), n)
        p = self.db.cli("--json", "usage", "load", input=tab(ROWS[:2] + ROWS[6:8]), check=False)
        self.assertEqual(p.returncode, 4)
        doc = json.loads(p.stdout)
        self.assertEqual((doc["applied"], doc["unknown"], doc["batches"]), (1, 1, 1))
        self.assertEqual(doc["problems"][0]["mailbox"], "ghost@example.test")

    # ---- superseding: reports from before the load are counted in it already ----

    def test_reports_before_the_load_are_superseded(self):
        p = self.load("at=2030-06-01T12:00:00Z", input=tab(
            [("carol@example.test", "User quota", "STORAGE", 50, "-"),
             ("carol@example.test", "User quota", "MESSAGE", 5, "-")]))
        self.assertEqual(p.returncode, 0, p.stderr)
        st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
            {"mailbox": "carol@example.test", "bytes": 1000, "messages": 1,
             "key": "load/old", "occurred_at": "2030-06-01T11:59:59Z"},
            {"mailbox": "carol@example.test", "bytes": 1000, "messages": 1,
             "key": "load/new", "occurred_at": "2030-06-01T12:00:01Z"}]})
        self.assertEqual(st, 200, doc)
        self.assertEqual([r["status"] for r in doc["results"]], ["superseded", "applied"])
        self.assertEqual(self.figures("carol@example.test"), (50 * 1024 + 1000, 6))
        # from a pipe without at=: measured when read, so a delivery a minute ago is in it
        self.load(input=tab([("carol@example.test", "User quota", "STORAGE", 60, "-")]))
        ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
            {"mailbox": "carol@example.test", "bytes": 1, "key": "load/ago",
             "occurred_at": ago}]})
        self.assertEqual(doc["results"][0]["status"], "superseded")

    # ---- the endpoint ----

    def test_endpoint_answers_each_item(self):
        st, doc, _ = self.post({"source": "api-test", "items": [
            {"mailbox": "Alice@Example.Test", "bytes": 1000, "messages": 10},
            {"mailbox": "nobody@example.test", "bytes": 1},
            {"mailbox": "not an address", "bytes": 1},
            {"mailbox": "bob@example.test"},
            {"mailbox": "bob@example.test", "bytes": 1.5},
            {"bytes": 1},
            7,
            {"mailbox": "bob@example.test", "bytes": 2000, "extra": 1},
            {"mailbox": "dave@example.test", "bytes": 5, "messages": 6},
            {"mailbox": "dave@example.test", "messages": 7},  # in order: bytes stay 5
        ]})
        self.assertEqual(st, 200, doc)
        res = doc["results"]
        self.assertEqual((doc["applied"], doc["failed"], doc["dry_run"]), (3, 7, False))
        self.assertEqual(res[0], {"mailbox": "alice@example.test", "status": "applied",
                                  "changed": True,
                                  "usage": {"bytes": 1000, "messages": 10}})
        self.assertEqual(res[1]["error"], "unknown_mailbox")
        self.assertEqual((res[2]["error"], res[2]["field"], res[2]["mailbox"]),
                         ("invalid_address", "mailbox", "not an address"))
        self.assertEqual(res[3]["error"], "invalid_item")
        self.assertEqual((res[4]["error"], res[4]["field"]), ("invalid_item", "bytes"))
        self.assertEqual((res[5]["error"], res[5]["field"]), ("invalid_item", "mailbox"))
        self.assertNotIn("mailbox", res[5])
        self.assertEqual(res[6]["error"], "invalid_item")
        self.assertEqual(res[7]["error"], "invalid_item")
        self.assertEqual(res[8]["usage"], {"bytes": 5, "messages": 7})
        self.assertEqual(res[9]["usage"], {"bytes": 5, "messages": 7})
        self.assertEqual(self.figures("dave@example.test"), (5, 7))
        self.assertEqual(self.figures("alice@example.test"), (1000, 10))
        # one audit record per changed mailbox, with the token
        row = self.db.sql("SELECT count(*), min(token_id) FROM audit_log"
                          " WHERE action = 'usage.load' AND object = 'dave@example.test'"
                          " AND after->'usage'->>'source' = 'api-test'")
        self.assertEqual(row.split("|")[0], "1")
        self.assertNotEqual(row.split("|")[1], "")

    def test_endpoint_dry_run(self):
        before = self.figures("carol@example.test")
        n = self.audit_count("carol@example.test")
        st, doc, _ = self.post({"source": "x", "items": [
            {"mailbox": "carol@example.test", "bytes": 123456789}]}, "?dry_run=true")
        self.assertEqual(st, 200, doc)
        self.assertTrue(doc["dry_run"])
        self.assertEqual(doc["results"][0]["usage"]["bytes"], 123456789)
        self.assertEqual(self.figures("carol@example.test"), before)
        self.assertEqual(self.audit_count("carol@example.test"), n)

    def test_endpoint_limits_and_refusals(self):
        item = {"mailbox": "u1@bulk.test", "bytes": 1}
        st, doc, _ = self.post({"source": "x", "items": [item] * 5001})
        self.assertEqual((st, doc["error"]), (413, "too_many_items"))
        st, doc, _ = self.post({"source": "x", "items": [item] * 5000})
        self.assertEqual((st, doc["applied"]), (200, 5000))
        body = json.dumps({"source": "x", "items": [
            {"mailbox": "a" * 200 + "@bulk.test", "bytes": 1}] * 2700})
        self.assertGreater(len(body), 512 * 1024)
        # sent chunked, so that it is read (an announced length is refused unread)
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        c.request("POST", "/v1/usage/recalculations",
                  body=(body[i:i + 65536].encode() for i in range(0, len(body), 65536)),
                  headers={"Content-Type": "application/json", **self.d.auth},
                  encode_chunked=True)
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())["error"]), (413, "body_too_large"))
        c.close()
        for bad, code in ((["not", "an", "object"], "invalid_body"),
                          ({"items": [item]}, "invalid_field"),
                          ({"source": "x", "items": []}, "invalid_body"),
                          ({"source": "x", "items": [item], "more": 1}, "invalid_body"),
                          ({"source": "x", "measured_at": "soon", "items": [item]},
                           "invalid_field")):
            with self.subTest(body=bad):
                st, doc, _ = self.post(bad)
                self.assertEqual((st, doc["error"]), (400, code))
        st, doc, _ = self.post({"source": "x", "items": [item]}, "?dry_run=maybe")
        self.assertEqual((st, doc["error"]), (400, "invalid_parameter"))
        st, doc, _ = self.post({"source": "x", "items": [item]}, "?verbose=1")
        self.assertEqual((st, doc["error"]), (400, "invalid_parameter"))

    def test_concurrent_with_report_batches(self):
        """Recalculations naming the mailboxes in reverse order and report batches naming them
        in random order, at once: both lock in id order, so no batch deadlocks or times out."""
        boxes = [f"u{i}@bulk.test" for i in range(300)]
        failures = []

        def reports(seed):
            rnd = random.Random(seed)
            for b in range(15):
                batch = [{"mailbox": a, "bytes": 1, "key": f"conc/{seed}/{b}/{a}"}
                         for a in rnd.sample(boxes, 60)]
                st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": batch})
                if st != 200:
                    failures.append(("reports", st, doc))

        def recalcs():
            for k in range(6):
                st, doc, _ = self.post({"source": "conc", "items": [
                    {"mailbox": a, "bytes": 4096 + k, "messages": k} for a in reversed(boxes)]})
                if st != 200 or doc["applied"] != 300:
                    failures.append(("recalc", st, doc))

        threads = [threading.Thread(target=reports, args=(i,)) for i in range(4)]
        threads.append(threading.Thread(target=recalcs))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        log = self.d.read_log()
        self.assertNotIn("usage_batch_failed", log)
        self.assertNotIn("usage_recalc_failed", log)

    def test_scopes(self):
        usage = mqtest.bootstrap_token(self.db.conninfo, "lda", "scope=usage")
        read = mqtest.bootstrap_token(self.db.conninfo, "ro", "scope=read")
        body = {"source": "x", "items": [{"mailbox": "u2@bulk.test", "bytes": 9}]}
        st = mqtest.eventually(lambda: self.post(body, token=usage)[0], 200)
        self.assertEqual(st, 200)
        st = mqtest.eventually(lambda: self.post(body, token=read)[0], 403)
        self.assertEqual(st, 403)
        self.assertEqual(self.post(body, token=False)[0], 401)


if __name__ == "__main__":
    unittest.main()
