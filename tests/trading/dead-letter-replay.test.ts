/**
 * An operator replays a Kafka consumer's dead letter once its cause is fixed (database-service
 * `POST /dead-letters/:id/replay`, session 52; before, only by hand): against a real Kafka and
 * PostgreSQL, a platform consumer (trading/infra/kafka.ts consumeDecoded) sets a message aside, the
 * cause is fixed, the letter is replayed, and the message arrives on its topic and partition with its
 * key, value and headers byte for byte (read back by a plain kafkajs consumer at the offset the route
 * answered) and is applied by the consumer. A letter replays once (two replays sent together: one 200,
 * one 409 naming `id`, ALREADY_REPLAYED or REPLAY_IN_PROGRESS); an unknown id is 404; a letter whose message cannot be sent as
 * kept is 409 NOT_REPLAYABLE naming `id`; admins only.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { createService, defineService, type Service } from "../../services/src/kit";
import { TOPICS } from "../../services/src/trading/events";
import { deadLetterHeaders, PoisonMessageError } from "../../services/src/trading/infra/deadLetters";
import { consumeDecoded, consumerEnv } from "../../services/src/trading/infra/kafka";
import { candleBatchOf } from "../../services/src/trading/infra/topicSchemas";
import { ADMIN, useDatabaseServiceRig } from "../helpers/database-service-rig";
import { validMessage } from "../hostile/poison";
import { waitUntil } from "./e2e-helpers";

const rig = useDatabaseServiceRig({ kafka: true });
const run = randomBytes(3).toString("hex").toUpperCase();
const GROUP = `dead-letter-replay-${run}`;
const REFUSED = `DLR${run}`;
const WAIT_MS = 240_000;

let refusing = true;
const seen: string[] = [];
const consumer = defineService({
  name: "trading-engine",
  config: consumerEnv,
  async register(ctx) {
    await consumeDecoded(ctx, {
      groupId: GROUP,
      topics: [TOPICS.candles],
      fromBeginning: false,
      decode: (m) => {
        const batch = candleBatchOf(m.json);
        if (refusing && batch.symbol === REFUSED) throw new PoisonMessageError("refused until the cause is fixed");
        return batch;
      },
      handle: async (batches) => {
        for (const b of batches) seen.push(b.symbol);
      },
    });
  },
});

let consuming: Service<any> | undefined;
let kafka: InstanceType<typeof kafkajs.Kafka>;

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ brokers: rig.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const env = { ...rig.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" };
  consuming = await createService(consumer, { env, defaultMetrics: false });
}, 300_000);

afterAll(async () => {
  await consuming?.close();
}, 60_000);

const call = rig.call;

/** The message at `partition`/`offset` of `topic`, read by a plain kafkajs consumer of its own group. */
async function messageAt(topic: string, partition: number, offset: string): Promise<import("../harness/deps").KafkaJs.KafkaMessage> {
  const reader = kafka.consumer({ groupId: `dead-letter-replay-reader-${run}-${offset}` });
  let found: import("../harness/deps").KafkaJs.KafkaMessage | undefined;
  await reader.connect();
  try {
    await reader.subscribe({ topics: [topic], fromBeginning: false });
    await reader.run({
      eachMessage: async ({ partition: p, message }) => {
        if (p === partition && message.offset === offset) found = message;
      },
    });
    reader.seek({ topic, partition, offset });
    return await waitUntil(`the message at ${partition}/${offset}`, async () => found, WAIT_MS, 200);
  } finally {
    await reader.disconnect();
  }
}

describe("replaying a Kafka consumer's dead letter", () => {
  it("sends key, value and headers back byte for byte to the letter's partition, once; the consumer applies it", async () => {
    const producer = kafka.producer();
    await producer.connect();
    try {
      const marker = `DLM${run}`;
      await waitUntil("the consumer joined", async () => {
        await producer.send({ topic: TOPICS.candles, messages: [{ key: marker, value: JSON.stringify(validMessage(TOPICS.candles, marker)) }] });
        return seen.includes(marker);
      }, WAIT_MS, 1000);
      // Spaced JSON (no JSON.stringify writes it), a name sent twice, a value that is not UTF-8, an empty one, a name every object has.
      const value = Buffer.from(JSON.stringify(validMessage(TOPICS.candles, REFUSED), null, 1));
      const key = Buffer.from([0x44, 0x4c, 0x00, 0xff]);
      const sentHeaders = { "event-id": `replay-${run}`, "x-twice": [Buffer.from([0xfe]), Buffer.from("second")], "x-bytes": Buffer.from([0xff, 0x00, 0xc0]), "x-empty": Buffer.alloc(0), constructor: "c" };
      const [sent] = await producer.send({ topic: TOPICS.candles, messages: [{ key, value, headers: sentHeaders }] });

      // The topic is shared: the consumer sets aside what other test files send beside this one too.
      const letter = await waitUntil("the message set aside", async () => (await rig.pool.query<{ id: string }>("SELECT id::text AS id FROM consumer_dead_letters WHERE consumer_group = $1 AND msg_partition = $2 AND msg_offset = $3", [GROUP, sent.partition, sent.baseOffset])).rows[0], WAIT_MS, 300);
      const listed = await call("GET", `/dead-letters?consumerGroup=${GROUP}&replayed=false&limit=200`);
      expect(listed.status).toBe(200);
      expect(listed.body.deadLetters).toEqual(expect.arrayContaining([expect.objectContaining({ id: letter.id, topic: TOPICS.candles, partition: sent.partition, offset: sent.baseOffset, replayedAt: null, keyBytes: 4, valueBytes: value.length, headerCount: 6 })]));
      const one = (await call("GET", `/dead-letters/${letter.id}`)).body;
      expect([one.key, one.value, one.headers]).toEqual([key.toString("base64"), value.toString("base64"), deadLetterHeaders(sentHeaders)]);

      // Admins only; the id is checked.
      expect((await call("POST", `/dead-letters/${letter.id}/replay`, { ...ADMIN, "x-user-role": "trader" })).status).toBe(403);
      const bad = await call("POST", "/dead-letters/12ab/replay");
      expect([bad.status, bad.body.error.field]).toEqual([400, "id"]);
      const unknown = await call("POST", "/dead-letters/999999999999999999/replay");
      expect(unknown.status).toBe(404);

      // The cause is fixed; two replays sent together: one claims and sends, the other finds it claimed
      // (409 REPLAY_IN_PROGRESS) or already replayed, whichever it meets (session 53: claims).
      refusing = false;
      const answers = await Promise.all([1, 2].map(() => call("POST", `/dead-letters/${letter.id}/replay`)));
      answers.sort((a, b) => a.status - b.status);
      expect(answers.map((a) => a.status), JSON.stringify(answers)).toEqual([200, 409]);
      expect(answers[0].body).toMatchObject({ id: letter.id, status: "replayed", topic: TOPICS.candles, partition: sent.partition });
      expect(answers[1].body.error).toMatchObject({ code: expect.stringMatching(/^(ALREADY_REPLAYED|REPLAY_IN_PROGRESS)$/), field: "id" });
      expect(answers[1].body.error.message).toContain(letter.id);
      const again = await call("POST", `/dead-letters/${letter.id}/replay`);
      expect([again.status, again.body.error.code, again.body.error.field]).toEqual([409, "ALREADY_REPLAYED", "id"]);

      const replayed = await messageAt(TOPICS.candles, sent.partition, answers[0].body.offset);
      expect(replayed.key?.equals(key), "key").toBe(true);
      expect(replayed.value?.equals(value), "value").toBe(true);
      expect(deadLetterHeaders(replayed.headers)).toEqual(deadLetterHeaders(sentHeaders));
      await waitUntil("the replayed message applied", async () => seen.includes(REFUSED), WAIT_MS, 200);
      const row = (await rig.pool.query("SELECT replayed_at, replayed_offset::text AS o FROM consumer_dead_letters WHERE id = $1", [letter.id])).rows[0];
      expect(row.replayed_at).toBeInstanceOf(Date);
      expect(row.o).toBe(answers[0].body.offset);
      expect((await call("GET", `/dead-letters?consumerGroup=${GROUP}&replayed=true`)).body.deadLetters.map((l: { id: string }) => l.id)).toEqual([letter.id]);
      const unreplayed = (await call("GET", `/dead-letters?consumerGroup=${GROUP}&replayed=false&limit=200`)).body.deadLetters.map((l: { id: string }) => l.id);
      expect(unreplayed).not.toContain(letter.id);
    } finally {
      await producer.disconnect();
    }
  }, 600_000);

  it("a letter whose message cannot be sent as kept is 409 NOT_REPLAYABLE naming id, left unreplayed", async () => {
    const kept = [
      ["headers not kept (before migration 0496)", null, /not kept/],
      ["a header without a value", JSON.stringify([{ name: "a", value: null }]), /"a" has no value/],
      ["a value that is not base64", JSON.stringify([{ name: "a", value: "%%" }]), /not base64/],
      ["not a list", JSON.stringify({ a: 1 }), /not a list/],
    ] as const;
    const ids: string[] = [];
    // Ids across a power of ten (9 and 10, 99 and 100...): the listing's order is the ids' as numbers.
    const { rows: [{ n }] } = await rig.pool.query<{ n: string }>("SELECT nextval('consumer_dead_letters_id_seq')::text AS n");
    // Only raised (other files insert beside this one): to just below the next power of ten.
    const below = (digits: number) => 10 ** digits - 2;
    await rig.pool.query("SELECT setval('consumer_dead_letters_id_seq', $1)", [String(below(n.length) > Number(n) ? below(n.length) : below(n.length + 1))]);
    for (const [i, [what, headers, why]] of kept.entries()) {
      const { rows } = await rig.pool.query<{ id: string }>(
        "INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason) VALUES ($1, $2, 0, $3, NULL, 'x', $4::json, 'r') RETURNING id::text AS id",
        [`${GROUP}-kept`, TOPICS.candles, i, headers],
      );
      ids.push(rows[0].id);
      const r = await call("POST", `/dead-letters/${rows[0].id}/replay`);
      expect([r.status, r.body.error?.code, r.body.error?.field], what).toEqual([409, "NOT_REPLAYABLE", "id"]);
      expect(r.body.error.message, what).toMatch(why);
      expect((await rig.pool.query("SELECT replayed_at FROM consumer_dead_letters WHERE id = $1", [rows[0].id])).rows[0].replayed_at, what).toBeNull();
    }
    // Listed all the same (a msg_headers that is no list has no count), newest first by id as a number
    // (ordered by the text of the id, 10 came after 9: session 52, before it was committed).
    const listed = await call("GET", `/dead-letters?consumerGroup=${GROUP}-kept`);
    expect([listed.status, listed.body.deadLetters.map((l: { id: string; headerCount: number | null }) => [l.id, l.headerCount])]).toEqual([200, ids.map((id, i) => [id, [null, 1, 1, null][i]]).reverse()]);
    const firstPage = await call("GET", `/dead-letters?consumerGroup=${GROUP}-kept&limit=3`);
    expect([firstPage.body.deadLetters.length, firstPage.body.nextBefore]).toEqual([3, ids[1]]);
    const secondPage = await call("GET", `/dead-letters?consumerGroup=${GROUP}-kept&limit=3&before=${ids[1]}`);
    expect([secondPage.body.deadLetters.map((l: { id: string }) => l.id), secondPage.body.nextBefore]).toEqual([[ids[0]], null]);
    for (const [query, field] of [["limit=0", "limit"], ["before=1e3", "before"], ["replayed=maybe", "replayed"], [`topic=${"t".repeat(250)}`, "topic"]]) {
      const r = await call("GET", `/dead-letters?${query}`);
      expect([r.status, r.body.error?.field], query).toEqual([400, field]);
    }
    expect((await call("GET", "/dead-letters/1", { ...ADMIN, "x-user-role": "trader" })).status).toBe(403);
  });
});
