/**
 * user-management's sweep of owed session revocations (session-revocations.ts, migrations 0451, 0457)
 * claims, then publishes, then deletes (session 42). Before, it published to Dragonfly inside the
 * PostgreSQL transaction that held its rows FOR UPDATE: every Redis round trip of a batch ran with the
 * transaction open and a pool connection held, the rows locked against every other writer. Real
 * PostgreSQL and Redis.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis } from "../harness";
import type { PostgresClient } from "../../services/src/kit";
import * as revocations from "../../services/src/services/user-management/session-revocations";
import { publishSessionRevoked, revokedSessionKey } from "../../services/src/services/user-management/user-state";
import { migratedKitPostgres } from "../helpers/schemas";
import { PATIENCE_MS } from "../helpers/patience";

const { publishOwedRevocations, recordUnpublishedRevocation } = revocations;
const srv = useServers("postgres", "redis");
let db: PostgresClient;
let other: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;

beforeAll(async () => {
  db = await migratedKitPostgres(srv.postgres.url, { info() {}, debug() {}, warn() {}, error() {} } as never, 4);
  other = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  redis = new Redis(srv.redis.url);
}, 120_000);

afterAll(async () => {
  redis?.disconnect();
  await other?.end();
  await db?.close();
});

beforeEach(async () => {
  await other.query("DELETE FROM session_revocations_unpublished");
});

async function owe(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  for (const id of ids) await recordUnpublishedRevocation(other, id);
  return ids;
}
const owedNow = async () => (await other.query<{ family_id: string }>("SELECT family_id FROM session_revocations_unpublished ORDER BY family_id")).rows.map((r) => r.family_id);
const inDragonfly = async (id: string) => (await redis.get(revokedSessionKey(id))) === "1";

describe("the owed-revocation sweep claims, publishes with no transaction open, then deletes (session 42)", () => {
  it("holds no transaction and no row lock while it talks to Dragonfly: the rows stay free for the revoking routes", async () => {
    const ids = await owe(3);
    const seen: { lockable: boolean; idleInTransaction: number }[] = [];
    const n = await publishOwedRevocations(
      db,
      async (familyId) => {
        // What another writer meets while the sweep waits on Dragonfly. Before: the row was locked
        // (FOR UPDATE NOWAIT refused, 55P03) and the sweep's connection sat idle in its transaction.
        const c = await other.connect();
        try {
          await c.query("BEGIN");
          const lockable = await c.query("SELECT 1 FROM session_revocations_unpublished WHERE family_id = $1 FOR UPDATE NOWAIT", [familyId]).then(
            () => true,
            (e: { code?: string }) => (e.code === "55P03" ? false : Promise.reject(e)),
          );
          await c.query("ROLLBACK");
          const idle = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()");
          seen.push({ lockable, idleInTransaction: idle.rows[0].n });
        } finally {
          c.release();
        }
        await publishSessionRevoked(redis, familyId);
      },
      100,
    );
    expect(n).toBe(3);
    expect(seen).toEqual(ids.map(() => ({ lockable: true, idleInTransaction: 0 })));
    for (const id of ids) expect(await inDragonfly(id)).toBe(true);
    expect(await owedNow()).toEqual([]);
  });

  it("a pass that dies between publishing and deleting leaves its rows claimed: no other pass takes them within the lease, the next one after it publishes them again", async () => {
    const ids = await owe(2);
    // The dead pass: claimed (committed) and published, never deleted.
    const claimed = await revocations.claimOwedRevocations(db, randomUUID(), 100, PATIENCE_MS);
    expect(claimed.sort()).toEqual([...ids].sort());
    // Leased for PATIENCE_MS from the claim (a loaded machine's pause inside a short lease would end it before the first check).
    const left = (await other.query<{ ms: number }>("SELECT extract(epoch FROM claimed_until - now()) * 1000 AS ms FROM session_revocations_unpublished WHERE family_id = ANY($1::uuid[])", [ids])).rows.map((r) => Number(r.ms));
    expect(left).toHaveLength(2);
    for (const ms of left) {
      expect(ms).toBeGreaterThan(PATIENCE_MS / 2);
      expect(ms).toBeLessThanOrEqual(PATIENCE_MS);
    }
    for (const id of claimed) await publishSessionRevoked(redis, id);
    await redis.del(...ids.map(revokedSessionKey)); // to see whether a later pass publishes again

    const published: string[] = [];
    const publish = async (id: string) => {
      published.push(id);
      await publishSessionRevoked(redis, id);
    };
    expect(await publishOwedRevocations(db, publish, 100)).toBe(0); // within the lease: left alone
    expect(published).toEqual([]);
    // The lease runs out (its end moved to the past rather than waited for).
    await other.query("UPDATE session_revocations_unpublished SET claimed_until = now() - interval '1 millisecond' WHERE family_id = ANY($1::uuid[])", [ids]);
    expect(await publishOwedRevocations(db, publish, 100)).toBe(2); // after it: published again, deleted
    expect(published.sort()).toEqual([...ids].sort());
    for (const id of ids) expect(await inDragonfly(id)).toBe(true);
    expect(await owedNow()).toEqual([]);
  });

  it("a publication that fails ends the pass: what it published is deleted, the rest given back at once for the next pass", async () => {
    await owe(4);
    let calls = 0;
    const failing = async (id: string) => {
      if (++calls === 3) throw new Error("Dragonfly unreachable");
      await publishSessionRevoked(redis, id);
    };
    await expect(publishOwedRevocations(db, failing, 100)).rejects.toThrow("Dragonfly unreachable");
    const left = await owedNow();
    expect(left).toHaveLength(2);
    const claims = await other.query("SELECT count(*)::int AS n FROM session_revocations_unpublished WHERE claim IS NOT NULL");
    expect(claims.rows[0].n).toBe(0);
    // The next pass (any replica) takes them without waiting for a lease.
    expect(await publishOwedRevocations(db, (id) => publishSessionRevoked(redis, id), 100)).toBe(2);
    for (const id of left) expect(await inDragonfly(id)).toBe(true);
    expect(await owedNow()).toEqual([]);
  });

  it("concurrent passes (replicas) publish every owed revocation once and leave nothing owed", async () => {
    const ids = await owe(60);
    const count = new Map<string, number>();
    const publish = async (id: string) => {
      count.set(id, (count.get(id) ?? 0) + 1);
      await publishSessionRevoked(redis, id);
    };
    const passes = await Promise.all([0, 1, 2, 3].map(() => publishOwedRevocations(db, publish, 10)));
    let total = passes.reduce((a, b) => a + b, 0);
    while (total < ids.length) {
      const n = await publishOwedRevocations(db, publish, 10);
      expect(n).toBeGreaterThan(0);
      total += n;
    }
    expect([...count.values()].every((c) => c === 1)).toBe(true);
    expect([...count.keys()].sort()).toEqual([...ids].sort());
    expect(await owedNow()).toEqual([]);
  });

  it("drops records older than an access token can live, unpublished", async () => {
    const [old, fresh] = await owe(2);
    await other.query("UPDATE session_revocations_unpublished SET revoked_at = now() - interval '2 hours' WHERE family_id = $1", [old]);
    const published: string[] = [];
    expect(await publishOwedRevocations(db, async (id) => void published.push(id), 100)).toBe(2);
    expect(published).toEqual([fresh]);
    expect(await owedNow()).toEqual([]);
  });
});
