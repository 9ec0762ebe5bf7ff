"""Driver of bench/restart (run by it; prints figures, asserts nothing).

  restart.py BIN_DIR CONNINFO WORKDIR RESTARTS CONNS SECONDS_BETWEEN

Policy load as Postfix's smtpd processes make it: CONNS persistent connections, one request
in flight on each; a request that meets a refused connection, or the end of the connection
without an answer, is tried once more on a new connection after 1 s (Postfix's defaults, as
`postconf -d` shows them: smtpd_policy_service_try_limit = 2,
smtpd_policy_service_retry_delay = 1s), and fails if that try fails too.
An answer that is the tempfail reply, or none within 10 s (smtpd_policy_service_timeout as
the README recommends), also fails the check. Meanwhile the daemon is restarted RESTARTS
times, as `systemctl restart` does (SIGTERM, wait for the exit, start, wait for READY=1):
  activated  the listening socket is created once by this driver and passed to every daemon
             (LISTEN_FDS, as systemd's mailquotad.socket does)
  own        each daemon binds (and at exit removes) its own socket, as without socket units
Then the throughput of the same load with and without NOTIFY_SOCKET + WATCHDOG_USEC (STATUS=
lines every 10 s, a watchdog ping every 0.5 s), with bench/loadgen.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

BIN, CONNINFO, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
RESTARTS, CONNS, GAP = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
MAILBOXES = 1000000
TRY_DELAY = 1.0      # Postfix's retry delay (attr_clnt)
ANSWER_TIMEOUT = 10  # smtpd_policy_service_timeout
WRAPPER = 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'


class Notify:
    """The service manager's end of NOTIFY_SOCKET, drained by a thread."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.cond = threading.Condition()
        self.ready = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            data = self.sock.recv(4096)
            if b"READY=1" in data.split(b"\n"):
                with self.cond:
                    self.ready += 1
                    self.cond.notify_all()

    def wait_ready(self, count, timeout=120):
        with self.cond:
            if not self.cond.wait_for(lambda: self.ready >= count, timeout):
                raise RuntimeError("no READY=1")


def spawn(path, log, notify, listener=None, watchdog=False):
    args = [os.path.join(BIN, "mailquotad"), "-o", f"database_url={CONNINFO}",
            "-o", f"policy_socket={path}", "-o", "http_listen=", "-o", "log_level=warn",
            "-o", "policy_socket_mode=0666", "-o", "view_load_timeout=120"]
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(k, None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.path
    if watchdog:
        env["WATCHDOG_USEC"] = "1000000"
    place = None
    if listener is not None:
        env["LISTEN_FDS"] = "1"
        env["LISTEN_FDNAMES"] = "policy_socket"
        args = ["/bin/sh", "-c", WRAPPER, "sh"] + args
        high = listener.fileno()

        def place():
            os.dup2(high, 3)
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=place, close_fds=place is None)


class Load:
    def __init__(self, path, conns):
        self.path = path
        self.stop = False
        self.lock = threading.Lock()
        self.counts = dict(checks=0, retried=0, failed_refused=0, failed_eof=0,
                           failed_tempfail=0, failed_timeout=0)
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(conns)]
        for t in self.threads:
            t.start()

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def _connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(ANSWER_TIMEOUT)
        s.connect(self.path)
        return s

    def _ask(self, s, req):
        """The reply, or raises: ConnectionError (EOF or reset), socket.timeout."""
        s.sendall(req)
        buf = b""
        while b"\n\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("eof")
            buf += chunk
        return buf.split(b"\n\n", 1)[0].decode()

    def _run(self, i):
        seq = i * 7919
        s = None
        while not self.stop:
            seq += 1
            req = (f"request=smtpd_access_policy\nprotocol_state=RCPT\n"
                   f"recipient=user{seq % 1000 + 1}@d{seq % 997 + 1}.test\nsize=1000\n\n"
                   ).encode()
            reply = why = None
            for attempt in range(2):
                try:
                    if s is None:
                        s = self._connect()
                    reply = self._ask(s, req)
                    break
                except socket.timeout:
                    why = "failed_timeout"
                except (ConnectionRefusedError, FileNotFoundError):
                    why = "failed_refused"
                except OSError:  # EOF, reset, broken pipe: the server closed
                    why = "failed_eof"
                if s is not None:
                    s.close()
                    s = None
                if why == "failed_timeout":
                    break  # Postfix gives up on a timeout (no second try within it)
                if attempt == 0:
                    time.sleep(TRY_DELAY)
            if reply is None:
                self.count(why)
                continue
            if attempt == 1:
                self.count("retried")
            if reply.startswith("action=4") or "DEFER" in reply:
                self.count("failed_tempfail")
            else:
                self.count("checks")
        if s is not None:
            s.close()

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()
        return self.counts


def restarts(mode):
    path = os.path.join(WORK, f"{mode}.sock")
    log = open(os.path.join(WORK, f"{mode}.log"), "w")
    notify = Notify(os.path.join(WORK, f"{mode}.notify"))
    listener = None
    if mode == "activated":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        os.chmod(path, 0o666)
        listener.listen(4096)  # systemd's default Backlog= is SOMAXCONN
    t0 = time.monotonic()
    d = spawn(path, log, notify, listener)
    notify.wait_ready(1)
    first = time.monotonic() - t0
    load = Load(path, CONNS)
    starts, stops = [], []
    for n in range(RESTARTS):
        time.sleep(GAP)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        d.wait()
        t1 = time.monotonic()
        stops.append(t1 - t0)
        d = spawn(path, log, notify, listener)
        notify.wait_ready(n + 2)
        starts.append(time.monotonic() - t1)
    time.sleep(GAP)
    c = load.finish()
    d.send_signal(signal.SIGTERM)
    d.wait()
    if listener is not None:
        listener.close()
        os.unlink(path)
    failed = sum(v for k, v in c.items() if k.startswith("failed"))
    print(f"{mode:<9} restarts={RESTARTS} checks={c['checks']} failed={failed} "
          f"(refused={c['failed_refused']} eof_without_answer={c['failed_eof']} "
          f"tempfail={c['failed_tempfail']} timeout={c['failed_timeout']}) "
          f"answered_after_a_1s_retry={c['retried']} "
          f"first_start_s={first:.2f} sigterm_to_exit_s={min(stops):.2f}..{max(stops):.2f} "
          f"start_to_ready_s={min(starts):.2f}..{max(starts):.2f}", flush=True)


def loadgen_rps(path, secs):
    out = subprocess.run([os.path.join(BIN, "bench", "loadgen"), "unix", path, "16", str(secs),
                          str(MAILBOXES)], capture_output=True, text=True).stdout
    for f in out.split():
        if f.startswith("rps="):
            return float(f[4:])
    raise RuntimeError("loadgen: " + out)


def notify_cost(reps=5, secs=5):
    """Throughput with and without STATUS/watchdog, alternating runs (which goes first
    alternates too); the medians."""
    log = open(os.path.join(WORK, "notify.log"), "w")
    notify = Notify(os.path.join(WORK, "cost.notify"))
    plain_path, sd_path = os.path.join(WORK, "plain.sock"), os.path.join(WORK, "sd.sock")
    plain = spawn(plain_path, log, None)
    sd = spawn(sd_path, log, notify, watchdog=True)
    notify.wait_ready(1)
    for _ in range(600):
        if os.path.exists(plain_path):
            break
        time.sleep(0.1)
    time.sleep(1)
    a, b = [], []
    for i in range(reps):
        if i % 2 == 0:
            a.append(loadgen_rps(plain_path, secs))
        b.append(loadgen_rps(sd_path, secs))
        if i % 2 == 1:
            a.append(loadgen_rps(plain_path, secs))
    for d in (plain, sd):
        d.send_signal(signal.SIGTERM)
        d.wait()
    a.sort()
    b.sort()
    ma, mb = a[len(a) // 2], b[len(b) // 2]
    print(f"throughput (unix, 16 connections, median of {reps} x {secs} s): "
          f"plain={ma:.0f}/s with_STATUS_and_watchdog={mb:.0f}/s ({100 * mb / ma:.0f}%); "
          f"runs plain={[round(x) for x in a]} notify={[round(x) for x in b]}", flush=True)


if __name__ == "__main__":
    if RESTARTS > 0:
        for mode in ("activated", "own"):
            restarts(mode)
    notify_cost()
