/**
 * What the mark of an ai-chain-analytics summary reads (`GET /api/ai-chains/summary`, any trader), on real
 * ClickHouse 18.16 (session 44's business-logic hunt; session 43's left it, suspected, not shown). The
 * mark, each symbol's latest 1-minute close, was found by a scalar subquery (max(open_time) per symbol)
 * over market_candles: every candle of the decisions' symbols, years of them, at each summary. 18.16
 * counts a scalar subquery's reads neither in query_log's read_rows nor against max_rows_to_read, but
 * its ProfileEvents do: SelectedMarks, the granules (8,192 rows) the key analysis picked, every read of
 * the query included. Now the mark is read from market_candles_latest (migration 0025), kept as candles
 * are written: what a summary reads does not grow with the symbols' history.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migratedClickHouse } from "../helpers/schemas";
import { createClickHouse } from "../../services/src/kit/datastores";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, runClickHouseMigrations } from "../../services/src/migrations";
import { mergeChainAndCandleTables, withSelectedMarks } from "../helpers/query-log";
import { candleRow } from "../../services/src/services/data-bridge";
import { ChainStore } from "../../services/src/services/ai-chain-analytics/store";
import { decisionRow, fillRow, orderRow } from "../../services/src/services/ai-chain-analytics/chains";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
}, 300_000);
afterAll(() => ch?.close());

/** The history added below: 300,000 minutes (about seven months) of one symbol, 37 granules. */
const HISTORY = 300_000;

async function summaryMarks(range: Parameters<ChainStore["summary"]>[0]) {
  const { result, marks } = await withSelectedMarks(ch, (logged) => new ChainStore(logged).summary(range));
  return { summary: result, marks };
}

const optimize = () => mergeChainAndCandleTables(ch);

describe("ai-chain-analytics: a summary's mark does not read the symbol's history (session 44)", () => {
  it("the granules a trader's summary selects stay the same with 300,000 more candles of the decision's own symbol", async () => {
    const user = randomUUID();
    const [strategyId, decisionId, orderId] = [randomUUID(), randomUUID(), randomUUID()];
    const t0 = Date.now() - 60_000;
    const symbol = `MARK${randomUUID().slice(0, 8).toUpperCase()}USDT`;
    await new ChainStore(ch).insertDecisions([
      decisionRow({ decisionId, strategyId, userId: user, symbol, decidedAt: new Date(t0).toISOString(), modelVersion: "mark-1", probabilityUp: 0.7, decisionPrice: 100, action: "buy", quantity: 1, orderId }),
    ]);
    await ch.insert("ai_chain_user_orders", [
      orderRow({
        eventId: `${orderId}:filled`, type: "order.filled", ts: t0 + 40,
        order: { orderId, userId: user, clientOrderId: decisionId, symbol, side: "buy", type: "market", quantity: "1", status: "filled", createdAt: new Date(t0 + 40).toISOString(), updatedAt: new Date(t0 + 240).toISOString() },
      } as never)!,
    ]);
    await ch.insert("ai_chain_fills", [fillRow({ fillId: `${orderId}:1`, orderId, userId: user, symbol, side: "buy", quantity: "1", price: "101", fee: "0.1", liquidity: "taker", ts: t0 + 240 } as never)]);
    const minute = (t: number) => t - (t % 60_000);
    const candle = (openTime: number, close: number) =>
      candleRow({ symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: String(close), high: String(close), low: String(close), close: String(close), volume: "1" }, "test");
    const last = minute(t0 - 60_000);
    await ch.insert("market_candles", [candle(last - 60_000, 99), candle(last, 110)]);
    await optimize();

    const range = { from: new Date(t0 - 3_600_000), to: new Date(t0 + 3_600_000), userId: user };
    const before = await summaryMarks(range);
    // Mark 110: 1 x 110 - 101 - 0.1.
    expect(before.summary).toEqual([expect.objectContaining({ modelVersion: "mark-1", strategyId, fills: 1, hitRate: 1, pnl: 8.9 })]);

    // The symbol's older history (its own, as a listed symbol has: the minutes before the last two).
    for (let i = 0; i < HISTORY; i += 50_000) {
      await ch.insert("market_candles", Array.from({ length: 50_000 }, (_, k) => candle(last - 120_000 - (i + k) * 60_000, 50)));
    }
    await optimize();
    const after = await summaryMarks(range);
    expect(after.summary).toEqual(before.summary);
    // Before: 160 granules more in a run here (the subqueries read all 300,002 candles of the symbol); now the same.
    expect(after.marks - before.marks).toBeLessThanOrEqual(1);

    // A candle written again, corrected (a later inserted_at), is the mark: 1 x 120 - 101 - 0.1.
    const later = new Date(Date.now() + 5_000).toISOString().slice(0, 19).replace("T", " ");
    await ch.insert("market_candles", [{ ...candle(last, 120), inserted_at: later }]);
    expect((await new ChainStore(ch).summary(range))[0]).toMatchObject({ pnl: 18.9 });
  }, 300_000);

  it("migration 0025 carries the candles written before it over, and every candle written after", async () => {
    const admin = createClickHouse(srv.clickhouse.env);
    const db = `mark_0025_${Math.random().toString(36).slice(2, 8)}`;
    await admin.command(`CREATE DATABASE ${db}`);
    const old = createClickHouse({ ...srv.clickhouse.env, CLICKHOUSE_DATABASE: db });
    const row = (symbol: string, interval: string, openTime: number, close: number) =>
      candleRow({ symbol, interval, openTime, closeTime: openTime + 59_999, open: "1", high: "1", low: "1", close: String(close), volume: "1" }, "test");
    const latest = () =>
      old.query<{ symbol: string; timeframe: string; t: string; close: number }>(
        "SELECT symbol, timeframe, toString(maxMerge(last_open_time)) AS t, argMaxMerge(last_close) AS close FROM market_candles_latest GROUP BY symbol, timeframe ORDER BY symbol, timeframe",
      );
    try {
      const files = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
      await runClickHouseMigrations(old, { files: files.filter((f) => f.version < 25) });
      const t = Date.UTC(2026, 5, 1, 12, 0);
      await old.insert("market_candles", [row("AUSDT", "1m", t, 10), row("AUSDT", "1m", t - 60_000, 9), row("AUSDT", "1h", t - 3_600_000, 8), row("BUSDT", "1m", t - 120_000, 7)]);
      expect((await runClickHouseMigrations(old, { files })).applied).toContain("0025_market_candles_latest.sql");
      expect(await latest()).toEqual([
        { symbol: "AUSDT", timeframe: "1h", t: "2026-06-01 11:00:00", close: 8 },
        { symbol: "AUSDT", timeframe: "1m", t: "2026-06-01 12:00:00", close: 10 },
        { symbol: "BUSDT", timeframe: "1m", t: "2026-06-01 11:58:00", close: 7 },
      ]);
      // Written after, whoever writes it (an older candle changes nothing).
      await old.insert("market_candles", [row("AUSDT", "1m", t + 60_000, 11), row("BUSDT", "1m", t - 180_000, 6)]);
      expect((await latest()).filter((r) => r.timeframe === "1m")).toEqual([
        { symbol: "AUSDT", timeframe: "1m", t: "2026-06-01 12:01:00", close: 11 },
        { symbol: "BUSDT", timeframe: "1m", t: "2026-06-01 11:58:00", close: 7 },
      ]);
    } finally {
      await old.close();
      await admin.command(`DROP DATABASE ${db}`);
      await admin.close();
    }
  }, 120_000);
});
