/**
 * A ClickHouse dead letter set aside again (session 60) against a real ClickHouse 18.16, PostgreSQL and
 * Kafka: a message whose letter was replayed and later deleted by retention is read again (a consumer
 * group's offsets reset) and fails again, so setAside writes a letter of the same topic, partition and
 * offset, hence the same id. It is a new letter: not replayed, whether or not the earlier letter's
 * ledger row (ch_dead_letter_replays) was pruned yet, and a replay of it is recorded against it, once.
 * Before, the ledger was keyed by the id alone: the new letter read as replayed while the old row was
 * there (its replay refused, 409 ALREADY_REPLAYED) and as not replayed once retention pruned the row.
 * The ledger rows written before (migration 0514: no copy recorded) still count for the letter set
 * aside before their replay.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { kafkajs, promClient } from "../harness/deps";
import { clickhouseDateTime, unfinishedMutations } from "../../services/src/kit";
import { createTopicsReady } from "../../services/src/kit/datastores";
import { clickHouseLetterId } from "../../services/src/services/database-service/clickhouse-dead-letters";
import { ClickHouseLetterRetention, deleteLedgerRowsBefore, LETTER_IDS, LETTERS } from "../../services/src/services/database-service/clickhouse-dead-letter-retention";
import { deadLetterHeaders, deadLettersCounter, setAside } from "../../services/src/trading/infra/deadLetters";
import { useDatabaseServiceRig } from "../helpers/database-service-rig";

const rig = useDatabaseServiceRig({ kafka: true });
const run = randomBytes(3).toString("hex");
const TOPIC = `dead-letter-again-${run}`;
const GROUP = `dead-letter-again-${run}`;
const DAY_MS = 86_400_000;
const counter = deadLettersCounter(new promClient.Registry());

beforeAll(async () => {
  const admin = new kafkajs.Kafka({ brokers: rig.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 1 }]);
  } finally {
    await admin.disconnect();
  }
}, 120_000);

/** The message at `offset` set aside now, as a consumer without PostgreSQL does; its id. */
async function setAsideNow(offset: number, value: string): Promise<string> {
  await setAside({ clickhouse: rig.ch }, { groupId: GROUP, topic: TOPIC, partition: 0, offset: String(offset), key: Buffer.from("k"), value: Buffer.from(value), headers: deadLetterHeaders({ "event-id": randomUUID() }), reason: "PoisonMessageError: r" }, counter);
  return clickHouseLetterId(GROUP, TOPIC, 0, String(offset));
}

/** The message at `offset` set aside `daysAgo` days ago (a row as setAside writes it, its time moved back). */
async function setAsideDaysAgo(offset: number, value: string, daysAgo: number): Promise<string> {
  await rig.ch.insert(LETTERS, [{
    consumer_group: GROUP, topic: TOPIC, msg_partition: 0, msg_offset: offset, msg_key_base64: Buffer.from("k").toString("base64"), msg_value_base64: Buffer.from(value).toString("base64"),
    msg_key_null: 0, msg_value_null: 0, msg_headers: JSON.stringify(deadLetterHeaders({ "event-id": randomUUID() })), reason: "PoisonMessageError: r", created_at: clickhouseDateTime(Date.now() - daysAgo * DAY_MS),
  }]);
  return clickHouseLetterId(GROUP, TOPIC, 0, String(offset));
}

async function mutationsDone(): Promise<void> {
  for (let i = 0; (await unfinishedMutations(rig.ch, LETTERS)) + (await unfinishedMutations(rig.ch, LETTER_IDS)) > 0; i++) {
    if (i > 300) throw new Error("a mutation did not finish in 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const shown = async (id: string) => {
  const r = await rig.call("GET", `/dead-letters/${id}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { createdAt: string; value: string; replayedAt: string | null; replayedOffset: string | null; replayClaimedAt: string | null };
};
const listed = async (replayed: boolean) =>
  (await rig.call("GET", `/dead-letters?store=ch&consumerGroup=${GROUP}&replayed=${replayed}&limit=200`)).body.deadLetters.map((l: { id: string }) => l.id);
const ledgerRows = async (id: string) => (await rig.pool.query("SELECT replayed_offset::text AS o FROM ch_dead_letter_replays WHERE letter_id = $1 ORDER BY replayed_at", [id])).rows.map((r) => r.o);

describe("a ClickHouse letter set aside again after retention deleted its earlier letter", () => {
  it("is a new letter: not replayed with or without the old ledger row, its own replay recorded once", async () => {
    const id = await setAsideDaysAgo(1, "first", 100);
    const first = await rig.call("POST", `/dead-letters/${id}/replay`);
    expect(first.status, JSON.stringify(first.body)).toBe(200);

    // Retention deletes the letter (set aside 100 days ago), then its id; the ledger row stays (replayed today).
    const retention = new ClickHouseLetterRetention(rig.ch, rig.pool, { letters: 90, replays: 180 });
    expect((await retention.pass()).mutations).toEqual([LETTERS]);
    await mutationsDone();
    await retention.pass();
    await mutationsDone();
    expect((await rig.call("GET", `/dead-letters/${id}`)).status).toBe(404);
    expect(await ledgerRows(id)).toEqual([first.body.offset]);

    // The group's offsets reset: the message is read again and fails again.
    expect(await setAsideNow(1, "again")).toBe(id);
    const again = await shown(id);
    expect([again.value, again.replayedAt, again.replayedOffset, again.replayClaimedAt]).toEqual([Buffer.from("again").toString("base64"), null, null, null]);
    expect(await listed(false)).toContain(id);
    expect(await listed(true)).not.toContain(id);

    // Its replay sends it and is recorded against it; a second is refused.
    const second = await rig.call("POST", `/dead-letters/${id}/replay`);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(second.body.offset).not.toBe(first.body.offset);
    expect((await shown(id)).replayedOffset).toBe(second.body.offset);
    const refused = await rig.call("POST", `/dead-letters/${id}/replay`);
    expect([refused.status, refused.body.error?.code]).toEqual([409, "ALREADY_REPLAYED"]);
    expect(await ledgerRows(id)).toEqual([first.body.offset, second.body.offset]);

    // The old letter's row past the ledger's retention is pruned: the new letter reads the same.
    await rig.pool.query("UPDATE ch_dead_letter_replays SET replayed_at = now() - interval '200 days' WHERE letter_id = $1 AND replayed_offset = $2", [id, first.body.offset]);
    expect(await deleteLedgerRowsBefore(rig.pool, new Date(Date.now() - 180 * DAY_MS), 100)).toBe(1);
    expect(await ledgerRows(id)).toEqual([second.body.offset]);
    expect((await shown(id)).replayedOffset).toBe(second.body.offset);
    expect(await listed(true)).toContain(id);
  }, 180_000);

  it("before its replay is pruned, or after: the letter set aside again reads as not replayed either way", async () => {
    const id = await setAsideDaysAgo(2, "first", 100);
    expect((await rig.call("POST", `/dead-letters/${id}/replay`)).status).toBe(200);
    await rig.ch.command(`ALTER TABLE ${LETTERS} DELETE WHERE consumer_group = '${GROUP}' AND msg_offset = 2`);
    await mutationsDone();
    await setAsideNow(2, "again");
    expect((await shown(id)).replayedAt).toBeNull();
    await rig.pool.query("UPDATE ch_dead_letter_replays SET replayed_at = now() - interval '200 days' WHERE letter_id = $1", [id]);
    await deleteLedgerRowsBefore(rig.pool, new Date(Date.now() - 180 * DAY_MS), 100);
    expect(await ledgerRows(id)).toEqual([]);
    expect((await shown(id)).replayedAt).toBeNull();
  }, 120_000);

  it("a ledger row written before migration 0514 (no letter's created_at) is the letter's set aside before its replay or claim, not a later one's", async () => {
    /** A row as the service wrote it before 0514, of the letter at `offset`. */
    const earlierRow = (id: string, offset: number, state: "replayed 10 days ago" | "claimed now" | "claimed an hour ago") =>
      rig.pool.query(
        `INSERT INTO ch_dead_letter_replays (letter_id, consumer_group, topic, msg_partition, msg_offset, replay_claim, replay_claimed_at, replayed_at, replayed_offset)
         VALUES ($1, $2, $3, 0, $4, CASE WHEN $5 THEN NULL ELSE gen_random_uuid() END, CASE WHEN $5 THEN NULL WHEN $6 THEN now() ELSE now() - interval '1 hour' END,
                 CASE WHEN $5 THEN now() - interval '10 days' END, CASE WHEN $5 THEN 99 END)`,
        [id, GROUP, TOPIC, offset, state === "replayed 10 days ago", state === "claimed now"],
      );
    // Replayed: the letter reads as replayed and is not replayed again.
    const replayed = await setAsideDaysAgo(3, "earlier", 20);
    await earlierRow(replayed, 3, "replayed 10 days ago");
    expect((await shown(replayed)).replayedOffset).toBe("99");
    const refused = await rig.call("POST", `/dead-letters/${replayed}/replay`);
    expect([refused.status, refused.body.error?.code]).toEqual([409, "ALREADY_REPLAYED"]);
    // Claimed by a replay under way: 409 REPLAY_IN_PROGRESS; once the claim is stale, a replay takes the row over, which becomes the letter's.
    const claimed = await setAsideDaysAgo(4, "claimed", 1);
    await earlierRow(claimed, 4, "claimed now");
    const busy = await rig.call("POST", `/dead-letters/${claimed}/replay`);
    expect([busy.status, busy.body.error?.code]).toEqual([409, "REPLAY_IN_PROGRESS"]);
    await rig.pool.query("UPDATE ch_dead_letter_replays SET replay_claimed_at = now() - interval '1 hour' WHERE letter_id = $1", [claimed]);
    const taken = await rig.call("POST", `/dead-letters/${claimed}/replay`);
    expect(taken.status, JSON.stringify(taken.body)).toBe(200);
    const rows = (await rig.pool.query("SELECT replayed_offset::text AS o, letter_created_at FROM ch_dead_letter_replays WHERE letter_id = $1", [claimed])).rows;
    expect(rows).toEqual([{ o: taken.body.offset, letter_created_at: new Date((await shown(claimed)).createdAt) }]);
    // The letter set aside again after the earlier one's replay (retention deleted it) is a new one.
    await rig.ch.command(`ALTER TABLE ${LETTERS} DELETE WHERE consumer_group = '${GROUP}' AND msg_offset = 3`);
    await mutationsDone();
    await setAsideNow(3, "again");
    expect((await shown(replayed)).replayedAt).toBeNull();
    const now = await rig.call("POST", `/dead-letters/${replayed}/replay`);
    expect(now.status, JSON.stringify(now.body)).toBe(200);
    expect((await shown(replayed)).replayedOffset).toBe(now.body.offset);
    expect(await ledgerRows(replayed)).toEqual(["99", now.body.offset]);
  }, 120_000);
});
