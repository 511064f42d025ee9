/**
 * Retention of ClickHouse's dead letters and of their replay ledger in PostgreSQL (session 59; both
 * were kept for good before), on ClickHouse 18.16 and PostgreSQL: database-service deletes the letters
 * set aside longer ago than DEAD_LETTER_CH_RETENTION_DAYS, replayed or not, by one mutation, then the
 * ids of letters gone, and the ledger rows replayed longer ago than DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS
 * only once their letters are gone (a row deleted first would show a replayed letter as replayable).
 * 18.16 has no TTL: the same clause production's 24.8 takes is refused here (first case).
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { promClient } from "../harness/deps";
import { clickhouseDateTime, ConfigError, unfinishedMutations } from "../../services/src/kit";
import { clickHouseLetterId } from "../../services/src/services/database-service/clickhouse-dead-letters";
import { ClickHouseLetterRetention, LETTER_IDS, LETTERS, stuckMutationsGauge } from "../../services/src/services/database-service/clickhouse-dead-letter-retention";
import { ADMIN, useDatabaseServiceRig } from "../helpers/database-service-rig";

const rig = useDatabaseServiceRig();
const GROUP = `ch-retention-${randomBytes(3).toString("hex")}`;
const DAY_MS = 86_400_000;

const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

/** A letter of this file's group at `offset` (its topic names it), as a consumer without PostgreSQL writes it; answers its id. */
async function letter(topic: string, offset: number, createdDaysAgo: number): Promise<string> {
  await rig.ch.insert(LETTERS, [
    {
      consumer_group: GROUP,
      topic,
      msg_partition: 0,
      msg_offset: offset,
      msg_key_base64: "aw==",
      msg_value_base64: "dg==",
      msg_key_null: 0,
      msg_value_null: 0,
      msg_headers: "[]",
      reason: "PoisonMessageError: r",
      created_at: clickhouseDateTime(daysAgo(createdDaysAgo)),
    },
  ]);
  return clickHouseLetterId(GROUP, topic, 0, String(offset));
}

/** The ledger row of a letter: replayed, only claimed, or released (neither), that many days ago. */
async function ledger(id: string, topic: string, offset: number, state: { replayedDaysAgo?: number; claimedDaysAgo?: number }): Promise<void> {
  await rig.pool.query(
    `INSERT INTO ch_dead_letter_replays (letter_id, consumer_group, topic, msg_partition, msg_offset, replay_claim, replay_claimed_at, replayed_at, replayed_offset)
     VALUES ($1, $2, $3, 0, $4, CASE WHEN $5::int IS NULL THEN NULL ELSE gen_random_uuid() END, now() - make_interval(days => $5::int),
             now() - make_interval(days => $6::int), CASE WHEN $6::int IS NULL THEN NULL ELSE 77 END)`,
    [id, GROUP, topic, offset, state.claimedDaysAgo ?? null, state.replayedDaysAgo ?? null],
  );
}

const topicsLeft = async () => (await rig.ch.query<{ topic: string }>(`SELECT topic FROM ${LETTERS} WHERE consumer_group = {g:String} ORDER BY topic`, { g: GROUP })).map((r) => r.topic);
const idsLeft = async () => (await rig.ch.query<{ topic: string }>(`SELECT topic FROM ${LETTER_IDS} WHERE consumer_group = {g:String} ORDER BY topic`, { g: GROUP })).map((r) => r.topic);
const ledgerLeft = async () => (await rig.pool.query<{ topic: string }>("SELECT topic FROM ch_dead_letter_replays WHERE consumer_group = $1 ORDER BY topic", [GROUP])).rows.map((r) => r.topic);

async function mutationsDone(): Promise<void> {
  for (let i = 0; (await unfinishedMutations(rig.ch, LETTERS)) + (await unfinishedMutations(rig.ch, LETTER_IDS)) > 0; i++) {
    if (i > 300) throw new Error("a mutation did not finish in 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("ClickHouse's dead letters past DEAD_LETTER_CH_RETENTION_DAYS, their ledger past DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS", () => {
  it("18.16 refuses a TTL (what production's 24.8 would take): the retention is a mutation", async () => {
    await expect(rig.ch.command(`ALTER TABLE ${LETTERS} MODIFY TTL created_at + toIntervalDay(90)`)).rejects.toThrow(/Syntax error/);
  });

  it("letters older than the retention go, replayed or not, then their ids; a ledger row goes only once its letter is gone and past its own retention", async () => {
    const oldReplayed = await letter("a-old-replayed-190", 1, 200);
    await ledger(oldReplayed, "a-old-replayed-190", 1, { replayedDaysAgo: 190 });
    const replayed100 = await letter("b-replayed-100", 2, 120);
    await ledger(replayed100, "b-replayed-100", 2, { replayedDaysAgo: 100 });
    await letter("c-waiting-95", 3, 95);
    const waiting89 = await letter("d-waiting-89", 4, 89);
    await ledger(waiting89, "d-waiting-89", 4, {}); // a released replay: neither claimed nor replayed
    const replayed5 = await letter("e-replayed-5", 5, 10);
    await ledger(replayed5, "e-replayed-5", 5, { replayedDaysAgo: 5 });
    const claimed = await letter("f-claimed-0", 6, 1);
    await ledger(claimed, "f-claimed-0", 6, { claimedDaysAgo: 0 });
    // A claim left by a replay that crashed long ago, of a letter set aside before it.
    const staleClaim = await letter("g-stale-claim-200", 7, 250);
    await ledger(staleClaim, "g-stale-claim-200", 7, { claimedDaysAgo: 200 });

    const retention = new ClickHouseLetterRetention(rig.ch, rig.pool, { letters: 90, replays: 180 });
    // First pass: the letters' delete is issued, the ledger untouched (the delete may not have run yet).
    expect(await retention.pass()).toEqual({ mutations: [LETTERS], ledgerRows: 0 });
    expect(await ledgerLeft()).toEqual(["a-old-replayed-190", "b-replayed-100", "d-waiting-89", "e-replayed-5", "f-claimed-0", "g-stale-claim-200"]);
    await mutationsDone();
    expect(await topicsLeft()).toEqual(["d-waiting-89", "e-replayed-5", "f-claimed-0"]);
    expect(await idsLeft()).toHaveLength(7);

    // Second pass: the ids of the letters gone, and the ledger rows past 180 days and the released one.
    expect(await retention.pass()).toEqual({ mutations: [LETTER_IDS], ledgerRows: 3 });
    await mutationsDone();
    expect(await idsLeft()).toEqual(["d-waiting-89", "e-replayed-5", "f-claimed-0"]);
    expect(await ledgerLeft()).toEqual(["b-replayed-100", "e-replayed-5", "f-claimed-0"]);
    // Nothing left to do: a pass issues nothing.
    expect(await retention.pass()).toEqual({ mutations: [], ledgerRows: 0 });

    // The operator's routes: a letter gone is unknown, a kept one shown with its replay.
    const gone = await rig.db.app.inject({ method: "GET", url: `/dead-letters/${oldReplayed}`, headers: ADMIN });
    expect(gone.statusCode).toBe(404);
    const kept = await rig.db.app.inject({ method: "GET", url: `/dead-letters/${replayed5}`, headers: ADMIN });
    expect(kept.statusCode).toBe(200);
    expect(kept.json()).toMatchObject({ id: replayed5, topic: "e-replayed-5", replayedOffset: "77" });
    const waiting = await rig.db.app.inject({ method: "GET", url: `/dead-letters/${waiting89}`, headers: ADMIN });
    expect([waiting.statusCode, waiting.json().replayedAt]).toEqual([200, null]);
  }, 180_000);

  it("the service refuses a retention under 30 days, or letters kept longer than their ledger rows, at start, naming the settings", async () => {
    for (const [env, message] of [
      [{ DEAD_LETTER_CH_RETENTION_DAYS: "29" }, /DEAD_LETTER_CH_RETENTION_DAYS must be >= 30/],
      [{ DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS: "0" }, /DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS must be >= 30/],
      [{ DEAD_LETTER_CH_RETENTION_DAYS: "200" }, /DEAD_LETTER_CH_RETENTION_DAYS \(200\) must be <= DEAD_LETTER_CH_REPLAYS_RETENTION_DAYS \(180\)/],
    ] as const) {
      const started = rig.start(env);
      await expect(started).rejects.toBeInstanceOf(ConfigError);
      await expect(started).rejects.toMatchObject({ service: "database-service", message: expect.stringMatching(message) });
    }
  });

  // Last: 18.16 has no KILL MUTATION, so the failing mutation stays until the operator removes it.
  it("a mutation under way (here one failing for good) holds back every delete, the ledger's too; one stuck is told at error and counted until the operator removes it", async () => {
    const id = await letter("h-old-400", 8, 400);
    await ledger(id, "h-old-400", 8, { replayedDaysAgo: 390 });
    await rig.ch.command(`ALTER TABLE ${LETTER_IDS} DELETE WHERE throwIf(msg_offset = 8) = 1`);
    const watched = (stuckAfterS?: number) => {
      const errors: Array<{ obj: any; msg: string }> = [];
      const stuck = stuckMutationsGauge(new promClient.Registry());
      const retention = new ClickHouseLetterRetention(rig.ch, rig.pool, { letters: 90, replays: 180 }, 5_000, { log: { error: (obj, msg) => errors.push({ obj, msg }) }, stuck, stuckAfterS });
      const count = async () => Object.fromEntries((await stuck.get()).values.map((v) => [v.labels.table, v.value]));
      return { retention, errors, count };
    };
    // Failing for seconds, which 18.16 does not tell from slow (no latest_fail_reason): held back, not yet stuck.
    const fresh = watched();
    expect(await fresh.retention.pass()).toEqual({ mutations: [], ledgerRows: 0 });
    expect(await topicsLeft()).toContain("h-old-400");
    expect(await ledgerLeft()).toContain("h-old-400");
    expect([fresh.errors, await fresh.count()]).toEqual([[], { [LETTERS]: 0, [LETTER_IDS]: 0 }]);
    // Past the bound: one error a pass, naming the mutation, and the gauge an alert reads.
    const late = watched(0);
    for (const pass of [1, 2]) {
      expect(await late.retention.pass(), `pass ${pass}`).toEqual({ mutations: [], ledgerRows: 0 });
      expect(late.errors, `pass ${pass}`).toHaveLength(pass);
    }
    expect(late.errors[0].obj.mutations).toEqual([
      { table: LETTER_IDS, mutationId: expect.stringMatching(/^mutation_/), command: expect.stringContaining("throwIf(msg_offset = 8)"), unfinishedSeconds: expect.any(Number), reason: expect.stringMatching(/not told by this server/) },
    ]);
    expect(late.errors[0].msg).toMatch(/failed or is stuck/);
    expect(await late.count()).toEqual({ [LETTERS]: 0, [LETTER_IDS]: 1 });
    // The service's own gauge, from its start.
    const metrics = await rig.db.app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/^dead_letter_retention_stuck_mutations\{table="consumer_dead_letter_ids"[^}]*\} 0$/m);

    // The operator's remedy on 18.16 (README, Retention): the table detached, the mutation's file moved out of its directory, attached again.
    const [{ data_path }] = await rig.ch.query<{ data_path: string }>("SELECT data_path FROM system.tables WHERE database = currentDatabase() AND name = {t:String}", { t: LETTER_IDS });
    await rig.ch.command(`DETACH TABLE ${LETTER_IDS}`);
    rmSync(path.join(data_path, late.errors[0].obj.mutations[0].mutationId));
    await rig.ch.command(`ATTACH TABLE ${LETTER_IDS}`);
    expect(await late.retention.pass()).toEqual({ mutations: [LETTERS], ledgerRows: 0 });
    expect([late.errors.length, await late.count()]).toEqual([2, { [LETTERS]: 0, [LETTER_IDS]: 0 }]); // nothing stuck: no error this pass
    await mutationsDone();
    expect(await late.retention.pass()).toEqual({ mutations: [LETTER_IDS], ledgerRows: 1 });
    await mutationsDone();
    expect([await topicsLeft(), await idsLeft(), await ledgerLeft()].map((left) => left.includes("h-old-400"))).toEqual([false, false, false]);
  }, 60_000);
});
