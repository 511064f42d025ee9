/**
 * The kit's transactions under contention on real PostgreSQL (session 56).
 *
 * Advisory locks: a transaction that waits on `pg_advisory_xact_lock` holds its pool connection while
 * it waits, so a crowd of one key (one user's requests at once, the holder slow) held every connection
 * of the pool, and the next transaction of ANOTHER key waited for the pool until its checkout timed out
 * (503 DATASTORE_UNAVAILABLE). Measured below as it was (the lock taken inside fn), then with the kit's
 * `transaction(fn, { lock })`: a transaction waits for its lock's turn in the process without a
 * connection, so one key holds one connection however many wait.
 *
 * Conflicts: `retryConflicts` runs a transaction again when PostgreSQL rolls it back for a deadlock
 * (40P01, provoked for real: two transactions updating two rows in opposite order) or a serialization
 * failure (40001, REPEATABLE READ); the last one is thrown, transient (503, never 500).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { conflictPauseMs, createPostgres, KeyedTurns, advisoryLockStatement } from "../../services/src/kit/datastores/postgres";
import { isTransientError } from "../../services/src/kit/transient-errors";
import { pg as pgModule } from "../harness";
import { useServers } from "../harness/shared";

const srv = useServers("postgres");
const silent = { warn: () => undefined } as unknown as Parameters<typeof createPostgres>[1];
/** A kit pool of `max` connections whose checkout gives up after `timeoutMs`; its lock waits end after 2 min (the kit's bound: kit-postgres-lock-bounds.test.ts), past any hold of these cases on a loaded host. */
const kitPool = (max: number, timeoutMs: number) =>
  createPostgres({ POSTGRES_URL: srv.env.POSTGRES_URL, POSTGRES_POOL_MAX: max, POSTGRES_CONNECT_TIMEOUT_MS: timeoutMs, POSTGRES_LOCK_WAIT_MS: 120_000 }, silent);

const SPACE = 0x7465; // "te": this file's key space
let admin: InstanceType<typeof pgModule.Client>;

beforeAll(async () => {
  admin = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
  await admin.connect();
  await admin.query("CREATE TABLE IF NOT EXISTS turn_rows (id int PRIMARY KEY, v text NOT NULL)");
});
afterAll(() => admin?.end());

/** Another session (a slow holder in another replica): holds the lock until `release()`. */
async function holdElsewhere(key: string): Promise<{ release(): Promise<void> }> {
  const c = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
  await c.connect();
  await c.query("SELECT pg_advisory_lock($1, hashtext($2))", [SPACE, key]);
  return {
    async release() {
      await c.query("SELECT pg_advisory_unlock($1, hashtext($2))", [SPACE, key]);
      await c.end();
    },
  };
}

/** Sessions of this file's database waiting on an advisory lock now. */
const advisoryWaiters = async () =>
  Number((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).rows[0].n);

const settled = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error: { code?: string; message?: string }) => ({ ok: false as const, error }));

describe("advisory locks: one key's crowd and another key's transaction", () => {
  it("measured as it was (the lock taken inside fn): 3 of one key on a pool of 3 hold every connection; another key's transaction times out for the pool", async () => {
    const db = kitPool(3, 1_500);
    const held = await holdElsewhere("crowd-before");
    try {
      const crowd = Array.from({ length: 3 }, () =>
        settled(db.transaction(async (c) => (await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SPACE, "crowd-before"]), "crowd"))),
      );
      await expect.poll(advisoryWaiters, { timeout: 30_000 }).toBe(3);
      const other = await settled(db.transaction(async (c) => (await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SPACE, "other-before"]), "other")));
      expect(other.ok).toBe(false);
      expect(!other.ok && other.error.message).toMatch(/timeout exceeded when trying to connect/);
      expect(!other.ok && isTransientError(other.error)).toBe(true); // the 503 a request got
      await held.release();
      expect((await Promise.all(crowd)).map((r) => r.ok && r.value)).toEqual(["crowd", "crowd", "crowd"]);
    } finally {
      await db.close();
    }
  });

  it("with transaction(fn, { lock }): 6 of one key hold one connection, another key's transaction commits, and the 6 run in the order asked once the holder lets go", async () => {
    const db = kitPool(3, 1_500);
    const held = await holdElsewhere("crowd");
    try {
      const order: number[] = [];
      const crowd = Array.from({ length: 6 }, (_, i) => settled(db.transaction(async () => (order.push(i), i), { lock: { space: SPACE, key: "crowd" } })));
      await expect.poll(advisoryWaiters, { timeout: 30_000 }).toBe(1);
      await expect.poll(() => db.turns.waiting, { timeout: 30_000 }).toBe(5);
      expect(db.pool.totalCount).toBe(1);
      // Past the pool's checkout timeout (1.5 s) the crowd still waits, on one connection.
      const other = await settled(db.transaction(async (c) => (await c.query<{ v: string }>("SELECT 'other' AS v")).rows[0].v, { lock: { space: SPACE, key: "other" } }));
      expect(other).toEqual({ ok: true, value: "other" });
      expect(await advisoryWaiters()).toBe(1);
      await held.release();
      expect((await Promise.all(crowd)).map((r) => r.ok && r.value)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(order).toEqual([0, 1, 2, 3, 4, 5]);
      expect(db.turns.waiting).toBe(0);
    } finally {
      await db.close();
    }
  });

  it("the lock still serializes across processes: two pools' transactions of one key take turns in PostgreSQL", async () => {
    const [a, b] = [kitPool(2, 10_000), kitPool(2, 10_000)];
    try {
      await admin.query("INSERT INTO turn_rows (id, v) VALUES (1, '0') ON CONFLICT (id) DO UPDATE SET v = '0'");
      // Read, pause, write: without the lock two of them would read the same value and one increment would be lost.
      const increment = (db: typeof a) =>
        db.transaction(async (c) => {
          const { rows } = await c.query<{ v: string }>("SELECT v FROM turn_rows WHERE id = 1");
          await c.query("SELECT pg_sleep(0.02)");
          await c.query("UPDATE turn_rows SET v = $1 WHERE id = 1", [String(Number(rows[0].v) + 1)]);
        }, { lock: { space: SPACE, key: "counter" } });
      await Promise.all(Array.from({ length: 8 }, (_, i) => increment(i % 2 ? a : b)));
      expect((await admin.query("SELECT v FROM turn_rows WHERE id = 1")).rows[0].v).toBe("8");
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a transaction that fails releases its turn: the next one of the key runs", async () => {
    const db = kitPool(2, 10_000);
    try {
      const failing = settled(db.transaction(async (c) => c.query("SELECT 1/0"), { lock: { space: SPACE, key: "failing" } }));
      const next = db.transaction(async () => "next", { lock: { space: SPACE, key: "failing" } });
      expect((await failing).ok).toBe(false);
      expect(await next).toBe("next");
    } finally {
      await db.close();
    }
  });

  it("lock statements: text keys quoted and hashed, int keys checked", () => {
    expect(advisoryLockStatement({ space: 1, key: "o'brien" })).toBe("SELECT pg_advisory_xact_lock(1, hashtext('o''brien'))");
    expect(advisoryLockStatement({ space: 1, key: 7 })).toBe("SELECT pg_advisory_xact_lock(1, 7)");
    expect(advisoryLockStatement(0x61646d6e)).toBe("SELECT pg_advisory_xact_lock(1633971566)");
    expect(() => advisoryLockStatement({ space: 2 ** 31, key: "x" })).toThrow(/int4/);
    expect(() => advisoryLockStatement({ space: 1, key: 1.5 })).toThrow(/int4/);
    expect(() => advisoryLockStatement(Number.NaN)).toThrow(/integer/);
  });

  it("KeyedTurns: one name at a time in the order asked, other names alongside, nothing kept once done", async () => {
    const turns = new KeyedTurns();
    const log: string[] = [];
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    const first = turns.run("a", async () => (log.push("a1 start"), await gate, log.push("a1 end")));
    const second = turns.run("a", async () => log.push("a2"));
    const other = turns.run("b", async () => log.push("b1"));
    await other;
    expect(log).toEqual(["a1 start", "b1"]);
    expect(turns.waiting).toBe(1);
    letGo();
    await Promise.all([first, second]);
    expect(log).toEqual(["a1 start", "b1", "a1 end", "a2"]);
    expect(turns.waiting).toBe(0);
    expect((turns as unknown as { lines: Map<string, unknown> }).lines.size).toBe(0);
  });
});

describe("retryConflicts: a transaction PostgreSQL rolled back for a conflict runs again", () => {
  beforeAll(async () => {
    await admin.query("INSERT INTO turn_rows (id, v) VALUES (10, 'start'), (11, 'start') ON CONFLICT (id) DO UPDATE SET v = 'start'");
  });

  /**
   * A real deadlock: `other` (a plain session) updates row 11, the kit's transaction updates row 10 and
   * then waits for 11, and `other` then waits for 10. The kit's side is the one PostgreSQL picks:
   * `other` checks for a deadlock only after 60 s (deadlock_timeout, set on its session), the kit's
   * connections after the server's 1 s. Answers what the kit's transaction resolved to and its tries.
   */
  async function deadlock(retryConflicts: number | undefined) {
    const db = kitPool(2, 10_000);
    const other = new pgModule.Client({ connectionString: srv.env.POSTGRES_URL });
    await other.connect();
    try {
      await other.query("SET deadlock_timeout = '60s'");
      await other.query("BEGIN");
      await other.query("UPDATE turn_rows SET v = 'other' WHERE id = 11");
      let tries = 0;
      const mine = settled(
        db.transaction(async (c) => {
          tries++;
          await c.query("UPDATE turn_rows SET v = 'mine' WHERE id = 10");
          await c.query("UPDATE turn_rows SET v = 'mine' WHERE id = 11");
          return tries;
        }, retryConflicts === undefined ? {} : { retryConflicts }),
      );
      // The kit's transaction waits for row 11; then `other` closes the cycle.
      await expect.poll(async () => Number((await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE turn_rows SET v = ''mine'' WHERE id = 11%'")).rows[0].n), { timeout: 30_000 }).toBe(1);
      await other.query("UPDATE turn_rows SET v = 'other' WHERE id = 10");
      await other.query("COMMIT");
      const result = await mine;
      const rows = (await admin.query<{ id: number; v: string }>("SELECT id, v FROM turn_rows WHERE id IN (10, 11) ORDER BY id")).rows.map((r) => r.v);
      return { result, tries, rows };
    } finally {
      await other.end().catch(() => undefined);
      await db.close();
    }
  }

  it("a real deadlock (two rows locked in opposite order): the kit's transaction is rolled back with 40P01, runs again and commits", async () => {
    const { result, tries, rows } = await deadlock(2);
    expect(result).toEqual({ ok: true, value: 2 });
    expect(tries).toBe(2);
    expect(rows).toEqual(["mine", "mine"]);
  });

  it("without retryConflicts (the default) the deadlock is thrown: 40P01, transient (503 DATASTORE_UNAVAILABLE, never 500)", async () => {
    const { result, tries, rows } = await deadlock(undefined);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe("40P01");
    expect(!result.ok && isTransientError(result.error)).toBe(true);
    expect(tries).toBe(1);
    expect(rows).toEqual(["other", "other"]);
  });

  it("a serialization failure (REPEATABLE READ, the row changed after the snapshot) runs again; once the tries run out the last 40001 is thrown, transient", async () => {
    const db = kitPool(2, 10_000);
    try {
      await admin.query("INSERT INTO turn_rows (id, v) VALUES (12, '0') ON CONFLICT (id) DO UPDATE SET v = '0'");
      const run = (retryConflicts: number, changeEvery: number) => {
        let tries = 0;
        const p = settled(
          db.transaction(
            async (c) => {
              tries++;
              const { rows } = await c.query<{ v: string }>("SELECT v FROM turn_rows WHERE id = 12"); // the snapshot
              // Another session changes the row after it: on the tries `changeEvery` picks.
              if (tries % changeEvery === 1 || changeEvery === 1) await admin.query("UPDATE turn_rows SET v = (v::int + 100)::text WHERE id = 12");
              await c.query("UPDATE turn_rows SET v = $1 WHERE id = 12", [String(Number(rows[0].v) + 1)]);
              return tries;
            },
            { begin: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", retryConflicts },
          ),
        );
        return p.then((result) => ({ result, tries }));
      };
      // The first try's row changes under it (40001); the second's does not: it commits on what it read.
      const once = await run(3, 2);
      expect(once).toEqual({ result: { ok: true, value: 2 }, tries: 2 });
      expect((await admin.query("SELECT v FROM turn_rows WHERE id = 12")).rows[0].v).toBe("101");
      // Changed under every try: 1 + 2 tries, then the 40001.
      const always = await run(2, 1);
      expect(always.tries).toBe(3);
      expect(!always.result.ok && always.result.error.code).toBe("40001");
      expect(!always.result.ok && isTransientError(always.result.error)).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("other errors are not run again", async () => {
    const db = kitPool(2, 10_000);
    try {
      let tries = 0;
      const r = await settled(db.transaction(async (c) => (tries++, c.query("SELECT 1/0")), { retryConflicts: 3 }));
      expect(!r.ok && r.error.code).toBe("22012");
      expect(tries).toBe(1);
    } finally {
      await db.close();
    }
  });

  it("the pause before a try is random, at least 1 ms, and at most 10 ms doubling per try up to 200 ms", () => {
    expect(conflictPauseMs(1, () => 0)).toBe(1);
    expect(conflictPauseMs(1, () => 1)).toBe(11);
    expect(conflictPauseMs(3, () => 1)).toBe(41);
    expect(conflictPauseMs(20, () => 1)).toBe(201);
  });
});
