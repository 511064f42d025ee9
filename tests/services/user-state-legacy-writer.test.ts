/**
 * A rolling deploy: user-management replicas of a release before session 41 still write the user
 * state the gateways check, as that release did (git history of user-state.ts and data.ts before
 * f9fb848): its UPDATEs leave users.state_version alone, then a plain SET of `auth:user:<id>` with
 * {status, role, epoch} (no version) and a PUBLISH of `user:<id>`; a miss filled with SET NX. Session 41
 * counted such an entry as version 0, so an old replica's late write replaced the newer state and the
 * new gateways accepted the tokens a logout-all had ended. Since session 42 the state lives under
 * `auth:user-state:<id>`, which old code never writes; the legacy entry is deleted by each change unless
 * it is ahead, and a gateway asks user-management when it is. Real PostgreSQL and Redis, the new
 * user-management and api-gateway, and the "legacy replica" below.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis } from "../harness";
import { createService, jwtKey, signAccessToken, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import apiGateway from "../../services/src/services/api-gateway";
import {
  cachedUserState,
  fillUserState,
  legacyUserStateKey,
  parseUserState,
  publishUserState,
  userStateKey,
  type UserState,
} from "../../services/src/services/user-management/user-state";
import { http } from "../trading/e2e-helpers";
import { PUSHED_WITHIN_MS } from "../helpers/patience";

const srv = useServers("postgres", "redis");
const JWT_SECRET = randomBytes(64).toString("hex");
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;
let umUrl: string;
let gwUrl: string;
const started: Service[] = [];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 4 });
  await runPostgresMigrations(pool);
  redis = new Redis(srv.redis.url);
  const env = { ...srv.redis.env, JWT_SECRET, LOG_LEVEL: "silent" };
  const um = await createService(userManagement, { env: { ...env, ...srv.postgres.env }, defaultMetrics: false });
  started.push(um);
  umUrl = await um.listen({ port: 0, host: "127.0.0.1" });
  const gw = await createService(apiGateway, { env: { ...env, SERVICE_USER_MANAGEMENT_URL: umUrl, RATE_LIMIT_MAX_REQUESTS: "10000" }, defaultMetrics: false });
  started.push(gw);
  gwUrl = await gw.listen({ port: 0, host: "127.0.0.1" });
}, 120_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.close().catch(() => undefined);
  redis?.disconnect();
  await pool?.end();
});

/**
 * What a user-management replica of the release before session 41 does (its data.ts statements,
 * without state_version; its user-state.ts publishUserState and fillUserState).
 */
const legacyStatements = {
  passwordChange: "UPDATE users SET password_hash = 'changed', token_epoch = token_epoch + 1, updated_at = now() WHERE id = $1 AND disabled_at IS NULL RETURNING *",
  disable: "UPDATE users SET disabled_at = coalesce(disabled_at, now()), token_epoch = token_epoch + 1, updated_at = now() WHERE id = $1 RETURNING *",
  enable: "UPDATE users SET disabled_at = NULL, updated_at = now() WHERE id = $1 RETURNING *",
};
const legacyReplica = {
  /** The change committed; answers the state it will write (the old userStateOf: no version). */
  async commit(change: keyof typeof legacyStatements, userId: string): Promise<Omit<UserState, "version">> {
    const row = (await pool.query<{ disabled_at: Date | null; role: UserState["role"]; token_epoch: number }>(legacyStatements[change], [userId])).rows[0];
    return { status: row.disabled_at ? "disabled" : "active", role: row.role, epoch: row.token_epoch };
  },
  /** Its write after the commit: a plain SET, then the notification. */
  async write(userId: string, state: Omit<UserState, "version">): Promise<void> {
    await redis.set(legacyUserStateKey(userId), JSON.stringify(state), "EX", 3_600);
    await redis.publish("auth:user-changes", `user:${userId}`);
  },
  /** Its fill of a miss (an old gateway asked it). */
  async fill(userId: string, state: Omit<UserState, "version">): Promise<void> {
    await redis.set(legacyUserStateKey(userId), JSON.stringify(state), "EX", 3_600, "NX");
  },
};

async function register(): Promise<{ userId: string; token: string }> {
  const email = `legacy-${randomBytes(4).toString("hex")}@example.com`;
  const password = "a long enough password";
  expect((await http("POST", `${gwUrl}/api/users/register`, { body: { email, password } })).status).toBe(201);
  const login = await http("POST", `${gwUrl}/api/users/login`, { body: { email, password } });
  expect(login.status).toBe(200);
  return { userId: login.body.user.id, token: login.body.accessToken };
}
/** An access token of the user at that epoch, as any replica would sign it (no session: it lives out its expiry). */
const tokenAt = (userId: string, epoch: number) => signAccessToken(jwtKey(JWT_SECRET), { userId, role: "trader", epoch }, 900);
const me = (token: string) => http("GET", `${gwUrl}/api/users/me`, { token });
async function refused(token: string, reason: string): Promise<void> {
  await expect.poll(async () => (await me(token)).status, { timeout: PUSHED_WITHIN_MS, interval: 20 }).toBe(401);
  const r = await me(token);
  expect([r.body.error.code, r.body.error.message]).toEqual(["CREDENTIALS_REVOKED", `Credentials no longer valid: ${reason}`]);
}
const versioned = async (userId: string) => {
  const raw = await redis.get(userStateKey(userId));
  return raw === null ? undefined : parseUserState(raw);
};

describe("user state during a rolling deploy: old replicas write it unversioned (session 42)", { timeout: 120_000 }, () => {
  it("an old replica's late write cannot give the new gateways back the tokens a logout-all ended", async () => {
    const { userId, token } = await register();
    expect((await me(token)).status).toBe(200);
    // The old replica commits a password change (epoch 1) and is slow to write it...
    const late = await legacyReplica.commit("passwordChange", userId);
    expect(late.epoch).toBe(1);
    // ...a new replica commits "log out everywhere" after it (epoch 2) and writes its state...
    const out = await http("POST", `${umUrl}/logout`, { headers: { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" }, body: { all: true } });
    expect(out.status).toBe(204);
    // ...then the old replica's write lands: epoch 1, no version.
    await legacyReplica.write(userId, late);
    // The password change's access token (epoch 1) is one the logout-all ended. Before: 200 (the
    // gateway read the legacy entry, epoch 1) until the entry expired an hour later.
    await refused(await tokenAt(userId, 1), "token revoked");
    expect((await me(await tokenAt(userId, 2))).status).toBe(200);
    expect((await versioned(userId))?.epoch).toBe(2);
  });

  it("a change an old replica makes reaches the new gateways: its entry is ahead of the versioned state, so the gateway asks user-management", async () => {
    const { userId, token } = await register();
    expect((await me(token)).status).toBe(200);
    const before = await versioned(userId); // filled by the gateway's miss
    expect(before?.status).toBe("active");
    const disabled = await legacyReplica.commit("disable", userId);
    await legacyReplica.write(userId, disabled);
    const atNewEpoch = await tokenAt(userId, disabled.epoch);
    await refused(atNewEpoch, "account disabled");
    // The miss was filled over the older state: migration 0458 raised the version the old UPDATE left alone.
    const after = await versioned(userId);
    expect(after?.status).toBe("disabled");
    expect(after!.version).toBeGreaterThan(before!.version);
    // An enable by an old replica (same epoch, disabled to active) is ahead too.
    const enabled = await legacyReplica.commit("enable", userId);
    await legacyReplica.write(userId, enabled);
    await expect.poll(async () => (await me(atNewEpoch)).status, { timeout: PUSHED_WITHIN_MS, interval: 20 }).toBe(200);
  });

  it("what an old gateway reads: each change of this release deletes the legacy entry (it misses and asks user-management) unless that entry is ahead; a fill never touches it", async () => {
    const userId = randomUUID();
    const base: UserState = { status: "active", role: "trader", epoch: 3, version: 7 };
    const legacy = () => redis.get(legacyUserStateKey(userId));
    await legacyReplica.fill(userId, { status: "active", role: "trader", epoch: 2 });
    await redis.set(`auth:user-version:${userId}`, "5", "EX", 60); // session 41's version key of it
    await publishUserState(redis, userId, base);
    expect([await legacy(), await redis.get(`auth:user-version:${userId}`)]).toEqual([null, null]);
    // Same epoch: disabled is older than active (only an enable keeps the epoch).
    await legacyReplica.fill(userId, { status: "disabled", role: "trader", epoch: 3 });
    await publishUserState(redis, userId, { ...base, version: 8 });
    expect(await legacy()).toBeNull();
    // Ahead (an old replica's change committed after this one): kept, for old and new gateways alike.
    for (const ahead of [{ status: "active", role: "trader", epoch: 4 }, { status: "deleted", role: "trader", epoch: Number.MAX_SAFE_INTEGER }] as const) {
      await redis.set(legacyUserStateKey(userId), JSON.stringify(ahead), "EX", 60);
      await publishUserState(redis, userId, { ...base, version: 9 });
      expect(JSON.parse((await legacy())!), ahead.status).toEqual(ahead);
    }
    await fillUserState(redis, userId, { ...base, epoch: 9, version: 100 });
    expect(await legacy()).not.toBeNull();
    // Unreadable: deleted by a change (an old gateway could not read it either).
    await redis.set(legacyUserStateKey(userId), "garbage", "EX", 60);
    await publishUserState(redis, userId, { ...base, epoch: 9, version: 101 });
    expect(await legacy()).toBeNull();
  });

  it("the gateway's choice: the versioned state unless the legacy entry is ahead of it or unreadable, or there is none", () => {
    const s = (status: UserState["status"], epoch: number, version?: number) => JSON.stringify({ status, role: "trader", epoch, ...(version === undefined ? {} : { version }) });
    expect(cachedUserState(s("active", 2, 5), null)?.epoch).toBe(2);
    expect(cachedUserState(s("active", 2, 5), s("active", 1))?.epoch).toBe(2);
    expect(cachedUserState(s("active", 2, 5), s("active", 2))?.epoch).toBe(2);
    expect(cachedUserState(s("active", 2, 5), s("disabled", 2))?.epoch).toBe(2);
    expect(cachedUserState(s("disabled", 2, 5), s("active", 2))).toBeUndefined();
    expect(cachedUserState(s("active", 2, 5), s("disabled", 3))).toBeUndefined();
    expect(cachedUserState(s("active", 2, 5), s("deleted", Number.MAX_SAFE_INTEGER))).toBeUndefined();
    expect(cachedUserState(s("active", 2, 5), "garbage")).toBeUndefined();
    expect(cachedUserState(null, s("active", 2))).toBeUndefined();
  });
});
