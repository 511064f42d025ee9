import { bps, D, Decimal, str, ZERO, type DecimalLike } from "./decimal";
import type { TradingState } from "./tradingState";
import type { OrderRequest } from "./types";

/** Named reasons a pre-trade check rejects an order (a list, so metrics can start each at zero). */
export const RISK_REJECTIONS = [
  "INVALID_ORDER",
  "ORDER_QUANTITY_EXCEEDED",
  "ORDER_NOTIONAL_EXCEEDED",
  "ORDER_NOTIONAL_TOO_SMALL",
  "OPEN_ORDERS_EXCEEDED",
  "POSITION_LIMIT_EXCEEDED",
  "NO_REFERENCE_PRICE",
  "PRICE_COLLAR_BREACHED",
  "DAILY_LOSS_LIMIT_REACHED",
  "ORDER_RATE_EXCEEDED",
  "TRADING_HALTED",
  "REDUCE_ONLY",
] as const;
export type RiskRejection = (typeof RISK_REJECTIONS)[number];

export interface RiskLimits {
  maxOrderQuantity: string;
  maxOrderNotional: string;
  /** Maximum absolute position per symbol after the order fills. */
  maxPosition: string;
  /** Limit price must be within this many bps of the last price. */
  priceCollarBps: string;
  /** Loss (positive number) at which new orders are refused for the rest of the UTC day. */
  dailyLossLimit: string;
  maxOrdersPerWindow: number;
  rateWindowMs: number;
  /**
   * Smallest notional (quantity x the limit price, or the last price for a market order) of an order,
   * in quote currency: below it an order's fee rounds to nothing and it costs the book as much as any.
   */
  minOrderNotional: string;
  /**
   * Most open orders (accepted, partially filled, pending cancel) a user may have, every symbol and
   * side together: the new order is refused when the user already has this many. Bounds what one
   * trader can make the engine keep in its in-memory books (the rate window bounds only the pace).
   */
  maxOpenOrders: number;
}

export const DEFAULT_LIMITS: RiskLimits = {
  maxOrderQuantity: "100",
  maxOrderNotional: "100000",
  maxPosition: "500",
  priceCollarBps: "500",
  dailyLossLimit: "10000",
  maxOrdersPerWindow: 50,
  rateWindowMs: 1000,
  minOrderNotional: "1",
  maxOpenOrders: 200,
};

export interface RiskContext {
  /** Last traded price of the symbol; undefined = unknown (the check then fails closed). */
  lastPrice?: DecimalLike;
  /** Current signed position in the symbol. */
  position: DecimalLike;
  /** Unexecuted quantity of the user's open buy / sell orders in the symbol (exposure that may still
   * fill); the position checks assume it does. Absent = none. */
  openBuy?: DecimalLike;
  openSell?: DecimalLike;
  /** The kill switch (tradingState.ts), the stricter of global and user; absent = active. */
  tradingState?: TradingState;
  /** Today's PnL (realized + unrealized - fees), negative for a loss. */
  dailyPnl: DecimalLike;
  /** Timestamps (ms) of the user's recent orders, used for the rate check. */
  recentOrderTimes: number[];
  /** The user's open orders (accepted, partially filled, pending cancel) in every symbol; absent = none. */
  openOrders?: number;
  now: number;
}

export type RiskDecision = { ok: true; notional: string } | { ok: false; reason: RiskRejection; message: string };

const reject = (reason: RiskRejection, message: string): RiskDecision => ({ ok: false, reason, message });

/**
 * Pre-trade checks, in order; the first failure wins. Every check fails closed: a market order with
 * no known price, or a limit order with no reference price for its collar, is rejected. The kill
 * switch comes first: `halted` rejects every order, `reduce_only` any order that would not shrink
 * the open position (counting the open orders on the same side as filled).
 */
export function checkOrder(order: Pick<OrderRequest, "side" | "type" | "quantity" | "limitPrice">, ctx: RiskContext, limits: RiskLimits = DEFAULT_LIMITS): RiskDecision {
  let qty: Decimal;
  try {
    qty = D(order.quantity);
    if (order.type === "limit") D(order.limitPrice ?? "x");
  } catch {
    return reject("INVALID_ORDER", "quantity and limit price must be decimals");
  }
  if (qty.lte(0)) return reject("INVALID_ORDER", "quantity must be positive");
  if (order.type === "limit" && D(order.limitPrice!).lte(0)) return reject("INVALID_ORDER", "limit price must be positive");

  // Worst case after this order: every open order on the same side fills too.
  const after =
    order.side === "buy" ? D(ctx.position).plus(D(ctx.openBuy ?? 0)).plus(qty) : D(ctx.position).minus(D(ctx.openSell ?? 0)).minus(qty);
  const state = ctx.tradingState ?? "active";
  if (state === "halted") return reject("TRADING_HALTED", "trading is halted: no new orders");
  if (state === "reduce_only" && !reducesPosition(order.side, D(ctx.position), after))
    return reject("REDUCE_ONLY", `trading is reduce-only: the order would take the position ${str(D(ctx.position))} to ${str(after)}`);

  const windowStart = ctx.now - limits.rateWindowMs;
  const inWindow = ctx.recentOrderTimes.filter((t) => t > windowStart).length;
  if (inWindow >= limits.maxOrdersPerWindow)
    return reject("ORDER_RATE_EXCEEDED", `${inWindow} orders in the last ${limits.rateWindowMs} ms (max ${limits.maxOrdersPerWindow})`);

  const openOrders = ctx.openOrders ?? 0;
  if (openOrders >= limits.maxOpenOrders)
    return reject("OPEN_ORDERS_EXCEEDED", `${openOrders} open orders (max ${limits.maxOpenOrders}): cancel one, or wait for a fill, before placing another`);

  if (D(ctx.dailyPnl).neg().gte(D(limits.dailyLossLimit)))
    return reject("DAILY_LOSS_LIMIT_REACHED", `daily PnL ${str(D(ctx.dailyPnl))} reached the loss limit ${limits.dailyLossLimit}`);

  if (qty.gt(limits.maxOrderQuantity)) return reject("ORDER_QUANTITY_EXCEEDED", `quantity ${str(qty)} exceeds ${limits.maxOrderQuantity}`);

  if (ctx.lastPrice === undefined || D(ctx.lastPrice).lte(0))
    return reject("NO_REFERENCE_PRICE", "no last price is known for the symbol; refusing (fail closed)");
  const last = D(ctx.lastPrice);

  if (order.type === "limit") {
    const limit = D(order.limitPrice!);
    const band = last.mul(bps(limits.priceCollarBps));
    if (limit.minus(last).abs().gt(band))
      return reject("PRICE_COLLAR_BREACHED", `limit ${str(limit)} is more than ${limits.priceCollarBps} bps away from the last price ${str(last)}`);
  }
  const px = order.type === "limit" ? D(order.limitPrice!) : last;
  const notional = qty.mul(px);
  // An order that only shrinks the position (with the open orders on its side, never through zero:
  // the reduce_only test) is exempt: a position, or what a partial fill left, worth less than the
  // floor could otherwise never be closed, and such orders are bounded by the position itself.
  if (notional.lt(limits.minOrderNotional) && !reducesPosition(order.side, D(ctx.position), after))
    return reject("ORDER_NOTIONAL_TOO_SMALL", `notional ${str(notional)} is below the minimum ${limits.minOrderNotional}`);
  if (notional.gt(limits.maxOrderNotional))
    return reject("ORDER_NOTIONAL_EXCEEDED", `notional ${str(notional)} exceeds ${limits.maxOrderNotional}`);

  if (after.abs().gt(limits.maxPosition))
    return reject("POSITION_LIMIT_EXCEEDED", `position would be ${str(after)} with the open orders filled, beyond ${limits.maxPosition}`);

  return { ok: true, notional: str(notional) };
}

/**
 * The reduce_only test: an order on `side` shrinks the position `pos` when `after` (the position once
 * it and every open order on its side fill) is on the same side of zero as `pos`, not beyond: a buy
 * only against a short, a sell only against a long, never through zero.
 */
export function reducesPosition(side: "buy" | "sell", pos: Decimal, after: Decimal): boolean {
  return side === "buy" ? pos.lt(0) && after.lte(0) : pos.gt(0) && after.gte(0);
}

/** An open order of one user in one symbol, as `reduceOnlyExcess` weighs it. */
export interface OpenOrderExposure {
  id: string;
  side: "buy" | "sell";
  /** The unexecuted quantity. */
  remaining: DecimalLike;
  /** A cancel was already requested: weighed like any open order (a fill can still win the race), never listed again. */
  cancelling?: boolean;
}

/**
 * The open orders (of one user in one symbol, oldest first) that reduce_only cannot leave on the
 * book: each is weighed as checkOrder weighs a new order under reduce_only, after the ones kept before
 * it (every kept order on its side counted as filled). What is kept together can at most bring the
 * position to zero; a buy against a long or a flat position, a sell against a short or a flat one,
 * and an order that would cross zero are listed.
 *
 * An order whose cancel is pending is weighed in its place like any other (kept, it counts: it may
 * still fill) but never listed. So the answer is stable: the sweeper's next pass, seeing its own
 * cancels pending, keeps what the last pass kept. (Counting every pending cancel up front made the
 * pass after a cancel doom the orders the pass before had kept, whenever the engine's confirmation
 * took longer than one sweep interval.) A pending cancel that loses to a fill moves the position,
 * and the next pass weighs the open orders against that.
 */
export function reduceOnlyExcess(position: DecimalLike, orders: OpenOrderExposure[]): string[] {
  const pos = D(position);
  const open = { buy: ZERO, sell: ZERO };
  const excess: string[] = [];
  for (const o of orders) {
    const qty = D(o.remaining);
    const after = o.side === "buy" ? pos.plus(open.buy).plus(qty) : pos.minus(open.sell).minus(qty);
    if (reducesPosition(o.side, pos, after)) open[o.side] = open[o.side].plus(qty);
    else if (!o.cancelling) excess.push(o.id);
  }
  return excess;
}

/** Simple sliding-window order counter per key (the in-process state behind the rate check). */
export class OrderRateWindow {
  private readonly times = new Map<string, number[]>();
  constructor(private readonly windowMs: number) {}
  recent(key: string, now: number): number[] {
    const arr = (this.times.get(key) ?? []).filter((t) => t > now - this.windowMs);
    this.times.set(key, arr);
    return arr;
  }
  record(key: string, now: number): void {
    this.recent(key, now).push(now);
  }
}

/** Simple returns r_i = p_i / p_{i-1} - 1 from a price series. */
export function simpleReturns(prices: DecimalLike[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < prices.length; i++) out.push(D(prices[i]).div(D(prices[i - 1])).minus(1).toNumber());
  return out;
}

/**
 * Historical-simulation Value at Risk: the loss not exceeded with probability `confidence`, from the
 * empirical distribution of `returns`, scaled by `exposure`. Uses the lower-tail order statistic
 * with index floor((1 - confidence) * n) (no interpolation: conservative for small samples).
 * Returned as a positive loss amount (0 when even the tail return is a gain).
 */
export function historicalVaR(returns: number[], confidence = 0.95, exposure: DecimalLike = 1): { var: string; quantileReturn: number; observations: number } {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError("confidence must be in (0, 1)");
  const clean = returns.filter(Number.isFinite).sort((a, b) => a - b);
  if (clean.length === 0) throw new RangeError("VaR needs at least one return");
  const idx = Math.min(clean.length - 1, Math.floor((1 - confidence) * clean.length));
  const q = clean[idx];
  const loss = Decimal.max(ZERO, D(q).neg().mul(D(exposure)));
  return { var: str(loss.toDecimalPlaces(8)), quantileReturn: q, observations: clean.length };
}
