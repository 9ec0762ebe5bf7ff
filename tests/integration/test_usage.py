"""Usage accounting against the real daemon and PostgreSQL: idempotent reports, recalculation,
concurrency (16 writers), PostgreSQL down (503 + Retry-After, nothing half-applied) and kill -9
of the daemon during a report storm."""
import http.client
import json
import os
import random
import signal
import threading
import time
import unittest

import mqtest


def post_usage(d, reports, timeout=30):
    return d.http("POST", "/v1/usage", {"reports": reports})


def used(db, addr):
    local, domain = addr.split("@")
    return tuple(int(x) for x in db.sql(
        "SELECT used_bytes || ' ' || used_messages FROM mailboxes m JOIN domains d"
        f" ON d.id = m.domain_id WHERE m.local_part = '{local}' AND d.name = '{domain}'").split())


class UsageApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.db.cli("mailbox", "add", "acct@example.test", "storage=10000")
        cls.d = mqtest.Daemon(cls.db.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def test_report_retry_and_conflict(self):
        before = used(self.db, "acct@example.test")
        rep = {"mailbox": "acct@example.test", "bytes": 700, "messages": 1, "key": "t1/acct"}
        st, doc, _ = post_usage(self.d, [rep])
        self.assertEqual(st, 200, doc)
        r = doc["results"][0]
        self.assertEqual((r["status"], r["duplicate"], r["clamped"]), ("applied", False, False))
        self.assertEqual(r["usage"], {"bytes": before[0] + 700, "messages": before[1] + 1})
        st, doc2, _ = post_usage(self.d, [rep])                     # a retry
        self.assertEqual(doc2["results"][0]["usage"], r["usage"])   # the original result
        self.assertTrue(doc2["results"][0]["duplicate"])
        self.assertEqual(used(self.db, "acct@example.test"), (before[0] + 700, before[1] + 1))
        st, doc3, _ = post_usage(self.d, [dict(rep, bytes=701)])   # same key, other content
        self.assertEqual(doc3["results"][0]["error"], "key_conflict")
        self.assertEqual(used(self.db, "acct@example.test"), (before[0] + 700, before[1] + 1))

    def test_aliases_resolve_as_for_checks(self):
        self.db.cli("alias", "add", "acct-alias@example.test", "acct@example.test")
        time.sleep(0.2)
        before = used(self.db, "acct@example.test")
        st, doc, _ = post_usage(self.d, [
            {"recipient": "Acct-Alias+x@Example.Test", "bytes": 5, "key": "alias/1"},
            {"recipient": "team@example.test", "bytes": 5, "key": "alias/2"},
            {"recipient": "nobody@nowhere.test", "bytes": 5, "key": "alias/3"},
            {"mailbox": "tofull@example.test", "bytes": 5, "key": "alias/4"},
        ])
        res = doc["results"]
        self.assertEqual(res[0]["mailbox"], "acct@example.test")
        self.assertEqual(res[0]["status"], "applied")
        self.assertEqual(res[1]["error"], "ambiguous_recipient")
        self.assertEqual(res[2]["error"], "unknown_recipient")
        self.assertEqual(res[3]["error"], "not_a_mailbox")
        self.assertEqual(used(self.db, "acct@example.test")[0], before[0] + 5)

    def test_clamped_at_zero(self):
        self.db.cli("mailbox", "add", "clamp@example.test")
        time.sleep(0.2)
        post_usage(self.d, [
            {"mailbox": "clamp@example.test", "bytes": 10, "messages": 1, "key": "c/1"}])
        st, doc, _ = post_usage(self.d, [
            {"mailbox": "clamp@example.test", "bytes": -50, "messages": -3, "key": "c/2"}])
        r = doc["results"][0]
        self.assertEqual((r["clamped"], r["usage"]), (True, {"bytes": 0, "messages": 0}))

    def test_recalculation_and_older_reports(self):
        self.db.cli("mailbox", "add", "recalc@example.test")
        time.sleep(0.2)
        st, doc, _ = self.d.http("PUT", "/v1/mailboxes/recalc@example.test/usage",
                                 {"bytes": 5000, "messages": 7, "source": "doveadm",
                                  "measured_at": "2030-01-01T12:00:00Z"})
        self.assertEqual(st, 200, doc)
        self.assertEqual(self.db.sql("SELECT usage_source FROM mailboxes WHERE"
                                     " local_part = 'recalc'"), "doveadm")
        st, doc, _ = post_usage(self.d, [
            {"mailbox": "recalc@example.test", "bytes": 100, "key": "r/old",
             "occurred_at": "2030-01-01T11:59:59Z"},
            {"mailbox": "recalc@example.test", "bytes": 100, "key": "r/new",
             "occurred_at": "2030-01-01T12:00:01Z"},
            {"mailbox": "recalc@example.test", "bytes": 1, "key": "r/undated"}])
        res = doc["results"]
        self.assertEqual([r["status"] for r in res], ["superseded", "applied", "applied"])
        self.assertEqual(used(self.db, "recalc@example.test"), (5101, 7))
        # the daemon's own view sees it
        self.assertEqual(mqtest.eventually(
            lambda: self.d.http("GET", "/v1/mailboxes/recalc@example.test/usage")[1]
            ["usage"]["bytes"], 5101), 5101)

    def test_validation(self):
        good = {"mailbox": "acct@example.test", "bytes": 1, "key": "v/1"}
        bad_reports = [
            dict(good, key=""), dict(good, key="has space"), dict(good, key="x" * 201),
            dict(good, key="caf\u00e9"), dict(good, bytes=1.5), dict(good, bytes="1"),
            dict(good, bytes=2 ** 62 + 1), dict(good, messages=-(2 ** 62) - 1),
            dict(good, extra=1), dict(good, occurred_at="yesterday"),
            {"bytes": 1, "key": "v/2"}, dict(good, recipient="a@b.test"),
            {k: v for k, v in good.items() if k != "bytes"},
        ]
        for rep in bad_reports:
            with self.subTest(rep=rep):
                st, doc, _ = post_usage(self.d, [rep])
                self.assertEqual((st, doc["error"]), (400, "invalid_report"))
        for body, code, err in (({"reports": []}, 400, "invalid_body"),
                                ({"reports": [good], "x": 1}, 400, "invalid_body"),
                                ({"reports": [good] * 1001}, 413, "too_many_reports")):
            st, doc, _ = self.d.http("POST", "/v1/usage", body)
            self.assertEqual((st, doc["error"]), (code, err))
        self.assertEqual(self.db.sql("SELECT count(*) FROM usage_ledger WHERE"
                                     " idempotency_key LIKE 'v/%'"), "0")
        st, doc, _ = self.d.http("PUT", "/v1/mailboxes/nobody@example.test/usage",
                                 {"bytes": 1, "source": "x"})
        self.assertEqual(st, 404)
        st, doc, _ = self.d.http("PUT", "/v1/mailboxes/acct@example.test/usage",
                                 {"bytes": -1, "source": "x"})
        self.assertEqual((st, doc["error"]), (400, "invalid_field"))
        st, doc, _ = self.d.http("PUT", "/v1/mailboxes/acct@example.test/usage", {"bytes": 1})
        self.assertEqual((st, doc["error"]), (400, "invalid_field"))
        st, doc, resp = self.d.http("DELETE", "/v1/mailboxes/acct@example.test/usage")
        self.assertEqual((st, resp.getheader("Allow")), (405, "GET, PUT"))

    def test_check_refuses_once_reports_fill_the_mailbox(self):
        self.db.cli("mailbox", "add", "fills@example.test", "storage=1000")
        time.sleep(0.2)
        self.assertEqual(self.d.policy(recipient="fills@example.test", size=600), "DUNNO")
        post_usage(self.d, [{"mailbox": "fills@example.test", "bytes": 600, "key": "f/1"}])
        self.assertEqual(mqtest.eventually(
            lambda: self.d.policy(recipient="fills@example.test", size=600),
            "552 5.2.2 Mailbox full"), "552 5.2.2 Mailbox full")


class Retention(unittest.TestCase):
    def test_keys_past_the_retention_window_are_pruned(self):
        db = mqtest.Database()
        d = None
        try:
            db.cli("domain", "add", "p.test")
            db.cli("mailbox", "add", "a@p.test")
            db.sql("INSERT INTO usage_ledger (idempotency_key, mailbox_id, bytes_delta,"
                   " messages_delta, status, clamped, used_bytes, used_messages, created_at)"
                   " SELECT k, id, 1, 0, 'applied', false, 1, 0, now() - i FROM mailboxes,"
                   " (VALUES ('old', interval '8 days'), ('recent', interval '6 days')) v(k, i)")
            d = mqtest.Daemon(db.conninfo)  # usage_key_retention: 7 days
            st, doc, _ = post_usage(d, [{"mailbox": "a@p.test", "bytes": 1, "key": "new"}])
            self.assertEqual(st, 200)
            self.assertEqual(db.sql("SELECT string_agg(idempotency_key, ','"
                                    " ORDER BY idempotency_key) FROM usage_ledger"),
                             "new,recent")
            self.assertIn("event=usage_ledger_pruned rows=1", d.read_log())
        finally:
            if d is not None:
                d.cleanup()
            db.close()


class DeliverWrapper(unittest.TestCase):
    def test_deliver_reports_once_and_spools_when_the_database_is_away(self):
        import subprocess
        import tempfile
        db = mqtest.Database()
        tmp = tempfile.mkdtemp(prefix="mq-deliver-")
        try:
            db.cli("domain", "add", "w.test")
            db.cli("mailbox", "add", "u@w.test")
            good, bad = os.path.join(tmp, "good.conf"), os.path.join(tmp, "bad.conf")
            spool = os.path.join(tmp, "spool")
            api = db.api()
            token = os.path.join(tmp, "token")
            with open(token, "w") as f:
                f.write(api.token + "\n")
            with open(good, "w") as f:
                f.write(f"api_url = http://127.0.0.1:{api.http_port}\n"
                        f"api_token_file = {token}\nreport_spool = {spool}\n")
            with open(bad, "w") as f:  # the API unreachable
                f.write(f"api_url = http://127.0.0.1:{mqtest.free_port()}\n"
                        f"api_token_file = {token}\nreport_spool = {spool}\n")
            msg = b"Subject: t\n\n" + b"z" * 1000 + b"\n"
            out = os.path.join(tmp, "out")

            def deliver(conf, key, agent="cat > \"$0\""):
                return subprocess.run([os.path.join(mqtest.BIN, "mailquota"), "-c", conf,
                                       "deliver", "U+x@W.test", f"key={key}", "--", "sh", "-c",
                                       agent, out], input=msg, capture_output=True)

            p = deliver(good, "q1/u")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(open(out, "rb").read(), msg)          # passed through intact
            self.assertEqual(used(db, "u@w.test"), (len(msg), 1))
            p = deliver(good, "q1/u")                               # Postfix redelivers
            self.assertEqual(used(db, "u@w.test"), (len(msg), 1))  # counted once
            p = deliver(good, "q2/u", "exit 75")                   # the agent defers
            self.assertEqual(p.returncode, 75)
            self.assertEqual(used(db, "u@w.test"), (len(msg), 1))  # nothing reported
            p = deliver(bad, "q3/u")                                # API away
            self.assertEqual(p.returncode, 0, p.stderr)             # delivered all the same
            self.assertIn(b"spooled", p.stderr)
            self.assertEqual(used(db, "u@w.test"), (len(msg), 1))
            for _ in range(2):                                     # flushing twice is safe
                p = subprocess.run([os.path.join(mqtest.BIN, "mailquota"), "-c", good,
                                    "usage", "flush"], capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(used(db, "u@w.test"), (2 * len(msg), 2))
            self.assertEqual(os.path.getsize(spool), 0)
        finally:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
            db.close()


class DovecotClone(unittest.TestCase):
    def test_quota_clone_writes_recalculate(self):
        db = mqtest.Database()
        try:
            db.cli("domain", "add", "dove.test")
            db.cli("mailbox", "add", "u@dove.test", "storage=1000")
            # what Dovecot's dict-sql does for priv/quota/storage and priv/quota/messages
            for sql in ("INSERT INTO dovecot_quota_clone (username, bytes) VALUES"
                        " ('U@Dove.Test', 600) ON CONFLICT (username) DO UPDATE SET"
                        " bytes = EXCLUDED.bytes",
                        "INSERT INTO dovecot_quota_clone (username, messages) VALUES"
                        " ('U@Dove.Test', 4) ON CONFLICT (username) DO UPDATE SET"
                        " messages = EXCLUDED.messages",
                        "INSERT INTO dovecot_quota_clone (username, bytes) VALUES"
                        " ('stranger@dove.test', 5)"):
                db.sql(sql)
            self.assertEqual(used(db, "u@dove.test"), (600, 4))
            self.assertEqual(db.sql("SELECT usage_source FROM mailboxes"), "dovecot")
        finally:
            db.close()


class Concurrency(unittest.TestCase):
    WRITERS = 16

    def test_16_writers_duplicates_and_retries(self):
        db = mqtest.Database()
        d = None
        try:
            db.cli("domain", "add", "conc.test", "pool=1T")
            boxes = ["hot@conc.test"] + [f"m{i}@conc.test" for i in range(200)]
            db.sql("INSERT INTO mailboxes (domain_id, local_part) SELECT d.id, 'm' || g"
                   " FROM domains d, generate_series(0, 199) g")
            db.cli("mailbox", "add", "hot@conc.test")
            d = mqtest.Daemon(db.conninfo, database_pool_size=8)
            acked = {}      # key -> (mailbox, bytes, messages)
            lock = threading.Lock()
            errors = []

            def writer(n):
                rnd = random.Random(n)
                sent = []
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=60)
                    for b in range(40):
                        if sent and rnd.random() < 0.25:
                            batch = rnd.choice(sent)           # a retry of an earlier batch
                        else:
                            batch = []
                            for i in range(rnd.randint(1, 12)):
                                box = "hot@conc.test" if rnd.random() < 0.4 else rnd.choice(boxes)
                                batch.append({"mailbox": box, "bytes": rnd.randint(1, 100000),
                                              "messages": 1, "key": f"w{n}/b{b}/r{i}"})
                            if rnd.random() < 0.2:             # a duplicate inside a batch
                                batch.append(dict(batch[0]))
                            sent.append(batch)
                        conn.request("POST", "/v1/usage", json.dumps({"reports": batch}),
                                     {"Content-Type": "application/json", **d.auth})
                        resp = conn.getresponse()
                        doc = json.loads(resp.read())
                        if resp.status != 200:
                            errors.append((resp.status, doc))
                            continue
                        with lock:
                            for rep, res in zip(batch, doc["results"]):
                                if res.get("status") != "applied":
                                    errors.append(res)
                                acked[rep["key"]] = (rep["mailbox"], rep["bytes"], 1)
                    conn.close()
                except Exception as e:  # noqa: BLE001 - reported by the assertion below
                    errors.append(repr(e))

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(self.WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertGreater(len(acked), 2000)
            want = {}
            for box, b, m in acked.values():
                wb, wm = want.get(box, (0, 0))
                want[box] = (wb + b, wm + m)
            got = {f"{row.split('|')[0]}@conc.test": (int(row.split("|")[1]),
                                                      int(row.split("|")[2]))
                   for row in db.sql("SELECT local_part, used_bytes, used_messages"
                                     " FROM mailboxes").splitlines()}
            for box in boxes:
                self.assertEqual(got[box], want.get(box, (0, 0)), box)
            self.assertEqual(int(db.sql("SELECT count(*) FROM usage_ledger")), len(acked))
            # the domain pool in the daemon's view equals the exact sum
            total = sum(b for b, _ in want.values())
            self.assertEqual(mqtest.eventually(
                lambda: d.http("GET", "/v1/mailboxes/hot@conc.test/usage")[1]
                ["domain"]["pool_used_bytes"], total), total)
        finally:
            if d is not None:
                d.cleanup()
            db.close()


class Faults(unittest.TestCase):
    def test_database_down_gets_503_and_nothing_half_applied(self):
        cluster = mqtest.Cluster()
        d = None
        try:
            db = mqtest.Database(host=cluster.dir)
            db.cli("domain", "add", "f.test")
            db.cli("mailbox", "add", "a@f.test")
            d = mqtest.Daemon(db.conninfo)
            cluster.stop()
            st, doc, resp = post_usage(d, [{"mailbox": "a@f.test", "bytes": 5, "key": "k1"}])
            self.assertEqual((st, doc["error"]), (503, "database_unavailable"))
            self.assertEqual(resp.getheader("Retry-After"), "5")
            st, doc, resp = d.http("PUT", "/v1/mailboxes/a@f.test/usage",
                                   {"bytes": 1, "source": "t"})
            self.assertEqual((st, resp.getheader("Retry-After")), (503, "5"))
            cluster.start()
            self.assertEqual(used(db, "a@f.test"), (0, 0))
            self.assertEqual(db.sql("SELECT count(*) FROM usage_ledger"), "0")
            self.assertEqual(mqtest.eventually(lambda: post_usage(
                d, [{"mailbox": "a@f.test", "bytes": 5, "key": "k1"}])[0], 200, 30), 200)
            self.assertEqual(used(db, "a@f.test"), (5, 0))
        finally:
            if d is not None:
                d.cleanup()
            cluster.destroy()

    def test_kill_9_during_a_report_storm(self):
        db = mqtest.Database()
        d = None
        try:
            db.cli("domain", "add", "k.test")
            db.sql("INSERT INTO mailboxes (domain_id, local_part) SELECT d.id, 'b' || g"
                   " FROM domains d, generate_series(0, 19) g")
            d = mqtest.Daemon(db.conninfo, database_pool_size=4)
            port = d.http_port
            auth = d.auth
            reports = [{"mailbox": f"b{i % 20}@k.test", "bytes": 1000 + i, "messages": 1,
                        "key": f"storm/{i}"} for i in range(3000)]
            pending = list(range(0, 3000, 10))   # batches of 10, by first index
            lock = threading.Lock()
            done = set()

            def client():
                while True:
                    with lock:
                        todo = [b for b in pending if b not in done]
                    if not todo:
                        return
                    b = random.choice(todo)
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                        c.request("POST", "/v1/usage",
                                  json.dumps({"reports": reports[b:b + 10]}),
                                  {"Content-Type": "application/json", **auth})
                        r = c.getresponse()
                        body = r.read()
                        c.close()
                        if r.status == 200:
                            assert all(x.get("status") == "applied"
                                       for x in json.loads(body)["results"])
                            with lock:
                                done.add(b)
                    except (OSError, http.client.HTTPException):
                        time.sleep(0.05)  # daemon gone: retry the same keys later

            threads = [threading.Thread(target=client) for _ in range(8)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            os.kill(d.proc.pid, signal.SIGKILL)   # mid-storm
            d.proc.wait()
            self.assertLess(len(done), len(pending))
            d2 = mqtest.Daemon(db.conninfo, token=d.token, http_listen=f"127.0.0.1:{port}")
            for t in threads:
                t.join(timeout=120)
            self.assertEqual(len(done), len(pending))
            want_b = sum(r["bytes"] for r in reports)
            self.assertEqual(int(db.sql("SELECT sum(used_bytes) FROM mailboxes")), want_b)
            self.assertEqual(int(db.sql("SELECT sum(used_messages) FROM mailboxes")), 3000)
            self.assertEqual(db.sql("SELECT count(*) FROM usage_ledger"), "3000")
            d2.cleanup()
        finally:
            if d is not None:
                d.cleanup()
            db.close()


if __name__ == "__main__":
    unittest.main()
