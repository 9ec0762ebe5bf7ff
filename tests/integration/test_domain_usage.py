"""Domain usage figures (sql/011_domain_usage.sql) against the real daemon and PostgreSQL: every
domain document's usage equals what its mailboxes' documents add up to, after reports,
recalculations, creations, deletions, moves and limit changes that flip over-quota, both
before the deltas are folded and after; usage reports never wait for each other or for a fold
(no row per domain is locked); domain lists sorted and filtered by usage, page by page;
GET /v1/stats against sums made here; the CLI; the migration's backfill; the daemon's fold."""
import decimal
import json
import os
import re
import select
import subprocess
import threading
import time
import unittest
import urllib.parse

import mqtest

DOMAINS = "/v1/domains"
MAILBOXES = "/v1/mailboxes"
FOLD_LOCK = "1836147829, 0"  # mq_fold_domain_usage()'s advisory lock ('mqdu', sql/011)
SORTS = ("bytes", "messages", "mailboxes", "over_quota", "pool_usage", "name", "updated_at")


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


class Session:
    """An interactive psql session, for transactions left open across steps of a test."""

    def __init__(self, db):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-h", db.host, "-U",
                                   "postgres", "-d", db.name], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""

    def run(self, sql, timeout=10):
        """Send sql; its output lines, or AssertionError when it does not finish in time."""
        self.p.stdin.write((sql + "\n\\echo __done__\n").encode())
        self.p.stdin.flush()
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while b"__done__\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"psql did not finish {sql!r} within {timeout} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"psql ended: {self.buf!r}")
            self.buf += chunk
        out, self.buf = self.buf.split(b"__done__\n", 1)
        return [line for line in out.decode().splitlines() if line]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


class FoldBlocked:
    """Within it, no session can fold (the fold's advisory lock is held): deltas stay pending,
    whatever the daemon does meanwhile."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.s = Session(self.db)
        self.s.run(f"SELECT pg_advisory_lock({FOLD_LOCK});")
        return self

    def __exit__(self, *exc):
        self.s.close()


def fold(db):
    """Fold everything pending now; how many deltas."""
    n = 0
    while True:
        got = int(db.sql("SELECT mq_fold_domain_usage()"))
        if got <= 0:
            return n
        n += got


def pending(db):
    return int(db.sql("SELECT count(*) FROM domain_usage_delta"))


def pool_percent(nbytes, pool):
    """What the documents say: bytes of the pool in percent, 2 decimals rounded half up; None
    without a pool limit, or with a zero one and bytes used."""
    if pool is None or (pool == 0 and nbytes > 0):
        return None
    if pool == 0:
        return 0.0
    return float((decimal.Decimal(nbytes) * 100 / pool).quantize(
        decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP))


class Base(unittest.TestCase):
    daemon_options = {}

    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        cls.d = mqtest.Daemon(cls.db.conninfo, **cls.daemon_options)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def call(self, method, path, body=None, want=200, token=True):
        st, doc, _ = self.d.http(method, path, body, token=token)
        self.assertEqual(st, want, f"{method} {path}: {doc}")
        return doc

    def pages(self, path, **params):
        out, cursor = [], None
        while True:
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            doc = self.call("GET", q(path, **p))
            out += doc["items"]
            cursor = doc["next_cursor"]
            if cursor is None:
                return out

    def report(self, *reports):
        # reports name mailboxes through the daemon's view, which learns of new ones by NOTIFY
        for m in {r[0] for r in reports}:
            self.assertEqual(mqtest.eventually(
                lambda: self.d.http("GET", f"{MAILBOXES}/{m}/usage")[0], 200), 200, m)
        doc = self.call("POST", "/v1/usage", {"reports": [
            {"mailbox": m, "bytes": b, "messages": n, "key": f"{m}/{time.time_ns()}/{i}"}
            for i, (m, b, n) in enumerate(reports)]})
        self.assertTrue(all("status" in r for r in doc["results"]), doc)

    def expected(self):
        """Every domain's figures as its mailboxes' documents add them up."""
        want = {d["name"]: {"bytes": 0, "messages": 0, "mailboxes": 0, "over_quota": 0,
                            "pool": d["pool_limit_bytes"]}
                for d in self.pages(DOMAINS, limit=1000)}
        for m in self.pages(MAILBOXES, limit=1000):
            w = want[m["domain"]]
            w["bytes"] += m["usage"]["bytes"]
            w["messages"] += m["usage"]["messages"]
            w["mailboxes"] += 1
            w["over_quota"] += m["usage"]["over_quota"]
        for w in want.values():
            pool = w.pop("pool")
            w["pool_percent"] = pool_percent(w["bytes"], pool)
            w["pool_remaining_bytes"] = None if pool is None else max(pool - w["bytes"], 0)
        return want

    def assert_exact(self):
        """Domain documents (one by one and in the list) and the stats equal the sums of the
        mailbox documents."""
        want = self.expected()
        listed = {d["name"]: d["usage"] for d in self.pages(DOMAINS, limit=1000)}
        self.assertEqual(listed, want)
        for name in want:
            self.assertEqual(self.call("GET", f"{DOMAINS}/{name}")["usage"], want[name], name)
        st = self.call("GET", "/v1/stats")
        self.assertEqual(st["usage"], {"bytes": sum(w["bytes"] for w in want.values()),
                                       "messages": sum(w["messages"] for w in want.values())})
        self.assertEqual(st["mailboxes"]["total"], sum(w["mailboxes"] for w in want.values()))
        self.assertEqual(st["mailboxes"]["over_quota"],
                         sum(w["over_quota"] for w in want.values()))
        self.assertEqual(st["domains"]["total"], len(want))
        return want


class Figures(Base):
    daemon_options = {"database_lock_timeout": 1}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for body in ({"name": "a.test", "pool_limit_bytes": 10000,
                      "default_storage_limit_bytes": 1000},
                     {"name": "b.test"}, {"name": "empty.test", "pool_limit_bytes": 0}):
            assert cls.d.http("POST", DOMAINS, body)[0] == 201

    def test_figures_follow_every_change_before_and_after_the_fold(self):
        with FoldBlocked(self.db):
            for a, extra in (("m1@a.test", {}), ("m2@a.test", {}),
                             ("m3@a.test", {"storage_limit_bytes": 100}),
                             ("m4@a.test", {"enabled": False}), ("m5@b.test", {})):
                self.call("POST", MAILBOXES, {"address": a, **extra}, want=201)
            self.assert_exact()
            self.report(("m1@a.test", 900, 3), ("m2@a.test", 1500, 2), ("m3@a.test", 50, 1),
                        ("m5@b.test", 7, 1), ("m4@a.test", 10, 1))
            want = self.assert_exact()
            self.assertEqual(want["a.test"]["over_quota"], 1)  # m2: 1500 of 1000
            self.report(("m1@a.test", -2000, -5))                # clamped at 0
            self.call("PUT", f"{MAILBOXES}/m3@a.test/usage", {"bytes": 101, "source": "t"})
            self.assertEqual(self.assert_exact()["a.test"]["over_quota"], 2)
            # limits: the mailbox's own, then the domain default, flip over-quota both ways
            self.call("PATCH", f"{MAILBOXES}/m3@a.test", {"storage_limit_bytes": None})
            self.assertEqual(self.assert_exact()["a.test"]["over_quota"], 1)
            self.call("PATCH", f"{DOMAINS}/a.test", {"default_storage_limit_bytes": 5})
            self.assertEqual(self.assert_exact()["a.test"]["over_quota"], 3)  # all but m1
            self.call("PATCH", f"{DOMAINS}/a.test", {"default_storage_limit_bytes": None})
            self.assertEqual(self.assert_exact()["a.test"]["over_quota"], 0)
            self.call("PATCH", f"{DOMAINS}/a.test", {"pool_limit_bytes": 1600})
            self.assertEqual(self.assert_exact()["a.test"]["pool_percent"], 100.69)
            # a move (no API does it; SQL may) and Dovecot's quota_clone
            self.db.sql("UPDATE mailboxes SET domain_id = (SELECT id FROM domains"
                        " WHERE name = 'b.test') WHERE address = 'm2@a.test'")
            self.db.sql("INSERT INTO dovecot_quota_clone VALUES ('m5@b.test', 123456, 42)")
            want = self.assert_exact()
            self.assertEqual((want["b.test"]["mailboxes"], want["b.test"]["bytes"]),
                             (2, 1500 + 123456))
            self.call("DELETE", f"{MAILBOXES}/m1@a.test", want=204)
            self.assert_exact()
            self.assertGreater(pending(self.db), 0)  # all of it was read unfolded
        self.assertGreater(fold(self.db), 0)
        self.assertEqual(pending(self.db), 0)
        self.assert_exact()

    def test_a_deleted_and_recreated_domain_starts_from_nothing(self):
        self.call("POST", DOMAINS, {"name": "gone.test"}, want=201)
        self.call("POST", MAILBOXES, {"address": "x@gone.test"}, want=201)
        self.report(("x@gone.test", 5000, 5))
        fold(self.db)
        self.report(("x@gone.test", 1, 1))  # pending when the domain goes
        self.call("DELETE", f"{DOMAINS}/gone.test", want=204)
        self.assert_exact()
        self.call("POST", DOMAINS, {"name": "gone.test"}, want=201)
        self.assertEqual(self.call("GET", f"{DOMAINS}/gone.test")["usage"]["bytes"], 0)
        fold(self.db)  # the old domain's deltas are dropped, not added to the new one
        self.assertEqual(self.assert_exact()["gone.test"]["mailboxes"], 0)
        self.call("DELETE", f"{DOMAINS}/gone.test", want=204)

    def test_a_change_that_changes_nothing_is_not_audited_while_usage_moves(self):
        """Usage is in the document and moves under a change: a PATCH or an import that sets
        what the domain has already is no change (no audit record, "unchanged")."""
        self.call("POST", DOMAINS, {"name": "same.test", "grace_percent": 5}, want=201)
        self.call("POST", MAILBOXES, {"address": "s@same.test"}, want=201)
        self.report(("s@same.test", 1, 1))
        audits = lambda: int(self.db.sql(  # noqa: E731
            "SELECT count(*) FROM audit_log WHERE object = 'same.test'"))
        before, stop = audits(), threading.Event()

        def pump():
            i = 0
            while not stop.is_set():
                self.d.http("POST", "/v1/usage", {"reports": [
                    {"mailbox": "s@same.test", "bytes": 1, "messages": 1,
                     "key": f"pump/{i}"}]})
                i += 1

        t = threading.Thread(target=pump)
        t.start()
        try:
            for _ in range(20):
                self.call("PATCH", f"{DOMAINS}/same.test", {"grace_percent": 5})
            st, doc, _ = self.d.http(
                "POST", "/v1/import",
                '{"type": "domain", "name": "same.test", "grace_percent": 5}\n',
                headers={"Content-Type": "application/x-ndjson"})
            self.assertEqual((st, doc["unchanged"], doc["updated"]), (200, 1, 0), doc)
        finally:
            stop.set()
            t.join()
        self.assertEqual(audits(), before)
        self.call("PATCH", f"{DOMAINS}/same.test", {"grace_percent": 6})
        self.assertEqual(audits(), before + 1)
        self.assert_exact()

    def test_reports_never_wait_for_a_domain_row(self):
        """Two transactions each hold a mailbox of one domain after reporting to it, and a
        third transaction holds a fold it has not committed: reports to other mailboxes of the
        same domain still go through at once (the daemon gives up on a lock after 1 s, so a
        row per domain locked by reports or by the fold would make them fail), reads too, and
        a report's transaction holds no lock on domain_usage."""
        self.call("POST", DOMAINS, {"name": "busy.test"}, want=201)
        for i in range(4):
            self.call("POST", MAILBOXES, {"address": f"r{i}@busy.test"}, want=201)
        ids = [self.db.sql(f"SELECT id FROM mailboxes WHERE address = 'r{i}@busy.test'")
               for i in range(4)]
        s1, s2, s3 = Session(self.db), Session(self.db), Session(self.db)
        try:
            s3.run(f"SELECT pg_advisory_lock({FOLD_LOCK});")  # only s3 folds from now on
            self.report(("r3@busy.test", 1, 1))  # something for s3's fold to lock
            for s, i in ((s1, 0), (s2, 1)):
                s.run("SET lock_timeout = '1s'; BEGIN;")
                out = s.run(f"SELECT status FROM mq_apply_usage_batch(ARRAY['open/{i}'],"
                            f" ARRAY[{ids[i]}]::bigint[], ARRAY[10]::bigint[],"
                            " ARRAY[1]::bigint[], ARRAY[NULL]::timestamptz[]);", timeout=5)
                self.assertEqual(out, ["applied"], out)
            pid = s1.run("SELECT pg_backend_pid();")[0]
            held = self.db.sql("SELECT string_agg(DISTINCT c.relname, ',' ORDER BY c.relname)"
                               " FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                               f" WHERE l.pid = {pid} AND c.relname LIKE 'domain%'")
            # appended to, and nothing of domains or domain_usage (or their indexes) locked
            self.assertEqual([h for h in held.split(",") if not h.startswith("domain_usage_d")],
                             [])
            self.assertIn("domain_usage_delta", held.split(","))
            s3.run("BEGIN;")
            self.assertGreater(int(s3.run("SELECT mq_fold_domain_usage();")[0]), 0)
            self.report(("r2@busy.test", 100, 1))  # 503 after 1 s if it waited for a lock
            self.report(("r3@busy.test", 100, 1))
            self.assertEqual(self.call("GET", f"{DOMAINS}/busy.test")["usage"]["mailboxes"], 4)
            for s in (s1, s2, s3):
                s.run("COMMIT;")
        finally:
            for s in (s1, s2, s3):
                s.close()
        self.assertEqual(self.assert_exact()["busy.test"]["bytes"], 221)

    def test_the_fold_skips_a_domain_an_admin_change_holds(self):
        """An open change of a domain's pool limit holds its domain_usage row: the fold does
        not wait for it (nor deadlock with an import changing several domains in its own
        order); it folds the other domains and leaves that one's deltas for later."""
        for name in ("held.test", "free.test"):
            self.call("POST", DOMAINS, {"name": name}, want=201)
            self.call("POST", MAILBOXES, {"address": f"m@{name}"}, want=201)
        fold(self.db)
        s = Session(self.db)
        try:
            s.run("BEGIN; UPDATE domains SET pool_limit_bytes = 5000 WHERE name = 'held.test';")
            with FoldBlocked(self.db):
                self.report(("m@held.test", 7, 1), ("m@free.test", 9, 1))
            t0 = time.time()
            fold(self.db)  # the daemon may fold too: either way the held domain waits
            self.assertLess(time.time() - t0, 5)
            left = self.db.sql("SELECT string_agg(DISTINCT d.name, ',') FROM domain_usage_delta x"
                               " JOIN domains d ON d.id = x.domain_id")
            self.assertEqual(left, "held.test")
            s.run("COMMIT;")
        finally:
            s.close()
        fold(self.db)
        self.assertEqual(pending(self.db), 0)
        exact = self.assert_exact()
        self.assertEqual((exact["held.test"]["bytes"], exact["free.test"]["bytes"]), (7, 9))

    def test_concurrent_reports_to_one_domain(self):
        self.call("POST", DOMAINS, {"name": "many.test"}, want=201)
        for i in range(8):
            self.call("POST", MAILBOXES, {"address": f"c{i}@many.test"}, want=201)
        self.report(*((f"c{i}@many.test", 0, 0) for i in range(8)))  # known to the view
        errors = []

        def writer(i):
            for j in range(15):
                st, doc, _ = self.d.http("POST", "/v1/usage", {"reports": [
                    {"mailbox": f"c{(i + k) % 8}@many.test", "bytes": 10 + k, "messages": 1,
                     "key": f"conc/{i}/{j}/{k}"} for k in range(3)]})
                if st != 200 or any("status" not in r for r in doc["results"]):
                    errors.append((st, doc))

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        want = self.assert_exact()["many.test"]
        self.assertEqual((want["bytes"], want["messages"]), (8 * 15 * 33, 8 * 15 * 3))
        fold(self.db)
        self.assert_exact()


class Lists(Base):
    """Nine domains whose figures differ in every order (some tied), some with pending deltas."""

    SPEC = [  # name, pool, [(storage limit, bytes, messages)...]
        ("d1.test", None, [(100, 50, 5)]),
        ("d2.test", 1000, [(100, 500, 1), (None, 10, 1)]),
        ("d3.test", 1000, [(10, 500, 9), (10, 11, 1), (None, 0, 0)]),
        ("d4.test", 0, []),
        ("d5.test", 0, [(None, 1, 1)]),
        ("d6.test", None, []),
        ("d7.test", 200, [(1000, 200, 2)]),
        ("d8.test", 3, [(1, 2, 2), (1, 2, 2)]),
        ("e9.test", 100000, [(None, 99, 3)]),
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, pool, boxes in cls.SPEC:
            assert cls.d.http("POST", DOMAINS, {"name": name, "pool_limit_bytes": pool})[0] \
                == 201
            for i, (lim, b, n) in enumerate(boxes):
                a = f"u{i}@{name}"
                assert cls.d.http("POST", MAILBOXES,
                                  {"address": a, "storage_limit_bytes": lim})[0] == 201
                cls.d.http("PUT", f"{MAILBOXES}/{a}/usage",
                           {"bytes": b, "messages": n, "source": "test"})
        fold(cls.db)
        # d2 and d7 then change unfolded: their figures must sort as they are now
        with FoldBlocked(cls.db):
            cls.d.http("POST", "/v1/usage", {"reports": [
                {"mailbox": "u0@d7.test", "bytes": 50, "messages": 1, "key": "l/1"},
                {"mailbox": "u1@d2.test", "bytes": 600, "messages": 1, "key": "l/2"}]})

    @staticmethod
    def key(doc, sort):
        u = doc["usage"]
        if sort in ("name", "updated_at"):
            return doc[sort]
        if sort == "pool_usage":
            pool = doc["pool_limit_bytes"]
            if pool is None:
                return -1
            return float("inf") if pool == 0 and u["bytes"] > 0 else \
                (u["bytes"] / pool if pool else 0)
        return u[sort]

    def check_orders(self):
        docs = self.pages(DOMAINS, limit=1000)  # by name: creation order, so by id too
        self.assertEqual([d["name"] for d in docs], sorted(d["name"] for d in docs))
        for sort in SORTS:
            want = [d["name"] for d in sorted(docs, key=lambda d: self.key(d, sort))]
            for limit in (1, 2, 4):
                with self.subTest(sort=sort, limit=limit):
                    got = [d["name"] for d in self.pages(DOMAINS, sort=sort, limit=limit)]
                    self.assertEqual(got, want)
                    got = [d["name"] for d in self.pages(DOMAINS, sort="-" + sort,
                                                         limit=limit)]
                    self.assertEqual(got, want[::-1])

    def test_sort_orders_page_by_page_pending_and_folded(self):
        with FoldBlocked(self.db):
            self.assertGreater(pending(self.db), 0)
            self.check_orders()
        fold(self.db)
        self.check_orders()

    def names(self, **params):
        return [d["name"] for d in self.pages(DOMAINS, limit=2, **params)]

    def test_filters(self):
        with FoldBlocked(self.db):
            self.assertEqual(self.names(over_quota="true"), ["d2.test", "d3.test", "d8.test"])
            self.assertEqual(self.names(over_quota="false"),
                             ["d1.test", "d4.test", "d5.test", "d6.test", "d7.test",
                              "e9.test"])
            # pools: d2 110 %, d3 51.1 %, d4 0 of 0, d5 1 of 0, d7 125 %, d8 133.33 %,
            # e9 0.099 %; exactly 125 % is "at least 125"
            self.assertEqual(self.names(min_pool_percent=0),
                             ["d2.test", "d3.test", "d4.test", "d5.test", "d7.test", "d8.test",
                              "e9.test"])
            self.assertEqual(self.names(min_pool_percent=1),
                             ["d2.test", "d3.test", "d5.test", "d7.test", "d8.test"])
            self.assertEqual(self.names(min_pool_percent=125),
                             ["d5.test", "d7.test", "d8.test"])
            self.assertEqual(self.names(min_pool_percent=126), ["d5.test", "d8.test"])
            self.assertEqual(self.names(min_pool_percent=1000000), ["d5.test"])
            self.assertEqual(self.names(min_pool_percent=100, over_quota="true",
                                        sort="-pool_usage"), ["d8.test", "d2.test"])
            self.assertEqual(self.names(prefix="d", over_quota="false", sort="-bytes"),
                             ["d7.test", "d1.test", "d5.test", "d6.test", "d4.test"])
            self.assertEqual(self.names(prefix="e", sort="-mailboxes"), ["e9.test"])

    def test_bad_parameters(self):
        for name, value in (("min_pool_percent", "-1"), ("min_pool_percent", "1.5"),
                            ("min_pool_percent", "1000001"), ("over_quota", "yes"),
                            ("sort", "usage"), ("sort", "-pool"), ("min_usage_percent", "1"),
                            ("enabled", "true"), ("cursor", "WyJieXRlcyIsIjEiLCIxIl0")):
            with self.subTest(name=name, value=value):
                self.call("GET", q(DOMAINS, **{name: value}), want=400)
        # a cursor of one usage order is refused by another
        doc = self.call("GET", q(DOMAINS, sort="bytes", limit=2))
        self.call("GET", q(DOMAINS, sort="messages", limit=2, cursor=doc["next_cursor"]),
                  want=400)
        self.call("GET", q(DOMAINS, sort="-bytes", limit=2, cursor=doc["next_cursor"]),
                  want=400)

    def test_stats(self):
        want = self.assert_exact()
        st = self.call("GET", q("/v1/stats", top=3))
        mb = self.pages(MAILBOXES, limit=1000)
        self.assertEqual(st["mailboxes"], {"total": len(mb), "enabled": len(mb),
                                           "disabled": 0,
                                           "over_quota": sum(m["usage"]["over_quota"]
                                                             for m in mb)})
        pools = {d["name"]: d["pool_limit_bytes"] for d in self.pages(DOMAINS, limit=1000)}
        self.assertEqual(st["domains"], {
            "total": 9, "over_quota": sum(1 for w in want.values() if w["over_quota"]),
            "pool_full": sum(1 for n, w in want.items()
                             if pools[n] is not None and w["bytes"] >= pools[n])})
        self.assertEqual(st["domains"]["pool_full"], 5)  # d2, d4 (0 of 0), d5, d7, d8
        top = sorted(want, key=lambda n: (-want[n]["bytes"], n))[:3]
        self.assertEqual([t["name"] for t in st["top_domains"]], top)
        self.assertEqual([t["usage"] for t in st["top_domains"]], [want[n] for n in top])
        self.assertEqual(st["aliases"], {"total": 0, "catch_all": 0})
        self.assertRegex(st["as_of"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertEqual(self.call("GET", q("/v1/stats", top=0))["top_domains"], [])
        self.assertEqual(len(self.call("GET", q("/v1/stats", top=100))["top_domains"]), 9)
        for bad in ("top=101", "top=-1", "top=x", "top=", "top=1&top=2", "bottom=1"):
            self.call("GET", "/v1/stats?" + bad, want=400)
        read = self.call("POST", "/v1/tokens", {"name": "r", "scope": "read"}, want=201)
        usage = self.call("POST", "/v1/tokens", {"name": "u", "scope": "usage"}, want=201)
        mqtest.eventually(lambda: self.d.http("GET", "/v1/stats", token=read["token"])[0], 200)
        self.call("GET", "/v1/stats", token=usage["token"], want=403)
        self.call("GET", "/v1/stats", token=False, want=401)

    def test_cli(self):
        self.assert_exact()
        out = self.db.cli("stats", "top=2").stdout
        lines = dict(re.split(r" +", line, maxsplit=1) for line in out.split("\n\n")[0]
                     .splitlines())
        st = self.call("GET", q("/v1/stats", top=2))
        self.assertEqual(lines["mailboxes.total"], str(st["mailboxes"]["total"]))
        self.assertEqual(lines["domains.pool_full"], str(st["domains"]["pool_full"]))
        self.assertEqual(lines["usage.bytes"], "1.9 KiB")  # 2025 bytes, rounded down
        self.assertEqual(self.db.cli("--bytes", "stats").stdout.count("usage.bytes "), 1)
        raw = dict(re.split(r" +", line, maxsplit=1) for line in self.db.cli(
            "--bytes", "stats").stdout.split("\n\n")[0].splitlines())
        self.assertEqual(raw["usage.bytes"], str(st["usage"]["bytes"]))
        top = out.split("\n\n")[1].splitlines()
        self.assertRegex(top[0], r"^DOMAIN +MAILBOXES +OVER +USED +POOL%$")
        self.assertEqual(top[1].split(), ["d2.test", "2", "1", "1", "KiB", "111.0"])
        self.assertEqual(len(top), 3)
        doc = json.loads(self.db.cli("--json", "stats").stdout)
        self.assertEqual(doc["usage"], st["usage"])
        # the domain table ends with the usage columns
        out = self.db.cli("domain", "list", "sort=-pool_usage", "limit=2").stdout.splitlines()
        self.assertRegex(out[0], r" GRACE +MAILBOXES +OVER +USED +POOL%$")
        self.assertEqual(out[1].split()[0], "d5.test")
        self.assertEqual(out[1].split()[-5:], ["1", "0", "1", "B", "-"])
        self.assertEqual(out[2].split()[0], "d8.test")
        self.assertEqual(out[2].split()[-5:], ["2", "2", "4", "B", "133.3"])


class Migration(unittest.TestCase):
    def test_the_migration_backfills_existing_mailboxes(self):
        """sql/011 applied to a database that already holds mailboxes (as on an upgrade):
        its objects are dropped and the migration is run again."""
        db = mqtest.Database()
        try:
            db.sql("INSERT INTO domains (name, pool_limit_bytes, default_storage_limit_bytes)"
                   " SELECT 'm' || i || '.test', 1000, 100 FROM generate_series(1, 5) i")
            db.sql("INSERT INTO mailboxes (domain_id, local_part, used_bytes, used_messages)"
                   " SELECT d.id, 'u' || j, d.id * 37 + j, j FROM domains d,"
                   " generate_series(1, 4) j")
            want = db.sql("SELECT string_agg(d.name || ':' || s.b || ':' || s.m || ':' || s.c"
                          " || ':' || s.o, ',' ORDER BY d.name) FROM domains d JOIN"
                          " (SELECT domain_id, sum(used_bytes) b, sum(used_messages) m,"
                          "  count(*) c, count(*) FILTER (WHERE used_bytes > 100) o"
                          "  FROM mailboxes GROUP BY domain_id) s ON s.domain_id = d.id")
            db.sql("DROP VIEW domain_usage_now, domain_usage_pending;"
                   " DROP TABLE domain_usage, domain_usage_delta;"
                   " DROP FUNCTION mq_mailbox_usage_delta, mq_mailboxes_usage_delta,"
                   " mq_domain_usage_row, mq_fold_domain_usage, mq_rebuild_domain_usage,"
                   " mq_domain_doc_with, mq_domain_usage_json, mq_sat CASCADE;"
                   " DELETE FROM schema_migrations WHERE version = 11")
            self.assertIn("applied: 1 ", db.cli("migrate").stdout)
            got = db.sql("SELECT string_agg(d.name || ':' || (j->>'bytes') || ':' ||"
                         " (j->>'messages') || ':' || (j->>'mailboxes') || ':' ||"
                         " (j->>'over_quota'), ',' ORDER BY d.name)"
                         " FROM domains d, LATERAL (SELECT mq_domain_doc(d)->'usage' j) x")
            self.assertEqual(got, want)
            self.assertEqual(pending(db), 0)
        finally:
            db.close()


def fold_interval_supported():
    p = subprocess.run([os.path.join(mqtest.BIN, "mailquotad"), "-p"], capture_output=True,
                       text=True)
    return "domain_usage_fold_interval" in p.stdout


@unittest.skipUnless(fold_interval_supported(), "mailquotad has no domain_usage_fold_interval")
class DaemonFolds(Base):
    daemon_options = {"domain_usage_fold_interval": 1}

    def test_the_daemon_folds_and_reads_stay_exact(self):
        self.call("POST", DOMAINS, {"name": "f.test"}, want=201)
        self.call("POST", MAILBOXES, {"address": "a@f.test"}, want=201)
        self.report(("a@f.test", 10, 1), ("a@f.test", 20, 1))
        self.assertEqual(mqtest.eventually(lambda: pending(self.db), 0), 0)
        self.assertEqual(self.assert_exact()["f.test"]["bytes"], 30)
        self.assertIn("event=domain_usage_folded", self.d.read_log())
        # with the lock held elsewhere it skips its turn, and reads stay exact meanwhile
        with FoldBlocked(self.db):
            self.report(("a@f.test", 5, 1))
            time.sleep(1.5)
            self.assertEqual(pending(self.db), 1)
            self.assertEqual(self.assert_exact()["f.test"]["bytes"], 35)
        self.assertEqual(mqtest.eventually(lambda: pending(self.db), 0), 0)


if __name__ == "__main__":
    unittest.main()
