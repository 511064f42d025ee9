/**
 * The body of an order, as a client sends it: POST /api/orders (order-management) places it, and
 * POST /api/risk/check (risk-analyzer) asks what the pre-trade check would say of it. One schema and
 * one set of checks beyond the schema for both, so the check never answers for an order the
 * platform would refuse to take (it did: a market order with a limit price, or a quantity of 18
 * decimals, was `ok` there and a 400 here; a limit order without its price, or a quantity of 0, a
 * 200 `INVALID_ORDER` there instead of the 400 naming the field).
 */
import { HttpError, Type } from "../kit";
import { D } from "./decimal";
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
 * What the schema cannot say: limit price iff limit order, quantity and limit price positive (400
 * naming the field). The schema already bounds their form: plain decimals, at most 12 integer and 8
 * fractional digits.
 */
export function checkOrderRequest(b: OrderBodyFields): void {
  if (b.type === "limit" && b.limitPrice === undefined) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is required for limit orders", "limitPrice");
  if (b.type === "market" && b.limitPrice !== undefined) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice is only allowed on limit orders", "limitPrice");
  if (D(b.quantity).lte(0)) throw new HttpError(400, "VALIDATION_ERROR", "quantity must be positive", "quantity");
  if (b.limitPrice !== undefined && D(b.limitPrice).lte(0)) throw new HttpError(400, "VALIDATION_ERROR", "limitPrice must be positive", "limitPrice");
}
