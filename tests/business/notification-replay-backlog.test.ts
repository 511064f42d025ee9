/**
 * notification-service: replaying dead letters and the per-channel backlog bound (data.ts
 * replayDeadLetter, POST /api/notifications/dead-letters/:id/replay), on real PostgreSQL (session 43's
 * business-logic hunt). Session 42 bounded a user's deliveries waiting on a channel at
 * NOTIFY_MAX_PENDING_PER_CHANNEL, at ingest; a replay put its dead delivery back to pending whatever
 * was waiting, and dead deliveries are not bounded (a user whose endpoint answers 410 has every notice
 * dead at once, kept NOTIFY_RETENTION_DAYS): replaying them queued as many as there were. Now a replay
 * finds the backlog full ("full": the route's 409 BACKLOG_FULL naming `id`) and leaves the dead letter
 * to replay later.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { replayDeadLetter } from "../../services/src/services/notification-service/data";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
}, 240_000);
afterAll(() => pool?.end());

/** A delivery of `user` on `channel` in `status`, with a dead letter when dead; the dead letter's id. */
async function add(user: string, status: "pending" | "dead", channel = "webhook"): Promise<string | undefined> {
  const { rows } = await pool.query<{ delivery_id: string }>(
    `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, status)
     VALUES ($1, $2, $3, 'w', 'fill', 's', 'b', '{}', $4) RETURNING delivery_id`,
    [randomUUID(), user, channel, status],
  );
  if (status !== "dead") return undefined;
  const l = await pool.query<{ dead_letter_id: string }>(
    "INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) VALUES ($1, $2, $3, 'webhook: 410 gone', 3) RETURNING dead_letter_id::text",
    [rows[0].delivery_id, user, channel],
  );
  return l.rows[0].dead_letter_id;
}

const pendingOf = async (user: string, channel = "webhook") =>
  (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM nt_deliveries WHERE user_id = $1 AND channel = $2 AND status = 'pending'", [user, channel])).rows[0].n;

const replay = (id: string, user: string | null, cap: number) => replayDeadLetter(pool, id, user, cap);

describe("notification-service: a replay waits like any other delivery (session 43)", () => {
  it("no replay beyond NOTIFY_MAX_PENDING_PER_CHANNEL deliveries waiting on the channel, the user's or an admin's", async () => {
    const CAP = 5;
    const mallory = randomUUID();
    const dead: string[] = [];
    for (let i = 0; i < 12; i++) dead.push((await add(mallory, "dead"))!);
    const outcomes = [];
    for (const id of dead) outcomes.push(await replay(id, mallory, CAP));
    // Before: 12 "replayed", 12 pending against a bound of 5.
    expect(outcomes).toEqual([...Array(CAP).fill("replayed"), ...Array(12 - CAP).fill("full")]);
    expect(await pendingOf(mallory)).toBe(CAP);
    // An admin's replay counts the owner's backlog too; a dead letter refused stays to replay later.
    expect(await replay(dead[CAP], null, CAP)).toBe("full");
    expect((await pool.query("SELECT replayed_at FROM nt_dead_letters WHERE dead_letter_id = $1", [dead[CAP]])).rows[0].replayed_at).toBeNull();
    await pool.query("UPDATE nt_deliveries SET status = 'sent' WHERE user_id = $1 AND status = 'pending'", [mallory]);
    expect(await replay(dead[CAP], mallory, CAP)).toBe("replayed");
    expect(await replay(dead[CAP], mallory, CAP)).toBe("already");
  });

  it("counts the dead letter's own channel, and only its user's backlog", async () => {
    const CAP = 2;
    const [alice, bob] = [randomUUID(), randomUUID()];
    await add(alice, "pending", "email");
    await add(alice, "pending", "email");
    await add(bob, "pending");
    await add(bob, "pending");
    const hook = (await add(alice, "dead"))!;
    const mail = (await add(alice, "dead", "email"))!;
    expect(await replay(mail, alice, CAP)).toBe("full");
    expect(await replay(hook, alice, CAP)).toBe("replayed");
    expect(await replay((await add(bob, "dead", "email"))!, bob, CAP)).toBe("replayed");
    expect(await replay(hook, bob, CAP)).toBeUndefined(); // not bob's
  });
});
