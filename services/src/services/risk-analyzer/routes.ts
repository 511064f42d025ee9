/**
 * risk-analyzer's HTTP routes (behind the gateway at /api/risk/...):
 *   POST /check   pre-trade check of an order for the caller (x-user-id) with the same shared module
 *                 and context order-management uses in-process; answers the decision and its reason.
 *                 The body is POST /api/orders' (trading/orderRequest.ts), refused as that route
 *                 refuses it (400 naming the field): the check never answers for an order the
 *                 platform would not take.
 *   GET  /var     historical VaR of a symbol from ClickHouse candle closes (market_candles)
 */
import { HttpError, requireIdentity, ResponseObject, Type, type App } from "../../kit";
import { preTradeCheck } from "../../trading/infra/riskContext";
import { INTERVAL_PATTERN } from "../../trading/marketdata/barRules";
import type { Decimal } from "../../trading/decimal";
import type { ExecutionRules } from "../../trading/executionRules";
import { checkOrderRequest, OrderBody } from "../../trading/orderRequest";
import type { RiskLimits } from "../../trading/risk";
import { SYMBOL_RE } from "../../trading/types";
import { candleCloses } from "./data";
import { checkAnswer, valueAtRisk } from "./domain";

/** An exposure for the VaR: a plain decimal (the order's precision is not asked of it). */
const DECIMAL = "^(0|[1-9]\\d{0,17})(\\.\\d{1,18})?$";

const VarQuery = Type.Object({
  symbol: Type.String({ pattern: SYMBOL_RE.source }),
  confidence: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
  exposure: Type.Optional(Type.String({ pattern: DECIMAL })),
  lookback: Type.Optional(
    Type.Integer({ minimum: 2, maximum: 100_000, description: "returns wanted (default 500), from the closes of the 3 x (lookback + 1) bar intervals before the latest candle" }),
  ),
  // What a candle may be stored under: the bar rules' interval, as data-bridge accepts it.
  timeframe: Type.Optional(Type.String({ pattern: INTERVAL_PATTERN, description: "bar interval of the closes (market_candles.timeframe), default 1m" })),
});

// Responses (OpenAPI; unnamed fields are kept).
const CheckOut = ResponseObject(
  { ok: Type.Boolean(), context: ResponseObject({ position: Type.String(), dailyPnl: Type.String(), ordersInWindow: Type.Number(), openOrders: Type.Integer({ description: "the caller's open orders, every symbol (counted up to limits.maxOpenOrders)" }) }), limits: ResponseObject({}) },
  { description: "The pre-trade decision (ok, or reason and message), its context and the limits" },
);
const VarOut = ResponseObject({ symbol: Type.String(), confidence: Type.Number(), exposure: Type.String(), method: Type.Literal("historical") });

export function registerRoutes(app: App, limits: RiskLimits, prices?: ExecutionRules<Decimal>): void {
  app.post("/check", { schema: { body: OrderBody, response: { 200: CheckOut } } }, async (req) => {
    const who = requireIdentity(req);
    checkOrderRequest(req.body, prices);
    const redis = app.datastores.isEnabled("dragonfly") ? app.redis : undefined;
    const { decision, context } = await preTradeCheck(app.pg.pool, redis, { userId: who.userId, symbol: req.body.symbol, side: req.body.side, type: req.body.type, quantity: req.body.quantity, limitPrice: req.body.limitPrice }, limits);
    return checkAnswer(decision, context, limits);
  });

  app.get("/var", { schema: { querystring: VarQuery, response: { 200: VarOut } } }, async (req) => {
    requireIdentity(req);
    // No datastore named in the body (an internal name); the log says which.
    if (!app.datastores.isEnabled("clickhouse")) {
      req.log.warn("VaR was asked for, but ClickHouse (the candle history) is disabled in this stack");
      throw new HttpError(503, "VAR_UNAVAILABLE", "VaR is not available in this deployment (no price history is kept)");
    }
    const { symbol, confidence = 0.95, exposure = "1", lookback = 500, timeframe = "1m" } = req.query;
    return valueAtRisk(symbol, await candleCloses(app.clickhouse, symbol, timeframe, lookback), confidence, exposure);
  });
}
