"""The self-check page (/self, /self.js, /self.css) in a real browser, Debian's chromium
headless, against the real daemon and a real PostgreSQL: the figures it shows are GET
/v1/self's, so are the quota warnings in force (in words, beside their bar), each failure has
its words, the token never reaches the daemon's log, and a phone-sized screenshot is kept in the
build directory (artifacts/self-page.png).

chromium is installed by scripts/lib.sh (MQ_DEBS): without it this test fails, it does not
skip."""
import datetime
import html.parser
import http.client
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

import mqtest

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PAGE_DIR = os.path.join(SRC, "src", "daemon", "page")
ARTIFACTS = os.path.join(mqtest.BIN, "artifacts")
CHROMIUM = "chromium"
PHONE = (412, 915)  # CSS pixels of a common phone, portrait
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

# what the page says in each state (src/daemon/page/self.js)
NO_TOKEN = "Open this page through the link you were given"
EXPIRED = "This link has expired. Ask for a new one."
INVALID = "This link is not valid: it may have been revoked or mistyped."
FORBIDDEN = "This link does not give access to a mailbox\u2019s quota."
STORAGE_ADVICE = "Delete old mail, or ask your administrator for more space."
STORAGE_FULL_ADVICE = ("New mail may be refused: delete old mail, or ask your administrator "
                       "for more space.")

MIB = 1024 * 1024


class Page(html.parser.HTMLParser):
    """A dumped DOM: the text and attributes of every element with an id; its shown text
    leaves out what hidden elements inside it hold."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, dom):
        super().__init__()
        self.attrs = {}   # id -> {attribute: value}
        self.texts = {}   # id -> text of the element and its descendants
        self.shown = {}   # id -> the same without hidden descendants' text
        self.body = {}    # the body's attributes
        self._open = []   # (tag, id or None, hidden)
        self.feed(dom)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "body":
            self.body = a
        if "id" in a:
            self.attrs[a["id"]] = a
            self.texts.setdefault(a["id"], "")
            self.shown.setdefault(a["id"], "")
        if tag in self.VOID:
            return
        self._open.append((tag, a.get("id"), "hidden" in a))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                return

    def handle_data(self, data):
        hidden_below = False  # a hidden element lies between this one and the text
        for _, ident, hidden in reversed(self._open):
            if ident is not None:
                self.texts[ident] += data
                if not hidden_below:
                    self.shown[ident] += data
            hidden_below = hidden_below or hidden

    def text(self, ident):
        return " ".join(self.texts[ident].split())

    def shown_text(self, ident):
        return " ".join(self.shown[ident].split())

    def hidden(self, ident):
        """Whether the element carries the hidden attribute."""
        return "hidden" in self.attrs[ident]

    @property
    def state(self):
        return self.body.get("data-state")


def percent_text(p):
    """A percentage as the page prints it (JavaScript's shortest form of the number)."""
    return (str(int(p)) if float(p).is_integer() else repr(float(p))) + " %"


def png_size(data):
    """(width, height) of a PNG, or None if data is not one."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


class SelfPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which(CHROMIUM) is None:
            raise AssertionError("chromium is not installed: scripts/lib.sh installs it "
                                 "(MQ_DEBS); run scripts/test, or apt-get install chromium")
        cls.db = mqtest.Database()
        cls.d = None
        try:
            cls.d = mqtest.Daemon(cls.db.conninfo)
            cls.seed()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.cleanup()
        cls.db.close()

    @classmethod
    def api(cls, method, path, body=None, want=None, token=True):
        st, doc, _ = cls.d.http(method, path, body, token=token)
        if want is not None and st != want:
            raise AssertionError(f"{method} {path}: {st} {doc}")
        return doc

    @classmethod
    def self_token(cls, address, expires_at=None):
        """A self token; without expires_at it lives self_token_max_lifetime (a day)."""
        body = {"name": "self-" + address, "scope": "self", "mailbox": address}
        if expires_at is not None:
            body["expires_at"] = expires_at
        return cls.api("POST", "/v1/tokens", body, want=201)["token"]

    @classmethod
    def seed(cls):
        # a link that expires in a moment: it has by the time the rest is ready
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
        cls.api("POST", "/v1/domains", {"name": "demo.test", "pool_limit_bytes": 100 * MIB,
                                        "max_message_size": 50 * MIB}, want=201)
        boxes = {
            # address: (limits, bytes used, messages used)
            "bob@demo.test": ({"storage_limit_bytes": 10 * MIB, "message_limit": 1000},
                              7864320, 12),                      # 75 %, 1.2 %
            "carol@demo.test": ({"storage_limit_bytes": MIB}, 996148, 40),  # 95 %: nearly full
            "dave@demo.test": ({"storage_limit_bytes": 1000}, 1000, 3),     # over quota
        }
        for address, (limits, used, count) in boxes.items():
            cls.api("POST", "/v1/mailboxes", {"address": address, **limits}, want=201)
            cls.api("PUT", f"/v1/mailboxes/{address}/usage", {"bytes": used, "messages": count,
                                                                "source": "test"},
                    want=200)
        cls.expiring = cls.self_token("bob@demo.test", soon.strftime("%Y-%m-%dT%H:%M:%SZ"))
        cls.tokens = {a: cls.self_token(a) for a in boxes}
        cls.expected = {}
        for address, tok in cls.tokens.items():
            # a new token and new usage reach the daemon's view a moment later
            def answer(tok=tok, used=boxes[address][1]):
                st, doc, _ = cls.d.http("GET", "/v1/self", token=tok)
                return doc if st == 200 and doc["storage"]["used"] == used else None
            doc = answer()
            deadline = time.time() + 15
            while doc is None and time.time() < deadline:
                time.sleep(0.05)
                doc = answer()
            if doc is None:
                raise AssertionError(f"GET /v1/self for {address} never answered 200")
            cls.expected[address] = doc

        def expired():
            st, doc, _ = cls.d.http("GET", "/v1/self", token=cls.expiring)
            return st, doc and doc.get("error")
        got = mqtest.eventually(expired, (401, "token_expired"))
        if got != (401, "token_expired"):
            raise AssertionError(f"the expiring token never expired: {got}")

    # --- the browser ---

    def browse_all(self, pages):
        """Open every URL of pages ({name: (url, screenshot path or None)}) in its own headless
        chromium, all at once; {name: Page}. The browser must report no refused resource or
        script error (a Content-Security-Policy violation would be one)."""
        procs = {}
        dirs = []
        try:
            for name, (url, shot) in pages.items():
                profile = tempfile.mkdtemp(prefix="mq-chromium-")
                dirs.append(profile)
                args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                        "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}",
                        "--virtual-time-budget=5000", "--dump-dom"]
                if shot:
                    args += [f"--screenshot={shot}", "--window-size=%d,%d" % PHONE]
                procs[name] = subprocess.Popen(args + [url], stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True)
            out = {}
            for name, p in procs.items():
                try:
                    dom, err = p.communicate(timeout=90)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
                    raise AssertionError(f"chromium did not finish for {name}")
                self.assertEqual(p.returncode, 0, f"chromium for {name}: {err[-3000:]}")
                for bad in ("Refused to", "Content Security Policy", "violates", "Uncaught"):
                    self.assertNotIn(bad, err, f"chromium for {name}: {err[-3000:]}")
                out[name] = Page(dom)
            return out
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)

    def url(self, fragment=None):
        u = f"http://127.0.0.1:{self.d.http_port}/self"
        return u + "#" + fragment if fragment is not None else u

    def assert_usage(self, page, prefix, want):
        """The page shows the usage block want (a "storage", "messages" or pool object)."""
        self.assertEqual(page.text(prefix + "-used"), want["used_text"])
        self.assertEqual(page.text(prefix + "-limit"), want["limit_text"])
        if want["limit"] is None:
            self.assertEqual(want["limit_text"], "unlimited")
            self.assertTrue(page.hidden(prefix + "-bar"))
            self.assertTrue(page.hidden(prefix + "-percent-wrap"))
            self.assertEqual(page.shown_text(prefix + "-text"),
                             f"{want['used_text']} used, limit: unlimited")
        else:
            pct = percent_text(want["percent"])
            self.assertEqual(page.text(prefix + "-percent"), pct)
            self.assertEqual(page.shown_text(prefix + "-text"),
                             f"{want['used_text']} of {want['limit_text']} ({pct})")
            self.assertFalse(page.hidden(prefix + "-bar"))
            self.assertEqual(float(page.attrs[prefix + "-bar"]["value"]),
                             min(float(want["percent"]), 100.0))

    def assert_warning(self, page, prefix, want, advice=None):
        """The page shows the warning want (GET /v1/self's {level, text}, or None) beside the
        bar of prefix ("storage", "messages"), with advice, in words a screen reader reaches
        from the bar."""
        box = prefix + "-warning"
        bar = page.attrs[prefix + "-bar"]
        if want is None:
            self.assertTrue(page.hidden(box))
            self.assertEqual(page.text(box + "-text"), "")
            self.assertNotIn("data-level", page.attrs[box])
            self.assertEqual(bar["aria-describedby"], prefix + "-text")
            return
        self.assertFalse(page.hidden(box))
        self.assertEqual(page.attrs[box].get("role"), "status")
        self.assertEqual(page.attrs[box]["data-level"], str(want["level"]))
        self.assertEqual(page.text(box + "-text"), want["text"] + ".")
        self.assertEqual(page.shown_text(box), f"Warning: {want['text']}. {advice}")
        self.assertEqual(page.attrs[box]["class"],
                         "notice warning" + (" over" if want["level"] >= 100 else ""))
        self.assertEqual(bar["aria-describedby"], f"{prefix}-text {box}")

    # --- the tests ---

    def test_page_in_a_browser(self):
        os.makedirs(ARTIFACTS, exist_ok=True)
        shot = os.path.join(ARTIFACTS, "self-page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        bob, carol, dave = (self.tokens[a] for a in ("bob@demo.test", "carol@demo.test",
                                                      "dave@demo.test"))
        pages = self.browse_all({
            "bob": (self.url("token=" + bob), shot),
            "carol": (self.url("token=" + carol), None),
            "dave": (self.url("token=" + dave), None),
            "expired": (self.url("token=" + self.expiring), None),
            "wrong": (self.url("token=" + bob[:-4] + ("AAAA" if not bob.endswith("AAAA")
                                                       else "BBBB")), None),
            "unknown": (self.url("token=mqt_999999_" + "A" * 43), None),
            "admin": (self.url("token=" + self.d.token), None),
            "none": (self.url(), None),
            "empty": (self.url(""), None),
        })

        with self.subTest("the figures are GET /v1/self's"):
            want = self.expected["bob@demo.test"]
            p = pages["bob"]
            self.assertEqual(p.state, "ok")
            self.assertEqual(p.text("address"), "bob@demo.test")
            self.assertEqual(want["storage"]["used_text"], "7.5 MiB")  # the fixture itself
            self.assertEqual(p.shown_text("storage-text"), "7.5 MiB of 10 MiB (75 %)")
            self.assert_usage(p, "storage", want["storage"])
            self.assert_usage(p, "messages", want["messages"])
            self.assertEqual(p.shown_text("messages-text"), "12 of 1000 (1.2 %)")
            self.assertEqual(p.text("max-size"), want["max_message_size"]["text"])
            self.assertIn("storage space you have left", p.text("max-size-reason"))
            self.assertFalse(p.hidden("pool"))
            self.assertEqual(p.text("pool-domain"), "demo.test")
            self.assert_usage(p, "pool", want["domain"]["pool"])
            # as_of is when the answer was made: the browser's came later than the test's
            asked = p.attrs["as-of"]["datetime"]
            self.assertRegex(asked, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertGreaterEqual(asked, want["as_of"])
            self.assertNotEqual(p.text("as-of"), "")
            self.assertTrue(p.hidden("error"))
            self.assertTrue(p.hidden("disabled"))
            self.assertEqual(p.text("storage-state"), "")
            self.assertEqual(want["warnings"], {"storage": None, "messages": None})
            self.assert_warning(p, "storage", None)
            self.assert_warning(p, "messages", None)
            # the token is never written into the page
            self.assertNotIn(bob.split("_", 2)[2], str(p.attrs) + str(p.texts))

        with self.subTest("nearly full, no message limit: said in words"):
            want = self.expected["carol@demo.test"]
            p = pages["carol"]
            self.assertEqual(p.state, "ok")
            self.assertEqual(want["storage"]["percent"], 95.0)
            self.assert_usage(p, "storage", want["storage"])
            self.assertEqual(p.text("storage-state"),
                             f"Nearly full: {want['storage']['remaining_text']} left.")
            self.assertEqual(p.attrs["storage-state"]["class"], "state nearly")
            self.assert_usage(p, "messages", want["messages"])
            self.assertEqual(p.shown_text("messages-text"), "40 used, limit: unlimited")

        with self.subTest("over 90 %: the warning in force, beside the bar"):
            want = self.expected["carol@demo.test"]["warnings"]
            # the fixture: 95 % fired 80 and 90 at once; the level is the higher
            self.assertEqual(want, {"storage": {"level": 90,
                                                "text": "Storage reached 90 % of its limit"},
                                    "messages": None})
            self.assert_warning(pages["carol"], "storage", want["storage"], STORAGE_ADVICE)
            self.assert_warning(pages["carol"], "messages", None)

        with self.subTest("over quota: said in words"):
            want = self.expected["dave@demo.test"]
            p = pages["dave"]
            self.assertEqual(p.state, "ok")
            self.assert_usage(p, "storage", want["storage"])
            self.assertTrue(p.text("storage-state").startswith("Over quota"))
            self.assertEqual(p.text("max-size"), want["max_message_size"]["text"])
            self.assertEqual(want["warnings"]["storage"]["level"], 100)
            self.assert_warning(p, "storage", want["warnings"]["storage"], STORAGE_FULL_ADVICE)
            self.assert_warning(p, "messages", None)

        for name, state, message in (("expired", "expired", EXPIRED),
                                     ("wrong", "invalid", INVALID),
                                     ("unknown", "invalid", INVALID),
                                     ("admin", "forbidden", FORBIDDEN),
                                     ("none", "no-token", NO_TOKEN),
                                     ("empty", "no-token", NO_TOKEN)):
            with self.subTest(name):
                p = pages[name]
                self.assertEqual(p.state, state)
                self.assertFalse(p.hidden("error"))
                self.assertIn(message, p.text("error"))
                self.assertTrue(p.hidden("quota"))
                self.assertEqual(p.attrs["status"].get("role"), "status")

        with self.subTest("a phone-sized screenshot is kept"):
            with open(shot, "rb") as f:
                data = f.read()
            self.assertEqual(png_size(data), PHONE, shot)
            self.assertGreater(len(data), 1000)

        with self.subTest("no token in the daemon's log"):
            log = self.d.read_log()
            self.assertIn('url="/v1/self" status=200', log)  # the browser did ask
            for tok in (bob, carol, dave, self.expiring, self.d.token):
                self.assertNotIn(tok.split("_", 2)[2], log)
            self.assertNotIn("token=mqt_", log)

    def test_headers(self):
        for path, ctype, cache, name in (
                ("/self", "text/html; charset=utf-8", "no-store", "self.html"),
                ("/self.js", "text/javascript; charset=utf-8", "no-cache", "self.js"),
                ("/self.css", "text/css; charset=utf-8", "no-cache", "self.css")):
            with self.subTest(path):
                st, _, r = self.d.http("GET", path, token=False, validate=False)
                self.assertEqual(st, 200)
                self.assertEqual(r.getheader("Content-Type"), ctype)
                self.assertEqual(r.getheader("Cache-Control"), cache)
                self.assertEqual(r.getheader("Content-Security-Policy"), CSP)
                self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
                self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
                self.assertEqual(r.getheader("Referrer-Policy"), "no-referrer")
                with open(os.path.join(PAGE_DIR, name), "rb") as f:
                    self.assertEqual(int(r.getheader("Content-Length")), len(f.read()))
                # HEAD: the same headers, no body
                st, _, h = self.d.http("HEAD", path, token=False, validate=False)
                self.assertEqual(st, 200)
                self.assertEqual(h.getheader("Content-Security-Policy"), CSP)
                self.assertEqual(h.getheader("Content-Type"), ctype)
                # a token is neither needed nor looked at
                st, _, _ = self.d.http("GET", path, token="garbage", validate=False)
                self.assertEqual(st, 200)
                st, doc, r = self.d.http("POST", path, token=False, validate=False)
                self.assertEqual(st, 405, doc)
                self.assertEqual(r.getheader("Allow"), "GET")

    def test_bytes_are_the_files(self):
        for path, name in (("/self", "self.html"), ("/self.js", "self.js"),
                           ("/self.css", "self.css")):
            c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
            c.request("GET", path)
            body = c.getresponse().read()
            c.close()
            with open(os.path.join(PAGE_DIR, name), "rb") as f:
                self.assertEqual(body, f.read(), path)


if __name__ == "__main__":
    unittest.main()
