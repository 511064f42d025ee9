/**
 * Session 60: a consumer's batch whose handler waits past KAFKA_SESSION_TIMEOUT_MS (a lock wait, a slow peer)
 * keeps its member in the group, against a real Kafka: the batch in hand heartbeats every KAFKA_HEARTBEAT_MS
 * (trading/infra/batchHeartbeats.ts). Before, kafkajs sent no heartbeat inside eachBatch: the member was
 * evicted after the session timeout, rejoined once the batch ended, and the batch, its offsets not committed,
 * was delivered again.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, defineService, type Service } from "../../services/src/kit";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";
import { consumeBatches, consumerEnv } from "../../services/src/trading/infra/kafka";
import { sleep, waitUntil } from "./e2e-helpers";
import { onEachNewConsumer } from "../helpers/consumer-events";

const srv = useServers("postgres", "kafka");
const TOPIC = `test.heartbeats.${randomBytes(4).toString("hex")}`;
const GROUP = `heartbeats-${randomBytes(4).toString("hex")}`;
const SESSION_MS = 6_000;
/** The first batch's handler waits this long: past the session timeout. */
const HANDLER_WAIT_MS = 9_000;

let kafka: InstanceType<typeof kafkajs.Kafka>;
let service: Service<any> | undefined;
const deliveries: number[] = [];
let joins = 0;

const slowConsumer = defineService({
  name: "trading-engine",
  config: consumerEnv,
  async register(ctx) {
    // Count the member's joins (kafkajs reports each one): an eviction makes it join again.
    onEachNewConsumer(ctx.app.kafka, (c) => c.on(c.events.GROUP_JOIN, () => joins++));
    await consumeBatches(ctx, {
      groupId: GROUP,
      topics: [TOPIC],
      handle: async (msgs) => {
        for (const m of msgs) deliveries.push((m.json as { n: number }).n);
        if (msgs.some((m) => (m.json as { n: number }).n === 0)) await sleep(HANDLER_WAIT_MS);
      },
    });
  },
});

beforeAll(async () => {
  kafka = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: 1 }]);
  await admin.disconnect();
}, 300_000);

afterAll(async () => {
  await service?.close();
}, 60_000);

describe("a batch in hand heartbeats", () => {
  it("a handler waiting past the session timeout keeps its member: no rejoin, the batch not delivered again", async () => {
    service = await createService(slowConsumer, {
      env: { ...srv.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: String(SESSION_MS), KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" },
      defaultMetrics: false,
    });
    await waitUntil("the member joined", async () => joins === 1, 120_000, 50);
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: TOPIC, messages: [{ partition: 0, value: JSON.stringify({ n: 0 }) }] });
      await waitUntil("the slow batch delivered", async () => deliveries.includes(0), 60_000, 20);
      // During the wait, a second message: it comes once the slow batch ends.
      await producer.send({ topic: TOPIC, messages: [{ partition: 0, value: JSON.stringify({ n: 1 }) }] });
      await waitUntil("the next one handled", async () => deliveries.includes(1), 60_000, 50);
    } finally {
      await producer.disconnect();
    }
    // A rejoin after an eviction would come within a heartbeat or two of the batch's end: give it time to show.
    await sleep(2_000);
    expect(deliveries).toEqual([0, 1]);
    expect(joins).toBe(1);
  }, 180_000);
});
