/**
 * Dead-letter replays claim, send, mark (database-service, session 53) against a real PostgreSQL,
 * ClickHouse and Kafka: ClickHouse's dead letters (the consumers without PostgreSQL) have ids (`ch-`
 * and 32 hex digits), are listed (`store=ch`), shown and replayed once through the same routes, with
 * their claim and mark in PostgreSQL's ledger (migration 0506); a replay no longer holds a transaction
 * while it sends. Concurrent replays of one letter: one sends. A missing topic or partition: a clear
 * 409 naming which, nothing sent, the letter replayable again. A claim left by a replay that crashed between its
 * send and its mark is taken over once older than the bound; a fresher one is 409 REPLAY_IN_PROGRESS.
 * A send cut at its deadline after its Produce request was written (a broker that took it and never
 * answers) is outcome unknown, its claim kept; one cut before (a broker hung in its handshake, or down)
 * is 503 REPLAY_NOT_SENT, its claim released at once (session 54). A letter whose topic is not a name
 * Kafka accepts is 409 naming `topic`, not claimed.
 * Replay is at least once: a letter sent twice that way reaches usage-monitoring twice, which counts
 * it once (its event id). Hostile ids are 400 naming `id`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadAddress, kafkajs } from "../harness";
import { promClient } from "../harness/deps";
import { clickhouseDateTime, createService, type Service } from "../../services/src/kit";
import { createTopicsReady } from "../../services/src/kit/datastores";
import { clickHouseLetterId } from "../../services/src/services/database-service/clickhouse-dead-letters";
import { replayLetter } from "../../services/src/services/database-service/dead-letter-replay";
import { postgresLetterReplays } from "../../services/src/services/database-service/dead-letters";
import { deadlineProducer } from "../../services/src/kit/datastores";
import { produceHole } from "../helpers/kafka-produce-hole";
import usageMonitoring from "../../services/src/services/usage-monitoring";
import { UsageStore } from "../../services/src/services/usage-monitoring/store";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import { deadLetterHeaders, deadLettersCounter, setAside } from "../../services/src/trading/infra/deadLetters";
import { ADMIN, useDatabaseServiceRig, type RigAnswer } from "../helpers/database-service-rig";
import { waitUntil } from "./e2e-helpers";

const run = randomBytes(3).toString("hex");
const TOPIC = `dead-letter-claims-${run}`;
const GROUP = `dead-letter-claims-${run}`;
const USAGE_GROUP = `dead-letter-claims-usage-${run}`;
// A send deadline well above the ~1 s kafkajs takes to give up on a missing topic (a loaded machine).
const SEND_MS = 6_000;
const CLAIM_MS = 8 * SEND_MS;
const WAIT_MS = 240_000;
const rig = useDatabaseServiceRig({ kafka: true, service: { DEAD_LETTER_REPLAY_SEND_MS: String(SEND_MS), DEAD_LETTER_REPLAY_CLAIM_MS: String(CLAIM_MS) } });

let usage: Service<any>;
let kafka: InstanceType<typeof kafkajs.Kafka>;
let admin: ReturnType<InstanceType<typeof kafkajs.Kafka>["admin"]>;
const counter = deadLettersCounter(new promClient.Registry());

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ brokers: rig.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 2 }]);
  usage = await createService(usageMonitoring, { env: { ...rig.env, LOG_LEVEL: "fatal", USAGE_CONSUMER_GROUP: USAGE_GROUP, KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" }, defaultMetrics: false });
}, 300_000);

afterAll(async () => {
  await usage?.close();
  await admin?.disconnect();
}, 60_000);

const call = (method: "GET" | "POST", url: string) => rig.call(method, url);
/** How many messages partition `partition` of `topic` holds (only this file writes to TOPIC). */
const highWatermark = async (topic: string, partition: number) => Number((await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)!.high);

/** A message at `partition`/`offset` of `topic`, read by a plain kafkajs consumer of its own group. */
async function messageAt(topic: string, partition: number, offset: string) {
  const reader = kafka.consumer({ groupId: `dead-letter-claims-reader-${run}-${randomUUID()}` });
  let found: import("../harness/deps").KafkaJs.KafkaMessage | undefined;
  await reader.connect();
  try {
    await reader.subscribe({ topics: [topic], fromBeginning: false });
    await reader.run({ eachMessage: async ({ partition: p, message }) => void (p === partition && message.offset === offset && (found = message)) });
    reader.seek({ topic, partition, offset });
    return await waitUntil(`the message at ${partition}/${offset}`, async () => found, WAIT_MS, 200);
  } finally {
    await reader.disconnect();
  }
}

let nextOffset = 1_000;
/** A letter in ClickHouse, as a consumer without PostgreSQL sets one aside (trading/infra/deadLetters.ts setAside). */
async function clickHouseLetterOf(topic: string, partition: number, key: Buffer | null, value: Buffer, headers: Record<string, string | Buffer>, group = GROUP) {
  const offset = String(nextOffset++);
  await setAside({ clickhouse: rig.ch }, { groupId: group, topic, partition, offset, key, value, headers: deadLetterHeaders(headers), reason: "PoisonMessageError: refused until the cause is fixed" }, counter);
  return clickHouseLetterId(group, topic, partition, offset);
}
/** A letter in PostgreSQL's consumer_dead_letters. */
async function postgresLetterOf(topic: string, partition: number, value = "v") {
  const { rows } = await rig.pool.query<{ id: string }>(
    "INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason) VALUES ($1, $2, $3, $4, 'k', $5, '[]', 'r') RETURNING id::text AS id",
    [GROUP, topic, partition, nextOffset++, value],
  );
  return rows[0].id;
}

/** A PostgreSQL letter's claim and mark. */
const claimOf = async (id: string) => (await rig.pool.query("SELECT replay_claim IS NOT NULL AS claimed, replayed_at FROM consumer_dead_letters WHERE id = $1", [id])).rows[0];

describe("ClickHouse's dead letters through the same routes", () => {
  it("are listed, shown and replayed once, byte for byte; a second replay is 409 ALREADY_REPLAYED", async () => {
    const key = Buffer.from([0x00, 0xff, 0x41]);
    const value = Buffer.from('{"a": 1}');
    const headers = { "event-id": `ch-letter-${run}`, "x-bytes": Buffer.from([0xff, 0x00]) };
    const id = await clickHouseLetterOf(TOPIC, 1, key, value, headers);
    const older = await clickHouseLetterOf(TOPIC, 0, null, Buffer.from("x"), {});
    // Not kept exactly: headers of a row written before ClickHouse's 0030, the key of one before 0031.
    const created_at = clickhouseDateTime(Date.now());
    const old = (offset: number, msg_key_base64: string, msg_headers: string) => ({ consumer_group: GROUP, topic: TOPIC, msg_partition: 0, msg_offset: offset, msg_key_base64, msg_value_base64: "eA==", msg_headers, reason: "r", created_at });
    await rig.ch.insert("consumer_dead_letters", [old(1, "eA==", ""), old(2, "", "[]")]);

    const listed = await call("GET", `/dead-letters?store=ch&consumerGroup=${GROUP}&limit=200`);
    expect(listed.status).toBe(200);
    const byId = new Map(listed.body.deadLetters.map((l: { id: string }) => [l.id, l]));
    expect(byId.get(id)).toMatchObject({ store: "ch", consumerGroup: GROUP, topic: TOPIC, partition: 1, keyBytes: 3, valueBytes: value.length, headerCount: 2, replayedAt: null, replayClaimedAt: null });
    expect(byId.get(older)).toMatchObject({ keyBytes: null, valueBytes: 1, headerCount: 0 });
    const one = await call("GET", `/dead-letters/${id}`);
    expect([one.status, one.body.key, one.body.value, one.body.headers]).toEqual([200, key.toString("base64"), value.toString("base64"), deadLetterHeaders(headers)]);
    expect(one.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // Pages of two by created_at then id, the cursor of the store's own form.
    const first = await call("GET", `/dead-letters?store=ch&consumerGroup=${GROUP}&limit=2`);
    const second = await call("GET", `/dead-letters?store=ch&consumerGroup=${GROUP}&limit=2&before=${first.body.nextBefore}`);
    const paged = [...first.body.deadLetters, ...second.body.deadLetters].map((l: { id: string }) => l.id);
    expect(new Set(paged).size).toBe(4);
    expect(paged.sort()).toEqual([...byId.keys()].sort());

    for (const [offset, why] of [[1, /headers were not kept/], [2, /empty key from none/]] as const) {
      const r = await call("POST", `/dead-letters/${clickHouseLetterId(GROUP, TOPIC, 0, String(offset))}/replay`);
      expect([r.status, r.body.error?.code, r.body.error?.field]).toEqual([409, "NOT_REPLAYABLE", "id"]);
      expect(r.body.error.message).toMatch(why);
    }

    const replayed = await call("POST", `/dead-letters/${id}/replay`);
    expect([replayed.status, replayed.body.status, replayed.body.partition], JSON.stringify(replayed.body)).toEqual([200, "replayed", 1]);
    const m = await messageAt(TOPIC, 1, replayed.body.offset);
    expect([m.key?.equals(key), m.value?.equals(value)]).toEqual([true, true]);
    expect(deadLetterHeaders(m.headers)).toEqual(deadLetterHeaders(headers));
    const again = await call("POST", `/dead-letters/${id}/replay`);
    expect([again.status, again.body.error.code, again.body.error.field]).toEqual([409, "ALREADY_REPLAYED", "id"]);
    expect((await call("GET", `/dead-letters/${id}`)).body).toMatchObject({ replayedOffset: replayed.body.offset, replayClaimedAt: null });
    const ids = async (replayedToo: boolean) => (await call("GET", `/dead-letters?store=ch&consumerGroup=${GROUP}&replayed=${replayedToo}&limit=200`)).body.deadLetters.map((l: { id: string }) => l.id);
    expect(await ids(true)).toEqual([id]);
    expect(await ids(false)).not.toContain(id);
    expect(await ids(false)).toContain(older);
  });

  it("concurrent replays of one letter: one sends, the others are 409", async () => {
    for (const store of ["ch", "pg"] as const) {
      const id = store === "ch" ? await clickHouseLetterOf(TOPIC, 0, Buffer.from("k"), Buffer.from(`together-${store}`), { "event-id": randomUUID() }) : await postgresLetterOf(TOPIC, 0, `together-${store}`);
      const before = await highWatermark(TOPIC, 0);
      const answers = await Promise.all([1, 2, 3, 4].map(() => call("POST", `/dead-letters/${id}/replay`)));
      const sent = answers.filter((a) => a.status === 200);
      expect(sent.length, `${store}: ${JSON.stringify(answers.map((a) => a.body))}`).toBe(1);
      for (const a of answers.filter((x) => x.status !== 200)) {
        expect([a.status, a.body.error.field], store).toEqual([409, "id"]);
        expect(["ALREADY_REPLAYED", "REPLAY_IN_PROGRESS"], store).toContain(a.body.error.code);
      }
      expect(await highWatermark(TOPIC, 0), store).toBe(before + 1);
      expect((await call("GET", `/dead-letters/${id}`)).body.replayedOffset, store).toBe(sent[0].body.offset);
    }
  });
});

describe("a replay that cannot send", () => {
  it("a missing topic or partition: 409 naming which (not the topic's name, nor the store), nothing sent, the letter replayable", async () => {
    const missingTopic = `dead-letter-claims-missing-${run}`;
    const id = await postgresLetterOf(missingTopic, 0);
    const r = await call("POST", `/dead-letters/${id}/replay`);
    expect([r.status, r.body.error?.code, r.retryAfter], JSON.stringify(r.body)).toEqual([409, "TOPIC_NOT_FOUND", "30"]);
    expect(r.body.error.field).toBe("topic");
    expect(r.body.error.message).toMatch(/its topic does not exist/);
    expect(r.body.error.message).not.toContain(missingTopic);
    const row = (await rig.pool.query("SELECT replayed_at, replay_claim FROM consumer_dead_letters WHERE id = $1", [id])).rows[0];
    expect(row).toEqual({ replayed_at: null, replay_claim: null });
    // The letter's partition 5 of a topic of two: kafkajs sent nothing and said nothing (before, the letter was marked replayed).
    const chId = await clickHouseLetterOf(TOPIC, 5, null, Buffer.from("p5"), {});
    const p5 = await call("POST", `/dead-letters/${chId}/replay`);
    expect([p5.status, p5.body.error?.code, p5.body.error?.field]).toEqual([409, "TOPIC_NOT_FOUND", "partition"]);
    expect(p5.body.error.message).toMatch(/its partition does not exist/);
    expect((await rig.pool.query("SELECT count(*)::int AS n FROM ch_dead_letter_replays WHERE letter_id = $1 AND (replayed_at IS NOT NULL OR replay_claim IS NOT NULL)", [chId])).rows[0].n).toBe(0);

    await createTopicsReady(admin, [{ topic: missingTopic, numPartitions: 1 }]);
    const now = await call("POST", `/dead-letters/${id}/replay`);
    expect([now.status, now.body.offset], JSON.stringify(now.body)).toEqual([200, "0"]);
  });

  it("a claim left by a replay that crashed between its send and its mark is taken over once older than the bound", async () => {
    const id = await postgresLetterOf(TOPIC, 1, "crashed");
    // What a crash after the send leaves: claimed, not marked. A fresh claim: another replay is sending.
    await rig.pool.query("UPDATE consumer_dead_letters SET replay_claim = gen_random_uuid(), replay_claimed_at = now() WHERE id = $1", [id]);
    const before = await highWatermark(TOPIC, 1);
    const busy = await call("POST", `/dead-letters/${id}/replay`);
    expect([busy.status, busy.body.error?.code, busy.body.error?.field]).toEqual([409, "REPLAY_IN_PROGRESS", "id"]);
    expect(Number(busy.retryAfter)).toBeGreaterThan(0);
    expect(Number(busy.retryAfter)).toBeLessThanOrEqual(CLAIM_MS / 1000);
    expect((await call("GET", `/dead-letters/${id}`)).body.replayClaimedAt).not.toBeNull();
    await rig.pool.query("UPDATE consumer_dead_letters SET replay_claimed_at = now() - $2 * interval '1 millisecond' WHERE id = $1", [id, CLAIM_MS + 1]);
    const taken = await call("POST", `/dead-letters/${id}/replay`);
    expect(taken.status, JSON.stringify(taken.body)).toBe(200);
    expect(await highWatermark(TOPIC, 1)).toBe(before + 1);
    const row = (await rig.pool.query("SELECT replayed_offset::text AS o, replay_claim FROM consumer_dead_letters WHERE id = $1", [id])).rows[0];
    expect(row).toEqual({ o: taken.body.offset, replay_claim: null });
  });
});

describe("a send cut at its deadline", () => {
  /** database-service against `brokers` (a hung or down broker), its replay send cut at 1 s. */
  async function replaysThrough(brokers: string, check: (replay: (id: string) => Promise<RigAnswer>) => Promise<void>) {
    const svc = await rig.start({ KAFKA_BROKERS: brokers, DEAD_LETTER_REPLAY_SEND_MS: "1000", DEAD_LETTER_REPLAY_CLAIM_MS: "8000" });
    try {
      await check(async (id) => {
        const r = await svc.app.inject({ method: "POST", url: `/dead-letters/${id}/replay`, headers: ADMIN });
        return { status: r.statusCode, body: r.json(), retryAfter: r.headers["retry-after"] };
      });
    } finally {
      await svc.close();
    }
  }

  it("before its Produce request was written (a broker hung in its handshake, or down): 503 REPLAY_NOT_SENT, the claim released at once", async () => {
    // A broker that accepts connections and never answers (hung), and a port nothing listens on (down).
    const sockets = new Set<import("node:net").Socket>();
    const silent = createServer((sock) => void sockets.add(sock.on("error", () => undefined)));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const down = await deadAddress();
    try {
      for (const [broker, brokers] of [["hung", `127.0.0.1:${(silent.address() as { port: number }).port}`], ["down", down]] as const) {
        await replaysThrough(brokers, async (replay) => {
          const id = await postgresLetterOf(TOPIC, 0, `not-sent-${broker}`);
          // Twice: the first's claim did not stay (before session 54 the second was 409 REPLAY_IN_PROGRESS for the bound).
          for (const attempt of [1, 2]) {
            const r = await replay(id);
            expect([r.status, r.body.error?.code], `${broker} ${attempt}: ${JSON.stringify(r.body)}`).toEqual([503, "REPLAY_NOT_SENT"]);
            expect(Number(r.retryAfter), broker).toBeGreaterThan(0);
            expect(await claimOf(id), `${broker} ${attempt}`).toEqual({ claimed: false, replayed_at: null });
          }
          const chId = await clickHouseLetterOf(TOPIC, 0, null, Buffer.from(`not-sent-${broker}`), {});
          expect((await replay(chId)).body.error?.code, broker).toBe("REPLAY_NOT_SENT");
          expect((await rig.pool.query("SELECT count(*)::int AS n FROM ch_dead_letter_replays WHERE letter_id = $1 AND replay_claim IS NOT NULL", [chId])).rows[0].n, broker).toBe(0);
          // Replayable at once through the service whose Kafka answers.
          expect((await call("POST", `/dead-letters/${id}/replay`)).status, broker).toBe(200);
        });
      }
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 300_000);

  it("after its Produce request was written (a broker hung once it took it): outcome unknown, the claim kept for its bound", async () => {
    const hole = await produceHole(rig.env.KAFKA_BROKERS.split(",")[0]);
    const silentLog = () => () => undefined;
    const producer = deadlineProducer(kafkajs, { clientId: "dead-letter-claims-hole", brokers: rig.env.KAFKA_BROKERS.split(","), connectTimeoutMs: 10_000, socketFactory: hole.socketFactory, logCreator: silentLog }, 8_000);
    try {
      const id = await postgresLetterOf(TOPIC, 0, "cut-after-produce");
      const store = postgresLetterReplays(rig.pool);
      const out = await replayLetter(store, id, (topic, m) => producer.send(topic, [m]), CLAIM_MS);
      expect(out, JSON.stringify(out)).toEqual({ outcomeUnknown: { retryAfterS: CLAIM_MS / 1000 } });
      expect(hole.swallowed()).toBeGreaterThanOrEqual(1);
      expect(await claimOf(id)).toEqual({ claimed: true, replayed_at: null });
      const meanwhile = await call("POST", `/dead-letters/${id}/replay`);
      expect([meanwhile.status, meanwhile.body.error?.code, meanwhile.body.error?.field]).toEqual([409, "REPLAY_IN_PROGRESS", "id"]);
      // Once the bound has passed the letter is replayable.
      await rig.pool.query("UPDATE consumer_dead_letters SET replay_claimed_at = now() - interval '1 hour' WHERE id = $1", [id]);
      expect((await call("POST", `/dead-letters/${id}/replay`)).status).toBe(200);
    } finally {
      await producer.close();
      await hole.close();
    }
  }, 180_000);
});

describe("a letter whose topic is not a name the broker accepts", () => {
  it("is 409 NOT_REPLAYABLE naming topic, not claimed, nothing sent", async () => {
    const bad = ["bad topic", "bad/topic", "t".repeat(250), "..", ".", "tópico", ""];
    for (const topic of bad) {
      const pgId = await postgresLetterOf(topic, 0, "bad-topic");
      const chId = await clickHouseLetterOf(topic, 0, null, Buffer.from("bad-topic"), {});
      for (const id of [pgId, chId]) {
        const r = await call("POST", `/dead-letters/${id}/replay`);
        expect([r.status, r.body.error?.code, r.body.error?.field], `${JSON.stringify(topic.slice(0, 20))} ${id}: ${JSON.stringify(r.body)}`).toEqual([409, "NOT_REPLAYABLE", "topic"]);
        expect(r.body.error.message).toMatch(/its topic is not a name/);
        if (topic.length > 0) expect(r.body.error.message).not.toContain(topic);
      }
      expect(await claimOf(pgId)).toEqual({ claimed: false, replayed_at: null });
      expect((await rig.pool.query("SELECT count(*)::int AS n FROM ch_dead_letter_replays WHERE letter_id = $1", [chId])).rows[0].n).toBe(0);
    }
    // The longest name the broker accepts is not refused as a name (its topic does not exist: 409 TOPIC_NOT_FOUND).
    const longest = await postgresLetterOf(`x${"y".repeat(248)}`, 0, "longest");
    expect((await call("POST", `/dead-letters/${longest}/replay`)).body.error?.code).toBe("TOPIC_NOT_FOUND");
  }, 180_000);
});

describe("replay is at least once; usage-monitoring counts a usage event sent twice once", () => {
  it("a ClickHouse letter replayed, its mark lost, replayed again: two copies, one billable request", async () => {
    const probe = new UsageStore(rig.ch);
    const producer = kafka.producer();
    await producer.connect();
    try {
      const userId = randomUUID();
      const event = (eventId: string, ts: number) => ({ eventId, ts, userId, apiKeyId: null, route: "/api/orders", method: "GET", status: 200, latencyMs: 1.5 });
      const t0 = Date.now();
      const marker = event(randomUUID(), t0);
      await waitUntil("usage-monitoring consumes", async () => {
        await producer.send({ topic: BUSINESS_TOPICS.usage, messages: [{ key: userId, value: JSON.stringify(marker) }] });
        return (await probe.billableUnits(userId, new Date(t0 - 60_000), new Date(t0 + 60_000))) === 1;
      }, WAIT_MS, 2000);
      const eventId = randomUUID();
      const value = Buffer.from(JSON.stringify(event(eventId, t0 + 1)));
      const id = await clickHouseLetterOf(BUSINESS_TOPICS.usage, 0, Buffer.from(userId), value, { "event-id": eventId }, USAGE_GROUP);
      const first = await call("POST", `/dead-letters/${id}/replay`);
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      // What a crash between the send and the mark leaves (or a mark that failed): the ledger claimed long ago, unmarked.
      await rig.pool.query("UPDATE ch_dead_letter_replays SET replayed_at = NULL, replayed_offset = NULL, replay_claim = gen_random_uuid(), replay_claimed_at = now() - interval '1 hour' WHERE letter_id = $1", [id]);
      const second = await call("POST", `/dead-letters/${id}/replay`);
      expect(second.status, JSON.stringify(second.body)).toBe(200);
      expect(second.body.offset).not.toBe(first.body.offset);
      for (const o of [first.body.offset, second.body.offset]) expect((await messageAt(BUSINESS_TOPICS.usage, 0, o)).value?.equals(value)).toBe(true);
      await waitUntil("both copies consumed", async () => {
        const [t] = await admin.fetchOffsets({ groupId: USAGE_GROUP, topics: [BUSINESS_TOPICS.usage] });
        return Number(t.partitions.find((p) => p.partition === 0)?.offset ?? -1) > Number(second.body.offset);
      }, WAIT_MS, 300);
      expect(await probe.billableUnits(userId, new Date(t0 - 60_000), new Date(t0 + 60_000))).toBe(2); // the marker and the letter's event
    } finally {
      await producer.disconnect();
    }
  }, 600_000);
});

describe("hostile ids and listing parameters", () => {
  it("are 400 naming the field; a well-formed unknown id is 404", async () => {
    const hex = "0123456789abcdef".repeat(2);
    for (const bad of [`ch-${hex.toUpperCase()}`, `ch-${hex.slice(1)}`, `ch-${hex}0`, `ch-${"g".repeat(32)}`, `CH-${hex}`, `c-${hex}`, "1".repeat(19), "-1", "1e3", "12ab", `ch-${hex}%00`, "%27%20OR%201%3D1", `${hex}`, "ch-"]) {
      for (const [method, url] of [["GET", `/dead-letters/${bad}`], ["POST", `/dead-letters/${bad}/replay`]] as const) {
        const r = await call(method, url);
        expect([r.status, r.body.error?.field], `${method} ${url}`).toEqual([400, "id"]);
      }
    }
    for (const [method, url] of [["GET", `/dead-letters/ch-${hex}`], ["POST", `/dead-letters/ch-${hex}/replay`], ["GET", "/dead-letters/999999999999999999"]] as const) {
      expect((await call(method, url)).status, url).toBe(404);
    }
    for (const [query, field] of [["store=mongo", "store"], [`store=pg&before=12-ch-${hex}`, "before"], ["store=ch&before=12", "before"], ["store=ch&before=12-ch-x", "before"]]) {
      const r = await call("GET", `/dead-letters?${query}`);
      expect([r.status, r.body.error?.field], query).toEqual([400, field]);
    }
  });
});
