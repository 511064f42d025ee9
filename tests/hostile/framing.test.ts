/**
 * Hostile framing, headers and body encodings through the gateway (session 50's hunt, kit
 * request-framing.ts), written byte for byte on the socket, on real servers; every answer judged by
 * ./oracle.ts (no 5xx, no internal details, the platform's error shape):
 * - ~995 headers of a few bytes: the gateway forwarded them with its identity headers last, and the
 *   service behind it kept only its first 1,000 headers: an API key's call arrived as a user session
 *   (`authMethod: "jwt"`), without its scopes, or with no identity. Now more than 100 headers at the
 *   gateway (200 at a service) are a 431 naming `headers`, and none is dropped below that;
 * - Host, Authorization, X-Api-Key, Content-Type, Content-Encoding or Idempotency-Key sent twice
 *   (Node kept one and dropped or joined the other): a 400 naming the header;
 * - `Transfer-Encoding: gzip, chunked` (its gzip bytes taken as the body), a request without Host
 *   and an Expect other than 100-continue (Node's answers without a body), `Expect: 100-continue`
 *   over the body limit (a `100 Continue` first, inviting the upload): now answered in the
 *   platform's shape naming the header, the last without the 100;
 * - a JSON body in UTF-16 or Latin-1, or bytes that are not UTF-8 (each stored as U+FFFD): 415
 *   naming `content-type` / 400 naming `body`; a gzip body and a zip bomb: 415 naming
 *   `content-encoding`, never inflated;
 * - Kafka: a number its double does not carry, and a byte that is not UTF-8 inside a string, are
 *   set aside like other poison (they were applied: an amount of 100.000000000000000000001 as 100).
 * Held and kept here: Node's refusals of Content-Length with Transfer-Encoding, two Content-Lengths,
 * obs-fold and `chunked, identity`; chunk extensions; HTTP/1.0 and absolute-form targets; a JSON
 * body with a BOM; a key given twice (the last wins, and it is the one validated); OPTIONS, HEAD,
 * TRACE and a Range header on every route; slow clients (408 at the receive timeout, others served);
 * an e-mail's one ASCII spelling (fullwidth, zero-width and override twins refused, case folded).
 */
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalog } from "../../services/src/catalog";
import { isInternalPath } from "../../services/src/kit";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import { kafkajs } from "../harness";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { newKeyHolder, portsOf, rawExchange, rawMe, rawRequest, type RawAnswer } from "../helpers/raw-http";
import { plausibleRequest } from "./cases";
import { rawJudged } from "./oracle";
import { committedPast, CONSUMERS, poisonFor, validMessage } from "./poison";

// A broker of its own: poison on the payments topic must not reach other files' consumers.
const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const SERVICES = ["api-gateway", "user-management", "order-management", "risk-analyzer", "notification-service", "billing-service", "revenue-analytics"];
const PASSWORD = "correct horse battery staple";
const RECEIVE_TIMEOUT_MS = 4_000;
let p: Platform;
let internalPorts: number[];
let token: string;
let apiKey: string;
const failures: string[] = [];

/** One exchange, judged: `label` names it in the failures. */
const sent = (label: string, url: string, parts: Parameters<typeof rawExchange>[1], waitMs?: number) => rawJudged(label, url, parts, { failures, internalPorts, waitMs });
const json = (a: RawAnswer) => JSON.parse(a.body);
/** The 4xx naming `field`, the connection's only answer. */
const refused = (a: RawAnswer, status: number, field: string, label: string) => expect([a.statuses, json(a).error.field], `${label}: ${a.all.slice(0, 300)}`).toEqual([[status], field]);
const request = rawRequest;
const me = rawMe;

beforeAll(async () => {
  // A receive timeout of 4 s (30 s in production): the slow clients below are cut off sooner.
  p = await startPlatform(srv.env, { REQUEST_RECEIVE_TIMEOUT_MS: String(RECEIVE_TIMEOUT_MS) }, { only: SERVICES });
  internalPorts = portsOf([srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL]);
  ({ token, apiKey } = await newKeyHolder(p.gatewayUrl, "framing", PASSWORD));
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

describe("headers", () => {
  it("a thousand small headers no longer strip the gateway's identity headers at the service: over 100 a 431 naming headers; at 100 the key's identity arrives whole", async () => {
    const padding = (n: number) => Array.from({ length: n }, (_, i) => `x-pad-${i}: ${i}`);
    // 990 to 998: each lost a different part of the identity (scopes, then the key's auth method, then all of it).
    for (const n of [990, 993, 994, 995, 998]) refused(await sent(`${n} headers`, p.gatewayUrl, [me(`x-api-key: ${apiKey}`, ...padding(n))]), 431, "headers", `${n} headers`);
    // Host, x-api-key, Connection and 97 more: 100, the entry point's most.
    const at = await sent("100 headers", p.gatewayUrl, [me(`x-api-key: ${apiKey}`, ...padding(97))]);
    expect(at.status, at.all.slice(0, 300)).toBe(200);
    expect([json(at).authMethod, json(at).scopes]).toEqual(["api-key", ["read"]]);
    refused(await sent("101 headers", p.gatewayUrl, [me(`x-api-key: ${apiKey}`, ...padding(98))]), 431, "headers", "101 headers");
    // A service behind the gateway takes twice as many (what the gateway adds), and refuses beyond.
    const direct = p.urls.get("user-management")!;
    expect((await sent("200 direct", direct, [request(["GET /health HTTP/1.1", "Host: um", ...padding(198), "Connection: close"].join("\r\n"))])).status).toBe(200);
    refused(await sent("201 direct", direct, [request(["GET /health HTTP/1.1", "Host: um", ...padding(199), "Connection: close"].join("\r\n"))]), 431, "headers", "201 direct");
    expect(failures).toEqual([]);
  });

  it("Host, Authorization, X-Api-Key, Content-Type, Content-Encoding and Idempotency-Key sent twice are a 400 naming the header; an HTTP/1.1 request without Host a 400 naming host", async () => {
    const twice: Array<[string, string[]]> = [
      ["host", ["Host: other"]],
      ["authorization", [`Authorization: Bearer ${token}`, "Authorization: Bearer a.b.c"]],
      ["x-api-key", [`x-api-key: ${apiKey}`, "X-Api-Key: atk_other"]],
      ["content-type", ["Content-Type: application/json", "content-type: text/plain"]],
      ["content-encoding", ["Content-Encoding: identity", "Content-Encoding: identity"]],
      ["idempotency-key", ["Idempotency-Key: a", "Idempotency-Key: b"]],
    ];
    for (const [field, lines] of twice) {
      // The first Authorization is the valid one: Node kept it, and a proxy reading the last saw another caller.
      const auth = field === "authorization" || field === "x-api-key" ? [] : [`Authorization: Bearer ${token}`];
      refused(await sent(`${field} twice`, p.gatewayUrl, [me(...auth, ...lines)]), 400, field, `${field} twice`);
    }
    refused(await sent("no Host", p.gatewayUrl, [request(`GET /api/users/me HTTP/1.1\r\nAuthorization: Bearer ${token}\r\nConnection: close`)]), 400, "host", "no Host");
    // HTTP/1.0 needs none; an absolute-form target is read by its path.
    expect((await sent("HTTP/1.0", p.gatewayUrl, [request(`GET /api/users/me HTTP/1.0\r\nAuthorization: Bearer ${token}`)])).status).toBe(200);
    expect((await sent("absolute-form", p.gatewayUrl, [me(`Authorization: Bearer ${token}`).replace("GET /api/", "GET http://elsewhere.example/api/")])).status).toBe(200);
    expect(failures).toEqual([]);
  });
});

describe("framing", () => {
  const login = (...lines: string[]) => ["POST /api/users/login HTTP/1.1", "Host: gw", "Content-Type: application/json", ...lines, "Connection: close"].join("\r\n");
  const creds = JSON.stringify({ email: "nobody@example.com", password: "x" });

  it("a transfer coding other than chunked alone is a 400 naming transfer-encoding; Node's refusals of smuggling shapes hold; chunk extensions are read", async () => {
    const chunked = `${creds.length.toString(16)};ext=1\r\n${creds}\r\n0\r\n\r\n`;
    for (const te of ["gzip, chunked", "deflate,chunked", "identity"]) refused(await sent(`TE ${te}`, p.gatewayUrl, [request(login(`Transfer-Encoding: ${te}`), chunked)]), 400, "transfer-encoding", `TE ${te}`);
    const node: Array<[string, string]> = [
      ["TE and CL", request(login("Content-Length: 4", "Transfer-Encoding: chunked"), chunked)],
      ["two CLs", request(login("Content-Length: 2", "Content-Length: 2"), "{}")],
      ["obs-fold", request(login("X-Folded: a\r\n b", `Content-Length: ${creds.length}`), creds)],
      ["chunked, identity", request(login("Transfer-Encoding: chunked, identity"), chunked)],
    ];
    for (const [label, bytes] of node) expect((await sent(label, p.gatewayUrl, [bytes])).statuses, label).toEqual([400]);
    // Read as chunked, the extension ignored: the login itself is refused (no such account).
    expect((await sent("chunk extension", p.gatewayUrl, [request(login("Transfer-Encoding: chunked"), chunked)])).status).toBe(401);
    expect(failures).toEqual([]);
  });

  it("Expect: 100-continue over the body limit is a 413 naming body without a 100 Continue; within it, 100 then the answer; another expectation a 417 naming expect", async () => {
    for (const url of [p.gatewayUrl, p.urls.get("user-management")!]) {
      const path = url === p.gatewayUrl ? "/api/users/login" : "/login";
      const head = (length: number) => request(login("Expect: 100-continue", `Content-Length: ${length}`).replace("/api/users/login", path));
      refused(await sent(`expect huge ${url}`, url, [head(1_000_000_000)]), 413, "body", `Expect with 1 GB at ${url}`);
      const small = await sent(`expect small ${url}`, url, [[head(creds.length), 300], creds]);
      expect(small.statuses, small.all.slice(0, 300)).toEqual([100, 401]);
      refused(await sent(`expect other ${url}`, url, [request(login("Expect: 200-ok", `Content-Length: ${creds.length}`).replace("/api/users/login", path), creds)]), 417, "expect", `Expect 200-ok at ${url}`);
    }
    expect(failures).toEqual([]);
  });
});

describe("JSON bodies: charsets, bytes, codings, BOM, repeated keys", () => {
  const register = (body: Buffer | string, ...lines: string[]) =>
    sent("register", p.gatewayUrl, [Buffer.concat([Buffer.from(request(["POST /api/users/register HTTP/1.1", "Host: gw", ...lines, `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close"].join("\r\n"))), Buffer.from(body)])]);
  const account = (name: string, displayName: string) => JSON.stringify({ email: `${name}-${randomBytes(3).toString("hex")}@example.com`, password: PASSWORD, displayName });
  const users = async () => Number((await p.pool.query("SELECT count(*) AS n FROM users")).rows[0].n);

  it("UTF-16 and Latin-1 bodies are a 415 naming content-type, bytes that are not UTF-8 a 400 naming body (each was stored as U+FFFD); gzip and a zip bomb a 415 naming content-encoding", async () => {
    const before = await users();
    const zoe = account("zoe", "Zo\u00eb");
    refused(await register(Buffer.from(zoe, "utf16le"), "Content-Type: application/json; charset=utf-16"), 415, "content-type", "UTF-16");
    refused(await register(Buffer.from(zoe, "latin1"), "Content-Type: application/json; charset=ISO-8859-1"), 415, "content-type", "Latin-1 declared");
    refused(await register(Buffer.from(zoe, "latin1"), "Content-Type: application/json"), 400, "body", "Latin-1 undeclared");
    refused(await register(Buffer.concat([Buffer.from(zoe.slice(0, -3)), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), "Content-Type: application/json"), 400, "body", "overlong UTF-8");
    refused(await register(gzipSync(zoe), "Content-Type: application/json", "Content-Encoding: gzip"), 415, "content-encoding", "gzip");
    // 100 MB of spaces inflate from ~100 KB: refused on its label, never inflated.
    const bomb = gzipSync(Buffer.concat([Buffer.from(zoe.slice(0, -1)), Buffer.alloc(100 * 1024 * 1024, 32), Buffer.from("}")]));
    refused(await register(bomb, "Content-Type: application/json", "Content-Encoding: gzip"), 415, "content-encoding", "zip bomb");
    refused(await register(zoe, "Content-Type: application/json", "Content-Encoding: gzip"), 415, "content-encoding", "plain labelled gzip");
    expect(await users()).toBe(before);
    // UTF-8 declared in any spelling, and a BOM (RFC 8259 lets a parser ignore it): taken.
    for (const [label, body, type] of [["utf-8", zoe, "application/json; charset=UTF-8"], ["quoted", account("q", "Zo\u00eb"), 'application/json; charset="utf8"'], ["BOM", `\ufeff${account("bom", "Zo\u00eb")}`, "application/json"]]) {
      const a = await register(body, `Content-Type: ${type}`);
      expect([label, a.status, json(a).user?.displayName]).toEqual([label, 201, "Zo\u00eb"]);
    }
    expect(failures).toEqual([]);
  });

  it("a key given twice: the last wins, and it is the value validated; __proto__ and constructor.prototype are a 400 naming body", async () => {
    const order = (body: string) =>
      sent("order", p.gatewayUrl, [request(["POST /api/orders/ HTTP/1.1", "Host: gw", `Authorization: Bearer ${token}`, "Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`, "Connection: close"].join("\r\n"), body)]);
    const base = '"symbol":"BTCUSDT","side":"buy","type":"limit","limitPrice":"100"';
    const last = await order(`{${base},"quantity":"1","quantity":"2"}`);
    expect([last.status, json(last).quantity]).toEqual([201, "2"]);
    const invalidFirst = await order(`{${base},"quantity":"-5","quantity":"3"}`);
    expect([invalidFirst.status, json(invalidFirst).quantity]).toEqual([201, "3"]);
    refused(await order(`{${base},"quantity":"3","quantity":"-5"}`), 400, "quantity", "invalid last");
    for (const [label, key] of [["__proto__", '"__proto__":{"quantity":"9"}'], ["constructor.prototype", '"constructor":{"prototype":{"quantity":"9"}}']]) {
      const a = await order(`{${base},"quantity":"1",${key}}`);
      refused(a, 400, "body", label);
      // Said as such (Fastify's message was "Body is not valid JSON").
      expect(json(a).error.message).toBe("Invalid body: a __proto__ or constructor.prototype key is not taken");
    }
    expect(json(await order(`{${base},"quantity":"1",}`)).error.message).toMatch(/not valid JSON/);
    expect(failures).toEqual([]);
  });
});

describe("methods and ranges on every route", () => {
  it("OPTIONS, HEAD, TRACE and a Range header on every public route through the gateway: no 5xx, no internal details, TRACE echoes nothing", async () => {
    let n = 0;
    for (const name of SERVICES.filter((s) => s !== "api-gateway")) {
      const segment = catalog.find((s) => s.name === name)!.route;
      for (const route of p.services.get(name)!.routes.filter((r) => !isInternalPath(r.url) && !r.url.startsWith("/api/docs"))) {
        const path = `/api/${segment}${plausibleRequest(route).path}`;
        // A Range on the reads only (a write route would be carried out).
        const tries: Array<[string, string[]]> = [["OPTIONS", []], ["HEAD", []], ["TRACE", ["X-Echo: echo-me"]], ...(route.method === "GET" ? [["GET", ["Range: bytes=0-3"]] as [string, string[]]] : [])];
        for (const [method, extra] of tries) {
          const a = await sent(`${method} ${path}`, p.gatewayUrl, [request([`${method} ${path} HTTP/1.1`, "Host: gw", `Authorization: Bearer ${token}`, ...extra, "Content-Length: 0", "Connection: close"].join("\r\n"))]);
          n++;
          if (method === "TRACE") expect(a.body, path).not.toMatch(/echo-me|Bearer/);
        }
      }
    }
    expect(n).toBeGreaterThan(100);
    expect(failures).toEqual([]);
  });
});

describe("slow clients and identities", () => {
  it("slowloris: 30 connections trickling headers and 10 trickling a body are each cut off with a 408 at the receive timeout, while others are served", async () => {
    const drip = (first: string, piece: string) => [[first, 500] as [string, number], ...Array.from({ length: 30 }, () => [piece, 500] as [string, number])];
    const t0 = Date.now();
    const slow = [
      ...Array.from({ length: 30 }, (_, i) => rawExchange(p.gatewayUrl, drip("GET /api/users/me HTTP/1.1\r\nHost: gw\r\n", `X-Drip-${i}: a\r\n`), 20_000)),
      ...Array.from({ length: 10 }, () => rawExchange(p.gatewayUrl, drip("POST /api/users/login HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", " "), 20_000)),
    ].map((x) => x.then((a) => ({ a, ms: Date.now() - t0 })));
    await new Promise((r) => setTimeout(r, 1_000));
    const served = await sent("beside the slow ones", p.gatewayUrl, [me(`Authorization: Bearer ${token}`)]);
    expect(served.status).toBe(200);
    for (const { a, ms } of await Promise.all(slow)) {
      expect([a.statuses, json(a).error.code], a.all.slice(0, 200)).toEqual([[408], "REQUEST_TIMEOUT"]);
      // Cut off near the timeout (Node checks its clock each second; a loaded machine is slower), long before the 15 s drip ends.
      expect(ms).toBeGreaterThanOrEqual(RECEIVE_TIMEOUT_MS);
      expect(ms).toBeLessThan(RECEIVE_TIMEOUT_MS + 8_000);
    }
  });

  it("an e-mail is one ASCII spelling in any case: fullwidth letters, a zero-width space, a direction override are a 400 naming email; upper case logs in and is taken", async () => {
    const email = `id-${randomBytes(3).toString("hex")}@example.com`;
    const post = (path: string, address: string) => fetch(`${p.gatewayUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: address, password: PASSWORD }) });
    expect((await post("/api/users/register", email)).status).toBe(201);
    for (const twin of [email.replace("id", "\uff49\uff44"), email.replace("id", "i\u200bd"), email.replace("id", "i\u202ed"), email.replace("id", "i\u0307d"), email.normalize("NFD").replace("i", "\u0131")]) {
      const r = await post("/api/users/register", twin);
      expect([r.status, ((await r.json()) as any).error?.field], twin).toEqual([400, "email"]);
    }
    expect((await post("/api/users/login", email.toUpperCase())).status).toBe(200);
    expect((await post("/api/users/register", email.toUpperCase())).status).toBe(409);
  });
});

describe("Kafka: numbers beyond a double and bytes that are not UTF-8", () => {
  it("are set aside by every consumer of the payments topic, which keeps consuming (the valid message after them is applied)", async () => {
    const topic = BUSINESS_TOPICS.payments;
    const poison = poisonFor(topic, "BTCUSDT").filter((m) => /beyond a double|inside a string/.test(m.name));
    expect(poison.map((m) => m.name)).toEqual(["invalid UTF-8 inside a string", "amount beyond a double", "ts beyond a double"]);
    const kafka = new kafkajs.Kafka({ brokers: p.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const producer = kafka.producer();
    const admin = kafka.admin();
    await producer.connect();
    await admin.connect();
    try {
      const key = `framing-${randomBytes(4).toString("hex")}`;
      const [meta] = await producer.send({ topic, messages: [...poison.map((m) => ({ key, value: m.value })), { key, value: JSON.stringify(validMessage(topic, "BTCUSDT")) }] });
      const first = Number(meta.baseOffset);
      const validOffset = first + poison.length;
      for (const { service, groupEnv } of CONSUMERS[topic]) {
        const groupId = p.env[groupEnv];
        await expect
          .poll(() => committedPast(admin, groupId, topic, meta.partition, validOffset), { timeout: 120_000, interval: 500 })
          .toBe(true);
        const rows = (await p.pool.query("SELECT msg_offset, reason FROM consumer_dead_letters WHERE consumer_group = $1 AND topic = $2 AND msg_partition = $3 AND msg_offset BETWEEN $4 AND $5 ORDER BY msg_offset", [groupId, topic, meta.partition, first, validOffset])).rows;
        expect(rows.map((r) => Number(r.msg_offset)), service).toEqual([first, first + 1, first + 2]);
        // Each named where it is written (both parse to 100, as the valid amount does: ts was named amount before).
        expect(rows.map((r) => r.reason).join(" | "), service).toMatch(/not UTF-8.*amount: a number a double does not carry exactly.*ts: a number a double does not carry exactly/);
      }
    } finally {
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  }, 300_000);
});
