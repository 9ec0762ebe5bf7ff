/**
 * A typed client for mailquota's HTTP API (api-docs/openapi.yaml), for control panels, webmail
 * and scripts, in a browser or in Node.js 18+ (it needs only the global `fetch`).
 *
 * Every parameter, body and answer type here comes from `generated/openapi.d.ts`, which
 * `npm run build` generates from the spec with openapi-typescript: each method names its route
 * as the spec spells it (`"/v1/mailboxes/{address}"`, `"patch"`), and its path parameters, query,
 * headers (`If-Match`, `If-None-Match`), request body and answer are looked up there. A change to
 * the spec that no longer fits what a method sends or returns (a route, parameter or field
 * renamed or removed, a type changed) is a compile error here, not a surprise at run time.
 * Operations the spec gains do not touch this file.
 *
 * Contract: a method resolves with the answer's body (typed by the spec) on a 2xx, and rejects
 * with a MailquotaError on any other status (the API's `{"error", "message", "field"}` body,
 * the status, `Retry-After` in seconds on 429/503, the current ETag on 412), except where a
 * method documents a status as an answer (health's 503, import's 422, `getIfChanged`'s 304);
 * a 2xx without the body the spec promises rejects too (code `malformed_response`).
 * Network failures and timeouts reject with what `fetch` throws (a TypeError, or the abort's
 * DOMException). The client keeps no state but its options: it is safe to share.
 *
 * Integers arrive as JavaScript numbers: exact up to 2^53 (8 PiB, far above any real limit).
 */
import type { components, paths } from "../generated/openapi.js";

type Schemas = components["schemas"];

/** The objects of the API, by the names the spec gives them. */
export type Domain = Schemas["Domain"];
export type Mailbox = Schemas["Mailbox"];
export type Alias = Schemas["Alias"];
export type Token = Schemas["Token"];
export type TokenCreated = Schemas["TokenCreated"];
export type AuditEntry = Schemas["AuditEntry"];
export type CheckResult = Schemas["CheckResult"];
export type RecipientError = Schemas["RecipientError"];
export type MailboxState = Schemas["MailboxState"];
export type Health = Schemas["Health"];
export type SelfView = Schemas["SelfView"];
export type PrecheckResponse = Schemas["PrecheckResponse"];
export type UsageReport = Schemas["UsageReport"];
export type UsageResult = Schemas["UsageResult"];
export type ImportResult = Schemas["ImportResult"];
export type Scope = Schemas["Scope"];
/** The body of every error answer: `{"error": code, "message": text, "field"?: name}`. */
export type ApiErrorBody = Schemas["Error"];

type HttpMethod = "get" | "put" | "post" | "patch" | "delete";
type Path = keyof paths;

/** The operation at path P and method M; never when the spec has none there. */
type Op<P extends Path, M extends HttpMethod> =
  paths[P] extends infer I ? (M extends keyof I ? Exclude<I[M], undefined> : never) : never;

/** The methods path P has in the spec. */
type MethodOf<P extends Path> = {
  [M in HttpMethod]: [Op<P, M>] extends [never] ? never : M;
}[HttpMethod];

type Params<O> = O extends { parameters: infer X } ? X : Record<never, never>;

/** One part (path, query, header) of an operation's parameters, as an option: required when
 * the spec requires it, optional when it may be left out, absent when the spec has none. */
type Part<X, K extends "path" | "query" | "header"> = K extends keyof X
  ? [Exclude<X[K], undefined>] extends [never]
    ? { [Q in K]?: never }
    : X extends { [Q in K]: unknown }
      ? { [Q in K]: Loose<Exclude<X[K], undefined>> }
      : { [Q in K]?: Loose<Exclude<X[K], undefined>> | undefined }
  : { [Q in K]?: never };

/** T whose optional members may also be given as undefined (left out of the request). */
type Loose<T> = {
  [F in keyof T]: Record<never, never> extends Pick<T, F> ? T[F] | undefined : T[F];
};

type RequestContent<O> = O extends { requestBody?: infer R }
  ? [Exclude<R, undefined>] extends [never]
    ? never
    : Exclude<R, undefined> extends { content: infer C }
      ? C
      : never
  : never;

/** The request body as an option: a JSON value of the spec's schema, or, for an operation
 * that takes other media types (import), a string with one of those types named. */
type BodyPart<O> = [RequestContent<O>] extends [never]
  ? { body?: never; contentType?: never }
  : "application/json" extends keyof RequestContent<O>
    ? { body: RequestContent<O>["application/json"]; contentType?: never }
    : { body: RequestContent<O>[keyof RequestContent<O>]; contentType: keyof RequestContent<O> };

/** What `call` takes for operation O. */
type Options<O, S extends number> = Part<Params<O>, "path"> &
  Part<Params<O>, "query"> &
  Part<Params<O>, "header"> &
  BodyPart<O> & {
    /** Statuses besides 2xx and 304 that are answers, not errors, for this call. */
    answers?: readonly S[];
  };

type Responses<O> = O extends { responses: infer R } ? R : never;

/** A response's body: its JSON schema's type, a string for other media, undefined for none. */
type BodyOf<R> = R extends { content: infer C }
  ? "application/json" extends keyof C
    ? C["application/json"]
    : string
  : undefined;

type Ok = 200 | 201 | 202 | 203 | 204 | 206 | 304;

/** The bodies of operation O's answers with the statuses in S, as a union. */
type Answer<O, S> = {
  [K in keyof Responses<O>]: K extends S ? BodyOf<Responses<O>[K]> : never;
}[keyof Responses<O>];

/** What `call` resolves with. */
export interface Reply<B> {
  status: number;
  data: B;
  /** The ETag header, as sent (quoted), when there is one. */
  etag: string | undefined;
  headers: Headers;
}

/** The query of the operation at P and M (for list methods' parameters). */
export type QueryOf<P extends Path, M extends MethodOf<P>> = NonNullable<
  Params<Op<P, M>> extends { query?: infer Q } ? Q : never
>;

/** The JSON body of the operation at P and M. */
export type BodyOfRequest<P extends Path, M extends MethodOf<P>> =
  RequestContent<Op<P, M>> extends { "application/json": infer B } ? B : never;

export type DomainQuery = QueryOf<"/v1/domains", "get">;
export type MailboxQuery = QueryOf<"/v1/mailboxes", "get">;
export type AliasQuery = QueryOf<"/v1/aliases", "get">;
export type TokenQuery = QueryOf<"/v1/tokens", "get">;
export type AuditQuery = QueryOf<"/v1/audit", "get">;
export type ExportQuery = QueryOf<"/v1/export", "get">;
export type ImportQuery = QueryOf<"/v1/import", "post">;
export type NewDomain = BodyOfRequest<"/v1/domains", "post">;
export type DomainChanges = BodyOfRequest<"/v1/domains/{name}", "patch">;
export type NewMailbox = BodyOfRequest<"/v1/mailboxes", "post">;
export type MailboxChanges = BodyOfRequest<"/v1/mailboxes/{address}", "patch">;
export type NewAlias = BodyOfRequest<"/v1/aliases", "post">;
export type AliasChanges = BodyOfRequest<"/v1/aliases/{address}", "patch">;
export type NewToken = BodyOfRequest<"/v1/tokens", "post">;
export type UsageRecalculation = BodyOfRequest<"/v1/mailboxes/{address}/usage", "put">;
/** A media type `importData` takes, as the spec lists them. */
export type ImportMediaType = keyof RequestContent<Op<"/v1/import", "post">>;

/** Options of the ETag-guarded writes. */
export interface Guard {
  /** The ETag read before (the object's `etag`, or the ETag header): the change is made only
   * if the object is still at that version, else 412 (MailquotaError, `etag` the current one).
   * `*` only requires that the object exists. */
  ifMatch?: string | undefined;
}

/** Every answer that is not a success, as the API describes it. */
export class MailquotaError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The API's error body; for an answer that is not one (a proxy's page, say) a stand-in
   * whose `error` is `http_<status>`. */
  readonly body: ApiErrorBody;
  /** The parsed JSON body as received, whatever its shape (import's 422 has its own). */
  readonly raw: unknown;
  /** Seconds to wait, from `Retry-After` (429 `rate_limited`, 503), when given. */
  readonly retryAfter: number | undefined;
  /** The ETag header (on 412: the object's current version). */
  readonly etag: string | undefined;
  /** The request, as `METHOD path`, for messages and logs. */
  readonly request: string;

  constructor(
    status: number,
    body: ApiErrorBody,
    raw: unknown,
    retryAfter: number | undefined,
    etag: string | undefined,
    request: string,
  ) {
    super(`${request}: ${status} ${body.error}: ${body.message}`);
    this.name = "MailquotaError";
    this.status = status;
    this.body = body;
    this.raw = raw;
    this.retryAfter = retryAfter;
    this.etag = etag;
    this.request = request;
  }

  /** The stable error code (`not_found`, `exists`, `precondition_failed`, `rate_limited`...). */
  get code(): string {
    return this.body.error;
  }

  /** The field or parameter at fault, when one is. */
  get field(): string | undefined {
    return this.body.field;
  }
}

export interface ClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:8080` (a path prefix is kept). */
  baseUrl: string;
  /** A bearer token (`mqt_<id>_<secret>`); only `health()` works without one. */
  token?: string | undefined;
  /** Milliseconds a request may take in all (default 30000; 0: no limit). */
  timeoutMs?: number | undefined;
  /** A fetch to use instead of the global one (tests, proxies, instrumentation). */
  fetch?: typeof fetch | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Walks a list page by page through `next_cursor`, yielding each item once. */
async function* paginate<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor: string | null }>,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    yield* p.items;
    cursor = p.next_cursor ?? undefined;
  } while (cursor !== undefined);
}

/** The query with the cursor set (or left out on the first page). */
function withCursor<Q extends { cursor?: string | undefined }>(
  query: Omit<Q, "cursor">,
  cursor: string | undefined,
): Q {
  return (cursor === undefined ? { ...query } : { ...query, cursor }) as Q;
}

/** An ETag as If-Match wants it: quoted (the documents carry it bare), or `*`. */
function quoteEtag(etag: string): string {
  return etag === "*" || etag.startsWith('"') || etag.startsWith("W/") ? etag : `"${etag}"`;
}

/** Retry-After in seconds: delta-seconds, or an HTTP date from now (never negative). */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** The error for a 2xx whose body is not what the spec promises (none, or not JSON). */
function malformed(request: string, status: number, raw: unknown): MailquotaError {
  const body = { error: "malformed_response", message: "the answer lacks the body it should have" };
  return new MailquotaError(status, body, raw, undefined, undefined, request);
}

function isApiErrorBody(v: unknown): v is ApiErrorBody {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o["error"] === "string" && typeof o["message"] === "string";
}

/** The untyped view of Options that `call` works with inside. */
interface LooseOptions {
  path?: Record<string, string | number>;
  query?: Record<string, string | number | boolean | undefined>;
  header?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  answers?: readonly number[];
}

export class MailquotaClient {
  readonly baseUrl: string;
  readonly domains: Domains;
  readonly mailboxes: Mailboxes;
  readonly aliases: Aliases;
  readonly tokens: Tokens;
  readonly audit: Audit;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const f = options.fetch;
    // the global fetch must be called unbound from its object in browsers: wrap it
    this.#fetch = f ?? ((input, init) => fetch(input, init));
    this.domains = new Domains(this);
    this.mailboxes = new Mailboxes(this);
    this.aliases = new Aliases(this);
    this.tokens = new Tokens(this);
    this.audit = new Audit(this);
  }

  /** The same API with another token (e.g. a `self` token just made). */
  withToken(token: string): MailquotaClient {
    return new MailquotaClient({
      baseUrl: this.baseUrl,
      token,
      timeoutMs: this.#timeoutMs,
      fetch: this.#fetch,
    });
  }

  /** Whether the daemon can answer checks. Needs no token. A 503 (nothing loaded yet) is an
   * answer too: `status` is then `unavailable`. */
  async health(): Promise<Health> {
    return (await this.call("get", "/v1/health", { answers: [503] })).data;
  }

  /** Can this recipient take a message of `size` bytes (default 0, checked as 1)? */
  async check(recipient: string, size?: number): Promise<CheckResult> {
    const query = size === undefined ? { recipient } : { recipient, size };
    return (await this.call("get", "/v1/check", { query })).data;
  }

  /** The same for up to 1000 recipients of one message, one result per recipient in order
   * (a RecipientError for text that is no address: tell them apart by `"error" in r`). */
  async checkMany(
    recipients: string[],
    size?: number,
  ): Promise<Array<CheckResult | RecipientError>> {
    const body = size === undefined ? { recipients } : { recipients, size };
    return (await this.call("post", "/v1/check", { body })).data.results;
  }

  /** What an SMTP RCPT would tell about one recipient (a `precheck` token; no figures). Past
   * the token's rate: MailquotaError 429 `rate_limited` with `retryAfter`. */
  async precheck(recipient: string, size?: number): Promise<PrecheckResponse["results"][number]> {
    const query = size === undefined ? { recipient } : { recipient, size };
    const r = await this.call("get", "/v1/precheck", { query });
    const first = r.data.results[0];
    if (first === undefined) throw malformed("GET /v1/precheck", r.status, r.data);
    return first;
  }

  /** The same for several recipients and one size (each recipient costs one of the rate). */
  async precheckMany(recipients: string[], size?: number): Promise<PrecheckResponse["results"]> {
    const body = size === undefined ? { recipients } : { recipients, size };
    return (await this.call("post", "/v1/precheck", { body })).data.results;
  }

  /** The token's own mailbox as its user sees it (a `self` token). An expired one gets
   * MailquotaError 401 with code `token_expired`. */
  async self(): Promise<SelfView> {
    return (await this.call("get", "/v1/self", {})).data;
  }

  /** The self-check page for a `self` token: the token rides in the fragment, which browsers
   * never send. Give `pageUrl` when the page is reached elsewhere (a reverse proxy). */
  selfPageUrl(token: string, pageUrl = `${this.baseUrl}/self`): string {
    return `${pageUrl}#token=${encodeURIComponent(token)}`;
  }

  /** Report usage changes (deltas, each counted once by its key), one result per report. */
  async reportUsage(reports: UsageReport[]): Promise<UsageResult[]> {
    return (await this.call("post", "/v1/usage", { body: { reports } })).data.results;
  }

  /** Export domains, mailboxes and aliases (NDJSON by default, or CSV of one `type`), as text
   * importable as is. */
  async exportData(query: ExportQuery = {}): Promise<string> {
    return (await this.call("get", "/v1/export", { query })).data;
  }

  /** Import NDJSON or CSV text. All or nothing by default: a file with bad rows resolves with
   * `applied: false` and every bad row in `errors` (the API's 422), rather than rejecting. */
  async importData(
    text: string,
    contentType: ImportMediaType = "application/x-ndjson",
    query: ImportQuery = {},
  ): Promise<ImportResult> {
    const r = await this.call("post", "/v1/import", {
      body: text,
      contentType,
      query,
      answers: [422],
    });
    return r.data;
  }

  /**
   * One request to the route the spec has at `path` with `method`, every part typed by the spec.
   * Resolves on 2xx, 304 and the statuses in `answers`; rejects with MailquotaError otherwise.
   * The building block of every method; a panel may use it for operations not wrapped here.
   */
  async call<P extends Path, M extends MethodOf<P>, S extends number = never>(
    method: M,
    path: P,
    options: Options<Op<P, M>, S>,
  ): Promise<Reply<Answer<Op<P, M>, Ok | S>>> {
    const o = options as LooseOptions;
    const request = `${method.toUpperCase()} ${path}`;
    const url = this.baseUrl + this.fill(path, o.path) + this.queryString(o.query);
    const headers = new Headers({ Accept: "application/json" });
    if (this.#token !== undefined) headers.set("Authorization", `Bearer ${this.#token}`);
    for (const [k, v] of Object.entries(o.header ?? {})) {
      if (v !== undefined) headers.set(k, k === "If-Match" ? quoteEtag(v) : v);
    }
    const init: RequestInit = { method: method.toUpperCase(), headers };
    if (o.body !== undefined) {
      const type = o.contentType ?? "application/json";
      headers.set("Content-Type", type);
      init.body = type === "application/json" ? JSON.stringify(o.body) : String(o.body);
    }
    if (this.#timeoutMs > 0) init.signal = AbortSignal.timeout(this.#timeoutMs);

    const res = await this.#fetch(url, init);
    const text = res.status === 204 || res.status === 304 ? "" : await res.text();
    const isJson = (res.headers.get("Content-Type") ?? "").startsWith("application/json");
    const etag = res.headers.get("ETag") ?? undefined;
    const ok = (res.status >= 200 && res.status < 300) || res.status === 304;
    const answer = ok || (o.answers ?? []).includes(res.status);
    let parsed: unknown = text;
    if (isJson && text !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        if (answer) throw malformed(request, res.status, text);
      }
    }
    if (!answer) {
      const body: ApiErrorBody = isApiErrorBody(parsed)
        ? parsed
        : { error: `http_${res.status}`, message: res.statusText || text.slice(0, 200) };
      throw new MailquotaError(
        res.status,
        body,
        parsed,
        parseRetryAfter(res.headers.get("Retry-After")),
        etag,
        request,
      );
    }
    const data = (text === "" ? undefined : parsed) as Answer<Op<P, M>, Ok | S>;
    return { status: res.status, data, etag, headers: res.headers };
  }

  /** The path with each `{name}` replaced by its value, percent-encoded. */
  private fill(path: string, values: Record<string, string | number> | undefined): string {
    return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const v = values?.[name];
      if (v === undefined) throw new TypeError(`${path}: no value for {${name}}`);
      return encodeURIComponent(String(v));
    });
  }

  /** `?a=1&b=x` from the defined values (spaces as %20, never `+`), or "". */
  private queryString(query: LooseOptions["query"]): string {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
    }
    return parts.length === 0 ? "" : `?${parts.join("&")}`;
  }
}

/** The body of a 2xx that must have one (every operation but deletes and 304s). */
function present<B>(request: string, r: Reply<B>): Exclude<B, undefined> {
  if (r.data === undefined) throw malformed(request, r.status, undefined);
  return r.data as Exclude<B, undefined>;
}

/** `/v1/domains`: list, walk, read, create, change and delete domains. */
export class Domains {
  constructor(private readonly c: MailquotaClient) {}

  /** One page (`limit` ≤ 1000); pass its `next_cursor` back as `cursor` for the next. */
  async list(query: DomainQuery = {}): Promise<Schemas["DomainPage"]> {
    return (await this.c.call("get", "/v1/domains", { query })).data;
  }

  /** Every domain matching the query, fetched page by page as the loop goes on. */
  all(query: Omit<DomainQuery, "cursor"> = {}): AsyncGenerator<Domain, void, undefined> {
    return paginate((cursor) => this.list(withCursor<DomainQuery>(query, cursor)));
  }

  async get(name: string): Promise<Domain> {
    const r = await this.c.call("get", "/v1/domains/{name}", { path: { name } });
    return present("GET /v1/domains/{name}", r);
  }

  /** The domain if it changed since `etag` was read, else null (304). */
  async getIfChanged(name: string, etag: string): Promise<Domain | null> {
    const r = await this.c.call("get", "/v1/domains/{name}", {
      path: { name },
      header: { "If-None-Match": quoteEtag(etag) },
    });
    return r.status === 304 ? null : present("GET /v1/domains/{name}", r);
  }

  async create(domain: NewDomain): Promise<Domain> {
    return (await this.c.call("post", "/v1/domains", { body: domain })).data;
  }

  /** Change the fields given (`null`: unlimited). */
  async update(name: string, changes: DomainChanges, guard: Guard = {}): Promise<Domain> {
    const r = await this.c.call("patch", "/v1/domains/{name}", {
      path: { name },
      header: { "If-Match": guard.ifMatch },
      body: changes,
    });
    return r.data;
  }

  /** Delete the domain with its mailboxes and aliases. */
  async delete(name: string, guard: Guard = {}): Promise<void> {
    await this.c.call("delete", "/v1/domains/{name}", {
      path: { name },
      header: { "If-Match": guard.ifMatch },
    });
  }
}

/** `/v1/mailboxes`: the same for mailboxes, and their usage. */
export class Mailboxes {
  constructor(private readonly c: MailquotaClient) {}

  /** One page; filters `domain`, `prefix`, `over_quota`, `min_usage_percent`, `enabled`,
   * `updated_since`, orders `sort` (`-usage`: fullest first). */
  async list(query: MailboxQuery = {}): Promise<Schemas["MailboxPage"]> {
    return (await this.c.call("get", "/v1/mailboxes", { query })).data;
  }

  all(query: Omit<MailboxQuery, "cursor"> = {}): AsyncGenerator<Mailbox, void, undefined> {
    return paginate((cursor) => this.list(withCursor<MailboxQuery>(query, cursor)));
  }

  async get(address: string): Promise<Mailbox> {
    const r = await this.c.call("get", "/v1/mailboxes/{address}", { path: { address } });
    return present("GET /v1/mailboxes/{address}", r);
  }

  /** The mailbox if it changed since `etag` was read, else null (304). */
  async getIfChanged(address: string, etag: string): Promise<Mailbox | null> {
    const r = await this.c.call("get", "/v1/mailboxes/{address}", {
      path: { address },
      header: { "If-None-Match": quoteEtag(etag) },
    });
    return r.status === 304 ? null : present("GET /v1/mailboxes/{address}", r);
  }

  async create(mailbox: NewMailbox): Promise<Mailbox> {
    return (await this.c.call("post", "/v1/mailboxes", { body: mailbox })).data;
  }

  /** Change the fields given (`null`: inherit the domain's default). */
  async update(address: string, changes: MailboxChanges, guard: Guard = {}): Promise<Mailbox> {
    const r = await this.c.call("patch", "/v1/mailboxes/{address}", {
      path: { address },
      header: { "If-Match": guard.ifMatch },
      body: changes,
    });
    return r.data;
  }

  async delete(address: string, guard: Guard = {}): Promise<void> {
    await this.c.call("delete", "/v1/mailboxes/{address}", {
      path: { address },
      header: { "If-Match": guard.ifMatch },
    });
  }

  /** Limits and usage as the checks see them (from the daemon's memory). */
  async usage(address: string): Promise<MailboxState> {
    return (await this.c.call("get", "/v1/mailboxes/{address}/usage", { path: { address } }))
      .data;
  }

  /** Set absolute usage from a recalculation (audited); the mailbox as it is now. */
  async setUsage(address: string, usage: UsageRecalculation): Promise<Mailbox> {
    const r = await this.c.call("put", "/v1/mailboxes/{address}/usage", {
      path: { address },
      body: usage,
    });
    return r.data.object;
  }
}

/** `/v1/aliases` (`@domain` is the domain's catch-all). */
export class Aliases {
  constructor(private readonly c: MailquotaClient) {}

  async list(query: AliasQuery = {}): Promise<Schemas["AliasPage"]> {
    return (await this.c.call("get", "/v1/aliases", { query })).data;
  }

  all(query: Omit<AliasQuery, "cursor"> = {}): AsyncGenerator<Alias, void, undefined> {
    return paginate((cursor) => this.list(withCursor<AliasQuery>(query, cursor)));
  }

  async get(address: string): Promise<Alias> {
    const r = await this.c.call("get", "/v1/aliases/{address}", { path: { address } });
    return present("GET /v1/aliases/{address}", r);
  }

  /** The alias if it changed since `etag` was read, else null (304). */
  async getIfChanged(address: string, etag: string): Promise<Alias | null> {
    const r = await this.c.call("get", "/v1/aliases/{address}", {
      path: { address },
      header: { "If-None-Match": quoteEtag(etag) },
    });
    return r.status === 304 ? null : present("GET /v1/aliases/{address}", r);
  }

  async create(alias: NewAlias): Promise<Alias> {
    return (await this.c.call("post", "/v1/aliases", { body: alias })).data;
  }

  /** Replace `targets`, or `add_targets` / `remove_targets`. */
  async update(address: string, changes: AliasChanges, guard: Guard = {}): Promise<Alias> {
    const r = await this.c.call("patch", "/v1/aliases/{address}", {
      path: { address },
      header: { "If-Match": guard.ifMatch },
      body: changes,
    });
    return r.data;
  }

  async delete(address: string, guard: Guard = {}): Promise<void> {
    await this.c.call("delete", "/v1/aliases/{address}", {
      path: { address },
      header: { "If-Match": guard.ifMatch },
    });
  }
}

/** `/v1/tokens` (an admin token): list, make and revoke tokens. */
export class Tokens {
  constructor(private readonly c: MailquotaClient) {}

  async list(query: TokenQuery = {}): Promise<Schemas["TokenPage"]> {
    return (await this.c.call("get", "/v1/tokens", { query })).data;
  }

  all(query: Omit<TokenQuery, "cursor"> = {}): AsyncGenerator<Token, void, undefined> {
    return paginate((cursor) => this.list(withCursor<TokenQuery>(query, cursor)));
  }

  async get(id: number): Promise<Token> {
    return (await this.c.call("get", "/v1/tokens/{id}", { path: { id } })).data;
  }

  /** A new token; its secret (`token`) is in this answer only. */
  async create(token: NewToken): Promise<TokenCreated> {
    return (await this.c.call("post", "/v1/tokens", { body: token })).data;
  }

  /** A `self` token for one mailbox and the self-check page's link for it (for a panel's
   * "show my quota" button). It lives at most the daemon's `self_token_max_lifetime`. */
  async selfLink(
    mailbox: string,
    options: { name?: string; expiresAt?: string; pageUrl?: string } = {},
  ): Promise<{ token: TokenCreated; url: string }> {
    const body: NewToken = { name: options.name ?? `self ${mailbox}`, scope: "self", mailbox };
    if (options.expiresAt !== undefined) body.expires_at = options.expiresAt;
    const token = await this.create(body);
    return { token, url: this.c.selfPageUrl(token.token, options.pageUrl) };
  }

  /** Revoke a token, at once in every daemon (revoking twice is fine). */
  async revoke(id: number): Promise<void> {
    await this.c.call("delete", "/v1/tokens/{id}", { path: { id } });
  }
}

/** `/v1/audit`: every admin change, newest first. */
export class Audit {
  constructor(private readonly c: MailquotaClient) {}

  async list(query: AuditQuery = {}): Promise<Schemas["AuditPage"]> {
    return (await this.c.call("get", "/v1/audit", { query })).data;
  }

  all(query: Omit<AuditQuery, "cursor"> = {}): AsyncGenerator<AuditEntry, void, undefined> {
    return paginate((cursor) => this.list(withCursor<AuditQuery>(query, cursor)));
  }
}
