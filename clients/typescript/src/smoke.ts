/**
 * The client against a real daemon, as a panel would use it (run by
 * tests/integration/test_ts_client.py): `node dist/smoke.js` with MQ_URL (the API) and MQ_TOKEN
 * (an admin token) in the environment, on an empty database whose daemon has
 * `precheck_rate=1` and `precheck_burst=3`. It makes what it reads, prints one line a step, and
 * exits 0 when every step passed, 1 at the first that did not (with what it got).
 */
import { MailquotaClient, MailquotaError, type CheckResult } from "./client.js";

// the two things of Node's we use, declared here so that the client compiles with no Node
// types at all (it must run in browsers too)
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

let passed = 0;

function check(what: string, ok: boolean, got?: unknown): void {
  if (!ok) throw new Error(`${what}: got ${JSON.stringify(got)}`);
}

async function step(name: string, fn: () => Promise<void>): Promise<void> {
  await fn();
  passed++;
  console.log(`ok ${passed} - ${name}`);
}

/** The MailquotaError fn rejects with; fails the step if it resolves or throws anything else. */
async function rejection(fn: () => Promise<unknown>): Promise<MailquotaError> {
  try {
    const got = await fn();
    throw new Error(`expected an error answer, got ${JSON.stringify(got)}`);
  } catch (e) {
    if (e instanceof MailquotaError) return e;
    throw e;
  }
}

/** fn's value once want(value) holds: the daemon's view learns of changes through NOTIFY, a
 * few milliseconds after the write answered. Errors count as "not yet" until the deadline. */
async function eventually<T>(fn: () => Promise<T>, want: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const v = await fn();
      if (want(v) || Date.now() > deadline) return v;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function main(): Promise<void> {
  const baseUrl = process.env["MQ_URL"];
  const token = process.env["MQ_TOKEN"];
  if (baseUrl === undefined || token === undefined) throw new Error("MQ_URL and MQ_TOKEN, please");
  const api = new MailquotaClient({ baseUrl, token, timeoutMs: 10_000 });

  await step("health without a token", async () => {
    const h = await new MailquotaClient({ baseUrl }).health();
    check("status", h.status === "ok" && h.view.loaded, h);
  });

  await step("create a domain and five mailboxes", async () => {
    const d = await api.domains.create({ name: "TS.test", default_storage_limit_bytes: 1_000_000 });
    check("the name is folded", d.name === "ts.test" && d.pool_limit_bytes === null, d);
    for (const local of ["a", "b", "c", "d"]) {
      const m = await api.mailboxes.create({ address: `${local}@ts.test` });
      check("inherits the domain's storage", m.effective.storage_limit_bytes === 1_000_000, m);
    }
    const small = await api.mailboxes.create({ address: "e@ts.test", storage_limit_bytes: 1000 });
    check("own limit", small.storage_limit_bytes === 1000 && small.usage.bytes === 0, small);
  });

  await step("list in pages of two, and walk every page", async () => {
    const first = await api.mailboxes.list({ domain: "ts.test", limit: 2 });
    check("first page", first.items.length === 2 && first.next_cursor !== null, first);
    const all: string[] = [];
    for await (const m of api.mailboxes.all({ domain: "ts.test", limit: 2 })) all.push(m.address);
    const want = ["a", "b", "c", "d", "e"].map((l) => `${l}@ts.test`);
    check("every mailbox once, in order", JSON.stringify(all) === JSON.stringify(want), all);
    const domains: string[] = [];
    for await (const d of api.domains.all({ prefix: "ts." })) domains.push(d.name);
    check("domains", JSON.stringify(domains) === '["ts.test"]', domains);
  });

  await step("aliases, the catch-all by its @domain key", async () => {
    await api.aliases.create({ address: "team@ts.test", targets: ["a@ts.test", "b@ts.test"] });
    await api.aliases.create({ address: "@ts.test", targets: ["e@ts.test"] });
    const c = await api.aliases.get("@ts.test");
    check("catch-all", c.catch_all && c.targets[0] === "e@ts.test", c);
    const t = await api.aliases.update("team@ts.test", { add_targets: ["c@ts.test"] });
    check("a target added", t.targets.length === 3 && t.version === 2, t);
  });

  await step("checks: accept, then over quota after a recalculation", async () => {
    const ok = await eventually(
      () => api.check("A+tag@TS.test", 500),
      (r) => r.verdict === "accept",
    );
    check("accept", ok.address === "a+tag@ts.test" && ok.mailbox?.address === "a@ts.test", ok);
    const m = await api.mailboxes.setUsage("e@ts.test", { bytes: 1000, messages: 3, source: "ts" });
    check("usage set", m.usage.bytes === 1000 && m.usage.over_quota === false, m);
    const full = await eventually(
      () => api.check("nobody@ts.test", 10),
      (r) => r.verdict === "over_quota",
    );
    check("the catch-all's target is full", full.match === "catchall", full);
    check("552", full.smtp_reply?.startsWith("552 5.2.2") === true, full);
    const many = await api.checkMany(["b@ts.test", "not an address"], 10);
    const [b, bad] = many;
    check("two results", many.length === 2, many);
    check("b accepts", b !== undefined && !("error" in b) && b.verdict === "accept", b);
    check("invalid", bad !== undefined && "error" in bad && bad.error === "invalid_address", bad);
  });

  await step("usage reports, counted once by key", async () => {
    const report = { recipient: "b@ts.test", bytes: 4000, messages: 1, key: "ts:1" };
    const [first] = await api.reportUsage([report]);
    check("applied", first !== undefined && "status" in first && !first.duplicate, first);
    const [again] = await api.reportUsage([report]);
    check("duplicate", again !== undefined && "status" in again && again.duplicate, again);
    const u = await eventually(
      () => api.mailboxes.usage("b@ts.test"),
      (s) => s.usage.bytes === 4000,
    );
    check("once", u.usage.bytes === 4000 && u.remaining.bytes === 996_000, u);
  });

  await step("update with If-Match, a stale ETag is 412", async () => {
    const m = await api.mailboxes.get("c@ts.test");
    const changed = await api.mailboxes.update(
      m.address,
      { max_message_size: 2_097_152 },
      { ifMatch: m.etag },
    );
    check("changed", changed.max_message_size === 2_097_152 && changed.etag !== m.etag, changed);
    const same = await api.mailboxes.getIfChanged(m.address, changed.etag);
    check("304 while unchanged", same === null, same);
    const e = await rejection(() =>
      api.mailboxes.update(m.address, { enabled: false }, { ifMatch: m.etag }),
    );
    check("412", e.status === 412 && e.code === "precondition_failed", e.body);
    check("the current ETag comes back", e.etag === `"${changed.etag}"`, e.etag);
    check("not applied", (await api.mailboxes.get(m.address)).enabled, m);
    const d = await api.domains.get("ts.test");
    const grown = await api.domains.update("ts.test", { pool_limit_bytes: 10_000_000 }, {
      ifMatch: d.etag,
    });
    check("domain changed", grown.pool_limit_bytes === 10_000_000, grown);
    check("domain 304", (await api.domains.getIfChanged("ts.test", grown.etag)) === null);
  });

  await step("typed errors: 404, 409, 422, 400 with its field", async () => {
    const missing = await rejection(() => api.mailboxes.get("nobody@ts.test"));
    check("404", missing.status === 404 && missing.code === "not_found", missing.body);
    const dup = await rejection(() => api.domains.create({ name: "ts.test" }));
    check("409", dup.status === 409 && dup.code === "exists", dup.body);
    const orphan = await rejection(() => api.mailboxes.create({ address: "x@elsewhere.test" }));
    check("422", orphan.status === 422 && orphan.code === "unknown_domain", orphan.body);
    const bad = await rejection(() => api.mailboxes.list({ limit: 5000 }));
    check("400", bad.status === 400 && bad.field === "limit", bad.body);
  });

  await step("a self token: the user's own view, nothing else", async () => {
    const { token: made, url } = await api.tokens.selfLink("b@ts.test", { name: "ts self" });
    check("self token", made.scope === "self" && made.mailbox === "b@ts.test", made);
    check("link", url === `${baseUrl}/self#token=${made.token}`, url);
    const user = api.withToken(made.token);
    const me = await eventually(
      () => user.self(),
      (v) => v.storage.used === 4000,
    );
    check("own figures", me.address === "b@ts.test" && me.storage.limit === 1_000_000, me);
    check("words", me.storage.limit_text === "976.5 KiB", me.storage);
    const forbidden = await rejection(() => user.mailboxes.get("a@ts.test"));
    check("403", forbidden.status === 403 && forbidden.code === "forbidden", forbidden.body);
    await api.tokens.revoke(made.id);
    const gone = await eventually(
      () => rejection(() => user.self()),
      (e) => e.status === 401,
    );
    check("401 once revoked", gone.code === "unauthorized", gone.body);
    check("listed as revoked", (await api.tokens.get(made.id)).revoked_at !== null);
  });

  await step("precheck: answers without figures, 429 with Retry-After", async () => {
    const t = await api.tokens.create({ name: "ts webmail", scope: "precheck" });
    const webmail = api.withToken(t.token);
    // a precheck token may not check: 403 once the daemon knows it (this costs no budget)
    await eventually(
      () => rejection(() => webmail.check("a@ts.test")),
      (e) => e.status === 403,
    );
    const res = await webmail.precheckMany(["a@ts.test", "e@ts.test", "x@nowhere.test"], 10);
    const statuses = res.map((r) => r.status).join(" ");
    check("statuses", statuses === "accept mailbox_full unknown", res);
    // the burst is spent; one more is refused unless a second passed meanwhile (a slow
    // machine), which refills one: ask until refused, a few times at most
    let limited: MailquotaError | undefined;
    for (let i = 0; i < 5 && limited === undefined; i++) {
      limited = await webmail.precheck("a@ts.test").then(
        () => undefined,
        (e: unknown) => {
          if (e instanceof MailquotaError) return e;
          throw e;
        },
      );
    }
    check("429", limited?.status === 429 && limited.code === "rate_limited", limited?.body);
    const wait = limited?.retryAfter;
    check("Retry-After", wait !== undefined && wait >= 1, limited);
  });

  await step("audit, export and a dry-run import", async () => {
    const page = await api.audit.list({ object: "c@ts.test", limit: 10 });
    const actions = page.items.map((a) => a.action);
    const audited = actions[0] === "mailbox.update" && actions.includes("mailbox.create");
    check("audited", audited, actions);
    const ndjson = await api.exportData();
    check("export", ndjson.split("\n").some((l) => l.includes('"address":"team@ts.test"')), ndjson);
    const csv = await api.exportData({ format: "csv", type: "mailboxes" });
    check("csv", csv.startsWith("address,") && csv.includes("e@ts.test,1000"), csv);
    const dry = await api.importData(`{"type":"mailbox","address":"f@ts.test"}\n`, undefined, {
      dry_run: true,
    });
    check("dry run", dry.dry_run && !dry.applied && dry.created === 1, dry);
    const bad = await api.importData("address,enabled\nf@ts.test,maybe\n", "text/csv", {
      type: "mailboxes",
    });
    check("422 rows", !bad.applied && bad.failed === 1 && bad.errors[0]?.line === 2, bad);
  });

  await step("delete with If-Match; then 404", async () => {
    const a = await api.aliases.get("team@ts.test");
    await api.aliases.delete(a.address, { ifMatch: a.etag });
    const m = await api.mailboxes.get("d@ts.test");
    const stale = await rejection(() => api.mailboxes.delete(m.address, { ifMatch: "1.999" }));
    check("412 on delete", stale.status === 412, stale.body);
    await api.mailboxes.delete(m.address, { ifMatch: m.etag });
    const e = await rejection(() => api.mailboxes.get("d@ts.test"));
    check("gone", e.status === 404, e.body);
    const r: CheckResult = await eventually(
      () => api.check("d@ts.test"),
      (v) => v.match !== "mailbox",
    );
    check("the check follows (the catch-all now)", r.match === "catchall", r);
  });
}

main().then(
  () => console.log(`${passed} passed, 0 failed`),
  (e: unknown) => {
    const why = e instanceof Error ? (e.stack ?? e.message) : String(e);
    console.error(`not ok ${passed + 1} - ${why}`);
    console.log(`${passed} passed, 1 failed`);
    process.exitCode = 1;
  },
);
