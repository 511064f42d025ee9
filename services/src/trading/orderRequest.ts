/**
 * The body of an order, as a client sends it: POST /api/orders (order-management) places it, and
 * POST /api/risk/check (risk-analyzer) asks what the pre-trade check would say of it. One schema and
 * one set of checks beyond the schema for both, so the check never answers for an order the
 * platform would refuse to take (it did: a market order with a limit price, or a quantity of 18
 * decimals, was `ok` there and a 400 here; a limit order without its price, or a quantity of 0, a
 * 200 `INVALID_ORDER` there instead of the 400 naming the field).
 */
import { ConfigError, envEnum, HttpError, Type } from "../kit";
import { D, type Decimal } from "./decimal";
import { decimalArithmetic, EXECUTION_DEFAULTS, executionOptionIssue, ExecutionRules } from "./executionRules";
import { SYMBOL_RE } from "./types";

/** A plain decimal: at most 12 integer and 8 fractional digits (the exchange's precision). */
export const ORDER_DECIMAL = "^(0|[1-9]\\d{0,11})(\\.\\d{1,8})?$";

export const OrderBody = Type.Object(
  {
    symbol: Type.String({ pattern: SYMBOL_RE.source }),
    side: Type.Union([Type.Literal("buy"), Type.Literal("sell")]),
    type: Type.Union([Type.Literal("market"), Type.Literal("limit")]),
    quantity: Type.String({ pattern: ORDER_DECIMAL }),
    limitPrice: Type.Optional(Type.String({ pattern: ORDER_DECIMAL })),
    timeInForce: Type.Optional(Type.Union([Type.Literal("GTC"), Type.Literal("IOC")])),
    clientOrderId: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9._:-]{1,36}$" })),
  },
  { additionalProperties: false },
);

export interface OrderBodyFields {
  symbol: string;
  side: "buy" | "sell";
  type: "market" | "limit";
  quantity: string;
  limitPrice?: string;
  timeInForce?: "GTC" | "IOC";
  clientOrderId?: string;
}

/**
 * PAPER_TICK_SIZE: the paper exchange's tick (trading-engine fills at it) and the grid an order's price is
 * checked against where it is taken (order-management, risk-analyzer's check): one declaration, so the order
 * path and the paper exchange cannot disagree.
 */
export const PAPER_TICK_SIZE_VAR = Type.String({ default: EXECUTION_DEFAULTS.tickSize, pattern: "^\\d+(\\.\\d+)?$" });

/**
 * The settings of a service that checks orders' prices (order-management, risk-analyzer): the trading mode (the
 * trading tier's TRADING_MODE) and the paper exchange's tick.
 */
export const orderPriceEnv = {
  TRADING_MODE: envEnum(["paper", "live"], { default: "paper" }),
  PAPER_TICK_SIZE: PAPER_TICK_SIZE_VAR,
};

/**
 * The execution rules an order's prices are checked against: the paper exchange's tick in paper mode; none in
 * live mode (Binance fills by its own symbol filters and refuses a price off them itself). A tick of 0 is a
 * ConfigError naming PAPER_TICK_SIZE, as at trading-engine's start.
 */
export function orderPriceRules(service: string, c: { TRADING_MODE: "paper" | "live"; PAPER_TICK_SIZE: string }): ExecutionRules<Decimal> | undefined {
  if (c.TRADING_MODE === "live") return undefined;
  const issue = executionOptionIssue({ tickSize: c.PAPER_TICK_SIZE });
  if (issue) throw new ConfigError(service, [`PAPER_TICK_SIZE ${issue.message} (got "${c.PAPER_TICK_SIZE}")`]);
  return new ExecutionRules(decimalArithmetic, { tickSize: c.PAPER_TICK_SIZE });
}

/**
 * What the schema cannot say: limit price iff limit order, quantity and limit price positive, the limit price
 * one the execution rules would fill at (a whole number of the tick, or a price the tick is coarse for: see
 * ExecutionRules.keepsPrice) when `prices` is given (400 naming the field). The schema already bounds their
 * form: plain decimals, at most 12 integer and 8 fractional digits.
 */
export function checkOrderRequest(b: OrderBodyFields, prices?: ExecutionRules<Decimal>): void {
  if (b.type === "limit" && b.limitPrice === undefined) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is required for limit orders", "limitPrice");
  if (b.type === "market" && b.limitPrice !== undefined) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is only allowed on limit orders", "limitPrice");
  if (D(b.quantity).lte(0)) throw new HttpError(400, "VALIDATION_ERROR", "quantity must be positive", "quantity");
  if (b.limitPrice !== undefined && D(b.limitPrice).lte(0)) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice must be positive", "limitPrice");
  if (b.limitPrice !== undefined && prices) checkPriceOnTick("limitPrice", b.limitPrice, prices);
}

/** A 400 naming `field` and the tick when the rules would not fill at `value` as it is (the two ticks around it named). */
export function checkPriceOnTick(field: string, value: string, prices: ExecutionRules<Decimal>): void {
  const price = D(value);
  if (prices.keepsPrice(price)) return;
  const below = decimalArithmetic.toStep(price, prices.tick, "down");
  const above = decimalArithmetic.toStep(price, prices.tick, "up");
  throw new HttpError(400, "VALIDATION_ERROR", `${field} must be a whole number of the tick ${prices.tick.toString()} (${below.toString()} or ${above.toString()}, not ${value})`, field);
}
