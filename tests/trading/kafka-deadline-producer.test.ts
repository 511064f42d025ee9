/**
 * The kit's deadline producer (`app.kafka.deadlineProducer`, datastores/kafka-deadline.ts, session 53):
 * against the harness's real Kafka, a send to a topic that does not exist fails on its own well
 * before the deadline with kafkajs' unknown-topic error (the shared producer's retries took 66 s), and
 * a message for a partition the topic lacks is answered with no record of it (kafkajs sends nothing).
 * Against a listener that accepts connections and never answers (a broker hung), the send is cut at
 * its deadline with SendDeadlineError and the next send connects a new producer; no Produce request was
 * written (`requestWritten` false, session 54: the replay that asked releases its claim at once). Against
 * the real broker behind a proxy that swallows Produce requests (a broker hung after it took one), the
 * cut send says its request was written: its outcome is unknown. No time is asserted
 * but the deadline's own order of magnitude, on the loaded machine: a send ends, and ends as said.
 */
import { createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { useServers } from "../harness/shared";
import type { createPostgres } from "../../services/src/kit/datastores/postgres";
import { createKafka, createTopicsReady, deadlineProducer, SendDeadlineError } from "../../services/src/kit/datastores";
import { produceHole } from "../helpers/kafka-produce-hole";
import { isRefusedTopic, isUnknownTopic } from "../../services/src/services/database-service/dead-letter-replay";

const srv = useServers("kafka");
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof createPostgres>[1];
const TOPIC = `deadline-producer-${randomBytes(3).toString("hex")}`;

let silent: Server;
const sockets = new Set<Socket>();
beforeAll(async () => {
  silent = createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
}, 60_000);
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

const kitFor = (brokers: string) => createKafka({ KAFKA_BROKERS: [brokers], KAFKA_CONNECT_TIMEOUT_MS: 10_000 } as Parameters<typeof createKafka>[0], "deadline-producer", log);

describe("the kit's deadline producer", () => {
  it("a missing topic fails before the deadline as unknown; a missing partition answers no record of it; an existing one is sent", async () => {
    const admin = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 1 }]);
    await admin.disconnect();
    const kit = kitFor(srv.kafka.brokers);
    const producer = kit.deadlineProducer(60_000);
    try {
      const err = await producer.send(`${TOPIC}-missing`, [{ value: "x", partition: 0 }]).then(() => undefined, (e: unknown) => e);
      expect(err).toBeDefined();
      expect(err).not.toBeInstanceOf(SendDeadlineError);
      expect(isUnknownTopic(err), String(err)).toBe(true);
      expect(await producer.send(TOPIC, [{ value: "x", partition: 3 }])).toEqual([]);
      const [sent] = await producer.send(TOPIC, [{ value: "x", partition: 0 }]);
      expect([sent.topicName, sent.partition, sent.errorCode]).toEqual([TOPIC, 0, 0]);
    } finally {
      await kit.close();
    }
  }, 180_000);

  it("a send to the broker's own topic (__consumer_offsets) fails before the deadline as a topic refused, not unknown (session 55: a dead letter's replay answered it 503, retry)", async () => {
    // The broker makes __consumer_offsets at a group's first offset commit: one committed here first.
    const admin = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic: `${TOPIC}-offsets`, numPartitions: 1 }]);
    await admin.setOffsets({ groupId: `${TOPIC}-group`, topic: `${TOPIC}-offsets`, partitions: [{ partition: 0, offset: "0" }] });
    await admin.disconnect();
    const kit = kitFor(srv.kafka.brokers);
    const producer = kit.deadlineProducer(60_000);
    try {
      const refusal = () => producer.send("__consumer_offsets", [{ value: "x", partition: 0 }]).then(() => undefined, (e: unknown) => e);
      // (Unknown until its partitions have their leaders: waited for.)
      await expect.poll(async () => isUnknownTopic(await refusal()), { timeout: 30_000 }).toBe(false);
      const err = await refusal();
      expect(err).toBeDefined();
      expect(err).not.toBeInstanceOf(SendDeadlineError);
      expect([isRefusedTopic(err), isUnknownTopic(err)], String(err)).toEqual([true, false]);
    } finally {
      await kit.close();
    }
  }, 120_000);

  it("a broker that never answers: the send is cut at its deadline with SendDeadlineError, and a later send tries again", async () => {
    const port = (silent.address() as { port: number }).port;
    const kit = kitFor(`127.0.0.1:${port}`);
    const producer = kit.deadlineProducer(1_500);
    try {
      for (const attempt of [1, 2]) {
        const before = sockets.size;
        const err = await producer.send(TOPIC, [{ value: "x", partition: 0 }]).then(() => undefined, (e: unknown) => e);
        expect(err, `attempt ${attempt}`).toBeInstanceOf(SendDeadlineError);
        expect((err as SendDeadlineError).deadlineMs).toBe(1_500);
        // Cut in its handshake: no Produce request reached a socket, so the broker cannot have the message.
        expect((err as SendDeadlineError).requestWritten, `attempt ${attempt}`).toBe(false);
        // Each attempt connects anew (the cut producer was disconnected, not reused).
        expect(sockets.size, `attempt ${attempt}`).toBeGreaterThan(before);
      }
    } finally {
      await kit.close();
    }
  }, 180_000);

  it("a broker that took the Produce request and never answers: cut at its deadline, the request said written", async () => {
    const hole = await produceHole(srv.kafka.brokers);
    const producer = deadlineProducer(kafkajs, { clientId: "deadline-producer-hole", brokers: [srv.kafka.brokers], connectTimeoutMs: 10_000, socketFactory: hole.socketFactory, logCreator: () => () => undefined }, 8_000);
    try {
      const err = await producer.send(TOPIC, [{ value: "x", partition: 0 }]).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SendDeadlineError);
      expect(hole.swallowed()).toBeGreaterThanOrEqual(1);
      expect((err as SendDeadlineError).requestWritten).toBe(true);
    } finally {
      await producer.close();
      await hole.close();
    }
  }, 180_000);
});
