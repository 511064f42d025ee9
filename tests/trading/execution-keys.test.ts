/**
 * `trading.executions` is keyed by user id (real PostgreSQL and Kafka): the trading-engine's fills
 * of one user, for different orders, go through te_outbox and the outbox relay to ONE partition, in
 * the order the engine committed them, so portfolio-manager folds them in that order whatever the
 * timing of its partitions. The scenario of the defect: buy 1@100, buy 1@120, sell 1@110 realize 0 in
 * order; +10 if the sell overtakes the second buy (the three orders' ids are chosen to hash to three
 * different partitions, so keyed by order id they would be consumed in any interleaving).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs } from "../harness";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { createKafka, createTopicsReady } from "../../services/src/kit/datastores/kafka";
import { migratedKitPostgres } from "../helpers/schemas";
import { testEngine } from "../helpers/engine";
import { cancelledEvent, fillEvent, outcomeEvent } from "../../services/src/services/trading-engine/messages";
import { applyFills } from "../../services/src/services/portfolio-manager/fills";
import { TOPICS, type ExecutionMsg } from "../../services/src/trading/events";
import { OutboxRelay } from "../../services/src/trading/infra/outbox";
import type { Bar, Fill, OrderRequest } from "../../services/src/trading/types";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "kafka");
const SYMBOL = `K${randomBytes(4).toString("hex").toUpperCase()}USDT`;
/** Stands in for trading.executions on the shared broker (the topic names are fixed; the file's own copy). */
const TOPIC = `test.executions.${randomBytes(4).toString("hex")}`;
const PARTITIONS = 6; // as migrations/kafka.ts declares trading.executions
const USER = randomUUID();
let client: PostgresClient;

const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof createPostgres>[1];
const engine = () =>
  testEngine({ pg: client, log });

/** The partition kafkajs's default partitioner (the kit's producer's) gives a key on a topic of PARTITIONS. */
const partitionOf = (() => {
  const hash = kafkajs.Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  return (key: string) => hash({ topic: TOPIC, partitionMetadata, message: { key, value: "" } });
})();
/** Order ids that keyed alone would land on pairwise different partitions. */
function scatteredOrderIds(n: number): string[] {
  const ids: string[] = [];
  while (ids.length < n) {
    const id = randomUUID();
    if (!ids.some((x) => partitionOf(x) === partitionOf(id))) ids.push(id);
  }
  return ids;
}
const bar = (openTime: number, o: string, h: string, l: string, c: string): Bar => ({ symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: o, high: h, low: l, close: c, volume: "1000" });
const limit = (orderId: string, side: "buy" | "sell", limitPrice: string): OrderRequest => ({ orderId, userId: USER, symbol: SYMBOL, side, type: "limit", quantity: "1", limitPrice });
const permutations = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 4);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

describe("trading.executions keys", () => {
  it("every execution event of the engine carries the user id as its key", () => {
    const order = limit(randomUUID(), "buy", "100");
    const fill: Fill = { fillId: `${order.orderId}:1`, orderId: order.orderId, userId: USER, symbol: SYMBOL, side: "buy", quantity: "1", price: "100", fee: "0.1", liquidity: "maker", ts: 0 };
    for (const e of [fillEvent(fill), outcomeEvent(order, "order.rejected", "X"), outcomeEvent(order, "order.expired", "IOC_NOT_FILLED"), cancelledEvent(order, "1", "CANCELLED_ON_REQUEST")]) {
      expect(e.topic).toBe(TOPICS.executions);
      expect(e.key, e.eventId).toBe(USER);
    }
  });

  it("one user's fills of three orders reach one partition in the engine's order; the portfolio realizes 0 whatever the partitions' timing", async () => {
    const [buy100, buy120, sell110] = scatteredOrderIds(3);
    const te = engine();
    await te.load();
    const t0 = Date.UTC(2026, 2, 1);
    await te.onBatch([{ kind: "bars", bars: [bar(t0, "130", "130", "130", "130")] }]);
    await te.onBatch([{ kind: "execute", order: limit(buy100, "buy", "100") }, { kind: "execute", order: limit(buy120, "buy", "120") }]);
    await te.onBatch([{ kind: "bars", bars: [bar(t0 + 60_000, "130", "130", "99", "105")] }]); // fills buy 1@100, then buy 1@120
    await te.onBatch([{ kind: "execute", order: limit(sell110, "sell", "110") }]);
    await te.onBatch([{ kind: "bars", bars: [bar(t0 + 120_000, "105", "111", "105", "108")] }]); // fills sell 1@110

    const rows = (await client.query<{ msg_key: string; event_id: string }>("SELECT msg_key, event_id FROM te_outbox WHERE topic = $1 ORDER BY id", [TOPICS.executions])).rows;
    expect(rows.map((r) => r.event_id)).toEqual([`${buy100}:1`, `${buy120}:1`, `${sell110}:1`]);
    expect(rows.map((r) => r.msg_key)).toEqual([USER, USER, USER]);

    // The relay publishes the rows with their stored key through the kit's producer (its partitioner).
    const admin = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }]);
    await admin.disconnect();
    const kit = createKafka({ KAFKA_BROKERS: [srv.kafka.brokers], KAFKA_CONNECT_TIMEOUT_MS: 30_000 } as Parameters<typeof createKafka>[0], "execution-keys", log);
    const relay = new OutboxRelay(client.pool, "te_outbox", { send: (topic, msgs) => kit.send(topic === TOPICS.executions ? TOPIC : topic, msgs) }, log);
    expect(await relay.drainOnce()).toBe(3);
    await kit.close();

    const consumed: { partition: number; offset: bigint; key: string; msg: ExecutionMsg }[] = [];
    const consumer = new kafkajs.Kafka({ brokers: [srv.kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).consumer({ groupId: `keys-${randomBytes(4).toString("hex")}` });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed.push({ partition, offset: BigInt(message.offset), key: message.key!.toString(), msg: JSON.parse(message.value!.toString()) as ExecutionMsg });
      },
    });
    await waitUntil("three executions consumed", async () => consumed.length >= 3, 120_000, 100);
    await consumer.disconnect();

    expect(consumed.map((c) => c.key)).toEqual([USER, USER, USER]);
    expect(new Set(consumed.map((c) => c.partition)).size).toBe(1);

    // portfolio-manager sees each partition in offset order, the partitions in any interleaving:
    // every order in which whole partitions can be consumed gives the same realized PnL, 0.
    const byPartition = new Map<number, Fill[]>();
    for (const c of [...consumed].sort((a, b) => (a.offset < b.offset ? -1 : 1)))
      if (c.msg.type === "fill") byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), c.msg.fill]);
    for (const order of permutations([...byPartition.keys()])) {
      const who = randomUUID();
      for (const p of order) {
        const fills = byPartition.get(p)!.map((f) => ({ ...f, userId: who, fillId: `${who}:${f.fillId}` }));
        await client.transaction((tx) => applyFills(tx, fills, "100000"));
      }
      const pos = (await client.query<{ quantity: string; realized: string }>("SELECT quantity::text AS quantity, realized_pnl::text AS realized FROM pm_positions WHERE user_id = $1 AND symbol = $2", [who, SYMBOL])).rows[0];
      expect({ partitions: order, quantity: Number(pos.quantity), realized: Number(pos.realized) }).toEqual({ partitions: order, quantity: 1, realized: 0 });
    }
  }, 300_000);
});
