/**
 * The gateway's edge against real servers (PostgreSQL, Redis as Dragonfly, HTTP over loopback):
 * trusted proxies and the rate-limit key, malformed URLs, deep JSON, unstorable text, revocation
 * within a second (disable, delete, role change, logout everywhere, API keys), internal routes,
 * API-key guessing, the whole-request timeout, strict market data prices.
 */
import { createServer, type Server } from "node:http";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { PUSHED_WITHIN_MS } from "../helpers/patience";
import { startRedis, pg, type RedisServer } from "../harness";
import { ConfigError, createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";
import configurationService from "../../services/src/services/configuration-service";
import dataBridge from "../../services/src/services/data-bridge";

const srv = useServers("postgres");
const JWT_SECRET = randomBytes(64).toString("hex");
const ADMIN = { email: "edge-admin@example.com", password: "admin-password-123!" };
const PASSWORD = "correct horse battery";
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let um: Service;
let cfgSvc: Service;
let gw: Service;
let umUrl: string;
let gwUrl: string;
let hang: Server;
let hangUrl: string;
let gwEnv: Record<string, string>;
const extra: Service[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  const base = { ...srv.postgres.env, DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent" };
  um = await createService(userManagement, { env: { ...base, BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password }, defaultMetrics: false });
  umUrl = await um.listen({ port: 0, host: "127.0.0.1" });
  cfgSvc = await createService(configurationService, { env: base, defaultMetrics: false });
  const cfgUrl = await cfgSvc.listen({ port: 0, host: "127.0.0.1" });
  // An upstream that accepts connections and never answers (for the whole-request timeout).
  hang = createServer(() => undefined);
  await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
  hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
  gwEnv = { DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: umUrl, SERVICE_CONFIGURATION_SERVICE_URL: cfgUrl, SERVICE_RISK_ANALYZER_URL: hangUrl };
  gw = await createService(apiGateway, { env: { ...gwEnv, RATE_LIMIT_MAX_REQUESTS: "100000" }, defaultMetrics: false });
  gwUrl = await gw.listen({ port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  for (const s of [...extra, gw, cfgSvc, um]) await s?.close().catch(() => undefined);
  hang?.closeAllConnections();
  hang?.close();
  await pool?.end();
  await redis?.stop();
});

type Json = Record<string, any>;
async function http(method: string, url: string, o: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const payload = o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
  if (payload !== undefined) headers["content-type"] ??= "application/json";
  const r = await fetch(url, { method, headers, body: payload });
  const text = await r.text();
  let body: Json = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { text };
  }
  return { status: r.status, headers: r.headers, body, text };
}
const api = (method: string, path: string, o: Parameters<typeof http>[2] = {}) => http(method, `${gwUrl}${path}`, o);

async function user(name: string) {
  const email = `${name}-${randomBytes(3).toString("hex")}@example.com`;
  const reg = await api("POST", "/api/users/register", { body: { email, password: PASSWORD } });
  expect(reg.status, reg.text).toBe(201);
  const login = await api("POST", "/api/users/login", { body: { email, password: PASSWORD } });
  expect(login.status).toBe(200);
  return { id: reg.body.user.id as string, email, token: login.body.accessToken as string, refresh: login.body.refreshToken as string };
}
async function adminToken(): Promise<string> {
  const r = await api("POST", "/api/users/login", { body: ADMIN });
  expect(r.status).toBe(200);
  return r.body.accessToken;
}

/** Polls `fn` until it returns true; the elapsed milliseconds, or fails after `limitMs`. */
/** How long a revocation may take to reach the gateway (pushed: milliseconds; a hang guard, tests/helpers/patience.ts). */
const REVOKED_WITHIN_MS = PUSHED_WITHIN_MS;
async function within(limitMs: number, fn: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 <= limitMs) {
    if (await fn()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not within ${limitMs} ms`);
}

/**
 * How long a raw connection must stay silent to be taken as done (kept alive, nothing more to come):
 * a loaded machine can hold a second answer, or the server's close after its answer, a second.
 */
const QUIET_MS = 3_000;

// Generous bounds: each case starts a gateway, and the suite must pass on a loaded machine.
describe("TRUST_PROXY: explicit proxies only, rate limit keyed by the real client", { timeout: 300_000 }, () => {
  it("refuses hop counts, true and malformed entries, naming the key", async () => {
    for (const bad of ["1", "true", "10.0.0.0/33", "nginx", "10.0.0.1/4", "10.0.0.1/8/2"]) {
      const err = await createService(apiGateway, { env: { ...gwEnv, TRUST_PROXY: bad }, defaultMetrics: false }).catch((e) => e);
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect(String(err.message), bad).toContain("TRUST_PROXY");
    }
  });

  it("behind a trusted proxy each client has its own bucket, and a forged X-Forwarded-For does not choose it", async () => {
    const limited = await createService(apiGateway, { env: { ...gwEnv, TRUST_PROXY: "127.0.0.1/32", RATE_LIMIT_MAX_REQUESTS: "3", RATE_LIMIT_WINDOW_MS: "600000" }, defaultMetrics: false });
    extra.push(limited);
    const url = await limited.listen({ port: 0, host: "127.0.0.1" });
    // What Nginx sends: the client's own header, then the address Nginx saw ($proxy_add_x_forwarded_for).
    // An anonymous request the gateway answers itself (401 after the rate limit): no password hashing.
    const login = (xff: string) => http("GET", `${url}/api/users/me`, { headers: { "x-forwarded-for": xff } });
    const a = [];
    for (let i = 0; i < 4; i++) a.push((await login(`198.51.100.${i}, 203.0.113.7`)).status);
    expect(a.slice(0, 3)).not.toContain(429);
    expect(a[3]).toBe(429); // the client forged a different first entry each time: same bucket
    expect((await login("203.0.113.8")).status).not.toBe(429); // another real client
  });

  it("without TRUST_PROXY, X-Forwarded-For is ignored (the peer address is the client)", async () => {
    const limited = await createService(apiGateway, { env: { ...gwEnv, RATE_LIMIT_MAX_REQUESTS: "2", RATE_LIMIT_WINDOW_MS: "600000" }, defaultMetrics: false });
    extra.push(limited);
    const url = await limited.listen({ port: 0, host: "127.0.0.1" });
    const s = [];
    for (let i = 0; i < 3; i++) s.push((await http("GET", `${url}/api/users/me`, { headers: { "x-forwarded-for": `192.0.2.${i}` } })).status);
    expect(s[2]).toBe(429);
  });
});

describe("malformed requests get a 4xx JSON answer", { timeout: 300_000 }, () => {
  it("malformed percent-encoding in path or query through the gateway", async () => {
    const u = await user("pct");
    for (const path of ["/api/users/me?x=%zz", "/api/users/me?x=%", "/api/users/%E0%A4%A", "/api/users/me%", "/api/config/namespaces/a?x=%ff%fe", "/api/users/%c0%af"]) {
      const r = await api("GET", path, { token: u.token });
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      expect(r.body.error?.code, path).toBeTruthy();
    }
  });

  it("JSON nested 5,000 deep: 400 by depth, directly and through the gateway", async () => {
    const deep = "[".repeat(5000) + "]".repeat(5000);
    const deepObj = '{"a":'.repeat(5000) + "1" + "}".repeat(5000);
    for (const raw of [deep, deepObj, `{"email":${deep}}`]) {
      const direct = await http("POST", `${umUrl}/login`, { raw });
      expect(direct.status).toBe(400);
      expect(direct.body.error.message).toContain("nested deeper");
      const via = await api("POST", "/api/users/login", { raw });
      expect(via.status).toBe(400);
    }
    // strings full of brackets are not nesting
    const ok = await api("POST", "/api/users/login", { body: { email: "[".repeat(100) + "@x.io", password: "{".repeat(100) } });
    expect(ok.status).toBe(400);
    expect(ok.body.error.field).toBe("email");
  });

  it("prototype pollution keys are refused", async () => {
    const r = await api("POST", "/api/users/login", { raw: '{"email":"a@b.co","password":"x","__proto__":{"role":"admin"}}' });
    expect(r.status).toBe(400);
    const c = await api("POST", "/api/users/login", { raw: '{"email":"a@b.co","password":"x","constructor":{"prototype":{"role":"admin"}}}' });
    expect(c.status).toBe(400);
  });

  it("config values with NUL or lone surrogates: 400 naming the key", async () => {
    const admin = await adminToken();
    for (const [value, field] of [["a\u0000b", "value"], [{ nested: { bad: "x\ud800" } }, "value.nested.bad"], [["ok", "\udc00"], "value.1"], [{ ["k\u0000"]: 1 }, "value.k?"]] as const) {
      const r = await api("PUT", "/api/config/namespaces/edge/keys/limit", { token: admin, body: { value } });
      expect(r.status, JSON.stringify(value)).toBe(400);
      expect(r.body.error.field).toBe(field);
    }
    const q = await api("GET", "/api/config/namespaces/edge/audit?limit=%00", { token: admin });
    expect(q.status).toBe(400);
    const p = await api("GET", "/api/config/namespaces/ed%00ge", { token: admin });
    expect(p.status).toBe(400);
    const good = await api("PUT", "/api/config/namespaces/edge/keys/limit", { token: admin, body: { value: "a\ud83d\ude00b" } });
    expect(good.status).toBe(201);
  });
});

describe("the gateway's security headers", { timeout: 300_000 }, () => {
  it("are on every answer (proxied, refused, not found, its own health) once each, whatever the upstream sent", async () => {
    const u = await user("headers");
    const answers = await Promise.all([
      api("GET", "/api/users/me", { token: u.token }),
      api("GET", "/api/users/me"),
      api("GET", "/api/nowhere"),
      api("GET", "/nowhere"),
      api("GET", "/api/health"),
    ]);
    for (const r of answers) {
      expect(r.headers.get("strict-transport-security")).toBe("max-age=63072000");
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
      expect(r.headers.get("x-frame-options")).toBe("DENY");
      expect(r.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });
});

describe("raw HTTP oddities at the gateway's socket", { timeout: 300_000 }, () => {
  /** Sends `raw` on a fresh connection; resolves with the status lines of every answer ([] if it only closed). */
  function rawRequest(raw: string): Promise<string[]> {
    const { hostname, port } = new URL(gwUrl);
    return new Promise((resolve) => {
      const s = net.connect(Number(port), hostname, () => s.write(raw));
      let got = "";
      let quiet: NodeJS.Timeout | undefined;
      // A kept-alive connection stays open: done once nothing more has come for QUIET_MS.
      s.on("data", (d) => {
        got += d;
        clearTimeout(quiet);
        quiet = setTimeout(() => s.destroy(), QUIET_MS);
      });
      s.on("error", () => undefined);
      s.on("close", () => {
        clearTimeout(quiet);
        resolve(got.match(/^HTTP\/\d\.\d \d{3}[^\r]*/gm) ?? []);
      });
      // Generous: the first answer may be slow on a loaded machine; nothing waits this long when it is not.
      setTimeout(() => s.destroy(), 60_000).unref();
    });
  }

  it("answers each with a 4xx (or closes), never a 5xx, and reaches no upstream it should not", async () => {
    const u = await user("raw");
    const auth = `Authorization: Bearer ${u.token}\r\n`;
    const cases: Array<[string, string]> = [
      ["absolute-form URL to another host", `GET http://evil.example/api/users/me HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      ["absolute-form URL to an internal path", `GET http://x/api/users/internal/users HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      ["asterisk-form OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n"],
      ["HTTP/1.0 without Host", `GET /api/users/me HTTP/1.0\r\n${auth}\r\n`],
      ["HTTP/1.1 without Host", `GET /api/users/me HTTP/1.1\r\n${auth}\r\n`],
      ["two Hosts", `GET /api/users/me HTTP/1.1\r\nHost: a\r\nHost: b\r\n${auth}\r\n`],
      ["obs-fold header", `GET /api/users/me HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n${auth}\r\n`],
      ["two Content-Lengths", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"],
      ["Content-Length and chunked", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"],
      ["bad chunk size", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"],
      ["chunked, then a smuggled request", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/users/internal/users HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["Transfer-Encoding: identity, chunked", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n"],
      ["tab in the request line", `GET\t/api/users/me HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      ["lower-case method", `get /api/users/me HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      ["unknown method", `BREW /api/users/me HTTP/1.1\r\nHost: x\r\n${auth}\r\n`],
      ["HTTP/2 preface on HTTP/1.1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
      ["HTTP/9.9", "GET /api/health HTTP/9.9\r\nHost: x\r\n\r\n"],
      ["NUL in a header value", `GET /api/users/me HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n${auth}\r\n`],
      ["bare LF line endings", `GET /api/users/me HTTP/1.1\nHost: x\n${auth.replace("\r\n", "\n")}\n`],
      ["2,000 headers", `GET /api/users/me HTTP/1.1\r\nHost: x\r\n${"X-H: 1\r\n".repeat(2_000)}${auth}\r\n`],
      ["a 20 KB header", `GET /api/users/me HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n${auth}\r\n`],
      ["Upgrade: websocket", `GET /api/users/me HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${auth}\r\n`],
      ["Expect: 100-continue with no body", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"],
      ["Expect: something else", "POST /api/users/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n{}"],
    ];
    const answers = await Promise.all(cases.map(async ([name, raw]) => [name, await rawRequest(raw)] as const));
    for (const [name, lines] of answers) {
      for (const line of lines) expect(line, name).not.toMatch(/^HTTP\/\d\.\d 5/);
      // A client asked for /internal: never answered by the upstream (a 2xx would mean it was proxied).
      if (name.includes("internal") || name.includes("smuggled")) for (const line of lines) expect(line, name).not.toMatch(/^HTTP\/\d\.\d 2/);
    }
    // The request hidden after a chunked body is never served (here the connection closes after the
    // first answer, a 400 for the empty JSON body).
    expect(answers.find(([n]) => n.includes("smuggled"))![1][0]).toBe("HTTP/1.1 400 Bad Request");
  });

  it("a header block the gateway accepts is accepted by the service it is forwarded to", async () => {
    // An anonymous request: nothing of the client's is stripped, and the gateway adds forwarding,
    // request id and trace headers. The service once refused (431) what the gateway had accepted.
    const body = JSON.stringify({ email: "nobody-headers@example.com", password: "not the password" });
    const padded = (path: string, total: number) => {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Pad: `;
      return `${head}${"p".repeat(total - head.length - 4)}\r\n\r\n${body}`;
    };
    // The gateway's own limit, found with a path of the same length it answers itself (404, no such service).
    let [fits, over] = [8 * 1024, 24 * 1024];
    while (over - fits > 1) {
      const mid = (fits + over) >> 1;
      const [line] = await rawRequest(padded("/api/zzzzz/login", mid));
      if (line === "HTTP/1.1 404 Not Found") fits = mid;
      else over = mid;
    }
    expect(await rawRequest(padded("/api/users/login", fits))).toEqual(["HTTP/1.1 401 Unauthorized"]);
    expect(await rawRequest(padded("/api/users/login", over))).toEqual(["HTTP/1.1 431 Request Header Fields Too Large"]);
  });
});

describe("internal routes are never proxied", { timeout: 300_000 }, () => {
  it("/metrics, /ready, /health and /internal of any service, however encoded", async () => {
    const u = await user("internal");
    for (const path of ["/api/users/metrics", "/api/users/ready", "/api/users/health", "/api/config/metrics", "/api/users/%6detrics", "/api/users/METRICS", "/api/users/x/../ready", "/api/users/internal/users/x/state", "/api/users/metrics/"]) {
      const r = await api("GET", path, { token: u.token });
      expect(r.status, path).toBe(404);
      expect(r.text, path).not.toContain("process_cpu");
    }
  });
});

describe("revocation is pushed to the gateway: no token lifetime or cache to wait out", { timeout: 300_000 }, () => {
  it("a disabled user's token and API key stop working; enabling does not revive old tokens", async () => {
    const admin = await adminToken();
    const u = await user("disable");
    const key = (await api("POST", "/api/users/api-keys", { token: u.token, body: { name: "bot" } })).body.key as string;
    expect((await api("GET", "/api/users/me", { token: u.token })).status).toBe(200);
    expect((await api("GET", "/api/users/me", { headers: { "x-api-key": key } })).status).toBe(200);
    const d = await api("POST", `/api/users/admin/users/${u.id}/disable`, { token: admin });
    expect(d.status, d.text).toBe(200);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { token: u.token })).status === 401);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { headers: { "x-api-key": key } })).status === 401);
    expect((await api("POST", "/api/users/refresh", { body: { refreshToken: u.refresh } })).status).toBe(401);
    expect((await api("POST", `/api/users/admin/users/${u.id}/enable`, { token: admin })).status).toBe(200);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { headers: { "x-api-key": key } })).status === 200);
    expect((await api("GET", "/api/users/me", { token: u.token })).status).toBe(401);
    const again = await api("POST", "/api/users/login", { body: { email: u.email, password: PASSWORD } });
    expect((await api("GET", "/api/users/me", { token: again.body.accessToken })).status).toBe(200);
  });

  it("a deleted user, a changed role and logout everywhere", async () => {
    const admin = await adminToken();
    const del = await user("delete");
    expect((await api("DELETE", `/api/users/admin/users/${del.id}`, { token: admin })).status).toBe(204);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/api-keys", { token: del.token })).status === 401);

    const promoted = await user("promote");
    expect((await api("PUT", `/api/users/admin/users/${promoted.id}/role`, { token: admin, body: { role: "admin" } })).status).toBe(200);
    // Like every change of a user's state, the role reaches the gateway on Dragonfly's pub/sub.
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { token: promoted.token })).status === 401);
    const r = await api("GET", "/api/users/me", { token: promoted.token });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("CREDENTIALS_REVOKED");

    const out = await user("logout-all");
    expect((await api("POST", "/api/users/logout", { token: out.token, body: { all: true } })).status).toBe(204);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { token: out.token })).status === 401);
  });

  it("a revoked API key stops at once, even from the gateway's in-process cache", async () => {
    const u = await user("revoke-key");
    const created = (await api("POST", "/api/users/api-keys", { token: u.token, body: { name: "bot" } })).body;
    for (let i = 0; i < 3; i++) expect((await api("GET", "/api/users/me", { headers: { "x-api-key": created.key } })).status).toBe(200);
    expect((await api("DELETE", `/api/users/api-keys/${created.id}`, { token: u.token })).status).toBe(204);
    await within(REVOKED_WITHIN_MS, async () => (await api("GET", "/api/users/me", { headers: { "x-api-key": created.key } })).status === 401);
  });
});

describe("API-key guessing", { timeout: 300_000 }, () => {
  it("is rate limited per client IP, writes nothing for a wrong key, and a prefix's failures never block the genuine key", async () => {
    // A client address of its own (earlier tests' revoked keys counted as failures of 127.0.0.1).
    const guard = await createService(apiGateway, { env: { ...gwEnv, API_KEY_MAX_FAILURES: "3", TRUST_PROXY: "127.0.0.1" }, defaultMetrics: false });
    const from = { "x-forwarded-for": "192.0.2.77" };
    extra.push(guard);
    const url = await guard.listen({ port: 0, host: "127.0.0.1" });
    const u = await user("guess");
    const created = (await api("POST", "/api/users/api-keys", { token: u.token, body: { name: "bot" } })).body;
    const wrong = `atk_${created.prefix}_${"A".repeat(43)}`;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await http("GET", `${url}/api/users/me`, { headers: { "x-api-key": wrong, ...from } })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const row = await pool.query("SELECT last_used_at FROM api_keys WHERE id = $1", [created.id]);
    expect(row.rows[0].last_used_at).toBeNull();
    // the same address is blocked for other prefixes too
    expect((await http("GET", `${url}/api/users/me`, { headers: { "x-api-key": `atk_000000000000_${"B".repeat(43)}`, ...from } })).status).toBe(429);
    // A prefix is shown in listings: failures with it from other addresses do not block the key itself
    // (before, they were counted per prefix too, and the genuine key got 429 until it was cached).
    const elsewhere = async (key: string, i: number) => (await http("GET", `${url}/api/users/me`, { headers: { "x-api-key": key, "x-forwarded-for": `192.0.2.${100 + i}` } })).status;
    for (let i = 0; i < 5; i++) expect(await elsewhere(wrong, i)).toBe(401);
    expect(await elsewhere(created.key, 9)).toBe(200);
  });
});

describe("whole-request timeout", { timeout: 300_000 }, () => {
  it("answers 504 JSON when an upstream does not answer in time", async () => {
    const u = await user("timeout");
    const short = await createService(apiGateway, { env: { ...gwEnv, REQUEST_TIMEOUT_MS: "500", PROXY_TIMEOUT_MS: "500" }, defaultMetrics: false });
    extra.push(short);
    const url = await short.listen({ port: 0, host: "127.0.0.1" });
    const t0 = Date.now();
    const r = await http("GET", `${url}/api/risk/limits`, { token: u.token });
    expect(r.status).toBe(504);
    expect(r.body.error.code).toMatch(/TIMEOUT/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe("whole-request timeout and a slow upload", { timeout: 300_000 }, () => {
  /**
   * Sends `head` on a fresh connection, then each of `parts` `everyMs` apart; resolves with every
   * answer's status line and the text received, once the server closes or QUIET_MS pass quiet.
   */
  function upload(url: string, head: string, parts: string[], everyMs: number): Promise<{ statuses: string[]; text: string; closedByServer: boolean }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const s = net.connect(Number(port), hostname, () => s.write(head));
      const timer = setInterval(() => {
        const next = parts.shift();
        if (next === undefined) return clearInterval(timer);
        if (s.writable) s.write(next);
      }, everyMs);
      let text = "";
      let quiet: NodeJS.Timeout | undefined;
      let closedByServer = true;
      s.on("data", (d) => {
        text += d;
        clearTimeout(quiet);
        quiet = setTimeout(() => ((closedByServer = false), s.destroy()), QUIET_MS);
      });
      s.on("error", () => undefined);
      s.on("close", () => {
        clearInterval(timer);
        clearTimeout(quiet);
        resolve({ statuses: text.match(/^HTTP\/\d\.\d \d{3}[^\r]*/gm) ?? [], text, closedByServer });
      });
      setTimeout(() => s.destroy(), 60_000).unref();
    });
  }

  it("an upload slower than REQUEST_TIMEOUT_MS: one 408 naming the body, the connection closed, nothing forwarded", async () => {
    const u = await user("slow-upload");
    let forwarded = 0;
    const upstream = createServer((_req, res) => (forwarded++, res.writeHead(200, { "content-type": "application/json" }).end("{}")));
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const gateway = await createService(apiGateway, {
      env: { ...gwEnv, SERVICE_RISK_ANALYZER_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, REQUEST_TIMEOUT_MS: "1500", PROXY_TIMEOUT_MS: "1500", REQUEST_RECEIVE_TIMEOUT_MS: "6000" },
      defaultMetrics: false,
    });
    extra.push(gateway);
    const url = await gateway.listen({ port: 0, host: "127.0.0.1" });
    try {
      const head = `POST /api/risk/limits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`;
      const r = await upload(url, head, Array.from({ length: 40 }, () => " "), 200);
      // Before: a 504 blamed on the upstream at 1.5 s, then Node's own 408 on the same connection at 6 s.
      expect(r.statuses, r.text).toEqual(["HTTP/1.1 408 Request Timeout"]);
      expect(JSON.parse(r.text.slice(r.text.indexOf("\r\n\r\n") + 4)).error).toMatchObject({ code: "REQUEST_TIMEOUT", field: "body" });
      expect(r.closedByServer).toBe(true);
      expect(forwarded).toBe(0);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it("an upload that arrives in time leaves the upstream the whole REQUEST_TIMEOUT_MS from then", async () => {
    const u = await user("slow-upload-in-time");
    // The upstream answers 4 s after the body is in; the body takes about 3.6 s of the 6 s budget (2.4 s
    // to spare for a loaded machine's late timers on either side; 3 s and 1.8 s before).
    const upstream = createServer((req, res) => {
      req.resume();
      req.on("end", () => setTimeout(() => res.writeHead(200, { "content-type": "application/json" }).end('{"answered":true}'), 4_000));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const gateway = await createService(apiGateway, {
      env: { ...gwEnv, SERVICE_RISK_ANALYZER_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, REQUEST_TIMEOUT_MS: "6000", PROXY_TIMEOUT_MS: "6000" },
      defaultMetrics: false,
    });
    extra.push(gateway);
    const url = await gateway.listen({ port: 0, host: "127.0.0.1" });
    try {
      const body = '{"a":"in time"}';
      const head = `POST /api/risk/limits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${u.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
      // Before: the upstream had what was left of one budget (about 2.4 s) and the answer was a 504.
      const r = await upload(url, head, [body.slice(0, 5), body.slice(5, 10), body.slice(10)], 1_200);
      expect(r.statuses, r.text).toEqual(["HTTP/1.1 200 OK"]);
      expect(r.text).toContain('{"answered":true}');
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });
});

describe("data-bridge: strict decimal prices", { timeout: 300_000 }, () => {
  it("rejects blank, hex, signed, exponent and empty prices with a 400 naming the field", async () => {
    const bridge = await createService(dataBridge, {
      env: { LOG_LEVEL: "silent", DRAGONFLY_URL: redis.url, KAFKA_BROKERS: "127.0.0.1:1", MARKET_SUBSCRIBE: "false", CLICKHOUSE_URL: "" },
      defaultMetrics: false,
    });
    extra.push(bridge);
    const bar = { symbol: "BTCUSDT", interval: "1m", openTime: 1_700_000_000_000, closeTime: 1_700_000_059_999, open: "100", high: "101", low: "99", close: "100.5", volume: "3" };
    for (const [field, value] of [["close", " 100"], ["close", "0x64"], ["open", ""], ["high", "1e3"], ["low", "-1"], ["close", "NaN"], ["volume", "Infinity"], ["close", "0"], ["close", "100.0000000000001"], ["open", "0100"]] as const) {
      const r = await bridge.app.inject({ method: "POST", url: "/internal/bars", payload: { bars: [{ ...bar, [field]: value }] } });
      expect(r.statusCode, `${field}=${JSON.stringify(value)}`).toBe(400);
      expect(r.json().error.field, `${field}=${JSON.stringify(value)}`).toBe(`bars.0.${field}`);
    }
    const far = await bridge.app.inject({ method: "POST", url: "/internal/bars", payload: { bars: [{ ...bar, openTime: 9e15, closeTime: 9e15 }] } });
    expect(far.statusCode).toBe(400);
  });
});
