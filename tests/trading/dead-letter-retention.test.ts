/**
 * Retention of PostgreSQL's dead letters on real PostgreSQL (session 56; every letter was kept for good
 * before): database-service deletes the letters replayed longer ago than
 * DEAD_LETTER_REPLAYED_RETENTION_DAYS, a bounded batch a pass, oldest replay first, skipping one a
 * replay holds; a letter not replayed stays however old, and so does one whose replay is only claimed.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../services/src/kit";
import { deleteReplayedLetters } from "../../services/src/services/database-service/dead-letters";
import { ADMIN, useDatabaseServiceRig } from "../helpers/database-service-rig";

// PostgreSQL's letters only; each case starts the service with its own retention.
const rig = useDatabaseServiceRig({ clickhouse: false, service: false });
const GROUP = `dead-letter-retention-${randomBytes(4).toString("hex")}`;

/** A letter of this file's group named by its topic; `replayedDaysAgo` null: not replayed. */
async function letter(name: string, ages: { createdDaysAgo: number; replayedDaysAgo: number | null; claimed?: boolean }): Promise<string> {
  const { rows } = await rig.pool.query<{ id: string }>(
    `INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason, created_at, replayed_at, replayed_offset, replay_claim, replay_claimed_at)
     VALUES ($1, $2, 0, 1, 'k', 'v', '[]', 'r', now() - make_interval(days => $3), now() - make_interval(days => $4::int), CASE WHEN $4::int IS NULL THEN NULL ELSE 5 END,
             CASE WHEN $5 THEN gen_random_uuid() END, CASE WHEN $5 THEN now() - make_interval(days => $3) END)
     RETURNING id::text AS id`,
    [GROUP, name, ages.createdDaysAgo, ages.replayedDaysAgo, ages.claimed ?? false],
  );
  return rows[0].id;
}

const left = async () =>
  (await rig.pool.query<{ topic: string }>("SELECT topic FROM consumer_dead_letters WHERE consumer_group = $1 ORDER BY topic", [GROUP])).rows.map((r) => r.topic);

describe("replayed dead letters past DEAD_LETTER_REPLAYED_RETENTION_DAYS", () => {
  it("go a bounded batch a pass, oldest replay first; those not replayed, only claimed, or replayed since stay", async () => {
    await letter("replayed-400", { createdDaysAgo: 401, replayedDaysAgo: 400 });
    await letter("replayed-120", { createdDaysAgo: 130, replayedDaysAgo: 120 });
    await letter("replayed-91", { createdDaysAgo: 95, replayedDaysAgo: 91 });
    await letter("replayed-89", { createdDaysAgo: 95, replayedDaysAgo: 89 });
    await letter("replayed-1", { createdDaysAgo: 200, replayedDaysAgo: 1 });
    await letter("waiting-500", { createdDaysAgo: 500, replayedDaysAgo: null });
    await letter("claimed-300", { createdDaysAgo: 300, replayedDaysAgo: null, claimed: true });
    await letter("waiting-0", { createdDaysAgo: 0, replayedDaysAgo: null });

    // Other files' letters share the table: a pass is judged by this group's rows only.
    expect(await deleteReplayedLetters(rig.pool, 90, 1)).toBe(1);
    expect(await left()).not.toContain("replayed-400");
    expect(await left()).toContain("replayed-120");
    while ((await deleteReplayedLetters(rig.pool, 90, 2)) > 0);
    expect(await left()).toEqual(["claimed-300", "replayed-1", "replayed-89", "waiting-0", "waiting-500"]);
  });

  it("skips a letter a transaction holds (a replay marking it) instead of waiting, and takes it at a later pass", async () => {
    const held = await letter("held-200", { createdDaysAgo: 210, replayedDaysAgo: 200 });
    const holder = await rig.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM consumer_dead_letters WHERE id = $1 FOR UPDATE", [held]);
      while ((await deleteReplayedLetters(rig.pool, 90, 10)) > 0);
      expect(await left()).toContain("held-200");
      await holder.query("COMMIT");
    } finally {
      holder.release();
    }
    while ((await deleteReplayedLetters(rig.pool, 90, 10)) > 0);
    expect(await left()).not.toContain("held-200");
  });

  it("a deleted letter is then unknown to the operator's routes (404), a kept one still shown", async () => {
    const gone = await letter("gone-100", { createdDaysAgo: 110, replayedDaysAgo: 100 });
    const kept = await letter("kept-10", { createdDaysAgo: 110, replayedDaysAgo: 10 });
    while ((await deleteReplayedLetters(rig.pool, 90, 10)) > 0);
    const db = await rig.start({ DEAD_LETTER_REPLAYED_RETENTION_DAYS: "90" });
    try {
      const r1 = await db.app.inject({ method: "GET", url: `/dead-letters/${gone}`, headers: ADMIN });
      expect(r1.statusCode).toBe(404);
      const r2 = await db.app.inject({ method: "GET", url: `/dead-letters/${kept}`, headers: ADMIN });
      expect(r2.statusCode).toBe(200);
      expect(r2.json()).toMatchObject({ id: kept, topic: "kept-10" });
    } finally {
      await db.close();
    }
  });

  it("the service refuses a retention of 0 days at start, naming the setting", async () => {
    const started = rig.start({ DEAD_LETTER_REPLAYED_RETENTION_DAYS: "0" });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(/DEAD_LETTER_REPLAYED_RETENTION_DAYS/);
  });
});
