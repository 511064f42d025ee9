/**
 * Session 40's entry-point hunt, fixed: access tokens carry their session (claim `sid`, the refresh
 * token family), and a session ended alone (family revoked on refresh-token reuse, logout of that
 * session) has its access tokens refused by every gateway at once, not at their expiry 15 minutes on.
 * Real PostgreSQL and Redis, user-management and two gateways (replicas sharing Dragonfly).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, Redis, type RedisServer } from "../harness";
import { createService, jwtKey, signAccessToken, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";
import { PATIENCE_MS, PUSHED_WITHIN_MS } from "../helpers/patience";

const srv = useServers("postgres");
const JWT_SECRET = randomBytes(64).toString("hex");
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let client: InstanceType<typeof Redis>;
let umUrl: string;
let gwA: string;
let gwB: string;
const started: Service[] = [];

async function listen(s: Service): Promise<string> {
  started.push(s);
  return s.listen({ port: 0, host: "127.0.0.1" });
}
const env = (more: Record<string, string>) => ({ env: { DRAGONFLY_URL: redis.url, JWT_SECRET, LOG_LEVEL: "silent", ...more }, defaultMetrics: false });
const startGateway = async () => listen(await createService(apiGateway, env({ SERVICE_USER_MANAGEMENT_URL: umUrl, RATE_LIMIT_MAX_REQUESTS: "10000" })));

beforeAll(async () => {
  redis = await startRedis({ persistent: false });
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  client = new Redis(redis.url);
  client.on("error", () => undefined); // the outage case stops the server under it
  umUrl = await listen(await createService(userManagement, env({ ...srv.postgres.env, SESSION_REVOCATION_SWEEP_MS: "300" })));
  gwA = await startGateway();
  gwB = await startGateway();
}, 120_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.close().catch(() => undefined);
  client?.disconnect();
  await pool?.end();
  await redis?.stop();
});

type Json = Record<string, any>;
async function call(gw: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(`${gw}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : {} };
}
const me = async (gw: string, token: string) => (await call(gw, "GET", "/api/users/me", { token })).status;

/** A user with two sessions (two logins): each {access, refresh}. */
async function userWithTwoSessions(name: string) {
  const email = `${name}-${randomBytes(4).toString("hex")}@example.com`;
  const password = "a long enough password";
  expect((await call(gwA, "POST", "/api/users/register", { body: { email, password } })).status).toBe(201);
  const login = async () => {
    const r = await call(gwA, "POST", "/api/users/login", { body: { email, password } });
    expect(r.status).toBe(200);
    return { access: r.body.accessToken as string, refresh: r.body.refreshToken as string, userId: r.body.user.id as string };
  };
  return { first: await login(), second: await login() };
}

/** Refused (401, the session named) by this gateway within a second of the revocation; the old code never refused. */
async function refusedSoon(gw: string, token: string): Promise<void> {
  await expect.poll(() => me(gw, token), { timeout: PUSHED_WITHIN_MS, interval: 20 }).toBe(401);
  const r = await call(gw, "GET", "/api/users/me", { token });
  expect(r.body.error.code).toBe("CREDENTIALS_REVOKED");
  expect(r.body.error.message).toContain("session ended");
}

describe("access tokens of a session ended alone are refused at once (session 40)", { timeout: 60_000 }, () => {
  it("refresh-token reuse revokes the family: the access token minted from the stolen refresh token is refused at once, on both gateways; another session of the user keeps working", async () => {
    const { first, second } = await userWithTwoSessions("theft");
    // The thief refreshes with the stolen token first and holds an access token of that session.
    const stolen = await call(gwA, "POST", "/api/users/refresh", { body: { refreshToken: first.refresh } });
    expect(stolen.status).toBe(200);
    const thiefAccess = stolen.body.accessToken as string;
    // Both replicas know the token, the user's state and the session (their in-process caches).
    for (const gw of [gwA, gwB]) for (const t of [thiefAccess, first.access, second.access]) expect(await me(gw, t)).toBe(200);

    // The owner presents the rotated token: reuse, the family is revoked.
    const reuse = await call(gwB, "POST", "/api/users/refresh", { body: { refreshToken: first.refresh } });
    expect([reuse.status, reuse.body.error.code]).toEqual([401, "REFRESH_TOKEN_REUSED"]);
    // Before: 200 for up to 15 minutes on either gateway.
    for (const gw of [gwA, gwB]) {
      await refusedSoon(gw, thiefAccess);
      await refusedSoon(gw, first.access);
      expect(await me(gw, second.access)).toBe(200);
    }
    // The record every replica reads, kept as long as an access token can live.
    const ttl = await client.ttl(`auth:session-revoked:${decodeSid(thiefAccess)}`);
    expect(ttl).toBeGreaterThan(3_000);
    expect(ttl).toBeLessThanOrEqual(3_660);
  });

  it("logout of one session refuses that session's access token at once, at both gateways; the other session and a token without a session id keep working", async () => {
    const { first, second } = await userWithTwoSessions("logout");
    for (const gw of [gwA, gwB]) for (const t of [first.access, second.access]) expect(await me(gw, t)).toBe(200);
    const out = await call(gwA, "POST", "/api/users/logout", { token: second.access, body: { refreshToken: first.refresh } });
    expect(out.status).toBe(204);
    for (const gw of [gwA, gwB]) {
      await refusedSoon(gw, first.access); // before: 200 until it expired
      expect(await me(gw, second.access)).toBe(200);
    }
    // A token issued before the release (no sid) is not tied to a session: it lives out its expiry.
    const epoch = (await pool.query("SELECT token_epoch FROM users WHERE id = $1", [first.userId])).rows[0].token_epoch;
    const legacy = await signAccessToken(jwtKey(JWT_SECRET), { userId: first.userId, role: "trader", epoch }, 900);
    expect(await me(gwB, legacy)).toBe(200);
    // A gateway started after the revocation (it heard no message) reads it from Dragonfly.
    const gwC = await startGateway();
    expect(await me(gwC, first.access)).toBe(401);
    expect(await me(gwC, second.access)).toBe(200);
  });

  it("a reuse revocation made while Dragonfly is down reaches the gateways once it is back, within the sweep period (session 41)", async () => {
    const { first, second } = await userWithTwoSessions("outage");
    const stolen = await call(gwA, "POST", "/api/users/refresh", { body: { refreshToken: first.refresh } });
    expect(stolen.status).toBe(200);
    const thiefAccess = stolen.body.accessToken as string;
    for (const gw of [gwA, gwB]) expect(await me(gw, thiefAccess)).toBe(200);

    await redis.kill();
    try {
      // The reuse reaches user-management directly (the gateways cannot authenticate anything while
      // Dragonfly is down): the family is revoked in PostgreSQL, the gateways cannot be told.
      const reuse = await fetch(`${umUrl}/refresh`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refreshToken: first.refresh }) });
      expect(reuse.status).toBe(401);
      expect(((await reuse.json()) as Json).error.code).toBe("REFRESH_TOKEN_REUSED");
      const revoked = await pool.query("SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1 AND revoked_reason = 'reuse'", [decodeSid(thiefAccess)]);
      expect(revoked.rows[0].n).toBeGreaterThan(0);
    } finally {
      await redis.restart();
    }
    // Before: the revocation was only logged, and both gateways accepted the thief's token for up to
    // 15 minutes. Now the sweep (every 300 ms here) publishes it once Dragonfly answers.
    for (const gw of [gwA, gwB]) {
      await refusedSoon(gw, thiefAccess);
      expect(await me(gw, second.access)).toBe(200);
    }
    // The sweep publishes, then deletes what it owed: the gateways can refuse the token a moment
    // before the row is gone, so the row is waited for, not read once.
    const owed = async () => (await pool.query("SELECT count(*)::int AS n FROM session_revocations_unpublished WHERE family_id = $1", [decodeSid(thiefAccess)])).rows[0].n;
    await expect.poll(owed, { timeout: PATIENCE_MS, interval: 50 }).toBe(0);
  });

  it("a session id the gateway cannot read is refused (401), not taken for a session", async () => {
    const { first } = await userWithTwoSessions("forged");
    const forged = await signAccessToken(jwtKey(JWT_SECRET), { userId: first.userId, role: "trader", sessionId: "NOT-A-UUID" }, 900);
    const r = await call(gwA, "GET", "/api/users/me", { token: forged });
    expect([r.status, r.body.error.code]).toEqual([401, "INVALID_TOKEN"]);
  });
});

function decodeSid(token: string): string {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8")).sid;
}
