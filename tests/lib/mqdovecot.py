"""A Dovecot 2.3 of the test's own (Debian's binaries, a configuration, base and state
directories and mail under one temporary directory; no network listener): its userdb reads
mailquota's view and its quota_clone writes usage back, through the files in contrib/dovecot
with only their connection, home and owner pointed at the test's. Optionally an LMTP listener
on a Unix socket, for Postfix to deliver to."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import mqtest

CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                       "dovecot")
NOBODY = 65534

CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = mq-test-{tag}
protocols = {protocols}
listen = 127.0.0.1
ssl = no
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_plugins = quota quota_clone
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = sql
  args = {dir}/dovecot-sql.conf.ext
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_clone_dict = proxy::mailquota
}}
dict {{
  mailquota = pgsql:{dir}/dovecot-dict-sql.conf.ext
}}
service dict {{
  unix_listener dict {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
protocol lmtp {{
  # Dovecot's own quota check at RCPT TO, with the limits mailquota's view gives it
  lmtp_rcpt_check_quota = yes
}}
"""


def contrib(name, dbname, home):
    """A contrib file as shipped, its connection (and the example home and owner) pointed at
    the test's."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    text = re.sub(r"(?m)^connect = .*$",
                  f"connect = host={mqtest.PGHOST} dbname={dbname} user=postgres", text)
    text = text.replace("'/var/vmail/'", f"'{home}/'")
    return text.replace("'vmail' AS uid, 'vmail' AS gid", f"{NOBODY} AS uid, {NOBODY} AS gid")


class DovecotInstance:
    def __init__(self, db, lmtp=False):
        # nobody must reach the mail, so it all lives under /tmp
        self.dir = tempfile.mkdtemp(prefix="mq-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.home = os.path.join(self.dir, "mail")
        os.makedirs(self.home)
        os.chown(self.home, NOBODY, NOBODY)
        for name in ("dovecot-sql.conf.ext", "dovecot-dict-sql.conf.ext"):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(contrib(name, db.name, self.home))
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.dir, tag=os.path.basename(self.dir),
                                protocols="lmtp" if lmtp else ""))
        self.lmtp_socket = os.path.join(self.dir, "run", "lmtp")
        self.pidfile = os.path.join(self.dir, "run", "master.pid")
        # the master detaches: its output goes to a file, never to a pipe we would wait on
        with open(os.path.join(self.dir, "start.log"), "w") as out:
            p = subprocess.run(["dovecot", "-c", self.conf], stdout=out, stderr=out,
                               stdin=subprocess.DEVNULL, timeout=30)
        if p.returncode != 0:
            log = open(os.path.join(self.dir, "start.log")).read()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise AssertionError(f"dovecot did not start: {log}")

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()
        except OSError:
            return ""

    def doveadm(self, *args, input=None):
        p = subprocess.run(["doveadm", "-c", self.conf, *args], capture_output=True,
                           text=True, input=input, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"doveadm {' '.join(args)}: {p.returncode} {p.stderr}\n"
                                 + self.log()[-3000:])
        return p.stdout

    def quota(self, user):
        """doveadm quota get: {type: (value, limit)} (STORAGE in KiB, as doveadm prints it)."""
        got = {}
        for line in self.doveadm("-f", "tab", "quota", "get", "-u", user).splitlines()[1:]:
            _root, typ, value, limit, _ = line.split("\t")
            got[typ] = (int(value), None if limit == "-" else int(limit))
        return got

    def stop(self):
        pid = None
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        try:
            subprocess.run(["doveadm", "-c", self.conf, "stop"], capture_output=True,
                           timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.time() + 10
        while os.path.exists(self.pidfile) and time.time() < deadline:
            time.sleep(0.1)
        if pid is not None and os.path.exists(self.pidfile):
            # this instance's master would not stop: end it and its children by pid
            subprocess.run(["pkill", "-KILL", "-P", str(pid)], capture_output=True)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
