/**
 * Session 62's hostile round on real servers (PostgreSQL, Redis, Kafka, ClickHouse; the card processor
 * the fake behind the `stripe` SDK; gateways with the fast lane and without), every answer judged by
 * ./oracle.ts: no 5xx, no stack trace, file path, driver text or internal name, JSON errors in the
 * platform's shape naming the field. Classes the earlier rounds had tried on a route or two, or not at
 * all, now on every public route the services registered (read from them: a new route is covered),
 * byte for byte through both gateways:
 * - content types: the media type in other cases, quoted and repeated charsets, a trailing `;`,
 *   `application/json, text/plain`, look-alike types (`jsonx`, `json-patch+json`, `ld+json`, `json5`,
 *   `text/json`), multipart and form bodies, none at all; codings gzip/br/deflate (really compressed),
 *   `x-gzip`, `zstd`, lists, `identity` in any case;
 * - query keys: `a[]`, `a[b]`, `a[][b]`, empty names, object members (`toString`, `hasOwnProperty`,
 *   `__defineGetter__`), `;` as a separator, an override character or NUL in a name; a declared name
 *   with `[]`, in upper case, with a space or `+` around it, percent-encoded; its value with `+`,
 *   `%20`, full-width and Arabic-Indic digits;
 * - paths: ids of the wrong type and shape (numbers, `1e3`, `0x10`, `.`/`..` plain, encoded and
 *   double-encoded, encoded slashes and backslashes, `;` matrix parameters, NFC and NFD, full-width
 *   digits, JSON words), matrix parameters and encoded slashes on the route's own segments, dot
 *   segments and percent-encoded letters (the same route as plain), fragments;
 * - JSON keys: every field of every body given twice (bad then valid, valid then bad: the last is the
 *   one validated and used), `__proto__` spelt with `\u` escapes at the top and one level down,
 *   `prototype` and `constructor` keys;
 * - strings at their maxLength in astral characters, combining marks and ZWJ sequences (ajv and
 *   PostgreSQL count code points alike), one past it; 100,000-item lists, 20,000-key objects and
 *   30,000 unknown keys (one short 400, in milliseconds);
 * - identity: alice's requests with x-user-id (bob's), x-user-role, x-auth-method, x-api-key-scopes,
 *   X-Forwarded-For, X-Real-IP, Forwarded, X-Original-URL, X-Rewrite-URL and a method override on
 *   every GET route (her answer without them); bob's user id, payment method, API key, webhook, intent
 *   and subscription in each path parameter of every route as alice (a 4xx, nothing of his echoed or
 *   changed);
 * - a body on a GET, a HEAD, a DELETE, an OPTIONS and a TRACE; JSON values that are no object (`"x"`,
 *   `""`, 0, false, [], null) to routes that take no body, and texts that are not one JSON document
 *   (two documents, a comment, single quotes, NUL or NBSP around one, two BOMs, whitespace only);
 * - e-mail spellings: case twins (one account), NFD, full-width, Cyrillic, Kelvin sign, zero-width,
 *   padding (a 400 naming email);
 * - a service's internal paths (probes, metrics, /internal) through the gateways in 22 spellings.
 * Found and fixed at the root: a GET's or HEAD's body (Content-Length or chunked) was ignored without
 * a word on every service and both gateways (Fastify never reads one; the gateway dropped it), where a
 * DELETE's is judged (kit unread-bodies.ts): `GET /api/users/api-keys {"limit":1}` answered every key.
 * Now a 400 naming `body` (kit request-framing.ts: at once for a Content-Length, at the first chunk
 * for a chunked one), Content-Length 0 and a chunked body of no chunk still taken. And the
 * JSON string `""` to a route that takes no body was taken like no body (Fastify hands both over as
 * ""), where `"x"`, 0 and false were refused: now refused the same (kit unread-bodies.ts).
 * Held: everything else above (the kit's media type, charset, coding, query-name, prototype-key and
 * number checks, the gateway's identity headers).
 */
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { catalog } from "../../services/src/catalog";
import { IDENTITY_HEADERS, isInternalPath, type RouteInfo } from "../../services/src/kit";
import { rawExchange } from "../helpers/raw-http";
import { publicRoutesOf, type PublicRoute } from "./public-routes";
import { judge } from "./oracle";
import { errorFieldOf, useRedTeamPlatform } from "./red-team-platform";

const rig = useRedTeamPlatform("session-62");
const { gateways, who, failures } = rig;
const VIAS = ["plain", "lane"] as const;
type Via = (typeof VIAS)[number];
type Schema = { type?: string; maxLength?: number; properties?: Record<string, Schema>; allOf?: Schema[]; items?: Schema };

const publicRoutes = () => publicRoutesOf(rig.p);
const paramsOf = (route: RouteInfo) => Object.keys((route.schema?.params as Schema | undefined)?.properties ?? {});
const queryNamesOf = (route: RouteInfo) => {
  const q = route.schema?.querystring as Schema | undefined;
  return Object.keys({ ...q?.properties, ...Object.assign({}, ...(q?.allOf ?? []).map((x) => x.properties ?? {})) });
};
/** payment-service's processor webhook reads its body raw and checks its signature first: refused there whatever the body. */
const isSignedWebhook = (r: PublicRoute) => r.service === "payment-service" && r.route.url === "/webhooks/processor";

interface Answer {
  status: number;
  field?: string;
  body: string;
  ms: number;
}

/** One request written byte for byte to a gateway (alice's unless `token`), judged by ./oracle.ts into `failures`. */
async function raw(via: Via, method: string, path: string, o: { token?: string | null; headers?: string[]; body?: Buffer | string; contentLength?: false } = {}): Promise<Answer> {
  const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body, "utf8");
  const token = o.token === undefined ? who.alice.token : o.token;
  const lines = [`${method} ${path} HTTP/1.1`, "Host: gw", ...(token ? [`Authorization: Bearer ${token}`] : []), ...(o.headers ?? []), ...(body && o.contentLength !== false ? [`Content-Length: ${body.length}`] : []), "Connection: close"];
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  const t0 = Date.now();
  const a = await rawExchange(gateways[via], [body ? Buffer.concat([head, body]) : head], 30_000);
  rig.judged++;
  const v = judge(a.status || 599, a.body, a.headers["content-type"] ?? null, rig.internalPorts);
  if (!v.ok) failures.push(`${via} ${method} ${path.slice(0, 120)} -> ${a.status} [${v.problems.join(", ")}] ${a.body.slice(0, 200)}`);
  return { status: a.status, field: errorFieldOf(a.body), body: a.body, ms: Date.now() - t0 };
}
const shape = (a: Answer) => `${a.status} ${a.field ?? ""}`.trim();
const JSON_TYPE = ["Content-Type: application/json"];
/** The route's sample request's body, as sent. */
const sampleBody = (r: PublicRoute) => (r.body === undefined ? {} : { headers: JSON_TYPE, body: JSON.stringify(r.body) });

/**
 * Content types and codings that are the JSON the kit reads (kit request-guards.ts: UTF-8, no coding)
 * spelt otherwise, and those it refuses: each refused one a 415 naming the header on every body route,
 * lane on and off; none read as another media type or charset. Fastify matches a media type in any
 * case and ignores parameters it does not know; the kit reads the first charset. US-ASCII, a subset of
 * UTF-8, is taken since session 63.
 */
const JSON_SPELLINGS = ["APPLICATION/JSON", "Application/Json; Charset=UTF-8", 'application/json; charset="utf-8"', "application/json;", "application/json ;charset=utf-8", "application/json; charset=utf-8; charset=utf-16", "application/json; charset=us-ascii"];
const REFUSED_TYPES = [
  'application/json; charset="utf-16"', "application/json; charset=utf-16; charset=utf-8", "application/json;charset=iso-8859-1", "application/json, text/plain",
  "application/jsonx", "application/json-patch+json", "application/ld+json", "application/json5", "text/json", "application/octet-stream", "multipart/form-data; boundary=zz", "application/x-www-form-urlencoded", "", null,
];
const REFUSED_CODINGS: Array<[string, (b: Buffer) => Buffer]> = [
  ["gzip", gzipSync], ["GZIP", gzipSync], ["x-gzip", gzipSync], ["br", brotliCompressSync], ["deflate", deflateSync], ["zstd", (b) => b], ["identity, gzip", gzipSync], ["gzip, identity", gzipSync],
];
const TAKEN_CODINGS = ["identity", "IDENTITY", ""];

describe("content types and codings on every body route, lane on and off", () => {
  it("the refused ones a 415 naming the header (the signed webhook: a 4xx), the JSON spelt otherwise never refused for its type", async () => {
    for (const r of publicRoutes().filter((x) => x.body !== undefined)) {
      const text = JSON.stringify(r.body);
      for (const via of VIAS) {
        const at = `${via} ${r.route.method} ${r.route.url}`;
        for (const type of REFUSED_TYPES) {
          const body = type?.startsWith("multipart") ? `--zz\r\nContent-Disposition: form-data; name="x"\r\n\r\n${text}\r\n--zz--\r\n` : type?.includes("urlencoded") ? "a=1" : text;
          const a = await raw(via, r.route.method, r.path, { headers: type === null ? [] : [`Content-Type: ${type}`], body });
          if (isSignedWebhook(r)) expect.soft(a.status, `${at} ${type}`).toBeLessThan(500);
          else expect.soft(shape(a), `${at} Content-Type ${type}`).toBe("415 content-type");
        }
        for (const type of JSON_SPELLINGS) {
          const a = await raw(via, r.route.method, r.path, { headers: [`Content-Type: ${type}`], body: text });
          expect.soft([415, 400].includes(a.status) && ["content-type", "body"].includes(a.field ?? ""), `${at} Content-Type ${type}: ${shape(a)}`).toBe(false);
        }
        for (const [coding, encode] of REFUSED_CODINGS) {
          const a = await raw(via, r.route.method, r.path, { headers: [...JSON_TYPE, `Content-Encoding: ${coding}`], body: encode(Buffer.from(text)) });
          expect.soft(shape(a), `${at} Content-Encoding ${coding}`).toBe("415 content-encoding");
        }
        for (const coding of TAKEN_CODINGS) {
          const a = await raw(via, r.route.method, r.path, { headers: [...JSON_TYPE, `Content-Encoding: ${coding}`], body: text });
          expect.soft(a.field, `${at} Content-Encoding ${coding}`).not.toBe("content-encoding");
        }
      }
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

describe("query keys shaped as arrays, objects, empty, object members and encodings: every public route, lane on and off (kit query-parameters.ts)", () => {
  it("each odd key a 400 (naming it on a route the body does not stop first), a declared name percent-encoded read as itself, its value spelt otherwise refused", async () => {
    for (const r of publicRoutes()) {
      const bodyless = r.body === undefined || Object.keys(r.body).length === 0;
      const names = queryNamesOf(r.route);
      const name = names.includes("limit") ? "limit" : names[0];
      // [query, the field named (an empty name: the query, since session 63), undefined: any 400]
      const cases: Array<[string, string | undefined]> = [
        ["a[]=1", "a[]"], ["a[b]=1", "a[b]"], ["a[][b]=1", "a[][b]"], ["=1", "query"], ["=", "query"], ["&=x", "query"], ["toString=1", "toString"], ["hasOwnProperty=1", "hasOwnProperty"], ["valueOf=1", "valueOf"],
        ["__defineGetter__=1", "__defineGetter__"], ["a=1;b=2", "a"], ["%E2%80%AEa=1", "\u202ea"], ["a%00b=1", undefined], ["%C0%AF=1", undefined],
      ];
      if (name)
        cases.push([`${name}[]=5`, `${name}[]`], [`${name}[x]=5`, `${name}[x]`], [`${name.toUpperCase()}=5`, name.toUpperCase()], [`${name}%20=5`, `${name} `], [`+${name}=5`, ` ${name}`], [`${name}%00=5`, undefined],
          [`${name}=5&${name}=5`, name], [`${name}=+5`, name], [`${name}=5+`, name], [`${name}=%205`, name], [`${name}=%EF%BC%95`, name], [`${name}=%D9%A5`, name]);
      for (const via of VIAS) {
        // The sample request refused for its path (a parameter's pattern: validated before the query) or body says nothing of the query's field.
        const control = await raw(via, r.route.method, r.path, sampleBody(r));
        for (const [query, field] of cases) {
          const a = await raw(via, r.route.method, `${r.path}?${query}`, sampleBody(r));
          expect.soft(a.status, `${via} ${r.route.method} ${r.route.url}?${query}`).toBe(400);
          if (bodyless && control.status !== 400 && field !== undefined) expect.soft(a.field ?? "", `${via} ${r.route.method} ${r.route.url}?${query}`).toBe(field);
        }
      }
      if (name && bodyless && r.route.method === "GET") {
        const encoded = [...name].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("");
        for (const via of VIAS) {
          const plain = await raw(via, "GET", `${r.path}?${name}=5`);
          const spelt = await raw(via, "GET", `${r.path}?${encoded}=5`);
          expect.soft(shape(spelt), `${via} GET ${r.route.url}?${encoded}=5`).toBe(shape(plain));
        }
      }
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

describe("paths: parameters of the wrong type and shape, matrix parameters, encoded slashes and dots: every public route, lane on and off", () => {
  const IDS = ["1", "-1", "0", "99999999999999999999", "1e3", "0x10", ".", "%2e", "%2e%2e", "%252e%252e", "%252f", "a%2fb", "x;y=1", "%EF%BC%91", "e%CC%81", "%C3%A9", "%20", "%09", "null", "undefined", "NaN", "true", "[]", "%7B%7D", "*", "%2F", "%5C", "..%5C..%5C"];
  it("every odd id a 4xx; a matrix parameter, a trailing %2f or ; and double-encoded dots no route; a dot segment or an encoded letter the same route", async () => {
    for (const r of publicRoutes()) {
      for (const via of VIAS) {
        const at = `${via} ${r.route.method} ${r.route.url}`;
        for (const param of paramsOf(r.route))
          for (const id of IDS) {
            const a = await raw(via, r.route.method, r.pathWith(param, id), sampleBody(r));
            expect.soft(a.status >= 400 && a.status < 500, `${at} :${param}=${id}: ${shape(a)}`).toBe(true);
          }
        for (const [label, path] of [["matrix", `${r.path};x=1`], ["trailing %2f", `${r.path}%2f`], ["trailing ;", `${r.path};`], ["encoded slash", r.path.replace(/^(\/api\/[^/]+)\//, "$1%2f")], ["double-encoded dots", r.path.replace(/^(\/api\/[^/]+)\//, "$1/x/%252e%252e/")]] as const) {
          const a = await raw(via, r.route.method, path, sampleBody(r));
          // A matrix parameter on a route ending in a parameter is part of the id, refused by its pattern.
          expect.soft(a.status === 404 || (a.status === 400 && paramsOf(r.route).includes(a.field ?? "")) || a.status === 403, `${at} ${label}: ${shape(a)}`).toBe(true);
        }
        if (r.route.method === "GET") {
          const plain = shape(await raw(via, "GET", r.path));
          for (const [label, path] of [["dot segment", r.path.replace(/^(\/api\/[^/]+)\//, "$1/./")], ["encoded dot segment", r.path.replace(/^(\/api\/[^/]+)\//, "$1/%2e/")], ["encoded letter", r.path.replace(/\/([a-z])([a-z]*)$/, (_m, c: string, rest: string) => `/%${c.charCodeAt(0).toString(16)}${rest}`)], ["fragment", `${r.path}#x`]] as const)
            expect.soft(shape(await raw(via, "GET", path)), `${at} ${label}`).toBe(plain);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

describe("JSON keys: duplicates and prototype names spelt with escapes, every body route, lane on and off (kit request-guards.ts)", () => {
  it("a key given twice: the last value is the one validated (a bad last one refused like the same value alone, a bad first one never named); __proto__ in \\u escapes a 400 naming body", async () => {
    for (const r of publicRoutes().filter((x) => x.body !== undefined && !isSignedWebhook(x))) {
      const rest = JSON.stringify(r.body).slice(1, -1);
      const keys = Object.keys(r.body!);
      for (const via of VIAS) {
        const at = `${via} ${r.route.method} ${r.route.url}`;
        const control = await raw(via, r.route.method, r.path, sampleBody(r));
        for (const k of keys) {
          const valid = JSON.stringify(r.body![k]);
          for (const bad of ['{"x":1}', "-5", JSON.stringify("x".repeat(70_000)), "null"]) {
            const alone = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: `{${rest},${JSON.stringify(k)}:${bad}}` });
            const last = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: `{${rest},${JSON.stringify(k)}:${valid},${JSON.stringify(k)}:${bad}}` });
            if (alone.status === 400) expect.soft(shape(last), `${at} ${k}: ${valid} then ${bad.slice(0, 20)}`).toBe(shape(alone));
            const first = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: `{${rest},${JSON.stringify(k)}:${bad},${JSON.stringify(k)}:${valid}}` });
            // (A sample value refused is refused the same after a bad one: the first is never what is judged.)
            if (control.status === 400) expect.soft(shape(first), `${at} ${k}: ${bad.slice(0, 20)} then ${valid}`).toBe(shape(control));
            else expect.soft(first.status === 400 && first.field === k, `${at} ${k}: ${bad.slice(0, 20)} then ${valid}: ${shape(first)}`).toBe(false);
          }
        }
        for (const key of ['"\\u005f_proto__"', '"\\u005f\\u005f\\u0070\\u0072\\u006f\\u0074\\u006f\\u005f\\u005f"', '"__pro\\u0074o__"']) {
          const a = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: `{${rest}${keys.length ? "," : ""}${key}:{"admin":true,"role":"admin"}}` });
          expect.soft(shape(a), `${at} ${key}`).toBe("400 body");
          const nested = keys.find((k) => r.body![k] !== null && typeof r.body![k] === "object" && !Array.isArray(r.body![k]));
          if (nested) {
            const b = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: JSON.stringify({ ...r.body, [nested]: "HOLE" }).replace('"HOLE"', `{${key}:{"admin":true}}`) });
            expect.soft(shape(b), `${at} ${nested}.${key}`).toBe("400 body");
          }
        }
        for (const key of ["prototype", "constructor"]) {
          const a = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: JSON.stringify({ ...r.body, [key]: { prototype: { admin: true } } }) });
          expect.soft(a.status, `${at} ${key}`).toBe(400);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 900_000);
});

describe("a body on a GET or HEAD, and on a DELETE, every public route, lane on and off (kit request-framing.ts, unread-bodies.ts)", () => {
  it("found: a GET's body was ignored without a word (Fastify never reads one), answered as if none was sent; now a 400 naming body, Content-Length 0 and a chunked body of no chunk still taken", async () => {
    for (const r of publicRoutes().filter((x) => x.body === undefined)) {
      for (const via of VIAS) {
        const at = `${via} ${r.route.method} ${r.route.url}`;
        const sized = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: '{"limit":1,"userId":"x"}' });
        const chunked = await raw(via, r.route.method, r.path, { headers: ["Transfer-Encoding: chunked", ...JSON_TYPE], body: "2\r\n{}\r\n0\r\n\r\n", contentLength: false });
        if (r.route.method === "GET") {
          expect.soft(shape(sized), `${at} with a body`).toBe("400 body");
          expect.soft(shape(chunked), `${at} with a chunked body`).toBe("400 body");
          const head = await raw(via, "HEAD", r.path, { body: "{}" });
          expect.soft(head.status, `${via} HEAD ${r.route.url} with a body`).toBe(400);
          const plain = shape(await raw(via, "GET", r.path));
          expect.soft(shape(await raw(via, "GET", r.path, { headers: ["Content-Length: 0"] })), `${at} Content-Length 0`).toBe(plain);
          expect.soft(shape(await raw(via, "GET", r.path, { headers: ["Transfer-Encoding: chunked"], body: "0\r\n\r\n", contentLength: false })), `${at} chunked, no chunk`).toBe(plain);
          const slow = await rawExchange(gateways[via], [[`GET ${r.path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${who.alice.token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, 300], "1\r\nx\r\n"], 10_000);
          expect.soft(`${slow.status} ${errorFieldOf(slow.body) ?? ""}`.trim(), `${at} a chunk arriving later`).toBe("400 body");
        } else {
          expect.soft(sized.status === 400 && sized.field === "limit" ? "refused" : shape(sized), `${at} with a body`).toBe("refused");
          expect.soft(chunked.field === "body", `${at} with {} chunked: ${shape(chunked)}`).toBe(false);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 600_000);
});

describe("identity: forged identity and proxy headers on every GET route, bob's ids in every path parameter, lane on and off", () => {
  it("alice's answer with x-user-id (bob), x-user-role admin, x-auth-method service, X-Forwarded-For, X-Real-IP, Forwarded, X-Original-URL is her answer without them, bob's id never in it", async () => {
    const forged = [`${IDENTITY_HEADERS.userId}: ${who.bob.id}`, `${IDENTITY_HEADERS.role}: admin`, `${IDENTITY_HEADERS.authMethod}: service`, `${IDENTITY_HEADERS.apiKeyScopes}: read,trade`, "X-Forwarded-For: 127.0.0.1", "X-Real-IP: 127.0.0.1", "Forwarded: for=127.0.0.1;by=127.0.0.1", "X-Original-URL: /api/health", "X-Rewrite-URL: /api/health", "X-HTTP-Method-Override: DELETE"];
    for (const r of publicRoutes().filter((x) => x.route.method === "GET"))
      for (const via of VIAS) {
        const mine = await raw(via, "GET", r.path);
        const spoofed = await raw(via, "GET", r.path, { headers: forged });
        expect.soft(shape(spoofed), `${via} GET ${r.route.url}`).toBe(shape(mine));
        expect.soft(spoofed.body.includes(who.bob.id), `${via} GET ${r.route.url}: bob's id`).toBe(false);
        const anonymous = await raw(via, "GET", r.path, { token: null, headers: forged });
        expect.soft(anonymous.status, `${via} GET ${r.route.url} anonymous, forged`).toBe((await raw(via, "GET", r.path, { token: null })).status);
      }
    expect(failures).toEqual([]);
  }, 600_000);

  it("bob's user id, payment method, API key, webhook, intent and subscription in each path parameter of every route, as alice: a 4xx, bob's id never echoed, his things as they were", async () => {
    const bob = who.bob;
    const key = await rig.gw("bob", "POST", "/api/users/api-keys", { body: { name: "h62 bob" } });
    const hook = await rig.gw("bob", "POST", "/api/notifications/webhooks", { body: { url: "https://example.com/h62" } });
    const intent = await rig.gw("bob", "POST", "/api/payments/intents", { body: { amount: 1_234, currency: "usd", paymentMethod: bob.pm }, headers: { "idempotency-key": `h62-${randomBytes(4).toString("hex")}` } });
    const planId = `h62-${randomBytes(3).toString("hex")}`;
    expect((await rig.gw("admin", "POST", "/api/billing/plans", { body: { id: planId, name: "h62", currency: "usd", amount: 1_000, interval: "month", trialDays: 0 } })).status).toBe(201);
    const sub = await rig.gw("bob", "POST", "/api/billing/subscriptions", { body: { planId, paymentMethod: bob.pm } });
    expect([key.status, hook.status, intent.status, sub.status]).toEqual([201, 201, 201, 201]);
    const ids: Record<string, string> = { user: bob.id, pm: bob.pm, key: key.json.id, hook: hook.json.id, intent: intent.json.id, sub: sub.json.id };
    // His subscription's first charge settles meanwhile (incomplete, then active): its state is taken once it has.
    let before = await bobsThings();
    for (let waited = 0; before.includes('"status":"incomplete"') && waited < 30_000; waited += 250) {
      await new Promise((done) => setTimeout(done, 250));
      before = await bobsThings();
    }
    let tried = 0;
    for (const r of publicRoutes())
      for (const param of paramsOf(r.route))
        for (const via of VIAS)
          for (const [what, id] of Object.entries(ids)) {
            const a = await raw(via, r.route.method, r.pathWith(param, encodeURIComponent(id)), sampleBody(r));
            expect.soft(a.status >= 400 && a.status < 500, `${via} ${r.route.method} ${r.route.url} :${param}=bob's ${what}: ${shape(a)}`).toBe(true);
            expect.soft(a.body.includes(id), `${via} ${r.route.method} ${r.route.url} :${param}=bob's ${what}: echoed`).toBe(false);
            tried++;
          }
    expect(tried).toBeGreaterThan(150);
    expect(await bobsThings()).toEqual(before);
    expect(failures).toEqual([]);
  }, 600_000);
});

/** What bob holds, as he reads it: his API keys, webhooks, intents, subscriptions and payment methods. */
async function bobsThings(): Promise<string> {
  const reads = ["/api/users/api-keys", "/api/notifications/webhooks", "/api/payments/intents", "/api/billing/subscriptions", "/api/payments/payment-methods"];
  return JSON.stringify(await Promise.all(reads.map(async (p) => (await rig.gw("bob", "GET", p)).json)));
}

describe("strings at their bounds in astral, combining and joined characters, lists and objects of many items: every body field, lane on and off", () => {
  it("no 5xx, each answer small and prompt; past a bound a 400 naming the field", async () => {
    let tried = 0;
    for (const r of publicRoutes().filter((x) => x.body !== undefined && !isSignedWebhook(x))) {
      const schema = r.route.schema?.body as Schema | undefined;
      // The sample body refused for another field: a value past its bound is refused, naming either.
      const control = await raw("plain", r.route.method, r.path, sampleBody(r));
      for (const [k, s] of Object.entries(schema?.properties ?? {})) {
        const tries: Array<[string, unknown, boolean]> = [];
        if (s.type === "string" && s.maxLength)
          tries.push(
            ["astral at max", "\u{1F600}".repeat(s.maxLength), false],
            ["astral past max", "\u{1F600}".repeat(s.maxLength + 1), true],
            ["combining at max", "e\u0301".repeat(Math.floor(s.maxLength / 2)), false],
            ["joined family at max", "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}".repeat(Math.floor(s.maxLength / 5)), false],
          );
        if (s.type === "array") tries.push(["100,000 items", Array.from({ length: 100_000 }, () => (r.body![k] as unknown[] | undefined)?.[0] ?? 1), true]);
        if (s.type === "object") tries.push(["20,000 keys", Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 1])), true]);
        for (const [label, v, refused] of tries)
          for (const via of VIAS) {
            const a = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: JSON.stringify({ ...r.body, [k]: v }) });
            const at = `${via} ${r.route.method} ${r.route.url} ${k} ${label}: ${shape(a)} ${a.ms} ms`;
            if (refused) expect.soft(a.status === 400 && ((a.field ?? "").startsWith(k) || (control.status === 400 && a.field === control.field)), at).toBe(true);
            expect.soft(a.body.length < 1_000 && a.ms < 5_000, at).toBe(true);
            tried++;
          }
      }
      for (const via of VIAS) {
        const wide = `{${JSON.stringify(r.body).slice(1, -1)}${Object.keys(r.body!).length ? "," : ""}${Array.from({ length: 30_000 }, (_, i) => `"u${i}":1`).join(",")}}`;
        const a = await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: wide });
        expect.soft(a.status === 400 && a.body.length < 1_000 && a.ms < 5_000, `${via} ${r.route.method} ${r.route.url} 30,000 unknown keys: ${shape(a)} ${a.body.length} B ${a.ms} ms`).toBe(true);
      }
    }
    expect(tried).toBeGreaterThan(50);
    expect(failures).toEqual([]);
  }, 600_000);
});

describe("one account per e-mail address however it is spelt (user-management normalizeEmail), lane on and off", () => {
  it("case variants are the one account (409 on register, the same user at login); NFD, full-width, homoglyph and padded spellings a 400 naming email", async () => {
    const local = `carol-${randomBytes(3).toString("hex")}`;
    const email = `${local}@example.com`;
    const made = await rig.gw("none", "POST", "/api/users/register", { body: { email, password: "correct horse battery staple" } });
    expect(made.status, made.text).toBe(201);
    for (const via of VIAS) {
      for (const twin of [`${local.toUpperCase()}@EXAMPLE.COM`, `${local[0].toUpperCase()}${local.slice(1)}@Example.com`, `${local}@example.COM`]) {
        const again = await rig.gw("none", "POST", "/api/users/register", { body: { email: twin, password: "correct horse battery staple" }, via });
        expect.soft(shape({ status: again.status, field: again.json?.error?.field, body: again.text, ms: 0 }), `${via} register ${twin}`).toBe("409 email");
        const login = await rig.gw("none", "POST", "/api/users/login", { body: { email: twin, password: "correct horse battery staple" }, via });
        expect.soft([login.status, login.json?.user?.id], `${via} login ${twin}`).toEqual([200, made.json.user.id]);
      }
      for (const odd of [
        `${local}e\u0301@example.com`, `${local}\u00e9@example.com`, `${local}@exa\u0301mple.com`, `${local}@\uff45xample.com`, `${local.replace("c", "\u0441")}@example.com`, `${local}@example.com\u200b`,
        ` ${email}`, `${email} `, `${local}\u212a@example.com`, `${local}@EXAMPLE.\u212aOM`, `${local}@xn--exmple-cua.com\u0000`,
      ]) {
        const r = await rig.gw("none", "POST", "/api/users/register", { body: { email: odd, password: "correct horse battery staple" }, via });
        expect.soft(`${r.status} ${r.json?.error?.field}`, `${via} register ${JSON.stringify(odd)}`).toBe("400 email");
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});

describe("a service's internal paths (probes, metrics, /internal) through the gateway, spelt every way a path is: lane on and off", () => {
  it("each spelling a 404 (the gateway's or the service's), never the internal route's answer", async () => {
    const spellings = (p: string): string[] => {
      const rest = p.slice(1);
      return [p, `/${rest}/`, `//${rest}`, `/./${rest}`, `/%2e/${rest}`, `/x/../${rest}`, `/x/%2e%2e/${rest}`, `/%2f${rest}`, `/.%2f${rest}`, `/%25${rest.charCodeAt(0).toString(16)}${rest.slice(1)}`, `/%${rest.charCodeAt(0).toString(16)}${rest.slice(1)}`,
        `/${rest.toUpperCase()}`, `/${rest};x`, `/${rest}%3Bx`, `/${rest}%3F`, `/${rest}%23`, `/${rest}%00`, `/%20${rest}`, `/${rest}%20`, `/${rest}%09`, `/%5C${rest}`, `/${rest}.json`];
    };
    let tried = 0;
    for (const [name, svc] of rig.p.services) {
      const segment = catalog.find((s) => s.name === name)?.route;
      if (name === "api-gateway" || typeof segment !== "string") continue;
      const internal = svc.routes.filter((r) => isInternalPath(r.url) && r.method === "GET").map((r) => r.url.replace(/:([A-Za-z0-9_]+)/g, who.alice.id));
      for (const path of internal)
        for (const spelt of spellings(path))
          for (const via of VIAS) {
            const a = await raw(via, "GET", `/api/${segment}${spelt}`);
            expect.soft(a.status === 404 || a.status === 400, `${via} GET /api/${segment}${spelt}: ${shape(a)} ${a.body.slice(0, 80)}`).toBe(true);
            tried++;
          }
    }
    expect(tried).toBeGreaterThan(100);
    expect(failures).toEqual([]);
  }, 300_000);
});

describe("JSON values to a route that takes no body, and texts that are not one JSON document: every route, lane on and off (kit unread-bodies.ts, request-guards.ts)", () => {
  it("found: the JSON string \"\" was taken by a route that takes no body (\"x\", 0, false and [] were refused); now each a 400 naming body, null still taken; two documents, comments, quotes, NUL or NBSP around one a 400 naming body", async () => {
    for (const r of publicRoutes().filter((x) => !isSignedWebhook(x))) {
      const takesBody = r.route.schema?.body !== undefined;
      for (const via of VIAS) {
        const at = `${via} ${r.route.method} ${r.route.url}`;
        for (const method of ["OPTIONS", "TRACE"]) expect.soft((await raw(via, method, r.path, { headers: JSON_TYPE, body: '{"a":1}' })).status, `${at} as ${method} with a body`).toBe(404);
        if (r.route.method === "GET") continue;
        if (!takesBody) {
          // The sample request refused for its path first says nothing of the body.
          const control = await raw(via, r.route.method, r.path);
          if (control.status === 400) continue;
          for (const [label, text, headers] of [["JSON string", '"x"', JSON_TYPE], ["JSON empty string", '""', JSON_TYPE], ["JSON 0", "0", JSON_TYPE], ["JSON false", "false", JSON_TYPE], ["JSON []", "[]", JSON_TYPE], ["text", "hello", ["Content-Type: text/plain"]]] as const)
            expect.soft(shape(await raw(via, r.route.method, r.path, { headers: [...headers], body: text })), `${at} ${label}`).toBe("400 body");
          expect.soft(shape(await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body: "null" })), `${at} JSON null`).toBe(shape(control));
        } else {
          const text = JSON.stringify(r.body);
          for (const [label, body] of [["empty", ""], ["whitespace", "  \n"], ["two documents", `${text}{}`], ["a NUL after", `${text}\u0000`], ["an NBSP before", `\u00a0${text}`], ["a comment before", `/*x*/${text}`], ["single quotes", text.replace(/"/g, "'")], ["a BOM twice", `\ufeff\ufeff${text}`]] as const)
            expect.soft(shape(await raw(via, r.route.method, r.path, { headers: JSON_TYPE, body })), `${at} ${label}`).toBe("400 body");
        }
      }
    }
    expect(failures).toEqual([]);
  }, 300_000);
});
