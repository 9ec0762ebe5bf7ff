"""A sick database and a stopping daemon: checks keep answering on every front end while writes
wait on a row lock, a frozen or a stopped PostgreSQL; every write is bounded and answered 503
with nothing half-applied; a view out of touch for longer than view_max_age stops refusing;
SIGTERM answers what it already read and what it already committed, totals checked exactly."""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"
TEMPFAIL = "451 4.3.0 Quota service temporarily unavailable"


def post_usage(d, reports, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout)
    c.request("POST", "/v1/usage", json.dumps({"reports": reports}),
              {"Content-Type": "application/json", **d.auth})
    r = c.getresponse()
    doc = json.loads(r.read())
    c.close()
    return r.status, doc, r


class Background:
    """Run fn in a thread; result() waits for it."""

    def __init__(self, fn):
        self.value = self.error = None
        self.t = threading.Thread(target=self._run, args=(fn,))
        self.t.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except Exception as e:  # handed to the test through result()
            self.error = e

    def alive(self):
        return self.t.is_alive()

    def result(self, timeout=60):
        self.t.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value


class RowLock:
    """A psql session holding a row lock until release()."""

    def __init__(self, db, sql):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-h", db.host, "-U", "postgres", "-d",
                                   db.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write(f"BEGIN;\n\\o /dev/null\n{sql};\n\\o\n\\echo locked\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert "locked" in line, line

    def release(self):
        self.p.stdin.write("ROLLBACK;\n\\q\n")
        self.p.stdin.flush()
        self.p.wait(timeout=30)


def waiting_on_lock(db):
    return db.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND wait_event_type = 'Lock'") != "0"


class Base(unittest.TestCase):
    def check_both(self, d):
        """A check over HTTP and over the policy socket, each answered from memory."""
        st, doc, _ = d.http("GET", "/v1/check?recipient=full@example.test&size=1")
        self.assertEqual((st, doc["verdict"]), (200, "over_quota"))
        self.assertEqual(d.policy(recipient="full@example.test", size=1), OVER)


class RowLocked(Base, mqtest.SeededTestCase):

    def test_checks_answer_while_a_write_waits_on_a_lock(self):
        """One HTTP thread (the default): before, a check waited behind the write."""
        d = mqtest.Daemon(self.db.conninfo, log_level="info", database_lock_timeout=10)
        lock = RowLock(self.db, "SELECT 1 FROM mailboxes WHERE address = 'user1@example.test' "
                                "FOR UPDATE")
        try:
            write = Background(lambda: post_usage(d, [
                {"mailbox": "user1@example.test", "bytes": 7, "key": "locked/1"}]))
            self.assertTrue(mqtest.eventually(lambda: waiting_on_lock(self.db), True))
            for _ in range(20):
                self.check_both(d)
            self.assertTrue(write.alive(), "the write should still be waiting on the lock")
        finally:
            lock.release()
        st, doc, _ = write.result()
        self.assertEqual((st, doc["results"][0]["status"]), (200, "applied"))
        d.cleanup()

    def test_lock_timeout_is_503_and_nothing_half_applied(self):
        d = mqtest.Daemon(self.db.conninfo, log_level="info", database_lock_timeout=1,
                          database_statement_timeout=5)
        before = self.db.sql("SELECT used_bytes FROM mailboxes WHERE address = "
                             "'user1@example.test'")
        lock = RowLock(self.db, "SELECT 1 FROM mailboxes WHERE address = 'user1@example.test' "
                                "FOR UPDATE")
        try:
            st, doc, resp = post_usage(d, [
                {"mailbox": "small@example.test", "bytes": 3, "key": "lt/innocent"},
                {"mailbox": "user1@example.test", "bytes": 5, "key": "lt/locked"}])
            self.assertEqual((st, doc["error"]), (503, "database_unavailable"))
            self.assertEqual(resp.getheader("Retry-After"), "5")
            self.check_both(d)
        finally:
            lock.release()
        self.assertEqual(self.db.sql("SELECT used_bytes FROM mailboxes WHERE address = "
                                     "'user1@example.test'"), before)
        self.assertEqual(self.db.sql("SELECT count(*) FROM usage_ledger WHERE "
                                     "idempotency_key LIKE 'lt/%'"), "0")
        # the retry, lock gone, is applied exactly once
        st, doc, _ = post_usage(d, [
            {"mailbox": "small@example.test", "bytes": 3, "key": "lt/innocent"},
            {"mailbox": "user1@example.test", "bytes": 5, "key": "lt/locked"}])
        self.assertEqual([r["status"] for r in doc["results"]], ["applied", "applied"])
        d.cleanup()


    def test_connections_killed_while_idle_are_replaced_before_use(self):
        """A restart ends every idle pooled session (57P01, then close): the pool sees that
        before sending, so the next write goes out once, on a fresh connection."""
        d = mqtest.Daemon(self.db.conninfo)
        st, doc, _ = post_usage(d, [{"mailbox": "user1@example.test", "bytes": 1,
                                     "key": "idle/warm"}])
        self.assertEqual(st, 200)
        st, _, _ = d.http("PATCH", "/v1/mailboxes/user1@example.test", {"grace_percent": 1})
        self.assertEqual(st, 200)
        killed = self.db.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE application_name IN ('mailquotad-usage', "
                             "'mailquotad-admin') AND datname = current_database()")
        self.assertGreaterEqual(int(killed), 2)
        time.sleep(0.2)  # the goodbyes arrive
        st, doc, _ = post_usage(d, [{"mailbox": "user1@example.test", "bytes": 1,
                                     "key": "idle/after"}])
        self.assertEqual(st, 200, (doc, d.read_log()[-3000:]))
        self.assertEqual(doc["results"][0]["status"], "applied")
        st, _, _ = d.http("PATCH", "/v1/mailboxes/user1@example.test", {"grace_percent": 2})
        self.assertEqual(st, 200)
        log = d.read_log()
        self.assertNotIn("event=db_call_failed", log)
        self.assertNotIn("event=usage_batch_failed", log)
        d.cleanup()


class OwnCluster(Base):
    """Tests that freeze or stop PostgreSQL get a cluster of their own."""

    def setUp(self):
        self.cluster = mqtest.Cluster()
        self.db = mqtest.Database(host=self.cluster.dir)
        mqtest.seed_standard(self.db)
        self.d = None

    def tearDown(self):
        if self.d is not None:
            self.d.cleanup()
        self.thaw()
        self.db.close()
        self.cluster.destroy()

    def postgres_pids(self):
        with open(os.path.join(self.cluster.data, "postmaster.pid")) as f:
            pm = int(f.readline())
        out = subprocess.run(["pgrep", "-P", str(pm)], capture_output=True, text=True).stdout
        return [pm] + [int(p) for p in out.split()]

    def freeze(self):
        self.frozen = self.postgres_pids()
        for p in self.frozen:
            os.kill(p, signal.SIGSTOP)

    def thaw(self):
        for p in getattr(self, "frozen", []):
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def test_frozen_database(self):
        """PostgreSQL stopped by SIGSTOP: checks answer from memory on both front ends, a
        write is abandoned after database_statement_timeout + 1 s with 503, and its retry
        after the thaw is applied exactly once."""
        self.d = mqtest.Daemon(self.db.conninfo, log_level="info",
                               database_statement_timeout=2, database_lock_timeout=1)
        self.freeze()
        write = Background(lambda: post_usage(self.d, [
            {"mailbox": "user1@example.test", "bytes": 11, "key": "frozen/1"}]))
        for _ in range(20):
            self.check_both(self.d)
        st, doc, resp = write.result(timeout=30)
        self.assertEqual((st, doc["error"]), (503, "database_unavailable"))
        self.assertEqual(resp.getheader("Retry-After"), "5")
        self.check_both(self.d)
        self.thaw()
        got = mqtest.eventually(lambda: post_usage(self.d, [
            {"mailbox": "user1@example.test", "bytes": 11, "key": "frozen/1"}])[0], 200, 30)
        self.assertEqual(got, 200)
        self.assertEqual(self.db.sql("SELECT used_bytes FROM mailboxes WHERE address = "
                                     "'user1@example.test'"), "11")

    def test_stale_view_stops_refusing(self):
        """Cut off from PostgreSQL for longer than view_max_age, the daemon no longer sends
        permanent refusals from its old view: tempfail instead, accepts still accept."""
        self.d = mqtest.Daemon(self.db.conninfo, log_level="info", view_max_age=2)
        self.check_both(self.d)
        self.cluster.stop()
        deadline = time.time() + 30
        while time.time() < deadline:
            st, doc, _ = self.d.http("GET", "/v1/health", token=False)
            if doc["status"] == "stale":
                break
            time.sleep(0.2)
        self.assertEqual((st, doc["status"], doc["view"]["stale"]), (200, "stale", True))
        self.assertEqual(self.d.policy(recipient="full@example.test", size=1), TEMPFAIL)
        self.assertEqual(self.d.policy(recipient="user1@example.test", size=1), "DUNNO")
        st, doc, _ = self.d.http("GET", "/v1/check?recipient=full@example.test&size=1")
        self.assertEqual(st, 503)
        self.cluster.start()
        self.assertEqual(mqtest.eventually(
            lambda: self.d.policy(recipient="full@example.test", size=1), OVER, 30), OVER)


class Shutdown(unittest.TestCase):
    def test_sigterm_answers_what_it_read_and_committed(self):
        """SIGTERM while 16 usage reports wait on a row lock: the daemon stops accepting,
        keeps answering policy checks on a connection already open, and once the lock goes
        every report already read is answered 200; the database holds exactly them."""
        db = mqtest.Database()
        try:
            mqtest.seed_standard(db)
            d = mqtest.Daemon(db.conninfo, log_level="info", http_workers=16,
                              database_pool_size=16, database_lock_timeout=30,
                              database_statement_timeout=60, shutdown_timeout=30)
            policy = d.policy_conn()
            self.assertEqual(policy.ask(recipient="full@example.test", size=1), OVER)
            lock = RowLock(db, "SELECT 1 FROM mailboxes WHERE address = 'user1@example.test' "
                               "FOR UPDATE")
            writes = [Background(lambda i=i: post_usage(d, [
                {"mailbox": "user1@example.test", "bytes": 100 + i, "key": f"term/{i}"}]))
                for i in range(16)]
            self.assertEqual(mqtest.eventually(lambda: db.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"), "16"), "16")
            d.proc.send_signal(signal.SIGTERM)
            # the listeners close; the open policy connection is still answered
            self.assertEqual(mqtest.eventually(lambda: self._refused(d), True), True)
            self.assertEqual(policy.ask(recipient="full@example.test", size=1), OVER)
            self.assertIsNone(d.proc.poll())
            lock.release()
            statuses = [w.result()[0] for w in writes]
            self.assertEqual(statuses, [200] * 16)
            self.assertEqual(d.proc.wait(timeout=30), 0)
            self.assertEqual(db.sql("SELECT used_bytes FROM mailboxes WHERE address = "
                                    "'user1@example.test'"), str(sum(100 + i for i in range(16))))
            self.assertEqual(db.sql("SELECT count(*) FROM usage_ledger WHERE "
                                    "idempotency_key LIKE 'term/%'"), "16")
            policy.sock.close()
            d.cleanup()
        finally:
            db.close()

    def _refused(self, d):
        try:
            with socket.create_connection(("127.0.0.1", d.http_port), timeout=2):
                return False
        except OSError:
            return True

    def test_shutdown_timeout_cuts_what_still_waits(self):
        db = mqtest.Database()
        try:
            mqtest.seed_standard(db)
            d = mqtest.Daemon(db.conninfo, log_level="info", database_lock_timeout=30,
                              database_statement_timeout=60, shutdown_timeout=1)
            lock = RowLock(db, "SELECT 1 FROM mailboxes WHERE address = 'user1@example.test' "
                               "FOR UPDATE")
            try:
                write = Background(lambda: post_usage(d, [
                    {"mailbox": "user1@example.test", "bytes": 5, "key": "cut/1"}]))
                self.assertTrue(mqtest.eventually(lambda: waiting_on_lock(db), True))
                d.proc.send_signal(signal.SIGTERM)
                self.assertEqual(d.proc.wait(timeout=20), 0)
                st, doc, _ = write.result()
                self.assertEqual((st, doc["error"]), (503, "database_unavailable"))
            finally:
                lock.release()
            self.assertEqual(db.sql("SELECT count(*) FROM usage_ledger"), "0")
            self.assertIn("event=http_drain_cut", d.read_log())
            d.cleanup()
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()
