/**
 * Another user's order in a decision chain (found by session 37's hunt): an order was linked to a
 * decision by its clientOrderId alone, and any user may put any text there. User B, who learned user
 * A's decision id, set it as the clientOrderId of B's own order: the order and its fill were shown in
 * A's chain and counted in A's analytics. Now the link also needs the order's user to be the
 * decision's. The service runs whole here: real ClickHouse 18.16 and Kafka, its decisions pulled from
 * a stand-in for ai-orchestrator, the order events and fills published on the trading topics as
 * order-management and the trading-engine publish them.
 *
 * And the rolling deploy of that fix (found by session 38, fixed in session 39): a replica of the
 * release before it still wrote the orders it consumed to 0005's ai_chain_orders, without their
 * user, and the new readers read only 0022's table, so those orders were in no chain for good.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, type KafkaJs } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import type { ClickHouseKitClient } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import { ensureKafkaTopics, runClickHouseMigrations } from "../../services/src/migrations";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import type { DecisionIn } from "../../services/src/services/ai-chain-analytics/chains";
import { TOPICS, type OrderEventMsg } from "../../services/src/trading/events";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("clickhouse", "kafka");
const userA = randomUUID();
const userB = randomUUID();
const strategyId = randomUUID();
const decisionId = randomUUID();
const orderA = randomUUID();
const orderB = randomUUID();
const GROUP = `chain-cross-user-${randomUUID()}`;
const as = (userId: string, role = "trader") => ({ "x-user-id": userId, "x-user-role": role, "x-auth-method": "jwt" });
const admin = as(randomUUID(), "admin");

const decidedAt = new Date(Date.now() - 60_000);
const decisionOfA: DecisionIn = {
  decisionId, strategyId, userId: userA, symbol: "AAAUSDT", decidedAt: decidedAt.toISOString(), modelVersion: "cross-user-1",
  probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId: orderA,
};

// The rollout's decisions: two of A's (one strategy), each with the order ai-orchestrator placed for it.
const rolloutStrategy = randomUUID();
const [decisionA2, decisionA3, orderA2, orderA3, orderB2] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
const rolloutDecisions: DecisionIn[] = [
  { ...decisionOfA, decisionId: decisionA2, strategyId: rolloutStrategy, orderId: orderA2 },
  { ...decisionOfA, decisionId: decisionA3, strategyId: rolloutStrategy, orderId: orderA3 },
];

let orchestrator: Server;
let svc: Service<any>;
let base: string;
let kafka: KafkaJs.Kafka;

/** An order event as order-management publishes it: `new` at `at`, `filled` 50 ms later. */
function orderEvent(orderId: string, userId: string, clientOrderId: string, at: number, status: "new" | "filled" = "filled") {
  const filled = status === "filled";
  return {
    eventId: `${orderId}:${status}`, type: `order.${status}`, ts: filled ? at + 50 : at,
    order: { orderId, clientOrderId, userId, symbol: "AAAUSDT", side: "buy", type: "market", quantity: "1", status, filledQuantity: filled ? "1" : "0", avgFillPrice: filled ? "101" : null,
      fees: filled ? "0.1" : "0", rejectReason: null, rejectMessage: null, lastPrice: "101", createdAt: new Date(at).toISOString(), updatedAt: new Date(filled ? at + 50 : at).toISOString() },
  };
}

/** An order event and its fill as order-management and the trading-engine publish them. */
function orderAndFill(orderId: string, userId: string, clientOrderId: string, at: number) {
  const order = orderEvent(orderId, userId, clientOrderId, at);
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
    res.end(JSON.stringify({ decisions: req.url?.startsWith("/internal/decisions") ? [decisionOfA, ...rolloutDecisions] : [] }));
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

/**
 * What a replica of the release before migration 0022 wrote for an order event: `orderRow` and
 * `ChainStore.insertOrders` as of 1c4e627^ (git log -p services/src/services/ai-chain-analytics),
 * `this.ch.insert("ai_chain_orders", rows)` of rows without the user.
 */
async function oldReplicaWrites(ch: ClickHouseKitClient, events: OrderEventMsg[]): Promise<void> {
  const rows = events.map((e) => {
    const o = e.order;
    const created = Date.parse(o.createdAt);
    return {
      order_id: o.orderId, decision_id: o.clientOrderId!.toLowerCase(), day: new Date(created).toISOString().slice(0, 10), status: o.status, side: o.side,
      created_ms: created, event_ms: Date.parse(o.updatedAt), event_id: e.eventId,
    };
  });
  await ch.insert("ai_chain_orders", rows);
}

describe("orders an older replica wrote during the rolling deploy of 0022", () => {
  it("are in their decision's chain and summary once, with the decision's order only: B's order naming A's decision stays out", async () => {
    const t = decidedAt.getTime() + 2_000;
    const ev = (orderId: string, userId: string, decision: string, status: "new" | "filled") => orderEvent(orderId, userId, decision, t, status) as OrderEventMsg;
    const fill = (orderId: string, userId: string) => orderAndFill(orderId, userId, decisionA2, t).fill;
    const ch = createClickHouse(srv.clickhouse.env);
    const producer = kafka.producer();
    await producer.connect();
    try {
      // A2's `new` event consumed by both an old and a new replica (a rebalance), its `filled` by the old
      // one only; A3's order and B's (naming A2's decision) by the old one only. Fills: the same table in both releases.
      await producer.send({ topic: TOPICS.orders, messages: [{ key: userA, value: JSON.stringify(ev(orderA2, userA, decisionA2, "new")) }] });
      await oldReplicaWrites(ch, [
        ev(orderA2, userA, decisionA2, "new"), ev(orderA2, userA, decisionA2, "filled"),
        ev(orderA3, userA, decisionA3, "new"), ev(orderA3, userA, decisionA3, "filled"),
        ev(orderB2, userB, decisionA2.toUpperCase(), "filled"),
      ]);
      await producer.send({ topic: TOPICS.executions, messages: [fill(orderA2, userA), fill(orderA3, userA), fill(orderB2, userB)] });
    } finally {
      await producer.disconnect();
      await ch.close();
    }
    await waitUntil("both rollout decisions pulled", async () => {
      for (const d of [decisionA2, decisionA3]) if ((await http("GET", `${base}/chains/${d}`, { headers: as(userA) })).status !== 200) return false;
      return true;
    }, 120_000, 300);
    await waitUntil("every order and fill consumed", consumedAll, 120_000, 500);

    for (const who of [as(userA), admin]) {
      for (const [decision, order] of [[decisionA2, orderA2], [decisionA3, orderA3]]) {
        const chain = await http("GET", `${base}/chains/${decision}`, { headers: who });
        expect(chain.status).toBe(200);
        expect(chain.body.orders).toEqual([{ orderId: order, status: "filled", side: "buy" }]);
        expect(chain.body.fills.map((f: { fillId: string }) => f.fillId)).toEqual([`${order}:1`]);
      }
    }
    expect((await http("GET", `${base}/chains/${decisionA2}`, { headers: as(userB) })).status).toBe(404);
    expect((await http("GET", `${base}/summary`, { headers: as(userB) })).body.summary).toEqual([]);
    const counts = { strategyId: rolloutStrategy, decisions: 2, orders: 2, fills: 2, filledDecisions: 2 };
    const mine = await http("GET", `${base}/summary?strategyId=${rolloutStrategy}`, { headers: as(userA) });
    expect(mine.body.summary).toEqual([expect.objectContaining(counts)]);
    // Decision -> order latency from the order's created_at (the same in both tables' copies).
    expect(mine.body.summary[0].decisionToOrderMs).toEqual({ p50: 2_000, p95: 2_000 });
    const all = await http("GET", `${base}/summary/all?strategyId=${rolloutStrategy}`, { headers: admin });
    expect(all.body.summary).toEqual([expect.objectContaining(counts)]);
  }, 240_000);
});
