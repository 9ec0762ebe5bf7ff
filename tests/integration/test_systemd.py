"""mailquotad under systemd, without systemd: the notification protocol on a datagram socket of
the test's own (READY=1 only once the view is loaded, STATUS= lines, watchdog pings), socket
activation with sockets the test binds and hands over as systemd does (LISTEN_FDS, LISTEN_PID,
LISTEN_FDNAMES), including a connection attempt made while the daemon restarts, and the files
`cmake --install` puts in place, checked with systemd-analyze. No timing assertions."""
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

import mqtest

OVER = "552 5.2.2 Mailbox full"
# exec the daemon in place of a shell whose pid is known before exec: LISTEN_PID must name the
# process that reads LISTEN_FDS, as systemd sets it in the child it forks
WRAPPER = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'


def seed(db):
    db.sql("INSERT INTO domains (name, default_storage_limit_bytes) VALUES ('sd.test', 1000);"
           "INSERT INTO mailboxes (domain_id, local_part, used_bytes) "
           "SELECT id, 'full', 1000 FROM domains WHERE name = 'sd.test';"
           "INSERT INTO mailboxes (domain_id, local_part) "
           "SELECT id, 'free' FROM domains WHERE name = 'sd.test'")


class Run:
    """One mailquotad with the environment systemd would give it; sockets (socket, name) are
    passed as descriptors 3, 4, ... with LISTEN_FDS/LISTEN_FDNAMES."""

    def __init__(self, tmp, conninfo, env=None, sockets=(), listen_pid=True, **overrides):
        opts = {"database_url": conninfo, "policy_socket": os.path.join(tmp, "policy.sock"),
                "policy_tcp_listen": "", "http_listen": "", "log_level": "debug",
                "shutdown_timeout": "1"}
        opts.update(overrides)
        args = [os.path.join(mqtest.BIN, "mailquotad")]
        for k, v in opts.items():
            args += ["-o", f"{k}={v}"]
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                  "LISTEN_FDNAMES", "JOURNAL_STREAM"):
            e.pop(k, None)
        e.update(env or {})
        # high descriptors first, so that moving them to 3, 4, ... never overwrites one
        high = [os.dup2(s.fileno(), 100 + i, inheritable=False) for i, (s, _) in
                enumerate(sockets)]

        def place():
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)  # inheritable, as systemd passes them

        if sockets:
            e["LISTEN_FDS"] = str(len(sockets))
            e["LISTEN_FDNAMES"] = ":".join(name for _, name in sockets)
            if listen_pid:
                args = ["/bin/sh", "-c", WRAPPER, "sh"] + args
            else:
                e["LISTEN_PID"] = "1"
        self.log_path = os.path.join(tmp, f"mailquotad.{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w")
        # close_fds=False: descriptors 3, ... are made in the child (Python opens every other
        # descriptor non-inheritable, so nothing else leaks)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=e,
                                     preexec_fn=place if sockets else None, close_fds=False)
        for fd in high:
            os.close(fd)

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.read_log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the log:\n{self.read_log()}")

    def exit_status(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        mqtest.stop_process(self.proc)
        self.log.close()
        log = self.read_log()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in log:
                raise AssertionError(f"mailquotad reported {mark!r}:\n" + log[-6000:])
        return self.proc.returncode


class Notifications:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket; messages as dicts."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def next(self, timeout=30):
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        msg = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
        self.messages.append(msg)
        return msg

    def until(self, key, timeout=30):
        """Messages received until one carries key (that one last)."""
        got = []
        while True:
            msg = self.next(timeout)
            got.append(msg)
            if key in msg:
                return got

    def close(self):
        self.sock.close()


def ask(path, recipient, size=1):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    with mqtest.PolicyConn(s) as c:
        return c.ask(recipient=recipient, size=size)


class Seeded(unittest.TestCase):
    """A seeded database for the class, a temporary directory (0755) for each test."""

    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        seed(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mqsd-")
        os.chmod(self.tmp, 0o755)


class Notify(Seeded):
    def setUp(self):
        super().setUp()
        self.n = Notifications(self.tmp)

    def tearDown(self):
        self.n.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_ready_after_load_status_watchdog_stopping(self):
        d = Run(self.tmp, self.db.conninfo,
                env={"NOTIFY_SOCKET": self.n.path, "WATCHDOG_USEC": "400000"})
        try:
            before = self.n.until("READY")
            # nothing before READY=1 says ready; the view is loaded by then: a check answers
            # from the data, not with the tempfail reply
            self.assertTrue(all("READY" not in m for m in before[:-1]), before)
            self.assertIn("loading", before[0].get("STATUS", ""), before)
            self.assertEqual(ask(os.path.join(self.tmp, "policy.sock"), "full@sd.test"), OVER)
            self.assertIn("event=started", d.read_log())
            # a status line with the view's figures, and watchdog pings from the event loop
            status = [m["STATUS"] for m in self.n.until("STATUS") if "STATUS" in m]
            while "mailboxes" not in status[-1]:
                status += [m["STATUS"] for m in self.n.until("STATUS") if "STATUS" in m]
            self.assertIn("2 mailboxes", status[-1])
            self.assertIn("database up", status[-1])
            pings = 0
            while pings < 3:
                pings += sum(1 for m in self.n.until("WATCHDOG") if m.get("WATCHDOG") == "1")
            d.proc.send_signal(signal.SIGTERM)
            self.assertEqual(self.n.until("STOPPING")[-1]["STOPPING"], "1")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_no_watchdog_for_another_pid(self):
        # WATCHDOG_PID names another process (as sd_watchdog_enabled() checks): no pings
        d = Run(self.tmp, self.db.conninfo, env={"NOTIFY_SOCKET": self.n.path,
                                                  "WATCHDOG_USEC": "200000",
                                                  "WATCHDOG_PID": "1"})
        try:
            self.n.until("READY")
            ask(os.path.join(self.tmp, "policy.sock"), "free@sd.test")
            time.sleep(0.5)  # would be several pings' worth; asserts no duration
            self.n.sock.setblocking(False)
            seen = []
            try:
                while True:
                    seen.append(self.n.sock.recv(4096).decode())
            except BlockingIOError:
                pass
            self.assertFalse([m for m in seen if "WATCHDOG=1" in m], seen)
        finally:
            self.assertEqual(d.stop(), 0)

    def test_ready_without_database_says_tempfail(self):
        port = mqtest.free_port()
        d = Run(self.tmp, f"host=127.0.0.1 port={port} user=postgres dbname=none "
                          "connect_timeout=1",
                env={"NOTIFY_SOCKET": self.n.path}, view_load_timeout="1")
        try:
            ready = self.n.until("READY")[-1]
            self.assertIn("tempfail", ready.get("STATUS", ""), ready)
            self.assertTrue(ask(os.path.join(self.tmp, "policy.sock"),
                                "full@sd.test").startswith("451 "))
        finally:
            self.assertEqual(d.stop(), 0)


def unix_listener(path, mode=0o600):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    os.chmod(path, mode)
    s.listen(64)
    return s


def tcp_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


class SocketActivation(Seeded):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.tmp, "policy.sock")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_inherited_sockets_serve_and_survive_a_restart(self):
        pol = unix_listener(self.path)
        http = tcp_listener()
        hostport = "127.0.0.1:%d" % http.getsockname()[1]
        tcp_port = mqtest.free_port()  # not inherited: the daemon binds it itself
        socks = [(pol, "policy_socket"), (http, "http_listen")]
        opts = dict(http_listen=hostport, policy_tcp_listen=f"127.0.0.1:{tcp_port}")
        try:
            d = Run(self.tmp, self.db.conninfo, sockets=socks, shutdown_timeout=1, **opts)
            d.wait_log("event=started")
            self.assertIn("event=socket_inherited listener=policy_socket", d.read_log())
            self.assertIn("event=socket_inherited listener=http_listen", d.read_log())
            self.assertEqual(ask(self.path, "full@sd.test"), OVER)
            with urllib.request.urlopen(f"http://{hostport}/v1/health", timeout=30) as r:
                self.assertEqual(r.status, 200)
            with socket.create_connection(("127.0.0.1", tcp_port), timeout=30) as s:
                self.assertEqual(mqtest.PolicyConn(s).ask(recipient="free@sd.test", size=1),
                                 "DUNNO")
            # systemd's socket: neither chmod'ed (policy_socket_mode is 0660) nor removed
            self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
            # a connection with half a request keeps the drain going (shutdown_timeout 1 s);
            # a connection attempt made meanwhile waits in the backlog of the socket systemd
            # (here: the test) holds: the draining daemon neither takes it nor spins on it
            # (its closed listener's description lives on in the holder's copy), and the next
            # daemon answers it; matched by its address this time (systemd's default name is
            # the unit's)
            slow = socket.socket(socket.AF_UNIX)
            slow.settimeout(30)
            slow.connect(self.path)
            self.assertEqual(mqtest.PolicyConn(slow).ask(recipient="free@sd.test", size=1),
                             "DUNNO")  # accepted and served: the daemon holds it
            slow.sendall(b"request=smtpd_access_policy\n")
            d.proc.send_signal(signal.SIGTERM)
            d.wait_log("event=stopping")
            waiting = socket.socket(socket.AF_UNIX)
            waiting.settimeout(60)
            waiting.connect(self.path)
            c = mqtest.PolicyConn(waiting)
            c.send_raw(b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                       b"recipient=full@sd.test\nsize=1\n\n")
            self.assertEqual(d.stop(), 0)
            slow.close()
            self.assertNotIn("accept_failed", d.read_log())
            self.assertTrue(stat.S_ISSOCK(os.stat(self.path).st_mode))
            d2 = Run(self.tmp, self.db.conninfo,
                     sockets=[(pol, "mailquotad.socket"), (http, "mailquotad-http.socket")],
                     **opts)
            self.assertEqual(c.read_reply(), "action=" + OVER)
            c.sock.close()
            self.assertEqual(d2.stop(), 0)
            self.assertTrue(os.path.exists(self.path))
        finally:
            pol.close()
            http.close()

    def test_mismatched_sockets_are_refused(self):
        other = unix_listener(os.path.join(self.tmp, "other.sock"))
        http = tcp_listener()
        hostport = "127.0.0.1:%d" % http.getsockname()[1]
        wrong = "127.0.0.1:%d" % mqtest.free_port()
        cases = [
            # bound where no listener is configured, under no listener's name
            ([(other, "mailquotad.socket")], {}, "matches no configured listener"),
            # named after a listener but bound elsewhere
            ([(http, "http_listen")], {"http_listen": wrong}, "is bound to " + hostport),
            # named after a listener that is disabled
            ([(http, "http_listen")], {"http_listen": ""}, "http_listen is empty"),
            # two for one listener
            ([(http, "http_listen"), (http, "unknown")], {"http_listen": hostport},
             "are both for http_listen"),
        ]
        try:
            for socks, opts, expect in cases:
                with self.subTest(expect=expect):
                    d = Run(self.tmp, self.db.conninfo, sockets=socks, **opts)
                    self.assertNotEqual(d.exit_status(), 0)
                    log = d.read_log()
                    d.stop()
                    self.assertIn("event=start_failed", log)
                    self.assertIn(expect, log)
                    self.assertFalse(os.path.exists(self.path), "bound a socket anyway")
        finally:
            other.close()
            http.close()

    def test_sockets_for_another_process_are_ignored(self):
        # LISTEN_PID names another process: the descriptors are not ours, the daemon binds
        other = unix_listener(os.path.join(self.tmp, "other.sock"))
        try:
            d = Run(self.tmp, self.db.conninfo, sockets=[(other, "policy_socket")],
                    listen_pid=False)
            d.wait_log("event=started")
            self.assertNotIn("socket_inherited", d.read_log())
            self.assertEqual(ask(self.path, "full@sd.test"), OVER)
            self.assertEqual(d.stop(), 0)
            self.assertFalse(os.path.exists(self.path))  # its own socket: removed at exit
        finally:
            other.close()


class Install(unittest.TestCase):
    def test_cmake_install_and_systemd_analyze(self):
        if not os.path.exists(os.path.join(mqtest.BIN, "cmake_install.cmake")):
            self.skipTest("MQ_BIN_DIR is not a CMake build directory")
        dest = tempfile.mkdtemp(prefix="mqsd-dest-")
        try:
            p = subprocess.run(["cmake", "--install", mqtest.BIN, "--prefix", "/usr"],
                               env=dict(os.environ, DESTDIR=dest), capture_output=True,
                               text=True)
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            units = "lib/systemd/system"
            want = [f"{units}/mailquotad.service", f"{units}/mailquotad.socket",
                    f"{units}/mailquotad-http.socket", f"{units}/mailquota-milter.service",
                    "usr/lib/sysusers.d/mailquota.conf", "usr/lib/tmpfiles.d/mailquota.conf",
                    "usr/sbin/mailquotad"]
            for f in want:
                self.assertTrue(os.path.isfile(os.path.join(dest, f)), f)
            with open(os.path.join(dest, units, "mailquotad.service")) as f:
                self.assertIn("ExecStart=/usr/sbin/mailquotad\n", f.read())
            if shutil.which("systemd-analyze") is None:
                self.skipTest("no systemd-analyze")
            paths = [os.path.join(dest, units, u) for u in
                     ("mailquotad.service", "mailquotad.socket", "mailquotad-http.socket",
                      "mailquota-milter.service")]
            p = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no",
                                *paths], capture_output=True, text=True, cwd=dest)
            # the binaries are in DESTDIR, not yet at /usr/sbin: that complaint only
            problems = [line for line in (p.stdout + p.stderr).splitlines()
                        if line and "is not executable" not in line]
            self.assertEqual(problems, [])
            for unit in ("mailquotad.service", "mailquota-milter.service"):
                p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                    os.path.join(dest, units, unit)],
                                   capture_output=True, text=True, cwd=dest)
                line = [x for x in p.stdout.splitlines() if "Overall exposure" in x]
                self.assertTrue(line, p.stdout + p.stderr)
                exposure = float(line[0].split(":")[1].split()[0])
                self.assertLessEqual(exposure, 2.0, line[0])
            if os.geteuid() != 0:
                self.skipTest("sysusers.d/tmpfiles.d into a root directory need root")
            # the user, its group membership, and the directories, made inside DESTDIR
            os.makedirs(os.path.join(dest, "etc"), exist_ok=True)
            for f in ("passwd", "group", "shadow", "gshadow"):
                open(os.path.join(dest, "etc", f), "a").close()
            # no file named: each reads the sysusers.d/tmpfiles.d directories under the root,
            # where the install put only ours
            for cmd in (["systemd-sysusers", f"--root={dest}"],
                        ["systemd-tmpfiles", f"--root={dest}", "--create"]):
                p = subprocess.run(cmd, capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(dest, "etc", "passwd")) as f:
                users = {x.split(":")[0]: int(x.split(":")[2]) for x in f if ":" in x}
            with open(os.path.join(dest, "etc", "group")) as f:
                groups = {x.split(":")[0]: (int(x.split(":")[2]), x.strip().split(":")[3])
                          for x in f if ":" in x}
            self.assertIn("mailquota", groups["postfix"][1].split(","))
            want = [("run/mailquota", "mailquota", "postfix", 0o750, stat.S_ISDIR),
                    ("var/spool/mailquota", "mailquota", "mailquota", 0o770, stat.S_ISDIR),
                    ("var/spool/mailquota/reports", "mailquota", "mailquota", 0o660,
                     stat.S_ISREG)]
            for path, user, group, mode, kind in want:
                st = os.stat(os.path.join(dest, path))
                self.assertTrue(kind(st.st_mode), path)
                self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                                 (users[user], groups[group][0], mode), path)
        finally:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
