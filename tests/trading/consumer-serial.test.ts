/**
 * consumeDecoded with joinPartitions against a real Kafka and PostgreSQL: kafkajs runs several
 * partitions' batches at once, and the handler must still never run beside itself, also while a
 * batch that failed is handed over again one message at a time (the trading-engine rebuilds its
 * book after a failed transaction; a batch applied meanwhile would be lost from memory). Every good
 * message is handled, first in each partition's order, every poison one is set aside with its reason.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, defineService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import { consumeDecoded, consumerEnv } from "../../services/src/trading/infra/kafka";
import { sleep, waitUntil } from "./e2e-helpers";
import { createTopicsReady } from "../../services/src/kit/datastores/kafka";

const srv = useServers("postgres", "kafka");
const TOPIC = `test.serial.${randomBytes(4).toString("hex")}`;
const GROUP = `serial-${randomBytes(4).toString("hex")}`;
const PARTITIONS = 6;
const PER_PARTITION = 40;
/** Bound of a wait, only a guard against a hang on a loaded machine. */
const WAIT_MS = 240_000;

let pool: InstanceType<typeof pg.Pool>;
let service: Service<any> | undefined;
let inFlight = 0;
let maxInFlight = 0;
const handled: { partition: number; n: number }[] = [];

/** A handler that takes a while (so batches overlap) and refuses the whole call if any item is poison. */
async function handle(items: { partition: number; n: number; poison: boolean }[]): Promise<void> {
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    await sleep(15);
    const bad = items.find((i) => i.poison);
    if (bad) throw new Error(`item ${bad.partition}/${bad.n} is refused`);
    handled.push(...items.map(({ partition, n }) => ({ partition, n })));
  } finally {
    inFlight--;
  }
}

// A service module under a catalog name with PostgreSQL and Kafka (the kit only creates those);
// it registers nothing but the consumer under test.
const consumerUnderTest = defineService({
  name: "trading-engine",
  config: consumerEnv,
  async register(ctx) {
    await consumeDecoded(ctx, {
      groupId: GROUP,
      topics: [TOPIC],
      joinPartitions: PARTITIONS,
      decode: (m) => ({ partition: m.partition, ...(m.json as { n: number; poison: boolean }) }),
      handle,
    });
  },
});

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  const k = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const admin = k.admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: PARTITIONS }]);
  await admin.disconnect();
  // Everything is on the topic before the group joins: the first fetch finds every partition full.
  const producer = k.producer();
  await producer.connect();
  for (let p = 0; p < PARTITIONS; p++)
    await producer.send({
      topic: TOPIC,
      messages: Array.from({ length: PER_PARTITION }, (_, n) => ({ partition: p, value: JSON.stringify({ n, poison: n % 13 === 5 }) })),
    });
  await producer.disconnect();
}, 300_000);

afterAll(async () => {
  await service?.close();
  await pool?.end();
}, 60_000);

describe("consumeDecoded with joinPartitions", () => {
  it("never runs the handler beside itself, a failed batch's one-by-one retry included; every good message in order, poison set aside", async () => {
    service = await createService(consumerUnderTest, {
      env: { ...srv.env, LOG_LEVEL: "fatal", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", KAFKA_FETCH_MAX_WAIT_MS: "100" },
      defaultMetrics: false,
    });
    const goodOfPartition = Array.from({ length: PER_PARTITION }, (_, n) => n).filter((n) => n % 13 !== 5);
    const poisonPerPartition = PER_PARTITION - goodOfPartition.length;
    const good = PARTITIONS * goodOfPartition.length;
    // At least once (a consumer restarted by a broker hiccup replays what it had not committed),
    // so messages are counted once each.
    const distinct = () => new Set(handled.map((h) => `${h.partition}/${h.n}`)).size;
    await waitUntil("every good message handled", async () => distinct() >= good, WAIT_MS);
    const asides = await waitUntil("every poison message set aside", async () => {
      const r = await pool.query("SELECT msg_partition, reason FROM consumer_dead_letters WHERE consumer_group = $1", [GROUP]);
      return r.rowCount === PARTITIONS * poisonPerPartition ? r.rows : undefined;
    }, WAIT_MS);
    expect(maxInFlight).toBe(1);
    expect(distinct()).toBe(good);
    for (let p = 0; p < PARTITIONS; p++) {
      const ns = [...new Set(handled.filter((h) => h.partition === p).map((h) => h.n))];
      expect(ns, `partition ${p}`).toEqual(goodOfPartition);
    }
    expect(asides.every((a) => /is refused/.test(a.reason))).toBe(true);
  }, 300_000);
});
