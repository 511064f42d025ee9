/**
 * user-management over real HTTP against real PostgreSQL and Redis: logins racing a change that ends
 * every session (password change). A login reads the user, spends tens of milliseconds on scrypt,
 * then stores its refresh token; a password change committed in between revoked every session it
 * could see, but not the one stored after it. Before session 40 that session survived: a holder of
 * the old password who logged in while the owner changed it kept a refresh token that rotated into
 * access tokens of the new epoch (found by session 40's race hunt).
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import userManagement from "../../services/src/services/user-management";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
let um: Service;
let base: string;
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 4 });
  await runPostgresMigrations(pool);
  redis = new Redis(srv.redis.url);
  um = await createService(userManagement, {
    env: { ...srv.postgres.env, ...srv.redis.env, JWT_SECRET: randomBytes(64).toString("hex"), LOG_LEVEL: "silent", LOGIN_MAX_FAILURES: "100", LOGIN_MAX_FAILURES_PER_ACCOUNT: "100" },
    defaultMetrics: false,
  });
  base = await um.listen({ port: 0, host: "127.0.0.1" });
});

afterAll(async () => {
  await um?.close();
  redis?.disconnect();
  await pool?.end();
});

const OLD = "the old passphrase";
const NEW = "the new passphrase";
const LOGINS = 10;

describe("logins racing a password change", () => {
  it(`${LOGINS} logins with the old password while the change commits: no session of the old password survives`, async () => {
    const email = `race-${randomBytes(4).toString("hex")}@example.com`;
    const reg = await http("POST", `${base}/register`, { body: { email, password: OLD } });
    expect(reg.status).toBe(201);
    const userId = reg.body.user.id as string;
    // Holds the change at its UPDATE of the user row, after its two hashes (FOR NO KEY UPDATE: the
    // old code's token insert, a foreign-key KEY SHARE lock, is not held up by it).
    const holder = await pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", [userId]);
      const change = http("POST", `${base}/password`, { headers: { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" }, body: { currentPassword: OLD, newPassword: NEW } });
      await waitUntil("the change waits for the user row", async () => {
        const { rows } = await pool.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE users SET password_hash%'");
        return rows.length > 0;
      }, 20_000, 10);
      // The logins count themselves (Redis), read the user (old hash) and queue for scrypt, two at a
      // time. The first to pass its check resets the counter: by then every login has read the user,
      // and all but two still wait for scrypt. Then the change is let go: it commits long before they
      // are done.
      const logins = Array.from({ length: LOGINS }, () => http("POST", `${base}/login`, { body: { email, password: OLD } }));
      const counter = `um:login-fail:${createHash("sha256").update(email).digest("hex")}`;
      let counted = 0;
      await waitUntil("every login counted, then one past its check", async () => {
        const n = Number(await redis.get(counter));
        counted = Math.max(counted, n);
        return counted >= LOGINS && n === 0;
      }, 20_000, 1);
      await holder.query("COMMIT");
      expect((await change).status).toBe(200);
      const answers = await Promise.all(logins);
      for (const a of answers) expect([200, 401], JSON.stringify(a.body)).toContain(a.status);
      // Every session a login with the old password got is over: its refresh token is refused.
      const refreshed = await Promise.all(answers.filter((a) => a.status === 200).map((a) => http("POST", `${base}/refresh`, { body: { refreshToken: a.body.refreshToken } })));
      expect(refreshed.map((r) => r.status).filter((s) => s !== 401)).toEqual([]);
      const live = await pool.query("SELECT count(*)::int AS n FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL", [userId]);
      // The change's own new session only.
      expect(live.rows[0].n).toBe(1);
    } finally {
      holder.release();
    }
  });
});

/**
 * Logging out of one session while the same session is refreshed (the owner on one device, a thief
 * holding a copy of the refresh token on another). Before session 40 the logout's one statement could
 * not see the successor token a refresh committed while it waited for the presented token's row: 204,
 * and the session lived on in the successor.
 */
describe("logout racing a refresh of the same session", () => {
  it("the refresh commits its successor while the logout waits: the successor is revoked too", async () => {
    const email = `logout-${randomBytes(4).toString("hex")}@example.com`;
    const reg = await http("POST", `${base}/register`, { body: { email, password: OLD } });
    const userId = reg.body.user.id as string;
    const login = await http("POST", `${base}/login`, { body: { email, password: OLD } });
    expect(login.status).toBe(200);
    const refreshToken = login.body.refreshToken as string;
    const waiting = async () => Number((await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0].n);
    // Holds the presented token's row: the refresh (first) and then the logout queue behind it.
    const holder = await pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", [createHash("sha256").update(refreshToken).digest()]);
      const refresh = http("POST", `${base}/refresh`, { body: { refreshToken } });
      await waitUntil("the refresh waits", async () => (await waiting()) >= 1, 20_000, 10);
      const logout = http("POST", `${base}/logout`, { headers: { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" }, body: { refreshToken } });
      await waitUntil("the logout waits", async () => (await waiting()) >= 2, 20_000, 10);
      await holder.query("COMMIT");
      const [refreshed, loggedOut] = await Promise.all([refresh, logout]);
      expect(loggedOut.status).toBe(204);
      expect(refreshed.status).toBe(200);
      const again = await http("POST", `${base}/refresh`, { body: { refreshToken: refreshed.body.refreshToken } });
      expect(again.status).toBe(401);
      const live = await pool.query("SELECT count(*)::int AS n FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL", [userId]);
      expect(live.rows[0].n).toBe(0);
    } finally {
      holder.release();
    }
  });
});

/**
 * A password change racing "log out everywhere" (session 40's race hunt, fixed in session 41). The
 * change committed, then issued its new session; a logout-all committed in between raised the token
 * epoch, so the session was refused and the change answered 401 although the password had been
 * changed. The session is now stored in the change's own transaction: the change answers 200, and
 * the logout-all that came after it ends that session like any other.
 */
describe("a password change racing a logout-all", () => {
  const ROUNDS = 5;
  it(`${ROUNDS} rounds: the logout-all commits right after the change: the change answers 200, the new password logs in, no session survives the logout-all`, async () => {
    const statuses: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const email = `pwall-${randomBytes(4).toString("hex")}@example.com`;
      const reg = await http("POST", `${base}/register`, { body: { email, password: OLD } });
      const userId = reg.body.user.id as string;
      const as = { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" };
      const waitingOn = async (sql: string) => Number((await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [`${sql}%`])).rows[0].n);
      // Holds the user row: the change (after its hashes) and then the logout-all queue behind it, so
      // the logout-all commits as soon as the change has, while the change still has work to do.
      const holder = await pool.connect();
      try {
        await holder.query("BEGIN");
        await holder.query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", [userId]);
        const change = http("POST", `${base}/password`, { headers: as, body: { currentPassword: OLD, newPassword: NEW } });
        await waitUntil("the change waits for the user row", async () => (await waitingOn("UPDATE users SET password_hash")) > 0, 20_000, 5);
        const logoutAll = http("POST", `${base}/logout`, { headers: as, body: { all: true } });
        await waitUntil("the logout-all waits behind it", async () => (await waitingOn("UPDATE users SET token_epoch")) > 0, 20_000, 5);
        await holder.query("COMMIT");
        const [changed, loggedOut] = await Promise.all([change, logoutAll]);
        expect(loggedOut.status).toBe(204);
        statuses.push(changed.status);
        expect(changed.status, JSON.stringify(changed.body)).toBe(200); // before: 401 UNAUTHORIZED "Unknown or disabled user", the password changed
        const stored = (await pool.query("SELECT token_epoch FROM users WHERE id = $1", [userId])).rows[0];
        expect(stored.token_epoch).toBe(2); // both happened, the change first
        // The logout-all came after the change: the change's session is over too.
        expect((await http("POST", `${base}/refresh`, { body: { refreshToken: changed.body.refreshToken } })).status).toBe(401);
        expect((await http("POST", `${base}/login`, { body: { email, password: NEW } })).status).toBe(200);
        expect((await http("POST", `${base}/login`, { body: { email, password: OLD } })).status).toBe(401);
      } finally {
        await holder.query("ROLLBACK").catch(() => undefined);
        holder.release();
      }
    }
    expect(statuses).toEqual(Array(ROUNDS).fill(200));
  });
});
