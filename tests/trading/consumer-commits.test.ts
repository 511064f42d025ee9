/**
 * How often the kit's consumers commit their offsets, against a real Kafka: at most about once a
 * second while batches keep coming (kafkajs' own autoCommit sent an OffsetCommit after every batch,
 * the broker's most frequent request under load), the last batches once the stream goes quiet, and
 * everything handled when the service closes (a restart replays nothing it had finished). And
 * `lingerMs`: a consumer off the latency path waits after a batch, so what arrives meanwhile comes
 * as one batch (one transaction) instead of one each.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, defineService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import { COMMIT_INTERVAL_MS, consumeBatches, consumerEnv } from "../../services/src/trading/infra/kafka";
import { sleep, waitUntil } from "./e2e-helpers";
import { onEachNewConsumer } from "../helpers/consumer-events";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";

const srv = useServers("postgres", "kafka");
const TOPIC = `test.commits.${randomBytes(4).toString("hex")}`;
const GROUP = `commits-${randomBytes(4).toString("hex")}`;
const LINGER_TOPIC = `test.linger.${randomBytes(4).toString("hex")}`;
const LINGER_GROUP = `linger-${randomBytes(4).toString("hex")}`;
const LINGER_MS = 1500;
/** Bound of a wait, only a guard against a hang on a loaded machine. */
const WAIT_MS = 240_000;

let pool: InstanceType<typeof pg.Pool>;
let service: Service<any> | undefined;
let kafka: InstanceType<typeof kafkajs.Kafka>;
let batches = 0;
let commits = 0;
const handled = new Set<number>();

const consumerUnderTest = defineService({
  name: "trading-engine",
  config: consumerEnv,
  async register(ctx) {
    // Count the consumer's commits (kafkajs reports each one it sends).
    onEachNewConsumer(ctx.app.kafka, (c) => c.on(c.events.COMMIT_OFFSETS, () => commits++));
    await consumeBatches(ctx, {
      groupId: GROUP,
      topics: [TOPIC],
      handle: async (msgs) => {
        batches++;
        for (const m of msgs) handled.add((m.json as { n: number }).n);
      },
    });
  },
});

const lingerBatches: number[][] = [];
const lingering = defineService({
  name: "portfolio-manager",
  config: consumerEnv,
  async register(ctx) {
    await consumeBatches(ctx, {
      groupId: LINGER_GROUP,
      topics: [LINGER_TOPIC],
      lingerMs: LINGER_MS,
      handle: async (msgs) => {
        lingerBatches.push(msgs.map((m) => (m.json as { n: number }).n));
      },
    });
  },
});

/** The group's committed offset of partition 0 (-1: none). */
async function committed(): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    return Number(t.partitions.find((p) => p.partition === 0)?.offset ?? -1);
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  kafka = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 1 }, { topic: LINGER_TOPIC, numPartitions: 1 }]);
  await admin.disconnect();
}, 300_000);

afterAll(async () => {
  await service?.close();
  await pool?.end();
}, 60_000);

describe("consumer offset commits", () => {
  it("commits at most about once a second under a stream of batches, the rest once quiet, and all it handled on close", async () => {
    service = await createService(consumerUnderTest, {
      env: { ...srv.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" },
      defaultMetrics: false,
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      // 80 messages one by one, 25 ms apart: most arrive alone, each a batch of its own.
      const t0 = Date.now();
      for (let n = 0; n < 80; n++) {
        await producer.send({ topic: TOPIC, messages: [{ partition: 0, value: JSON.stringify({ n }) }] });
        await sleep(25);
      }
      await waitUntil("the 80 handled", async () => handled.size === 80, WAIT_MS, 10);
      const busySeconds = (Date.now() - t0) / 1000;
      const [batchesBusy, commitsBusy] = [batches, commits];
      // At most one commit per interval, plus the first one (an interval from the assignment) and
      // a trailing one: far fewer than one per batch.
      expect(commitsBusy).toBeLessThanOrEqual(Math.ceil((busySeconds * 1000) / COMMIT_INTERVAL_MS) + 2);
      expect(batchesBusy).toBeGreaterThan(commitsBusy);

      // Quiet: the trailing commit brings the group to the end (offset 80: the next to read).
      await waitUntil("the last batches committed once quiet", async () => (await committed()) === 80, WAIT_MS, 100);

      // Five more, then close at once: what was handled is committed before the consumer leaves.
      await producer.send({ topic: TOPIC, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: JSON.stringify({ n: 80 + i }) })) });
      await waitUntil("the 85 handled", async () => handled.size === 85, WAIT_MS, 5);
    } finally {
      await producer.disconnect();
    }
    await service.close();
    service = undefined;
    expect(await committed()).toBe(85);
  }, 300_000);

  it("lingerMs: after a batch, what arrives during the wait is handled as one batch", async () => {
    const svc = await createService(lingering, {
      env: { ...srv.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" },
      defaultMetrics: false,
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: LINGER_TOPIC, messages: [{ partition: 0, value: JSON.stringify({ n: 0 }) }] });
      await waitUntil("the first handled alone", async () => lingerBatches.length === 1, WAIT_MS, 5);
      // The consumer now waits LINGER_MS: ten messages sent one by one meanwhile.
      const t0 = Date.now();
      for (let n = 1; n <= 10; n++) await producer.send({ topic: LINGER_TOPIC, messages: [{ partition: 0, value: JSON.stringify({ n }) }] });
      const sentWithinLinger = Date.now() - t0 < LINGER_MS / 2;
      await waitUntil("the ten handled", async () => lingerBatches.flat().length === 11, WAIT_MS, 5);
      expect(lingerBatches[0]).toEqual([0]);
      expect(lingerBatches.flat()).toEqual(Array.from({ length: 11 }, (_, n) => n));
      // Sent well inside the wait (not so on a machine too loaded to send ten messages in 750 ms):
      // they come as one batch.
      if (sentWithinLinger) expect(lingerBatches.length).toBe(2);
    } finally {
      await producer.disconnect();
      await svc.close();
    }
  }, 300_000);
});
