/**
 * Another user's order in a decision chain (found by session 37's hunt): an order was linked to a
 * decision by its clientOrderId alone, and any user may put any text there. User B, who learned user
 * A's decision id, set it as the clientOrderId of B's own order: the order and its fill were shown in
 * A's chain and counted in A's analytics. Now the link also needs the order's user to be the
 * decision's. The service runs whole here: real ClickHouse 18.16 and Kafka, its decisions pulled from
 * a stand-in for ai-orchestrator, the order events and fills published on the trading topics as
 * order-management and the trading-engine publish them.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, type KafkaJs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import { ensureKafkaTopics, runClickHouseMigrations } from "../../services/src/migrations";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import type { DecisionIn } from "../../services/src/services/ai-chain-analytics/chains";
import { TOPICS } from "../../services/src/trading/events";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("clickhouse", "kafka");
const userA = randomUUID();
const userB = randomUUID();
const strategyId = randomUUID();
const decisionId = randomUUID();
const orderA = randomUUID();
const orderB = randomUUID();
const GROUP = `chain-cross-user-${randomUUID()}`;
const as = (userId: string, role = "trader") => ({ "x-user-id": userId, "x-user-role": role });
const admin = as(randomUUID(), "admin");

const decidedAt = new Date(Date.now() - 60_000);
const decisionOfA: DecisionIn = {
  decisionId, strategyId, userId: userA, symbol: "AAAUSDT", decidedAt: decidedAt.toISOString(), modelVersion: "cross-user-1",
  probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId: orderA,
};

let orchestrator: Server;
let svc: Service<any>;
let base: string;
let kafka: KafkaJs.Kafka;

/** An order event and its fill as order-management and the trading-engine publish them. */
function orderAndFill(orderId: string, userId: string, clientOrderId: string, at: number) {
  const order = {
    eventId: `${orderId}:filled`, type: "order.filled", ts: at + 50,
    order: { orderId, clientOrderId, userId, symbol: "AAAUSDT", side: "buy", type: "market", quantity: "1", status: "filled", filledQuantity: "1", avgFillPrice: "101", fees: "0.1",
      rejectReason: null, rejectMessage: null, lastPrice: "101", createdAt: new Date(at).toISOString(), updatedAt: new Date(at + 50).toISOString() },
  };
  const fill = { eventId: `${orderId}:1`, type: "fill", fill: { fillId: `${orderId}:1`, orderId, userId, symbol: "AAAUSDT", side: "buy", quantity: "1", price: "101", fee: "0.1", liquidity: "taker", ts: at } };
  return { order: { key: userId, value: JSON.stringify(order) }, fill: { key: userId, value: JSON.stringify(fill) } };
}

/** Whether the service's group has consumed (and committed) everything on both topics. */
async function consumedAll(): Promise<boolean> {
  const adm = kafka.admin();
  await adm.connect();
  try {
    for (const topic of [TOPICS.orders, TOPICS.executions]) {
      const high = await adm.fetchTopicOffsets(topic);
      const [committed] = await adm.fetchOffsets({ groupId: GROUP, topics: [topic] });
      for (const p of high) {
        const at = Number(committed.partitions.find((c) => c.partition === p.partition)?.offset ?? -1);
        if (Math.max(at, 0) < Number(p.high)) return false;
      }
    }
    return true;
  } finally {
    await adm.disconnect();
  }
}

beforeAll(async () => {
  const ch = createClickHouse(srv.clickhouse.env);
  await runClickHouseMigrations(ch, {});
  await ch.close();
  kafka = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const adm = kafka.admin();
  await adm.connect();
  await ensureKafkaTopics(adm);
  await adm.disconnect();
  // ai-orchestrator's GET /internal/decisions: A's one decision (every pull; ClickHouse folds repeats).
  orchestrator = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ decisions: req.url?.startsWith("/internal/decisions") ? [decisionOfA] : [] }));
  });
  await new Promise<void>((r) => orchestrator.listen(0, "127.0.0.1", r));
  const env = {
    ...srv.env, LOG_LEVEL: "silent", CHAIN_CONSUMER_GROUP: GROUP, CHAIN_POLL_MS: "200",
    SERVICE_AI_ORCHESTRATOR_URL: `http://127.0.0.1:${(orchestrator.address() as AddressInfo).port}`,
  };
  svc = await createService(aiChainAnalytics, { env, defaultMetrics: false });
  base = await svc.listen({ port: 0, host: "127.0.0.1" });
}, 240_000);

afterAll(async () => {
  await svc?.close();
  await new Promise((r) => orchestrator?.close(r));
});

describe("a decision's chain holds only its owner's orders", () => {
  it("user B's order carrying user A's decision id as its clientOrderId is in none of A's chains or summaries, and B sees nothing of A's", async () => {
    const t = decidedAt.getTime() + 1_000;
    const b = orderAndFill(orderB, userB, decisionId.toUpperCase(), t);
    const a = orderAndFill(orderA, userA, decisionId, t + 100);
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic: TOPICS.orders, messages: [b.order, a.order] });
      await producer.send({ topic: TOPICS.executions, messages: [b.fill, a.fill] });
    } finally {
      await producer.disconnect();
    }
    // A's decision was pulled and both orders and fills were consumed (B's too: it was sent first).
    await waitUntil("A's chain with A's order", async () => {
      const r = await http("GET", `${base}/chains/${decisionId}`, { headers: as(userA) });
      return r.status === 200 && r.body.orders.some((o: { orderId: string }) => o.orderId === orderA) && r.body.fills.length > 0;
    }, 120_000, 300);
    await waitUntil("every order and fill consumed", consumedAll, 120_000, 500);

    for (const who of [as(userA), admin]) {
      const chain = await http("GET", `${base}/chains/${decisionId}`, { headers: who });
      expect(chain.status).toBe(200);
      expect(chain.body.orders).toEqual([{ orderId: orderA, status: "filled", side: "buy" }]);
      expect(chain.body.fills.map((f: { fillId: string }) => f.fillId)).toEqual([`${orderA}:1`]);
      // The owner, whose edges the graph route follows (ArangoDB: not run here).
      expect(chain.body.decision).toMatchObject({ decisionId, userId: userA });
    }
    // B is not shown A's decision, and B's order is linked to nothing of A's.
    expect((await http("GET", `${base}/chains/${decisionId}`, { headers: as(userB) })).status).toBe(404);
    expect((await http("GET", `${base}/summary`, { headers: as(userB) })).body.summary).toEqual([]);
    const mine = await http("GET", `${base}/summary?strategyId=${strategyId}`, { headers: as(userA) });
    expect(mine.body.summary).toEqual([expect.objectContaining({ strategyId, decisions: 1, orders: 1, fills: 1, filledDecisions: 1 })]);
    const all = await http("GET", `${base}/summary/all?strategyId=${strategyId}`, { headers: admin });
    expect(all.body.summary).toEqual([expect.objectContaining({ strategyId, decisions: 1, orders: 1, fills: 1 })]);
  }, 240_000);
});
