"""End to end with a real Exim 4.96 (Debian's exim4-daemon-light): Exim conflicts with Postfix as
the installed MTA, so its packages are downloaded and unpacked (apt-get download + dpkg -x) into
a directory of their own and run from there with their own configuration (-C), spool and log;
the system MTA stays Postfix. Its RCPT ACL includes contrib/exim/mailquota_rcpt_acl as shipped,
which asks the real mailquotad over its Exim listener (${readsocket{...}}). One recipient's
refusal must not touch the others, and a service that is down or silent defers."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

import mqtest
import test_postfix as tp

HERE = os.path.dirname(os.path.abspath(__file__))
ACL = os.path.join(HERE, "..", "..", "contrib", "exim", "mailquota_rcpt_acl")
PACKAGES = ("exim4-base", "exim4-daemon-light", "libidn12")
EXIM_USER = "Debian-exim"  # compiled into Debian's binary; it looks the user up at start

CONFIG = """\
primary_hostname = mx.example.test
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
domainlist local_domains = example.test
acl_smtp_rcpt = acl_check_rcpt
message_size_limit = 50M
queue_only = true
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =

begin acl

acl_check_rcpt:
  deny    !domains = +local_domains
          message  = relay not permitted
  require verify   = recipient
.include {acl}
  accept

begin routers

mailbox:
  driver = accept
  domains = +local_domains
  local_parts = {mailboxes}
  local_part_suffix = +*
  local_part_suffix_optional
  transport = maildir

begin transports

maildir:
  driver = appendfile
  # the matched item of local_parts: a name Exim trusts in a path (the address is tainted)
  directory = {dir}/mail/${{local_part_data}}/Maildir
  maildir_format
  create_directory
  user = nobody
  group = nogroup
"""


def ensure_exim_user():
    """The user Debian's exim4-base creates in its postinst (the binary refuses to start
    without it); created the same way when missing."""
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        subprocess.run(["adduser", "--system", "--group", "--quiet", "--home",
                        "/var/spool/exim4", "--no-create-home", "--disabled-login",
                        "--force-badname", EXIM_USER], check=True)


class EximInstance:
    def __init__(self, socket_path):
        ensure_exim_user()
        # the binary and the libraries a Postfix machine lacks
        self.root = mqtest.unpacked_debs("exim-root", PACKAGES, "usr/sbin/exim4")
        self.binary = os.path.join(self.root, "usr", "sbin", "exim4")
        self.env = dict(os.environ,
                        LD_LIBRARY_PATH=os.path.join(self.root, "usr/lib/x86_64-linux-gnu"))
        # under /tmp: Exim's reception runs as Debian-exim, deliveries as nobody
        self.dir = tempfile.mkdtemp(prefix="mq-exim-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = mqtest.free_port()
        self.proc = None
        uid, gid = pwd.getpwnam(EXIM_USER).pw_uid, pwd.getpwnam(EXIM_USER).pw_gid
        for sub in ("spool", "log", "mail"):
            os.makedirs(os.path.join(self.dir, sub))
        for sub in ("spool", "log"):
            os.chown(os.path.join(self.dir, sub), uid, gid)
        os.chown(os.path.join(self.dir, "mail"), tp.NOBODY, tp.NOBODY)
        # the ACL as shipped, but for the socket's path and a 2 s timeout (the silent-service
        # test waits it out), where Exim's user can read it (a clone may sit in a directory
        # only root can enter)
        with open(ACL) as f:
            text = f.read()
        for shipped, ours in (("{/run/mailquota/exim.sock}", "{" + socket_path + "}"),
                              ("{5s}", "{2s}")):
            assert text.count(shipped) == 1, shipped
            text = text.replace(shipped, ours)
        acl = os.path.join(self.dir, "mailquota_rcpt_acl")
        with open(acl, "w") as f:
            f.write(text)
        os.chmod(acl, 0o644)
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(dir=self.dir, port=self.port, acl=acl,
                                  mailboxes=" : ".join(tp.MAILBOXES)))
        os.chmod(self.conf, 0o644)
        check = self.exim("-bV")
        if check.returncode != 0:
            raise AssertionError("exim -bV refused the configuration:\n" + check.stdout +
                                 check.stderr)
        self.proc = subprocess.Popen([self.binary, "-C", self.conf, "-bdf", "-oX",
                                      str(self.port)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            mqtest.wait_smtp(self.port, "exim", self.proc, self.log)
        except AssertionError:
            self.stop()
            raise

    def exim(self, *args):
        return subprocess.run([self.binary, "-C", self.conf, *args], env=self.env,
                              capture_output=True, text=True)

    def log(self, which="main"):
        try:
            with open(os.path.join(self.dir, "log", which + "log")) as f:
                return f.read()
        except OSError:
            return ""

    def deliver(self):
        """Deliver the queue as root (-C keeps root's privilege only for root's own runs, so
        the daemon only receives: queue_only)."""
        p = self.exim("-qff")
        if p.returncode != 0:
            raise AssertionError("exim -qff failed:\n" + p.stderr + self.log())

    def delivered(self, mailbox):
        new = os.path.join(self.dir, "mail", mailbox, "Maildir", "new")
        return sorted(os.listdir(new)) if os.path.isdir(new) else []

    def stop(self):
        if self.proc is not None:
            mqtest.stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


class EximEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        tp.seed_example(cls.db)
        cls.daemon = cls.exim = None
        cls.sockdir = tempfile.mkdtemp(prefix="mq-exim-sock-", dir="/tmp")
        os.chmod(cls.sockdir, 0o755)
        cls.path = os.path.join(cls.sockdir, "exim.sock")
        try:
            # Exim's reception process (user Debian-exim) reaches the socket through its group
            cls.daemon = mqtest.Daemon(cls.db.conninfo, policy_socket_group=EXIM_USER,
                                       policy_socket_mode="0660", exim_socket=cls.path)
            cls.exim = EximInstance(cls.path)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.exim is not None:
            cls.exim.stop()
        if cls.daemon is not None:
            cls.daemon.cleanup()
        cls.db.close()
        shutil.rmtree(cls.sockdir, ignore_errors=True)

    def counts(self, *boxes):
        """Messages in each maildir once everything queued so far is delivered."""
        self.exim.deliver()
        return {m: len(self.exim.delivered(m)) for m in boxes}

    def test_1_middle_recipient_over_quota(self):
        before = self.counts("user1", "user2", "user3")
        replies, data = tp.smtp_transaction(self, self.exim.port, 500, [
            "user1@example.test", "user2@example.test", "user3@example.test"])
        self.assertEqual(replies[1], (552, "5.2.2 Mailbox full"), replies)
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertEqual(data, 250)
        self.assertEqual(self.counts("user1", "user2", "user3"),
                         {"user1": before["user1"] + 1, "user2": before["user2"],
                          "user3": before["user3"] + 1})
        self.assertIn("via=exim-unix rcpt=<user2@example.test> size=500 match=mailbox "
                      "verdict=over_quota", self.daemon.read_log())

    def test_2_size_over_one_mailbox_max(self):
        replies, data = tp.smtp_transaction(self, self.exim.port, 5000, [
            "user1@example.test", "small@example.test"])
        self.assertEqual(replies, [(250, "Accepted"), (552, "5.2.3 Message length exceeds "
                                                           "administrative limit")])
        self.assertEqual(data, 250)
        # the same mailbox takes a message under its limit
        replies, _ = tp.smtp_transaction(self, self.exim.port, 900, ["small@example.test"])
        self.assertEqual(replies[0][0], 250, replies)

    def test_3_extension_and_case(self):
        before = self.counts("user1")
        replies, data = tp.smtp_transaction(self, self.exim.port, 100, [
            "User1+tag@Example.Test", "Tagged+news@EXAMPLE.test"])
        self.assertEqual(replies, [(250, "Accepted"), (552, "5.2.2 Mailbox full")])
        self.assertEqual(data, 250)
        self.assertEqual(self.counts("user1"), {"user1": before["user1"] + 1})
        # Exim hands the ACL the address lower-cased; mailquota strips the extension
        self.assertIn("rcpt=<tagged+news@example.test> size=100 match=mailbox "
                      "verdict=over_quota", self.daemon.read_log())

    def test_4_no_size_declared(self):
        # $message_size is -1: checked as the smallest message; a full mailbox is still refused
        replies, data = tp.smtp_transaction(self, self.exim.port, None, [
            "user1@example.test", "user2@example.test", "small@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertEqual(replies[1][1], "5.2.2 Mailbox full")
        self.assertIn("rcpt=<user2@example.test> size=0 size_given=no", self.daemon.read_log())

    def test_5_service_silent_defers(self):
        # a socket that accepts and never answers: Exim's readsocket times out (2 s here)
        self.daemon.stop()
        silent = socket.socket(socket.AF_UNIX)
        silent.bind(self.path)
        os.chmod(self.path, 0o666)
        silent.listen(16)
        held = []
        stop = threading.Event()

        def hold():
            silent.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(silent.accept()[0])
                except socket.timeout:
                    pass

        t = threading.Thread(target=hold)
        t.start()
        try:
            replies, data = tp.smtp_transaction(self, self.exim.port, 100, [
                "user1@example.test", "user2@example.test"])
        finally:
            stop.set()
            t.join()
            for c in held:
                c.close()
            silent.close()
            os.unlink(self.path)
        self.assertEqual(replies, [(451, "4.3.5 Quota service unavailable")] * 2)
        self.assertIsNone(data)
        self.assertGreaterEqual(len(held), 2)

    def test_6_service_down_defers(self):
        # after test_5 no daemon listens: the socket is gone, the fail string defers
        if os.path.exists(self.path):
            self.daemon.stop()
        replies, data = tp.smtp_transaction(self, self.exim.port, 100, [
            "user1@example.test", "user3@example.test"])
        self.assertEqual(replies, [(451, "4.3.5 Quota service unavailable")] * 2)
        self.assertIsNone(data)
        want = ("temporarily rejected RCPT <user1@example.test>: 451 4.3.5 Quota service "
                "unavailable")
        self.assertTrue(mqtest.eventually(lambda: want in self.exim.log("reject"), True),
                        self.exim.log("reject"))


if __name__ == "__main__":
    unittest.main()
