"""PostgreSQL failover drill: a primary and a streaming standby of the test's own (throwaway
clusters), two daemons on a multi-host conninfo with target_session_attrs=read-write, checks and
usage reports running on both; mid-load the standby's WAL receiver stalls for STALL seconds, the
primary crashes (pg_ctl stop -m immediate) and the standby is promoted. Checks never stop
(answered from memory), both daemons find the new primary (health says database up, a change
made through one daemon's admin API reaches the other's checks: its LISTEN works there), and no
report is counted twice, the unacknowledged ones retried with their keys included. With
synchronous_standby_names set, every acknowledged report is on the new primary; without it, the
acknowledged-then-lost ones are counted and printed. Also: a standby listed before the primary
without target_session_attrs does not capture the daemon. Timing figures are printed, never
asserted; docs/scaling.md ("Failover") has them, bench/failover repeats the drill."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import mqtest

OVER = "552 5.2.2 Mailbox full"
# seconds the standby lags before the crash (bench/failover sets 0 to measure a standby that
# keeps up)
STALL = float(os.environ.get("MQ_FAILOVER_STALL", "1"))
DOMAIN = "failover.test"


def run_pg(*args):
    """A PostgreSQL tool as the postgres user, from / (paths absolute)."""
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                   text=True, cwd="/")


class Replicated:
    """A primary and a standby streaming from it through a replication slot, each listening on
    a Unix socket only, in a directory of its own (port 5432 in each). synchronous: the primary
    (only: the standby must not wait for a standby of its own once promoted) waits for the
    standby's flush before a commit returns."""

    def __init__(self, synchronous):
        self.dir = tempfile.mkdtemp(prefix="mq-fo-")
        os.chmod(self.dir, 0o755)
        self.primary = os.path.join(self.dir, "p")
        self.standby = os.path.join(self.dir, "s")
        for d in (self.primary, self.standby):
            os.mkdir(d, 0o755)
        for d in (self.dir, self.primary, self.standby):
            shutil.chown(d, "postgres", "postgres")
        self.started = []
        self.receiver = None
        run_pg(f"{mqtest.PG_BIN}/initdb", "-N", "-D", self.data(self.primary), "-U", "postgres",
               "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        self.start(self.primary,
                   "-c synchronous_standby_names='*'" if synchronous else "")
        # -R: standby.signal and primary_conninfo; -C -S: a slot, so the primary keeps the WAL
        # the standby has not received yet
        run_pg(f"{mqtest.PG_BIN}/pg_basebackup", "-h", self.primary, "-U", "postgres",
               "-D", self.data(self.standby), "-R", "-C", "-S", "standby1", "-X", "stream",
               "-c", "fast", "-N")
        self.start(self.standby, "")
        want = "sync" if synchronous else "async"
        got = mqtest.eventually(lambda: mqtest.psql(
            "postgres", "SELECT state || ' ' || sync_state FROM pg_stat_replication",
            self.primary), "streaming " + want, 30)
        assert got == "streaming " + want, got

    @staticmethod
    def data(d):
        return os.path.join(d, "data")

    def start(self, d, extra):
        run_pg(f"{mqtest.PG_BIN}/pg_ctl", "-D", self.data(d), "-l", os.path.join(d, "log"),
               "-w", "-o", f"-c listen_addresses='' -c unix_socket_directories='{d}' "
                           f"-c fsync=off {extra}", "start")
        self.started.append(d)

    def stall_standby(self):
        """Stop the standby's WAL receiver (SIGSTOP), as a network stall would: the primary
        goes on committing what the standby does not have. Undone by resume_standby()."""
        self.receiver = int(mqtest.psql("postgres", "SELECT pid FROM pg_stat_wal_receiver",
                                        self.standby))
        os.kill(self.receiver, signal.SIGSTOP)

    def resume_standby(self):
        if self.receiver is not None:
            os.kill(self.receiver, signal.SIGCONT)
            self.receiver = None

    def crash_primary(self):
        run_pg(f"{mqtest.PG_BIN}/pg_ctl", "-D", self.data(self.primary), "-m", "immediate",
               "-w", "stop")

    def promote(self):
        run_pg(f"{mqtest.PG_BIN}/pg_ctl", "-D", self.data(self.standby), "-w", "promote")

    def destroy(self):
        """Stop both servers (by the pid in postmaster.pid when pg_ctl cannot) and remove
        everything; safe after any failure."""
        try:
            self.resume_standby()
        except ProcessLookupError:
            pass
        for d in self.started:
            pidfile = os.path.join(self.data(d), "postmaster.pid")
            try:
                with open(pidfile) as f:
                    pid = int(f.readline())
            except (OSError, ValueError):
                continue  # not running
            try:
                run_pg(f"{mqtest.PG_BIN}/pg_ctl", "-D", self.data(d), "-m", "immediate", "-w",
                       "-t", "20", "stop")
            except subprocess.CalledProcessError:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)


def health(d):
    try:
        return d.http("GET", "/v1/health", validate=False)[1]["database"]
    except (OSError, TypeError, KeyError, http.client.HTTPException):
        return None


class Load:
    """Checks on both daemons' policy sockets and usage reports (one per request, a key each)
    to both, in threads, until stop()."""

    def __init__(self, daemons):
        self.daemons = daemons
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.answers = 0
        self.bad = []        # checks that got no answer or a wrong one
        self.acked = {}      # key -> time acknowledged
        self.unacked = []    # keys whose request failed (not acknowledged)
        self.threads = []
        for i, d in enumerate(daemons):
            self.threads.append(threading.Thread(target=self.checks, args=(d,)))
            self.threads.append(threading.Thread(target=self.reports, args=(i, d)))
        for t in self.threads:
            t.start()

    def checks(self, d):
        conn = None
        want = {"full@" + DOMAIN: OVER, "busy@" + DOMAIN: "DUNNO"}
        while not self.stopping.is_set():
            for rcpt, expect in want.items():
                try:
                    if conn is None:
                        conn = d.policy_conn()
                    got = conn.ask(recipient=rcpt, size=1)
                except (OSError, ConnectionError, AssertionError) as e:
                    got = f"no answer: {e}"
                    conn = None
                with self.lock:
                    if got == expect:
                        self.answers += 1
                    else:
                        self.bad.append((rcpt, got))
            time.sleep(0.005)
        if conn is not None:
            conn.sock.close()

    def reports(self, i, d):
        n = 0
        while not self.stopping.is_set():
            n += 1
            key = f"fo/{i}/{n}"
            try:
                st, doc = post(d, key)
            except (OSError, ValueError, http.client.HTTPException):
                st, doc = None, None
            ok = st == 200 and doc["results"][0].get("status") == "applied"
            with self.lock:
                if ok:
                    self.acked[key] = time.monotonic()
                else:
                    self.unacked.append(key)
            if not ok:
                time.sleep(0.02)

    def first_ack(self, i, since):
        """When daemon i first acknowledged a report sent after since (None: not yet)."""
        with self.lock:
            return min((t for k, t in self.acked.items()
                        if k.startswith(f"fo/{i}/") and t > since), default=None)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(60)


def report(key):
    return {"mailbox": "busy@" + DOMAIN, "bytes": 1, "messages": 1, "key": key}


def post(d, key, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=timeout)
    try:
        c.request("POST", "/v1/usage", json.dumps({"reports": [report(key)]}),
                  {"Content-Type": "application/json", **d.auth})
        r = c.getresponse()
        body = r.read()
        return r.status, json.loads(body) if r.status == 200 else None
    finally:
        c.close()


class Failover(unittest.TestCase):
    def drill(self, synchronous):
        name = "sync" if synchronous else "async"
        pair = Replicated(synchronous)
        daemons = []
        load = None
        try:
            # created and migrated on the primary; never dropped: pair.destroy() removes all
            db = mqtest.Database(host=pair.primary)
            db.sql(f"INSERT INTO domains (name) VALUES ('{DOMAIN}');"
                   " INSERT INTO mailboxes (domain_id, local_part, storage_limit_bytes,"
                   "   used_bytes)"
                   " SELECT id, l, s, u FROM domains, (VALUES ('full', 1000, 1000),"
                   "   ('flip', 1000, 0), ('busy', NULL, 0)) v (l, s, u)")
            # both servers, the writable one wherever it is: what an operator configures
            conninfo = (f"host={pair.primary},{pair.standby} port=5432,5432 user=postgres"
                        f" dbname={db.name} target_session_attrs=read-write")
            token = mqtest.bootstrap_token(conninfo, "failover-admin")
            daemons = [mqtest.Daemon(conninfo, token=token, log_level="info",
                                     view_ping_interval=1) for _ in range(2)]
            a, b = daemons
            for d in daemons:
                self.assertEqual(mqtest.eventually(
                    lambda: d.policy(recipient="full@" + DOMAIN, size=1), OVER), OVER)

            load = Load(daemons)
            time.sleep(1)
            with load.lock:
                rate = len(load.acked)  # acknowledged in the first second
            # the standby falls behind (its WAL receiver stalls) for STALL seconds, then the
            # primary crashes: with synchronous replication the commits wait meanwhile (and
            # none is acknowledged); without it they are acknowledged and lost with the primary
            if STALL > 0:
                pair.stall_standby()
            with load.lock:
                before = len(load.acked)
            time.sleep(STALL)
            with load.lock:
                stalled = len(load.acked) - before
            t_crash = time.monotonic()
            pair.crash_primary()
            pair.resume_standby()
            time.sleep(0.5)  # no primary at all for a moment, as while a failover manager decides
            t_promote = time.monotonic()
            pair.promote()
            t_promoted = time.monotonic()

            up = []
            for d in daemons:
                self.assertEqual(mqtest.eventually(lambda: health(d), "up", 30), "up",
                                 d.read_log()[-3000:])
                up.append(time.monotonic() - t_promote)
            # a change through one daemon's admin API on the new primary reaches the other's
            # checks: its LISTEN connection is on the new primary
            # (a 503 is retried, as a client does: a pooled connection that failed to connect
            # within the last second is not tried again yet)
            self.assertEqual(mqtest.eventually(
                lambda: a.http("PUT", f"/v1/mailboxes/flip@{DOMAIN}/usage",
                               {"bytes": 1000, "source": "failover drill"})[0], 200, 30),
                200,
                a.read_log()[-3000:])
            t_put = time.monotonic() - t_promote
            self.assertEqual(mqtest.eventually(
                lambda: b.policy(recipient="flip@" + DOMAIN, size=1), OVER, 30), OVER)
            t_seen = time.monotonic() - t_promote
            # both daemons' pools write on the new primary again
            for i in range(2):
                self.assertTrue(mqtest.eventually(
                    lambda: load.first_ack(i, t_promoted) is not None, True, 30))
            time.sleep(0.5)
            load.stop()

            self.assertEqual(load.bad[:5], [], f"{len(load.bad)} checks not answered as before")
            acked = set(load.acked)
            ledger = set(mqtest.psql(db.name, "SELECT idempotency_key FROM usage_ledger",
                                     pair.standby).split())
            lost = acked - ledger
            # a client retries what was not acknowledged, with the same key: counted once
            committed = 0  # not acknowledged, yet committed (and on the new primary)
            for key in load.unacked:
                st, doc = post(a, key)
                self.assertEqual(st, 200, doc)
                self.assertEqual(doc["results"][0]["status"], "applied")
                committed += doc["results"][0]["duplicate"]
            used, count = mqtest.psql(db.name, "SELECT m.used_bytes, (SELECT count(*) FROM"
                                      " usage_ledger) FROM mailboxes m WHERE"
                                      " m.local_part = 'busy'", pair.standby).split("|")
            sent = len(acked) + len(load.unacked)
            # no report counted twice, whatever failed on the way
            self.assertEqual(int(used), int(count))
            self.assertEqual(int(count), sent - len(lost))
            if synchronous:
                self.assertEqual(lost, set(), "acknowledged reports lost")
            first = [load.first_ack(i, t_promoted) - t_promote for i in range(2)]
            print(f"failover drill ({name}): reports acknowledged {len(acked)} (before the"
                  f" stall {rate}/s, during the {STALL:.1f} s stall {stalled}), not"
                  f" acknowledged {len(load.unacked)} (yet committed {committed}), acknowledged"
                  f" then lost {len(lost)}; checks answered {load.answers}, unanswered"
                  f" {len(load.bad)}; crash to promote {t_promote - t_crash:.2f} s, promote"
                  f" took {t_promoted - t_promote:.2f} s; from promote: database up"
                  f" {up[0]:.2f} s / {up[1]:.2f} s, first report acknowledged {first[0]:.2f} s /"
                  f" {first[1]:.2f} s, an admin change accepted {t_put:.2f} s, seen by the"
                  f" other daemon {t_seen:.2f} s", file=sys.stderr)
        finally:
            if load is not None:
                load.stop()
            for d in daemons:
                d.cleanup()
            pair.destroy()

    def test_standby_listed_first(self):
        """A conninfo that names a standby before the primary and says nothing of
        target_session_attrs: the daemon still settles on the primary (its connections default
        to read-write), instead of keeping a pool connection and a listener on a server that
        refuses every write and every LISTEN."""
        pair = Replicated(synchronous=False)
        d = None
        try:
            db = mqtest.Database(host=pair.primary)
            db.sql(f"INSERT INTO domains (name) VALUES ('{DOMAIN}');"
                   " INSERT INTO mailboxes (domain_id, local_part)"
                   " SELECT id, 'busy' FROM domains")
            token = mqtest.bootstrap_token(db.conninfo, "failover-admin")
            d = mqtest.Daemon(f"host={pair.standby},{pair.primary} user=postgres"
                              f" dbname={db.name}", token=token, log_level="info")
            self.assertEqual(mqtest.eventually(lambda: health(d), "up"), "up")
            self.assertEqual(post(d, "first/1")[0], 200)
            # the listener is on the primary: a change made there reaches the checks
            db.sql("UPDATE mailboxes SET storage_limit_bytes = 1 WHERE local_part = 'busy'")
            self.assertEqual(mqtest.eventually(
                lambda: d.policy(recipient="busy@" + DOMAIN, size=1), OVER), OVER)
        finally:
            if d is not None:
                d.cleanup()
            pair.destroy()

    def test_synchronous_standby(self):
        self.drill(synchronous=True)

    def test_asynchronous_standby(self):
        self.drill(synchronous=False)


if __name__ == "__main__":
    unittest.main()
