/**
 * The daily loss limit's day boundary, through the order path against a real PostgreSQL: the paper
 * trading-engine executes a market order after 00:00 UTC on the last bar, which closed at 23:59:59.999;
 * portfolio-manager records the fill (pm_fills, pm_daily_pnl by its trigger); the pre-trade check reads
 * today's PnL. The fill happened today, so its loss counts today: stamped with the bar's close (as
 * the engine did), it counted toward yesterday and the next order passed the limit it had reached.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import { testEngine } from "../helpers/engine";
import { applyFills } from "../../services/src/services/portfolio-manager/fills";
import { contextOf, riskFacts } from "../../services/src/trading/infra/riskContext";
import { checkOrder, DEFAULT_LIMITS } from "../../services/src/trading/risk";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("postgres");
const SYMBOL = `M${randomBytes(4).toString("hex").toUpperCase()}USDT`;
let client: PostgresClient;
const log = { info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createPostgres>[1];

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 4);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

describe("the daily loss limit's day", () => {
  it("a market order filled after 00:00 UTC on the bar that closed at 23:59:59.999 counts toward today's loss", async () => {
    const userId = `midnight-${randomUUID()}`;
    const midnight = (await client.query<{ t: Date }>("SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t")).rows[0].t.getTime();
    const engine = testEngine({ pg: client, log });
    await engine.load();
    // The last bar of yesterday: closed at 23:59:59.999, the one a market order just after midnight is priced on.
    await engine.onBatch([{ kind: "bars", bars: [{ symbol: SYMBOL, interval: "1m", openTime: midnight - 60_000, closeTime: midnight - 1, open: "100", high: "100", low: "100", close: "100", volume: "1000000" }] }]);
    const orderId = randomUUID();
    const before = Date.now();
    await engine.onBatch([{ kind: "execute", order: { orderId, userId, symbol: SYMBOL, side: "buy", type: "market", quantity: "10" } }]);

    const fills = (await client.query<{ payload: Fill }>("SELECT payload FROM te_fills WHERE order_id = $1", [orderId])).rows.map((r) => r.payload);
    expect(fills).toHaveLength(1);
    expect(fills[0].ts).toBeGreaterThanOrEqual(before); // when it executed, not the bar's close
    await client.transaction((tx) => applyFills(tx, fills, "1000000"));

    const facts = await riskFacts(client, userId, SYMBOL, 1000, 200);
    expect(Number(facts.dailyPnl)).toBe(-Number(fills[0].fee)); // today's: the fee of the fill just made
    const day = await client.query<{ day: string }>("SELECT day::text FROM pm_daily_pnl WHERE user_id = $1", [userId]);
    expect(day.rows).toEqual([{ day: new Date(Math.max(before, midnight)).toISOString().slice(0, 10) }]);

    const limits = { ...DEFAULT_LIMITS, dailyLossLimit: fills[0].fee };
    const next = checkOrder({ side: "sell", type: "market", quantity: "1" }, contextOf(facts, { lastPrice: "100", tradingState: "active" }, Date.now()), limits);
    expect(next).toMatchObject({ ok: false, reason: "DAILY_LOSS_LIMIT_REACHED" });
  }, 120_000);
});
