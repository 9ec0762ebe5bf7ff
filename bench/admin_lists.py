#!/usr/bin/env python3
"""Admin list pages on a large database: median milliseconds per page of 100 for every filter
and sort order the API offers, first page and a deep page (20 pages in, by cursor), as a ratio
against a baseline measured in the same run: the first page of the unfiltered list (so a ratio
near 1 means the filter costs nothing more: an index found the rows). Also one mailbox by
address, for scale. Usage: admin_lists.py PORT TOKEN DOMAIN [ROUNDS]"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse

port, token, domain = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 30
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
auth = {"Authorization": "Bearer " + token}


def get(path):
    conn.request("GET", path, headers=auth)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {body[:200]!r}")
    return json.loads(body)


def timed(path):
    ms = []
    for _ in range(rounds):
        t = time.perf_counter()
        get(path)
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return statistics.median(ms), ms[int(len(ms) * 0.99) - 1] if len(ms) >= 100 else ms[-1]


one_med, _ = timed(f"/v1/mailboxes/user500@{domain}")
base_med, _ = timed("/v1/mailboxes?limit=100")
print(f"one mailbox by address: median {one_med:.2f} ms; baseline, the unfiltered first page "
      f"of 100: median {base_med:.2f} ms")
cases = [
    ("all, by address", {}),
    ("all, by address, descending", {"sort": "-address"}),
    ("one domain", {"domain": domain}),
    ("usage >= 90%", {"min_usage_percent": 90}),
    ("over quota", {"over_quota": "true"}),
    ("sorted by usage, fullest first", {"sort": "-usage"}),
    ("updated since (recent)", {"updated_since": "2000-01-01T00:00:00Z", "sort": "updated_at"}),
    ("address prefix", {"prefix": "user99"}),
    ("disabled", {"enabled": "false"}),
]
print(f"{'page of 100':40} {'first page':>12} {'deep page':>12}  {'x baseline (worse of the two)':>10}")
for name, params in cases:
    q = dict(params, limit=100)
    first = f"/v1/mailboxes?{urllib.parse.urlencode(q)}"
    doc = get(first)
    # walk 20 pages in, then time that page
    cursor = doc["next_cursor"]
    for _ in range(19):
        if cursor is None:
            break
        cursor = get(first + "&cursor=" + urllib.parse.quote(cursor))["next_cursor"]
    f_med, _ = timed(first)
    d_med = timed(first + "&cursor=" + urllib.parse.quote(cursor))[0] if cursor else float("nan")
    worst = max(f_med, d_med if cursor else 0)
    deep = f"{d_med:9.2f} ms" if cursor else "  (1 page)  "
    print(f"{name:40} {f_med:9.2f} ms {deep}  {worst / base_med:9.2f}x")
