/**
 * Session 40's entry-point hunt (api-gateway and user-management as an attacker with an account and
 * without), against real PostgreSQL and Redis: each case failed before its fix.
 * - The bootstrap admin: an account a stranger registered with BOOTSTRAP_ADMIN_EMAIL is not promoted.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { startRedis, pg, type RedisServer } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";

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
