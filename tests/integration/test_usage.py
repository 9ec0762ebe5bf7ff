"""Usage accounting against the real daemon and PostgreSQL: idempotent reports, recalculation,
concurrency (16 writers; one key raced by two batches), PostgreSQL down (503 + Retry-After,
nothing half-applied) and kill -9 of the daemon during a report storm."""
import http.client
import json
import os
import random
import signal
import sys
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

    def test_same_key_twice_in_one_batch(self):
        # user1 was added before acct, so it has the lower id (the order rows are taken in)
        before = {a: used(self.db, a) for a in ("acct@example.test", "user1@example.test")}
        same = {"mailbox": "acct@example.test", "bytes": 5, "messages": 1, "key": "twice/same"}
        st, doc, _ = post_usage(self.d, [
            same,
            {"mailbox": "user1@example.test", "bytes": 3, "key": "twice/innocent"},
            dict(same),                                     # an identical copy
            dict(same, bytes=6),                            # the key with other content
            {"mailbox": "acct@example.test", "bytes": 2, "key": "twice/cross"},
            {"mailbox": "user1@example.test", "bytes": 2, "key": "twice/cross"},
        ])
        self.assertEqual(st, 200, doc)
        res = doc["results"]
        # the identical copies: one counted, the other answered as its retry, same usage
        self.assertEqual(sorted([(res[0]["status"], res[0]["duplicate"]),
                                 (res[2]["status"], res[2]["duplicate"])]),
                         [("applied", False), ("applied", True)])
        self.assertEqual(res[0]["usage"], res[2]["usage"])
        self.assertEqual(res[3]["error"], "key_conflict")
        self.assertEqual((res[1]["status"], res[1]["duplicate"]), ("applied", False))
        # one key for two mailboxes: exactly one counts, the other is a conflict
        cross = sorted(r.get("status", r.get("error")) for r in res[4:])
        self.assertEqual(cross, ["applied", "key_conflict"])
        winner = next(r["mailbox"] for r in res[4:] if r.get("status") == "applied")
        want = {"acct@example.test": (before["acct@example.test"][0] + 5,
                                      before["acct@example.test"][1] + 1),
                "user1@example.test": (before["user1@example.test"][0] + 3,
                                       before["user1@example.test"][1])}
        want[winner] = (want[winner][0] + 2, want[winner][1])
        self.assertEqual({a: used(self.db, a) for a in want}, want)
        self.assertEqual(self.db.sql("SELECT count(*) FROM usage_ledger"
                                     " WHERE idempotency_key LIKE 'twice/%'"), "3")

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


class KeyRace(unittest.TestCase):
    """Issue 9, finding 11: one key sent at once in two batches for different mailboxes, next to
    innocent reports. Every report must be answered for itself (never a 503 for the batch) and
    PostgreSQL must never find a deadlock, however the two transactions interleave."""
    ROUNDS = 100
    TIME_LIMIT = 90  # seconds; a deadlock stalls a round for deadlock_timeout (1 s)
    APP = "mq-keyrace"  # the daemon's connections, told apart from the helper daemon's

    def test_one_key_raced_by_two_batches(self):
        db = mqtest.Database()
        d = None
        try:
            db.cli("domain", "add", "race.test")
            # ids in this order: a < m0..m19 < b < n0..n19 < z, the order rows are locked in
            boxes = ["a"] + [f"m{i}" for i in range(20)] + ["b"] + [f"n{i}" for i in range(20)]
            db.sql("INSERT INTO mailboxes (domain_id, local_part) SELECT d.id, v.box FROM"
                   " domains d, unnest(ARRAY['" + "','".join(boxes) + "'])"
                   " WITH ORDINALITY v(box, o) ORDER BY v.o")
            db.cli("mailbox", "add", "z@race.test")
            boxes.append("z")
            # two batches at once need two HTTP threads (the default, 1, serialises them); a
            # connection stays on one thread, so each round opens new ones
            d = mqtest.Daemon(f"{db.conninfo} application_name={self.APP}",
                              database_pool_size=4, http_threads=8)

            def rep(box, nbytes, key):
                return {"mailbox": f"{box}@race.test", "bytes": nbytes, "messages": 1,
                        "key": key}

            # Batch 1 sends the raced key for a, batch 2 for b; each also has innocent reports
            # with keys of their own (batch 1's on m0..m19 and b, batch 2's on n0..n19), and
            # both send one more key with identical content (one applied, one duplicate). The
            # innocent reports widen the windows of the old failures: batch 2 committing the
            # key while batch 1 waits on it (a unique violation), and batch 2 waiting on batch
            # 1's key while holding b, which batch 1 then wants (a deadlock).
            rnd = random.Random(11)
            batches = []
            for r in range(self.ROUNDS):
                b1 = [rep("a", 1000 + r, f"race/{r}"), rep("z", 7, f"same/{r}")]
                b1 += [rep(f"m{i}", 10 + i, f"innocent1/{r}/{i}") for i in range(20)]
                b1.append(rep("b", 5, f"innocent1/{r}/b"))
                b2 = [rep("b", 2000 + r, f"race/{r}"), rep("z", 7, f"same/{r}")]
                b2 += [rep(f"n{i}", 30 + i, f"innocent2/{r}/{i}") for i in range(20)]
                rnd.shuffle(b1)
                rnd.shuffle(b2)
                batches.append((b1, b2))
            bodies = [[json.dumps({"reports": b}) for b in pair] for pair in batches]
            answers = [[None, None] for _ in range(self.ROUNDS)]
            deadline = time.monotonic() + self.TIME_LIMIT
            stop = [False]

            def at_barrier():  # run by one thread once both are there: both see one verdict
                stop[0] = time.monotonic() > deadline

            barrier = threading.Barrier(2, action=at_barrier, timeout=60)

            def sender(side):
                try:
                    for r in range(self.ROUNDS):
                        conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=30)
                        conn.connect()
                        barrier.wait()
                        if stop[0]:
                            conn.close()
                            return
                        t0 = time.monotonic()
                        conn.request("POST", "/v1/usage", bodies[r][side],
                                     {"Content-Type": "application/json", **d.auth})
                        resp = conn.getresponse()
                        answers[r][side] = (resp.status, json.loads(resp.read()),
                                            time.monotonic() - t0)
                        conn.close()
                except Exception as e:  # noqa: BLE001 - counted below as a failed round
                    answers[r][side] = (repr(e), None, 0.0)
                    barrier.abort()

            threads = [threading.Thread(target=sender, args=(side,)) for side in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            problems = {"rounds_with_a_batch_not_200": 0, "innocent_not_applied": 0,
                        "raced_key_not_one_applied_one_conflict": 0,
                        "same_key_not_one_applied_one_duplicate": 0,
                        "deadlocks_in_postgresql": 0, "deadlocks_in_daemon_log": 0,
                        "usage_totals_wrong": 0}
            rounds = [a for a in answers if a[0] is not None and a[1] is not None]
            want = {box: [0, 0] for box in boxes}
            counted = 0
            slowest = 0.0
            for r, ((b1, b2), (x1, x2)) in enumerate(zip(batches, answers)):
                if x1 is None or x2 is None:
                    continue
                slowest = max(slowest, x1[2], x2[2])
                by_key = {}
                for batch, (status, doc, _) in ((b1, x1), (b2, x2)):
                    if status != 200:  # its innocent reports failed with it
                        problems["innocent_not_applied"] += sum(
                            sent["key"].startswith("innocent") for sent in batch)
                        continue
                    for sent, got in zip(batch, doc["results"]):
                        by_key.setdefault(sent["key"].split("/")[0], []).append((sent, got))
                        if got.get("status") == "applied" and not got["duplicate"]:
                            box = sent["mailbox"].split("@")[0]
                            want[box][0] += sent["bytes"]
                            want[box][1] += sent["messages"]
                            counted += 1
                if x1[0] != 200 or x2[0] != 200:
                    problems["rounds_with_a_batch_not_200"] += 1
                    continue
                for sent, got in by_key["innocent1"] + by_key["innocent2"]:
                    if (got.get("status"), got.get("duplicate")) != ("applied", False):
                        problems["innocent_not_applied"] += 1
                if sorted(g.get("status", g.get("error")) for _, g in by_key["race"]) != \
                        ["applied", "key_conflict"]:
                    problems["raced_key_not_one_applied_one_conflict"] += 1
                same = [g for _, g in by_key["same"]]
                if sorted((g.get("status"), g.get("duplicate")) for g in same) != \
                        [("applied", False), ("applied", True)] or \
                        same[0]["usage"] != same[1]["usage"]:
                    problems["same_key_not_one_applied_one_duplicate"] += 1
            # a backend reports its statistics by the time it exits at the latest: stop the
            # daemon and wait until its connections are gone
            backends = ("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                        f" current_database() AND application_name = '{self.APP}'")
            self.assertNotEqual(db.sql(backends), "0")
            d.stop()
            problems["deadlocks_in_daemon_log"] = d.read_log().count("deadlock detected")
            self.assertEqual(mqtest.eventually(lambda: db.sql(backends), "0"), "0")
            problems["deadlocks_in_postgresql"] = int(db.sql(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
            got = {row.split("|")[0]: [int(row.split("|")[1]), int(row.split("|")[2])]
                   for row in db.sql("SELECT local_part, used_bytes, used_messages"
                                     " FROM mailboxes").splitlines()}
            problems["usage_totals_wrong"] = int(got != want) + int(
                int(db.sql("SELECT count(*) FROM usage_ledger")) != counted)
            summary = (f"{len(rounds)} rounds of {self.ROUNDS}, slowest batch {slowest:.2f}s: "
                       + ", ".join(f"{k}={v}" for k, v in problems.items()))
            print(f"\nkey race: {summary}", file=sys.stderr)
            self.assertEqual(problems, dict.fromkeys(problems, 0), summary)
            self.assertEqual(len(rounds), self.ROUNDS, summary)
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
