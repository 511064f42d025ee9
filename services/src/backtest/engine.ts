import { ExecutionRules, floatArithmetic, type ExecutionOptions } from "../trading/executionRules";
import type { Liquidity, Side } from "../trading/types";
import type { BarSeries } from "./bars";
import { Ledger, type Trade } from "./ledger";
import { ParameterError } from "./strategies";

/**
 * When a market order submitted on bar i fills:
 * - "close": at bar i's close (the paper exchange's rule: a market order fills against the last
 *   closed bar; backtrader's cheat-on-close);
 * - "nextOpen": at bar i+1's open (backtrader's default).
 */
export type FillTiming = "close" | "nextOpen";

export interface EngineOptions {
  initialCash: number;
  execution?: ExecutionOptions;
  fillAt?: FillTiming;
  /** Sells beyond the position and buys beyond the cash are rejected unless set. */
  allowShort?: boolean;
  /** Quantity step for "all" sizing (default 1e-8; 1 = whole units). A fixed quantity is taken as given: the service refuses one off the step (backtesting-engine/plan.ts). */
  quantityStep?: number;
}

export type OrderKind = "market" | "limit" | "stop";
export interface OrderSpec {
  side: Side;
  kind: OrderKind;
  /** A quantity, or "all": every affordable unit for a buy, the whole position for a sell (sized when it fills). */
  quantity: number | "all";
  /** Limit price (limit) or trigger price (stop). */
  price?: number;
  timeInForce?: "GTC" | "IOC";
}
export type OrderStatus = "open" | "filled" | "cancelled" | "rejected" | "expired";
export interface Order extends OrderSpec {
  id: number;
  submittedBar: number;
  filled: number;
  status: OrderStatus;
  reason?: string;
}

/** What a strategy sees on each bar. */
export interface Broker {
  readonly bars: BarSeries;
  readonly position: number;
  readonly cash: number;
  submit(order: OrderSpec): Order;
  cancel(id: number): boolean;
  openOrders(): readonly Order[];
}

/** An event-driven strategy: `init` once (indicators over the columns), then `onBar` per bar, in order. */
export interface Strategy {
  init(bars: BarSeries): void;
  onBar(i: number, broker: Broker): void;
}

export interface RunResult {
  equity: Float64Array;
  trades: Trade[];
  fills: number;
  fees: number;
  turnover: number;
  exposureBars: number;
  initialCash: number;
  finalEquity: number;
  orders: { submitted: number; rejected: number };
}

/** The event-driven engine: market, limit and stop orders, partial fills, cash and position accounting. */
export class EventEngine implements Broker {
  readonly rules: ExecutionRules<number>;
  private readonly ledger: Ledger;
  private readonly fillAt: FillTiming;
  private readonly allowShort: boolean;
  private readonly step: number;
  private pending: Order[] = [];
  private bar = 0;
  private nextId = 1;
  private submitted = 0;
  private rejected = 0;

  constructor(readonly bars: BarSeries, opts: EngineOptions) {
    // The caller's input, named (a job given it fails at once as INVALID_INPUT, not as a platform error retried).
    if (!(opts.initialCash > 0)) throw new ParameterError("initialCash", "must be positive");
    this.rules = new ExecutionRules(floatArithmetic, opts.execution);
    this.ledger = new Ledger(opts.initialCash, this.rules);
    this.fillAt = opts.fillAt ?? "close";
    this.allowShort = opts.allowShort ?? false;
    this.step = opts.quantityStep ?? 1e-8;
  }

  get position(): number {
    return this.ledger.position;
  }
  get cash(): number {
    return this.ledger.cash;
  }
  openOrders(): readonly Order[] {
    return this.pending;
  }

  private strategy: Strategy | undefined;
  private equity = new Float64Array(0);
  private exposure = 0;
  private next = 0;

  run(strategy: Strategy): RunResult {
    this.begin(strategy);
    this.advance(this.bars.close.length);
    return this.finish();
  }

  /** Incremental use (a caller that must yield between slices): begin, advance(to) repeatedly, finish. */
  begin(strategy: Strategy): void {
    this.strategy = strategy;
    this.equity = new Float64Array(this.bars.close.length);
    strategy.init(this.bars);
  }

  /** Processes bars up to `to` (exclusive); returns the next bar to process. */
  advance(to: number): number {
    const { close } = this.bars;
    const strategy = this.strategy!;
    const equity = this.equity;
    const end = Math.min(to, close.length);
    let exposure = this.exposure;
    for (let i = this.next; i < end; i++) {
      this.bar = i;
      if (this.pending.length > 0) this.matchPending(i);
      strategy.onBar(i, this);
      const pos = this.ledger.position;
      equity[i] = this.ledger.cash + pos * close[i];
      if (pos !== 0) exposure++;
    }
    this.exposure = exposure;
    this.next = Math.max(this.next, end);
    return this.next;
  }

  finish(): RunResult {
    const n = this.bars.close.length;
    const equity = this.equity;
    return {
      equity,
      trades: this.ledger.trades,
      fills: this.ledger.fills,
      fees: this.ledger.fees,
      turnover: this.ledger.turnover,
      exposureBars: this.exposure,
      initialCash: this.ledger.initialCash,
      finalEquity: n > 0 ? equity[n - 1] : this.ledger.cash,
      orders: { submitted: this.submitted, rejected: this.rejected },
    };
  }

  submit(spec: OrderSpec): Order {
    const order: Order = { ...spec, id: this.nextId++, submittedBar: this.bar, filled: 0, status: "open" };
    this.submitted++;
    if (spec.quantity !== "all" && !(spec.quantity > 0)) return this.reject(order, "INVALID_QUANTITY");
    if (spec.kind !== "market" && !(spec.price !== undefined && spec.price > 0)) return this.reject(order, "INVALID_PRICE");
    // Limits and stops may rest and fill in parts: their size is fixed now, at their own price.
    if (spec.kind !== "market" && spec.quantity === "all") {
      order.quantity = this.remaining(order, spec.price!);
      if (!(order.quantity > 0)) return this.reject(order, spec.side === "buy" ? "INSUFFICIENT_CASH" : "NO_POSITION");
    }
    if (this.fillAt === "nextOpen" || spec.kind === "stop") {
      this.pending.push(order);
      return order;
    }
    const i = this.bar;
    const { close } = this.bars;
    if (spec.kind === "market") {
      this.fillTaker(order, i, close[i]);
    } else if (this.rules.limitMarketable(spec.side, spec.price!, close[i])) {
      this.fillTaker(order, i, close[i], spec.price);
    } else if (spec.timeInForce === "IOC") {
      order.status = "expired";
    } else {
      this.pending.push(order);
    }
    return order;
  }

  cancel(id: number): boolean {
    const k = this.pending.findIndex((o) => o.id === id);
    if (k < 0) return false;
    this.pending[k].status = "cancelled";
    this.pending.splice(k, 1);
    return true;
  }

  private reject(order: Order, reason: string): Order {
    order.status = "rejected";
    order.reason = reason;
    this.rejected++;
    return order;
  }

  private remaining(order: Order, price: number): number {
    if (order.quantity !== "all") return order.quantity - order.filled;
    if (order.side === "sell") return this.ledger.position > 0 ? this.ledger.position : 0;
    return this.ledger.affordable(price, this.step);
  }

  /** Fills the whole order as taker against `reference` (slipped; never worse than `limit` when given). */
  private fillTaker(order: Order, i: number, reference: number, limit?: number): void {
    const vol = this.bars.volume[i];
    const sizingPrice = this.rules.takerPrice(reference, vol, order.side, 0);
    const qty = this.remaining(order, sizingPrice);
    if (!(qty > 0)) {
      this.reject(order, order.side === "buy" ? "INSUFFICIENT_CASH" : "NO_POSITION");
      return;
    }
    const price = limit === undefined
      ? this.rules.takerPrice(reference, vol, order.side, qty)
      : this.rules.marketableLimitPrice(order.side, limit, reference, vol, qty);
    this.fill(order, i, qty, price, "taker");
  }

  private fill(order: Order, i: number, qty: number, price: number, liquidity: Liquidity): void {
    if (!this.ledger.canFill(order.side, qty, price, liquidity, this.allowShort)) {
      this.reject(order, order.side === "buy" ? "INSUFFICIENT_CASH" : "NO_POSITION");
      return;
    }
    this.ledger.apply(i, order.side, qty, price, liquidity);
    order.filled += qty;
    if (order.quantity === "all" || order.filled >= order.quantity - 1e-12) order.status = "filled";
  }

  /** Orders waiting for bar i: next-open market orders, stops, resting limits (in submission order). */
  private matchPending(i: number): void {
    const { open, high, low, volume } = this.bars;
    let budget = this.rules.participationBudget(volume[i]);
    const waiting = this.pending;
    this.pending = [];
    for (const o of waiting) {
      const fresh = o.submittedBar === i - 1;
      if (o.kind === "market") {
        this.fillTaker(o, i, open[i]);
      } else if (o.kind === "stop") {
        if (this.rules.stopHit(o.side, o.price!, low[i], high[i])) this.fillTaker(o, i, this.rules.stopReference(o.side, o.price!, open[i]));
      } else if (fresh && this.fillAt === "nextOpen" && this.rules.limitMarketable(o.side, o.price!, open[i])) {
        this.fillTaker(o, i, open[i], o.price);
      } else if (fresh && this.fillAt === "nextOpen" && o.timeInForce === "IOC") {
        o.status = "expired";
      } else if (this.rules.limitHit(o.side, o.price!, low[i], high[i])) {
        const qty = this.rules.cappedQuantity(this.remaining(o, o.price!), budget);
        if (qty > 0) {
          this.fill(o, i, qty, o.price!, "maker");
          if (budget !== undefined) budget -= qty;
        }
      }
      if (o.status === "open") this.pending.push(o);
    }
  }
}
