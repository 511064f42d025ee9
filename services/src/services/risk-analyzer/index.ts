/**
 * risk-analyzer (8022):
 *   POST /check   pre-trade check of an order for the caller (x-user-id) with the same shared module
 *                 and context order-management uses in-process; answers the decision and its reason
 *   GET  /var     historical VaR of a symbol from ClickHouse candle closes (market_candles)
 *
 * ClickHouse read: `{symbol:String}` / `{n:UInt32}` placeholders through the kit, which binds them
 * client-side with type checks (Debian's ClickHouse 18.16 rejects server-side query parameters:
 * "Unknown setting param_*"). Never string concatenation of input into SQL.
 */
import { defineService, HttpError, requireIdentity, Type } from "../../kit";
import { preTradeCheck, riskEnv, riskLimitsFrom } from "../../trading/infra/riskContext";
import { historicalVaR, simpleReturns } from "../../trading/risk";
import { SYMBOL_RE } from "../../trading/types";

const DECIMAL = "^(0|[1-9]\\d{0,17})(\\.\\d{1,18})?$";

export default defineService({
  name: "risk-analyzer",
  config: { ...riskEnv },
  async register(ctx) {
    const pg = ctx.datastores.postgres;
    const redis = ctx.datastores.isEnabled("dragonfly") ? ctx.datastores.dragonfly.redis : undefined;
    const limits = riskLimitsFrom(ctx.config);

    ctx.app.post(
      "/check",
      {
        schema: {
          body: Type.Object(
            {
              symbol: Type.String({ pattern: SYMBOL_RE.source }),
              side: Type.Union([Type.Literal("buy"), Type.Literal("sell")]),
              type: Type.Union([Type.Literal("market"), Type.Literal("limit")]),
              quantity: Type.String({ pattern: DECIMAL }),
              limitPrice: Type.Optional(Type.String({ pattern: DECIMAL })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (req) => {
        const who = requireIdentity(req);
        const { decision, context } = await preTradeCheck(pg.pool, redis, { userId: who.userId, ...req.body }, limits);
        return { ...decision, context: { lastPrice: context.lastPrice ?? null, position: String(context.position), dailyPnl: String(context.dailyPnl), ordersInWindow: context.recentOrderTimes.length }, limits };
      },
    );

    async function closes(symbol: string, lookback: number): Promise<number[]> {
      // {name:Type} placeholders: the kit binds them client-side with type checks (ClickHouse 18.16
      // has no server-side parameters); the symbol is also schema-validated against SYMBOL_RE.
      const rows = await ctx.datastores.clickhouse.query<{ close: number }>(
        `SELECT close FROM (
           SELECT open_time, argMax(close, inserted_at) AS close FROM market_candles
            WHERE symbol = {symbol:String} GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
         ) ORDER BY open_time`,
        { symbol, n: lookback + 1 },
      );
      return rows.map((r) => Number(r.close));
    }

    ctx.app.get(
      "/var",
      {
        schema: {
          querystring: Type.Object({
            symbol: Type.String({ pattern: SYMBOL_RE.source }),
            confidence: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
            exposure: Type.Optional(Type.String({ pattern: DECIMAL })),
            lookback: Type.Optional(Type.Integer({ minimum: 2, maximum: 100_000 })),
          }),
        },
      },
      async (req) => {
        requireIdentity(req);
        if (!ctx.datastores.isEnabled("clickhouse")) throw new HttpError(503, "CLICKHOUSE_DISABLED", "VaR needs ClickHouse, which is disabled in this stack");
        const { symbol, confidence = 0.95, exposure = "1", lookback = 500 } = req.query;
        const px = await closes(symbol, lookback);
        if (px.length < 3) throw new HttpError(404, "NOT_ENOUGH_DATA", `only ${px.length} candles of ${symbol} in ClickHouse`);
        const r = historicalVaR(simpleReturns(px.map(String)), confidence, exposure);
        return { symbol, confidence, exposure, ...r, method: "historical" };
      },
    );
  },
});
