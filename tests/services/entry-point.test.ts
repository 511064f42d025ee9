/**
 * Session 40's entry-point hunt (api-gateway and user-management as an attacker with an account and
 * without), against real PostgreSQL and Redis: each case failed before its fix.
 * - The bootstrap admin: an account a stranger registered with BOOTSTRAP_ADMIN_EMAIL is not promoted.
 * - IPv6 clients are counted by their /64: picking another address of it is no fresh rate-limit
 *   bucket, nor a fresh login lockout; and every request of a /48 once more, at a higher cap (session 41).
 * - Two admins removing each other at once leave one admin, not none.
 * - A malformed request pipelined behind one being handled no longer takes that one's answer.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";

const srv = useServers("postgres");
const JWT_SECRET = randomBytes(64).toString("hex");
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let base: Record<string, string>;
const started: Service[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  base = { ...srv.postgres.env, DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent" };
});

afterAll(async () => {
  for (const s of started.reverse()) await s.close().catch(() => undefined);
  await pool?.end();
  await redis?.stop();
});

type Json = Record<string, any>;
async function post(url: string, body: unknown): Promise<{ status: number; body: Json }> {
  const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : {} };
}

async function startGateway(umUrl: string, env: Record<string, string> = {}): Promise<string> {
  const gw = await createService(apiGateway, { env: { DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent", SERVICE_USER_MANAGEMENT_URL: umUrl, ...env }, defaultMetrics: false });
  started.push(gw);
  return gw.listen({ port: 0, host: "127.0.0.1" });
}

async function startUserManagement(env: Record<string, string> = {}): Promise<string> {
  const um = await createService(userManagement, { env: { ...base, ...env }, defaultMetrics: false });
  started.push(um);
  return um.listen({ port: 0, host: "127.0.0.1" });
}

describe("the bootstrap admin (BOOTSTRAP_ADMIN_EMAIL)", { timeout: 120_000 }, () => {
  it("an account a stranger registered with the address is not promoted; one holding BOOTSTRAP_ADMIN_PASSWORD is", async () => {
    // The platform runs without an admin (the stack sets none) and anyone may register.
    const open = await startUserManagement();
    const opsEmail = `ops-${randomBytes(3).toString("hex")}@example.com`;
    const strangersPassword = "the strangers own password";
    expect((await post(`${open}/register`, { email: opsEmail, password: strangersPassword })).status).toBe(201);
    const ownEmail = `owner-${randomBytes(3).toString("hex")}@example.com`;
    const operatorsPassword = "the operators password 1!";
    expect((await post(`${open}/register`, { email: ownEmail, password: operatorsPassword })).status).toBe(201);

    // The operator then names the address they meant to use: the stranger's account stays a trader
    // (before: promoted to admin, with the stranger's password; the operator's did not log in).
    const named = await startUserManagement({ BOOTSTRAP_ADMIN_EMAIL: opsEmail.toUpperCase(), BOOTSTRAP_ADMIN_PASSWORD: operatorsPassword });
    const stranger = await post(`${named}/login`, { email: opsEmail, password: strangersPassword });
    expect(stranger.status).toBe(200);
    expect(stranger.body.user.role).toBe("trader");
    expect((await post(`${named}/login`, { email: opsEmail, password: operatorsPassword })).status).toBe(401);
    expect((await pool.query("SELECT count(*)::int AS n FROM users WHERE role = 'admin'")).rows[0].n).toBe(0);

    // An account registered with BOOTSTRAP_ADMIN_PASSWORD is the operator's own: promoted, its
    // older trader tokens refused from then on (epoch raised).
    const before = (await pool.query("SELECT token_epoch FROM users WHERE email = $1", [ownEmail])).rows[0].token_epoch;
    const own = await startUserManagement({ BOOTSTRAP_ADMIN_EMAIL: ownEmail, BOOTSTRAP_ADMIN_PASSWORD: operatorsPassword });
    const admin = await post(`${own}/login`, { email: ownEmail, password: operatorsPassword });
    expect(admin.status).toBe(200);
    expect(admin.body.user.role).toBe("admin");
    expect((await pool.query("SELECT token_epoch FROM users WHERE email = $1", [ownEmail])).rows[0].token_epoch).toBe(before + 1);
  });
});

describe("IPv6 clients are counted by their /64", { timeout: 120_000 }, () => {
  // Behind a trusted edge (here the test, 127.0.0.1) the client is the X-Forwarded-For address the edge saw.
  const from = (address: string) => ({ "content-type": "application/json", "x-forwarded-for": address });

  it("the anonymous rate limit: another address of the same /64 is the same bucket; an IPv4-mapped address is its IPv4 one", async () => {
    const umUrl = await startUserManagement();
    const gw = await startGateway(umUrl, { TRUST_PROXY: "127.0.0.1", RATE_LIMIT_MAX_REQUESTS: "3", RATE_LIMIT_WINDOW_MS: "600000" });
    const statuses: number[] = [];
    for (let i = 1; i <= 5; i++) statuses.push((await fetch(`${gw}/api/users/me`, { headers: from(`2001:db8:40:1::${i}`) })).status);
    // Before: 401 five times, each address a bucket of its own.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await fetch(`${gw}/api/users/me`, { headers: from("2001:db8:40:2::1") })).status).toBe(401); // another /64
    const v4: number[] = [];
    for (const a of ["198.51.100.40", "::ffff:198.51.100.40", "198.51.100.40", "::ffff:c633:6428"]) v4.push((await fetch(`${gw}/api/users/me`, { headers: from(a) })).status);
    expect(v4).toEqual([401, 401, 401, 429]);
  });

  it("the login lockout of one account from one address: the addresses of a /64 share it", async () => {
    const umUrl = await startUserManagement({ LOGIN_MAX_FAILURES: "3" });
    const gw = await startGateway(umUrl, { TRUST_PROXY: "127.0.0.1", RATE_LIMIT_MAX_REQUESTS: "1000" });
    const email = `v6-${randomBytes(3).toString("hex")}@example.com`;
    const password = "correct horse battery";
    const reg = await fetch(`${gw}/api/users/register`, { method: "POST", headers: from("2001:db8:40:9::1"), body: JSON.stringify({ email, password }) });
    expect(reg.status).toBe(201);
    const guesses: number[] = [];
    for (let i = 1; i <= 5; i++)
      guesses.push((await fetch(`${gw}/api/users/login`, { method: "POST", headers: from(`2001:db8:40:3::${i}`), body: JSON.stringify({ email, password: `guess ${i} of many` }) })).status);
    // Before: 401 five times (each guess from a fresh address, never locked).
    expect(guesses).toEqual([401, 401, 401, 423, 423]);
    // The owner, elsewhere, still logs in: the lockout is the guesser's network's.
    const owner = await fetch(`${gw}/api/users/login`, { method: "POST", headers: from("2001:db8:40:9::1"), body: JSON.stringify({ email, password }) });
    expect(owner.status).toBe(200);
  });

  it("a client holding a /48 (65,536 /64s) is capped per /48 too: one request from each of many /64s is refused past the site cap, another /48 is not (session 41)", async () => {
    const umUrl = await startUserManagement();
    // Per /64: 3 anonymous requests (12 authenticated); per /48: 8 requests of any kind.
    const gw = await startGateway(umUrl, { TRUST_PROXY: "127.0.0.1", RATE_LIMIT_MAX_REQUESTS: "3", RATE_LIMIT_IPV6_SITE_MAX_REQUESTS: "8", RATE_LIMIT_WINDOW_MS: "600000" });
    const statuses: number[] = [];
    // Each /64 of the /48 used once, so no per-/64 bucket is near its limit; /56s of the same /48 included.
    for (let i = 1; i <= 12; i++) statuses.push((await fetch(`${gw}/api/users/me`, { headers: from(`2001:db8:41:${(i * 0x101).toString(16)}::1`) })).status);
    // Before: 401 twelve times (each /64 a bucket of its own, the /48 never counted).
    expect(statuses).toEqual([...Array(8).fill(401), ...Array(4).fill(429)]);
    const refused = await fetch(`${gw}/api/users/me`, { headers: from("2001:db8:41:ffff::7") });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as Json).error.message).toContain("client network");
    expect(refused.headers.get("retry-after")).toBeTruthy();
    // Another /48, and an IPv4 client, are not held back by it.
    expect((await fetch(`${gw}/api/users/me`, { headers: from("2001:db8:42:1::1") })).status).toBe(401);
    expect((await fetch(`${gw}/api/users/me`, { headers: from("198.51.100.41") })).status).toBe(401);
  });
});

describe("two admins removing each other at once", { timeout: 120_000 }, () => {
  it("the second change finds its caller no admin any more: 403, and one admin is left", async () => {
    const um = await startUserManagement();
    const admins: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(`${um}/register`, { email: `adm${i}-${randomBytes(3).toString("hex")}@example.com`, password: "correct horse battery" });
      admins.push(r.body.user.id);
    }
    await pool.query("UPDATE users SET role = 'admin' WHERE id = ANY($1::uuid[])", [admins]);
    // Both requests passed the gateway as admins (sent together, neither change was committed yet):
    // user-management is called as the gateway forwards them, one after the other.
    const as = (id: string) => ({ "x-user-id": id, "x-user-role": "admin", "x-auth-method": "jwt" });
    const demote = (by: string, id: string) => fetch(`${um}/admin/users/${id}/role`, { method: "PUT", headers: { ...as(by), "content-type": "application/json" }, body: JSON.stringify({ role: "trader" }) }).then((r) => r.status);
    const remove = (by: string, id: string) => fetch(`${um}/admin/users/${id}`, { method: "DELETE", headers: as(by) }).then((r) => r.status);
    const [a, b, c, d] = admins;
    expect(await demote(a, b)).toBe(200);
    expect(await demote(b, a)).toBe(403); // before: 200, no admin left among the two
    expect(await remove(c, d)).toBe(204);
    expect(await remove(d, c)).toBe(403); // before: 204
    const left = await pool.query("SELECT id FROM users WHERE id = ANY($1::uuid[]) AND role = 'admin' AND disabled_at IS NULL ORDER BY id", [admins]);
    expect(left.rows.map((r) => r.id).sort()).toEqual([a, c].sort());
  });
});

describe("a malformed request pipelined behind one being handled", { timeout: 120_000 }, () => {
  let upstream: Server;
  afterAll(() => {
    upstream?.closeAllConnections();
    upstream?.close();
  });

  /** Sends `payload` on one connection; everything the gateway wrote until it closed. */
  function exchange(gwUrl: string, payload: string): Promise<string> {
    return new Promise((resolve) => {
      const socket = net.connect(Number(new URL(gwUrl).port), "127.0.0.1");
      let out = "";
      socket.on("data", (d) => (out += d));
      socket.on("close", () => resolve(out));
      socket.on("error", () => undefined);
      socket.write(payload);
    });
  }

  it("the first request's answer is sent (it was forwarded and carried out), then the connection closes", async () => {
    const received: string[] = [];
    upstream = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        received.push(`${req.method} ${req.url}`);
        setTimeout(() => res.setHeader("content-type", "application/json").end('{"done":true}'), 100);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const umUrl = await startUserManagement();
    const gw = await startGateway(umUrl, { SERVICE_RISK_ANALYZER_URL: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, RATE_LIMIT_MAX_REQUESTS: "1000" });
    const email = `pipe-${randomBytes(3).toString("hex")}@example.com`;
    const password = "correct horse battery";
    expect((await post(`${gw}/api/users/register`, { email, password })).status).toBe(201);
    const token = (await post(`${gw}/api/users/login`, { email, password })).body.accessToken as string;

    // Bytes after `Connection: close`: the POST was forwarded; before, its answer was a 400.
    const afterClose = await exchange(gw, `POST /api/risk/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}GET /api/risk/more HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(afterClose.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(afterClose.endsWith('{"done":true}')).toBe(true);
    expect(afterClose.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    // A malformed second request on a kept-alive connection: the first is answered, with Connection: close.
    const malformed = await exchange(gw, `GET /api/risk/first HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\nGET /api/risk/second HTTP/1.1\r\nHost : x\r\n\r\n`);
    expect(malformed.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(malformed.toLowerCase()).toContain("connection: close");
    expect(malformed.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(received).toEqual(["POST /check", "GET /first"]);
  });
});

describe("request ids at the entry point (session 41)", { timeout: 120_000 }, () => {
  it("the gateway gives every request an id of its own: two requests with the same client x-request-id get different ids, at the upstream and in the answer; the client's is passed on as x-client-request-id", async () => {
    // An upstream standing in for user-management that answers the headers it received.
    const seen: Array<Record<string, string | string[] | undefined>> = [];
    const echo = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ requestId: req.headers["x-request-id"] ?? null }));
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    try {
      const port = (echo.address() as net.AddressInfo).port;
      const gw = await startGateway(`http://127.0.0.1:${port}`);
      const send = (headers: Record<string, string>) => fetch(`${gw}/api/users/register`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });
      const victim = "req-of-someone-else-42";
      const a = await send({ "x-request-id": victim });
      const b = await send({ "x-request-id": victim });
      const ids = [a.headers.get("x-request-id"), b.headers.get("x-request-id")];
      // Before: both answered, logged and forwarded with the client's id.
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(ids[0]).not.toBe(ids[1]);
      expect([seen[0]["x-request-id"], seen[1]["x-request-id"]]).toEqual(ids);
      expect([seen[0]["x-client-request-id"], seen[1]["x-client-request-id"]]).toEqual([victim, victim]);
      // A malformed client id is not passed on at all, nor one the client names x-client-request-id itself.
      await send({ "x-request-id": "bad id with spaces", "x-client-request-id": "forged" });
      expect(seen[2]["x-client-request-id"]).toBeUndefined();
      expect(seen[2]["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
      // The gateway's own errors name its id too.
      const nf = await fetch(`${gw}/api/no-such-service/x`, { headers: { "x-request-id": victim } });
      const body = (await nf.json()) as Json;
      expect(body.error.requestId).toBe(nf.headers.get("x-request-id"));
      expect(body.error.requestId).not.toBe(victim);
    } finally {
      await new Promise((r) => echo.close(r));
    }
  });
});
