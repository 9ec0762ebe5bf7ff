"""Helpers for integration and end-to-end tests: a fresh database per test class in the
throwaway PostgreSQL of scripts/test, the real mailquota CLI, and the real mailquotad on
temporary sockets. Standard library only."""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

import openapi

BIN = os.environ.get("MQ_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
PGHOST = os.environ.get("MQ_TEST_PGHOST", "")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(dbname, sql, host=None):
    out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-h", host or PGHOST, "-U", "postgres", "-d", dbname, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Database:
    """A new, migrated database (in the shared test cluster, or in host's); close() drops it."""

    def __init__(self, host=None):
        self.host = host or PGHOST
        self.name = "mq_" + uuid.uuid4().hex[:12]
        psql("postgres", f"CREATE DATABASE {self.name}", self.host)
        self.conninfo = f"host={self.host} user=postgres dbname={self.name}"
        self.cli("migrate")

    # commands that work on the database itself; every other one goes through the API
    DIRECT = (("migrate",), ("token", "bootstrap"))

    def api(self):
        """A daemon (HTTP only) serving this database's API to the CLI, started on first use."""
        if getattr(self, "_api", None) is None:
            self._api = Daemon(self.conninfo, policy_socket="", policy_tcp_listen="",
                               log_level="info")
        return self._api

    def cli(self, *args, check=True, env=None, input=None):
        e = dict(os.environ)
        if not any(tuple(args[:len(d)]) == d for d in self.DIRECT):
            d = self.api()
            e["MAILQUOTA_URL"] = f"http://127.0.0.1:{d.http_port}"
            e["MAILQUOTA_TOKEN"] = d.token
        e.update(env or {})
        p = subprocess.run([os.path.join(BIN, "mailquota"), "-d", self.conninfo, *args],
                           capture_output=True, text=True, env=e, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"mailquota {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr}{p.stdout}")
        return p

    def sql(self, query):
        return psql(self.name, query, self.host)

    def close(self):
        if getattr(self, "_api", None) is not None:
            self._api.cleanup()
            self._api = None
        psql("postgres", f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", self.host)


# for daemons whose database is unreachable on purpose: no token can be made there
UNUSABLE_TOKEN = "mqt_1_" + "A" * 43


def bootstrap_token(conninfo, name, *fields):
    """A new token made with database access (`mailquota token bootstrap`); its text."""
    p = subprocess.run([os.path.join(BIN, "mailquota"), "-d", conninfo, "token", "bootstrap",
                        name, *fields], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"token bootstrap exited {p.returncode}: {p.stderr}")
    return p.stdout.strip()


# every daemon a test started and has not stopped: stopped when the test process exits, so a
# test that ends without cleaning up (or whose database's cluster it destroyed) leaves nothing
_running = set()


@atexit.register
def _stop_all():
    for d in list(_running):
        d.cleanup()


class Daemon:
    """The real mailquotad on a Unix socket, a loopback TCP port and a loopback HTTP port."""

    def __init__(self, conninfo, token=None, journal=False, config=None, **overrides):
        """journal: tell the daemon its stderr (the log file) is systemd's journal, as systemd
        does (JOURNAL_STREAM = the stream's device:inode). config: parameters (name -> value)
        for a configuration file given with -c instead of -o, so reload() can change them."""
        self.journal = journal
        self.dir = tempfile.mkdtemp(prefix="mqd-")
        self.config = dict(config) if config is not None else None
        self.config_path = os.path.join(self.dir, "mailquota.conf")
        if self.config is not None:
            self.write_config(self.config)
        # an admin token for the test's requests, made as an operator would make the first one
        if token is None:
            token = bootstrap_token(conninfo, "test-admin")
        self.token = token
        self.auth = {"Authorization": "Bearer " + token}
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "policy.sock")
        if overrides.get("policy_socket") == "":
            self.socket = None
        # free_port() only finds a port that was free a moment ago: another process may take it
        # before the daemon binds. Ports we chose are chosen again when that happens.
        for attempt in range(5):
            if self._start(conninfo, overrides, last=attempt == 4):
                return

    def _start(self, conninfo, overrides, last):
        """Start the daemon; False when a port we picked was taken meanwhile (unless last)."""
        self.tcp_port = free_port()
        self.http_port = free_port()
        opts = {
            "database_url": conninfo,
            "policy_socket": self.socket,
            "policy_tcp_listen": f"127.0.0.1:{self.tcp_port}",
            "http_listen": f"127.0.0.1:{self.http_port}",
            "log_level": "debug",
        }
        opts.update(overrides)
        for k in self.config or {}:
            opts.pop(k, None)  # the file's, so that a reload can change it
        if "http_listen" in overrides and overrides["http_listen"]:
            self.http_port = int(str(overrides["http_listen"]).rsplit(":", 1)[1])
        args = [os.path.join(BIN, "mailquotad")]
        if self.config is not None:
            args += ["-c", self.config_path]
        for k, v in opts.items():
            args += ["-o", f"{k}={v}"]
        self.log_path = os.path.join(self.dir, "mailquotad.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if self.journal:
            st = os.fstat(self.log.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        _running.add(self)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                _running.discard(self)
                self.log.close()
                log = self.read_log()
                ours = not any(k in overrides for k in ("http_listen", "policy_tcp_listen"))
                if ours and not last and "Address already in use" in log:
                    return False
                raise AssertionError("mailquotad exited at start:\n" + log)
            if self._ready():
                return True
            time.sleep(0.05)
        self.proc.kill()  # never leave a daemon behind
        self.proc.wait()
        raise AssertionError("mailquotad did not start:\n" + self.read_log())

    def _ready(self):
        try:
            if self.socket:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                pass
            return True
        except OSError:
            return False

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def write_config(self, settings):
        """Replace the -c file (see config=) with name = value lines, or raw text."""
        text = settings if isinstance(settings, str) else \
            "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(self.config_path + ".new", "w") as f:
            f.write(text)
        os.replace(self.config_path + ".new", self.config_path)

    RELOAD_ENDS = ("event=reloaded ", "event=reload_failed ")

    def reload(self, settings=None, timeout=15):
        """Write settings (if given) to the -c file, send SIGHUP and wait until the daemon logs
        the outcome (it must log at notice or lower); returns the log lines written meanwhile."""
        if settings is not None:
            self.write_config(settings)
        before = len(self.read_log().splitlines())
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = self.read_log().splitlines()[before:]
            if any(m in line for line in lines for m in self.RELOAD_ENDS):
                return lines
            time.sleep(0.02)
        raise AssertionError("no reload outcome logged:\n" + self.read_log()[-3000:])

    def rss_kb(self):
        """The daemon's resident memory in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        """How many descriptors the daemon holds."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def cpu_seconds(self):
        """User + system CPU time the daemon has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        """SIGTERM; returns the exit status."""
        _running.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        log = self.read_log()
        shutil.rmtree(self.dir, ignore_errors=True)
        # a sanitizer report at exit (a leak, a late use after free) must not go unnoticed
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in log:
                raise AssertionError(f"mailquotad reported {mark!r}:\n" + log[-6000:])

    # --- policy protocol ---
    def policy_conn(self, tcp=False):
        if tcp:
            s = socket.create_connection(("127.0.0.1", self.tcp_port), timeout=10)
        else:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(self.socket)
        return PolicyConn(s)

    def policy(self, tcp=False, **attrs):
        with self.policy_conn(tcp) as c:
            return c.ask(**attrs)

    # --- HTTP ---
    def http(self, method, path, body=None, headers=None, token=True, validate=True):
        """A request with the admin token (token=False: none; a string: that token)."""
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        hdrs = {}
        if token is True:
            hdrs.update(self.auth)
        elif token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        # every response of a documented operation must match api-docs/openapi.yaml
        if validate and openapi.known(method, path) and (doc is not None or not data):
            openapi.validate(method, path, r.status, doc)
        return r.status, doc, r


class PolicyConn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk
        reply, self.buf = self.buf.split(b"\n\n", 1)
        return reply.decode()

    def ask(self, **attrs):
        req = {"request": "smtpd_access_policy", "protocol_state": "RCPT"}
        req.update(attrs)
        data = "".join(f"{k}={v}\n" for k, v in req.items()) + "\n"
        self.send_raw(data.encode())
        reply = self.read_reply()
        assert reply.startswith("action="), reply
        return reply[len("action="):]

    def closed_by_server(self, timeout=10):
        """True when the server closes the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def seed_standard(db):
    """The fixture most tests share. Returns nothing; see the comments for what each is."""
    db.cli("domain", "add", "Example.Test", "storage=1M", "max-size=10M")
    db.cli("mailbox", "add", "user1@example.test")                  # 1M default storage
    db.cli("mailbox", "add", "full@example.test", "storage=1000")   # full
    db.cli("usage", "set", "full@example.test", "1000", "5")
    db.cli("mailbox", "add", "full2@example.test", "storage=10")    # full too
    db.cli("usage", "set", "full2@example.test", "10")
    db.cli("mailbox", "add", "small@example.test", "max-size=1000")  # 5.2.3 over 1000 bytes
    db.cli("mailbox", "add", "counted@example.test", "messages=2")   # message count reached
    db.cli("usage", "set", "counted@example.test", "0", "2")
    db.cli("mailbox", "add", "off@example.test", "enabled=no")
    db.cli("alias", "add", "tofull@example.test", "full@example.test")
    db.cli("alias", "add", "team@example.test", "user1@example.test", "full@example.test")
    db.cli("alias", "add", "allfull@example.test", "full@example.test", "full2@example.test")
    db.cli("alias", "add", "mixedbig@example.test", "full@example.test", "small@example.test")
    db.cli("domain", "add", "catch.test")
    db.cli("mailbox", "add", "box@catch.test")
    db.cli("mailbox", "add", "fullbox@catch.test", "storage=5")
    db.cli("usage", "set", "fullbox@catch.test", "5")
    db.cli("alias", "add", "@catch.test", "fullbox@catch.test")
    db.cli("domain", "add", "pool.test", "pool=1000")
    db.cli("mailbox", "add", "p1@pool.test")
    db.cli("mailbox", "add", "p2@pool.test")
    db.cli("usage", "set", "p1@pool.test", "600")
    db.cli("usage", "set", "p2@pool.test", "399")


class SeededTestCase(unittest.TestCase):
    """A test class whose tests share one database seeded by seed_standard (self.db)."""

    @classmethod
    def setUpClass(cls):
        cls.db = Database()
        seed_standard(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()


def exim_ask(sock, data, half_close=True):
    """Exim's readsocket on a connected socket: the request, a half-close (unless
    shutdown=no), then everything until the server closes; closes sock."""
    with sock:
        sock.sendall(data if isinstance(data, bytes) else data.encode())
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return got.decode()
            got += chunk


def eventually(fn, want, timeout=15.0, key=lambda got: got):
    """Poll fn() until key(fn()) is want (changes reach a daemon's view asynchronously);
    return the last value of fn(). The bound is generous: this checks correctness, not
    speed."""
    deadline = time.time() + timeout
    got = fn()
    while key(got) != want and time.time() < deadline:
        time.sleep(0.02)
        got = fn()
    return got


def wait_smtp(port, what, proc=None, diagnostics=lambda: "", timeout=30):
    """Wait until an MTA answers NOOP on 127.0.0.1:port; fail with diagnostics() when it does
    not, or when proc (its process, if the test started it) exits first."""
    import smtplib
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited at start:\n" + diagnostics())
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                if s.noop()[0] == 250:
                    return
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)
    raise AssertionError(f"{what} did not start:\n" + diagnostics())


def wait_delivered(delivered, mailbox, count, diagnostics=lambda: "", timeout=30):
    """Wait until delivered(mailbox) lists at least count messages."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(delivered(mailbox)) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{mailbox}: {len(delivered(mailbox))} messages, want {count}\n"
                         + diagnostics())


def unpacked_debs(name, packages, probe):
    """Debian packages that cannot be installed beside Postfix (Exim, Sendmail), downloaded with
    apt-get download and unpacked with dpkg -x into BIN/<name> once per build directory;
    probe, a path inside, says it is there. Returns that directory."""
    root = os.path.join(BIN, name)
    if os.path.exists(os.path.join(root, probe)):
        return root
    tmp = tempfile.mkdtemp(prefix=name + "-debs-", dir=BIN)
    try:
        os.chmod(tmp, 0o755)  # apt downloads as _apt where it can
        p = subprocess.run(["apt-get", "download", *packages], cwd=tmp, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise AssertionError("apt-get download failed:\n" + p.stderr)
        unpack = os.path.join(tmp, "root")
        for deb in sorted(os.listdir(tmp)):
            if deb.endswith(".deb"):
                subprocess.run(["dpkg", "-x", os.path.join(tmp, deb), unpack], check=True)
        os.rename(unpack, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def stop_process(proc, timeout=20):
    """SIGTERM, then SIGKILL after timeout seconds; returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


PG_BIN = "/usr/lib/postgresql/15/bin"


class Cluster:
    """A PostgreSQL cluster of the test's own, for tests that stop and start the server."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mq-pg-")
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self._pg(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8")
        self.start()

    def _pg(self, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       capture_output=True, text=True)

    def start(self):
        self._pg(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                 "-o", f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' "
                       "-c fsync=off", "start")

    def stop(self):
        self._pg(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
