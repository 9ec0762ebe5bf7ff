"""mailquota-milter end to end with a real Postfix: a throwaway instance (test_postfix's harness)
whose only quota check is the milter (smtpd_milters from contrib/postfix/main.cf.milter, as
shipped, pointed at the test's socket), the milter asking the real mailquotad over its policy
socket. Each recipient gets its own reply (552 5.2.2 / 5.2.3, or 4xx when the daemon is down)
while the others are delivered; SIZE= from MAIL FROM is what is checked, and no SIZE is
checked as a tiny message. SIGHUP and SIGTERM end the milter cleanly (exit 0, socket removed),
and a milter that is not there makes Postfix defer (milter_default_action = tempfail). The
same scenarios run through Sendmail 8.17 (Debian's packages unpacked and run from there, as
test_exim.py does with Exim), whose INPUT_MAIL_FILTER with F=T defers when the milter is away."""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

import mqtest
import test_postfix as tp

CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                       "postfix", "main.cf.milter")


def contrib_main_cf(sock):
    """contrib/postfix/main.cf.milter as shipped, its socket the test's (braces escaped for
    PostfixInstance's str.format)."""
    with open(CONTRIB) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^smtpd_milters = unix:\S+$", f"smtpd_milters = unix:{sock}", text)
    assert n == 1, "contrib/postfix/main.cf.milter has no smtpd_milters line"
    return text.replace("{", "{{").replace("}", "}}")


class Milter:
    """The real mailquota-milter with its own configuration file."""

    def __init__(self, workdir, **settings):
        self.dir = workdir
        self.socket = os.path.join(workdir, "milter.sock")
        self.conf = os.path.join(workdir, "mailquota.conf")
        opts = {"milter_socket": f"unix:{self.socket}", "milter_socket_group": "postfix",
                "milter_socket_mode": "0660", "milter_timeout": "3", "log_level": "debug"}
        opts.update(settings)
        with open(self.conf, "w") as f:
            f.writelines(f"{k} = {v}\n" for k, v in opts.items())
        self.log_path = os.path.join(workdir, "milter.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([os.path.join(mqtest.BIN, "mailquota-milter"), "-c",
                                      self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("mailquota-milter exited at start:\n" + self.read_log())
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mailquota-milter did not start:\n" + self.read_log())

    def signal(self, sig):
        """Send sig and return the exit status."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
        # a sanitizer report (a leak, a late use after free) must not go unnoticed
        log = self.read_log() if os.path.exists(self.log_path) else ""
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in log:
                raise AssertionError(f"mailquota-milter reported {mark!r}:\n" + log[-6000:])

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()


class MilterScenarios:
    """The scenarios every MTA interface passes, through an MTA (self.mta: port,
    delivered(mailbox), wait_delivered(mailbox, count)) that asks the milter (self.milter),
    which asks the daemon (self.daemon). setUpClass of a subclass starts them: start_base()
    for the database, the daemon and the milter, then its MTA."""
    ACCEPTED = 250  # RCPT accepted; the texts differ between MTAs

    @classmethod
    def start_base(cls, socket_group):
        cls.db = mqtest.Database()
        tp.seed_example(cls.db)
        cls.daemon = cls.pf = cls.mta = cls.milter = None
        cls.dir = tempfile.mkdtemp(prefix="mq-milter-", dir="/tmp")
        os.chmod(cls.dir, 0o755)
        # the milter asks through a link that each (re)started daemon's socket is put behind
        cls.link = os.path.join(cls.dir, "policy.sock")
        cls.start_daemon()
        cls.milter = Milter(cls.dir, milter_connect=cls.link, milter_socket_group=socket_group)
        cls.milter.start()

    @classmethod
    def start_daemon(cls):
        cls.daemon = mqtest.Daemon(cls.db.conninfo, policy_socket_group="postfix",
                                   policy_socket_mode="0660")
        tmp = cls.link + ".new"
        os.symlink(cls.daemon.socket, tmp)
        os.replace(tmp, cls.link)

    @classmethod
    def stop_mta(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.milter is not None:
                cls.milter.stop()
        finally:
            cls.stop_mta()
            tp.stop_instances(cls)
            shutil.rmtree(cls.dir, ignore_errors=True)

    def transaction(self, size, rcpts, body=None):
        return tp.smtp_transaction(self, self.mta.port, size, rcpts, body)

    def delivered(self, mailboxes):
        return {m: len(self.mta.delivered(m)) for m in mailboxes}

    def codes(self, replies):
        """The RCPT replies with accepted ones reduced to their code."""
        return [(c, None) if c == 250 else (c, m) for c, m in replies]

    def test_1_middle_recipient_over_quota(self):
        before = self.delivered(("user1", "user2", "user3"))
        replies, data = self.transaction(500, ["user1@example.test", "user2@example.test",
                                               "user3@example.test"])
        self.assertEqual(self.codes(replies), [(250, None), (552, "5.2.2 Mailbox full"),
                                               (250, None)])
        self.assertEqual(data, 250)
        self.mta.wait_delivered("user1", before["user1"] + 1)
        self.mta.wait_delivered("user3", before["user3"] + 1)
        self.assertEqual(len(self.mta.delivered("user2")), before["user2"])
        # one line per refusal in the milter's log, and the daemon saw the declared size
        self.assertRegex(self.milter.read_log(), r'level=info conn=\d+ queue_id=\w+ '
                         r'rcpt=<user2@example.test> size=500 action="552 5.2.2 Mailbox full" '
                         r'reply="552 5.2.2"')
        self.assertRegex(self.daemon.read_log(), r"rcpt=<user2@example.test> size=500 "
                         r"match=mailbox verdict=over_quota")

    def test_2_size_over_one_mailbox_max(self):
        before = self.delivered(("user1", "user3", "small"))
        replies, data = self.transaction(5000, ["user1@example.test", "small@example.test",
                                                "user3@example.test"])
        self.assertEqual(self.codes(replies), [
            (250, None), (552, "5.2.3 Message length exceeds administrative limit"),
            (250, None)])
        self.assertEqual(data, 250)
        self.mta.wait_delivered("user1", before["user1"] + 1)
        self.mta.wait_delivered("user3", before["user3"] + 1)
        # the same recipient with a size that fits
        replies, data = self.transaction(900, ["small@example.test"])
        self.assertEqual((self.codes(replies), data), ([(250, None)], 250))
        self.mta.wait_delivered("small", before["small"] + 1)

    def test_3_extension_and_case(self):
        before = self.delivered(("user1",))
        replies, data = self.transaction(100, ["User1+tag@EXAMPLE.test",
                                               "Tagged+news@EXAMPLE.test"])
        # tagged+news is refused as the full mailbox tagged@example.test
        self.assertEqual(self.codes(replies), [(250, None), (552, "5.2.2 Mailbox full")])
        self.assertEqual(data, 250)
        self.mta.wait_delivered("user1", before["user1"] + 1)
        # the recipient reaches the daemon as the client wrote it; the daemon folds it
        log = self.daemon.read_log()
        self.assertIn("rcpt=<User1+tag@EXAMPLE.test> size=100 match=mailbox verdict=accept",
                      log)
        self.assertIn("rcpt=<Tagged+news@EXAMPLE.test> size=100 match=mailbox "
                      "verdict=over_quota", log)

    def test_4_no_size_declared(self):
        before = self.delivered(("user1",))
        s = smtplib.SMTP("127.0.0.1", self.mta.port, timeout=60)
        try:
            s.ehlo("client.test")
            self.assertEqual(s.mail("sender@client.test")[0], 250)  # no SIZE=
            replies = [s.rcpt(r) for r in ("user1@example.test", "user2@example.test")]
            self.assertEqual(self.codes([(c, m.decode()) for c, m in replies]),
                             [(250, None), (552, "5.2.2 Mailbox full")])
            code, _ = s.data(b"From: sender@client.test\r\nSubject: nosize\r\n\r\nhi\r\n")
            self.assertEqual(code, 250)
        finally:
            s.quit()
        self.mta.wait_delivered("user1", before["user1"] + 1)
        self.assertIn("rcpt=<user2@example.test> size=0 match=mailbox verdict=over_quota",
                      self.daemon.read_log())

    def daemon_restarted_then_down(self):
        """Within one SMTP session: the milter's kept connection to a daemon that restarted is
        reopened once; a daemon that is down gets every recipient 451 4.3.5, never 2xx or
        5xx."""
        s = smtplib.SMTP("127.0.0.1", self.mta.port, timeout=60)
        try:
            s.ehlo("client.test")
            self.assertEqual(s.mail("sender@client.test", ["SIZE=500"])[0], 250)
            self.assertEqual(s.rcpt("user1@example.test")[0], 250)
            self.daemon.cleanup()
            self.__class__.daemon = None
            self.start_daemon()
            code, msg = s.rcpt("user2@example.test")
            self.assertEqual((code, msg.decode()), (552, "5.2.2 Mailbox full"))
            self.daemon.stop()
            t0 = time.monotonic()
            code, msg = s.rcpt("user3@example.test")
            took = time.monotonic() - t0
            self.assertEqual((code, msg.decode()), (451, "4.3.5 Quota service unavailable"))
            self.assertLess(took, 3)  # refused connect: no wait for milter_timeout
            s.rset()
            # a new transaction: still 4xx for each recipient
            self.assertEqual(s.mail("sender@client.test", ["SIZE=10"])[0], 250)
            for r in ("user1@example.test", "user2@example.test"):
                self.assertEqual(s.rcpt(r), (451, b"4.3.5 Quota service unavailable"))
        finally:
            s.quit()
        self.assertIn("event=daemon_unavailable error=\"cannot connect to "
                      f"{self.link}", self.milter.read_log())


@unittest.skipUnless(shutil.which("postfix"), "postfix is not installed")
class PostfixMilter(MilterScenarios, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.start_base("postfix")
            st, doc, _ = cls.daemon.http("POST", "/v1/tokens", {"name": "postfix-deliver",
                                                                "scope": "usage"})
            assert st == 201, doc
            # the milter is the only quota check: the restriction list only keeps relaying shut
            cls.pf = cls.mta = tp.PostfixInstance(
                cls.daemon.socket, f"http://127.0.0.1:{cls.daemon.http_port}", doc["token"],
                restriction="permit", main_cf_extra=contrib_main_cf(cls.milter.socket))
        except BaseException:
            cls.tearDownClass()
            raise

    def test_1a_postfix_texts(self):
        # Postfix passes the milter's reply on unchanged, and logs it
        replies, _ = self.transaction(500, ["user1@example.test", "user2@example.test"])
        self.assertEqual(replies, [(250, "2.1.5 Ok"), (552, "5.2.2 Mailbox full")])
        self.assertTrue(mqtest.eventually(lambda: "milter-reject: RCPT from localhost"
                                          "[127.0.0.1]: 552 5.2.2 Mailbox full;" in
                                          self.pf.log(), True), self.pf.log())

    def test_4b_a_second_milter_does_not_take_the_socket(self):
        # libmilter removes whatever is at its socket's path: a second mailquota-milter
        # started on a live one's path refuses to start, and the first goes on answering
        other = tempfile.mkdtemp(prefix="mq-milter2-", dir="/tmp")
        try:
            conf = os.path.join(other, "mailquota.conf")
            with open(conf, "w") as f:
                f.write(f"milter_socket = unix:{self.milter.socket}\n"
                        f"milter_connect = {self.link}\n")
            p = subprocess.run([os.path.join(mqtest.BIN, "mailquota-milter"), "-c", conf],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("another process answers on it", p.stderr)
        finally:
            shutil.rmtree(other, ignore_errors=True)
        self.assertTrue(os.path.exists(self.milter.socket))
        replies, _ = self.transaction(100, ["user1@example.test", "user2@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552], replies)

    def test_5_sighup_ends_the_milter_cleanly(self):
        """libmilter stops for good on SIGHUP (as on SIGTERM): exit 0, socket removed; started
        again (systemd's Restart=always), it answers as before."""
        self.assertEqual(self.milter.signal(signal.SIGHUP), 0, self.milter.read_log())
        self.assertFalse(os.path.exists(self.milter.socket))
        self.assertIn("event=stop result=ok", self.milter.read_log())
        self.milter.start()
        replies, data = self.transaction(500, ["user1@example.test", "user2@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552])
        self.assertEqual(data, 250)

    def test_6_daemon_restarted_then_down(self):
        self.daemon_restarted_then_down()

    def test_7_sigterm_then_postfix_defers(self):
        self.assertEqual(self.milter.signal(signal.SIGTERM), 0, self.milter.read_log())
        self.assertFalse(os.path.exists(self.milter.socket))
        # milter_default_action = tempfail: Postfix defers the session, accepts nothing
        s = smtplib.SMTP("127.0.0.1", self.pf.port, timeout=60)
        try:
            s.ehlo("client.test")
            code, msg = s.mail("sender@client.test", ["SIZE=100"])
            if code == 250:
                code, msg = s.rcpt("user1@example.test")
            self.assertEqual((code, msg.decode()),
                             (451, "4.7.1 Service unavailable - try again later"))
        finally:
            s.close()
        want = f"warning: connect to Milter service unix:{self.milter.socket}: No such file"
        self.assertTrue(mqtest.eventually(lambda: want in self.pf.log(), True), self.pf.log())


SENDMAIL_PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf")

# Sendmail's configuration for the test, from Debian's sendmail-cf by m4: its own queue, pid
# and port; example.test local, every local part delivered by a script into mail/<user>/ (the
# local mailer's passwd check off: the mailboxes are mailquota's, not system users); the milter
# as docs/milter.md shows it.
SENDMAIL_MC = """\
divert(-1)
divert(0)dnl
include(`{root}/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(`mailquota test')dnl
OSTYPE(`linux')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confDOMAIN_NAME', `mx.example.test')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`QUEUE_DIR', `{dir}/queue')dnl
define(`STATUS_FILE', `{dir}/statistics')dnl
define(`confPID_FILE', `{dir}/sendmail.pid')dnl
define(`ALIAS_FILE', `{dir}/aliases')dnl
define(`LOCAL_MAILER_PATH', `{dir}/deliver')dnl
define(`LOCAL_MAILER_ARGS', `deliver $u')dnl
MODIFY_MAILER_FLAGS(`LOCAL', `-w')dnl
LOCAL_DOMAIN(`example.test')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`nocanonify')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
INPUT_MAIL_FILTER(`mailquota', `S=unix:{socket}, F=T, T=C:10s;S:30s;R:30s;E:5m')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""

SENDMAIL_DELIVER = """\
#!/bin/sh
# deliver [-f sender] USER: the message into mail/<user, folded, without +extension>/
for a; do u=$a; done
u=$(printf %s "$u" | tr A-Z a-z | sed 's/+.*//')
mkdir -p "{dir}/mail/$u" && cat > "{dir}/mail/$u/$$.$(date +%s%N)"
"""


class SendmailInstance:
    """Sendmail 8.17 as a foreground daemon (-bD) on a loopback port. It sleeps a minute at
    start when the host's name has no domain, so it runs in a UTS namespace of its own named
    mx.example.test (unshare); nothing of the machine's is changed."""

    def __init__(self, milter_socket):
        # it conflicts with Postfix, the installed MTA, as Exim does (test_exim.py)
        self.root = mqtest.unpacked_debs("sendmail-root", SENDMAIL_PACKAGES,
                                         "usr/libexec/sendmail/sendmail")
        self.dir = tempfile.mkdtemp(prefix="mq-sendmail-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # Sendmail refuses a world-writable path (/tmp is sticky)
        self.proc = None
        try:
            self._setup(milter_socket)
        except BaseException:
            self.stop()
            raise

    def _setup(self, milter_socket):
        os.makedirs(os.path.join(self.dir, "queue"), mode=0o700)
        os.makedirs(os.path.join(self.dir, "mail"))
        os.chmod(os.path.join(self.dir, "mail"), 0o777)  # the local mailer's user writes
        deliver = os.path.join(self.dir, "deliver")
        with open(deliver, "w") as f:
            f.write(SENDMAIL_DELIVER.format(dir=self.dir))
        os.chmod(deliver, 0o755)
        self.port = mqtest.free_port()
        mc = SENDMAIL_MC.format(root=self.root, dir=self.dir, port=self.port,
                                socket=milter_socket)
        self.cf = os.path.join(self.dir, "sendmail.cf")
        with open(self.cf, "w") as f:
            subprocess.run(["m4"], input=mc, stdout=f, check=True, text=True)
        self.log_path = os.path.join(self.dir, "sendmail.out")
        self.log = open(self.log_path, "w")
        binary = os.path.join(self.root, "usr", "libexec", "sendmail", "sendmail")
        in_ns = ["unshare", "--uts", "sh", "-c", 'hostname mx.example.test && exec "$0" "$@"',
                 binary, "-C", self.cf]
        # local delivery looks every recipient up in the aliases first: an empty database
        with open(os.path.join(self.dir, "aliases"), "w") as f:
            f.write("postmaster: root\n")
        subprocess.run(in_ns + ["-bi"], stdout=self.log, stderr=subprocess.STDOUT, check=True)
        self.proc = subprocess.Popen(in_ns + ["-bD", "-q1h"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        mqtest.wait_smtp(self.port, "sendmail", self.proc, self.read_log)

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            mqtest.stop_process(self.proc)
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def delivered(self, mailbox):
        d = os.path.join(self.dir, "mail", mailbox)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def wait_delivered(self, mailbox, count, timeout=30):
        mqtest.wait_delivered(self.delivered, mailbox, count, timeout=timeout)


@unittest.skipUnless(shutil.which("m4") and shutil.which("unshare"),
                     "m4 (Sendmail's configuration) or unshare is missing")
class SendmailMilter(MilterScenarios, unittest.TestCase):
    """The same scenarios through Sendmail's INPUT_MAIL_FILTER (the milter protocol is
    Sendmail's own). Sendmail asks milters as root, so the socket keeps the test's group."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.start_base("root")
            cls.mta = SendmailInstance(cls.milter.socket)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def stop_mta(cls):
        if cls.mta is not None:
            cls.mta.stop()

    def test_6_daemon_restarted_then_down(self):
        self.daemon_restarted_then_down()

    def test_7_milter_down_defers(self):
        # F=T: a milter Sendmail cannot reach is a temporary failure, never an accept
        self.assertEqual(self.milter.signal(signal.SIGTERM), 0, self.milter.read_log())
        s = smtplib.SMTP("127.0.0.1", self.mta.port, timeout=60)
        try:
            s.ehlo("client.test")
            code, msg = s.mail("sender@client.test", ["SIZE=100"])
            if code == 250:
                code, msg = s.rcpt("user1@example.test")
            self.assertEqual((code, msg), (451, b"4.3.2 Please try again later"))
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
