/**
 * Session 51's hostile round on session 50's additions, on real servers through the gateway (fetch,
 * or byte for byte on the socket: tests/helpers/raw-http.ts), every answer judged by ./oracle.ts:
 * - a Host header that is no `host[:port]` (userinfo, two ports, a port past 65535, a space, a
 *   path, non-ASCII, empty) was taken by the gateway and every service (RFC 9112 §3.2: a 400).
 *   Now a 400 naming `host` (kit request-framing.ts hostIssue);
 * - a non-zero number literal below the smallest double (`1e-400`: JSON.parse reads 0) was taken as 0
 *   where 0 is allowed (a strategy's minRegimeAgreement), and refused as 0 where it is not. Now a 400
 *   naming the field, in bodies and Kafka messages alike (kit exact-number.ts beyondDouble, json-text.ts).
 * - a body sent to a route without a body schema was parsed and ignored: `DELETE
 *   /namespaces/:ns/keys/:key {"expectedVersion":1}` deleted the key at version 2, `POST /reconcile
 *   {"dryRun":true}` reconciled. Now a 400 naming its first field, or `body` (kit unread-bodies.ts);
 * Held and kept here: payment-service's POST /refund-issues/:id/resolve against ids that are no
 * UUID (huge, unicode, `..`, encoded slashes, NUL), notes of every type, size, NUL and lone
 * surrogates, duplicate keys, numbers past a double, other content types, every other method,
 * HEAD/OPTIONS, X-HTTP-Method-Override, the list's query at its bounds; eight resolves of one issue
 * at once (one 200, seven 409) and a resolve racing the reconciler's record and resolve; API keys of
 * an admin (reads only: the resolve needs a session), a demoted admin, a disabled user; concurrent
 * evaluations of one strategy by a trade key (one evaluation, the same decisions, one evaluationId).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { PUSHED_WITHIN_MS } from "../helpers/patience";
import { portsOf, rawRequest } from "../helpers/raw-http";
import { judge, rawJudged, sendJudged, type JudgedAnswer } from "./oracle";
import { RefundIssues } from "../../services/src/services/payment-service/refund-issues";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
const PASSWORD = "correct horse battery staple";
const ADMIN = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
let p: Platform;
let internalPorts: number[];
let admin: string;
const failures: string[] = [];

/** One request through the gateway, judged; `token` a Bearer token (default the admin's), `key` an API key instead. */
function gw(method: string, path: string, o: { token?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<JudgedAnswer> {
  const auth: Record<string, string> = o.key ? { "x-api-key": o.key } : { authorization: `Bearer ${o.token ?? admin}` };
  // (a header given as "" is not sent: an anonymous request)
  const headers = Object.fromEntries(Object.entries({ ...auth, ...o.headers }).filter(([, v]) => v !== ""));
  return sendJudged(`${p.gatewayUrl}${path}`, method, { headers, body: o.body, failures, internalPorts });
}
/** A POST of `body` as written (JSON text, not stringified), judged. */
async function rawBody(path: string, body: string, type = "application/json"): Promise<JudgedAnswer> {
  const r = await fetch(`${p.gatewayUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": type }, body });
  const text = await r.text();
  const v = judge(r.status, text, r.headers.get("content-type"), internalPorts);
  if (!v.ok) failures.push(`POST ${path} ${body.slice(0, 80)} -> ${r.status} [${v.problems.join(", ")}] ${text.slice(0, 160)}`);
  return { status: r.status, json: text ? JSON.parse(text) : undefined, text };
}
/** The status and the field its error names. */
const answer = (r: JudgedAnswer) => [r.status, r.json?.error?.field];

beforeAll(async () => {
  p = await startPlatform(srv.env, { BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password }, { only: ["api-gateway", "user-management", "payment-service", "ai-orchestrator", "configuration-service"] });
  internalPorts = portsOf([srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL]);
  admin = (await gw("POST", "/api/users/login", { body: ADMIN, headers: { authorization: "" } })).json.accessToken;
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

/** An open `not_found` refund issue of a new payment, as the reconciler records one: its id. */
async function openIssue(): Promise<{ id: string; intentId: string; processorRefundId: string }> {
  const intentId = randomUUID();
  await p.pool.query(
    "INSERT INTO pay_intents (intent_id, user_id, idempotency_key, request_hash, amount, currency, payment_method, status, processor, origin) VALUES ($1, $2, $3, 'h', 1000, 'usd', 'pm', 'succeeded', 'fake', 'client')",
    [intentId, randomUUID(), randomUUID()],
  );
  const processorRefundId = `re_${randomBytes(6).toString("hex")}`;
  const { rows } = await p.pool.query("INSERT INTO pay_refund_issues (issue_key, kind, intent_id, processor_refund_id, amount) VALUES ($1, 'not_found', $2, $3, 1000) RETURNING issue_id", [`not_found:processor/${processorRefundId}`, intentId, processorRefundId]);
  return { id: rows[0].issue_id, intentId, processorRefundId };
}
const resolvePath = (id: string) => `/api/payments/refund-issues/${id}/resolve`;
const NOTE = { note: "checked on the processor's dashboard" };

describe("Host", () => {
  it("a value that is no host[:port] is a 400 naming host, at the gateway and a service behind it; a name, an address and a bracketed IPv6 address with a port are taken", async () => {
    const get = (url: string, host: string) => rawJudged(`Host ${JSON.stringify(host)}`, url, [rawRequest(["GET /health HTTP/1.1", `Host: ${host}`, "Connection: close"].join("\r\n"))], { failures, internalPorts });
    for (const url of [p.gatewayUrl, p.urls.get("payment-service")!]) {
      for (const host of ["user:pw@gw", "gw:80:80", "gw:99999", "gw:65536", "gw gw", "gw/x", "gw?x", "gw#x", "[::1", "[gw]:80", "\u00e9.example", "gw:8o", ""]) {
        const a = await get(url, host);
        expect([a.statuses, JSON.parse(a.body || "{}").error?.field], `${url} Host ${JSON.stringify(host)}: ${a.all.slice(0, 200)}`).toEqual([[400], "host"]);
      }
      for (const host of ["gw", "Gw.Example.", "api.example.com:443", "127.0.0.1:8080", "[::1]:8080", "[2001:db8::1]", "gw:65535", "my-svc.ns.svc.cluster.local:80"]) {
        expect((await get(url, host)).status, `${url} Host ${host}`).toBe(200);
      }
    }
    expect(failures).toEqual([]);
  });
});

describe("numbers below a double's range", () => {
  it("a non-zero literal a double holds as 0 (1e-400) is a 400 naming the field: it was taken as 0 where 0 is allowed, and refused as 0 where it is not", async () => {
    const email = `zed-${randomBytes(3).toString("hex")}@example.com`;
    await gw("POST", "/api/users/register", { body: { email, password: PASSWORD }, headers: { authorization: "" } });
    const token = (await gw("POST", "/api/users/login", { body: { email, password: PASSWORD }, headers: { authorization: "" } })).json.accessToken as string;
    const strategy = '{"name":"tiny","symbols":["BTCUSDT"],"buyAbove":0.6,"sellBelow":0.4,"orderQuantity":1,"maxPosition":10,"stopLoss":100';
    const post = async (extra: string) => {
      const r = await fetch(`${p.gatewayUrl}/api/ai/strategies`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: `${strategy}${extra}}` });
      return { status: r.status, json: (await r.json()) as any };
    };
    for (const [extra, field] of [[',"minRegimeAgreement":1e-400', "minRegimeAgreement"], [',"minRegimeAgreement":-2.5E-999', "minRegimeAgreement"], [',"stopLoss":1e-324', "stopLoss"]]) {
      const r = await post(extra);
      expect([r.status, r.json.error?.field], `${extra}: ${JSON.stringify(r.json).slice(0, 200)}`).toEqual([400, field]);
    }
    // Zero spelled as such, and the smallest doubles (their writers' spelling), are taken.
    for (const extra of [',"minRegimeAgreement":0e-400', ',"minRegimeAgreement":0.0E+999', ',"minRegimeAgreement":5e-324']) expect((await post(extra)).status, extra).toBe(201);
    expect(failures).toEqual([]);
  });
});

describe("a body sent to a route that takes none", () => {
  it("is a 400 naming its first field, or body (it was ignored: a DELETE's expectedVersion in the body deleted whatever the version); none, {} and null are taken", async () => {
    const key = `/api/config/namespaces/h7-${randomBytes(3).toString("hex")}/keys/limit`;
    for (const value of [1, 2]) expect((await gw("PUT", key, { body: { value } })).status).toBeLessThan(300);
    const { id: strategy } = { id: (await gw("POST", "/api/ai/strategies", { body: { name: "quiet", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100 } })).json.strategyId as string };
    const sent: Array<[string, string, string, string, string]> = [
      ["DELETE", key, '{"expectedVersion":1}', "application/json", "expectedVersion"],
      ["POST", "/api/payments/reconcile", '{"dryRun":true}', "application/json", "dryRun"],
      ["POST", `/api/ai/strategies/${strategy}/disable`, '{"reason":"quiet","enabled":true}', "application/json", "reason"],
      ["POST", `/api/ai/strategies/${strategy}/enable`, "[1]", "application/json", "body"],
      ["POST", `/api/ai/strategies/${strategy}/enable`, "enable it", "text/plain", "body"],
    ];
    for (const [method, path, body, type, field] of sent) {
      const r = await fetch(`${p.gatewayUrl}${path}`, { method, headers: { authorization: `Bearer ${admin}`, "content-type": type }, body });
      const text = await r.text();
      expect([r.status, JSON.parse(text).error?.field], `${method} ${path} ${body}: ${text.slice(0, 200)}`).toEqual([400, field]);
    }
    // The key is still there at version 2; the strategy as it was.
    expect((await gw("GET", key)).json).toMatchObject({ version: 2, value: 2 });
    expect((await gw("GET", `/api/ai/strategies/${strategy}`)).json.enabled).toBe(false);
    // Nothing, {} or null: taken.
    expect((await gw("POST", `/api/ai/strategies/${strategy}/enable`, { body: {} })).json.enabled).toBe(true);
    expect((await rawBody(`/api/ai/strategies/${strategy}/disable`, "null")).json.enabled).toBe(false);
    expect((await gw("DELETE", `${key}?expectedVersion=2`)).status).toBe(200);
    expect(failures).toEqual([]);
  });
});

describe("payment-service POST /refund-issues/:id/resolve (held)", () => {
  it("ids that are no UUID, notes of every type and size, other content types and methods: each a 4xx naming its part; the issue stays open", async () => {
    const { id } = await openIssue();
    // [segment as sent, status, field]: fetch resolves `%2e%2e` itself (the gateway resolves the raw `..`: races.test.ts).
    for (const [segment, status, field] of [
      ["x", 400, "id"], ["0".repeat(10_000), 414, "url"], ["\u00e9", 400, "id"], ["%2F", 400, "id"], ["%00", 400, "*"], [`{${id}}`, 400, "id"], [`urn:uuid:${id}`, 400, "id"],
      [id.replace(/-/g, ""), 400, "id"], [`${id}%20`, 400, "id"], [`${id}%00`, 400, "*"], ["%ff", 400, "url"], ["%", 400, "url"], ["%C0%AF", 400, "url"], ["%ED%A0%80", 400, "url"], ["..%2F..%2Fledger", 404, undefined],
    ] as Array<[string, number, string | undefined]>) {
      expect(answer(await gw("POST", resolvePath(segment), { body: NOTE })), segment.slice(0, 40)).toEqual([status, field]);
    }
    for (const [label, body, field] of [
      ["a number", '{"note":5}', "note"], ["null", '{"note":null}', "note"], ["an array", '{"note":["abc"]}', "note"], ["an object", '{"note":{"a":1}}', "note"], ["none", "{}", "note"],
      ["NUL", '{"note":"ab\\u0000c"}', "note"], ["a lone surrogate", '{"note":"ab\\ud800c"}', "note"], ["a NUL given last", '{"note":"abc","note":"\\u0000"}', "note"],
      ["1,001 characters", JSON.stringify({ note: "a".repeat(1_001) }), "note"], ["2 characters", '{"note":"ab"}', "note"], ["another key", '{"note":"abc","x":1}', "x"],
      ["past a double", '{"note":"abc","n":1e400}', "n"], ["inexact", '{"note":"abc","n":100000000000000000001}', "n"], ["__proto__", '{"note":"abc","__proto__":{"x":1}}', "body"],
      ["not JSON", "abc", "body"], ["2 MB", JSON.stringify({ note: "a".repeat(2_000_000) }), "body"],
    ] as Array<[string, string, string]>) {
      const r = await rawBody(resolvePath(id), body);
      expect([r.status >= 400 && r.status < 500, r.json?.error?.field], `${label}: ${r.text.slice(0, 200)}`).toEqual([true, field]);
    }
    for (const type of ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/merge-patch+json", "application/json; charset=latin1"]) {
      expect(answer(await rawBody(resolvePath(id), JSON.stringify(NOTE), type)), type).toEqual([415, "content-type"]);
    }
    for (const method of ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) expect((await gw(method, resolvePath(id))).status, method).toBe(404);
    expect((await gw("GET", resolvePath(id), { headers: { "x-http-method-override": "POST" } })).status).toBe(404);
    for (const [query, field] of [["status=open&status=all", "status"], ["status=OPEN", "status"], ["limit=0", "limit"], ["limit=501", "limit"], ["limit=1e2", "limit"], ["limit=99999999999999999999", "limit"], ["status[]=open", "status[]"], ["limit=%20100", "limit"]]) {
      expect(answer(await gw("GET", `/api/payments/refund-issues?${query}`)), query).toEqual([400, field]);
    }
    expect((await gw("GET", "/api/payments/refund-issues?status=all&limit=500")).status).toBe(200);
    expect((await p.pool.query("SELECT resolved_at FROM pay_refund_issues WHERE issue_id = $1", [id])).rows[0].resolved_at).toBeNull();
    expect(failures).toEqual([]);
  });
});

describe("races and credentials on the resolve (held)", () => {
  it("eight resolves of one issue at once: one 200, seven 409 naming id; a resolve racing the reconciler's record and resolve ends as whichever closed it first", async () => {
    const { id } = await openIssue();
    const all = await Promise.all(Array.from({ length: 8 }, () => gw("POST", resolvePath(id), { body: NOTE })));
    expect(all.map(answer).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([[200, undefined], ...Array(7).fill([409, "id"])]);
    const adminId = (await p.pool.query("SELECT id FROM users WHERE email = $1", [ADMIN.email])).rows[0].id;
    const issues = new RefundIssues(p.services.get("payment-service")!.app.pg, { error() {}, info() {} } as never);
    const pg = p.services.get("payment-service")!.app.pg;
    for (let round = 0; round < 12; round++) {
      const { id: issueId, intentId, processorRefundId } = await openIssue();
      const of = { refundId: null, processorRefundId };
      const [closed] = await Promise.all([
        gw("POST", resolvePath(issueId), { body: NOTE }),
        round % 2 ? issues.resolve(pg, "not_found", of) : issues.record(pg, { kind: "not_found", intentId, ...of, amount: 1000n, processorStatus: null }),
        issues.record(pg, { kind: "not_found", intentId, ...of, amount: 1000n, processorStatus: null }),
      ]);
      const row = (await p.pool.query("SELECT resolved_at, resolved_by, resolution_note FROM pay_refund_issues WHERE issue_id = $1", [issueId])).rows[0];
      // The operator's close stands whatever came after; a 409 only when the service closed it first.
      if (closed.status === 200) expect([row.resolved_by, row.resolved_at === null, row.resolution_note], `round ${round}`).toEqual([adminId, false, NOTE.note]);
      else expect([answer(closed), row.resolved_by], `round ${round}: ${closed.text}`).toEqual([[409, "id"], null]);
    }
    expect(failures).toEqual([]);
  });

  it("an admin's API keys read the issues but never resolve one (a session is needed); demoted, the key and token lose them; a disabled user's token is refused", async () => {
    const post = (path: string, body: unknown, token?: string) => gw("POST", path, { body, headers: token ? { authorization: `Bearer ${token}` } : { authorization: "" } });
    const account = async (name: string) => {
      const email = `${name}-${randomBytes(3).toString("hex")}@example.com`;
      const id = (await post("/api/users/register", { email, password: PASSWORD })).json.user.id as string;
      return { id, email, token: (await post("/api/users/login", { email, password: PASSWORD })).json.accessToken as string };
    };
    const erin = await account("erin");
    expect((await gw("PUT", `/api/users/admin/users/${erin.id}/role`, { body: { role: "admin" } })).status).toBe(200);
    const token = (await post("/api/users/login", { email: erin.email, password: PASSWORD })).json.accessToken as string;
    const keys = await Promise.all([["read"], ["read", "trade"]].map(async (scopes) => (await post("/api/users/api-keys", { name: scopes.join("+"), scopes }, token)).json.key as string));
    for (const key of keys) {
      expect((await gw("GET", "/api/payments/refund-issues", { key })).status).toBe(200);
      const r = await gw("POST", resolvePath((await openIssue()).id), { key, body: NOTE });
      expect([...answer(r), r.json.error.code]).toEqual([403, "scope", "SESSION_REQUIRED"]);
    }
    expect((await gw("POST", resolvePath((await openIssue()).id), { token, body: NOTE })).json.resolvedBy).toBe(erin.id);
    // Her token from before she was an admin was ended by the role change.
    expect((await gw("GET", "/api/payments/refund-issues", { token: erin.token })).status).toBe(401);
    expect((await gw("PUT", `/api/users/admin/users/${erin.id}/role`, { body: { role: "trader" } })).status).toBe(200);
    const open = (await openIssue()).id;
    await expect.poll(async () => Promise.all(keys.map(async (key) => (await gw("GET", "/api/payments/refund-issues", { key })).status)), { timeout: PUSHED_WITHIN_MS }).toEqual([403, 403]);
    expect((await gw("POST", resolvePath(open), { token, body: NOTE })).status).toBe(401);
    const dave = await account("dave");
    expect((await gw("POST", `/api/users/admin/users/${dave.id}/disable`)).status).toBe(200);
    expect([(await gw("GET", "/api/ai/strategies", { token: dave.token })).status, (await gw("GET", "/api/payments/refund-issues", { token: dave.token })).status]).toEqual([401, 401]);
    expect((await p.pool.query("SELECT resolved_at FROM pay_refund_issues WHERE issue_id = $1", [open])).rows[0].resolved_at).toBeNull();
    expect(failures).toEqual([]);
  });
});

describe("ai-orchestrator: evaluations waited for (held)", () => {
  it("four evaluations of one strategy at once by a trade key: each caller the decisions of the one it joined, each recorded once; HEAD and OPTIONS are 404", async () => {
    const email = `tess-${randomBytes(3).toString("hex")}@example.com`;
    await gw("POST", "/api/users/register", { body: { email, password: PASSWORD }, headers: { authorization: "" } });
    const token = (await gw("POST", "/api/users/login", { body: { email, password: PASSWORD }, headers: { authorization: "" } })).json.accessToken as string;
    const key = (await gw("POST", "/api/users/api-keys", { token, body: { name: "bot", scopes: ["read", "trade"] } })).json.key as string;
    const strategy = { name: "h7", symbols: ["BTCUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100, enabled: true };
    const id = (await gw("POST", "/api/ai/strategies", { key, body: strategy })).json.strategyId as string;
    const answers = await Promise.all(Array.from({ length: 4 }, () => gw("POST", `/api/ai/strategies/${id}/evaluate`, { key })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    // Those arriving while one runs get its answer (a fast evaluation may end before the last arrives: then another runs).
    const byEvaluation = new Map<string, string>();
    for (const a of answers) {
      const ids = new Set(a.json.decisions.map((d: { evaluationId: string }) => d.evaluationId));
      expect(ids.size, a.text.slice(0, 200)).toBe(1);
      const [evaluationId] = ids as Set<string>;
      const seen = byEvaluation.get(evaluationId);
      if (seen) expect(a.text).toBe(seen);
      byEvaluation.set(evaluationId, a.text);
    }
    // Each evaluation recorded its decision (one symbol) once, and no other was recorded.
    const recorded = (await p.pool.query("SELECT evaluation_id FROM ai_decisions WHERE strategy_id = $1", [id])).rows.map((r) => r.evaluation_id).sort();
    expect(recorded).toEqual([...byEvaluation.keys()].sort());
    const evaluate = `/api/ai/strategies/${id}/evaluate`;
    expect([(await gw("HEAD", evaluate, { key })).status, (await gw("OPTIONS", evaluate, { token })).status]).toEqual([404, 404]);
    // OPTIONS is neither a read nor a trade write: a key is told it needs a session (key-scopes.ts).
    expect((await gw("OPTIONS", evaluate, { key })).json.error).toMatchObject({ code: "SESSION_REQUIRED", field: "scope" });
    expect(failures).toEqual([]);
  });
});
