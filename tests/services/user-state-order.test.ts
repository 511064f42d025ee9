/**
 * The user state user-management writes to Dragonfly after a commit (auth:user-state:<id> since
 * session 42, auth:user:<id> before: user-state-legacy-writer.test.ts; what every
 * gateway checks tokens against) is ordered by the state's version, on real PostgreSQL and Redis.
 * Two changes of one user that commit close together may reach Dragonfly in the other order: here
 * two user-management replicas, the first to commit with a slow Dragonfly connection (a proxy that
 * holds its bytes). Before session 41 a plain SET left the older state: a password change written
 * after the logout-all that followed it gave back the epoch the logout-all ended (its access tokens
 * accepted again), a disable written after the enable that followed it left the account disabled
 * (found by session 40's race hunt).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import { fillUserState, parseUserState, publishUserState, revocationReason, userStateKey, userStateOf, userStateVersionKey, type UserState } from "../../services/src/services/user-management/user-state";
import { http, waitUntil } from "../trading/e2e-helpers";
import { PATIENCE_MS } from "../helpers/patience";

const srv = useServers("postgres", "redis");
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;
let slow: SlowProxy;
let umSlow: Service;
let umFast: Service;
let baseSlow: string;
let baseFast: string;

/**
 * A TCP proxy to Redis that, once armed with a marker, holds everything the client sends from the
 * first chunk holding that marker on (the order of a connection's commands is kept: ioredis matches
 * replies by order) until released.
 */
class SlowProxy {
  private readonly server: Server;
  private marker?: string;
  private held: { to: Socket; data: Buffer }[] = [];
  holding = false;

  constructor(private readonly target: number) {
    this.server = createServer((client) => {
      const upstream = connect(this.target, "127.0.0.1");
      upstream.on("data", (d) => client.write(d));
      client.on("data", (d) => {
        if (!this.holding && this.marker !== undefined && d.includes(this.marker)) this.holding = true;
        if (this.holding) this.held.push({ to: upstream, data: d });
        else upstream.write(d);
      });
      const end = () => { client.destroy(); upstream.destroy(); };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const addr = this.server.address();
    if (addr === null || typeof addr === "string") throw new Error("no port");
    return addr.port;
  }

  arm(marker: string): void {
    this.marker = marker;
  }

  release(): void {
    this.marker = undefined;
    this.holding = false;
    for (const { to, data } of this.held) to.write(data);
    this.held = [];
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 4 });
  await runPostgresMigrations(pool);
  redis = new Redis(srv.redis.url);
  const target = new URL(srv.redis.url);
  slow = new SlowProxy(Number(target.port));
  const proxied = `redis://:${decodeURIComponent(target.password)}@127.0.0.1:${await slow.listen()}`;
  const jwt = randomBytes(64).toString("hex");
  const env = { ...srv.postgres.env, JWT_SECRET: jwt, LOG_LEVEL: "silent", LOGIN_MAX_FAILURES: "100", LOGIN_MAX_FAILURES_PER_ACCOUNT: "100" };
  umSlow = await createService(userManagement, { env: { ...env, DRAGONFLY_URL: proxied }, defaultMetrics: false });
  umFast = await createService(userManagement, { env: { ...env, ...srv.redis.env }, defaultMetrics: false });
  baseSlow = await umSlow.listen({ port: 0, host: "127.0.0.1" });
  baseFast = await umFast.listen({ port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  slow?.release();
  await umSlow?.close();
  await umFast?.close();
  await slow?.close();
  redis?.disconnect();
  await pool?.end();
});

const PASSWORD = "the old passphrase";
const cached = async (userId: string): Promise<UserState | undefined> => {
  const raw = await redis.get(userStateKey(userId));
  return raw === null ? undefined : parseUserState(raw);
};
const stateInPostgres = async (userId: string) => userStateOf((await pool.query("SELECT * FROM users WHERE id = $1", [userId])).rows[0]);

async function register(): Promise<string> {
  const reg = await http("POST", `${baseFast}/register`, { body: { email: `order-${randomBytes(4).toString("hex")}@example.com`, password: PASSWORD } });
  expect(reg.status).toBe(201);
  return reg.body.user.id as string;
}

/** Runs `first` on the replica whose Dragonfly writes of this user are held, `second` once `first` committed; then lets the held write through. */
async function outOfOrder<A, B>(userId: string, first: () => Promise<A>, committed: () => Promise<boolean>, second: () => Promise<B>): Promise<[A, B]> {
  slow.arm(userStateKey(userId));
  try {
    const a = first();
    await waitUntil("the first change committed, its state write held", async () => slow.holding && (await committed()), 20_000, 5);
    const b = await second();
    slow.release();
    return [await a, b];
  } finally {
    slow.release();
  }
}

describe("user state written to Dragonfly out of commit order", () => {
  const ROUNDS = 3;

  it(`${ROUNDS} rounds: a password change's state written after the logout-all that followed it: the logout-all's epoch stays, the change's access token is refused`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const userId = await register();
      const as = { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" };
      const epoch = async () => Number((await pool.query("SELECT token_epoch FROM users WHERE id = $1", [userId])).rows[0].token_epoch);
      const [changed, loggedOut] = await outOfOrder(
        userId,
        () => http("POST", `${baseSlow}/password`, { headers: as, body: { currentPassword: PASSWORD, newPassword: "the new passphrase" } }),
        async () => (await epoch()) === 1,
        () => http("POST", `${baseFast}/logout`, { headers: as, body: { all: true } }),
      );
      expect(changed.status, JSON.stringify(changed.body)).toBe(200);
      expect(loggedOut.status).toBe(204);
      expect(await epoch()).toBe(2);
      const state = await cached(userId);
      expect(state?.epoch).toBe(2); // before: 1, the password change's, written last
      expect(state).toEqual(await stateInPostgres(userId));
      // The change's new access token (epoch 1) is one the logout-all ended.
      expect(revocationReason(state!, { role: "trader", epoch: 1 })).toBe("token revoked");
    }
  });

  it(`${ROUNDS} rounds: a disable's state written after the enable that followed it: the account stays enabled`, async () => {
    const adminId = (await pool.query("INSERT INTO users (email, password_hash, role) VALUES ($1, 'x', 'admin') RETURNING id", [`admin-${randomUUID()}@example.com`])).rows[0].id as string;
    const asAdmin = { "x-user-id": adminId, "x-user-role": "admin", "x-auth-method": "jwt" };
    for (let round = 0; round < ROUNDS; round++) {
      const userId = await register();
      const disabledAt = async () => (await pool.query("SELECT disabled_at FROM users WHERE id = $1", [userId])).rows[0].disabled_at as Date | null;
      const [disabled, enabled] = await outOfOrder(
        userId,
        () => http("POST", `${baseSlow}/admin/users/${userId}/disable`, { headers: asAdmin }),
        async () => (await disabledAt()) !== null,
        () => http("POST", `${baseFast}/admin/users/${userId}/enable`, { headers: asAdmin }),
      );
      expect(disabled.status).toBe(200);
      expect(enabled.status).toBe(200);
      expect(await disabledAt()).toBeNull();
      const state = await cached(userId);
      expect(state?.status).toBe("active"); // before: "disabled", written last
      expect(state).toEqual(await stateInPostgres(userId));
    }
  });
});

describe("the state write keeps the highest version", () => {
  const base: UserState = { status: "active", role: "trader", epoch: 0, version: 0 };

  it("an older state published after a newer one is not written; the notification still goes out", async () => {
    const userId = randomUUID();
    const sub = new Redis(srv.redis.url);
    const heard: string[] = [];
    try {
      await sub.subscribe("auth:user-changes");
      sub.on("message", (_c, m: string) => heard.push(m));
      await publishUserState(redis, userId, { ...base, epoch: 2, version: 3 });
      await publishUserState(redis, userId, { ...base, epoch: 1, version: 2 });
      expect(await cached(userId)).toEqual({ ...base, epoch: 2, version: 3 });
      await waitUntil("both notifications heard", async () => heard.filter((m) => m === `user:${userId}`).length === 2, PATIENCE_MS, 5);
      // An enable after a disable (same epoch): only the version orders them.
      await publishUserState(redis, userId, { ...base, epoch: 2, version: 5 });
      await publishUserState(redis, userId, { ...base, status: "disabled", epoch: 2, version: 4 });
      expect((await cached(userId))?.status).toBe("active");
      // A deletion outranks everything, and is written again on a retry.
      await publishUserState(redis, userId, userStateOf(undefined));
      await publishUserState(redis, userId, { ...base, version: 6 });
      await publishUserState(redis, userId, userStateOf(undefined));
      expect((await cached(userId))?.status).toBe("deleted");
      // The version expires with the state, never before it.
      expect(await redis.ttl(userStateVersionKey(userId))).toBeGreaterThanOrEqual(await redis.ttl(userStateKey(userId)));
    } finally {
      sub.disconnect();
    }
  });

  it("a miss filled with an older or equal version writes nothing; over nothing or an older one it does", async () => {
    const userId = randomUUID();
    await fillUserState(redis, userId, { ...base, version: 1 });
    expect((await cached(userId))?.version).toBe(1);
    await fillUserState(redis, userId, { ...base, status: "disabled", version: 1 });
    await fillUserState(redis, userId, { ...base, status: "disabled", version: 0 });
    expect((await cached(userId))?.status).toBe("active");
    await fillUserState(redis, userId, { ...base, status: "disabled", version: 2 });
    expect(await cached(userId)).toEqual({ ...base, status: "disabled", version: 2 });
  });

  it("an entry without a version reads as version 0: a writer replaces it, a filler of version 0 does not", async () => {
    const userId = randomUUID();
    await redis.set(userStateKey(userId), JSON.stringify({ status: "disabled", role: "trader", epoch: 1 }), "EX", 60);
    expect(await cached(userId)).toEqual({ status: "disabled", role: "trader", epoch: 1, version: 0 });
    await fillUserState(redis, userId, base);
    expect((await cached(userId))?.status).toBe("disabled");
    await publishUserState(redis, userId, { ...base, epoch: 1, version: 1 });
    expect(await cached(userId)).toEqual({ ...base, epoch: 1, version: 1 });
  });
});
