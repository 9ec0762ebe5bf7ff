"""End to end with a real Postfix: a throwaway instance (own config, queue and data
directories, loopback port) asks the real mailquotad over its policy socket at RCPT TO, and
delivers with virtual(8) into maildirs. One recipient's refusal must not touch the others. A
quota warning is mailed to its user through Postfix's own sendmail(1) and lands in the
maildir. A second instance asks the socketmap table instead (check_recipient_access
socketmap:unix:...:mailquota): it refuses only the full recipient, and a daemon that is down
makes Postfix defer (4xx), never accept or bounce."""
import grp
import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
import unittest

import mqtest

NOBODY = 65534

MASTER_CF = """\
{listen} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
mqdeliver unix  -       n       n       -       -       pipe
  flags=hu user=nobody argv={mailquota} -c {conf} deliver ${{recipient}} key=${{queue_id}}/${{recipient}} -- {deliver} {dir}/mail ${{recipient}}
pickup    unix  n       -       n       60      1       pickup
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
recipient_delimiter = +
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox
virtual_mailbox_base = {dir}/mail
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# deliveries go through mailquota's wrapper, which reports what was stored
virtual_transport = mqdeliver
mqdeliver_destination_recipient_limit = 1
# as README.md recommends
smtpd_recipient_restrictions =
    reject_unauth_destination,
    {restriction}
smtpd_policy_service_timeout = 10s
smtpd_policy_service_max_idle = 300s
smtpd_policy_service_max_ttl = 1000s
smtpd_policy_service_default_action = 451 4.3.5 Quota service unavailable
"""

MAILBOXES = ["user1", "user2", "user3", "small", "tagged", "filling", "warned"]
DELIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "maildir-deliver")
CONTRIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                       "postfix")


class PostfixInstance:
    def __init__(self, socket_path, api_url, token, restriction=None, main_cf_extra="",
                 etc_files=None):
        # the restriction that asks mailquota: the policy service unless one is given
        self.restriction = restriction or f"check_policy_service unix:{socket_path}"
        # main.cf lines that override the ones above ({etc} is the instance's configuration
        # directory), and files written there first: name -> text
        self.main_cf_extra = main_cf_extra
        self.etc_files = etc_files or {}
        # Everything of this instance lives here, under /tmp (not $TMPDIR, which may be
        # private): pipe(8) runs the delivery wrapper as nobody, who cannot enter a clone below
        # a directory of mode 0700 (/root, a home on Debian 12), so nothing it uses may be there.
        self.dir = tempfile.mkdtemp(prefix="mq-postfix-", dir="/tmp")
        self.etc = os.path.join(self.dir, "etc")
        try:
            self._setup(socket_path, api_url, token)
        except BaseException:
            self.stop()
            raise

    def _setup(self, socket_path, api_url, token):
        os.chmod(self.dir, 0o755)
        self.port = mqtest.free_port()
        for sub in ("etc", "bin", "queue", "data", "mail", "spool"):
            os.makedirs(os.path.join(self.dir, sub))
            os.chmod(os.path.join(self.dir, sub), 0o755)  # whatever the umask
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        mail = os.path.join(self.dir, "mail")
        spool = os.path.join(self.dir, "spool")
        os.chown(mail, NOBODY, NOBODY)
        os.chown(spool, NOBODY, NOBODY)
        # the programs pipe(8) runs as nobody: copies of the ones under test, owned by root
        mailquota = shutil.copy(os.path.join(mqtest.BIN, "mailquota"), self.dir + "/bin")
        deliver = shutil.copy(DELIVER, self.dir + "/bin")
        for prog in (mailquota, deliver):
            os.chmod(prog, 0o755)
        for name, text in self.etc_files.items():
            with open(os.path.join(self.etc, name), "w") as f:
                f.write(text)
        # the extra lines replace the base's settings of the same names rather than follow
        # them: every Postfix process warns of each overridden entry at start, and that many
        # warnings at once can fill postlogd's datagram socket and stall the instance
        extra = self.main_cf_extra.format(etc=self.etc)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(without_settings(MAIN_CF.format(dir=self.dir, uid=NOBODY, gid=NOBODY,
                                                    restriction=self.restriction),
                                     {name for name, _ in main_cf_settings(extra)}))
            f.write(extra)
        # the delivery wrapper reports through the API with a token of scope usage, readable
        # only by the user pipe(8) runs it as (outside etc/, where `postfix check` wants every
        # file owned by root)
        token_file = os.path.join(self.dir, "mailquota.token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chown(token_file, NOBODY, NOBODY)
        os.chmod(token_file, 0o400)
        conf = os.path.join(self.etc, "mailquota.conf")
        with open(conf, "w") as f:
            f.write(f"api_url = {api_url}\napi_token_file = {token_file}\n"
                    f"report_spool = {spool}/reports\n")
        os.chmod(conf, 0o644)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"127.0.0.1:{self.port}", dir=self.dir, conf=conf,
                                     mailquota=mailquota, deliver=deliver))
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for m in MAILBOXES:
                f.write(f"{m}@example.test example.test/{m}/\n")
        # say now what the unprivileged users cannot reach, rather than let deliveries time out
        self.require_access("nobody", [("-x", mailquota), ("-x", deliver), ("-r", conf),
                                       ("-r", token_file), ("-w", mail), ("-w", spool)])
        self.require_access("postfix", [("-w", socket_path)])
        self.run("check")
        self.run("start")
        mqtest.wait_smtp(self.port, "postfix", diagnostics=self.log)
        if "overriding earlier entry" in self.log():
            raise AssertionError("main.cf names a parameter twice:\n" + self.log())

    @staticmethod
    def require_access(user, checks):
        for flag, path in checks:
            if subprocess.run(["runuser", "-u", user, "--", "test", flag, path]).returncode:
                raise AssertionError(f"`test {flag} {path}` fails as user {user}, who must "
                                     "reach it (a directory on the way, or its mode)")

    def run(self, cmd):
        # postfix reports errors on stderr only to a terminal; its log has them otherwise
        try:
            p = subprocess.run(["postfix", "-c", self.etc, cmd], capture_output=True,
                               text=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"postfix {cmd} did not finish in 60 s:\n" + self.log())
        if p.returncode != 0:
            raise AssertionError(f"postfix {cmd} failed ({p.returncode}):\n{p.stderr}\n"
                                 + self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "maillog")) as f:
                return f.read()
        except OSError:
            return ""

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.master_pid()
        try:
            subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.time() + 20
        while pid and time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                pid = None
                break
            time.sleep(0.1)
        if pid:
            # this instance's master would not stop: end it and its children, never leave
            # them behind for the next test
            subprocess.run(["pkill", "-KILL", "-P", str(pid)], capture_output=True)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def delivered(self, mailbox):
        new = os.path.join(self.dir, "mail", "example.test", mailbox, "new")
        return sorted(os.listdir(new)) if os.path.isdir(new) else []

    def wait_delivered(self, mailbox, count, timeout=30):
        mqtest.wait_delivered(self.delivered, mailbox, count, self.log, timeout)


def smtp_transaction(test, port, size, rcpts, body=None):
    """MAIL FROM with SIZE= (none when size is None), one RCPT each; returns the RCPT replies
    and the DATA code."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    try:
        s.ehlo("client.test")
        test.assertTrue(s.has_extn("size"))
        code, _ = s.mail("sender@client.test", [f"SIZE={size}"] if size is not None else [])
        test.assertEqual(code, 250)
        replies = [s.rcpt(r) for r in rcpts]
        data_code = None
        if any(c == 250 for c, _ in replies):
            msg = body or (b"From: sender@client.test\r\nSubject: test\r\n\r\n" +
                           b"x" * 100 + b"\r\n")
            data_code, _ = s.data(msg)
        return [(c, m.decode()) for c, m in replies], data_code
    finally:
        s.quit()


def contrib_main_cf(name, shipped_path, path):
    """contrib/postfix/<name> (or contrib/<name>) as shipped, its socket path the test's; its
    permit_mynetworks would let this test's own client (127.0.0.1) through unchecked, so
    mynetworks here holds no address the test uses. Braces escaped for str.format."""
    for d in (CONTRIB, os.path.dirname(CONTRIB)):
        if os.path.exists(os.path.join(d, name)):
            with open(os.path.join(d, name)) as f:
                text = f.read()
            break
    assert shipped_path in text, (name, shipped_path)
    text = text.replace(shipped_path, path) + "\nmynetworks = 192.0.2.0/24\n"
    return text.replace("{", "{{").replace("}", "}}")


def without_settings(text, names):
    """main.cf text without the settings (and their continuation lines) of names."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() and line[0] not in " \t" and not line.startswith("#"):
            skipping = line.split("=", 1)[0].strip() in names
        elif not line.strip() or line.startswith("#"):
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out)


def main_cf_settings(text):
    """The parameter = value settings of main.cf text (continuation lines joined, comments
    and blank lines dropped), in order."""
    out, cur = [], None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and cur is not None:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            continue
        name, _, value = line.partition("=")
        out.append((name.strip(), value.strip()))
        cur = name
    return [(n, " ".join(v.split())) for n, v in out]


def seed_example(db):
    """The mailboxes both Postfix classes use: user2 full, small with a 1000-byte max size,
    tagged full (asked with an extension), the others with room."""
    db.cli("domain", "add", "example.test", "storage=1M")
    for m in MAILBOXES:
        db.cli("mailbox", "add", f"{m}@example.test")
    db.cli("mailbox", "set", "user2@example.test", "storage=1000")
    db.cli("usage", "set", "user2@example.test", "1000", "3")
    db.cli("mailbox", "set", "small@example.test", "max-size=1000")
    db.cli("mailbox", "set", "tagged@example.test", "storage=10")
    db.cli("usage", "set", "tagged@example.test", "10")


def stop_instances(cls):
    """tearDownClass of a class with a Postfix (pf), a mailquotad (daemon) and a database."""
    if cls.pf is not None:
        cls.pf.stop()
    if cls.daemon is not None:
        cls.daemon.cleanup()
    cls.db.close()


@unittest.skipUnless(shutil.which("postfix"), "postfix is not installed")
class PostfixEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        db = cls.db
        seed_example(db)
        db.cli("mailbox", "set", "filling@example.test", "storage=2500")
        db.cli("mailbox", "set", "warned@example.test", "storage=100K")
        # the socket is reachable by smtpd (user postfix) through its group, not by everyone
        cls.daemon = cls.pf = None
        try:
            cls.daemon = mqtest.Daemon(db.conninfo, policy_socket_group="postfix",
                                       policy_socket_mode="0660")
            st = os.stat(cls.daemon.socket)
            assert st.st_gid == grp.getgrnam("postfix").gr_gid
            st, doc, _ = cls.daemon.http("POST", "/v1/tokens", {"name": "postfix-deliver",
                                                                "scope": "usage"})
            assert st == 201, doc
            # main.cf lines from contrib/postfix-main.cf as written, the socket the test's
            cls.pf = PostfixInstance(cls.daemon.socket,
                                     f"http://127.0.0.1:{cls.daemon.http_port}", doc["token"],
                                     restriction="permit",
                                     main_cf_extra=contrib_main_cf("postfix-main.cf",
                                                                   "/run/mailquota/policy.sock",
                                                                   cls.daemon.socket))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_instances(cls)

    def transaction(self, size, rcpts, body=None):
        """MAIL FROM with SIZE=, one RCPT each; returns the RCPT replies and the DATA code."""
        return smtp_transaction(self, self.pf.port, size, rcpts, body)

    def test_1_middle_recipient_over_quota(self):
        before = {m: len(self.pf.delivered(m)) for m in ("user1", "user2", "user3")}
        replies, data = self.transaction(500, ["user1@example.test", "user2@example.test",
                                               "user3@example.test"])
        self.assertEqual(replies[0][0], 250)
        self.assertEqual(replies[1][0], 552)
        self.assertTrue(replies[1][1].startswith("5.2.2 <user2@example.test>: Recipient "
                                                 "address rejected: Mailbox full"), replies[1])
        self.assertEqual(replies[2][0], 250)
        self.assertEqual(data, 250)
        self.pf.wait_delivered("user1", before["user1"] + 1)
        self.pf.wait_delivered("user3", before["user3"] + 1)
        self.assertEqual(len(self.pf.delivered("user2")), before["user2"])

    def test_2_size_over_one_mailbox_max(self):
        replies, data = self.transaction(5000, ["user1@example.test", "small@example.test",
                                                "user3@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552, 250])
        self.assertTrue(replies[1][1].startswith("5.2.3 <small@example.test>"), replies[1])
        self.assertIn("Message length exceeds administrative limit", replies[1][1])
        self.assertEqual(data, 250)
        # the same message, small enough, reaches small@ too
        replies, _ = self.transaction(900, ["small@example.test"])
        self.assertEqual(replies[0][0], 250)

    def test_3_extension_and_case(self):
        before = len(self.pf.delivered("user1"))
        replies, data = self.transaction(100, ["User1+tag@Example.Test",
                                               "Tagged+news@EXAMPLE.test"])
        self.assertEqual(replies[0][0], 250)
        # refused because it is checked as the full mailbox tagged@example.test
        self.assertEqual(replies[1][0], 552)
        self.assertTrue(replies[1][1].startswith("5.2.2"), replies[1])
        self.assertEqual(data, 250)
        self.pf.wait_delivered("user1", before + 1)
        log = self.daemon.read_log()
        self.assertIn("rcpt=<Tagged+news@EXAMPLE.test>", log)
        status, doc, _ = self.daemon.http("GET",
                                          "/v1/check?recipient=User1%2Btag@Example.Test&size=1")
        self.assertEqual((status, doc["mailbox"]["address"]), (200, "user1@example.test"))

    def test_4_deliveries_fill_a_mailbox_until_rcpt_refuses(self):
        body = b"From: s@client.test\r\nSubject: fill\r\n\r\n" + b"y" * 700 + b"\r\n"
        refused_at = None
        for i in range(10):
            before = int(self.db.sql("SELECT used_bytes FROM mailboxes WHERE"
                                     " local_part = 'filling'"))
            replies, data = self.transaction(len(body), ["filling@example.test",
                                                         "user3@example.test"], body)
            self.assertEqual(replies[1][0], 250)          # the other recipient always gets it
            if replies[0][0] != 250:
                self.assertEqual(replies[0][0], 552)
                self.assertTrue(replies[0][1].startswith("5.2.2 <filling@example.test>"))
                refused_at = i
                break
            self.assertEqual(data, 250)
            # the wrapper reports after delivery; wait for the usage to grow
            grown = mqtest.eventually(lambda: int(self.db.sql(
                "SELECT used_bytes FROM mailboxes WHERE local_part = 'filling'")) > before,
                True, 30)
            self.assertTrue(grown, self.pf.log())
        self.assertIsNotNone(refused_at)
        self.assertGreaterEqual(refused_at, 2)
        delivered = len(self.pf.delivered("filling"))
        self.assertEqual(delivered, refused_at)
        used, msgs = self.db.sql("SELECT used_bytes || ' ' || used_messages FROM mailboxes"
                                 " WHERE local_part = 'filling'").split()
        self.assertEqual(int(msgs), delivered)
        sizes = sum(os.path.getsize(os.path.join(self.pf.dir, "mail", "example.test",
                                                 "filling", "new", f))
                    for f in self.pf.delivered("filling"))
        self.assertEqual(int(used), sizes)  # exactly what was stored

    def test_6_quota_warning_mailed_through_postfix_sendmail(self):
        """Warnings by mail, as docs/warnings.md sets them up, through the real sendmail(1) of this
        Postfix instance (-C its configuration): a recalculation to 85 % fires the 80 %
        warning, a second daemon (any daemon delivers) runs the command, and Postfix delivers
        the message into the user's maildir, through mailquota's own delivery wrapper."""
        st, doc, _ = self.daemon.http("PATCH", "/v1/warnings/settings", {"channels": ["mail"]})
        self.assertEqual(st, 200, doc)
        mailer = None
        try:
            mailer = mqtest.Daemon(
                self.db.conninfo, token=self.daemon.token, policy_socket="",
                policy_tcp_listen="", log_level="info",
                warning_mail_command=f"/usr/sbin/sendmail -C {self.pf.etc} -i "
                                     "-f postmaster@example.test --",
                warning_mail_from="Postmaster <postmaster@example.test>")
            self.db.cli("usage", "set", "warned@example.test", str(85 * 1024), "3")
            self.pf.wait_delivered("warned", 1)
            name = self.pf.delivered("warned")[0]
            with open(os.path.join(self.pf.dir, "mail", "example.test", "warned", "new",
                                   name), "rb") as f:
                msg = f.read().decode()
            head = msg.split("\n\n", 1)[0]
            for want in ("\nAuto-Submitted: auto-generated\n", "\nTo: warned@example.test\n",
                         "\nSubject: Your mailbox is 85.0 % full\n",
                         "\nFrom: Postmaster <postmaster@example.test>\n"):
                self.assertIn(want, "\n" + head + "\n")
            # the envelope sender is the one the command gave (-f), as Postfix logged it
            self.assertIn("from=<postmaster@example.test>", self.pf.log())
            self.assertIn("it holds 85 KiB of 100 KiB.", msg)
            event = self.db.sql("SELECT event_id FROM warning_events"
                                " WHERE address = 'warned@example.test'")
            self.assertIn(f"Message-ID: <warning.{event}@example.test>", head)
            self.assertEqual(mqtest.eventually(lambda: self.db.sql(
                "SELECT state || ' ' || tries FROM warning_deliveries d JOIN warning_events e"
                " ON e.id = d.event_id WHERE e.address = 'warned@example.test'"),
                "delivered 1"), "delivered 1")
        finally:
            if mailer is not None:
                mailer.cleanup()
            self.daemon.http("PATCH", "/v1/warnings/settings", {"channels": []})

    def test_7a_real_size_at_end_of_data(self):
        # no SIZE= and one recipient: RCPT passes (checked as 1 byte), the end-of-data check
        # of the recommended configuration sees the real size and refuses the message
        body = b"From: s@client.test\r\nSubject: big\r\n\r\n" + b"z" * 3000 + b"\r\n"
        before = len(self.pf.delivered("small"))
        s = smtplib.SMTP("127.0.0.1", self.pf.port, timeout=60)
        try:
            s.ehlo("client.test")
            self.assertEqual(s.mail("sender@client.test")[0], 250)
            self.assertEqual(s.rcpt("small@example.test")[0], 250)
            code, msg = s.data(body)
            self.assertEqual(code, 552, msg)
            self.assertEqual(msg.decode(), "5.2.3 <END-OF-MESSAGE>: End-of-data rejected: "
                             "Message length exceeds administrative limit")
        finally:
            s.quit()
        self.assertIn("state=END-OF-MESSAGE rcpt=<small@example.test> size=",
                      self.daemon.read_log())
        # with two recipients the end-of-data answer is DUNNO: both get it (documented)
        replies, data = self.transaction(None, ["small@example.test", "user1@example.test"],
                                         body)
        self.assertEqual(([c for c, _ in replies], data), ([250, 250], 250))
        self.pf.wait_delivered("small", before + 1)

    def test_7b_docs_say_what_contrib_says(self):
        # one recommended configuration: README's block and mailquotad(8)'s are the settings
        # of contrib/postfix-main.cf, which this class runs
        with open(os.path.join(os.path.dirname(CONTRIB), "postfix-main.cf")) as f:
            want = main_cf_settings(f.read())
        root = os.path.dirname(os.path.dirname(CONTRIB))
        with open(os.path.join(root, "README.md")) as f:
            readme = f.read()
        block = readme.split("## Postfix", 1)[1].split("```", 2)[1]
        self.assertEqual(main_cf_settings(block), want)
        with open(os.path.join(root, "docs", "man", "mailquotad.8")) as f:
            man = f.read()
        block = man.split(".SH POSTFIX", 1)[1].split(".nf", 1)[1].split(".fi", 1)[0]
        self.assertEqual(main_cf_settings(block), want)

    def test_7_no_size_declared(self):
        # no SIZE= in MAIL FROM: checked as a 1-byte message, so the full mailbox is still
        # refused and the others get the message
        before = {m: len(self.pf.delivered(m)) for m in ("user1", "user3")}
        replies, data = self.transaction(None, ["user1@example.test", "user2@example.test",
                                                "user3@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertTrue(replies[1][1].startswith("5.2.2 <user2@example.test>"), replies[1])
        self.assertEqual(data, 250)
        self.pf.wait_delivered("user1", before["user1"] + 1)
        self.pf.wait_delivered("user3", before["user3"] + 1)
        self.assertIn("rcpt=<user2@example.test> size=0 ", self.daemon.read_log())

    def test_8_daemon_down_defers(self):
        # the last test of the class: Postfix cannot reach the policy service and answers
        # smtpd_policy_service_default_action (README.md's 451 4.3.5), never 2xx or 5xx
        self.daemon.stop()
        replies, data = self.transaction(100, ["user1@example.test", "user2@example.test"])
        self.assertEqual(replies, [
            (451, f"4.3.5 <{r}>: Recipient address rejected: Quota service unavailable")
            for r in ("user1@example.test", "user2@example.test")])
        self.assertIsNone(data)

    def test_5_no_system_postfix_running(self):
        # the system's Postfix is not running: every master process belongs to a test
        # instance (its queue directory under /tmp/mq-postfix-*; other tests may run their
        # own at the same time), ours among them
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        masters = [int(line.split()[0]) for line in out.splitlines()
                   if "/usr/lib/postfix/sbin/master" in line and "grep" not in line]

        def cwd(pid):
            try:
                return os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                return ""  # gone meanwhile
        system = [p for p in masters if cwd(p) and not cwd(p).startswith("/tmp/mq-postfix-")]
        self.assertEqual(system, [], [(p, cwd(p)) for p in system])
        self.assertIn(self.pf.master_pid(), masters)


@unittest.skipUnless(shutil.which("postfix"), "postfix is not installed")
class PostfixSocketmap(unittest.TestCase):
    """check_recipient_access socketmap:unix:<path>:mailquota, as README.md shows it: a table
    lookup has no message size, so it refuses only recipients already full."""

    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        db = cls.db
        seed_example(db)
        cls.daemon = cls.pf = None
        # smtpd (user postfix) reaches the socket through its group, as the policy socket
        cls.sockdir = tempfile.mkdtemp(prefix="mq-sm-", dir="/tmp")
        os.chmod(cls.sockdir, 0o755)
        cls.path = os.path.join(cls.sockdir, "socketmap.sock")
        try:
            cls.daemon = mqtest.Daemon(db.conninfo, policy_socket_group="postfix",
                                       policy_socket_mode="0660", socketmap_socket=cls.path)
            st, doc, _ = cls.daemon.http("POST", "/v1/tokens", {"name": "postfix-deliver",
                                                                "scope": "usage"})
            assert st == 201, doc
            # main.cf lines from contrib/postfix/main.cf.socketmap as shipped
            cls.pf = PostfixInstance(
                cls.daemon.socket, f"http://127.0.0.1:{cls.daemon.http_port}", doc["token"],
                restriction="permit",
                main_cf_extra=contrib_main_cf("main.cf.socketmap",
                                              "/run/mailquota/socketmap.sock", cls.path))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_instances(cls)
        shutil.rmtree(cls.sockdir, ignore_errors=True)

    def test_1_middle_recipient_full(self):
        before = {m: len(self.pf.delivered(m)) for m in ("user1", "user2", "user3")}
        replies, data = smtp_transaction(self, self.pf.port, 500, [
            "user1@example.test", "user2@example.test", "user3@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertTrue(replies[1][1].startswith("5.2.2 <user2@example.test>: Recipient "
                                                 "address rejected: Mailbox full"), replies[1])
        self.assertEqual(data, 250)
        self.pf.wait_delivered("user1", before["user1"] + 1)
        self.pf.wait_delivered("user3", before["user3"] + 1)
        self.assertEqual(len(self.pf.delivered("user2")), before["user2"])
        self.assertIn("via=socketmap-unix key=<user2@example.test> match=mailbox "
                      "verdict=over_quota", self.daemon.read_log())

    def test_2_extension_and_case(self):
        replies, data = smtp_transaction(self, self.pf.port, 100, [
            "User1+tag@Example.Test", "Tagged+news@EXAMPLE.test"])
        self.assertEqual([c for c, _ in replies], [250, 552], replies)
        self.assertTrue(replies[1][1].startswith("5.2.2"), replies[1])
        self.assertEqual(data, 250)
        # Postfix folds the key to lower case before it asks (DICT_FLAG_FOLD_FIX)
        self.assertIn("key=<tagged+news@example.test>", self.daemon.read_log())

    def test_3_size_is_not_seen(self):
        # the documented limit of a table lookup: a message over small@'s max message size
        # is not refused at RCPT (the policy service refuses it, see PostfixEndToEnd)
        replies, _ = smtp_transaction(self, self.pf.port, 5000, ["small@example.test"])
        self.assertEqual(replies[0][0], 250, replies)

    def test_3b_no_size_declared(self):
        # no SIZE=: nothing changes for a table lookup, the full recipient is refused
        replies, data = smtp_transaction(self, self.pf.port, None, [
            "user1@example.test", "user2@example.test", "user3@example.test"])
        self.assertEqual([c for c, _ in replies], [250, 552, 250], replies)
        self.assertEqual(data, 250)

    def test_4_daemon_down_defers(self):
        self.daemon.stop()
        replies, data = smtp_transaction(self, self.pf.port, 100, [
            "user1@example.test", "user2@example.test"])
        # Postfix 3.7: a socketmap it cannot reach is a lookup error (DICT_ERR_RETRY), which
        # smtpd answers with a temporary "Server configuration error" for that recipient,
        # never 2xx or 5xx (docs/configuration.md says so)
        self.assertEqual(replies, [
            (451, f"4.3.5 <{r}>: Recipient address rejected: Server configuration error")
            for r in ("user1@example.test", "user2@example.test")])
        self.assertIsNone(data)
        # maillog is written by postlogd, a moment after the reply
        want = f"table socketmap:unix:{self.path}:mailquota lookup error"
        self.assertTrue(mqtest.eventually(lambda: want in self.pf.log(), True), self.pf.log())

    def test_5_store_unavailable_defers(self):
        # a daemon that answers but has no data answers TEMP: Postfix defers the same way
        # and logs the reason
        d = mqtest.Daemon("host=/nonexistent-dir user=postgres dbname=none",
                          token=mqtest.UNUSABLE_TOKEN, view_load_timeout=0,
                          policy_socket_group="postfix", socketmap_socket=self.path)
        try:
            replies, _ = smtp_transaction(self, self.pf.port, 100, ["user1@example.test"])
            self.assertEqual(replies, [(451, "4.3.5 <user1@example.test>: Recipient address "
                                        "rejected: Server configuration error")])
            want = (f"socketmap:unix:{self.path}:mailquota socketmap server temporary "
                    "error: ")
            self.assertTrue(mqtest.eventually(lambda: want in self.pf.log(), True),
                            self.pf.log())
            self.assertIn("answer=TEMP", d.read_log())
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
