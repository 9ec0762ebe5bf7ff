"""Quota warnings end to end: detection in PostgreSQL (usage jittering around a threshold gives
one event; a recalculation and a lowered limit fire; per-domain thresholds), delivery by
signed webhook and by a sendmail-compatible command, three daemons delivering one event once,
a receiver that is down getting the event later, kill -9 during delivery losing nothing (the
repeat carries the same event id), failure after the configured tries, and the settings API."""
import hashlib
import hmac
import http.server
import json
import os
import random
import signal
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import mqtest

SECRET = "s3cret-for-the-warning-tests-0123456789"


class Receiver:
    """A webhook receiver on a loopback port: records each request; its mode decides the
    answer: "ok" (204), "fail" (503), "stall" (holds the request until released)."""

    def __init__(self):
        self.requests = []
        self.mode = "ok"
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.got = threading.Condition(self.lock)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    mode = outer.mode
                    outer.requests.append((dict(self.headers), body))
                    outer.got.notify_all()
                if mode == "stall":
                    outer.release.wait(60)
                    return
                self.send_response(204 if mode == "ok" else 503)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self):
        with self.lock:
            return [h["Mailquota-Event-Id"] for h, _ in self.requests]

    def wait_for(self, n, timeout=30):
        deadline = time.time() + timeout
        with self.lock:
            while len(self.requests) < n and time.time() < deadline:
                self.got.wait(0.2)
            return len(self.requests)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def verify(headers, body):
    """The signature a receiver checks: t=<unix>,v1=HMAC-SHA256(secret, "<t>." + body)."""
    parts = dict(p.split("=", 1) for p in headers["Mailquota-Signature"].split(","))
    want = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(parts["v1"], want.hexdigest()) and \
        abs(time.time() - int(parts["t"])) < 300


class Warnings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        cls.dir = tempfile.mkdtemp(prefix="mq-warn-")
        cls.secret = os.path.join(cls.dir, "secret")
        with open(cls.secret, "w") as f:
            f.write(SECRET + "\n")
        cls.mails = os.path.join(cls.dir, "mails")
        os.mkdir(cls.mails)
        # a sendmail stand-in: keeps its arguments and input; exits with the code in ./exitcode
        cls.sendmail = os.path.join(cls.dir, "sendmail")
        with open(cls.sendmail, "w") as f:
            f.write("#!/bin/sh\n"
                    f"d={cls.mails}\n"
                    'f=$d/$(date +%s%N)\n'
                    'printf "%s\\n" "$@" > "$f.args"\n'
                    'cat > "$f.msg"\n'
                    f'[ -f {cls.dir}/background ] && (sleep 20 &)\n'
                    f'[ -f {cls.dir}/exitcode ] && exit $(cat {cls.dir}/exitcode)\n'
                    "exit 0\n")
        os.chmod(cls.sendmail, stat.S_IRWXU)
        cls.rx = Receiver()
        cls.db.cli("domain", "add", "w.test", "storage=1000", "messages=100")
        cls.admin = cls.db.api()

    @classmethod
    def tearDownClass(cls):
        cls.rx.close()
        cls.db.close()

    def setUp(self):
        self.daemons = []
        self.rx.mode = "ok"
        self.rx.release.clear()
        with self.rx.lock:
            self.rx.requests.clear()
        for flag in ("exitcode", "background"):
            try:
                os.unlink(os.path.join(self.dir, flag))
            except FileNotFoundError:
                pass
        self.settings(channels=[], thresholds=[80, 90, 100], hysteresis=5)

    def tearDown(self):
        for d in self.daemons:
            d.cleanup()

    # --- helpers ---
    def settings(self, **fields):
        st, doc, _ = self.admin.http("PATCH", "/v1/warnings/settings", fields)
        self.assertEqual(st, 200, doc)
        return doc

    def daemon(self, **extra):
        opts = dict(warning_webhook_url=self.rx.url(), warning_webhook_secret_file=self.secret,
                    warning_retry_base=1, warning_retry_max=2, policy_socket="",
                    policy_tcp_listen="", log_level="info")
        opts.update(extra)
        d = mqtest.Daemon(self.db.conninfo, token=self.admin.token, **opts)
        self.daemons.append(d)
        return d

    def mailbox(self, **fields):
        addr = "u" + uuid.uuid4().hex[:10] + "@w.test"
        self.db.cli("mailbox", "add", addr, *[f"{k}={v}" for k, v in fields.items()])
        return addr

    def report(self, addr, nbytes, messages=0):
        # reports name mailboxes through the daemon's view, which learns of new ones by NOTIFY
        self.assertEqual(mqtest.eventually(
            lambda: self.admin.http("GET", f"/v1/mailboxes/{addr}/usage")[0], 200), 200, addr)
        st, doc, _ = self.admin.http("POST", "/v1/usage", {"reports": [
            {"mailbox": addr, "bytes": nbytes, "messages": messages,
             "key": uuid.uuid4().hex}]})
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["results"][0].get("status"), "applied", doc)

    def events(self, addr):
        return json.loads(self.db.sql(
            "SELECT coalesce(json_agg(mq_warning_doc(e) ORDER BY e.id), '[]')"
            f" FROM warning_events e WHERE address = '{addr}'"))

    def delivery(self, addr, channel="webhook"):
        return self.db.sql(
            "SELECT d.state || ' ' || d.tries FROM warning_deliveries d"
            " JOIN warning_events e ON e.id = d.event_id"
            f" WHERE e.address = '{addr}' AND d.channel = '{channel}'")

    # --- detection ---
    def test_jitter_around_80_gives_one_event(self):
        a = self.mailbox()
        for delta in (790, 20, -20, 20, -20, 20, -10, 10):  # 79 %, 81 %, 79 %, ... 81 %
            self.report(a, delta)
        ev = self.events(a)
        self.assertEqual([(e["resource"], e["threshold"], e["used"], e["limit"], e["cause"])
                          for e in ev], [("storage", 80, 810, 1000, "usage")])
        self.assertEqual(ev[0]["percent"], 81.0)
        st, doc, _ = self.admin.http("GET", "/v1/mailboxes/" + a)
        self.assertEqual(doc["warnings"], {"storage": 80, "messages": None})
        # falling below 80 - 5 re-arms it; the next crossing fires again
        self.report(a, -70)   # 74 %
        self.report(a, 66)    # 80 %
        self.assertEqual([e["threshold"] for e in self.events(a)], [80, 80])
        # one jump over two thresholds is one event, for the higher one
        self.report(a, 150)   # 95 %
        self.assertEqual([e["threshold"] for e in self.events(a)], [80, 80, 90])

    def test_rule_matches_its_definition(self):
        """mq_warn_step() against the rule as docs/warnings.md states it, on random inputs:
        re-arm to the highest threshold at or below the level that usage is still within the
        hysteresis of, then fire to the highest threshold reached if that is higher."""
        rnd = random.Random(11)

        def rule(p, level, thresholds, hyst):
            if p is None:
                return 0
            keep = max([t for t in thresholds if t <= level and p >= t - hyst], default=0)
            up = max([t for t in thresholds if p >= t], default=0)
            return max(keep, up)

        cases = []
        for _ in range(1500):  # one psql argument holds them (at most 128 KiB)
            ts = sorted(rnd.sample(range(1, 200), rnd.randint(0, 5)))
            level = rnd.choice([0] + ts + [rnd.randint(1, 200)])
            p = rnd.choice([None, rnd.randint(0, 210), round(rnd.uniform(0, 210), 3)])
            cases.append((p, level, ts, rnd.randint(0, 20)))
        values = ",".join(
            f"({'NULL' if p is None else p}::numeric, {lv}::smallint,"
            f" '{{{','.join(map(str, ts))}}}'::smallint[], {h}::smallint, {i})"
            for i, (p, lv, ts, h) in enumerate(cases))
        got = self.db.sql("SELECT string_agg(mq_warn_step(p, l, t, h)::text, ',' ORDER BY i)"
                          f" FROM (VALUES {values}) v (p, l, t, h, i)").split(",")
        for case, g in zip(cases, got):
            self.assertEqual(int(g), rule(*case), case)

    def test_recalculation_and_lowered_limit_fire(self):
        a = self.mailbox()
        st, doc, _ = self.admin.http("PUT", f"/v1/mailboxes/{a}/usage",
                                     {"bytes": 905, "messages": 3, "source": "test"})
        self.assertEqual(st, 200, doc)
        self.assertEqual([(e["threshold"], e["cause"]) for e in self.events(a)],
                         [(90, "recalculation")])
        # the mailbox's own lower limit puts it over 100 %
        self.db.cli("mailbox", "set", a, "storage=900")
        self.assertEqual([(e["threshold"], e["cause"]) for e in self.events(a)],
                         [(90, "recalculation"), (100, "limit")])
        # a domain default that falls (messages 100 -> 3) fires for mailboxes that inherit it
        self.db.cli("domain", "set", "w.test", "messages=3")
        try:
            got = [(e["resource"], e["threshold"], e["cause"]) for e in self.events(a)]
            self.assertIn(("messages", 100, "limit"), got)
        finally:
            self.db.cli("domain", "set", "w.test", "messages=100")
        # the API's list and the command line show them, newest first
        st, page, _ = self.admin.http("GET", "/v1/warnings?mailbox=" + a.upper())
        self.assertEqual(st, 200, page)
        self.assertEqual([e["seq"] for e in page["items"]],
                         sorted((e["seq"] for e in self.events(a)), reverse=True))
        st, page1, _ = self.admin.http("GET", f"/v1/warnings?mailbox={a}&limit=1")
        st, page2, _ = self.admin.http(
            "GET", f"/v1/warnings?mailbox={a}&limit=1&cursor={page1['next_cursor']}")
        self.assertEqual(page2["items"][0], page["items"][1])
        for bad in ("state=lost", "mailbox=nobody", "since=yesterday", "colour=red"):
            st, doc, _ = self.admin.http("GET", "/v1/warnings?" + bad)
            self.assertEqual((st, doc["error"]), (400, "invalid_parameter"), bad)
        out = self.db.cli("warnings", "list", f"mailbox={a}").stdout.splitlines()
        self.assertTrue(out[0].startswith("AT "), out)
        self.assertTrue(all(a in line for line in out[1:]), out)
        self.assertIn("messages  100% 3/3 msgs", out[1])  # newest first
        self.assertTrue(any("storage   100% 905 B/900 B" in line for line in out[2:]), out)
        self.assertEqual(len(out), 1 + len(page["items"]))
        # a raised limit re-arms without an event
        n = len(self.events(a))
        self.db.cli("mailbox", "set", a, "storage=100000")
        self.assertEqual(len(self.events(a)), n)
        st, doc, _ = self.admin.http("GET", "/v1/mailboxes/" + a)
        self.assertEqual(doc["warnings"]["storage"], None)

    def test_domain_thresholds(self):
        self.db.cli("domain", "add", "early.test", "storage=1000")
        self.settings(domains={"early.test": {"thresholds": [50], "hysteresis": 10}})
        try:
            self.db.cli("mailbox", "add", "x@early.test")
            self.report("x@early.test", 550)
            self.assertEqual([e["threshold"] for e in self.events("x@early.test")], [50])
            self.report("x@early.test", -100)  # 45 %: within the domain's hysteresis of 10
            self.report("x@early.test", 100)
            self.assertEqual(len(self.events("x@early.test")), 1)
            doc = self.settings()
            self.assertEqual(doc["domains"]["early.test"], {"thresholds": [50], "hysteresis": 10})
        finally:
            self.settings(domains={"early.test": None})
        self.assertEqual(self.settings()["domains"], {})

    def test_settings_refused(self):
        for body, field in (({"thresholds": [90, 80]}, "thresholds"),
                            ({"thresholds": [0]}, "thresholds"),
                            ({"thresholds": list(range(1, 12))}, "thresholds"),
                            ({"hysteresis": 51}, "hysteresis"),
                            ({"channels": ["sms"]}, "channels"),
                            ({"channels": ["mail", "mail"]}, "channels"),
                            ({"colour": 1}, "colour"),
                            ({"domains": {"w.test": {"thresholds": "80"}}}, "thresholds"),
                            ({"domains": {"not a domain": None}}, "domains")):
            st, doc, _ = self.admin.http("PATCH", "/v1/warnings/settings", body)
            self.assertEqual((st, doc["error"], doc.get("field")), (400, "invalid_field", field),
                             body)
        st, doc, _ = self.admin.http("PATCH", "/v1/warnings/settings",
                                     {"thresholds": [70], "domains": {"nope.test": None}})
        self.assertEqual((st, doc["error"]), (422, "unknown_domain"))
        self.assertEqual(self.settings()["thresholds"], [80, 90, 100])  # nothing changed
        read = mqtest.bootstrap_token(self.db.conninfo, "reader-" + uuid.uuid4().hex[:6],
                                      "scope=read")
        # the daemon learns of the new token through NOTIFY
        self.assertEqual(mqtest.eventually(
            lambda: self.admin.http("GET", "/v1/warnings/settings", token=read)[0], 200), 200)
        self.assertEqual(self.admin.http("PATCH", "/v1/warnings/settings", {"hysteresis": 3},
                                         token=read)[0], 403)
        audit = json.loads(self.db.sql("SELECT count(*) FROM audit_log"
                                       " WHERE action = 'warnings.settings'"))
        self.assertGreater(audit, 0)

    def test_cli_settings(self):
        out = self.db.cli("warnings", "set", "thresholds=70,95", "hysteresis=3",
                          "channels=mail").stdout
        self.assertIn("thresholds: 70 %, 95 %\nhysteresis: 3 points\nchannels:   mail\n", out)
        out = self.db.cli("warnings", "domain", "w.test", "thresholds=50").stdout
        self.assertIn("domain w.test: thresholds 50 %, hysteresis inherited\n", out)
        doc = json.loads(self.db.cli("--json", "warnings", "settings").stdout)
        self.assertEqual(doc["domains"], {"w.test": {"thresholds": [50], "hysteresis": None}})
        out = self.db.cli("warnings", "domain", "W.Test", "inherit").stdout
        self.assertNotIn("domain w.test", out)
        p = self.db.cli("warnings", "set", "thresholds=9x", check=False)
        self.assertEqual(p.returncode, 2)
        p = self.db.cli("warnings", "set", "thresholds=95,70", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ascending", p.stderr)

    # --- delivery ---
    def test_webhook_signed_and_delivered_once_by_three_daemons(self):
        self.settings(channels=["webhook"])
        ds = [self.daemon() for _ in range(3)]
        boxes = [self.mailbox() for _ in range(12)]
        for a in boxes:
            self.report(a, 850)
        self.assertEqual(self.rx.wait_for(12), 12)
        time.sleep(1.5)  # room for a second delivery, which must not come
        ids = self.rx.ids()
        self.assertEqual(len(ids), 12)
        self.assertEqual(len(set(ids)), 12)
        with self.rx.lock:
            reqs = list(self.rx.requests)
        for headers, body in reqs:
            self.assertTrue(verify(headers, body), headers)
            doc = json.loads(body)
            self.assertEqual(doc["id"], headers["Mailquota-Event-Id"])
            self.assertEqual((doc["type"], doc["resource"], doc["threshold"]),
                             ("quota.warning", "storage", 80))
            self.assertIn(doc["mailbox"], boxes)
        for a in boxes:
            self.assertEqual(self.delivery(a), "delivered 1")
        # the work was shared: more than one daemon delivered (each logs what it delivered)
        senders = sum(1 for d in ds if "event=warning_delivered" in d.read_log())
        self.assertGreaterEqual(senders, 1)

    def test_receiver_down_gets_it_later_and_failure_is_visible(self):
        self.settings(channels=["webhook"])
        self.rx.mode = "fail"
        self.daemon(warning_max_tries=20)
        a = self.mailbox()
        self.report(a, 950)
        self.assertGreaterEqual(self.rx.wait_for(2), 2)  # first try and one retry refused
        ev = self.events(a)[0]
        d = ev["deliveries"][0]
        self.assertEqual((d["channel"], d["state"]), ("webhook", "pending"))
        self.assertIn("503", d["last_error"])
        self.assertIsNotNone(d["next_attempt_at"])
        self.rx.mode = "ok"
        mqtest.eventually(lambda: self.delivery(a).split()[0], "delivered", timeout=20)
        ids = set(self.rx.ids())
        self.assertEqual(ids, {ev["id"]})  # every attempt carried the same event id

    def test_failed_after_max_tries(self):
        self.settings(channels=["webhook"])
        self.rx.mode = "fail"
        self.daemon(warning_max_tries=3)
        a = self.mailbox()
        self.report(a, 1000)
        self.assertEqual(mqtest.eventually(lambda: self.delivery(a), "failed 3", timeout=20),
                         "failed 3")
        time.sleep(1.5)
        self.assertEqual(len(self.rx.ids()), 3)

    def test_kill9_during_delivery_repeats_with_same_id(self):
        self.settings(channels=["webhook"])
        self.rx.mode = "stall"
        d1 = self.daemon(warning_webhook_timeout=60)
        a = self.mailbox()
        self.report(a, 820)
        self.assertEqual(self.rx.wait_for(1), 1)
        first = self.rx.ids()[0]
        # a second daemon waits politely for the delivery d1 holds (it used to spin on it)
        d2 = self.daemon()
        cpu = d2.cpu_seconds()
        time.sleep(2)
        self.assertLess(d2.cpu_seconds() - cpu, 0.5)
        self.assertEqual(len(self.rx.ids()), 1)
        d1.proc.send_signal(signal.SIGKILL)
        d1.proc.wait()
        self.rx.mode = "ok"
        self.rx.release.set()
        self.assertEqual(self.rx.wait_for(2), 2)
        self.assertEqual(self.rx.ids(), [first, first])
        mqtest.eventually(lambda: self.delivery(a), "delivered 1")
        self.assertEqual(self.delivery(a), "delivered 1")
        self.assertEqual([e["id"] for e in self.events(a)], [first])

    def test_mail_to_the_user(self):
        self.settings(channels=["mail"])
        self.daemon(warning_webhook_url="", warning_mail_command=self.sendmail + " -i --",
                    warning_mail_from="Postmaster <postmaster@w.test>")
        a = self.mailbox()
        self.report(a, 0, 95)  # messages: 95 of 100
        mqtest.eventually(lambda: self.delivery(a, "mail"), "delivered 1")
        msgs = sorted(f for f in os.listdir(self.mails) if f.endswith(".msg"))
        with open(os.path.join(self.mails, msgs[-1])) as f:
            msg = f.read()
        with open(os.path.join(self.mails, msgs[-1][:-4] + ".args")) as f:
            args = f.read().split("\n")
        self.assertEqual(args[:3], ["-i", "--", a])
        ev = self.events(a)[0]
        head, body = msg.split("\n\n", 1)
        headers = dict(line.split(": ", 1) for line in head.split("\n"))
        self.assertEqual(headers["Auto-Submitted"], "auto-generated")
        self.assertEqual(headers["To"], a)
        self.assertEqual(headers["From"], "Postmaster <postmaster@w.test>")
        self.assertEqual(headers["Message-ID"], f"<warning.{ev['id']}@w.test>")
        self.assertEqual(headers["Subject"], "Your mailbox is 95.0 % full")
        self.assertIn("95 messages of 100 messages", body)
        self.assertIn("90 % of its message count limit", body)

    def test_mail_command_leaving_a_background_process(self):
        # sendmail's own background delivery may keep the command's output open: its exit
        # decides, and a timeout would kill its whole process group
        self.settings(channels=["mail"])
        open(os.path.join(self.dir, "background"), "w").close()
        self.daemon(warning_webhook_url="", warning_mail_command=self.sendmail,
                    warning_mail_from="postmaster@w.test", warning_mail_timeout=10)
        a = self.mailbox()
        t0 = time.time()
        self.report(a, 1000)
        self.assertEqual(mqtest.eventually(lambda: self.delivery(a, "mail"), "delivered 1"),
                         "delivered 1")
        self.assertLess(time.time() - t0, 8)

    def test_upgrade_backfills_levels(self):
        # a database at migration 012 with mailboxes over thresholds, then `mailquota migrate`
        name = "mq_up_" + uuid.uuid4().hex[:8]
        mqtest.psql("postgres", f"CREATE DATABASE {name}")
        try:
            sqldir = os.path.join(os.path.dirname(__file__), "..", "..", "sql")
            mqtest.psql(name, "CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                              " name text NOT NULL, applied_at timestamptz NOT NULL"
                              " DEFAULT now())")
            for f in sorted(os.listdir(sqldir)):
                if int(f[:3]) <= 12:
                    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-h",
                                    mqtest.PGHOST, "-U", "postgres", "-d", name, "-f",
                                    os.path.join(sqldir, f)], check=True, capture_output=True)
                    mqtest.psql(name, f"INSERT INTO schema_migrations VALUES"
                                      f" ({int(f[:3])}, '{f[:-4]}')")
            mqtest.psql(name, "INSERT INTO domains (name, default_storage_limit_bytes,"
                              " default_message_limit) VALUES ('up.test', 1000, 10);"
                              "INSERT INTO mailboxes (domain_id, local_part, used_bytes,"
                              " used_messages) SELECT id, 'a', 850, 10 FROM domains;"
                              "INSERT INTO mailboxes (domain_id, local_part, used_bytes)"
                              " SELECT id, 'b', 10 FROM domains")
            before = mqtest.psql(name, "SELECT string_agg(updated_at::text, ',' ORDER BY id)"
                                       " FROM mailboxes")
            subprocess.run([os.path.join(mqtest.BIN, "mailquota"), "-d",
                            f"host={mqtest.PGHOST} user=postgres dbname={name}", "migrate"],
                           check=True, capture_output=True)
            self.assertEqual(mqtest.psql(name, "SELECT string_agg(local_part || ' ' ||"
                                               " warn_storage || ' ' || warn_messages || ' ' ||"
                                               " effective_message_limit, ',' ORDER BY id)"
                                               " FROM mailboxes"), "a 80 100 10,b 0 0 10")
            self.assertEqual(mqtest.psql(name, "SELECT string_agg(updated_at::text, ','"
                                               " ORDER BY id) FROM mailboxes"), before)
            # the next change fires nothing stale: 86 % stays at level 80
            mqtest.psql(name, "UPDATE mailboxes SET used_bytes = 860 WHERE local_part = 'a'")
            self.assertEqual(mqtest.psql(name, "SELECT count(*) FROM warning_events"), "0")
        finally:
            mqtest.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def test_mail_permanent_refusal_fails_at_once(self):
        self.settings(channels=["mail"])
        with open(os.path.join(self.dir, "exitcode"), "w") as f:
            f.write("67\n")  # EX_NOUSER
        self.daemon(warning_webhook_url="", warning_mail_command=self.sendmail,
                    warning_mail_from="postmaster@w.test")
        a = self.mailbox()
        self.report(a, 1000)
        self.assertEqual(mqtest.eventually(lambda: self.delivery(a, "mail"), "failed 1"),
                         "failed 1")
        d = self.events(a)[0]["deliveries"][0]
        self.assertIn("exited with 67", d["last_error"])

    def test_bad_configuration_is_refused(self):
        bad = [({"warning_webhook_url": "ftp://x"}, "http:// or https://"),
               ({"warning_webhook_url": self.rx.url(), "warning_webhook_secret_file": ""},
                "needs warning_webhook_secret_file"),
               ({"warning_mail_command": "/usr/sbin/sendmail"}, "needs warning_mail_from"),
               ({"warning_mail_command": "sendmail", "warning_mail_from": "a@b"},
                "absolute path")]
        tmpl = os.path.join(self.dir, "tmpl")
        with open(tmpl, "w") as f:
            f.write("Subject: {nope}\n\nbody\n")
        bad.append(({"warning_mail_command": self.sendmail, "warning_mail_from": "a@b.c",
                     "warning_mail_template": tmpl}, "unknown placeholder"))
        for opts, want in bad:
            args = [os.path.join(mqtest.BIN, "mailquotad"), "-n"]
            for k, v in opts.items():
                args += ["-o", f"{k}={v}"]
            p = subprocess.run(args, capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, opts)
            self.assertIn(want, p.stderr)


if __name__ == "__main__":
    unittest.main()
