import { D, Decimal, str } from "./decimal";
import { decimalArithmetic, ExecutionRules, type ExecutionOptions } from "./executionRules";
import type { Bar, Fill, Liquidity, OrderRequest } from "./types";

/**
 * Deterministic paper exchange. Given the same sequence of bars and orders it produces the same
 * fills (ids, prices, fees, timestamps from market time, never wall clock or randomness).
 *
 * - Market orders fill at once against the last bar's close, moved against the taker by the
 *   slippage model: `slippageBps + impactBps * quantity / lastBarVolume` (capped by `maxSlippageBps`),
 *   rounded to the tick in the adverse direction; taker fee.
 * - Limit orders that are marketable on arrival (buy limit >= last, sell limit <= last) fill at once
 *   as taker at the slipped price but never worse than the limit. Otherwise they rest (GTC) or expire
 *   (IOC). A resting limit fills when a later bar *crosses* it (buy: low < limit, sell: high > limit;
 *   `fillOnTouch` relaxes this to <= / >=) at the limit price with the maker fee; with
 *   `maxParticipation` set a bar fills at most that fraction of its volume (partial fills).
 * - Fill ids are `${orderId}:${n}` (n = 1, 2, ... per order), so re-running the same order cannot
 *   mint a different fill id.
 *
 * The price, fee and fill-size rules are `ExecutionRules` (./executionRules), the same module the
 * backtester executes through.
 */
export type PaperExchangeOptions = ExecutionOptions;

export type ExecutionStatus = "filled" | "partially_filled" | "resting" | "rejected" | "expired" | "cancelled";

export interface ExecutionReport {
  orderId: string;
  status: ExecutionStatus;
  fills: Fill[];
  /** Quantity still open after this report. */
  remaining: string;
  reason?: string;
}

export interface RestingOrder {
  order: OrderRequest;
  remaining: string;
  /** Number of fills already produced for the order (next fill id uses fillSeq + 1). */
  fillSeq: number;
}

/** What may fill on a bar: asked for each crossed resting order, told of each fill (the trading-engine's kill switch). */
export interface BarGate {
  mayFill(order: OrderRequest, remaining: string): boolean;
  filled?(fills: Fill[]): void;
}
const OPEN_BAR: BarGate = { mayFill: () => true };

export class PaperExchange {
  private readonly last = new Map<string, Bar>();
  private readonly resting = new Map<string, RestingOrder>();
  /**
   * The same orders by symbol, in submission order: a bar walks only its symbol's orders, and one of a
   * symbol with none needs no price arithmetic (a backfill brings millions of bars; a book may hold
   * thousands of orders in other symbols).
   */
  private readonly restingBySymbol = new Map<string, Map<string, RestingOrder>>();
  /** The same orders by owner, in submission order: a trader's view of the book reads theirs, not every user's. */
  private readonly restingByUser = new Map<string, Map<string, RestingOrder>>();
  private readonly rules: ExecutionRules<Decimal>;
  constructor(opts: PaperExchangeOptions = {}) {
    this.rules = new ExecutionRules(decimalArithmetic, opts);
  }

  lastPrice(symbol: string): string | undefined {
    return this.last.get(symbol)?.close;
  }
  lastBar(symbol: string): Bar | undefined {
    return this.last.get(symbol);
  }
  restingOrders(): RestingOrder[] {
    return [...this.resting.values()].map((r) => ({ ...r }));
  }
  /**
   * The resting orders of one owner (`userId`), or of everyone (undefined), in submission order, as
   * the book holds them (not copies: read them, do not change them); costs nothing for the others'.
   */
  restingOf(userId?: string): Iterable<RestingOrder> {
    return userId === undefined ? this.resting.values() : (this.restingByUser.get(userId)?.values() ?? []);
  }
  /** The orders resting in any of `symbols` (those a batch of their bars may fill), without copying the book. */
  restingOrdersIn(symbols: readonly string[]): OrderRequest[] {
    const orders: OrderRequest[] = [];
    for (const symbol of new Set(symbols)) for (const r of this.restingBySymbol.get(symbol)?.values() ?? []) orders.push(r.order);
    return orders;
  }
  /** Whether some order of the symbol rests (a bar of it may fill something). */
  hasResting(symbol: string): boolean {
    return (this.restingBySymbol.get(symbol)?.size ?? 0) > 0;
  }
  /** Restores a resting order after a restart (e.g. from the order store). */
  restore(r: RestingOrder): void {
    this.rest({ ...r });
  }
  private rest(r: RestingOrder): void {
    this.unrest(r.order.orderId);
    this.resting.set(r.order.orderId, r);
    let ofSymbol = this.restingBySymbol.get(r.order.symbol);
    if (!ofSymbol) this.restingBySymbol.set(r.order.symbol, (ofSymbol = new Map()));
    ofSymbol.set(r.order.orderId, r);
    let ofUser = this.restingByUser.get(r.order.userId);
    if (!ofUser) this.restingByUser.set(r.order.userId, (ofUser = new Map()));
    ofUser.set(r.order.orderId, r);
  }
  private unrest(orderId: string): RestingOrder | undefined {
    const r = this.resting.get(orderId);
    if (!r) return undefined;
    this.resting.delete(orderId);
    const ofSymbol = this.restingBySymbol.get(r.order.symbol);
    ofSymbol?.delete(orderId);
    if (ofSymbol?.size === 0) this.restingBySymbol.delete(r.order.symbol);
    const ofUser = this.restingByUser.get(r.order.userId);
    ofUser?.delete(orderId);
    if (ofUser?.size === 0) this.restingByUser.delete(r.order.userId);
    return r;
  }
  /** Seeds the last bar without matching resting orders (warm start). */
  setLastBar(bar: Bar): void {
    this.last.set(bar.symbol, bar);
  }

  /** Adverse-slipped execution price for a taker of `qty` against the last bar. */
  takerPrice(symbol: string, side: "buy" | "sell", qty: Decimal): Decimal | undefined {
    const bar = this.last.get(symbol);
    if (!bar) return undefined;
    return this.rules.takerPrice(D(bar.close), D(bar.volume), side, qty);
  }

  private makeFill(order: OrderRequest, seq: number, qty: Decimal, price: Decimal, liq: Liquidity, ts: number): Fill {
    return {
      fillId: `${order.orderId}:${seq}`,
      orderId: order.orderId,
      userId: order.userId,
      symbol: order.symbol,
      side: order.side,
      quantity: str(qty),
      price: str(price),
      fee: str(this.rules.fee(qty.mul(price), liq)),
      liquidity: liq,
      ts,
    };
  }

  /**
   * Submits an order. `ts` is when it executes (the trading-engine's clock): what a fill it makes at
   * once is stamped with, never before the close of the last bar it is priced on. Without one, that
   * close. (Stamped with the close alone, a market order executed at 00:00:30 UTC got 23:59:59.999 of
   * the 23:59 bar, the day before, and its loss counted toward that day's PnL, not today's.)
   */
  submit(order: OrderRequest, ts?: number): ExecutionReport {
    const qty = D(order.quantity);
    if (qty.lte(0)) return { orderId: order.orderId, status: "rejected", fills: [], remaining: order.quantity, reason: "INVALID_QUANTITY" };
    if (this.resting.has(order.orderId)) return { orderId: order.orderId, status: "rejected", fills: [], remaining: order.quantity, reason: "DUPLICATE_ORDER_ID" };
    const bar = this.last.get(order.symbol);
    const at = Math.max(ts ?? 0, bar?.closeTime ?? 0);
    if (order.type === "market") {
      const px = this.takerPrice(order.symbol, order.side, qty);
      if (!px) return { orderId: order.orderId, status: "rejected", fills: [], remaining: order.quantity, reason: "NO_MARKET_PRICE" };
      return { orderId: order.orderId, status: "filled", fills: [this.makeFill(order, 1, qty, px, "taker", at)], remaining: "0" };
    }
    if (!order.limitPrice || D(order.limitPrice).lte(0))
      return { orderId: order.orderId, status: "rejected", fills: [], remaining: order.quantity, reason: "INVALID_LIMIT_PRICE" };
    const limit = D(order.limitPrice);
    if (bar) {
      const last = D(bar.close);
      if (this.rules.limitMarketable(order.side, limit, last)) {
        const px = this.rules.marketableLimitPrice(order.side, limit, last, D(bar.volume), qty);
        return { orderId: order.orderId, status: "filled", fills: [this.makeFill(order, 1, qty, px, "taker", at)], remaining: "0" };
      }
    }
    if (order.timeInForce === "IOC") return { orderId: order.orderId, status: "expired", fills: [], remaining: order.quantity };
    this.rest({ order, remaining: order.quantity, fillSeq: 0 });
    return { orderId: order.orderId, status: "resting", fills: [], remaining: order.quantity };
  }

  cancel(orderId: string): ExecutionReport | undefined {
    const r = this.unrest(orderId);
    if (!r) return undefined;
    return { orderId, status: "cancelled", fills: [], remaining: r.remaining };
  }

  /**
   * Feeds a closed bar: resting limits of its symbol that the bar crosses fill (submission order), then the bar becomes the last.
   * An order `gate` refuses (asked with what is left of it, in that order) is passed over: it stays in the book unfilled and
   * takes none of the bar's volume (the trading-engine's kill switch); each fill is told to the gate before the next order is weighed.
   */
  onBar(bar: Bar, gate: BarGate = OPEN_BAR): ExecutionReport[] {
    const reports: ExecutionReport[] = [];
    const ofSymbol = this.restingBySymbol.get(bar.symbol);
    if (!ofSymbol) {
      this.last.set(bar.symbol, bar);
      return reports;
    }
    const low = D(bar.low);
    const high = D(bar.high);
    let volumeLeft = this.rules.participationBudget(D(bar.volume));
    // A filled order leaves ofSymbol as the walk goes (deleting the entry being visited is safe for a Map).
    for (const r of ofSymbol.values()) {
      const limit = D(r.order.limitPrice!);
      if (!this.rules.limitHit(r.order.side, limit, low, high)) continue;
      const qty = this.rules.cappedQuantity(D(r.remaining), volumeLeft);
      if (qty.lte(0) || !gate.mayFill(r.order, r.remaining)) continue;
      if (volumeLeft) volumeLeft = volumeLeft.minus(qty);
      r.fillSeq += 1;
      const fill = this.makeFill(r.order, r.fillSeq, qty, limit, "maker", bar.closeTime);
      gate.filled?.([fill]);
      const remaining = D(r.remaining).minus(qty);
      r.remaining = str(remaining);
      if (remaining.lte(0)) this.unrest(r.order.orderId);
      reports.push({ orderId: r.order.orderId, status: remaining.lte(0) ? "filled" : "partially_filled", fills: [fill], remaining: r.remaining });
    }
    this.last.set(bar.symbol, bar);
    return reports;
  }
}
