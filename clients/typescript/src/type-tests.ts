/**
 * Compile-time tests: uses of the client that the spec does not allow must not compile. Each
 * `@ts-expect-error` line is a wrong call; if the client's types ever stopped catching it (a
 * type decaying to `any`, a parameter no longer checked), tsc reports the directive unused and
 * the build fails. Nothing here runs.
 */
import type { Domain, MailquotaClient } from "./client.js";

export async function wrongUses(c: MailquotaClient): Promise<void> {
  // @ts-expect-error: no such route
  await c.call("get", "/v1/nothing", {});
  // @ts-expect-error: the route has no PUT
  await c.call("put", "/v1/domains", {});
  // @ts-expect-error: the path parameter is required
  await c.call("get", "/v1/domains/{name}", {});
  // @ts-expect-error: the path parameter has another name
  await c.call("get", "/v1/mailboxes/{address}", { path: { name: "x" } });
  // @ts-expect-error: recipient is a required query parameter
  await c.call("get", "/v1/check", { query: { size: 1 } });
  // @ts-expect-error: the body is required
  await c.call("post", "/v1/domains", {});
  // @ts-expect-error: a query parameter the list does not take
  await c.mailboxes.list({ over_quota: true, colour: "red" });
  // @ts-expect-error: a query parameter of the wrong type
  await c.mailboxes.list({ min_usage_percent: "90" });
  // @ts-expect-error: a sort order the spec does not list
  await c.domains.list({ sort: "usage" });
  // @ts-expect-error: a field the schema does not have
  await c.domains.create({ name: "x.test", storage: 1 });
  // @ts-expect-error: name is required to create
  await c.domains.create({ max_message_size: 1 });
  // @ts-expect-error: sizes are numbers
  await c.mailboxes.update("a@x.test", { storage_limit_bytes: "1G" });
  // @ts-expect-error: a scope the spec does not list
  await c.tokens.create({ name: "t", scope: "root" });
  // @ts-expect-error: import takes the media types the spec lists
  await c.importData("", "application/xml");

  const d: Domain = await c.domains.get("x.test");
  // @ts-expect-error: answers are typed, not any
  const n: number = d.name;
  const r = await c.check("a@x.test", 1);
  // @ts-expect-error: verdict is one of the spec's values
  if (r.verdict === "maybe") return;
  void n;
}
