/**
 * What one summary of ai-chain-analytics reads (`GET /api/ai-chains/summary`, any trader; found by
 * session 42's business-logic hunt), on real ClickHouse 18.16 under `max_rows_to_read`. The summary
 * joins the range's decisions with their orders, fills and the symbols' latest 1-minute closes, and the
 * joined sides were read whole: every order, fill and 1-minute candle ever recorded, of every user and
 * symbol, at each request of each trader (the gateway lets 300 a minute through). They are read for the
 * range's decisions only now, by the tables' keys (decision id, order id, symbol).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { clickHouseUnder, migratedClickHouse } from "../helpers/schemas";
import { mergeChainAndCandleTables } from "../helpers/query-log";
import { candleRow } from "../../services/src/services/data-bridge";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import { decisionRow, fillRow, orderRow } from "../../services/src/services/ai-chain-analytics/chains";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
}, 300_000);
afterAll(() => ch?.close());

/** Rows of everyone else, in each joined table: more than the bound below, several times over. */
const NOISE = 100_000;
const BOUND = 60_000;

async function insertMany(table: string, n: number, row: (i: number) => Record<string, unknown>): Promise<void> {
  for (let i = 0; i < n; i += 20_000) await ch.insert(table, Array.from({ length: Math.min(20_000, n - i) }, (_, k) => row(i + k)));
}

const optimize = () => mergeChainAndCandleTables(ch);

describe("ai-chain-analytics: a summary reads its own decisions' orders, fills and marks (session 42)", () => {
  it("a trader's summary stays under max_rows_to_read with 100,000 rows of others in each joined table", async () => {
    const user = randomUUID();
    const [strategyId, decisionId, orderId] = [randomUUID(), randomUUID(), randomUUID()];
    const t0 = Date.now() - 60_000;
    const symbol = "SUMREADUSDT";
    await new ChainStore(ch).insertDecisions([
      decisionRow({ decisionId, strategyId, userId: user, symbol, decidedAt: new Date(t0).toISOString(), modelVersion: "reads-1", probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId }),
    ]);
    const order = (id: string, userId: string, decision: string, at: number) =>
      orderRow({
        eventId: `${id}:filled`, type: "order.filled", ts: at,
        order: { orderId: id, userId, clientOrderId: decision, symbol, side: "buy", type: "market", quantity: "1", status: "filled", createdAt: new Date(at).toISOString(), updatedAt: new Date(at + 200).toISOString() },
      } as never)!;
    await ch.insert("ai_chain_user_orders", [order(orderId, user, decisionId, t0 + 40)]);
    await ch.insert("ai_chain_fills", [fillRow({ fillId: `${orderId}:1`, orderId, userId: user, symbol, side: "buy", quantity: "1", price: "101", fee: "0.1", liquidity: "taker", ts: t0 + 240 } as never)]);
    const candle = (sym: string, openTime: number, close: number) =>
      candleRow({ symbol: sym, interval: "1m", openTime, closeTime: openTime + 59_999, open: String(close), high: String(close), low: String(close), close: String(close), volume: "1" }, "test");
    await ch.insert("market_candles", [candle(symbol, t0 - 120_000, 99), candle(symbol, t0 - 60_000, 110)]);

    // Everyone else's: orders of other decisions, their fills, another symbol's candles (a day of them in
    // one month's partition), merged as ClickHouse merges them in the background: a read by the key is
    // then a granule or two (8,192 rows each) of each part, a whole read all of them.
    const base = Date.UTC(2026, 0, 10);
    await insertMany("ai_chain_user_orders", NOISE, (i) => order(randomUUID(), randomUUID(), randomUUID(), base + i * 1000));
    await insertMany("ai_chain_fills", NOISE, (i) => fillRow({ fillId: `noise:${i}`, orderId: randomUUID(), userId: randomUUID(), symbol: "NOISEUSDT", side: "buy", quantity: "1", price: "5", fee: "0", liquidity: "maker", ts: base + i * 1000 } as never));
    await insertMany("market_candles", NOISE, (i) => candle("NOISEUSDT", base + i * 1000, 5));
    await optimize();

    const range = { from: new Date(t0 - 3_600_000), to: new Date(t0 + 3_600_000), userId: user };
    // Before: "Limit for rows to read exceeded" (every row of the three tables read for this one decision).
    const summary = await new ChainStore(clickHouseUnder(ch, { max_rows_to_read: String(BOUND) })).summary(range);
    expect(summary).toEqual([
      expect.objectContaining({ modelVersion: "reads-1", strategyId, decisions: 1, trades: 1, orders: 1, fills: 1, filledDecisions: 1, hitRate: 1, pnl: 8.9 }),
    ]);
    // The same figures as without the bound, and an admin's summary of everyone still answers.
    expect(await new ChainStore(ch).summary(range)).toEqual(summary);
    expect(await new ChainStore(ch).summary({ from: range.from, to: range.to })).toEqual(expect.arrayContaining([expect.objectContaining({ strategyId, orders: 1, fills: 1 })]));
  }, 300_000);

  it("a trader's summary and chain read their own decisions, not every user's of the range's months (session 43)", async () => {
    const store = new ChainStore(ch);
    const user = randomUUID();
    const [strategyId, decisionId, orderId] = [randomUUID(), randomUUID(), randomUUID()];
    const t0 = Date.now() - 30_000;
    const decision = (id: string, userId: string, at: number, order: string | null) =>
      decisionRow({ decisionId: id, strategyId, userId, symbol: "OWNREADUSDT", decidedAt: new Date(at).toISOString(), modelVersion: "reads-2", probabilityUp: 0.6, decisionPrice: 100, action: "buy", quantity: 1, orderId: order });
    await store.insertDecisions([decision(decisionId, user, t0, orderId)]);
    await store.insertDecisionOrders([{ decision_id: decisionId, order_id: orderId, user_id: user, day: new Date(t0).toISOString().slice(0, 10) }]);
    // Everyone else's decisions in the same hours (the same month's partition), each with the order
    // ai-orchestrator placed for it, written as the ingest writes them.
    for (let i = 0; i < NOISE; i += 20_000) {
      const rows = Array.from({ length: Math.min(20_000, NOISE - i) }, (_, k) => decision(randomUUID(), randomUUID(), t0 - 1_800_000 + (i + k) * 30, randomUUID()));
      await store.insertDecisions(rows);
      await store.insertDecisionOrders(rows.map((r) => ({ decision_id: r.decision_id, order_id: randomUUID(), user_id: r.user_id, day: r.day })));
    }
    await optimize();

    const bounded = new ChainStore(clickHouseUnder(ch, { max_rows_to_read: String(BOUND) }));
    const range = { from: new Date(t0 - 3_600_000), to: new Date(t0 + 3_600_000), userId: user };
    // Before: "Limit for rows to read exceeded" (the range's 100,001 decisions read for the user's one;
    // the chain read every decision, and every decision's order link, by decision id).
    const summary = await bounded.summary(range);
    expect(summary).toEqual([expect.objectContaining({ modelVersion: "reads-2", strategyId, decisions: 1, trades: 1, orders: 0 })]);
    expect(await store.summary(range)).toEqual(summary);
    expect((await bounded.chain(decisionId, user))!.decision).toMatchObject({ decisionId, userId: user, action: "buy" });
    expect(await bounded.chain(decisionId, randomUUID())).toBeUndefined();
    // An admin's summary of everyone, and chain, still have them all.
    expect(await store.summary({ from: range.from, to: range.to, strategyId })).toEqual([expect.objectContaining({ strategyId, decisions: NOISE + 1 })]);
    expect((await store.chain(decisionId))!.decision).toMatchObject({ decisionId, userId: user });
  }, 300_000);
});
