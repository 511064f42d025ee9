/**
 * The kit's bounded lock waits on real PostgreSQL (session 58; kit datastores/postgres-contention.ts).
 * A transaction with a `lock` waited for its turn in the process and then for PostgreSQL's advisory
 * lock without a bound: with the lock held by another session (a stuck holder in another replica),
 * every transaction of the key waited, in memory and on one connection, until its client gave up.
 * Now the two waits together end at POSTGRES_LOCK_WAIT_MS (or the transaction's `lockWaitMs`) with
 * LockWaitError or PostgreSQL's own lock_timeout, both SQLSTATE 55P03: transient, the 503 with
 * Retry-After a route answers (tests/business/notification-lock-order.test.ts sees it through a route).
 * Nothing of a transaction past its bound ran; the holder's release lets the next ones through.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgres } from "../../services/src/kit/datastores/postgres";
import { isTransientError } from "../../services/src/kit/transient-errors";
import { pg as pgModule } from "../harness";
import { useServers } from "../harness/shared";

const srv = useServers("postgres");
const silent = { warn: () => undefined } as unknown as Parameters<typeof createPostgres>[1];
const kitPool = (lockWaitMs: number) =>
  createPostgres({ POSTGRES_URL: srv.env.POSTGRES_URL, POSTGRES_POOL_MAX: 3, POSTGRES_CONNECT_TIMEOUT_MS: 30_000, POSTGRES_LOCK_WAIT_MS: lockWaitMs }, silent);

const SPACE = 0x7462; // "tb": this file's key space
let admin: InstanceType<typeof pgModule.Client>;

beforeAll(async () => {
  admin = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
  await admin.connect();
  await admin.query("CREATE TABLE IF NOT EXISTS lock_bound_rows (key text NOT NULL, i int NOT NULL)");
});
afterAll(() => admin?.end());

/** Another session (a stuck holder in another replica): holds the lock until `release()`. */
async function holdElsewhere(key: string): Promise<{ release(): Promise<void> }> {
  const c = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
  await c.connect();
  await c.query("SELECT pg_advisory_lock($1, hashtext($2))", [SPACE, key]);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await c.query("SELECT pg_advisory_unlock($1, hashtext($2))", [SPACE, key]);
      await c.end();
    },
  };
}

const advisoryWaiters = async () =>
  Number((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).rows[0].n);
const rowsOf = async (key: string) => (await admin.query<{ i: number }>("SELECT i FROM lock_bound_rows WHERE key = $1 ORDER BY i", [key])).rows.map((r) => r.i);
const settled = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: { code?: string; message?: string; reason?: string }) => ({ ok: false as const, error }));

/** A transaction of `key` that writes row `i` under the lock. */
const write = (db: ReturnType<typeof kitPool>, key: string, i: number, lockWaitMs?: number) =>
  settled(db.transaction(async (c) => (await c.query("INSERT INTO lock_bound_rows (key, i) VALUES ($1, $2)", [key, i]), i), { lock: { space: SPACE, key }, ...(lockWaitMs ? { lockWaitMs } : {}) }));

describe("a lock held by another session past the bound", () => {
  it("the one waiting in PostgreSQL and the ones waiting for the turn all end with 55P03, transient, at the bound; none wrote; the release lets the next ones through", async () => {
    const db = kitPool(1_500);
    const held = await holdElsewhere("stuck");
    try {
      const crowd = Array.from({ length: 4 }, (_, i) => write(db, "stuck", i));
      const answers = await Promise.all(crowd);
      expect(answers.map((a) => a.ok)).toEqual([false, false, false, false]);
      for (const a of answers) {
        expect(!a.ok && a.error.code).toBe("55P03");
        expect(!a.ok && isTransientError(a.error)).toBe(true); // 503 DATASTORE_UNAVAILABLE with Retry-After, never a 500
      }
      // The first waited in PostgreSQL (its lock_timeout), the others for the turn (or, handed it as their bound ran out, in PostgreSQL for the last millisecond).
      const inPostgres = answers.filter((a) => !a.ok && /canceling statement due to lock timeout/.test(a.error.message ?? "")).length;
      const forTheTurn = answers.filter((a) => !a.ok && a.error.reason === "waited").length;
      expect(inPostgres).toBeGreaterThanOrEqual(1);
      expect(inPostgres + forTheTurn).toBe(4);
      expect(await rowsOf("stuck")).toEqual([]);
      expect([db.turns.waiting, await advisoryWaiters()]).toEqual([0, 0]);
      await held.release();
      expect(await Promise.all([write(db, "stuck", 10), write(db, "stuck", 11)])).toEqual([{ ok: true, value: 10 }, { ok: true, value: 11 }]);
      expect(await rowsOf("stuck")).toEqual([10, 11]);
    } finally {
      await held.release();
      await db.close();
    }
  });

  it("released within the bound: the crowd waiting (one in PostgreSQL, the rest for the turn) goes through in order", async () => {
    const db = kitPool(120_000);
    const held = await holdElsewhere("released");
    try {
      const crowd = Array.from({ length: 5 }, (_, i) => write(db, "released", i));
      await expect.poll(async () => [await advisoryWaiters(), db.turns.waiting], { timeout: 60_000 }).toEqual([1, 4]);
      await held.release();
      expect((await Promise.all(crowd)).map((a) => a.ok && a.value)).toEqual([0, 1, 2, 3, 4]);
      expect(await rowsOf("released")).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await held.release();
      await db.close();
    }
  });

  it("a transaction's own lockWaitMs bounds it below the pool's setting; another key is not held up", async () => {
    const db = kitPool(120_000);
    const held = await holdElsewhere("own-bound");
    try {
      const waiting = write(db, "own-bound", 1); // the setting's 120 s
      await expect.poll(advisoryWaiters, { timeout: 60_000 }).toBe(1);
      const short = await write(db, "own-bound", 2, 300);
      expect(!short.ok && [short.error.code, short.error.reason]).toEqual(["55P03", "waited"]);
      expect(await write(db, "other-key", 3)).toEqual({ ok: true, value: 3 });
      await held.release();
      expect(await waiting).toEqual({ ok: true, value: 1 });
      expect(await rowsOf("own-bound")).toEqual([1]);
    } finally {
      await held.release();
      await db.close();
    }
  });
});

describe("the lock's timeout is the lock's alone", () => {
  it("fn's statements run with the session's lock_timeout (none), or the one its `begin` sets", async () => {
    const db = kitPool(1_500);
    try {
      const shown = (opts: { begin?: string }) => db.transaction(async (c) => (await c.query<{ lock_timeout: string }>("SHOW lock_timeout")).rows[0].lock_timeout, { lock: { space: SPACE, key: "show" }, ...opts });
      expect(await shown({})).toBe("0");
      expect(await shown({ begin: "SET LOCAL lock_timeout = 4321" })).toBe("4321ms");
      // begun rows still the begin's own (head statements are not counted among them)
      expect(await db.transaction(async (_c, begun) => begun, { lock: { space: SPACE, key: "show" }, begin: "SELECT 7 AS n" })).toEqual([{ n: 7 }]);
    } finally {
      await db.close();
    }
  });

  it("a row lock fn waits for longer than the lock's bound is not cut by it", async () => {
    const db = kitPool(300);
    const other = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
    await other.connect();
    try {
      await admin.query("INSERT INTO lock_bound_rows (key, i) VALUES ('row', 1)");
      await other.query("BEGIN");
      await other.query("UPDATE lock_bound_rows SET i = 2 WHERE key = 'row'");
      const mine = settled(db.transaction(async (c) => (await c.query("UPDATE lock_bound_rows SET i = 3 WHERE key = 'row'")).rowCount, { lock: { space: SPACE, key: "row" } }));
      await expect.poll(async () => Number((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE lock_bound_rows SET i = 3%'")).rows[0].n), { timeout: 60_000 }).toBe(1);
      // Past the 300 ms bound on the advisory lock, the row wait goes on:
      await new Promise((r) => setTimeout(r, 1_000));
      await other.query("COMMIT");
      expect(await mine).toEqual({ ok: true, value: 1 });
    } finally {
      await other.end().catch(() => undefined);
      await db.close();
    }
  });
});
