/**
 * notification-service's retention of deliveries (data.ts deleteOldDeliveries, the PeriodicDelete of
 * index.ts) on real PostgreSQL, a database of this file's own (session 42's business-logic hunt).
 * A pass looks at a bounded batch of the oldest rows by id and deleted the sent ones among them older
 * than NOTIFY_RETENTION_DAYS. Two ways for a user to stop it for everyone, for good:
 * - a sent delivery with a dead letter (it died, its user replayed it, it was then sent) could not be
 *   deleted: the dead letter refers to it, so the pass's DELETE failed on the foreign key, and the next
 *   pass took the same oldest rows and failed again;
 * - dead deliveries were kept for ever, and the oldest rows by id are the batch: once a batch's worth of
 *   dead (or pending) rows lay at the bottom of the table (a user whose endpoint answers 410 has every
 *   notice dead at once), no pass looked beyond them again.
 * Now a pass takes the oldest deliveries that are not pending (a partial index, migration 0464) and
 * deletes those older than the retention, sent or dead, with their dead letters.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { deleteOldDeliveries } from "../../services/src/services/notification-service/data";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
}, 240_000);
afterAll(() => pool?.end());

const RETENTION_S = 90 * 86_400;

/** A delivery of `user` made `days` ago in `status`, with a dead letter when asked; its id. */
async function add(user: string, key: string, status: string, days: number, deadLetter = false): Promise<string> {
  const { rows } = await pool.query<{ delivery_id: string }>(
    `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status, created_at)
     VALUES ($1, $2, 'webhook', 'w', 'fill', 's', 'b', '{}', $3, now() - make_interval(days => $4)) RETURNING delivery_id`,
    [key, user, status, days],
  );
  if (deadLetter)
    await pool.query("INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts, replayed_at) VALUES ($1, $2, 'webhook', 'webhook: 410 gone', 3, $3)", [
      rows[0].delivery_id, user, status === "dead" ? null : new Date(),
    ]);
  return rows[0].delivery_id;
}

const left = async (user: string) => (await pool.query("SELECT dedup_key FROM nt_deliveries WHERE user_id = $1 ORDER BY delivery_id", [user])).rows.map((r) => r.dedup_key);

/** Passes of `batch` rows until one deletes nothing (as the PeriodicDelete runs them through a backlog). */
async function drain(batch: number): Promise<void> {
  for (let i = 0; i < 100 && (await deleteOldDeliveries(pool, RETENTION_S, batch)) > 0; i++);
}

describe("notification-service: retention of deliveries (session 42)", () => {
  it("an old delivery sent after its dead letter was replayed is deleted with its dead letter, and the pass goes on", async () => {
    const user = randomUUID();
    const replayed = await add(user, "old-replayed-then-sent", "sent", 100, true);
    await add(user, "old-sent", "sent", 100);
    await add(user, "recent-sent", "sent", 10);
    // Before: "update or delete on table nt_deliveries violates foreign key constraint", every pass.
    await drain(1_000);
    expect(await left(user)).toEqual(["recent-sent"]);
    expect((await pool.query("SELECT count(*)::int AS n FROM nt_dead_letters WHERE delivery_id = $1", [replayed])).rows[0].n).toBe(0);
  });

  it("old dead deliveries go with their dead letters; a batch's worth of old pending and dead rows at the bottom does not stop the pass", async () => {
    // This file's own database, emptied: the oldest rows are these, more than a batch of them pending
    // or dead, then an old sent delivery behind them.
    await pool.query("TRUNCATE nt_dead_letters, nt_deliveries");
    const user = randomUUID();
    for (let i = 0; i < 3; i++) await add(user, `old-pending-${i}`, "pending", 100);
    for (let i = 0; i < 3; i++) await add(user, `old-dead-${i}`, "dead", 100, true);
    await add(user, "old-sent-behind", "sent", 100);
    await add(user, "recent-dead", "dead", 10, true);
    await add(user, "recent-pending", "pending", 10);
    // Before: the passes of 3 rows looked at the pending (or dead) ones only, deleted nothing and stopped.
    await drain(3);
    expect(await left(user)).toEqual(["old-pending-0", "old-pending-1", "old-pending-2", "recent-dead", "recent-pending"]);
    expect((await pool.query("SELECT count(*)::int AS n FROM nt_dead_letters WHERE user_id = $1", [user])).rows[0].n).toBe(1);
  });
});
