"""The in-memory view: several daemons on one database stay coherent with it, the view survives
PostgreSQL going away, and a reconnect resynchronises in full (notifications sent while a daemon
was away are lost by design). Waits are bounded generously: these check correctness, not speed."""
import subprocess
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"


def health(d):
    return d.http("GET", "/v1/health")[1]


class TwoDaemons(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.a = mqtest.Daemon(cls.db.conninfo)
        cls.b = mqtest.Daemon(cls.db.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()
        cls.db.close()

    def both(self, rcpt, size, want):
        for d, tcp in ((self.a, False), (self.b, True)):
            got = mqtest.eventually(lambda: d.policy(tcp=tcp, recipient=rcpt, size=size), want)
            self.assertEqual(got, want, f"daemon on {d.socket}")

    def test_changes_by_cli_and_sql_reach_every_daemon(self):
        self.both("user1@example.test", 1000, "DUNNO")
        self.db.cli("usage", "set", "user1@example.test", "1M")          # CLI, usage
        self.both("user1@example.test", 1000, OVER)
        self.db.sql("UPDATE mailboxes SET storage_limit_bytes = 2097152"  # plain SQL, limit
                    " WHERE local_part = 'user1'")
        self.both("user1@example.test", 1000, "DUNNO")
        self.db.cli("domain", "set", "example.test", "max-size=1000")     # domain-wide
        self.both("user1@example.test", 1001, "552 5.3.4 Message too big for system")
        self.db.cli("domain", "set", "example.test", "max-size=none")
        self.both("user1@example.test", 1001, "DUNNO")
        self.db.cli("domain", "add", "late.test", "pool=100")              # new domain...
        self.db.cli("mailbox", "add", "x@late.test")
        self.db.cli("mailbox", "add", "y@late.test")
        self.db.cli("usage", "set", "y@late.test", "90")
        self.both("x@late.test", 11, OVER)                                 # ...and its pool
        self.both("x@late.test", 10, "DUNNO")
        self.db.cli("mailbox", "del", "y@late.test")                      # usage leaves pool
        self.both("x@late.test", 11, "DUNNO")
        self.db.cli("alias", "add", "@late.test", "x@late.test")            # catch-all
        self.db.cli("mailbox", "set", "x@late.test", "storage=5")
        self.both("anyone@late.test", 10, OVER)
        self.db.cli("domain", "del", "late.test")                           # cascade
        self.both("x@late.test", 10, "DUNNO")
        self.both("anyone@late.test", 10, "DUNNO")
        for d in (self.a, self.b):
            h = health(d)
            self.assertEqual((h["status"], h["database"]), ("ok", "up"))
            self.assertGreater(h["view"]["notifications"], 0)
            self.assertLess(h["view"]["age_seconds"], 5)

    def test_bulk_change_in_one_transaction(self):
        self.db.cli("domain", "add", "bulk.test")
        self.db.sql("INSERT INTO mailboxes (domain_id, local_part, storage_limit_bytes,"
                    " used_bytes) SELECT d.id, 'u' || g, 100, 100 FROM domains d,"
                    " generate_series(1, 20000) g WHERE d.name = 'bulk.test'")
        self.both("u19999@bulk.test", 1, OVER)
        self.db.sql("UPDATE mailboxes SET used_bytes = 0 WHERE local_part LIKE 'u%'"
                    " AND domain_id = (SELECT id FROM domains WHERE name = 'bulk.test')")
        self.both("u7@bulk.test", 1, "DUNNO")
        self.assertEqual(mqtest.eventually(lambda: health(self.a)["view"]["mailboxes"] >= 20000,
                                           True), True)


class Resync(unittest.TestCase):
    def test_change_made_while_disconnected_is_caught_by_resync(self):
        db = mqtest.Database()
        d = None
        holder = None
        try:
            db.cli("domain", "add", "example.test")
            db.cli("mailbox", "add", "r@example.test", "storage=100")
            d = mqtest.Daemon(db.conninfo)
            self.assertEqual(d.policy(recipient="r@example.test", size=50), "DUNNO")
            # a session opened now keeps working when new connections are refused
            holder = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                       "-h", db.host, "-U", "postgres", "-d", db.name],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            holder.stdin.write("SELECT 'connected';\n")
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "connected")
            mqtest.psql("postgres", f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS false", db.host)
            mqtest.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        f" WHERE datname = '{db.name}' AND application_name = 'mailquotad-view'",
                        db.host)
            self.assertEqual(mqtest.eventually(lambda: health(d)["database"], "down"), "down")
            # the daemon cannot listen now: this change's notification is lost to it
            holder.stdin.write("UPDATE mailboxes SET used_bytes = 100;\n\\q\n")
            holder.stdin.flush()
            holder.wait(timeout=30)
            self.assertEqual(holder.returncode, 0, holder.stderr.read())
            self.assertEqual(d.policy(recipient="r@example.test", size=50), "DUNNO")  # stale
            mqtest.psql("postgres", f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS true", db.host)
            self.assertEqual(mqtest.eventually(
                lambda: d.policy(recipient="r@example.test", size=50), OVER), OVER)
            self.assertIn("event=view_loaded reason=resync", d.read_log())
        finally:
            if holder is not None and holder.poll() is None:
                holder.kill()
            mqtest.psql("postgres", f"ALTER DATABASE {db.name} ALLOW_CONNECTIONS true", db.host)
            if d is not None:
                d.cleanup()
            db.close()


class Sweep(unittest.TestCase):
    def test_periodic_sweep_catches_a_change_without_notification(self):
        db = mqtest.Database()
        d = None
        try:
            db.cli("domain", "add", "example.test")
            db.cli("mailbox", "add", "s@example.test", "storage=100")
            d = mqtest.Daemon(db.conninfo, view_sweep_interval=1)
            self.assertEqual(d.policy(recipient="s@example.test", size=50), "DUNNO")
            # a change that sends no notification (as if one were lost)
            db.sql("ALTER TABLE mailboxes DISABLE TRIGGER mailboxes_notify_update;"
                   " UPDATE mailboxes SET used_bytes = 100;"
                   " ALTER TABLE mailboxes ENABLE TRIGGER mailboxes_notify_update")
            self.assertEqual(mqtest.eventually(
                lambda: d.policy(recipient="s@example.test", size=50), OVER), OVER)
            self.assertIn("event=view_loaded reason=sweep", d.read_log())
        finally:
            if d is not None:
                d.cleanup()
            db.close()


class DatabaseDown(unittest.TestCase):
    def test_stop_postgres_mid_run(self):
        cluster = mqtest.Cluster()
        d = None
        try:
            db = mqtest.Database(host=cluster.dir)
            mqtest.seed_standard(db)
            d = mqtest.Daemon(db.conninfo, view_ping_interval=1)
            self.assertEqual(d.policy(recipient="full@example.test", size=1), OVER)
            self.assertEqual(health(d)["status"], "ok")

            cluster.stop()
            self.assertEqual(mqtest.eventually(lambda: health(d)["database"], "down"), "down")
            # checks go on from the last good view, on every front end
            self.assertEqual(d.policy(recipient="full@example.test", size=1), OVER)
            self.assertEqual(d.policy(tcp=True, recipient="user1@example.test", size=1), "DUNNO")
            st, doc, _ = d.http("GET", "/v1/check?recipient=team@example.test&size=1")
            self.assertEqual((st, doc["verdict"]), (200, "accept"))
            h1 = health(d)
            self.assertEqual((h1["status"], h1["view"]["loaded"]), ("degraded", True))
            time.sleep(1.5)
            h2 = health(d)
            self.assertGreater(h2["view"]["age_seconds"], h1["view"]["age_seconds"])
            self.assertGreater(h2["view"]["age_seconds"], 1.0)

            cluster.start()
            self.assertEqual(mqtest.eventually(lambda: health(d)["database"], "up", 30), "up")
            db.cli("usage", "set", "full@example.test", "0")
            self.assertEqual(mqtest.eventually(
                lambda: d.policy(recipient="full@example.test", size=1), "DUNNO"), "DUNNO")
            log = d.read_log()
            self.assertIn("event=view_connection_lost", log)
            self.assertIn("event=view_loaded reason=resync", log)
            self.assertEqual(d.proc.poll(), None)  # never restarted
        finally:
            if d is not None:
                d.cleanup()
            cluster.destroy()


if __name__ == "__main__":
    unittest.main()
