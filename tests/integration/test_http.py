"""The JSON API against the real daemon and a real PostgreSQL."""
import http.client
import json
import socket
import unittest
import urllib.parse

import mqtest


class HttpApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = mqtest.Database()
        mqtest.seed_standard(cls.db)
        cls.d = mqtest.Daemon(cls.db.conninfo)

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        cls.db.close()

    def get_check(self, rcpt, size=None):
        q = {"recipient": rcpt}
        if size is not None:
            q["size"] = size
        return self.d.http("GET", "/v1/check?" + urllib.parse.urlencode(q))

    def assert_error(self, status, doc, want_status, want_code=None):
        self.assertEqual(status, want_status, doc)
        self.assertIsInstance(doc, dict)
        self.assertIsInstance(doc.get("error"), str)
        self.assertIsInstance(doc.get("message"), str)
        if want_code:
            self.assertEqual(doc["error"], want_code)

    def test_get_over_quota(self):
        status, doc, resp = self.get_check("Full+x@Example.Test", 10)
        self.assertEqual(status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(doc["verdict"], "over_quota")
        self.assertEqual(doc["reason"], "storage")
        self.assertEqual(doc["smtp_reply"], "552 5.2.2 Mailbox full")
        self.assertEqual(doc["action"], "552 5.2.2 Mailbox full")
        self.assertEqual(doc["address"], "full+x@example.test")
        self.assertEqual(doc["match"], "mailbox")
        mb = doc["mailbox"]
        self.assertEqual(mb["address"], "full@example.test")
        self.assertEqual(mb["limits"], {"storage_bytes": 1000, "messages": None,
                                        "max_message_size": None})
        self.assertEqual(mb["usage"], {"bytes": 1000, "messages": 5})
        self.assertEqual(mb["remaining"], {"bytes": 0, "messages": None})
        self.assertEqual(mb["domain"]["max_message_size"], 10 * 1024 * 1024)

    def test_get_accept(self):
        status, doc, _ = self.get_check("user1@example.test", 4096)
        self.assertEqual(status, 200)
        self.assertEqual(doc["verdict"], "accept")
        self.assertIsNone(doc["smtp_reply"])
        self.assertEqual(doc["action"], "DUNNO")
        self.assertEqual(doc["mailbox"]["limits"]["storage_bytes"], 1048576)
        self.assertEqual(doc["mailbox"]["remaining"]["bytes"], 1048576)

    def test_get_other_verdicts(self):
        status, doc, _ = self.get_check("small@example.test", 5000)
        self.assertEqual((doc["verdict"], doc["smtp_reply"]),
                         ("too_big_mailbox",
                          "552 5.2.3 Message length exceeds administrative limit"))
        status, doc, _ = self.get_check("user1@example.test", 20 * 1024 * 1024)
        self.assertEqual((doc["verdict"], doc["reason"]), ("too_big_system", "domain_max_size"))
        status, doc, _ = self.get_check("nobody@nowhere.test", 1)
        self.assertEqual(status, 200)
        self.assertEqual((doc["verdict"], doc["match"], doc["mailbox"]),
                         ("unknown", "none", None))
        status, doc, _ = self.get_check("p2@pool.test", 2)
        self.assertEqual((doc["verdict"], doc["reason"]), ("over_quota", "domain_pool"))
        self.assertEqual(doc["mailbox"]["domain"]["pool_remaining_bytes"], 1)

    def test_get_alias_lists_targets(self):
        status, doc, _ = self.get_check("team@example.test", 10)
        self.assertEqual(doc["verdict"], "accept")
        self.assertEqual(doc["match"], "alias")
        self.assertEqual(doc["mailbox"]["address"], "user1@example.test")
        self.assertEqual(sorted(t["address"] for t in doc["targets"]),
                         ["full@example.test", "user1@example.test"])
        verdicts = {t["address"]: t["verdict"] for t in doc["targets"]}
        self.assertEqual(verdicts["full@example.test"], "over_quota")

    def test_size_optional_is_one_byte(self):
        status, doc, _ = self.get_check("full@example.test")
        self.assertEqual((status, doc["verdict"], doc["size"]), (200, "over_quota", 0))

    def test_post_batch_in_order(self):
        rcpts = ["user1@example.test", "full@example.test", "small@example.test",
                 "nobody@nowhere.test", "bad-address", "team@example.test"]
        status, doc, _ = self.d.http("POST", "/v1/check", {"size": 2000, "recipients": rcpts})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["size"], 2000)
        res = doc["results"]
        self.assertEqual([r["recipient"] for r in res], rcpts)
        self.assertEqual(res[0]["verdict"], "accept")
        self.assertEqual(res[1]["verdict"], "over_quota")
        self.assertEqual(res[2]["verdict"], "too_big_mailbox")
        self.assertEqual(res[3]["verdict"], "unknown")
        self.assertEqual(res[4]["error"], "invalid_address")
        self.assertEqual(res[5]["verdict"], "accept")

    def test_post_1000_recipients(self):
        rcpts = [f"r{i}@example.test" if i % 3 else "full@example.test" for i in range(1000)]
        status, doc, _ = self.d.http("POST", "/v1/check", {"size": 1, "recipients": rcpts})
        self.assertEqual(status, 200)
        self.assertEqual(len(doc["results"]), 1000)
        self.assertEqual(doc["results"][0]["verdict"], "over_quota")
        self.assertEqual(doc["results"][1]["verdict"], "unknown")
        status, doc, _ = self.d.http("POST", "/v1/check", {"size": 1, "recipients": rcpts + ["x@y"]})
        self.assert_error(status, doc, 413, "too_many_recipients")

    def test_get_errors(self):
        self.assert_error(*self.d.http("GET", "/v1/check")[:2], 400, "missing_parameter")
        self.assert_error(*self.get_check("")[:2], 400, "missing_parameter")
        for bad in ("-1", "abc", "1.5", "99999999999999999999", "9223372036854775808", " 1"):
            with self.subTest(size=bad):
                self.assert_error(*self.get_check("user1@example.test", bad)[:2], 400,
                                  "invalid_parameter")
        self.assert_error(*self.get_check("no-at-sign", 1)[:2], 400, "invalid_address")
        self.assert_error(*self.get_check("a" * 65 + "@example.test", 1)[:2], 400,
                          "invalid_address")
        self.assert_error(*self.get_check("x" * 5000 + "@example.test", 1)[:2], 400,
                          "invalid_address")
        self.assert_error(*self.d.http("GET", "/v1/check?recipient=%ff%fe@example.test")[:2],
                          400, "invalid_address")
        # injection-shaped but a possible (unquoted internal form) address: just unknown
        st, doc, _ = self.get_check("a'; DROP TABLE mailboxes; --@example.test", 1)
        self.assertEqual((st, doc["verdict"]), (200, "unknown"))
        # the store is intact
        self.assertEqual(self.get_check("full@example.test", 1)[1]["verdict"], "over_quota")

    def test_post_errors(self):
        cases = [
            ("{", 400, "invalid_json"),
            ("[]", 400, "invalid_body"),
            ('{"recipients": []}', 400, "invalid_field"),
            ('{"recipients": "a@b"}', 400, "invalid_field"),
            ('{"recipients": [1]}', 400, "invalid_field"),
            ('{"recipients": ["a@b"], "size": -1}', 400, "invalid_field"),
            ('{"recipients": ["a@b"], "size": 1.5}', 400, "invalid_field"),
            ('{"recipients": ["a@b"], "size": "10"}', 400, "invalid_field"),
            ('{"recipients": ["a@b"], "size": 99999999999999999999999}', 400, "invalid_json"),
            ('{"recipients": ["a@b"], "extra": 1}', 400, "unknown_field"),
            ('{"recipients": ["a@b"], "recipients": ["c@d"]}', 400, "invalid_json"),
            ('{"recipients": ["a@b"]} trailing', 400, "invalid_json"),
        ]
        for body, status, code in cases:
            with self.subTest(body=body):
                st, doc, _ = self.d.http("POST", "/v1/check", body,
                                         {"Content-Type": "application/json"})
                self.assert_error(st, doc, status, code)
        st, doc, _ = self.d.http("POST", "/v1/check", '{"recipients":["a@b"]}',
                                 {"Content-Type": "text/plain"})
        self.assert_error(st, doc, 415)
        # an announced oversized body is refused before it is sent
        auth = "".join(f"{k}: {v}\r\n" for k, v in self.d.auth.items()).encode()
        with socket.create_connection(("127.0.0.1", self.d.http_port), timeout=10) as s:
            s.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\n" + auth + b"Content-Length: 614400\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 413"), head)
            self.assertEqual(json.loads(body)["error"], "body_too_large")
        # the same without Content-Length (chunked): read to the end, then 413
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=30)
        c.request("POST", "/v1/check", body=(b"x" * 65536 for _ in range(10)),
                  headers={"Content-Type": "application/json", **self.d.auth},
                  encode_chunked=True)
        r = c.getresponse()
        self.assert_error(r.status, json.loads(r.read()), 413, "body_too_large")
        c.close()
        self.assertEqual(self.d.http("GET", "/v1/health")[0], 200)

    def test_routing_errors(self):
        st, doc, resp = self.d.http("DELETE", "/v1/check")
        self.assert_error(st, doc, 405, "method_not_allowed")
        self.assertEqual(resp.getheader("Allow"), "GET, POST")
        st, doc, resp = self.d.http("POST", "/v1/health", "{}")
        self.assert_error(st, doc, 405)
        self.assertEqual(resp.getheader("Allow"), "GET")
        self.assert_error(*self.d.http("GET", "/v1/nope")[:2], 404, "not_found")
        self.assert_error(*self.d.http("GET", "/")[:2], 404, "not_found")

    def test_health(self):
        st, doc, _ = self.d.http("GET", "/v1/health")
        self.assertEqual((st, doc["status"], doc["database"]), (200, "ok", "up"))

    def test_keep_alive(self):
        c = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
        for _ in range(20):
            c.request("GET", "/v1/check?recipient=user1@example.test&size=1",
                      headers=self.d.auth)
            r = c.getresponse()
            self.assertEqual(json.loads(r.read())["verdict"], "accept")
            self.assertFalse(r.will_close)
        c.close()


if __name__ == "__main__":
    unittest.main()
