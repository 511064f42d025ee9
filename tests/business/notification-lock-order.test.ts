/**
 * notification-service's locks under contention, on the real service (PostgreSQL, Kafka, Redis; the
 * notification rig), session 58.
 *
 * Replay vs retention: a dead letter's replay (POST /dead-letters/:id/replay, data.ts replayDeadLetter)
 * locked the letter's row first and its delivery's row last (the UPDATE back to pending), a few round
 * trips apart; the retention pass (data.ts deleteOldDeliveries, the PeriodicDelete) locks the old
 * deliveries first (FOR UPDATE SKIP LOCKED) and then deletes their letters. A replay of a letter whose
 * delivery had just come of retention age met the pass in opposite orders: a deadlock (40P01), the
 * replay's 503 or the pass failed. Both now take the delivery first, then the letter. Run together
 * many times: no deadlock, no 5xx; each letter either replayed (its delivery pending, kept) or gone
 * with its delivery (the replay's 404).
 *
 * A webhook addition's per-user lock held by another session (a stuck holder in another replica):
 * the kit's bound on a lock wait (POSTGRES_LOCK_WAIT_MS, 1.5 s here) ends the crowd's waits with
 * 503 DATASTORE_UNAVAILABLE and Retry-After, nothing written; released, the next one is created.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { deleteOldDeliveries } from "../../services/src/services/notification-service/data";
import { useNotificationRig } from "../helpers/notification-rig";
import { ensureAccount } from "../helpers/accounts";
import { pg } from "../harness";

const rig = useNotificationRig(() => ({ POSTGRES_LOCK_WAIT_MS: "1500" }));
const RETENTION_S = 90 * 86_400;

/** A delivery of `user` that died `days` ago, with its dead letter; the letter's id. */
async function deadLetter(user: string, days: number): Promise<string> {
  const { rows } = await rig.accounts.query<{ dead_letter_id: string }>(
    `WITH d AS (INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status, attempts, created_at)
                VALUES ($1, $2, 'webhook', 'w', 'fill', 's', 'b', '{}', 'dead', 3, now() - make_interval(days => $3)) RETURNING delivery_id, user_id)
     INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) SELECT delivery_id, user_id, 'webhook', 'webhook: 410 gone', 3 FROM d RETURNING dead_letter_id::text`,
    [randomUUID(), user, days],
  );
  return rows[0].dead_letter_id;
}

describe("a dead letter's replay and the retention pass at once", () => {
  it("40 rounds of 5 replays beside a retention pass over their deliveries: no deadlock, no 5xx; each letter replayed and kept, or deleted with its delivery", async () => {
    const app = rig.svc.app;
    const outcomes = new Map<number, number>();
    const passErrors: string[] = [];
    // PostgreSQL's count of deadlocks in this file's database (before the fix: 13 in one run). Each backend
    // reports its own within a second or so: a late one is missed here, never a wrong one counted.
    const deadlocks = async () => Number((await rig.accounts.query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).rows[0].deadlocks);
    const deadlocksBefore = await deadlocks();
    for (let round = 0; round < 40; round++) {
      const user = randomUUID();
      await ensureAccount(rig.accounts, user);
      const letters = await Promise.all(Array.from({ length: 5 }, () => deadLetter(user, 100)));
      const [answers] = await Promise.all([
        Promise.all(letters.map((id) => rig.api("POST", `/dead-letters/${id}/replay`, user))),
        deleteOldDeliveries(app.pg, RETENTION_S, 5_000).catch((e: { code?: string; message?: string }) => passErrors.push(`${e.code}: ${e.message}`)),
      ]);
      for (const a of answers) outcomes.set(a.status, (outcomes.get(a.status) ?? 0) + 1);
      expect(answers.filter((a) => a.status >= 500), JSON.stringify(answers.filter((a) => a.status >= 500))).toEqual([]);
      // A replayed letter's delivery is pending (the pass leaves it); a letter the pass took went with its delivery.
      const left = await rig.accounts.query<{ dead_letter_id: string; replayed: boolean; status: string | null }>(
        `SELECT l.dead_letter_id::text, l.replayed_at IS NOT NULL AS replayed, d.status FROM nt_dead_letters l LEFT JOIN nt_deliveries d USING (delivery_id) WHERE l.dead_letter_id = ANY($1::bigint[])`,
        [letters],
      );
      for (const [i, id] of letters.entries()) {
        const row = left.rows.find((r) => r.dead_letter_id === id);
        if (answers[i].status === 200) expect(row, `round ${round} letter ${id}`).toMatchObject({ replayed: true, status: "pending" });
        else {
          expect(answers[i].status, `round ${round}: ${JSON.stringify(answers[i].body)}`).toBe(404);
          expect(row).toBeUndefined();
        }
      }
      // The next round's pass must not take this round's replayed deliveries once they are sent or dead again.
      await rig.accounts.query("DELETE FROM nt_dead_letters WHERE dead_letter_id = ANY($1::bigint[])", [letters]);
    }
    expect(passErrors).toEqual([]);
    expect(await deadlocks()).toBe(deadlocksBefore);
    expect([...outcomes.keys()].every((s) => s === 200 || s === 404)).toBe(true);
  });
});

describe("a webhook addition whose per-user lock another session holds (kit POSTGRES_LOCK_WAIT_MS)", () => {
  it("3 at once answer 503 DATASTORE_UNAVAILABLE with Retry-After at the bound, nothing written; once released one is created", async () => {
    const user = randomUUID();
    await ensureAccount(rig.accounts, user);
    const holder = new pg.Client({ connectionString: rig.env.POSTGRES_URL });
    await holder.connect();
    const WEBHOOK_LOCK_SPACE = 0x6e77; // data.ts ("nw")
    const add = (i: number) =>
      rig.svc.app.inject({ method: "POST", url: "/webhooks", headers: { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" }, payload: { url: `http://127.0.0.1:9/hook-${i}` } });
    try {
      await holder.query("SELECT pg_advisory_lock($1, hashtext($2))", [WEBHOOK_LOCK_SPACE, user]);
      const answers = await Promise.all([1, 2, 3].map(add));
      for (const a of answers) {
        expect(a.statusCode, a.body).toBe(503);
        expect(a.headers["retry-after"]).toBe("1");
        expect(a.json().error).toMatchObject({ code: "DATASTORE_UNAVAILABLE", message: "A datastore is unavailable; retry shortly" });
      }
      expect((await rig.accounts.query("SELECT count(*)::int AS n FROM nt_webhooks WHERE user_id = $1", [user])).rows[0].n).toBe(0);
      expect(rig.svc.app.pg.turns.waiting).toBe(0);
      await holder.query("SELECT pg_advisory_unlock($1, hashtext($2))", [WEBHOOK_LOCK_SPACE, user]);
      const created = await add(4);
      expect(created.statusCode, created.body).toBe(201);
      expect((await rig.accounts.query("SELECT url FROM nt_webhooks WHERE user_id = $1", [user])).rows).toEqual([{ url: "http://127.0.0.1:9/hook-4" }]);
    } finally {
      await holder.end();
    }
  });
});
