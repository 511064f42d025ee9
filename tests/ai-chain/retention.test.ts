/**
 * ai-chain-analytics' ClickHouse retention (retention.ts) on a real ClickHouse 18.16, in a database of
 * its own (partitions are dropped): the chains' rows had none, every decision, order and fill kept for
 * good. A pass drops the month partitions that ended before the cutoff's month and were not written
 * since the cutoff, and deletes 0026's unpartitioned ai_chain_decisions_by_id rows of those months by
 * one mutation. The cutoff is moved with `now` (the retention's floor is 5 years; rows are written now).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useMigratedClickHouse } from "../harness/clickhouse-database";
import { useServers } from "../harness/shared";
import { createService } from "../../services/src/kit";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { decisionOrderRow, decisionRow, fillRow, orderRow, type DecisionIn } from "../../services/src/services/ai-chain-analytics/chains";
import { ChainRetention, DECISIONS_BY_ID, MONTHLY_CHAIN_TABLES } from "../../services/src/services/ai-chain-analytics/retention";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import type { OrderEventMsg } from "../../services/src/trading/events";
import { sleep, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("clickhouse");
const DAYS = 1_825;
const DAY_MS = 86_400_000;
const own = useMigratedClickHouse(srv, "chain_retention");

/** One chain made at `at`: its decision (with its order's link), the order's event, a fill stamped `fillAt` (market time). */
async function chain(at: number, fillAt = at) {
  const [decisionId, orderId, user] = [randomUUID(), randomUUID(), randomUUID()];
  const d: DecisionIn = {
    decisionId, strategyId: randomUUID(), userId: user, symbol: "RETUSDT", decidedAt: new Date(at).toISOString(), modelVersion: "m",
    probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId,
  };
  const created = new Date(at + 50).toISOString();
  const event = {
    eventId: `${orderId}:filled`, type: "order.filled", ts: at + 60,
    order: { orderId, clientOrderId: decisionId, userId: user, symbol: "RETUSDT", side: "buy", type: "market", quantity: "1", status: "filled", filledQuantity: "1",
      avgFillPrice: "100", fees: "0", rejectReason: null, rejectMessage: null, lastPrice: null, createdAt: created, updatedAt: created },
  } as OrderEventMsg;
  const store = new ChainStore(own.ch);
  await store.insertDecisionOrders([decisionOrderRow(d)!]);
  await store.insertDecisions([decisionRow(d)]);
  await store.insertOrders([orderRow(event)!]);
  await store.insertFills([fillRow({ fillId: `${orderId}:1`, orderId, userId: user, symbol: "RETUSDT", side: "buy", quantity: "1", price: "100", fee: "0", liquidity: "taker", ts: fillAt })]);
  // 0005's tables, still holding rows of the releases before (no longer written).
  await own.ch.insert("ai_chain_decisions", [{ ...decisionRow(d), user_id: user }]);
  const { user_id: _user, ...old } = orderRow(event)!;
  await own.ch.insert("ai_chain_orders", [old]);
  return { decisionId, orderId };
}

const count = async (table: string, where: string) => Number((await own.ch.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${table} WHERE ${where}`))[0].n);
const everyTable = [...MONTHLY_CHAIN_TABLES, DECISIONS_BY_ID];

describe("ai-chain-analytics: ClickHouse rows past CHAIN_CLICKHOUSE_RETENTION_DAYS", () => {
  it("a pass drops every chain table's months that ended before the cutoff's month and deletes their ai_chain_decisions_by_id rows; the months after stay, whole", async () => {
    const now = Date.now();
    const old = [await chain(Date.UTC(2018, 0, 15)), await chain(Date.UTC(2019, 5, 30, 23, 59))];
    const kept = await chain(now - 1_000);
    // Rows are written now: the cutoff is put just past now (the retention's 5 years ahead), so the months before now's month are past it.
    const retention = new ChainRetention(own.ch, DAYS);
    const at = new Date(now + DAYS * DAY_MS + 2_000);
    await sleep(1_100); // modification_time has seconds: the parts are older than the cutoff
    const passed = await retention.pass(at);
    expect(passed).toBe(MONTHLY_CHAIN_TABLES.length * 2 + 1);
    expect(retention.done).toEqual(expect.arrayContaining(["ai_chain_fills 201801", "ai_chain_user_decisions 201906", `${DECISIONS_BY_ID} < ${new Date(now).toISOString().slice(0, 7)}-01`]));
    // The by-id delete is a mutation: done in the background.
    await waitUntil("the by-id delete done", async () => (await count(DECISIONS_BY_ID, `day < toDate('2020-01-01')`)) === 0, 60_000, 200);
    for (const table of everyTable) {
      expect(await count(table, `day < toDate('2020-01-01')`), table).toBe(0);
      expect(await count(table, `day >= toDate('2020-01-01')`), table).toBe(1);
    }
    const store = new ChainStore(own.ch);
    expect(await store.chain(old[0].decisionId)).toBeUndefined();
    expect((await store.chain(kept.decisionId))!.fills).toHaveLength(1);
    // Nothing more due: the next pass drops nothing and issues no mutation (the by-id table is not read again for the same month).
    expect(await retention.pass(at)).toBe(0);
    expect(await retention.pass(new Date(now + DAYS * DAY_MS))).toBe(0);
  }, 120_000);

  it("a month written since the cutoff stays until the cutoff passes that write (a fill stamped with an old market time), then goes", async () => {
    await sleep(1_100);
    const before = Date.now() - 1_000;
    const late = await chain(Date.now(), Date.UTC(2017, 2, 1));
    expect(await count("ai_chain_fills", `order_id = '${late.orderId}'`)).toBe(1);
    const retention = new ChainRetention(own.ch, DAYS);
    // The cutoff before the fill's write: its month (2017-03) is kept, whatever its date.
    expect(await retention.pass(new Date(before + DAYS * DAY_MS))).toBe(0);
    expect(await count("ai_chain_fills", `day < toDate('2020-01-01')`)).toBe(1);
    await sleep(1_100);
    expect(await retention.pass(new Date(Date.now() + DAYS * DAY_MS))).toBe(1);
    expect(retention.done).toEqual(["ai_chain_fills 201703"]);
    expect(await count("ai_chain_fills", `day < toDate('2020-01-01')`)).toBe(0);
  }, 60_000);

  it("two passes at once (the timer's and an operator's) issue one by-id delete: the second joins the first", async () => {
    const mutations = async () => Number((await own.ch.query<{ n: string }>(`SELECT toString(count()) AS n FROM system.mutations WHERE database = currentDatabase() AND table = {t:String}`, { t: DECISIONS_BY_ID }))[0].n);
    await waitUntil("no by-id delete unfinished", async () => (await own.ch.query(`SELECT 1 FROM system.mutations WHERE database = currentDatabase() AND is_done = 0`)).length === 0, 60_000, 200);
    await chain(Date.UTC(2016, 4, 10));
    await sleep(1_100);
    const issued = await mutations();
    const retention = new ChainRetention(own.ch, DAYS);
    const at = new Date(Date.now() + DAYS * DAY_MS);
    const [a, b] = await Promise.all([retention.pass(at), retention.pass(at)]);
    expect(a).toBe(b);
    expect(retention.done.filter((d) => d.startsWith(DECISIONS_BY_ID))).toHaveLength(1);
    expect(await mutations()).toBe(issued + 1);
    await waitUntil("the by-id delete done", async () => (await count(DECISIONS_BY_ID, `day < toDate('2020-01-01')`)) === 0, 60_000, 200);
  }, 120_000);

  it("CHAIN_CLICKHOUSE_RETENTION_DAYS has ai-orchestrator's decision retention's floor (5 years): below it the service does not start, naming the key", async () => {
    await expect(createService(aiChainAnalytics, { env: { ...srv.env, LOG_LEVEL: "silent", CHAIN_CLICKHOUSE_RETENTION_DAYS: "1824" }, defaultMetrics: false })).rejects.toThrow(
      "CHAIN_CLICKHOUSE_RETENTION_DAYS must be >= 1825",
    );
  });
});
